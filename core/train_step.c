#include "train_step.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adamw.h"
#include "schedule.h"

int mimae_check_finite(const mimae_model_t *m, const mimae_losses_t *l, double gnorm,
                       char *err, size_t errlen)
{
    if (isfinite(l->rec) && isfinite(l->max) && isfinite(l->min) && isfinite(l->q) &&
        isfinite(gnorm))
        return 0;
    snprintf(err, errlen,
             "non-finite loss at step %ld (L_rec=%g L_max=%g L_min=%g L_q=%g grad_norm=%g): "
             "lower optim.blr or check the input data for NaN/Inf",
             m->step, l->rec, l->max, l->min, l->q, gnorm);
    return -1;
}

float mimae_apply_update(mimae_model_t *m)
{
    const mimae_config_t *c = &m->cfg;
    adamw_hparams_t h = {schedule_lr(c, m->step), c->beta1, c->beta2, c->adam_eps,
                         c->weight_decay};
    m->step++;
    adamw_update(&m->table, m->param_mem, m->grad_mem, m->m_mem, m->v_mem, &h, m->step, NULL);
    adamw_update(&m->q_table, m->q_param_mem, m->q_grad_mem, m->q_m_mem, m->q_v_mem, &h, m->step, NULL);
    return h.lr;
}

int mimae_train_step(mimae_model_t *m, const float *images, mimae_step_stats_t *stats,
                     char *err, size_t errlen)
{
    if (m->batch != m->cfg.global_batch) {
        snprintf(err, errlen, "single-process step with micro-batch %d but global_batch %d: "
                 "they must be equal here", m->batch, m->cfg.global_batch);
        return -1;
    }
    activations_t *a = &m->acts;
    const size_t S = (size_t)m->batch * m->cfg.num_masks;
    memset(a->du, 0, S * m->dims.proj_dim * sizeof(float));
    memset(a->dz, 0, S * m->cfg.enc_dim * sizeof(float));
    mimae_forward(m, images);
    mimae_losses(m, a->u, a->z, m->batch, 0, a->du, a->dz, &stats->loss);
    stats->grad_norm = 0.0;
    if (mimae_check_finite(m, &stats->loss, 0.0, err, errlen)) return -1;
    mimae_backward(m, a->du, a->dz);
    stats->grad_norm = grad_norm(m->grad_mem, m->table.total);
    stats->q_grad_norm = grad_norm(m->q_grad_mem, m->q_table.total);
    if (mimae_check_finite(m, &stats->loss, stats->grad_norm + stats->q_grad_norm, err, errlen))
        return -1;
    stats->lr = mimae_apply_update(m);
    return 0;
}
