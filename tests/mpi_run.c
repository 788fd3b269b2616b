#define _DEFAULT_SOURCE /* setenv, unsetenv, realpath */
#include "mpi_run.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_build_dir(const char *argv0, char *build_dir, size_t len)
{
    char self[4096];
    snprintf(self, sizeof self, "%s", argv0);
    /* absolute: several tests run programs from their work directory */
    char *abs = realpath(dirname(dirname(self)), NULL);
    if (!abs || strlen(abs) >= len) {
        fprintf(stderr, "%s: cannot resolve the build directory\n", argv0);
        free(abs);
        return -1;
    }
    snprintf(build_dir, len, "%s", abs);
    free(abs);
    return 0;
}

int mpi_test_init(const char *argv0, char *build_dir, size_t len)
{
    if (test_build_dir(argv0, build_dir, len)) return -1;
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
    return 0;
}

void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* A wait status in the convention of mpi_run.h. */
static int exit_status(int st)
{
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

pid_t run_start(const char *const argv[], const char *log, const char *const env[])
{
    fflush(NULL); /* or the child's copy of unwritten output could appear twice */
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(127);
    close(fd);
    for (int i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq) {
            unsetenv(env[i]);
            continue;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
        setenv(name, eq + 1, 1);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int run_wait(pid_t pid, int timeout_s)
{
    if (pid < 0) return -1;
    for (int waited = 0; waited < timeout_s * 100; waited++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return exit_status(st);
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int run_shell_v(const char *fmt, va_list ap)
{
    char cmd[8192];
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof cmd) fail_msg("command line too long: %.200s...", cmd);
    fflush(NULL);
    int st = system(cmd);
    return st == -1 ? -1 : exit_status(st);
}

int run_shell(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = run_shell_v(fmt, ap);
    va_end(ap);
    return status;
}

int run_captured(const char *dir, const char *fmt, ...)
{
    char cmd[6144];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) fail_msg("command line too long: %.200s...", cmd);
    /* braces: the redirections hold for the whole command line */
    return run_shell("cd %s && { %s; } 2>%s/stderr.txt >%s/stdout.txt", dir, cmd, dir, dir);
}

int mpirun_rank_pids(pid_t mpirun, pid_t *out, int max)
{
    char cmd[64], line[32];
    snprintf(cmd, sizeof cmd, "pgrep -P %d", (int)mpirun);
    FILE *p = popen(cmd, "r");
    int n = 0;
    while (p && n < max && fgets(line, sizeof line, p)) out[n++] = (pid_t)atoi(line);
    if (p) pclose(p);
    return n;
}

char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *s = malloc(cap);
    while (s && (got = fread(s + n, 1, cap - 1 - n, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) free(s);
            s = t;
        }
    }
    fclose(f);
    if (s) s[n] = '\0';
    return s;
}

int wait_for_text(const char *path, const char *needle, int timeout_s)
{
    for (int i = 0; i < timeout_s * 500; i++) {
        char *text = read_text(path);
        int seen = text && strstr(text, needle);
        free(text);
        if (seen) return 0;
        sleep_ms(2);
    }
    return -1;
}

void print_log_tail(const char *path, int lines, const char *skip)
{
    char *text = read_text(path);
    if (!text) {
        fprintf(stderr, "(no log)\n");
        return;
    }
    /* keep the starts of the last `lines` kept lines in a ring */
    const char *ring[64];
    if (lines > 64) lines = 64;
    int kept = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        const int skipped = skip && strncmp(line, skip, strlen(skip)) == 0;
        if (lines > 0 && !skipped) ring[kept++ % lines] = line;
        if (!end) break;
        line = end + 1;
    }
    for (int i = kept > lines ? kept - lines : 0; i < kept; i++) printf("%s\n", ring[i % lines]);
    fflush(stdout);
    free(text);
}

static void has_words_v(const char *text, va_list ap)
{
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
        if (!strstr(text, w)) fail_msg("the message does not name '%s'", w);
}

void assert_has_words(const char *text, ...)
{
    va_list ap;
    va_start(ap, text);
    has_words_v(text, ap);
    va_end(ap);
}

static void one_line_v(const char *path, int status, int want, va_list ap)
{
    char *text = read_text(path);
    if (!text) fail_msg("%s: missing", path);
    printf("  %s", text);
    fflush(stdout); /* before cmocka's report of a failure, on stderr */
    int lines = 0;
    for (const char *c = text; *c; c++) lines += *c == '\n';
    /* copies on the stack: fail_msg leaves the test without freeing */
    char copy[8192];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    if (status != want) fail_msg("exit status %d, expected %d", status, want);
    if (lines != 1) fail_msg("expected one line, got %d", lines);
    has_words_v(copy, ap);
}

void assert_one_line(const char *path, int status, int want, ...)
{
    va_list ap;
    va_start(ap, want);
    one_line_v(path, status, want, ap);
    va_end(ap);
}

void assert_bad_input(const char *dir, int status, ...)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    va_list ap;
    va_start(ap, status);
    one_line_v(path, status, 2, ap);
    va_end(ap);
}
