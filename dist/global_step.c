#include "dist/global_step.h"

#include <stdlib.h>
#include <string.h>

#include "dist/collectives.h"

int global_step_init(global_step_t *s, mimae_model_t *model, MPI_Comm comm, int G, int per_rank,
                     int mb, int deterministic, size_t image_floats)
{
    memset(s, 0, sizeof *s);
    s->model = model, s->comm = comm, s->deterministic = deterministic;
    s->G = G, s->per_rank = per_rank, s->mb = mb, s->k = per_rank / mb;
    s->image_floats = image_floats;
    if (MPI_Comm_rank(comm, &s->rank) != MPI_SUCCESS) return -1;
    const size_t N = (size_t)model->cfg.num_masks, GN = (size_t)G * N;
    const size_t E = model->dims.proj_dim, D = (size_t)model->cfg.enc_dim;
    const size_t per_rank_seq = (size_t)per_rank * N;
    s->cand_u = malloc(GN * E * sizeof(float));
    s->cand_z = malloc(GN * D * sizeof(float));
    s->dcand = malloc(GN * (E + D) * sizeof(float));
    s->dcand_total = malloc(GN * (E + D) * sizeof(float));
    s->mu_save = malloc(per_rank_seq * D * sizeof(float));
    s->lv_save = malloc(per_rank_seq * D * sizeof(float));
    if (!s->cand_u || !s->cand_z || !s->dcand || !s->dcand_total || !s->mu_save || !s->lv_save)
        return -1;
    const size_t grads = model->table.total + model->q_table.total;
    if (deterministic)
        return tree_sum_init(&s->grad_tree, grads, s->k) ||
               tree_sum_init(&s->dcand_tree, GN * (E + D), s->k);
    /* buckets of ~4 MiB: big enough for bandwidth, small enough to overlap */
    return grad_reduce_init(&s->fast, model->grad_mem, 1u << 20,
                            model->cfg.enc_depth + model->cfg.dec_depth + 16, comm);
}

void global_step_free(global_step_t *s)
{
    free(s->cand_u);
    free(s->cand_z);
    free(s->dcand);
    free(s->dcand_total);
    free(s->mu_save);
    free(s->lv_save);
    if (s->deterministic) {
        tree_sum_free(&s->grad_tree);
        tree_sum_free(&s->dcand_tree);
    } else {
        grad_reduce_free(&s->fast);
    }
}

/* ---- instrumentation: MPI_Wtime is cheap, so the step always reads the
 * clock and adds only when asked. */

static void add_since(double *total, double since)
{
    if (total) *total += MPI_Wtime() - since;
}

static void meet_before_collective(const global_step_t *s, global_step_timing_t *t)
{
    if (!t || !t->barriers) return;
    const double t0 = MPI_Wtime();
    MPI_Barrier(s->comm);
    t->imbalance_s += MPI_Wtime() - t0;
}

/* Forward of micro-batch j (masks, then the model). */
static void forward_micro_batch(global_step_t *s, int j, const float *images,
                                const int64_t *indices, uint64_t seed, uint64_t epoch,
                                global_step_timing_t *t)
{
    double *forward = t ? &t->forward_s : NULL;
    const double t0 = MPI_Wtime();
    mimae_sample_masks(s->model, seed, epoch, (const uint64_t *)(indices + (size_t)j * s->mb));
    mimae_forward(s->model, images + (size_t)j * s->mb * s->image_floats);
    add_since(forward, t0);
}

/* Every rank's features of micro-batch rows gathered into cand_u/cand_z. */
static void gather_features(global_step_t *s, size_t rows_per_rank, global_step_timing_t *t)
{
    const size_t E = s->model->dims.proj_dim, D = (size_t)s->model->cfg.enc_dim;
    double *comm = t ? &t->comm_s : NULL;
    meet_before_collective(s, t);
    const double t0 = MPI_Wtime();
    dist_allgather_rows(s->cand_u, rows_per_rank * E, s->comm);
    dist_allgather_rows(s->cand_z, rows_per_rank * D, s->comm);
    add_since(comm, t0);
}

/* The deterministic path: features of every micro-batch, gathered; the
 * MI-term gradients summed over micro-batches in tree order; then each
 * micro-batch's backward, its gradient pushed onto the tree. */
static void run_deterministic(global_step_t *s, const float *images, const int64_t *indices,
                              uint64_t seed, uint64_t epoch, mimae_losses_t *loss,
                              global_step_timing_t *t)
{
    mimae_model_t *m = s->model;
    const int N = m->cfg.num_masks, mb = s->mb;
    const size_t E = m->dims.proj_dim, D = (size_t)m->cfg.enc_dim, seq = (size_t)mb * N;
    const size_t GN = (size_t)s->G * N;
    const int first_image = s->rank * s->per_rank;
    double *comm = t ? &t->comm_s : NULL, *backward = t ? &t->backward_s : NULL;
    mimae_losses_t part;
    memset(loss, 0, sizeof *loss);

    for (int j = 0; j < s->k; j++) {
        forward_micro_batch(s, j, images, indices, seed, epoch, t);
        const size_t row = (size_t)(first_image + j * mb) * N;
        memcpy(s->cand_u + row * E, m->acts.u, seq * E * sizeof(float));
        memcpy(s->cand_z + row * D, m->acts.z, seq * D * sizeof(float));
        memcpy(s->mu_save + (size_t)j * seq * D, m->acts.mu, seq * D * sizeof(float));
        memcpy(s->lv_save + (size_t)j * seq * D, m->acts.lv, seq * D * sizeof(float));
    }
    gather_features(s, (size_t)s->per_rank * N, t);

    tree_sum_reset(&s->dcand_tree);
    for (int j = 0; j < s->k; j++) {
        memset(s->dcand, 0, GN * (E + D) * sizeof(float));
        mimae_mi_losses(&m->cfg, &m->dims, s->cand_u, s->cand_z, s->mu_save + (size_t)j * seq * D,
                        s->lv_save + (size_t)j * seq * D, s->G, first_image + j * mb, mb,
                        s->dcand, s->dcand + GN * E, m->acts.mi_scratch, &part);
        loss->max += part.max;
        loss->min += part.min;
        tree_sum_push(&s->dcand_tree, s->dcand);
    }
    double t0 = MPI_Wtime();
    tree_sum_finish(&s->dcand_tree, s->dcand_total, s->comm);
    add_since(comm, t0);

    tree_sum_reset(&s->grad_tree);
    for (int j = 0; j < s->k; j++) {
        if (s->k > 1) /* only one micro-batch's activations fit: recompute */
            forward_micro_batch(s, j, images, indices, seed, epoch, t);
        mimae_local_losses(m, s->G, &part);
        loss->rec += part.rec;
        loss->q += part.q;
        const size_t row = (size_t)(first_image + j * mb) * N;
        t0 = MPI_Wtime();
        mimae_backward(m, s->dcand_total + row * E, s->dcand_total + GN * E + row * D);
        add_since(backward, t0);
        tree_sum_push(&s->grad_tree, m->grad_mem);
    }
    meet_before_collective(s, t);
    t0 = MPI_Wtime();
    tree_sum_finish(&s->grad_tree, m->grad_mem, s->comm);
    add_since(comm, t0);
}

/* The fast path: one micro-batch per rank, features gathered, MI gradients
 * reduce-scattered, gradients allreduced in buckets while the backward
 * runs. */
static void run_fast(global_step_t *s, const float *images, const int64_t *indices,
                     uint64_t seed, uint64_t epoch, mimae_losses_t *loss,
                     global_step_timing_t *t)
{
    mimae_model_t *m = s->model;
    const int N = m->cfg.num_masks;
    const size_t E = m->dims.proj_dim, D = (size_t)m->cfg.enc_dim;
    const size_t seq = (size_t)s->per_rank * N, GN = (size_t)s->G * N, row = (size_t)s->rank * seq;
    double *comm = t ? &t->comm_s : NULL, *backward = t ? &t->backward_s : NULL;

    forward_micro_batch(s, 0, images, indices, seed, epoch, t);
    memcpy(s->cand_u + row * E, m->acts.u, seq * E * sizeof(float));
    memcpy(s->cand_z + row * D, m->acts.z, seq * D * sizeof(float));
    gather_features(s, seq, t);
    memset(s->dcand, 0, GN * (E + D) * sizeof(float));
    mimae_mi_losses(&m->cfg, &m->dims, s->cand_u, s->cand_z, m->acts.mu, m->acts.lv, s->G,
                    s->rank * s->per_rank, s->per_rank, s->dcand, s->dcand + GN * E,
                    m->acts.mi_scratch, loss);
    mimae_local_losses(m, s->G, loss);
    double t0 = MPI_Wtime();
    dist_reduce_scatter_rows(s->dcand, m->acts.du, seq * E, s->comm);
    dist_reduce_scatter_rows(s->dcand + GN * E, m->acts.dz, seq * D, s->comm);
    add_since(comm, t0);
    m->grads_ready = grad_reduce_ready;
    m->grads_ready_ctx = &s->fast;
    t0 = MPI_Wtime();
    mimae_backward(m, m->acts.du, m->acts.dz);
    add_since(backward, t0);
    meet_before_collective(s, t);
    grad_reduce_finish(&s->fast);
    if (t) t->comm_s += s->fast.wait_seconds;
}

void global_step_run(global_step_t *s, const float *images, const int64_t *indices, uint64_t seed,
                     uint64_t epoch, mimae_losses_t *loss, global_step_timing_t *timing)
{
    if (s->deterministic)
        run_deterministic(s, images, indices, seed, epoch, loss, timing);
    else
        run_fast(s, images, indices, seed, epoch, loss, timing);
}
