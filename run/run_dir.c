#include "run/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "dist/mpi_check.h"
#include "experiments/descriptor.h"
#include "io/io_path.h"
#include "io/lock_file.h"
#include "run/exit_status.h"

#define HOLDER_MAX 512

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int run_lock_acquire(run_lock_t *l, const char *run_dir, char *err, size_t errlen)
{
    l->fd = -1;
    if (descriptor_make_out_dir(run_dir, err, errlen)) return EXIT_BAD_INPUT;
    char path[DESCRIPTOR_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" RUN_LOCK_NAME, run_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open the run directory's lock file (%s): %s", path,
                 strerror(errno), errno == ELOOP ? "it is a symbolic link; remove it"
                                                 : "set run.out_dir to a writable place");
        return EXIT_BAD_INPUT;
    }
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lock) == 0) {
        l->fd = fd;
        return EXIT_OK;
    }
    const int e = errno;
    if (e == EACCES || e == EAGAIN) {
        char holder[HOLDER_MAX];
        lock_file_holder(fd, holder, sizeof holder);
        close(fd);
        snprintf(err, errlen, "%s: run directory in use by %s: one job at a time owns a run "
                 "directory; wait for that job to end or stop it, or set another run.out_dir",
                 run_dir, holder);
        return EXIT_BAD_INPUT;
    }
    /* no fcntl locks here (some cluster file systems): go on unprotected */
    fprintf(stderr, "mimae_dist: warning: %s: cannot lock (%s): nothing stops a second job from "
            "using this run directory at the same time\n", path, strerror(e));
    l->fd = fd;
    return EXIT_OK;
}

int run_lock_take(run_lock_t *l, const char *run_dir, int rank, char *err, size_t errlen)
{
    int status = rank == 0 ? run_lock_acquire(l, run_dir, err, errlen) : EXIT_OK;
    MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD));
    return status;
}

int run_lock_record_holder(run_lock_t *l, char *err, size_t errlen)
{
    if (l->fd < 0) return 0;
    char host[256] = "?", when[32] = "?", text[HOLDER_MAX];
    if (gethostname(host, sizeof host)) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = 0;
    const time_t now = time(NULL);
    struct tm utc;
    if (gmtime_r(&now, &utc)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    const int n = snprintf(text, sizeof text, "pid %ld on host %s (Slurm job %s, array task %s) "
                           "since %s\n", (long)getpid(), host, env_or("SLURM_JOB_ID", "none"),
                           env_or("SLURM_ARRAY_TASK_ID", "none"), when);
    const size_t len = n < (int)sizeof text ? (size_t)n : sizeof text - 1;
    if (ftruncate(l->fd, 0) || pwrite(l->fd, text, len, 0) != (ssize_t)len)
        return snprintf(err, errlen, "cannot record the holder in the run directory's lock "
                        "file: %s", strerror(errno)), -1;
    return 0;
}

void run_lock_release(run_lock_t *l)
{
    if (l->fd >= 0) close(l->fd); /* closing drops the lock */
    l->fd = -1;
}

int run_stopped_mark(const char *run_dir, long step, const char *what, char *err,
                     size_t errlen)
{
    char path[DESCRIPTOR_PATH_MAX + 16], label[DESCRIPTOR_PATH_MAX + 64], text[512];
    snprintf(path, sizeof path, "%s/" RUN_STOPPED_NAME, run_dir);
    snprintf(label, sizeof label, "%s: cannot write the stop marker", path);
    const int n = snprintf(text, sizeof text, "stopped at step %ld: %s; rerun the same command "
                           "to resume\n", step, what);
    const size_t len = n < (int)sizeof text ? (size_t)n : sizeof text - 1;
    io_file_err_t e = {label, err, errlen, 0};
    return io_write_file(path, 0644, text, len, &e);
}

int run_stopped_clear(const char *run_dir, char *err, size_t errlen)
{
    char path[DESCRIPTOR_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" RUN_STOPPED_NAME, run_dir);
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    return snprintf(err, errlen, "%s: cannot remove the stop marker of the previous run: %s",
                    path, strerror(errno)), -1;
}

/* A name the run writes in its directory (or, with in_checkpoints, in
 * checkpoints/). */
static int written_by_the_run(const char *name, int in_checkpoints)
{
    const size_t n = strlen(name);
    const int h5 = n > 3 && strcmp(name + n - 3, ".h5") == 0;
    if (in_checkpoints) return strncmp(name, "ckpt-", 5) == 0 && h5;
    return strcmp(name, "results.h5") == 0 || strcmp(name, "descriptor.ini") == 0 ||
           strcmp(name, RUN_STOPPED_NAME) == 0 ||
           (strncmp(name, "results-recon-", 14) == 0 && n > 4 &&
            strcmp(name + n - 4, ".png") == 0);
}

static int check_dir_outputs(const char *dir, int in_checkpoints, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return 0; /* not made yet: nothing planted */
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!written_by_the_run(e->d_name, in_checkpoints)) continue;
        char path[DESCRIPTOR_PATH_MAX + 300];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || S_ISREG(st.st_mode)) continue;
        snprintf(err, errlen, "%s: %s where this run writes a file: remove it (mimae never "
                 "writes through or over one), or use another run.out_dir", path,
                 S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
                 : S_ISFIFO(st.st_mode) ? "a FIFO" : "not a regular file");
        rc = -1;
    }
    closedir(d);
    return rc;
}

int run_dir_check_outputs(const char *run_dir, char *err, size_t errlen)
{
    char ckpt_dir[DESCRIPTOR_PATH_MAX + 16];
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/checkpoints", run_dir);
    return check_dir_outputs(run_dir, 0, err, errlen) ||
                   check_dir_outputs(ckpt_dir, 1, err, errlen)
               ? -1
               : 0;
}
