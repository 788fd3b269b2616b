#include "core/vit/tokens.h"

#include <stddef.h>
#include <string.h>

#include "core/config/config.h"

static void row_sum(float *out, const float *a, const float *b, int n)
{
    for (int c = 0; c < n; c++) out[c] = a[c] + b[c];
}

static void row_add(float *acc, const float *x, int n)
{
    for (int c = 0; c < n; c++) acc[c] += x[c];
}

void tokens_gather_visible(float *out, const float *patches, const int *vis_patch, int S,
                           int N, int L, int V, int P)
{
    for (int s = 0; s < S; s++) {
        const float *img = patches + (size_t)(s / N) * L * P;
        for (int i = 0; i < V; i++)
            memcpy(out + ((size_t)s * V + i) * P, img + (size_t)vis_patch[s * V + i] * P,
                   (size_t)P * sizeof(float));
    }
}

void tokens_encoder_forward(float *x0, const float *emb, const float *cls, const float *pos,
                            const int *vis_patch, int S, int V, int D)
{
    const int T = V + 1;
    for (int s = 0; s < S; s++) {
        float *seq = x0 + (size_t)s * T * D;
        row_sum(seq, cls, pos, D);
        for (int i = 0; i < V; i++)
            row_sum(seq + (size_t)(1 + i) * D, emb + ((size_t)s * V + i) * D,
                    pos + (size_t)(1 + vis_patch[s * V + i]) * D, D);
    }
}

typedef struct {
    const float *dx; /* token gradients (S*T, D) */
    const int *token_of;
    int T, L, D;
} token_grads_t;

/* dcls += the cls rows' gradients of sequences [s0, s0 + S). */
static void cls_grads(void *ctx, int s0, int S, float *dcls, float *unused)
{
    (void)unused;
    const token_grads_t *t = ctx;
    for (int s = s0; s < s0 + S; s++) row_add(dcls, t->dx + (size_t)s * t->T * t->D, t->D);
}

void tokens_encoder_backward(float *demb, float *dcls, const float *dx0, int S, int V, int D,
                             micro_batches_t *mb)
{
    const int T = V + 1;
    for (int s = 0; s < S; s++)
        memcpy(demb + (size_t)s * V * D, dx0 + ((size_t)s * T + 1) * D,
               (size_t)V * D * sizeof(float));
    token_grads_t t = {dx0, NULL, T, 0, D};
    micro_batches_grads(mb, S, dcls, (size_t)D, NULL, 0, cls_grads, &t);
}

void tokens_decoder_forward(float *xd, const float *y, const float *mask_token,
                            const float *pos, const int *token_of, int S, int L, int V, int Dd)
{
    const int Te = V + 1, Td = L + 1;
    for (int s = 0; s < S; s++) {
        const float *ys = y + (size_t)s * Te * Dd;
        float *seq = xd + (size_t)s * Td * Dd;
        row_sum(seq, ys, pos, Dd);
        for (int l = 0; l < L; l++) {
            int i = token_of[(size_t)s * L + l];
            const float *src = i >= 0 ? ys + (size_t)(1 + i) * Dd : mask_token;
            row_sum(seq + (size_t)(1 + l) * Dd, src, pos + (size_t)(1 + l) * Dd, Dd);
        }
    }
}

/* dmask_token += the masked positions' gradients of sequences [s0, s0 + S). */
static void mask_token_grads(void *ctx, int s0, int S, float *dmask_token, float *unused)
{
    (void)unused;
    const token_grads_t *t = ctx;
    for (int s = s0; s < s0 + S; s++) {
        const float *seq = t->dx + (size_t)s * t->T * t->D;
        for (int l = 0; l < t->L; l++)
            if (t->token_of[(size_t)s * t->L + l] < 0)
                row_add(dmask_token, seq + (size_t)(1 + l) * t->D, t->D);
    }
}

void tokens_decoder_backward(float *dy, float *dmask_token, const float *dxd,
                             const int *token_of, int S, int L, int V, int Dd,
                             micro_batches_t *mb)
{
    const int Te = V + 1, Td = L + 1;
    for (int s = 0; s < S; s++) {
        float *dys = dy + (size_t)s * Te * Dd;
        const float *seq = dxd + (size_t)s * Td * Dd;
        memcpy(dys, seq, (size_t)Dd * sizeof(float));
        for (int l = 0; l < L; l++) {
            int i = token_of[(size_t)s * L + l];
            if (i >= 0)
                memcpy(dys + (size_t)(1 + i) * Dd, seq + (size_t)(1 + l) * Dd,
                       (size_t)Dd * sizeof(float));
        }
    }
    token_grads_t t = {dxd, token_of, Td, L, Dd};
    micro_batches_grads(mb, S, dmask_token, (size_t)Dd, NULL, 0, mask_token_grads, &t);
}

void tokens_pool_forward(float *z, const float *h, int S, int V, int D, int pool)
{
    const int T = V + 1;
    for (int s = 0; s < S; s++) {
        const float *seq = h + (size_t)s * T * D;
        float *zs = z + (size_t)s * D;
        if (pool == POOL_CLS) {
            memcpy(zs, seq, (size_t)D * sizeof(float));
            continue;
        }
        memset(zs, 0, (size_t)D * sizeof(float));
        for (int i = 1; i <= V; i++) row_add(zs, seq + (size_t)i * D, D);
        for (int c = 0; c < D; c++) zs[c] /= (float)V;
    }
}

void tokens_pool_backward(float *dh, const float *dz, int S, int V, int D, int pool)
{
    const int T = V + 1;
    for (int s = 0; s < S; s++) {
        float *seq = dh + (size_t)s * T * D;
        const float *g = dz + (size_t)s * D;
        if (pool == POOL_CLS) {
            row_add(seq, g, D);
            continue;
        }
        for (int i = 1; i <= V; i++)
            for (int c = 0; c < D; c++) seq[(size_t)i * D + c] += g[c] / (float)V;
    }
}

void tokens_summary_forward(float *qs, const float *qe, const float *pos, const int *vis_patch,
                            int S, int V, int H)
{
    for (int s = 0; s < S; s++) {
        float *out = qs + (size_t)s * H;
        memset(out, 0, (size_t)H * sizeof(float));
        for (int i = 0; i < V; i++) {
            row_add(out, qe + ((size_t)s * V + i) * H, H);
            row_add(out, pos + (size_t)vis_patch[s * V + i] * H, H);
        }
        for (int c = 0; c < H; c++) out[c] /= (float)V;
    }
}

void tokens_summary_backward(float *dqe, const float *dqs, int S, int V, int H)
{
    for (int s = 0; s < S; s++)
        for (int i = 0; i < V; i++)
            for (int c = 0; c < H; c++)
                dqe[((size_t)s * V + i) * H + c] = dqs[(size_t)s * H + c] / (float)V;
}
