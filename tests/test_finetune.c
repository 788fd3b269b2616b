/* Fine-tuning and full-image features: finite-difference check of the
 * cross-entropy (with label smoothing) gradient through head, pooling and the
 * whole encoder on unmasked images; the layer-wise lr scales; and a few
 * hundred steps on labelled shapes beat chance by far. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/finetune/finetune.h"
#include "core/vit/full_encoder.h"
#include "core/data/rng.h"
#include "core/optim/schedule.h"
#include "io/synthetic.h"

static mimae_config_t small_config(void)
{
    mimae_config_t c;
    mimae_config_preset(&c, "test-small");
    c.channels = 1;
    c.enc_dim = 16, c.enc_depth = 2, c.enc_heads = 2;
    c.dec_dim = 8, c.dec_depth = 1, c.dec_heads = 2;
    c.proj_hidden = 8, c.proj_out = 8, c.q_hidden = 8;
    c.global_batch = 4;
    return c;
}

static void random_images(float *x, size_t n, uint64_t seed)
{
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_EVAL);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
}

/* Loss of the current parameters (forward only, through finetune_grads). */
static double loss_now(finetune_t *ft, const float *img, const int32_t *y, int n)
{
    int correct;
    return finetune_grads(ft, img, y, n, n, &correct);
}

static void test_gradient_matches_finite_differences(void **state)
{
    (void)state;
    enum { B = 3 };
    mimae_config_t c = small_config();
    for (int pool = 0; pool < 2; pool++) {
        c.pool = pool;
        char err[256];
        mimae_model_t *m = mimae_model_create(&c, B, 3, err, sizeof err);
        assert_non_null(m);
        finetune_t *ft = finetune_create(m, B, 5, 0.1f, 0.65f, 9, err, sizeof err);
        assert_non_null(ft);
        /* a head large enough that its gradient carries signal */
        random_images(ft->head_mem, ft->head_table.total, 11);
        static float img[B * 16 * 16];
        random_images(img, sizeof img / sizeof img[0], 5);
        const int32_t y[B] = {1, 4, 0};
        loss_now(ft, img, y, B);
        const size_t np = m->table.total;
        float *grad = malloc(np * sizeof(float)), *hgrad = malloc(ft->head_table.total * sizeof(float));
        assert_non_null(grad);
        assert_non_null(hgrad);
        memcpy(grad, m->grad_mem, np * sizeof(float));
        memcpy(hgrad, ft->head_grad_mem, ft->head_table.total * sizeof(float));
        const char *names[] = {"patch_embed.weight", "cls_token", "blocks.0.attn.qkv.weight",
                               "blocks.1.mlp.fc2.weight", "norm.weight", "norm.bias", "head"};
        /* error relative to the tensor's gradient RMS: float32 losses make finite
         * differences of tiny gradient elements noisy */
        double worst = 0.0;
        for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
            const int is_head = strcmp(names[t], "head") == 0;
            if (pool == POOL_MEAN && strcmp(names[t], "cls_token") == 0) continue; /* unused */
            const param_info_t *p = is_head ? &ft->head_table.info[0]
                                            : param_table_find(&m->table, names[t]);
            assert_non_null(p);
            float *block = is_head ? ft->head_mem : m->param_mem;
            const float *g = (is_head ? hgrad : grad) + p->offset;
            double rms = 0.0;
            for (size_t j = 0; j < p->count; j++) rms += (double)g[j] * g[j];
            rms = sqrt(rms / p->count) + 1e-12;
            /* a step of 1 % of the tensor's scale: the cls token starts near 0.02 */
            double scale = 0.0;
            for (size_t j = 0; j < p->count; j++) scale += (double)block[p->offset + j] * block[p->offset + j];
            const float h = (float)fmax(1e-2 * sqrt(scale / p->count), 5e-4);
            for (size_t j = 0; j < p->count; j += p->count / 9 + 1) {
                float *x = block + p->offset + j, saved = *x;
                *x = saved + h;
                double up = loss_now(ft, img, y, B);
                *x = saved - h;
                double down = loss_now(ft, img, y, B);
                *x = saved;
                double fd = (up - down) / (2.0 * h);
                worst = fmax(worst, fabs(fd - g[j]) / rms);
            }
        }
        printf("  pool %s: worst error / gradient RMS %.2e\n", pool ? "cls" : "mean", worst);
        free(grad);
        free(hgrad);
        finetune_free(ft);
        mimae_model_free(m);
        assert_true(worst < 2e-2);
    }
}

static void test_layer_decay_scales(void **state)
{
    (void)state;
    mimae_config_t c = small_config();
    char err[256];
    mimae_model_t *m = mimae_model_create(&c, 2, 3, err, sizeof err);
    assert_non_null(m);
    finetune_t *ft = finetune_create(m, 2, 3, 0.0f, 0.5f, 1, err, sizeof err);
    assert_non_null(ft);
    const struct { const char *name; float scale; } want[] = {
        {"patch_embed.weight", 0.125f}, {"cls_token", 0.125f}, {"blocks.0.norm1.weight", 0.25f},
        {"blocks.1.mlp.fc2.bias", 0.5f}, {"norm.weight", 1.0f}, {"decoder_embed.weight", 0.0f},
        {"mask_token", 0.0f}, {"projector.fc1.weight", 0.0f}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const param_info_t *p = param_table_find(&m->table, want[i].name);
        assert_non_null(p);
        assert_float_equal(ft->lr_scale[p - m->table.info], want[i].scale, 1e-7f);
    }
    finetune_free(ft);
    mimae_model_free(m);
}

/* 300 steps of fine-tuning from a random encoder on 4 classes of shapes. */
static void test_learns_shapes(void **state)
{
    (void)state;
    enum { B = 16, N = 256, STEPS = 300 };
    mimae_config_t c = small_config();
    c.global_batch = B;
    char err[256];
    mimae_model_t *m = mimae_model_create(&c, B, 3, err, sizeof err);
    assert_non_null(m);
    finetune_t *ft = finetune_create(m, B, 4, 0.1f, 0.75f, 2, err, sizeof err);
    assert_non_null(ft);
    static uint8_t raw[N * 256];
    static float img[N * 256];
    static int32_t labels[N], pred[B];
    for (int i = 0; i < N; i++) {
        labels[i] = i % 4;
        synthetic_image(raw + (size_t)i * 256, 16, 16, 1, labels[i], 7, (uint64_t)i);
    }
    for (size_t i = 0; i < sizeof img / sizeof img[0]; i++) img[i] = (raw[i] / 255.0f - 0.3f) / 0.3f;
    adamw_hparams_t h = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f};
    for (int s = 0; s < STEPS; s++) {
        int first = (s * B) % N, correct;
        finetune_grads(ft, img + (size_t)first * 256, labels + first, B, B, &correct);
        finetune_update(ft, &h);
    }
    int right = 0;
    for (int first = 0; first < N; first += B) {
        finetune_predict(ft, img + (size_t)first * 256, B, pred);
        for (int b = 0; b < B; b++) right += pred[b] == labels[first + b];
    }
    printf("  training accuracy after %d steps: %.1f %% (chance 25 %%)\n", STEPS, 100.0 * right / N);
    finetune_free(ft);
    mimae_model_free(m);
    assert_true(right > N * 0.7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_matches_finite_differences),
        cmocka_unit_test(test_layer_decay_scales),
        cmocka_unit_test(test_learns_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
