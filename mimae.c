/* mimae: data set import, file inspection (and, later, sweeps and reports).
 * Every error is one line on stderr and exit status 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments/descriptor.h"
#include "experiments/report.h"
#include "experiments/sweep_cmd.h"
#include "io/bounded_read.h"
#include "io/cifar_import.h"
#include "io/folder_import.h"
#include "io/idx_import.h"
#include "io/inspect.h"
#include "io/synthetic.h"
#include "io/text_escape.h"
#include "run/data_comm.h"
#include "run/launcher.h"
#include "run/mpi_launch.h"

#define EXIT_BAD_INPUT 2
#define EXIT_WRITE_FAILED 1

static const char *usage_main =
    "usage: mimae COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  data fashion-mnist OUT_DIR [--src DIR]   import Debian's Fashion-MNIST to HDF5\n"
    "  data cifar10 SRC OUT_DIR                 import the CIFAR-10 binary version\n"
    "  data folder SRC OUT_DIR --size S         import class-per-folder JPEG/PNG images\n"
    "  data synthetic OUT_DIR [--n N] [--size HxWxC] [--classes K] [--seed S]\n"
    "                                           make a labelled shapes data set\n"
    "       (every data import takes --shards K; `mpirun -n R mimae data ... --shards K`\n"
    "        imports on R ranks at once)\n"
    "  inspect FILE                             what a data set, checkpoint or results file holds\n"
    "  keys                                     every descriptor key, its default and meaning\n"
    "  sweep plan EXP.ini [--set k=v]...        the task table of a descriptor's [sweep] or arms\n"
    "  sweep submit EXP.ini [--ranks R] [--limit L] [-- SBATCH_OPTIONS]\n"
    "                                           submit its unfinished tasks as a Slurm job array\n"
    "  run [-n R] EXP.ini [mimae_dist args]    mpirun -n R mimae_dist ..., exiting with the job's\n"
    "                                           status (SIGTERM/SIGINT: stop with a checkpoint, 3)\n"
    "  report SWEEP_DIR [--out DIR] [--no-plots] [--baseline ARM]\n"
    "                                           tables (text, CSV, Markdown) and plots of a sweep;\n"
    "                                           arms: mean +- std and paired differences\n"
    "\n"
    "`mimae COMMAND --help` tells more.\n";

static const char *usage_data =
    "usage: mimae data FORMAT ... [--shards K]\n"
    "       mpirun -n R mimae data FORMAT ... --shards K\n"
    "\n"
    "Writes OUT_DIR/train.h5 and OUT_DIR/test.h5 (schema in README.md, 'File formats').\n"
    "  mimae data fashion-mnist OUT_DIR [--src DIR]\n"
    "      DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz\n"
    "      (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)\n"
    "  mimae data cifar10 SRC OUT_DIR\n"
    "      SRC holds data_batch_1..5.bin and test_batch.bin (CIFAR-10 binary version)\n"
    "  mimae data folder SRC OUT_DIR --size S\n"
    "      SRC/train/<class>/*.{jpg,jpeg,png} and SRC/val/<class>/... ; the shorter side\n"
    "      is resized to S, then the centre S x S is cut. Store more than the model's\n"
    "      input (S = 256 for a 224 model): training crops at random and resizes the\n"
    "      crop to model.img_h x img_w, evaluation takes the centre crop\n"
    "  mimae data synthetic OUT_DIR [--n 1000] [--size 32x32x1] [--classes 4] [--seed 0]\n"
    "\n"
    "--shards K writes each split as K shard files OUT_DIR/<split>-<id>-<i>-of-<K>.h5\n"
    "plus the index OUT_DIR/<split>.h5, which is what data.train/data.test name (h5py\n"
    "and h5dump see one data set through it). Under mpirun (or srun --mpi=pmix; srun\n"
    "without an MPI plugin is refused) the R ranks decode and write the shards at once\n"
    "(shard i on rank i mod R); the data set is the same as a one-process import's,\n"
    "statistics bit for bit. Progress goes to stdout. Every file (single or shard) is\n"
    "built in memory and written in one go: one that would need more than half of the\n"
    "machine's memory is refused (use more shards).\n"
    "Exit status: 0 done; 2 bad input (one line); 1 the disk refused a write, or\n"
    "SIGINT/SIGTERM stopped it (nothing is left behind either way).\n";

static const char *usage_inspect =
    "usage: mimae inspect FILE\n"
    "\n"
    "Prints what a mimae data set, checkpoint or results file holds (a checkpoint's\n"
    "checksum is verified); other HDF5 files are listed object by object.\n"
    "The file is read in a child process: if it crashes the HDF5 library or takes\n"
    "longer than MIMAE_READ_TIMEOUT seconds (default 10, plus 1 s per 20 MB), one\n"
    "line says so and the exit status is 2.\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

static int bad_usage(const char *msg, const char *usage)
{
    fprintf(stderr, "mimae: %s\n%s", msg, usage);
    return EXIT_BAD_INPUT;
}

static int fail(const char *err)
{
    text_eprintf("mimae: %s", err);
    return EXIT_BAD_INPUT;
}

/* A strictly parsed positive integer option value. */
static int parse_positive(const char *opt, const char *text, long *out, char *err, size_t errlen)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v <= 0) {
        snprintf(err, errlen, "%s %s: expected a positive integer", opt, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* mimae data's options and operands: `--name value` pairs anywhere,
 * operands in order. */
typedef struct {
    const char *operand[3];
    int operands;
    const char *src, *size;
    long n, classes, seed, shards;
    int h, w, c;
} data_args_t;

static int parse_data_args(int argc, char **argv, const char *const *allowed, data_args_t *a,
                           char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (opt[0] != '-') {
            if (a->operands == 3) return snprintf(err, errlen, "unexpected argument '%s'", opt), -1;
            a->operand[a->operands++] = opt;
            continue;
        }
        int known = 0;
        for (int k = 0; allowed[k] && !known; k++) known = strcmp(opt, allowed[k]) == 0;
        if (!known) return snprintf(err, errlen, "unknown option %s", opt), -1;
        if (i + 1 >= argc) return snprintf(err, errlen, "%s needs a value", opt), -1;
        const char *v = argv[++i];
        char tail;
        if (strcmp(opt, "--src") == 0) {
            a->src = v;
        } else if (strcmp(opt, "--n") == 0) {
            if (parse_positive(opt, v, &a->n, err, errlen)) return -1;
        } else if (strcmp(opt, "--classes") == 0) {
            if (parse_positive(opt, v, &a->classes, err, errlen)) return -1;
        } else if (strcmp(opt, "--shards") == 0) {
            if (parse_positive(opt, v, &a->shards, err, errlen)) return -1;
        } else if (strcmp(opt, "--seed") == 0) {
            char *end = NULL;
            a->seed = strtol(v, &end, 10);
            if (end == v || *end || a->seed < 0)
                return snprintf(err, errlen, "--seed %s: expected an integer >= 0", v), -1;
        } else if (strcmp(opt, "--size") == 0) {
            a->size = v;
            if (sscanf(v, "%dx%dx%d%c", &a->h, &a->w, &a->c, &tail) == 3 && a->h > 0 &&
                a->w > 0 && (a->c == 1 || a->c == 3))
                continue;
            a->h = 0; /* not HxWxC: folder's --size S is checked by its caller */
        }
    }
    return 0;
}

/* Runs one import with the options parsed; an exit status. */
static int run_import(const char *format, data_args_t *a, char *err, size_t errlen)
{
    data_comm_t dc;
    int rank, size, speak;
    if (mpi_launch_unconnected("mimae data", &speak, err, errlen)) {
        /* every task would import the whole set into the same files */
        if (speak) text_eprintf("mimae: data %s: %s", format, err);
        return EXIT_BAD_INPUT;
    }
    if (!a->shards && mpi_launch_env(&rank, &size) && size > 1) {
        /* every rank would import the whole set into the same files */
        if (rank == 0)
            text_eprintf("mimae: data %s: started on %d MPI ranks, but an import without "
                         "--shards runs on one process: add --shards K (K >= %d keeps every "
                         "rank busy) to import in parallel, or run it without mpirun", format,
                         size, size);
        return EXIT_BAD_INPUT;
    }
    data_comm_open(&dc, a->shards > 0);
    const import_opts_t opts = {(int)a->shards, &dc.comm};
    int rc;
    if (strcmp(format, "fashion-mnist") == 0) {
        rc = idx_import_fashion_mnist_opts(a->src, a->operand[0], &opts, err, errlen);
    } else if (strcmp(format, "cifar10") == 0) {
        rc = cifar10_import_opts(a->operand[0], a->operand[1], &opts, err, errlen);
    } else if (strcmp(format, "folder") == 0) {
        long s = 0;
        rc = parse_positive("--size", a->size, &s, err, errlen);
        if (rc == 0) rc = folder_import_opts(a->operand[0], a->operand[1], (int)s, &opts, err,
                                             errlen);
        if (rc == 0 && dc.comm.rank == 0)
            printf("mimae: images stored at %ldx%ld (shorter side resized to %ld, centre "
                   "crop): training crops at random and resizes to model.img_h x img_w, "
                   "evaluation takes the centre crop\n", s, s, s);
    } else {
        rc = synthetic_generate_opts(a->operand[0], a->n, a->h, a->w, a->c, (int)a->classes,
                                     (uint64_t)a->seed, &opts, err, errlen);
    }
    rc = data_comm_close(&dc, rc, err, &speak);
    if (speak) text_eprintf("mimae: %s", err);
    if (rc == 0) return 0;
    return rc == IO_WRITE_FAILED || rc == IMPORT_STOPPED ? EXIT_WRITE_FAILED : EXIT_BAD_INPUT;
}

static int cmd_data(int argc, char **argv)
{
    char err[1024] = "";
    if (argc < 1 || wants_help(argc, argv)) {
        fputs(usage_data, argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_BAD_INPUT : 0;
    }
    const char *format = argv[0];
    static const char *const fmnist_opts[] = {"--src", "--shards", NULL};
    static const char *const cifar_opts[] = {"--shards", NULL};
    static const char *const folder_opts[] = {"--size", "--shards", NULL};
    static const char *const synthetic_opts[] = {"--n", "--size", "--classes", "--seed",
                                                 "--shards", NULL};
    data_args_t a;
    memset(&a, 0, sizeof a);
    a.n = 1000, a.classes = 4, a.h = 32, a.w = 32, a.c = 1;
    if (strcmp(format, "fashion-mnist") == 0) {
        a.src = "/usr/share/datasets/fashion-mnist";
        if (parse_data_args(argc - 1, argv + 1, fmnist_opts, &a, err, sizeof err))
            return bad_usage("data fashion-mnist: unexpected argument", usage_data);
        if (a.operands != 1) return bad_usage("data fashion-mnist: expected OUT_DIR", usage_data);
    } else if (strcmp(format, "cifar10") == 0) {
        if (parse_data_args(argc - 1, argv + 1, cifar_opts, &a, err, sizeof err) ||
            a.operands != 2)
            return bad_usage("data cifar10: expected SRC OUT_DIR [--shards K]", usage_data);
    } else if (strcmp(format, "folder") == 0) {
        if (parse_data_args(argc - 1, argv + 1, folder_opts, &a, err, sizeof err) ||
            a.operands != 2 || !a.size)
            return bad_usage("data folder: expected SRC OUT_DIR --size S [--shards K]",
                             usage_data);
    } else if (strcmp(format, "synthetic") == 0) {
        if (parse_data_args(argc - 1, argv + 1, synthetic_opts, &a, err, sizeof err))
            return fail(err);
        if (a.size && !a.h)
            return snprintf(err, sizeof err, "--size %s: expected HxWxC with C 1 or 3, e.g. "
                            "32x32x1", a.size), fail(err);
        if (a.operands != 1) return fail(a.operands ? "unexpected argument" : "missing OUT_DIR");
    } else {
        return bad_usage("data: unknown format (use fashion-mnist, cifar10, folder or synthetic)",
                         usage_data);
    }
    return run_import(format, &a, err, sizeof err);
}

static int inspect_to_stdout(const char *path, void *arg, char *err, size_t errlen)
{
    (void)arg;
    return inspect_file(path, stdout, err, errlen);
}

static int cmd_inspect(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_inspect, stdout);
        return 0;
    }
    if (argc != 1) return bad_usage("inspect: expected one FILE", usage_inspect);
    char err[1024] = "";
    const double limit = bounded_read_limit(argv[0], err, sizeof err);
    if (limit < 0 || bounded_read(argv[0], inspect_to_stdout, NULL, limit, err, sizeof err))
        return fail(err);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return bad_usage("missing COMMAND", usage_main);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "data") == 0) return cmd_data(argc - 2, argv + 2);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0) return report_command(argc - 2, argv + 2);
    if (strcmp(cmd, "run") == 0) return launcher_command(argc - 2, argv + 2);
    if (strcmp(cmd, "sweep") == 0) return sweep_command(argc - 2, argv + 2);
    if (strcmp(cmd, "keys") == 0) {
        if (argc > 2 && !wants_help(argc - 2, argv + 2))
            return bad_usage("keys: takes no arguments", usage_main);
        if (argc > 2) {
            fputs("usage: mimae keys\n\nPrints the descriptor reference as a Markdown table.\n", stdout);
            return 0;
        }
        return descriptor_print_reference(stdout) ? 1 : 0;
    }
    return bad_usage("unknown COMMAND", usage_main);
}
