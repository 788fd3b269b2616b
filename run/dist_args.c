#include "run/dist_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const dist_args_usage =
    "usage: mpirun -n RANKS mimae_dist DESCRIPTOR.ini [--set section.key=value]... [--task ID]\n"
    "       mpirun -n RANKS mimae_dist eval RUN_DIR/checkpoints/ckpt-N.h5 [--set section.key=value]...\n"
    "\n"
    "Pre-trains the encoder described by DESCRIPTOR.ini (keys: README.md, 'Descriptor\n"
    "reference') with MI-MAE or MAE, resuming from the newest valid checkpoint in\n"
    "run.out_dir/checkpoints when there is one, and writes run.out_dir/results.h5.\n"
    "\n"
    "  --set section.key=value   override one descriptor key (repeatable)\n"
    "  --task ID                 run task ID of the descriptor's [sweep] or arms (job\n"
    "                            arrays; `mimae sweep plan` lists them)\n"
    "  eval CHECKPOINT           evaluate a checkpoint with the eval.* settings of\n"
    "                            RUN_DIR/descriptor.ini; metrics go to RUN_DIR/results.h5\n"
    "  --help                    this text\n"
    "\n"
    "Under Slurm start it with `srun --mpi=pmix` (srun without an MPI plugin is refused).\n"
    "Exit status: 0 done, 2 bad input, 3 stopped by SIGUSR1/SIGTERM after a checkpoint\n"
    "(requeue to resume), 4 non-finite loss (last good checkpoint kept), 1 other errors.\n";

int dist_args_want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

int dist_args_parse(int argc, char **argv, dist_args_t *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->task = -1;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "eval") == 0) {
        if (argc < 3 || argv[2][0] == '-')
            return snprintf(err, errlen, "eval: missing CHECKPOINT (see --help)"), -1;
        a->eval_checkpoint = argv[2];
        first = 3;
    }
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--set") == 0 || strcmp(s, "--task") == 0) {
            if (i + 1 >= argc) return snprintf(err, errlen, "%s needs a value", s), -1;
            const char *v = argv[++i];
            if (s[2] == 's') {
                if (a->n_overrides == DIST_ARGS_MAX_OVERRIDES)
                    return snprintf(err, errlen, "more than %d --set options", DIST_ARGS_MAX_OVERRIDES), -1;
                a->overrides[a->n_overrides++] = v;
            } else {
                char *end = NULL;
                a->task = strtol(v, &end, 10);
                if (end == v || *end || a->task < 0)
                    return snprintf(err, errlen, "--task %s: expected an integer >= 0", v), -1;
            }
        } else if (s[0] == '-') {
            return snprintf(err, errlen, "unknown option %s (see --help)", s), -1;
        } else if (!a->descriptor && !a->eval_checkpoint) {
            a->descriptor = s;
        } else {
            return snprintf(err, errlen, "unexpected argument '%s' (one descriptor per run)", s), -1;
        }
    }
    if (a->eval_checkpoint && a->task >= 0)
        return snprintf(err, errlen, "eval: --task does not apply (give the task's checkpoint)"), -1;
    if (!a->descriptor && !a->eval_checkpoint)
        return snprintf(err, errlen, "missing DESCRIPTOR.ini (see --help)"), -1;
    return 0;
}
