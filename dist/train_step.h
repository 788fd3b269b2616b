/* One MI-MAE training step over the ranks of a communicator, the only place
 * the step is composed: mimae_dist, the tests (the PyTorch reference among
 * them) and the benchmarks all run it, one rank being its plain case.
 *
 *   1. each rank runs its images forward (core/objective/objective.h);
 *   2. the MI features of all ranks are gathered: InfoNCE and CLUB compare
 *      every image of the global batch;
 *   3. the four loss terms; the MI gradients are summed back to their owners;
 *   4. each rank's backward; the parameter gradients summed over the ranks;
 *   5. the loss terms summed, the gradient norm, the non-finite guard;
 *   6. AdamW on the model and on Q (core/optim/update.h).
 *
 * Two reductions: deterministic (micro-batches summed in a fixed tree,
 * dist/tree_sum.h: bitwise the same on any rank count; a rank holding more
 * than one micro-batch runs them as one forward and one backward, the model
 * summing their parameter gradients in the same tree, core/kernels/
 * micro_batches.h, or, when plan.memory_budget cannot hold their
 * activations, runs each micro-batch's forward twice, before the gradients
 * are gathered and before its own backward) and fast (one micro-batch per
 * rank, gradients allreduced in buckets while the backward runs,
 * dist/grad_reduce.h).
 *
 * The step sees the model only through objective.h's functions and
 * mimae_step_shape / mimae_features / mimae_gradients. Nothing is allocated
 * after train_step_init. */
#ifndef MIMAE_DIST_TRAIN_STEP_H
#define MIMAE_DIST_TRAIN_STEP_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/optim/update.h"
#include "core/vit/model.h"
#include "dist/grad_reduce.h"
#include "dist/tree_sum.h"

/* The values of train.reduction. */
typedef enum { STEP_DETERMINISTIC = 0, STEP_FAST = 1, STEP_AUTO = 2 } step_reduction_t;

/* How a global batch splits over ranks and micro-batches. */
typedef struct {
    int global_batch;   /* G */
    int per_rank;       /* G / ranks */
    int micro_batch;    /* images per forward/backward */
    int micro_batches;  /* per rank */
    int deterministic;
    size_t memory_budget; /* bytes the model may take on a rank; 0: no limit */
    int bf16;             /* train.precision = bf16: the linear layers' products */
} step_plan_t;

/* The plan for G images on `ranks` ranks: STEP_AUTO is deterministic up to
 * 8 ranks; micro_batch 0 picks the default (deterministic: G split into up
 * to 8 micro-batches; fast: the rank's whole share). 0, or -1 with a
 * one-line message naming train.* and the fix. */
int step_plan_make(step_plan_t *p, int G, int ranks, step_reduction_t reduction,
                   int micro_batch, char *err, size_t errlen);

/* Where a step's time went (bench/scaling): seconds, accumulated over steps
 * until the caller resets them. With `barriers` (the caller's choice), the
 * ranks meet at a barrier before each collective, whose wait is counted as
 * imbalance, so that comm_s is the collectives' own time. */
typedef struct {
    int barriers;
    double forward_s, backward_s, comm_s, imbalance_s;
} step_timing_t;

/* A hook between the gradient reduction and the guard (fault injection:
 * run/faults.h); called on every rank with the reduced gradient vector. */
typedef void (*step_gradient_hook_fn)(void *ctx, float *grads);

typedef struct {
    mimae_model_t *model; /* sized for plan.micro_batch images */
    MPI_Comm comm;
    int rank;
    step_plan_t plan;
    mimae_step_shape_t shape;
    int keeps_activations;      /* 1: the model holds all the rank's micro-batches; 0: one,
                                   each forward recomputed */
    float *cand_u, *cand_z;     /* (G*N, E), (G*N, D) gathered features */
    float *dcand, *dcand_total; /* (G*N*(E+D)) one vector: u part, then z part */
    float *mu_save, *lv_save;   /* (per_rank*N, D) */
    float *du, *dz;             /* this rank's feature gradients (fast path) */
    tree_sum_t grad_tree, dcand_tree;
    grad_reduce_t fast;
    step_timing_t timing;
    step_gradient_hook_fn gradient_hook; /* NULL: none */
    void *gradient_hook_ctx;
    bf16_products_t *bf16;      /* plan.bf16: the products' plans (owned); else NULL */
    char bf16_isa[32];          /* the ISA oneDNN uses for them */
} train_step_t;

/* Buffers for the plan on comm; model is created for plan->micro_batch
 * images. With several micro-batches per rank (deterministic), the model is
 * made to hold all of them (mimae_model_hold_micro_batches) when
 * plan->memory_budget allows. With plan->bf16 the model's products run in
 * bf16 (mimae_model_prepare_products). 0, or -1 with a message (out of
 * memory; a CPU without bf16 instructions, whose one line names the missing
 * instruction set). */
int train_step_init(train_step_t *s, mimae_model_t *model, MPI_Comm comm,
                    const step_plan_t *plan, char *err, size_t errlen);
void train_step_free(train_step_t *s);

/* The plain case: the model's whole global batch on this process
 * (model->batch == global_batch) as one micro-batch, on MPI_COMM_SELF; MPI
 * must be initialised (a singleton needs no mpirun). */
int train_step_init_single(train_step_t *s, mimae_model_t *model, char *err, size_t errlen);

/* One step on this rank's per_rank images (H, W, C floats, augmented and
 * normalised). indices: their data-set indices, from which the masks follow
 * (seed, epoch, index); NULL keeps the masks the caller set in the model
 * (one micro-batch per rank only). On 0, stats hold the global batch's loss
 * terms, gradient norms and the lr, and the model has been updated (on
 * every rank alike). -1 (on every rank) when a loss, gradient or update is
 * not finite: the message names the step and the worst tensor, and the
 * parameters are untouched. Collective over the step's communicator. */
int train_step_run(train_step_t *s, const float *images, const int64_t *indices, uint64_t seed,
                   uint64_t epoch, mimae_step_stats_t *stats, char *err, size_t errlen);

#endif
