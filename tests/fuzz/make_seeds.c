/* Writes the HDF5 seed corpus of the fuzz targets (small valid files):
 *   make_seeds DATASET_DIR CHECKPOINT_DIR RESULTS_DIR
 * Data sets of 4 images (8x8x1 and 8x8x3), checkpoints of two tiny models,
 * a results file with a few steps, an evaluation and reconstructions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "core/config/config.h"
#include "core/vit/model.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "io/synthetic.h"

static void tiny_config(mimae_config_t *c, int projector)
{
    mimae_config_preset(c, "test-small");
    c->img_h = c->img_w = 8, c->channels = 1, c->patch = 4;
    c->enc_dim = 8, c->enc_depth = 1, c->enc_heads = 2;
    c->dec_dim = 8, c->dec_depth = 1, c->dec_heads = 2;
    c->mlp_ratio = 1, c->num_masks = 2, c->mask_ratio = 0.5;
    c->proj_hidden = projector ? 8 : 0, c->proj_out = 4, c->q_hidden = 4;
    c->pool = projector ? POOL_MEAN : POOL_CLS;
    c->total_iters = 10, c->warmup_iters = 1, c->global_batch = 2;
}

static int fail(const char *err)
{
    fprintf(stderr, "make_seeds: %s\n", err);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make_seeds DATASET_DIR CHECKPOINT_DIR RESULTS_DIR\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char err[1024], dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/gray", argv[1]);
    if (synthetic_generate(dir, 4, 8, 8, 1, 2, 1, err, sizeof err)) return fail(err);
    snprintf(dir, sizeof dir, "%s/rgb", argv[1]);
    if (synthetic_generate(dir, 3, 8, 8, 3, 3, 2, err, sizeof err)) return fail(err);

    mimae_config_t cfg;
    for (int projector = 0; projector < 2; projector++) {
        tiny_config(&cfg, projector);
        mimae_model_t *m = mimae_model_create(&cfg, 1, 7, err, sizeof err);
        if (!m) return fail(err);
        m->step = projector; /* two training positions */
        train_state_t st = {m->step, 0, m->step, 7};
        snprintf(path, sizeof path, "%s/ckpt-%d.h5", argv[2], projector);
        if (checkpoint_save(path, m, &st, err, sizeof err)) return fail(err);
        mimae_model_free(m);
    }

    tiny_config(&cfg, 1);
    results_env_t env;
    memset(&env, 0, sizeof env);
    env.ranks = 2, env.threads = 1;
    snprintf(env.hdf5, sizeof env.hdf5, "1.10.8");
    results_t *r = results_new(&cfg, &env);
    if (!r) return fail("out of memory");
    for (long s = 1; s <= 3; s++) {
        step_metrics_t m = {s, 0.5 * (double)s, 4.0 * (double)s, 1.0, 2.0, 0.1, 40.0, 1.3,
                            1e-4, 0.5, 100.0, 0.01};
        if (results_append_step(r, &m)) return fail("append");
    }
    results_set_attr(r, "descriptor", "fuzz.ini");
    results_set_eval(r, "knn_top1", 0.5, "ckpt-0000000003.h5", 3);
    float img[64];
    for (int i = 0; i < 64; i++) img[i] = (float)i / 64.0f;
    if (results_set_reconstructions(r, 3, img, img, img, 1, 8, 8, 1)) return fail("recon");
    snprintf(path, sizeof path, "%s/results.h5", argv[3]);
    if (results_write(r, path, err, sizeof err)) return fail(err);
    results_free(r);
    return 0;
}
