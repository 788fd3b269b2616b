/* mimae_dist's command line:
 *
 *   mimae_dist DESCRIPTOR.ini [--set section.key=value]... [--task ID]
 *   mimae_dist eval RUN_DIR/checkpoints/ckpt-N.h5 [--set section.key=value]... */
#ifndef MIMAE_RUN_DIST_ARGS_H
#define MIMAE_RUN_DIST_ARGS_H

#include <stddef.h>

#define DIST_ARGS_MAX_OVERRIDES 64

typedef struct {
    const char *eval_checkpoint; /* `mimae_dist eval CHECKPOINT`: evaluate only */
    const char *descriptor;
    const char *overrides[DIST_ARGS_MAX_OVERRIDES];
    int n_overrides;
    long task; /* -1: no sweep task */
} dist_args_t;

/* The --help text. */
extern const char *const dist_args_usage;

/* 1 when argv asks for --help (or -h) anywhere. */
int dist_args_want_help(int argc, char **argv);

/* 0, or -1 with a one-line message. */
int dist_args_parse(int argc, char **argv, dist_args_t *a, char *err, size_t errlen);

#endif
