#include "core/vit/reconstruct.h"

#include <math.h>
#include <string.h>

#include "core/vit/patches.h"

#define MASKED_GREY 0.5f

/* Normalised pixels back to 0..1 with the data set's channel statistics;
 * the channel of a patch value is its index mod C (row, col, channel order). */
static void denormalise(float *img, const float *normalised, size_t n, int C, const float *mean,
                        const float *std)
{
    for (size_t i = 0; i < n; i++) img[i] = normalised[i] * std[i % C] + mean[i % C];
}

void mimae_reconstruct(const mimae_model_t *m, int image, int mask, const float *mean,
                       const float *std, float *original, float *masked, float *reconstructed,
                       float *scratch)
{
    const mimae_config_t *c = &m->cfg;
    const int L = m->dims.L, P = m->dims.P, C = c->channels;
    const size_t s = (size_t)image * c->num_masks + mask, n = (size_t)L * P;
    const float *patches = m->acts.patches + (size_t)image * n;
    const float *pred = m->acts.dec.pred + s * (size_t)(L + 1) * P + P; /* skip the cls row */
    const int *token_of = m->token_of + s * L;
    float *masked_p = scratch, *recon_p = scratch + n;

    for (int l = 0; l < L; l++) {
        const float *x = patches + (size_t)l * P;
        float *mp = masked_p + (size_t)l * P, *rp = recon_p + (size_t)l * P;
        if (token_of[l] >= 0) { /* visible: shown as it is in both */
            memcpy(mp, x, (size_t)P * sizeof(float));
            memcpy(rp, x, (size_t)P * sizeof(float));
            continue;
        }
        double mu = 0.0, var = 0.0;
        for (int i = 0; i < P; i++) mu += x[i];
        mu /= P;
        for (int i = 0; i < P; i++) var += (x[i] - mu) * (x[i] - mu);
        var /= (P > 1 ? P - 1 : 1);
        const float scale = c->norm_pix ? (float)sqrt(var + 1e-6) : 1.0f;
        const float shift = c->norm_pix ? (float)mu : 0.0f;
        for (int i = 0; i < P; i++) {
            /* grey in 0..1 pixels, written in normalised units */
            mp[i] = (MASKED_GREY - mean[i % C]) / std[i % C];
            rp[i] = pred[(size_t)l * P + i] * scale + shift;
        }
    }
    float *tmp = original; /* unpatchify into the outputs, then denormalise in place */
    unpatchify(tmp, patches, 1, c->img_h, c->img_w, C, c->patch);
    denormalise(original, tmp, n, C, mean, std);
    unpatchify(masked, masked_p, 1, c->img_h, c->img_w, C, c->patch);
    denormalise(masked, masked, n, C, mean, std);
    unpatchify(reconstructed, recon_p, 1, c->img_h, c->img_w, C, c->patch);
    denormalise(reconstructed, reconstructed, n, C, mean, std);
}
