/* Checkpoints in HDF5: every parameter by name and shape (model and Q), the
 * AdamW moments of both, the training position, the full config and a
 * checksum of all tensors. Written to a temporary name, fsynced, renamed, so
 * the newest file in a directory is always complete; a truncated or corrupt
 * one is reported and skipped, never loaded.
 *
 * Layout (format "mimae-checkpoint", version 1):
 *   /params/<name>, /adam_m/<name>, /adam_v/<name>   float32, the table's shape
 *     (<name> as in core/params.c, "q.*" for Q)
 *   root attributes: format, format_version, step, epoch, epoch_step, seed,
 *     checksum (CRC-32 of params, then adam_m, then adam_v, model before Q,
 *     table order), and "config.<section>.<key>" for every field of
 *     core/config_fields.h (numbers typed, enums as strings). */
#ifndef MIMAE_IO_CHECKPOINT_H
#define MIMAE_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"

#define CHECKPOINT_FORMAT "mimae-checkpoint"
#define CHECKPOINT_FORMAT_VERSION 1

/* Where training stands. The data order, masks and augmentation are
 * functions of (seed, epoch, image), so this is all the RNG state there is. */
typedef struct {
    long step;        /* optimiser updates done (== model->step) */
    long epoch;       /* epoch in progress */
    long epoch_step;  /* updates done inside that epoch */
    uint64_t seed;
} train_state_t;

int checkpoint_save(const char *path, const mimae_model_t *m, const train_state_t *st,
                    char *err, size_t errlen);

/* Verifies format, version, config (against m->cfg; the message names the
 * first differing field), every name and shape, and the checksum before
 * touching the model; then loads parameters, moments and m->step. */
int checkpoint_load(const char *path, mimae_model_t *m, train_state_t *st, char *err,
                    size_t errlen);

/* Just the config stored in a checkpoint (to build a model for it). */
int checkpoint_read_config(const char *path, mimae_config_t *cfg, char *err, size_t errlen);

/* Full verification without a model (checksum included). */
int checkpoint_verify(const char *path, char *err, size_t errlen);

/* DIR/ckpt-<step, 10 digits>.h5 */
void checkpoint_path(char *out, size_t len, const char *dir, long step);

/* The newest checkpoint in dir that verifies; each one skipped is reported on
 * stderr with its reason. Returns 1 and fills path when found, 0 when there
 * is none, -1 on an error (dir unreadable). */
int checkpoint_find_latest(const char *dir, char *path, size_t len, char *err, size_t errlen);

/* Removes all but the newest `keep` checkpoints in dir. */
int checkpoint_prune(const char *dir, int keep, char *err, size_t errlen);

#endif
