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
#include "run/launcher.h"

#define EXIT_BAD_INPUT 2

static const char *usage_main =
    "usage: mimae COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  data fashion-mnist OUT_DIR [--src DIR]   import Debian's Fashion-MNIST to HDF5\n"
    "  data cifar10 SRC OUT_DIR                 import the CIFAR-10 binary version\n"
    "  data folder SRC OUT_DIR --size S         import class-per-folder JPEG/PNG images\n"
    "  data synthetic OUT_DIR [--n N] [--size HxWxC] [--classes K] [--seed S]\n"
    "                                           make a labelled shapes data set\n"
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
    "usage: mimae data FORMAT ...\n"
    "\n"
    "Writes OUT_DIR/train.h5 and OUT_DIR/test.h5 (schema in README.md, 'Data sets').\n"
    "  mimae data fashion-mnist OUT_DIR [--src DIR]\n"
    "      DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz\n"
    "      (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)\n"
    "  mimae data cifar10 SRC OUT_DIR\n"
    "      SRC holds data_batch_1..5.bin and test_batch.bin (CIFAR-10 binary version)\n"
    "  mimae data folder SRC OUT_DIR --size S\n"
    "      SRC/train/<class>/*.{jpg,jpeg,png} and SRC/val/<class>/... ; the shorter side\n"
    "      is resized to S, then the centre S x S is cut\n"
    "  mimae data synthetic OUT_DIR [--n 1000] [--size 32x32x1] [--classes 4] [--seed 0]\n";

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

static int cmd_data_synthetic(int argc, char **argv, char *err, size_t errlen)
{
    const char *out_dir = NULL;
    long n = 1000, classes = 4, seed = 0;
    int h = 32, w = 32, c = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (out_dir) return snprintf(err, errlen, "unexpected argument '%s'", a), -1;
            out_dir = a;
            continue;
        }
        if (i + 1 >= argc) return snprintf(err, errlen, "%s needs a value", a), -1;
        const char *v = argv[++i];
        if (strcmp(a, "--n") == 0) {
            if (parse_positive(a, v, &n, err, errlen)) return -1;
        } else if (strcmp(a, "--classes") == 0) {
            if (parse_positive(a, v, &classes, err, errlen)) return -1;
        } else if (strcmp(a, "--seed") == 0) {
            char *end = NULL;
            seed = strtol(v, &end, 10);
            if (end == v || *end || seed < 0)
                return snprintf(err, errlen, "--seed %s: expected an integer >= 0", v), -1;
        } else if (strcmp(a, "--size") == 0) {
            char tail;
            if (sscanf(v, "%dx%dx%d%c", &h, &w, &c, &tail) != 3 || h <= 0 || w <= 0 ||
                (c != 1 && c != 3))
                return snprintf(err, errlen, "--size %s: expected HxWxC with C 1 or 3, e.g. 32x32x1", v), -1;
        } else {
            return snprintf(err, errlen, "unknown option %s", a), -1;
        }
    }
    if (!out_dir) return snprintf(err, errlen, "missing OUT_DIR"), -1;
    return synthetic_generate(out_dir, n, h, w, c, (int)classes, (uint64_t)seed, err, errlen);
}

static int cmd_data(int argc, char **argv)
{
    char err[1024] = "";
    if (argc < 1 || wants_help(argc, argv)) {
        fputs(usage_data, argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_BAD_INPUT : 0;
    }
    const char *format = argv[0];
    int rc;
    if (strcmp(format, "fashion-mnist") == 0) {
        const char *src = "/usr/share/datasets/fashion-mnist", *out = NULL;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--src") == 0 && i + 1 < argc) src = argv[++i];
            else if (argv[i][0] != '-' && !out) out = argv[i];
            else return bad_usage("data fashion-mnist: unexpected argument", usage_data);
        }
        if (!out) return bad_usage("data fashion-mnist: missing OUT_DIR", usage_data);
        rc = idx_import_fashion_mnist(src, out, err, sizeof err);
    } else if (strcmp(format, "cifar10") == 0) {
        if (argc != 3) return bad_usage("data cifar10: expected SRC OUT_DIR", usage_data);
        rc = cifar10_import(argv[1], argv[2], err, sizeof err);
    } else if (strcmp(format, "folder") == 0) {
        long size = 0;
        if (argc != 5 || strcmp(argv[3], "--size") != 0)
            return bad_usage("data folder: expected SRC OUT_DIR --size S", usage_data);
        if (parse_positive("--size", argv[4], &size, err, sizeof err)) return fail(err);
        rc = folder_import(argv[1], argv[2], (int)size, err, sizeof err);
    } else if (strcmp(format, "synthetic") == 0) {
        rc = cmd_data_synthetic(argc - 1, argv + 1, err, sizeof err);
    } else {
        return bad_usage("data: unknown format (use fashion-mnist, cifar10, folder or synthetic)",
                         usage_data);
    }
    if (rc) return fail(err);
    return 0;
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
