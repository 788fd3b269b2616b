#include "dist/train_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels/profile.h"
#include "dist/collectives.h"
#include "dist/mpi_check.h"

int step_plan_make(step_plan_t *p, int G, int ranks, step_reduction_t reduction,
                   int micro_batch, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (G % ranks) {
        snprintf(err, errlen, "train.global_batch = %d is not divisible by the %d ranks: use a "
                 "multiple of %d or another rank count", G, ranks, ranks);
        return -1;
    }
    p->global_batch = G;
    p->per_rank = G / ranks;
    p->deterministic = reduction == STEP_AUTO ? ranks <= 8 : reduction == STEP_DETERMINISTIC;
    if (!p->deterministic) {
        if (micro_batch && micro_batch != p->per_rank) {
            snprintf(err, errlen, "train.micro_batch = %d: the fast reduction runs each rank's %d "
                     "images as one micro-batch; set 0 or %d", micro_batch, p->per_rank,
                     p->per_rank);
            return -1;
        }
        p->micro_batch = p->per_rank;
        p->micro_batches = 1;
        return 0;
    }
    /* deterministic: M micro-batches of mb images, a power of two, R | M */
    int mb = micro_batch;
    if (!mb) { /* default: up to 8 micro-batches, so up to 8 ranks can share the work */
        int M = 8;
        while (G % M) M /= 2;
        mb = G / M;
    }
    const int M = G / mb;
    if (G % mb || (M & (M - 1)) || (ranks & (ranks - 1)) || M % ranks) {
        snprintf(err, errlen, "train.reduction = deterministic splits the global batch %d into "
                 "%d micro-batches of %d; that count must be a power of two divisible by the "
                 "%d ranks: use 1, 2, 4 or 8 ranks, set train.micro_batch, or use "
                 "train.reduction = fast", G, M, mb, ranks);
        return -1;
    }
    p->micro_batch = mb;
    p->micro_batches = M / ranks;
    return 0;
}

int train_step_init(train_step_t *s, mimae_model_t *model, MPI_Comm comm,
                    const step_plan_t *plan, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->model = model, s->comm = comm, s->plan = *plan;
    s->shape = mimae_step_shape(model);
    MPI_CHECK(MPI_Comm_rank(comm, &s->rank));
    const size_t N = (size_t)s->shape.masks, GN = (size_t)plan->global_batch * N;
    const size_t E = s->shape.feature_dim, D = s->shape.latent_dim;
    const size_t rank_rows = (size_t)plan->per_rank * N;
    s->cand_u = malloc(GN * E * sizeof(float));
    s->cand_z = malloc(GN * D * sizeof(float));
    s->dcand = malloc(GN * (E + D) * sizeof(float));
    s->dcand_total = malloc(GN * (E + D) * sizeof(float));
    s->mu_save = malloc(rank_rows * D * sizeof(float));
    s->lv_save = malloc(rank_rows * D * sizeof(float));
    s->du = malloc(rank_rows * E * sizeof(float));
    s->dz = malloc(rank_rows * D * sizeof(float));
    int failed = !s->cand_u || !s->cand_z || !s->dcand || !s->dcand_total || !s->mu_save ||
                 !s->lv_save || !s->du || !s->dz;
    /* Every micro-batch's activations kept, or (under a memory budget that
     * cannot hold them) one micro-batch's, each forward run again before its
     * backward. */
    const int k = plan->micro_batches;
    s->keeps_activations = k == 1 || plan->memory_budget == 0 ||
                           mimae_model_state_bytes(model) +
                                   (size_t)k * mimae_model_activation_bytes(model) <=
                               plan->memory_budget;
    /* deterministic: the backward forms its gradients the one tiled way,
     * whether it holds all k micro-batches or one of them */
    if (!failed && plan->deterministic &&
        mimae_model_hold_micro_batches(model, s->keeps_activations ? k : 1, err, errlen))
        return -1;
    if (!failed && plan->bf16 &&
        (!(s->bf16 = bf16_products_create(s->bf16_isa, sizeof s->bf16_isa, err, errlen)) ||
         mimae_model_mirror_weights(model, s->bf16, err, errlen)))
        return -1;
    if (!failed && mimae_model_prepare_products(model, s->bf16, err, errlen)) return -1;
    s->shape = mimae_step_shape(model);
    /* kept: one backward a step forms the rank's subtree itself, in the
     * model's gradient (no leaf buffer) */
    const int leaves = s->keeps_activations ? 0 : k;
    if (!failed && plan->deterministic)
        failed = tree_sum_init(&s->grad_tree, s->shape.grad_floats, leaves) ||
                 tree_sum_init(&s->dcand_tree, GN * (E + D), plan->micro_batches);
    else if (!failed) /* buckets of ~4 MiB: big enough for bandwidth, small enough to overlap */
        failed = grad_reduce_init(&s->fast, mimae_gradients(model), 1u << 20,
                                  s->shape.grad_ranges + 16, comm) != 0;
    if (failed) {
        snprintf(err, errlen, "out of memory for the step buffers (global batch %d)",
                 plan->global_batch);
        return -1;
    }
    return 0;
}

int train_step_init_single(train_step_t *s, mimae_model_t *model, char *err, size_t errlen)
{
    const mimae_step_shape_t shape = mimae_step_shape(model);
    const int G = shape.global_batch;
    if (shape.images != G)
        return snprintf(err, errlen, "a single-process step needs the model sized for the whole "
                        "global batch (%d images), not %d", G, shape.images), -1;
    step_plan_t plan;
    if (step_plan_make(&plan, G, 1, STEP_FAST, G, err, errlen)) return -1;
    return train_step_init(s, model, MPI_COMM_SELF, &plan, err, errlen);
}

void train_step_free(train_step_t *s)
{
    bf16_products_free(s->bf16);
    free(s->cand_u);
    free(s->cand_z);
    free(s->dcand);
    free(s->dcand_total);
    free(s->mu_save);
    free(s->lv_save);
    free(s->du);
    free(s->dz);
    if (s->plan.deterministic) {
        tree_sum_free(&s->grad_tree);
        tree_sum_free(&s->dcand_tree);
    } else {
        grad_reduce_free(&s->fast);
    }
    memset(s, 0, sizeof *s);
}

/* ---- instrumentation: MPI_Wtime is cheap, so the step always keeps its
 * timing (s->timing). */

/* A collective since t0: into the timing and the phase profile. */
static void comm_done(train_step_t *s, double t0)
{
    const double dt = MPI_Wtime() - t0;
    s->timing.comm_s += dt;
    if (profile_on) profile_add(PROFILE_COMM, dt);
}

static void meet_before_collective(train_step_t *s)
{
    if (!s->timing.barriers) return;
    const double t0 = MPI_Wtime();
    MPI_CHECK(MPI_Barrier(s->comm));
    s->timing.imbalance_s += MPI_Wtime() - t0;
}

/* The forward of the images the model holds from micro-batch j on: all the
 * rank's (j = 0) when it keeps every micro-batch's activations, else
 * micro-batch j's. Their masks follow from indices unless the caller set
 * them. */
static void forward_from(train_step_t *s, int j, const float *images, const int64_t *indices,
                         uint64_t seed, uint64_t epoch)
{
    const double t0 = MPI_Wtime();
    const size_t first = (size_t)j * s->plan.micro_batch;
    if (indices) mimae_sample_masks(s->model, seed, epoch, (const uint64_t *)(indices + first));
    mimae_forward(s->model, images + first * s->shape.image_floats);
    s->timing.forward_s += MPI_Wtime() - t0;
}

/* The features of that forward into the candidate arrays at their global
 * rows, and their mu and logvar into this rank's rows. */
static void keep_features(train_step_t *s, int j)
{
    const size_t E = s->shape.feature_dim, D = s->shape.latent_dim;
    const size_t rows = (size_t)s->shape.images * s->shape.masks;
    const size_t mine = (size_t)j * s->plan.micro_batch * s->shape.masks;
    const size_t row = (size_t)s->rank * s->plan.per_rank * s->shape.masks + mine;
    const mimae_features_t f = mimae_features(s->model);
    memcpy(s->cand_u + row * E, f.u, rows * E * sizeof(float));
    memcpy(s->cand_z + row * D, f.z, rows * D * sizeof(float));
    memcpy(s->mu_save + mine * D, f.mu, rows * D * sizeof(float));
    memcpy(s->lv_save + mine * D, f.logvar, rows * D * sizeof(float));
}

/* Every rank's features gathered into cand_u/cand_z. */
static void gather_features(train_step_t *s)
{
    const size_t rows = (size_t)s->plan.per_rank * s->shape.masks;
    meet_before_collective(s);
    const double t0 = MPI_Wtime();
    dist_allgather_rows(s->cand_u, rows * s->shape.feature_dim, s->comm);
    dist_allgather_rows(s->cand_z, rows * s->shape.latent_dim, s->comm);
    comm_done(s, t0);
}

/* L_max and L_min of micro-batch j against the whole batch; their
 * gradients w.r.t. every candidate accumulate into dcand (zeroed here). */
static void mi_losses(train_step_t *s, int j, mimae_losses_t *part)
{
    const size_t GN = (size_t)s->plan.global_batch * s->shape.masks;
    const size_t rows = (size_t)s->plan.micro_batch * s->shape.masks, D = s->shape.latent_dim;
    const int first_image = s->rank * s->plan.per_rank + j * s->plan.micro_batch;
    memset(s->dcand, 0, GN * (s->shape.feature_dim + D) * sizeof(float));
    mimae_batch_mi_losses(s->model, s->cand_u, s->cand_z, s->mu_save + (size_t)j * rows * D,
                          s->lv_save + (size_t)j * rows * D, s->plan.global_batch, first_image,
                          s->plan.micro_batch, s->dcand, s->dcand + GN * s->shape.feature_dim,
                          part);
}

/* The backward of the images the model holds from micro-batch j on, from
 * the summed MI-term gradients of their rows: into the gradient tree's next
 * leaf, or, when the model holds all the rank's micro-batches (and sums
 * them itself), into the model's own gradient, the rank's whole subtree. */
static void backward_into_tree(train_step_t *s, int j, mimae_losses_t *loss)
{
    mimae_model_t *m = s->model;
    const size_t E = s->shape.feature_dim, D = s->shape.latent_dim;
    const size_t GN = (size_t)s->plan.global_batch * s->shape.masks;
    mimae_losses_t part;
    mimae_local_losses(m, s->plan.global_batch, &part);
    loss->rec += part.rec;
    loss->q += part.q;
    const size_t row = ((size_t)s->rank * s->plan.per_rank + (size_t)j * s->plan.micro_batch) *
                       s->shape.masks;
    if (!s->keeps_activations) mimae_model_use_gradient_block(m, tree_sum_leaf(&s->grad_tree));
    double t0 = MPI_Wtime();
    mimae_backward(m, s->dcand_total + row * E, s->dcand_total + GN * E + row * D);
    s->timing.backward_s += MPI_Wtime() - t0;
    if (s->keeps_activations) return;
    t0 = MPI_Wtime();
    tree_sum_add_leaf(&s->grad_tree);
    if (profile_on) profile_add(PROFILE_COMM, MPI_Wtime() - t0);
}

/* The deterministic path: the features of every micro-batch, gathered; the
 * MI-term gradients summed over micro-batches in tree order; then the
 * gradient, each micro-batch's in the same tree. With every micro-batch's
 * activations kept, one forward and one backward cover them all (the model
 * sums the micro-batches' parameter gradients itself); otherwise each
 * micro-batch's forward runs again before its own backward. */
static void run_deterministic(train_step_t *s, const float *images, const int64_t *indices,
                              uint64_t seed, uint64_t epoch, mimae_losses_t *loss)
{
    const int k = s->plan.micro_batches, passes = s->keeps_activations ? 1 : k;
    mimae_losses_t part;

    for (int j = 0; j < passes; j++) {
        forward_from(s, j, images, indices, seed, epoch);
        keep_features(s, j);
    }
    gather_features(s);

    tree_sum_reset(&s->dcand_tree);
    for (int j = 0; j < k; j++) {
        mi_losses(s, j, &part);
        loss->max += part.max;
        loss->min += part.min;
        tree_sum_push(&s->dcand_tree, s->dcand);
    }
    double t0 = MPI_Wtime();
    tree_sum_finish(&s->dcand_tree, s->dcand_total, s->comm);
    comm_done(s, t0);

    tree_sum_reset(&s->grad_tree);
    for (int j = 0; j < passes; j++) {
        if (passes > 1) forward_from(s, j, images, indices, seed, epoch);
        backward_into_tree(s, j, loss);
    }
    mimae_model_use_gradient_block(s->model, NULL);
    meet_before_collective(s);
    t0 = MPI_Wtime();
    if (s->keeps_activations)
        tree_sum_finish_in_place(&s->grad_tree, mimae_gradients(s->model), s->comm);
    else
        tree_sum_finish(&s->grad_tree, mimae_gradients(s->model), s->comm);
    comm_done(s, t0);
}

/* The fast path: one micro-batch per rank, features gathered, MI gradients
 * reduce-scattered, gradients allreduced in buckets while the backward
 * runs. */
static void run_fast(train_step_t *s, const float *images, const int64_t *indices,
                     uint64_t seed, uint64_t epoch, mimae_losses_t *loss)
{
    mimae_model_t *m = s->model;
    const size_t E = s->shape.feature_dim, D = s->shape.latent_dim;
    const size_t rows = (size_t)s->plan.per_rank * s->shape.masks;
    const size_t GN = (size_t)s->plan.global_batch * s->shape.masks;

    forward_from(s, 0, images, indices, seed, epoch);
    keep_features(s, 0);
    gather_features(s);
    mi_losses(s, 0, loss);
    mimae_local_losses(m, s->plan.global_batch, loss);
    double t0 = MPI_Wtime();
    dist_reduce_scatter_rows(s->dcand, s->du, rows * E, s->comm);
    dist_reduce_scatter_rows(s->dcand + GN * E, s->dz, rows * D, s->comm);
    comm_done(s, t0);
    mimae_listen_grads(m, grad_reduce_ready, &s->fast);
    t0 = MPI_Wtime();
    mimae_backward(m, s->du, s->dz);
    s->timing.backward_s += MPI_Wtime() - t0;
    mimae_listen_grads(m, NULL, NULL);
    meet_before_collective(s);
    grad_reduce_finish(&s->fast);
    s->timing.comm_s += s->fast.wait_seconds;
    if (profile_on) profile_add(PROFILE_COMM, s->fast.wait_seconds);
}

int train_step_run(train_step_t *s, const float *images, const int64_t *indices, uint64_t seed,
                   uint64_t epoch, mimae_step_stats_t *stats, char *err, size_t errlen)
{
    mimae_losses_t loss = {0};
    if (s->bf16) { /* the weights' bf16 copy, unless the last update wrote it */
        const double t0 = profile_start();
        mimae_model_refresh_bf16_weights(s->model, s->bf16);
        profile_stop(PROFILE_ADAMW, t0);
    }
    if (s->plan.deterministic)
        run_deterministic(s, images, indices, seed, epoch, &loss);
    else
        run_fast(s, images, indices, seed, epoch, &loss);
    /* each rank holds its share of every term: the batch's is their sum */
    double terms[4] = {loss.rec, loss.max, loss.min, loss.q};
    const double t0 = MPI_Wtime();
    dist_sum_doubles(terms, 4, s->comm);
    comm_done(s, t0);
    loss.rec = terms[0], loss.max = terms[1], loss.min = terms[2], loss.q = terms[3];
    if (s->gradient_hook) s->gradient_hook(s->gradient_hook_ctx, mimae_gradients(s->model));
    if (s->bf16) { /* a failed oneDNN product (kept by the void kernels) stops every rank */
        const char *failed = bf16_products_error(s->bf16);
        if (failed) snprintf(err, errlen, "%s", failed);
        if (!dist_all_ok(failed == NULL, s->comm)) {
            if (!failed) snprintf(err, errlen, "a bf16 product failed on another rank");
            return -1;
        }
    }
    /* every rank has the same losses and gradient, so all decide alike */
    return mimae_finish_step(s->model, &loss, stats, err, errlen);
}
