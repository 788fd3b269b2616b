#include "ckpt_util.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>

#include "io/checkpoint.h"
#include "io/synthetic.h"

mimae_model_t *load_newest_checkpoint(const char *run_dir, long *step)
{
    char dir[4096], path[4200], err[1024];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    if (checkpoint_find_latest(dir, path, sizeof path, err, sizeof err) != 1)
        fail_msg("%s: no valid checkpoint (%s)", dir, err);
    if (checkpoint_verify(path, err, sizeof err)) fail_msg("%s", err);
    mimae_config_t cfg;
    if (checkpoint_read_config(path, &cfg, err, sizeof err)) fail_msg("%s", err);
    mimae_model_t *m = mimae_model_create(&cfg, 1, 0, err, sizeof err);
    if (!m) fail_msg("%s", err);
    train_state_t st;
    if (checkpoint_load(path, m, &st, err, sizeof err)) {
        mimae_model_free(m);
        fail_msg("%s", err);
    }
    *step = st.step;
    return m;
}

void assert_models_bitwise_equal(const mimae_model_t *a, const mimae_model_t *b)
{
    const size_t np = a->table.total, nq = a->q_table.total;
    assert_int_equal(np, b->table.total);
    assert_int_equal(nq, b->q_table.total);
    assert_memory_equal(a->param_mem, b->param_mem, np * sizeof(float));
    assert_memory_equal(a->m_mem, b->m_mem, np * sizeof(float));
    assert_memory_equal(a->v_mem, b->v_mem, np * sizeof(float));
    assert_memory_equal(a->q_param_mem, b->q_param_mem, nq * sizeof(float));
    assert_memory_equal(a->q_m_mem, b->q_m_mem, nq * sizeof(float));
    assert_memory_equal(a->q_v_mem, b->q_v_mem, nq * sizeof(float));
}

int write_small_run(const char *work, int images)
{
    static const char *descriptor_text =
        "[model]\npreset = test-small\nchannels = 1\n"
        "[data]\ntrain = %s/data/train.h5\n"
        "[train]\nglobal_batch = 16\nmicro_batch = 4\nepochs = 3\nmax_steps = 20\nseed = 5\n"
        "[optim]\nblr = 0.01\nwarmup_epochs = 0.5\n"
        "[run]\nlog_every = 1\ncheckpoint_every = 5\nkeep_checkpoints = 3\n";
    char data[PATH_MAX], path[PATH_MAX], err[512];
    snprintf(data, sizeof data, "%s/data", work);
    if (synthetic_generate(data, images, 16, 16, 1, 4, 1, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/run.ini", work);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, descriptor_text, work);
    return fclose(f);
}
