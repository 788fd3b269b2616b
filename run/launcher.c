#define _DEFAULT_SOURCE /* readlink */
#include "run/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run/exit_status.h"

#define MAX_MPI_OPTIONS 16

const char *const launcher_usage =
    "usage: mimae run [-n RANKS] [--mpi OPTION]... EXP.ini [mimae_dist arguments]\n"
    "       mimae run [-n RANKS] [--mpi OPTION]... eval CHECKPOINT [--set ...]\n"
    "\n"
    "Runs `mpirun -n RANKS [OPTION]... mimae_dist ...` (RANKS default 1) and exits with\n"
    "its status: SIGTERM, SIGINT (Ctrl-C) or SIGUSR1 to this process reach the ranks as a\n"
    "stop request (everything saved, exit status 3), which mpirun signalled directly\n"
    "cannot pass on (it exits 1). When OPENBLAS_NUM_THREADS (else OMP_NUM_THREADS) asks\n"
    "for more than one thread a rank and no --mpi option binds or maps the ranks, it adds\n"
    "--bind-to none: mpirun would bind each rank to one core and the threads share it.\n";

static volatile sig_atomic_t child = 0, stop_pending = 0;

/* A stop request: passed to mpirun as the one signal it forwards. */
static void on_stop(int sig)
{
    (void)sig;
    const int saved = errno;
    if (child > 0) kill((pid_t)child, SIGUSR1);
    else stop_pending = 1;
    errno = saved;
}

/* BUILD/mimae -> BUILD/mimae_dist */
static int find_mimae_dist(char *out, size_t len)
{
    char self[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    const int w = snprintf(out, len, "%s/mimae_dist", dirname(self));
    return w > 0 && (size_t)w < len && access(out, X_OK) == 0 ? 0 : -1;
}

static void start_child(char **argv)
{
    /* own process group: a terminal's Ctrl-C is for the launcher to pass on */
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    signal(SIGTERM, SIG_DFL), signal(SIGINT, SIG_DFL), signal(SIGUSR1, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    fprintf(stderr, "mimae: run: cannot start %s: %s\n", argv[0], strerror(errno));
    _exit(EXIT_FAILURE_INTERNAL);
}

/* More than one BLAS thread a rank asked for, and nothing the user gave
 * mpirun places the ranks: then unbind them, or mpirun's default binding to
 * one core leaves OpenBLAS one thread (it caps its threads at the CPUs a
 * process may use). */
static int wants_unbound_ranks(const char *const *mpi_options, int n)
{
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    if (!threads) threads = getenv("OMP_NUM_THREADS");
    if (!threads || atol(threads) <= 1) return 0;
    for (int m = 0; m < n; m++)
        if (strstr(mpi_options[m], "bind-to") || strstr(mpi_options[m], "map-by") ||
            strstr(mpi_options[m], "cpus-per-proc") || strstr(mpi_options[m], "rankfile"))
            return 0;
    return 1;
}

int launcher_command(int argc, char **argv)
{
    const char *ranks = "1", *mpi_options[MAX_MPI_OPTIONS];
    int n_mpi = 0, i = 0;
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(launcher_usage, stdout);
            return EXIT_OK;
        }
        const int is_n = !strcmp(argv[i], "-n"), is_mpi = !strcmp(argv[i], "--mpi");
        if ((!is_n && !is_mpi) || i + 1 >= argc || (is_mpi && n_mpi == MAX_MPI_OPTIONS)) {
            fprintf(stderr, "mimae: run: bad option '%s' (see mimae run --help)\n", argv[i]);
            return EXIT_BAD_INPUT;
        }
        if (is_n) {
            char *end;
            const long v = strtol(argv[i + 1], &end, 10);
            if (*end || end == argv[i + 1] || v < 1 || v > 1000000) {
                fprintf(stderr, "mimae: run: -n %s: expected a rank count >= 1\n", argv[i + 1]);
                return EXIT_BAD_INPUT;
            }
            ranks = argv[i + 1];
        } else {
            mpi_options[n_mpi++] = argv[i + 1];
        }
    }
    if (i >= argc) {
        fprintf(stderr, "mimae: run: missing EXP.ini (see mimae run --help)\n");
        return EXIT_BAD_INPUT;
    }
    char dist[PATH_MAX + 16];
    if (find_mimae_dist(dist, sizeof dist)) {
        fprintf(stderr, "mimae: run: no mimae_dist next to this mimae: build it (make)\n");
        return EXIT_FAILURE_INTERNAL;
    }
    const int unbind = wants_unbound_ranks(mpi_options, n_mpi);
    const int n_args = 4 + 2 * unbind + n_mpi + (argc - i) + 1;
    char **args = malloc((size_t)n_args * sizeof *args);
    if (!args) {
        fprintf(stderr, "mimae: run: out of memory\n");
        return EXIT_FAILURE_INTERNAL;
    }
    int k = 0;
    args[k++] = "mpirun", args[k++] = "-n", args[k++] = (char *)ranks;
    if (unbind) args[k++] = "--bind-to", args[k++] = "none";
    for (int m = 0; m < n_mpi; m++) args[k++] = (char *)mpi_options[m];
    args[k++] = dist;
    for (int m = i; m < argc; m++) args[k++] = argv[m];
    args[k] = NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL) ||
        sigaction(SIGUSR1, &sa, NULL)) {
        fprintf(stderr, "mimae: run: cannot install signal handlers: %s\n", strerror(errno));
        free(args);
        return EXIT_FAILURE_INTERNAL;
    }
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) start_child(args);
    free(args);
    if (pid < 0) {
        fprintf(stderr, "mimae: run: cannot fork: %s\n", strerror(errno));
        return EXIT_FAILURE_INTERNAL;
    }
    child = pid;
    if (stop_pending) kill(pid, SIGUSR1); /* asked before the child existed */
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "mimae: run: waiting for mpirun: %s\n", strerror(errno));
            return EXIT_FAILURE_INTERNAL;
        }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EXIT_FAILURE_INTERNAL;
}
