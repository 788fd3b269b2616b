/* The gradients of one global batch across ranks, as mimae_dist trains:
 * each rank runs its images forward, the MI features of all ranks are
 * gathered (InfoNCE and CLUB need every image of the global batch), the MI
 * gradients are summed back to their owners, each rank runs its backward and
 * the parameter gradients are summed over ranks, so that every rank ends
 * with the same gradient of the whole batch in model->grad_mem.
 *
 * Two reductions: deterministic (micro-batches summed in a fixed tree,
 * dist/tree_sum.h: bitwise the same on any rank count, micro-batches
 * recomputed when a rank holds more than one) and fast (one micro-batch per
 * rank, gradients allreduced in buckets while the backward runs,
 * dist/grad_reduce.h). The losses, the update and the checks stay with the
 * caller. */
#ifndef MIMAE_DIST_GLOBAL_STEP_H
#define MIMAE_DIST_GLOBAL_STEP_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/objective/objective.h"
#include "core/vit/model.h"
#include "dist/grad_reduce.h"
#include "dist/tree_sum.h"

typedef struct {
    mimae_model_t *model; /* sized for `mb` images */
    MPI_Comm comm;
    int rank, deterministic;
    int G, per_rank, mb, k; /* global batch, images per rank, micro-batch, micro-batches per rank */
    size_t image_floats;    /* H*W*C */
    float *cand_u, *cand_z;    /* (G*N, E), (G*N, D) gathered features */
    float *dcand, *dcand_total; /* (G*N*(E+D)) one vector: u part, then z part */
    float *mu_save, *lv_save;  /* (per_rank*N, D) */
    tree_sum_t grad_tree, dcand_tree;
    grad_reduce_t fast;
} global_step_t;

/* Optional instrumentation (bench/scaling): seconds, accumulated. With
 * `barriers`, the ranks meet at a barrier before each collective whose wait
 * is counted as imbalance, so that comm_s is the collectives' own time. */
typedef struct {
    int barriers;
    double forward_s, backward_s, comm_s, imbalance_s;
} global_step_timing_t;

/* Buffers for per_rank images a rank in micro-batches of mb (mb divides
 * per_rank; the fast reduction needs mb == per_rank). 0, or -1 when out of
 * memory. */
int global_step_init(global_step_t *s, mimae_model_t *model, MPI_Comm comm, int G, int per_rank,
                     int mb, int deterministic, size_t image_floats);
void global_step_free(global_step_t *s);

/* One global batch: images (per_rank, H, W, C) of this rank, their data-set
 * indices (the masks follow seed, epoch and the index); this rank's share of
 * the loss terms in *loss (dist_sum_doubles makes them the batch's). timing
 * may be NULL. */
void global_step_run(global_step_t *s, const float *images, const int64_t *indices, uint64_t seed,
                     uint64_t epoch, mimae_losses_t *loss, global_step_timing_t *timing);

#endif
