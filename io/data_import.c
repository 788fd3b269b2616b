/* The import driver (see data_import.h): splits into single files or shards,
 * shards spread over the ranks, exact statistics, and the order in which
 * files appear (all or none). */
#include "io/data_import.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "io/io_error.h"
#include "io/io_path.h"

/* Exact integer pixel sums: sum of squares stays below 2^64. */
#define MAX_PIXELS_PER_CHANNEL (UINT64_MAX / (255u * 255u))

/* ------------------------------------------------------------ one process */

static int single_all_ok(void *arg, int ok)
{
    (void)arg;
    return ok;
}

static int single_sum(void *arg, uint64_t *values, int count)
{
    (void)arg, (void)values, (void)count;
    return 0;
}

static int single_bcast(void *arg, void *buf, size_t len)
{
    (void)arg, (void)buf, (void)len;
    return 0;
}

void import_comm_single(import_comm_t *c)
{
    memset(c, 0, sizeof *c);
    c->ranks = 1;
    c->all_ok = single_all_ok;
    c->sum_u64 = single_sum;
    c->bcast = single_bcast;
}

static const import_comm_t *comm_of(const import_opts_t *opts, import_comm_t *single)
{
    if (opts && opts->comm) return opts->comm;
    import_comm_single(single);
    return single;
}

import_split_t import_split_of(const dataset_info_t *proto, int index, long n, long block,
                               import_read_fn read, void *ctx)
{
    import_split_t s = {*proto, block, read, ctx, 0};
    snprintf(s.info.split, sizeof s.info.split, "%s", index ? "test" : "train");
    s.info.n = n;
    return s;
}

int import_agree(const import_opts_t *opts, int rc, char *err, size_t errlen)
{
    import_comm_t single;
    const import_comm_t *c = comm_of(opts, &single);
    if (c->all_ok(c->arg, rc == 0)) return 0;
    if (rc == 0 && err && errlen) err[0] = '\0';
    return rc ? rc : -1;
}

/* ------------------------------------------------------------ outputs */

/* This rank's files: parked until every rank has written its own, then
 * committed; those committed are removed again if the import fails. */
typedef struct {
    io_pending_t *parked;
    int nparked, cap;
    char **committed;
    int ncommitted;
} outputs_t;

static int outputs_add(outputs_t *o, const io_pending_t *p)
{
    if (o->nparked == o->cap) {
        const int cap = o->cap ? 2 * o->cap : 16;
        io_pending_t *v = realloc(o->parked, (size_t)cap * sizeof *v);
        char **c = realloc(o->committed, (size_t)cap * sizeof *c);
        if (v) o->parked = v;
        if (c) o->committed = c;
        if (!v || !c) return -1;
        o->cap = cap;
    }
    o->parked[o->nparked++] = *p;
    return 0;
}

/* Renames every parked file of this rank into place. */
static int outputs_commit(outputs_t *o, char *err, size_t errlen)
{
    for (int i = 0; i < o->nparked; i++) {
        io_pending_t *p = &o->parked[i];
        if (!p->tmp) continue;
        io_file_err_t e = {p->path, err, errlen, 0};
        if (io_pending_commit(p, &e)) return IO_WRITE_FAILED;
        o->committed[o->ncommitted++] = p->path; /* still owned by parked[i] */
    }
    return 0;
}

/* Removes what this rank committed (a later step failed) and every
 * temporary still parked; frees o. */
static void outputs_free(outputs_t *o, int remove_committed)
{
    for (int i = 0; remove_committed && i < o->ncommitted; i++) unlink(o->committed[i]);
    for (int i = 0; i < o->nparked; i++) io_pending_free(&o->parked[i]);
    free(o->parked);
    free(o->committed);
}

/* ------------------------------------------------------------ writing */

typedef struct {
    const char *out_dir;
    const import_comm_t *comm;
    const import_split_t *split;
    uint8_t *pixels;
    int32_t *labels;
    long done, total; /* this rank's images of the split */
    struct timespec start;
} job_t;

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void report(const job_t *j, int finished)
{
    if (!j->comm->progress) return;
    const import_progress_t p = {j->split->info.split, j->done, j->total, j->split->info.n,
                                 j->comm->ranks, seconds_since(&j->start), finished};
    j->comm->progress(j->comm->arg, &p);
}

/* Images [first, first + count) of the split through w. */
static int write_range(job_t *j, dataset_writer_t *w, long first, long count, char *err,
                       size_t errlen)
{
    const import_split_t *s = j->split;
    for (long done = 0; done < count;) {
        if (j->comm->stop && j->comm->stop(j->comm->arg))
            return io_fail(err, errlen, "%s: the import was interrupted by a signal (in the %s "
                           "split): nothing was written; run it again", j->out_dir,
                           s->info.split), IMPORT_STOPPED;
        const long m = count - done < s->block ? count - done : s->block;
        if (s->read(s, first + done, m, j->pixels, j->labels, err, errlen)) return -1;
        const int rc = dataset_writer_append(w, j->pixels, j->labels, m, err, errlen);
        if (rc) return rc;
        done += m;
        j->done += m;
        report(j, 0);
    }
    return 0;
}

/* The split as one file; its own statistics into mean_out/std_out (train),
 * or mean_in/std_in stored instead (test). */
static int write_single(job_t *j, const char *path, const double *mean_in, const double *std_in,
                        double *mean_out, double *std_out, io_pending_t *p, char *err,
                        size_t errlen)
{
    dataset_writer_t *w = dataset_writer_create(path, &j->split->info, err, errlen);
    if (!w) return -1;
    const int rc = write_range(j, w, 0, j->split->info.n, err, errlen);
    if (rc) {
        dataset_writer_abort(w);
        return rc;
    }
    if (mean_out) dataset_writer_stats(w, mean_out, std_out);
    return dataset_writer_park(w, mean_in, std_in, p, err, errlen);
}

/* Shard `sh` of the split; its pixel sums are added to sum/sumsq. */
static int write_shard(job_t *j, const char *path, const dataset_shard_t *sh, uint64_t *sum,
                       uint64_t *sumsq, io_pending_t *p, char *err, size_t errlen)
{
    dataset_writer_t *w = dataset_writer_create_shard(path, &j->split->info, sh, err, errlen);
    if (!w) return -1;
    const int rc = write_range(j, w, sh->first, sh->images, err, errlen);
    if (rc) {
        dataset_writer_abort(w);
        return rc;
    }
    uint64_t s[DATASET_MAX_CHANNELS], ss[DATASET_MAX_CHANNELS];
    dataset_writer_sums(w, s, ss);
    for (int ch = 0; ch < j->split->info.c; ch++) sum[ch] += s[ch], sumsq[ch] += ss[ch];
    return dataset_writer_park(w, NULL, NULL, p, err, errlen);
}

/* Shard i of k of n images starts at image first_of(i): the same contiguous
 * runs whoever writes them. */
static long first_of(long n, int k, int i)
{
    return (long)((int64_t)n * i / k); /* n < 2^31, i < 10^5: no overflow */
}

typedef struct {
    const char *out_dir;
    int shards;
    char import_id[DATASET_IMPORT_ID_LEN + 1];
    char ***names; /* per split: k shard names, one block each */
    long *counts;  /* per split: k image counts */
} plan_t;

/* ------------------------------------------------------------ checks */

static int check_request(const char *out_dir, const import_split_t *splits, int n, int shards,
                         const import_comm_t *c, char *err, size_t errlen)
{
    if (n < 1 || n > 2) return io_fail(err, errlen, "data import: internal error: %d splits", n);
    if (shards < 0 || shards > DATASET_MAX_SHARDS)
        return io_fail(err, errlen, "--shards %d: give 1..%d shards (or leave it out for one "
                       "file per split)", shards, DATASET_MAX_SHARDS);
    if (c->ranks > 1 && shards == 0)
        return io_fail(err, errlen, "started on %d MPI ranks, but a single-file import runs on "
                       "one process: add --shards K to import in parallel, or run it without "
                       "mpirun", c->ranks);
    for (int i = 0; i < n; i++) {
        const dataset_info_t *in = &splits[i].info;
        if (in->n < 1)
            return io_fail(err, errlen, "%s/%s.h5: the %s split of %s holds no images: check the "
                           "source", out_dir, in->split, in->split, in->source);
        if (shards > in->n)
            return io_fail(err, errlen, "%s/%s.h5: --shards %d, but the %s split holds only %ld "
                           "images: give at most %ld shards", out_dir, in->split, shards,
                           in->split, in->n, in->n);
        if ((uint64_t)in->n * (uint64_t)in->h * (uint64_t)in->w > MAX_PIXELS_PER_CHANNEL)
            return io_fail(err, errlen, "%s/%s.h5: the %s split has more than %llu pixels per "
                           "channel: split the data set", out_dir, in->split, in->split,
                           (unsigned long long)MAX_PIXELS_PER_CHANNEL);
    }
    return 0;
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* What this rank is about to import, as one number: the ranks must agree. */
static uint64_t digest_of(const import_split_t *splits, int n)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < n; i++) {
        const dataset_info_t *in = &splits[i].info;
        const long dims[5] = {in->n, in->h, in->w, in->c, in->num_classes};
        h = fnv(h, dims, sizeof dims);
        h = fnv(h, &splits[i].digest, sizeof splits[i].digest);
        h = fnv(h, in->class_names, (size_t)in->num_classes * sizeof *in->class_names);
    }
    return h;
}

/* 16 hex digits, rank 0's for every rank: names this import's shards, so a
 * new import never overwrites the shards an old index still lists. */
static int make_import_id(const import_comm_t *c, char *id)
{
    uint64_t r = 0;
    if (c->rank == 0 && getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        r = ((uint64_t)t.tv_sec << 32) ^ (uint64_t)t.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    if (c->bcast(c->arg, &r, sizeof r)) return -1;
    snprintf(id, DATASET_IMPORT_ID_LEN + 1, "%016llx", (unsigned long long)r);
    return 0;
}

/* The shard names and counts of every split. */
static int make_plan(plan_t *pl, const import_split_t *splits, int n, char *err, size_t errlen)
{
    const int k = pl->shards;
    pl->names = calloc((size_t)n, sizeof *pl->names);
    pl->counts = calloc((size_t)n * (size_t)k, sizeof *pl->counts);
    if (!pl->names || !pl->counts) return io_fail(err, errlen, "%s: out of memory", pl->out_dir);
    for (int s = 0; s < n; s++) {
        const size_t stride = strlen(splits[s].info.split) + DATASET_IMPORT_ID_LEN + 24;
        char *block = malloc((size_t)k * (sizeof(char *) + stride));
        if (!block) return io_fail(err, errlen, "%s: out of memory", pl->out_dir);
        char **v = (char **)(void *)block;
        char *text = block + (size_t)k * sizeof(char *);
        for (int i = 0; i < k; i++) {
            v[i] = text + (size_t)i * stride;
            dataset_shard_name(v[i], stride, splits[s].info.split, pl->import_id, i, k);
            pl->counts[(size_t)s * k + i] =
                first_of(splits[s].info.n, k, i + 1) - first_of(splits[s].info.n, k, i);
        }
        pl->names[s] = v;
    }
    return 0;
}

static void plan_free(plan_t *pl, int n)
{
    for (int s = 0; pl->names && s < n; s++) free(pl->names[s]);
    free(pl->names);
    free(pl->counts);
}

static char *join(const char *dir, const char *name, char *err, size_t errlen)
{
    char *p = io_path_join(dir, name);
    if (!p) io_fail(err, errlen, "%s: out of memory", dir);
    return p;
}

/* This rank's part of one split: its shards, or (one process) the file. */
static int write_split(const plan_t *pl, job_t *j, int s, const double *mean_in,
                       const double *std_in, double *mean, double *std, uint64_t *sums,
                       outputs_t *o, char *err, size_t errlen)
{
    const import_split_t *sp = j->split;
    const import_comm_t *c = j->comm;
    const int k = pl->shards;
    char file[64];
    int rc = 0;
    clock_gettime(CLOCK_MONOTONIC, &j->start);
    j->done = j->total = 0;
    for (int i = c->rank; k && i < k; i += c->ranks) j->total += pl->counts[(size_t)s * k + i];
    if (!k) j->total = sp->info.n;
    if (!k) {
        snprintf(file, sizeof file, "%s.h5", sp->info.split);
        char *path = join(pl->out_dir, file, err, errlen);
        io_pending_t p;
        rc = !path ? -1 : write_single(j, path, mean_in, std_in, mean, std, &p, err, errlen);
        if (rc == 0 && outputs_add(o, &p)) {
            io_pending_free(&p);
            rc = io_fail(err, errlen, "%s: out of memory", pl->out_dir);
        }
        free(path);
    }
    for (int i = c->rank; k && rc == 0 && i < k; i += c->ranks) {
        dataset_shard_t sh = {i, k, first_of(sp->info.n, k, i), pl->counts[(size_t)s * k + i],
                              ""};
        memcpy(sh.import_id, pl->import_id, sizeof sh.import_id);
        char *path = join(pl->out_dir, pl->names[s][i], err, errlen);
        io_pending_t p;
        rc = !path ? -1 : write_shard(j, path, &sh, sums, sums + sp->info.c, &p, err, errlen);
        if (rc == 0 && outputs_add(o, &p)) {
            io_pending_free(&p);
            rc = io_fail(err, errlen, "%s: out of memory", pl->out_dir);
        }
        free(path);
    }
    if (rc == 0) report(j, 1);
    return rc;
}

/* Rank 0, once every shard stands: the indexes, or the single files. The
 * ones written are listed in o->committed (removed if a later one fails). */
static int write_indexes(const plan_t *pl, const import_split_t *splits, int n,
                         const double *mean, const double *std, outputs_t *o, char *err,
                         size_t errlen)
{
    if (!pl->shards) return outputs_commit(o, err, errlen);
    for (int s = 0; s < n; s++) {
        dataset_info_t info = splits[s].info;
        memcpy(info.mean, mean, sizeof info.mean);
        memcpy(info.std, std, sizeof info.std);
        char file[64];
        snprintf(file, sizeof file, "%s.h5", info.split);
        char *path = join(pl->out_dir, file, err, errlen);
        if (!path) return -1;
        const int rc = dataset_index_write(path, &info, pl->import_id,
                                           (const char *const *)pl->names[s],
                                           pl->counts + (size_t)s * pl->shards, pl->shards, err,
                                           errlen);
        if (rc) {
            free(path);
            return rc;
        }
        io_pending_t done = {path, NULL, {0}}; /* committed already: only removable */
        if (outputs_add(o, &done)) {
            unlink(path);
            free(path);
            return io_fail(err, errlen, "%s: out of memory", pl->out_dir);
        }
        o->committed[o->ncommitted++] = path;
    }
    return 0;
}

/* Whether name is a shard file of `split` as dataset_shard_name makes them. */
static int is_shard_name(const char *name, const char *split)
{
    const size_t ls = strlen(split), ln = strlen(name);
    return !strchr(name, '/') && ln > ls + 4 && strncmp(name, split, ls) == 0 &&
           name[ls] == '-' && strcmp(name + ln - 3, ".h5") == 0;
}

/* Rank 0, after the new files stand: removes the shards of the import they
 * replaced (listed by the old index), except any the new one uses. */
static void remove_old_shards(const plan_t *pl, const import_split_t *splits, int n,
                              char **const *old, const int *nold)
{
    for (int s = 0; s < n; s++)
        for (int i = 0; i < nold[s]; i++) {
            const char *name = old[s][i];
            int reused = 0;
            for (int k = 0; k < pl->shards && !reused; k++)
                reused = strcmp(name, pl->names[s][k]) == 0;
            if (reused || !is_shard_name(name, splits[s].info.split)) continue;
            char *path = io_path_join(pl->out_dir, name);
            if (path) unlink(path);
            free(path);
        }
}

int data_import(const char *out_dir, const import_split_t *splits, int n,
                const import_opts_t *opts, char *err, size_t errlen)
{
    import_comm_t single;
    const import_comm_t *c = comm_of(opts, &single);
    plan_t pl = {out_dir, opts ? opts->shards : 0, "", NULL, NULL};
    if (!out_dir || !*out_dir)
        return io_fail(err, errlen, "data import: no output directory given");
    /* every rank takes part in the exchanges below whatever its own checks
     * found (its listing of the source may differ), then they agree */
    int rc = check_request(out_dir, splits, n, pl.shards, c, err, errlen);
    uint64_t mine = digest_of(splits, n), first = mine;
    if (c->bcast(c->arg, &first, sizeof first) || make_import_id(c, pl.import_id))
        rc = io_fail(err, errlen, "%s: the MPI ranks could not exchange the plan", out_dir);
    if (rc == 0 && mine != first)
        rc = io_fail(err, errlen, "%s: rank %d sees another source than rank 0 (files added or "
                     "removed during the import, or ranks on file systems that differ): give "
                     "every rank the same source", splits[0].info.source, c->rank);
    if (rc == 0 && pl.shards) rc = make_plan(&pl, splits, n, err, errlen);
    if (!c->all_ok(c->arg, rc == 0)) {
        plan_free(&pl, n);
        if (rc == 0) err[0] = '\0';
        return rc ? rc : -1;
    }

    char **old[2] = {NULL, NULL};
    int nold[2] = {0, 0};
    for (int s = 0; c->rank == 0 && s < n; s++) {
        char file[64];
        snprintf(file, sizeof file, "%s.h5", splits[s].info.split);
        char *path = io_path_join(out_dir, file);
        if (path) nold[s] = dataset_index_shards(path, &old[s], NULL);
        free(path);
    }

    outputs_t out = {0};
    double mean[DATASET_MAX_CHANNELS] = {0}, std[DATASET_MAX_CHANNELS] = {0};
    long block = 1;
    size_t image_bytes = 1;
    for (int s = 0; s < n; s++) {
        const dataset_info_t *in = &splits[s].info;
        const size_t b = (size_t)in->h * (size_t)in->w * (size_t)in->c;
        if (b > image_bytes) image_bytes = b;
        if (splits[s].block > block) block = splits[s].block;
    }
    job_t j = {out_dir, c, NULL, malloc((size_t)block * image_bytes),
               malloc((size_t)block * sizeof(int32_t)), 0, 0, {0, 0}};
    int ok = j.pixels && j.labels;
    if (!ok) rc = io_fail(err, errlen, "%s: out of memory for %ld images", out_dir, block);
    ok = c->all_ok(c->arg, ok);
    for (int s = 0; ok && s < n; s++) {
        const int c_ = splits[s].info.c;
        uint64_t sums[2 * DATASET_MAX_CHANNELS] = {0};
        j.split = &splits[s];
        rc = write_split(&pl, &j, s, s ? mean : NULL, s ? std : NULL, s ? NULL : mean,
                         s ? NULL : std, sums, &out, err, errlen);
        ok = c->all_ok(c->arg, rc == 0);
        if (!ok || s > 0 || !pl.shards) continue;
        /* the train split's statistics from every shard's exact sums */
        if (c->sum_u64(c->arg, sums, 2 * c_)) {
            rc = io_fail(err, errlen, "%s: the MPI ranks could not sum the pixel statistics",
                         out_dir);
            ok = 0;
            break;
        }
        dataset_stats_from_sums(splits[0].info.n, splits[0].info.h, splits[0].info.w, c_, sums,
                                sums + c_, mean, std);
        /* the same numbers on every rank: they refuse together */
        char train[PATH_MAX];
        snprintf(train, sizeof train, "%s/%s.h5", out_dir, splits[0].info.split);
        if (dataset_stats_check(train, c_, mean, std, err, errlen)) rc = -1, ok = 0;
    }
    /* every rank's files stand complete: shards into place, then the indexes */
    if (ok && pl.shards) {
        rc = outputs_commit(&out, err, errlen);
        ok = c->all_ok(c->arg, rc == 0);
    }
    if (ok) {
        if (c->rank == 0) rc = write_indexes(&pl, splits, n, mean, std, &out, err, errlen);
        ok = c->all_ok(c->arg, rc == 0);
    }
    if (ok && c->rank == 0) remove_old_shards(&pl, splits, n, old, nold);
    outputs_free(&out, !ok);
    for (int s = 0; s < n; s++) free(old[s]);
    free(j.pixels);
    free(j.labels);
    plan_free(&pl, n);
    if (ok) return 0;
    if (rc == 0) err[0] = '\0';
    return rc ? rc : -1;
}
