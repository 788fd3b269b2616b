/* Reads in a child process with a time bound (see bounded_read.h). */
#include "io/bounded_read.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/io_error.h"

#define DEFAULT_LIMIT_S 10.0
#define BYTES_PER_S 20e6

double bounded_read_limit(const char *path, char *err, size_t errlen)
{
    double base = DEFAULT_LIMIT_S;
    const char *env = getenv("MIMAE_READ_TIMEOUT");
    if (env && *env) {
        char *end = NULL;
        base = strtod(env, &end);
        if (end == env || *end || !(base > 0.0) || base > 1e6)
            return io_fail(err, errlen, "MIMAE_READ_TIMEOUT=%s: give the seconds a file may take "
                           "to read, a number > 0 (default %g)", env, DEFAULT_LIMIT_S);
    }
    struct stat st;
    if (path && stat(path, &st) == 0 && st.st_size > 0) base += (double)st.st_size / BYTES_PER_S;
    return base;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The child: runs fn, sends its status byte and message, never returns. */
static void run_child(int fd, const char *path, bounded_read_fn fn, void *arg, size_t errlen)
{
    char *msg = calloc(1, errlen ? errlen : 1);
    const int rc = msg ? fn(path, arg, msg, errlen) : -1;
    if (!msg) msg = "out of memory";
    fflush(stdout);
    fflush(stderr);
    const char status = rc == 0 ? 0 : 1;
    /* what the parent cannot read it reports as a crash */
    if (write(fd, &status, 1) == 1 && rc != 0) {
        size_t n = strlen(msg), off = 0;
        while (off < n) {
            ssize_t w = write(fd, msg + off, n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
    }
    _exit(0); /* no atexit handlers: they belong to the parent (HDF5's among them) */
}

/* Reads the child's report until EOF or the deadline; 1 when it ended in
 * time. */
static int collect(int fd, double deadline, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        const double left = deadline - now_s();
        if (left <= 0) return 0;
        struct pollfd p = {fd, POLLIN, 0};
        const int ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
        const int ready = poll(&p, 1, ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return ready < 0 ? 1 : 0; /* a failed poll: treat as the end */
        char tmp[512];
        const ssize_t got = read(fd, tmp, sizeof tmp);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 1;
        const size_t keep = *len + (size_t)got < cap ? (size_t)got : cap - *len;
        memcpy(buf + *len, tmp, keep);
        *len += keep;
    }
}

int bounded_read(const char *path, bounded_read_fn fn, void *arg, double limit_s, char *err,
                 size_t errlen)
{
    int fds[2];
    if (pipe(fds) != 0)
        return io_fail(err, errlen, "%s: cannot start a reader process (pipe: %s)", path,
                       strerror(errno));
    fflush(NULL); /* buffered output is not duplicated into the child */
    const pid_t pid = fork();
    if (pid < 0) {
        const int e = errno;
        close(fds[0]);
        close(fds[1]);
        return io_fail(err, errlen, "%s: cannot start a reader process (fork: %s)", path,
                       strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        run_child(fds[1], path, fn, arg, errlen);
    }
    close(fds[1]);
    char report[4096 + 1];
    size_t len = 0;
    const int ended = collect(fds[0], now_s() + limit_s, report, sizeof report - 1, &len);
    close(fds[0]);
    if (!ended) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    report[len] = '\0';
    if (!ended)
        return io_fail(err, errlen, "%s: unreadable (timed out after %.0f s): HDF5 did not "
                       "finish reading it, the file is damaged (or slow to read: "
                       "MIMAE_READ_TIMEOUT=SECONDS allows longer)", path, limit_s);
    if (WIFSIGNALED(status) || len == 0)
        return io_fail(err, errlen, "%s: unreadable (HDF5 crashed, %s): the file is damaged; "
                       "restore or re-create it", path,
                       WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "no answer");
    if (report[0] == 0) return 0;
    return io_fail(err, errlen, "%s", report + 1);
}

/* In the child: whether results_load gets through the file (the result is
 * dropped); its notes on stderr (keys defaulted in older files) are left to
 * the caller's own read, so they are not printed twice. */
static int results_readable(const char *path, void *arg, char *err, size_t errlen)
{
    (void)arg;
    if (!freopen("/dev/null", "w", stderr))
        return io_fail(err, errlen, "%s: /dev/null: %s", path, strerror(errno));
    results_t *res = results_load(path, err, errlen);
    results_free(res);
    return res ? 0 : -1;
}

results_t *bounded_results_load(const char *path, char *err, size_t errlen)
{
    const double limit = bounded_read_limit(path, err, errlen);
    if (limit < 0 || bounded_read(path, results_readable, NULL, limit, err, errlen)) return NULL;
    return results_load(path, err, errlen);
}
