/* Checkpoints in HDF5: every parameter by name and shape (model and Q), the
 * AdamW moments of both, the training position, the full config and a
 * checksum of all tensors. Written to a temporary name, fsynced, renamed, so
 * the newest file in a directory is always complete; a truncated or corrupt
 * one is reported and skipped, never loaded.
 *
 * Layout (format "mimae-checkpoint", version 1):
 *   /params/<name>, /adam_m/<name>, /adam_v/<name>   float32 (stored
 *     little-endian, contiguous), the table's shape: ndim 1 or 2
 *     (<name> as in core/vit/params.c, "q.*" for Q); the groups track link
 *     creation order, so h5py lists the tensors in table order
 *   root attributes: format, format_version (int32), step, epoch, epoch_step
 *     (int64), seed (uint64), checksum (uint32: zlib CRC-32 over the
 *     little-endian float32 bytes of params, then adam_m, then adam_v, model
 *     before Q, table order), and "config.<section>.<key>" for every field of
 *     core/config/config_fields.h (int32/int64/float32/float64, enums as strings).
 *
 * Errors are one line, "<path>: <what>: <what to do>". Saving builds the file
 * in memory (HDF5 never writes to disk itself: an I/O error inside HDF5 1.10
 * leaves the library unable to close the file), so the writing process needs
 * memory for one copy of the file; loading reads into temporary blocks of the
 * same size. */
#ifndef MIMAE_IO_CHECKPOINT_H
#define MIMAE_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/vit/model.h"

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

/* Writes PATH.tmp-<pid>-<random>, fsyncs it, renames it onto PATH and fsyncs the
 * directory; on failure the temporary is removed and PATH is as it was.
 * st->step must equal m->step. */
int checkpoint_save(const char *path, const mimae_model_t *m, const train_state_t *st,
                    char *err, size_t errlen);

/* Verifies format, version, config (against m->cfg, every field; the message
 * names the first differing field and both values), every name and shape,
 * and the checksum before touching the model; then loads parameters,
 * moments and m->step. On failure the model is untouched. st may be NULL. */
int checkpoint_load(const char *path, mimae_model_t *m, train_state_t *st, char *err,
                    size_t errlen);

/* Just the config stored in a checkpoint (to build a model for it); format,
 * version and the config itself (core/config/config_limits.h, mimae_config_validate)
 * are checked, tensors and checksum are not. */
int checkpoint_read_config(const char *path, mimae_config_t *cfg, char *err, size_t errlen);

/* Full verification without a model: the header as checkpoint_read_config,
 * a file at least as large as its tensors, every name and shape, the
 * checksum, and every value finite (training never saves a non-finite one). */
int checkpoint_verify(const char *path, char *err, size_t errlen);

/* DIR/ckpt-<step, 10 digits>.h5 */
void checkpoint_path(char *out, size_t len, const char *dir, long step);

/* The newest checkpoint in dir that verifies (checkpoint_verify, and the
 * stored step equals the one in the name); candidates are exactly
 * "ckpt-" + 10 digits + ".h5" (temporaries and other names are ignored),
 * newest step first. Each one skipped is reported on stderr as
 * "mimae: skipping <path>: <reason>". Returns 1 and fills path when found,
 * 0 when there is none, -1 on an error (dir missing or unreadable). */
int checkpoint_find_latest(const char *dir, char *path, size_t len, char *err, size_t errlen);

/* Keeps the newest `keep` (>= 1) checkpoints in dir that are this run's and
 * whole, and removes every checkpoint older than the oldest of them. This
 * run's and whole: named for a step <= newest->step, storing that step,
 * newest->seed and config cfg, and passing checkpoint_verify. Files that
 * fail that (junk, another run's, a later step) never count toward `keep`
 * and are not removed unless older than the oldest kept; with fewer than
 * `keep` such checkpoints nothing is removed. So nothing verified is ever
 * deleted to make room for something unverified. Other names are left
 * alone. Verifying reads the newest `keep` checkpoints back. */
int checkpoint_prune(const char *dir, int keep, const mimae_config_t *cfg,
                     const train_state_t *newest, char *err, size_t errlen);

#endif
