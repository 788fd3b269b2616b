#include "core/finetune/finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels/linear.h"
#include "core/data/rng.h"
#include "core/kernels/softmax.h"

#define HEAD_INIT_STD 2e-5f /* MAE's trunc_normal_(head.weight, std=2e-5) */

/* The layer id of a model tensor, or -1 for tensors fine-tuning leaves alone. */
static int layer_id(const char *name, int depth)
{
    int block;
    if (strncmp(name, "patch_embed.", 12) == 0 || strcmp(name, "cls_token") == 0) return 0;
    if (sscanf(name, "blocks.%d.", &block) == 1) return block + 1;
    if (strncmp(name, "norm.", 5) == 0) return depth + 1;
    return -1;
}

finetune_t *finetune_create(mimae_model_t *m, int B, int classes, float smoothing,
                            float layer_decay, uint64_t seed, char *err, size_t errlen)
{
    finetune_t *ft = calloc(1, sizeof *ft);
    if (!ft) goto oom;
    ft->m = m;
    ft->B = B;
    ft->classes = classes;
    ft->smoothing = smoothing;
    const int D = m->cfg.enc_dim, depth = m->cfg.enc_depth;
    ft->fe = full_encoder_create(m, B, err, errlen);
    if (!ft->fe) {
        finetune_free(ft);
        return NULL;
    }
    if (head_params_table(&ft->head_table, &ft->head, D, classes)) goto oom;
    const size_t nh = ft->head_table.total;
    ft->head_mem = calloc(nh, sizeof(float));
    ft->head_grad_mem = calloc(nh, sizeof(float));
    ft->head_m = calloc(nh, sizeof(float));
    ft->head_v = calloc(nh, sizeof(float));
    ft->lr_scale = malloc((size_t)m->table.count * sizeof(float));
    ft->features = malloc((size_t)B * D * sizeof(float));
    ft->dfeatures = malloc((size_t)B * D * sizeof(float));
    ft->logits = malloc((size_t)B * classes * sizeof(float));
    if (!ft->head_mem || !ft->head_grad_mem || !ft->head_m || !ft->head_v || !ft->lr_scale ||
        !ft->features || !ft->dfeatures || !ft->logits)
        goto oom;
    param_table_bind(&ft->head_table, ft->head_mem);
    /* a second binding of the same table: the gradient's named pointers */
    ft->head_grads.w = ft->head_grad_mem + (ft->head.w - ft->head_mem);
    ft->head_grads.b = ft->head_grad_mem + (ft->head.b - ft->head_mem);
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_INIT);
    for (int i = 0; i < classes * D; i++) ft->head.w[i] = HEAD_INIT_STD * rng_normal(&r);
    for (int i = 0; i < m->table.count; i++) {
        int id = layer_id(m->table.info[i].name, depth);
        ft->lr_scale[i] = id < 0 ? 0.0f : (float)pow(layer_decay, depth + 1 - id);
    }
    return ft;
oom:
    snprintf(err, errlen, "out of memory for fine-tuning (batch %d, %d classes)", B, classes);
    finetune_free(ft);
    return NULL;
}

void finetune_free(finetune_t *ft)
{
    if (!ft) return;
    full_encoder_free(ft->fe);
    param_table_free(&ft->head_table);
    free(ft->head_mem);
    free(ft->head_grad_mem);
    free(ft->head_m);
    free(ft->head_v);
    free(ft->lr_scale);
    free(ft->features);
    free(ft->dfeatures);
    free(ft->logits);
    free(ft);
}

static void head_forward(finetune_t *ft, const float *images, int n)
{
    const int D = ft->m->cfg.enc_dim;
    full_encoder_forward(ft->fe, images, n, ft->features);
    linear_forward(ft->logits, ft->features, ft->head.w, ft->head.b, n, D, ft->classes, NULL);
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

double finetune_grads(finetune_t *ft, const float *images, const int32_t *labels, int n,
                      int Bg, int *correct)
{
    mimae_model_t *m = ft->m;
    const int K = ft->classes, D = m->cfg.enc_dim;
    head_forward(ft, images, n);
    /* cross-entropy against (1 - eps) onehot + eps / K; dlogits = softmax - target */
    double loss = 0.0;
    int right = 0;
    const float eps = ft->smoothing, off = eps / K, on = 1.0f - eps + off;
    for (int b = 0; b < n; b++) {
        float *row = ft->logits + (size_t)b * K;
        right += argmax(row, K) == labels[b];
        const double lse = logsumexp_row(row, K);
        for (int k = 0; k < K; k++) loss -= (k == labels[b] ? on : off) * (row[k] - lse);
        softmax_rows(row, 1, K, K);
        for (int k = 0; k < K; k++) row[k] = (row[k] - (k == labels[b] ? on : off)) / (float)Bg;
    }
    memset(m->grad_mem, 0, m->table.total * sizeof(float));
    memset(ft->head_grad_mem, 0, ft->head_table.total * sizeof(float));
    linear_backward(ft->dfeatures, ft->head_grads.w, ft->head_grads.b, ft->logits, ft->features,
                    ft->head.w, n, D, K, NULL);
    full_encoder_backward(ft->fe, ft->dfeatures, n);
    *correct = right;
    return loss / Bg;
}

void finetune_update(finetune_t *ft, const adamw_hparams_t *h)
{
    mimae_model_t *m = ft->m;
    ft->step++;
    adamw_update(&m->table, m->param_mem, m->grad_mem, m->m_mem, m->v_mem, h, ft->step,
                 ft->lr_scale, NULL);
    adamw_update(&ft->head_table, ft->head_mem, ft->head_grad_mem, ft->head_m, ft->head_v, h,
                 ft->step, NULL, NULL);
}

void finetune_predict(finetune_t *ft, const float *images, int n, int32_t *pred)
{
    head_forward(ft, images, n);
    for (int b = 0; b < n; b++) pred[b] = argmax(ft->logits + (size_t)b * ft->classes, ft->classes);
}
