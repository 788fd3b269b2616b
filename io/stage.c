/* Staging a sharded training set on node-local storage (see stage.h). */
#include "io/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "io/dataset.h"
#include "io/io_error.h"
#include "io/io_path.h"

#define COPY_BLOCK ((size_t)4 << 20)

void stage_plan_free(stage_plan_t *plan)
{
    for (int i = 0; i < plan->n; i++) free(plan->src[i]), free(plan->dst[i]);
    free(plan->src);
    free(plan->dst);
    free(plan->bytes);
    free(plan->dir);
    free(plan->index);
    memset(plan, 0, sizeof *plan);
}

/* Whether dst is there already as a copy of src (a regular file, not a link,
 * of src's size and modification time). */
static int staged_already(const char *dst, const struct stat *src)
{
    struct stat st;
    return lstat(dst, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == src->st_size &&
           st.st_mtim.tv_sec == src->st_mtim.tv_sec && st.st_mtim.tv_nsec == src->st_mtim.tv_nsec;
}

/* Adds src -> dir/name to the plan unless it is staged already. */
static int plan_file(stage_plan_t *p, const char *src, const char *name, char *err,
                     size_t errlen)
{
    io_file_err_t e = {src, err, errlen, 0};
    struct stat st;
    if (io_check_input(&e, "data set file to stage", 1, &st)) return -1;
    char *dst = io_path_join(p->dir, name), *copy = strdup(src);
    if (!dst || !copy) {
        free(dst), free(copy);
        return io_fail(err, errlen, "%s: out of memory", src);
    }
    if (staged_already(dst, &st)) {
        free(dst), free(copy);
        return 0;
    }
    p->src[p->n] = copy;
    p->dst[p->n] = dst;
    p->bytes[p->n] = (long long)st.st_size;
    p->total += (long long)st.st_size;
    p->n++;
    return 0;
}

int stage_plan(const char *index, const char *stage_dir, int rank, int ranks,
               stage_plan_t *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    char **names = NULL, id[DATASET_IMPORT_ID_LEN + 1];
    const int k = dataset_index_shards(index, &names, id);
    if (k < 1 || !id[0]) {
        free(names);
        if (k >= 1) /* the id names the stage directory: nothing but hex digits passes */
            return io_fail(err, errlen, "%s: the attribute import_id is not %d hex digits: the "
                           "index is damaged; import the data set again", index,
                           DATASET_IMPORT_ID_LEN);
        return io_fail(err, errlen, "%s: not the index of a sharded data set (or unreadable): "
                       "data.stage_dir copies shards; import the data with --shards K, or "
                       "leave data.stage_dir empty", index);
    }
    const char *slash = strrchr(index, '/');
    const char *base = slash ? slash + 1 : index;
    plan->dir = io_path_join(stage_dir, id);
    plan->src = calloc((size_t)k + 1, sizeof *plan->src);
    plan->dst = calloc((size_t)k + 1, sizeof *plan->dst);
    plan->bytes = calloc((size_t)k + 1, sizeof *plan->bytes);
    plan->index = plan->dir ? io_path_join(plan->dir, base) : NULL;
    int rc = -1;
    if (!plan->dir || !plan->src || !plan->dst || !plan->bytes || !plan->index) {
        io_fail(err, errlen, "%s: out of memory", index);
        goto out;
    }
    if (plan_file(plan, index, base, err, errlen)) goto out;
    for (int i = rank; i < k; i += ranks) {
        char *src = NULL;
        const int r = dataset_shard_path(index, i, names[i], &src, err, errlen) ||
                      plan_file(plan, src, names[i], err, errlen);
        free(src);
        if (r) goto out;
    }
    rc = 0;
out:
    free(names);
    if (rc) stage_plan_free(plan);
    return rc;
}

long long stage_free_bytes(const char *dir, char *err, size_t errlen)
{
    char failed[PATH_MAX];
    if (io_make_dirs(dir, failed, sizeof failed)) {
        io_make_dirs_fail(failed, "data.stage_dir", err, errlen);
        return -1;
    }
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) {
        io_fail(err, errlen, "%s: cannot see its free space (%s): set data.stage_dir to a local "
                "directory", dir, strerror(errno));
        return -1;
    }
    return (long long)vfs.f_bavail * (long long)vfs.f_frsize;
}

/* One file: read src, write a temporary beside dst, the source's times, rename. */
static int copy_one(const char *src, const char *dst, char *buf, char *err, size_t errlen)
{
    io_file_err_t in = {src, err, errlen, 0};
    struct stat st;
    const int fd = io_open_input(&in, "data set file to stage", 1, &st);
    if (fd < 0) return -1;
    io_out_t out;
    io_file_err_t e = {dst, err, errlen, 0};
    if (io_out_open(&out, dst, 0644, &e)) {
        close(fd);
        return -1;
    }
    int rc = 0;
    for (long long done = 0; rc == 0 && done < (long long)st.st_size;) {
        const ssize_t got = read(fd, buf, COPY_BLOCK);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            rc = io_fail(err, errlen, "%s: reading it failed after %lld of %lld bytes (%s): check "
                         "the file", src, done, (long long)st.st_size,
                         got < 0 ? strerror(errno) : "it got shorter");
            break;
        }
        if (io_out_write(&out, buf, (size_t)got, &e)) rc = IO_WRITE_FAILED;
        done += got;
    }
    close(fd);
    /* the source's times: the mark of a complete copy (stage.h) */
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (rc == 0 && futimens(out.fd, times) != 0)
        rc = io_fail(err, errlen, "%s: cannot set its modification time (%s): stage to a local "
                     "file system", dst, strerror(errno));
    if (rc == 0 && io_out_commit(&out, &e)) rc = IO_WRITE_FAILED;
    io_out_abort(&out); /* after a commit: nothing left to remove */
    return rc;
}

int stage_copy(const stage_plan_t *plan, char *err, size_t errlen)
{
    if (plan->n == 0) return 0;
    char failed[PATH_MAX];
    if (io_make_dirs(plan->dir, failed, sizeof failed))
        return io_make_dirs_fail(failed, "data.stage_dir", err, errlen);
    char *buf = malloc(COPY_BLOCK);
    if (!buf) return io_fail(err, errlen, "%s: out of memory", plan->dir);
    int rc = 0;
    for (int i = 0; rc == 0 && i < plan->n; i++)
        rc = copy_one(plan->src[i], plan->dst[i], buf, err, errlen);
    free(buf);
    return rc;
}
