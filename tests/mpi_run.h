/* Running mimae's programs from tests: the build directory they live in, the
 * environment MPI jobs need on this machine, starting a job with its output
 * in a log and waiting for it with a bound, and reading what it wrote.
 *
 * Exit statuses follow one convention throughout: the program's exit status,
 * 128 + signal when a signal ended it, -1 when it could not be started or
 * had to be killed after its time ran out. So a test compares against the
 * status it expects and a crash or a hang never looks like success. */
#ifndef MIMAE_MPI_RUN_H
#define MIMAE_MPI_RUN_H

#include <stddef.h>
#include <sys/types.h>

/* For main(), before any test runs: puts BUILD, the absolute directory two
 * levels above the test binary (BUILD/tests/test_x), in build_dir, and sets
 * what every MPI job here needs: mpirun allowed as root (the machine and CI
 * run as root), OpenBLAS on one thread (one rank per core on a shared
 * machine), and LeakSanitizer off unless ASAN_OPTIONS is set already (Open
 * MPI's own allocations at exit would be reported as leaks). 0, or -1 with a
 * message when BUILD cannot be resolved. */
int mpi_test_init(const char *argv0, char *build_dir, size_t len);

/* BUILD (as above) without touching the environment; 0 or -1. */
int test_build_dir(const char *argv0, char *build_dir, size_t len);

void sleep_ms(long ms);

/* Starts argv (a NULL-terminated list; argv[0] looked up in PATH) with its
 * stdout and stderr into the file log. env (NULL-terminated, or NULL)
 * changes the child's environment only: "NAME=value" sets, "NAME" unsets.
 * The child's pid, or -1 when fork failed. */
pid_t run_start(const char *const argv[], const char *log, const char *const env[]);

/* Waits for pid at most timeout_s seconds, then kills it (SIGKILL) so that
 * a hung job fails the test instead of stalling the suite. */
int run_wait(pid_t pid, int timeout_s);

/* Runs a printf-formatted shell command line (system(3)); stdio is flushed
 * first so the command's output stands after what the test printed. */
int run_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* run_shell in directory dir, with the command's stderr into dir/stderr.txt
 * and stdout into dir/stdout.txt, where assert_bad_input reads them. */
int run_captured(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The pids of mpirun's child processes (the ranks: every test job runs on
 * this one node), at most max; how many there are. */
int mpirun_rank_pids(pid_t mpirun, pid_t *out, int max);

/* The whole file, NUL-terminated (the caller frees it); NULL when it cannot
 * be read. */
char *read_text(const char *path);

/* Polls (every 2 ms) until the file holds needle: 0, or -1 after timeout_s.
 * Tests that signal a running job wait for its log to show a step first. */
int wait_for_text(const char *path, const char *needle, int timeout_s);

/* Prints the last `lines` lines of a log, leaving out lines that start with
 * skip (NULL: none), to show why a job failed; "(no log)" when there is none. */
void print_log_tail(const char *path, int lines, const char *skip);

/* A bad-input case run by run_captured in dir: prints dir/stderr.txt, then
 * fails the cmocka test unless status is 2 (mimae's usage/input error) and
 * stderr is exactly one line holding every given word (NULL-terminated). */
void assert_bad_input(const char *dir, int status, ...);

/* The same for any expected status and any file of output (a log). */
void assert_one_line(const char *path, int status, int want, ...);

/* Fails the cmocka test unless text holds every given word (NULL-terminated). */
void assert_has_words(const char *text, ...);

#endif
