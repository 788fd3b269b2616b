/* Sweeps on a real Slurm: the test starts a single-node cluster with
 * slurm/local-cluster (slurmctld + slurmd in a temporary directory), then
 *   (a) `mimae sweep plan` of a 2 x 2 sweep: count, order, directories; a bad
 *       sweep value exits 2 with sweep_parse's message;
 *   (b) `mimae sweep submit` of a 4-task sweep of a tiny config, 2 ranks per
 *       task: every task's results file and expanded descriptor, each with its
 *       own swept values;
 *   (c) requeue: a task signalled with SIGUSR1 mid-run (scancel --signal=USR1
 *       --batch) writes a checkpoint, requeues itself, resumes from that
 *       checkpoint and ends with parameters bitwise equal to an undisturbed
 *       run of the same task;
 * and stops the cluster at the end (also when a test fails, and on SIGTERM
 * or SIGINT). Missing Slurm programs fail the tests with the apt-get line. */
#define _DEFAULT_SOURCE /* setenv */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/vit/model.h"
#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "experiments/sweep_cmd.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "io/synthetic.h"
#include "fs_util.h"
#include "mpi_run.h"

#define JOB_WAIT_S 180 /* bound on waiting for the jobs of one test */

static char build_dir[PATH_MAX];   /* absolute: mimae_dist lives here */
static char repo_dir[PATH_MAX];    /* build_dir/.. : slurm/ lives here */
static char work_dir[256];         /* temporary: data, runs, the cluster */
static char cluster_dir[320];
static int cluster_up;
static char cluster_error[1024];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs `sh -c cmd`; its stdout (and stderr when the command says 2>&1) into
 * out. Returns the exit status (-1 when it could not run). */
static int shell(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int shell(char *out, size_t len, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = 0;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        for (size_t i = 0; i < n; i++)
            if (out && used + 1 < len) out[used++] = buf[i];
    if (out && len) out[used] = 0;
    int st = pclose(p);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* `mimae sweep ARGS...` in this process, its stdout into out. */
static int sweep(char *out, size_t len, int argc, const char **argv)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sweep-stdout.txt", work_dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = sweep_command(argc, (char **)argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    const char *text = read_all(path);
    size_t n = text ? strlen(text) : 0;
    if (n >= len) n = len - 1;
    memcpy(out, text ? text : "", n);
    out[n] = 0;
    return rc;
}

/* ---- the cluster ---- */

static void stop_cluster(void)
{
    if (!cluster_dir[0]) return;
    char out[4096];
    int rc = shell(out, sizeof out, "'%s/slurm/local-cluster' stop '%s' 2>&1", repo_dir, cluster_dir);
    if (rc != 0) fprintf(stderr, "test_slurm: local-cluster stop: status %d: %s\n", rc, out);
    cluster_up = 0;
}

/* A test stopped by the runner's timeout (SIGTERM) or ^C still stops the
 * daemons and removes its directory; fork and exec are async-signal-safe. */
static void on_signal(int sig)
{
    if (cluster_dir[0]) {
        pid_t pid = fork();
        if (pid == 0) {
            char script[PATH_MAX + 32];
            snprintf(script, sizeof script, "%s/slurm/local-cluster", repo_dir);
            execl("/bin/bash", "bash", script, "stop", cluster_dir, (char *)NULL);
            _exit(127);
        }
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    if (work_dir[0] && !getenv("MIMAE_KEEP_TEST_DIR")) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/rm", "rm", "-rf", work_dir, (char *)NULL);
            _exit(127);
        }
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work_dir, sizeof work_dir, "mimae-slurm-test");
    snprintf(cluster_dir, sizeof cluster_dir, "%s/cluster", work_dir);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char out[8192];
    const char *programs = "slurmctld slurmd sbatch srun squeue scancel scontrol sinfo";
    if (shell(out, sizeof out, "for c in %s; do command -v $c >/dev/null || echo -n \" $c\"; done",
              programs) != 0 || out[0]) {
        snprintf(cluster_error, sizeof cluster_error,
                 "Slurm programs missing:%.200s: install them (as root: apt-get install -y slurm-wlm, "
                 "or make deps)", out);
        cluster_dir[0] = 0;
        return 0;
    }
    const double t0 = now_s();
    int rc = shell(out, sizeof out,
                   "LOCAL_CLUSTER_RECORD=0 LOCAL_CLUSTER_WAIT=60 '%s/slurm/local-cluster' start '%s' 2>&1",
                   repo_dir, cluster_dir);
    char conf[512];
    snprintf(conf, sizeof conf, "%s/slurm.conf", cluster_dir);
    if (rc != 0 || !strstr(out, "export SLURM_CONF=")) {
        snprintf(cluster_error, sizeof cluster_error,
                 "slurm/local-cluster start %.300s failed (status %d): %.600s", cluster_dir, rc, out);
        stop_cluster();
        return 0;
    }
    setenv("SLURM_CONF", conf, 1);
    cluster_up = 1;
    fprintf(stderr, "test_slurm: cluster up in %.1f s (%s)\n", now_s() - t0, cluster_dir);
    /* A second start says it runs already and changes nothing. */
    rc = shell(out, sizeof out, "LOCAL_CLUSTER_RECORD=0 '%s/slurm/local-cluster' start '%s' 2>&1",
               repo_dir, cluster_dir);
    if (rc != 0 || !strstr(out, "already running")) {
        snprintf(cluster_error, sizeof cluster_error, "second start: status %d: %.900s", rc, out);
        cluster_up = 0;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_cluster();
    if (cluster_dir[0]) { /* the daemons are gone: status says so */
        char out[1024];
        int rc = shell(out, sizeof out, "'%s/slurm/local-cluster' status '%s' 2>&1", repo_dir,
                       cluster_dir);
        if (rc != 3) fprintf(stderr, "test_slurm: after stop, status %d: %s\n", rc, out);
    }
    if (!getenv("MIMAE_KEEP_TEST_DIR")) remove_tree(work_dir);
    else fprintf(stderr, "test_slurm: kept %s\n", work_dir);
    return 0;
}

static void require_cluster(void)
{
    if (!cluster_up) fail_msg("no Slurm cluster: %s", cluster_error[0] ? cluster_error : "?");
}

/* ---- fixtures ---- */

static void make_data(void)
{
    char dir[512], err[512], path[600];
    snprintf(dir, sizeof dir, "%s/data", work_dir);
    snprintf(path, sizeof path, "%s/train.h5", dir);
    if (access(path, F_OK) == 0) return;
    if (synthetic_generate(dir, 64, 16, 16, 1, 4, 3, err, sizeof err)) fail_msg("%s", err);
}

/* A tiny run: test-small on 16x16x1 shapes, batch 8, no evaluation. */
static void write_descriptor(const char *name, long max_steps, long log_every, const char *sweep_text)
{
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/%s.ini", work_dir, name);
    snprintf(text, sizeof text,
             "[model]\npreset = test-small\nchannels = 1\n"
             "[data]\ntrain = %s/data/train.h5\n"
             "[train]\nglobal_batch = 8\nepochs = 100\nmax_steps = %ld\n"
             "[run]\nout_dir = %s/runs/%s\nlog_every = %ld\ncheckpoint_every = 0\n"
             "recon_samples = 0\n"
             "[eval]\nmi = 0\n%s",
             work_dir, max_steps, work_dir, name, log_every, sweep_text);
    write_text(path, text);
}

/* Submits EXP (2 ranks per task on one CPU) with extra --set options; returns the job id. */
static long submit(const char *name, const char *set1)
{
    char desc[512], tpl[PATH_MAX + 32], out[4096];
    snprintf(desc, sizeof desc, "%s/%s.ini", work_dir, name);
    snprintf(tpl, sizeof tpl, "%s/slurm/job.sbatch.in", repo_dir);
    const char *argv[20] = {"submit", desc, "--ranks", "2", "--bin", build_dir, "--template", tpl};
    int argc = 8;
    if (set1) argv[argc++] = "--set", argv[argc++] = set1;
    argv[argc++] = "--";
    argv[argc++] = "--overcommit"; /* 2 ranks on 1 CPU: two tasks at a time on 2 CPUs */
    int rc = sweep(out, sizeof out, argc, argv);
    if (rc != 0) fail_msg("mimae sweep submit %s: status %d, output: %s", name, rc, out);
    const char *line = strstr(out, "Submitted batch job ");
    if (!line) fail_msg("mimae sweep submit %s printed no job id: %s", name, out);
    long job = strtol(line + strlen("Submitted batch job "), NULL, 10);
    assert_true(job > 0);
    return job;
}

static int job_active(long job)
{
    char out[4096];
    shell(out, sizeof out, "squeue -h -j %ld -o '%%i %%T' 2>/dev/null", job);
    return out[0] != 0;
}

/* Waits until the jobs have left the queue; fails after JOB_WAIT_S. */
static void wait_jobs(const long *jobs, int n, const char *what)
{
    const double t0 = now_s();
    for (;;) {
        int active = 0;
        for (int i = 0; i < n; i++) active += job_active(jobs[i]);
        if (!active) break;
        if (now_s() - t0 > JOB_WAIT_S) {
            char out[4096];
            shell(out, sizeof out, "squeue 2>&1; tail -n 20 '%s/slurmctld.log'", cluster_dir);
            fail_msg("%s: jobs still queued after %d s:\n%s", what, JOB_WAIT_S, out);
        }
        sleep_ms(300);
    }
    fprintf(stderr, "test_slurm: %s: jobs done in %.1f s\n", what, now_s() - t0);
}

static const char *task_log(const char *name, int task)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/runs/%s/logs/task-%04d.log", work_dir, name, task);
    return path;
}

/* ---- (a) plan ---- */

static void test_plan(void **state)
{
    (void)state;
    make_data();
    write_descriptor("plan", 6, 2, "[sweep]\nseeds = 3, 4\nmimae.mask_ratio = 0.75, 0.8\n");
    char desc[512], out[8192];
    snprintf(desc, sizeof desc, "%s/plan.ini", work_dir);
    const char *argv[] = {"plan", desc};
    assert_int_equal(sweep(out, sizeof out, 2, argv), 0);
    /* seeds innermost whatever the file order: mask ratio slowest */
    const char *expect[4][2] = {{"0.75", "3"}, {"0.75", "4"}, {"0.8", "3"}, {"0.8", "4"}};
    const char *p = strstr(out, "mimae.mask_ratio  train.seed");
    if (!p) fail_msg("no table header in:\n%s", out);
    int rows = 0;
    for (const char *line = strchr(p, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        long t;
        char ratio[32], seed[32], dir[512], tail[512];
        if (sscanf(line + 1, "%ld %31s %31s %511s", &t, ratio, seed, dir) != 4) continue;
        assert_int_equal(t, rows);
        assert_string_equal(ratio, expect[rows][0]);
        assert_string_equal(seed, expect[rows][1]);
        snprintf(tail, sizeof tail, "%s/runs/plan/task-%04d", work_dir, rows);
        assert_string_equal(dir, tail);
        rows++;
    }
    assert_int_equal(rows, 4);
    assert_non_null(strstr(out, "\n4 tasks\n"));
    /* a --set applies to the table too */
    const char *argv2[] = {"plan", desc, "--set", "run.out_dir=/elsewhere"};
    assert_int_equal(sweep(out, sizeof out, 4, argv2), 0);
    assert_non_null(strstr(out, "/elsewhere/task-0003"));
    /* a bad value: sweep_parse's message, exit 2, nothing on stdout */
    write_descriptor("badplan", 6, 2, "[sweep]\nmimae.mask_ratio = 0.75, 1.5\n");
    snprintf(desc, sizeof desc, "%s/badplan.ini", work_dir);
    assert_int_equal(sweep(out, sizeof out, 2, argv), 2);
    assert_string_equal(out, "");
    /* bad usage */
    const char *argv3[] = {"plan", desc, "--ranks", "2"};
    assert_int_equal(sweep(out, sizeof out, 4, argv3), 2);
    const char *argv4[] = {"bogus"};
    assert_int_equal(sweep(out, sizeof out, 1, argv4), 2);
}

/* ---- the shipped descriptors load as mimae_dist loads them ---- */

static void test_shipped_descriptors(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        long tasks, images; /* images: the data set's size, for the derived schedule */
        const char *train;
    } shipped[] = {
        {"fmnist_mimae", 1, 60000, "data/fmnist/train.h5"},
        {"fmnist_ablation", 18, 60000, "data/fmnist/train.h5"},
        {"fmnist_mask_ratio", 12, 60000, "data/fmnist/train.h5"},
        {"fmnist_loss_weights", 27, 60000, "data/fmnist/train.h5"},
        {"imagenet_vitb16", 1, 1281167, "data/imagenet/train.h5"},
    };
    static descriptor_t d;
    static sweep_t s;
    char path[PATH_MAX + 64], err[1024];
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        snprintf(path, sizeof path, "%s/experiments/%s.ini", repo_dir, shipped[i].file);
        if (descriptor_load(&d, path, NULL, 0, shipped[i].images, err, sizeof err) ||
            sweep_parse(&d, &s, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(s.tasks, shipped[i].tasks);
        assert_string_equal(d.run.train_data, shipped[i].train);
        assert_string_equal(d.run.name, shipped[i].file);
        assert_int_equal(d.model.num_masks == 4 || s.n_keys > 0, 1);
    }
    /* the paper's recipe */
    snprintf(path, sizeof path, "%s/experiments/imagenet_vitb16.ini", repo_dir);
    assert_int_equal(descriptor_load(&d, path, NULL, 0, 1281167, err, sizeof err), 0);
    assert_int_equal(d.model.img_h, 224);
    assert_int_equal(d.model.patch, 16);
    assert_int_equal(d.model.enc_dim, 768);
    assert_int_equal(d.model.enc_depth, 12);
    assert_int_equal(d.model.global_batch, 4096);
    assert_int_equal(d.run.epochs, 400);
    assert_int_equal(d.model.num_masks, 4);
    assert_true(d.model.mask_ratio == 0.75);
    assert_true(d.model.blr == 1.5e-4f);
    assert_int_equal(d.model.total_iters, 400L * (1281167 / 4096));
    assert_int_equal(d.model.warmup_iters, 40L * (1281167 / 4096));
    /* the ablation's arms: test_arms */
}

/* ---- (b) a 4-task sweep end to end ---- */

static void test_sweep_end_to_end(void **state)
{
    (void)state;
    require_cluster();
    make_data();
    write_descriptor("four", 6, 2, "[sweep]\nmimae.mask_ratio = 0.75, 0.8\nseeds = 0, 1\n");
    long job = submit("four", NULL);
    wait_jobs(&job, 1, "4-task sweep");
    const double ratio[4] = {0.75, 0.75, 0.8, 0.8};
    const long seed[4] = {0, 1, 0, 1};
    char path[700], err[1024];
    snprintf(path, sizeof path, "%s/runs/four/sweep.sbatch", work_dir);
    assert_int_equal(access(path, X_OK), 0);
    for (int t = 0; t < 4; t++) {
        const char *log = read_all(task_log("four", t));
        if (!log) fail_msg("task %d: no log %s", t, task_log("four", t));
        if (!strstr(log, "mimae_dist exited with status 0"))
            fail_msg("task %d did not finish; its log:\n%s", t, log);
        /* the expanded descriptor written at submission */
        static descriptor_t d;
        snprintf(path, sizeof path, "%s/runs/four/tasks/task-%04d.ini", work_dir, t);
        if (descriptor_load(&d, path, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
        assert_true(d.model.mask_ratio == ratio[t]);
        assert_int_equal(d.run.seed, seed[t]);
        assert_int_equal(d.run.max_steps, 6);
        assert_int_equal(d.sweep_count, 0);
        /* the results */
        snprintf(path, sizeof path, "%s/runs/four/task-%04d/results.h5", work_dir, t);
        results_t *r = results_load(path, err, sizeof err);
        if (!r) fail_msg("task %d: %s", t, err);
        assert_int_equal(results_step_count(r), 6);
        assert_int_equal(results_steps(r)[5].step, 6);
        assert_true(results_config(r)->mask_ratio == ratio[t]);
        char name[64], seed_text[16];
        snprintf(name, sizeof name, "four-task%04d", t);
        snprintf(seed_text, sizeof seed_text, "%ld", seed[t]);
        assert_string_equal(results_get_attr(r, "run.name"), name);
        assert_string_equal(results_get_attr(r, "train.seed"), seed_text);
        assert_int_equal(results_env(r)->ranks, 2);
        results_free(r);
    }
}

/* ---- (c) requeue ---- */

/* The highest "step N/" in a log. */
static long logged_step(const char *log)
{
    long best = 0;
    for (const char *p = log; (p = strstr(p, "step ")) != NULL; p += 5) {
        char *end;
        long s = strtol(p + 5, &end, 10);
        if (end != p + 5 && *end == '/' && s > best) best = s;
    }
    return best;
}

static mimae_model_t *load_final(const char *path)
{
    char err[1024];
    mimae_config_t cfg;
    if (checkpoint_read_config(path, &cfg, err, sizeof err)) fail_msg("%s", err);
    mimae_model_t *m = mimae_model_create(&cfg, 1, 0, err, sizeof err);
    if (!m) fail_msg("%s", err);
    train_state_t st;
    if (checkpoint_load(path, m, &st, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(st.step, 300);
    return m;
}

static void test_requeue_resumes_bitwise(void **state)
{
    (void)state;
    require_cluster();
    make_data();
    write_descriptor("requeue", 300, 10, "");
    char reference_dir[400];
    snprintf(reference_dir, sizeof reference_dir, "run.out_dir=%s/runs/reference", work_dir);
    long jobs[2];
    /* 300 steps of at least 20 ms (the fault hook's pause): about 6 s, so the
     * signal lands mid-run however fast the steps themselves are */
    setenv("MIMAE_FAULT", "slow-steps=20", 1);
    jobs[0] = submit("requeue", NULL);
    jobs[1] = submit("requeue", reference_dir); /* the same task, undisturbed */
    unsetenv("MIMAE_FAULT");

    /* signal the batch shell once the run has made progress */
    const double t0 = now_s();
    long step = 0;
    for (;;) {
        const char *log = read_all(task_log("requeue", 0));
        step = log ? logged_step(log) : 0;
        if (step >= 20) break;
        if (!job_active(jobs[0]) || now_s() - t0 > JOB_WAIT_S)
            fail_msg("the job to signal ended or never progressed (step %ld); log:\n%s", step,
                     log ? log : "(none)");
        sleep_ms(100);
    }
    char out[4096];
    int rc = shell(out, sizeof out, "scancel --signal=USR1 --batch %ld_0 2>&1", jobs[0]);
    if (rc != 0) fail_msg("scancel --signal=USR1 --batch %ld_0: status %d: %s", jobs[0], rc, out);
    wait_jobs(jobs, 2, "requeue and reference");

    const char *log = read_all(task_log("requeue", 0));
    assert_non_null(log);
    const char *stop = strstr(log, "writing a checkpoint at step ");
    if (!stop || !strstr(log, "exited with status 3") || !strstr(log, "requeued job") ||
        !strstr(log, "restart 1,") || !strstr(log, "resuming from") ||
        !strstr(log, "mimae_dist exited with status 0"))
        fail_msg("the log does not show stop, requeue, resume and the end:\n%s", log);
    const long stopped_at = strtol(stop + strlen("writing a checkpoint at step "), NULL, 10);
    fprintf(stderr, "test_slurm: signalled at logged step %ld, checkpoint at %ld, resumed to 300\n",
            step, stopped_at);
    assert_true(stopped_at >= 20 && stopped_at < 300);
    const char *ref_log = read_all(task_log("reference", 0));
    /* the reference ran undisturbed (its log is beside its own sweep directory) */
    if (ref_log && strstr(ref_log, "restart 1,")) fail_msg("the reference was requeued too");

    char a[700], b[700];
    snprintf(a, sizeof a, "%s/runs/requeue/task-0000/checkpoints/ckpt-0000000300.h5", work_dir);
    snprintf(b, sizeof b, "%s/runs/reference/task-0000/checkpoints/ckpt-0000000300.h5", work_dir);
    mimae_model_t *ma = load_final(a), *mb = load_final(b);
    const size_t n = mimae_model_param_count(ma), nq = mimae_model_q_param_count(ma);
    assert_int_equal(n, mimae_model_param_count(mb));
    assert_int_equal(nq, mimae_model_q_param_count(mb));
    assert_true(n > 0 && nq > 0);
    assert_memory_equal(ma->param_mem, mb->param_mem, n * sizeof(float));
    assert_memory_equal(ma->q_param_mem, mb->q_param_mem, nq * sizeof(float));
    /* and the parameters did change from the initial ones */
    char err[256];
    mimae_model_t *init = mimae_model_create(&ma->cfg, 1, 0, err, sizeof err);
    assert_non_null(init);
    assert_true(memcmp(init->param_mem, ma->param_mem, n * sizeof(float)) != 0);
    mimae_model_free(init);
    mimae_model_free(ma);
    mimae_model_free(mb);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (test_build_dir(argv[0], build_dir, sizeof build_dir)) return 1;
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", build_dir);
    snprintf(repo_dir, sizeof repo_dir, "%s", dirname(self));
    setenv("ASAN_OPTIONS", "detect_leaks=0", 0); /* Open MPI's own allocations at exit */
    unsetenv("OPENBLAS_NUM_THREADS");             /* the job script decides */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_shipped_descriptors),
        cmocka_unit_test(test_sweep_end_to_end),
        cmocka_unit_test(test_requeue_resumes_bitwise),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
