#include "core/optim/update.h"

#include <math.h>
#include <stdio.h>

#include "core/kernels/profile.h"
#include "core/optim/adamw.h"
#include "core/optim/schedule.h"

/* The parameter tensor (model or Q) with the first non-finite gradient, or
 * else the largest gradient norm: where a divergence shows first. *bad
 * counts the tensors with a non-finite gradient, of *total. */
static const param_info_t *worst_gradient(const mimae_model_t *m, double *norm, int *bad,
                                          int *total)
{
    const param_table_t *tabs[2] = {&m->table, &m->q_table};
    const float *grads[2] = {m->grad_mem, m->q_grad_mem};
    const param_info_t *worst = NULL, *first_bad = NULL;
    double worst_norm = -1.0, bad_norm = 0.0;
    *bad = *total = 0;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < tabs[t]->count; i++) {
            const param_info_t *p = &tabs[t]->info[i];
            const double n = grad_norm(grads[t] + p->offset, p->count);
            ++*total;
            if (!isfinite(n)) {
                if (!first_bad) first_bad = p, bad_norm = n;
                ++*bad;
            } else if (n > worst_norm) {
                worst_norm = n, worst = p;
            }
        }
    *norm = first_bad ? bad_norm : worst_norm;
    return first_bad ? first_bad : worst;
}

int mimae_check_finite(const mimae_model_t *m, const mimae_losses_t *l, double gnorm,
                       double qnorm, char *err, size_t errlen)
{
    const int loss_ok = isfinite(l->rec) && isfinite(l->max) && isfinite(l->min) &&
                        isfinite(l->q);
    if (loss_ok && gnorm <= MIMAE_GRAD_NORM_LIMIT && qnorm <= MIMAE_GRAD_NORM_LIMIT) return 0;
    double worst_norm;
    int bad, total;
    const param_info_t *worst = worst_gradient(m, &worst_norm, &bad, &total);
    snprintf(err, errlen,
             "non-finite %s at step %ld (L_rec=%g L_max=%g L_min=%g L_q=%g grad_norm=%g; "
             "worst gradient: %s, norm %g; %d of %d tensors with a non-finite gradient): "
             "lower optim.blr or check the input data for NaN/Inf",
             !loss_ok ? "loss" : isfinite(gnorm) && isfinite(qnorm) ? "update (gradient too large)"
                                                                   : "gradient",
             m->step, l->rec, l->max, l->min, l->q, gnorm,
             worst ? worst->name : "(none)", worst_norm, bad, total);
    return -1;
}

int mimae_check_state(const mimae_model_t *m, char *err, size_t errlen)
{
    static const char *const groups[3] = {"params", "adam_m", "adam_v"};
    const param_table_t *tabs[2] = {&m->table, &m->q_table};
    const float *blocks[3][2] = {{m->param_mem, m->q_param_mem},
                                 {m->m_mem, m->q_m_mem},
                                 {m->v_mem, m->q_v_mem}};
    for (int g = 0; g < 3; g++)
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < tabs[t]->count; i++) {
                const param_info_t *p = &tabs[t]->info[i];
                const float *x = blocks[g][t] + p->offset;
                for (size_t j = 0; j < p->count; j++)
                    if (!isfinite(x[j])) {
                        snprintf(err, errlen, "non-finite training state after step %ld: "
                                 "/%s/%s[%zu] is %g (an update overflowed): lower optim.blr; "
                                 "the last checkpoint is the last good state", m->step,
                                 groups[g], p->name, j, (double)x[j]);
                        return -1;
                    }
            }
    return 0;
}

float mimae_apply_update(mimae_model_t *m)
{
    const mimae_config_t *c = &m->cfg;
    adamw_hparams_t h = {schedule_lr(c, m->step), c->beta1, c->beta2, c->adam_eps,
                         c->weight_decay};
    m->step++;
    adamw_update(&m->table, m->param_mem, m->grad_mem, m->m_mem, m->v_mem, &h, m->step, NULL,
                 m->param16);
    adamw_update(&m->q_table, m->q_param_mem, m->q_grad_mem, m->q_m_mem, m->q_v_mem, &h, m->step,
                 NULL, m->q_param16);
    if (m->param16) m->param16_step = m->step; /* the bf16 copy is the update's too */
    return h.lr;
}

int mimae_finish_step(mimae_model_t *m, mimae_losses_t *loss, mimae_step_stats_t *stats,
                      char *err, size_t errlen)
{
    const double t0 = profile_start();
    mimae_losses_total(&m->cfg, loss);
    stats->loss = *loss;
    stats->grad_norm = grad_norm(m->grad_mem, m->table.total);
    stats->q_grad_norm = grad_norm(m->q_grad_mem, m->q_table.total);
    stats->lr = 0.0f;
    int rc = mimae_check_finite(m, loss, stats->grad_norm, stats->q_grad_norm, err, errlen);
    if (rc == 0) stats->lr = mimae_apply_update(m);
    profile_stop(PROFILE_ADAMW, t0);
    return rc;
}
