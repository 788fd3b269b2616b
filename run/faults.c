#include "run/faults.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int kill_rank;      /* -1: no kill */
    int at_checkpoint;  /* phase=checkpoint */
    long step;
    long long full_disk; /* 0: none */
    char nan_grad[64];  /* "": none */
    int early_signal;   /* signal-before-init: 0 none, SIGTERM or SIGUSR1 */
    char eval_phase[16]; /* eval-signal: "" none, else the phase */
    long slow_ms;        /* slow-steps: 0 none */
    long long stage_full; /* stage-full: 0 none */
} fault_t;

static fault_t fault = {-1, 0, -1, 0, "", 0, "", 0, 0};

static const char *const eval_phases[] = {"features", "probe", "knn", "mi", "finetune"};

static int is_eval_phase(const char *v)
{
    for (size_t i = 0; i < sizeof eval_phases / sizeof eval_phases[0]; i++)
        if (strcmp(v, eval_phases[i]) == 0) return 1;
    return 0;
}

int faults_parse(char *err, size_t errlen)
{
    const char *env = getenv("MIMAE_FAULT");
    if (!env || !*env) return 0;
    char text[256], *save = NULL;
    snprintf(text, sizeof text, "%s", env);
    for (char *kv = strtok_r(text, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '='), *end = NULL;
        if (!eq) return snprintf(err, errlen, "MIMAE_FAULT: '%s' is not key=value", kv), -1;
        *eq = 0;
        const char *v = eq + 1;
        errno = 0;
        if (strcmp(kv, "kill-rank") == 0) fault.kill_rank = (int)strtol(v, &end, 10);
        else if (strcmp(kv, "step") == 0) fault.step = strtol(v, &end, 10);
        else if (strcmp(kv, "full-disk") == 0) fault.full_disk = strtoll(v, &end, 10);
        else if (strcmp(kv, "phase") == 0 && (!strcmp(v, "step") || !strcmp(v, "checkpoint")))
            fault.at_checkpoint = v[0] == 'c', end = (char *)v + strlen(v);
        else if (strcmp(kv, "nan-grad") == 0 && strlen(v) < sizeof fault.nan_grad)
            snprintf(fault.nan_grad, sizeof fault.nan_grad, "%s", v), end = (char *)v + strlen(v);
        else if (strcmp(kv, "signal-before-init") == 0 &&
                 (strcmp(v, "TERM") == 0 || strcmp(v, "USR1") == 0))
            fault.early_signal = v[0] == 'T' ? SIGTERM : SIGUSR1, end = (char *)v + strlen(v);
        else if (strcmp(kv, "slow-steps") == 0) fault.slow_ms = strtol(v, &end, 10);
        else if (strcmp(kv, "stage-full") == 0) fault.stage_full = strtoll(v, &end, 10);
        else if (strcmp(kv, "eval-signal") == 0 && is_eval_phase(v))
            snprintf(fault.eval_phase, sizeof fault.eval_phase, "%s", v),
                end = (char *)v + strlen(v);
        if (!end || end == v || *end || errno)
            return snprintf(err, errlen, "MIMAE_FAULT: %s=%s: unknown key or bad value (test "
                            "hook: see run/faults.h)", kv, v), -1;
    }
    const int at_step = fault.kill_rank >= 0 || fault.full_disk > 0 || fault.nan_grad[0];
    if (fault.slow_ms < 0)
        return snprintf(err, errlen, "MIMAE_FAULT=%s: slow-steps must be >= 0", env), -1;
    if (fault.step < 0 && (at_step || (!fault.early_signal && !fault.eval_phase[0] &&
                                       !fault.slow_ms && fault.stage_full <= 0)))
        return snprintf(err, errlen, "MIMAE_FAULT=%s: step=S (>= 0) is required", env), -1;
    return 0;
}

void faults_before_mpi_init(void)
{
    const char *env = getenv("MIMAE_FAULT");
    const char *v = env ? strstr(env, "signal-before-init=") : NULL;
    if (!v) return;
    v += strlen("signal-before-init=");
    if (strncmp(v, "TERM", 4) == 0) raise(SIGTERM);
    else if (strncmp(v, "USR1", 4) == 0) raise(SIGUSR1);
}

/* SIGXFSZ while a killed-during-checkpoint rank 0 writes: die as by kill -9. */
static void fault_die(int sig)
{
    (void)sig;
    raise(SIGKILL);
}

int faults_arm_stage(struct rlimit *saved)
{
    if (fault.stage_full <= 0 || getrlimit(RLIMIT_FSIZE, saved)) return 0;
    struct rlimit lim = *saved;
    lim.rlim_cur = (rlim_t)fault.stage_full;
    signal(SIGXFSZ, SIG_IGN);
    return setrlimit(RLIMIT_FSIZE, &lim) == 0;
}

int faults_arm_checkpoint(int rank, long step, size_t file_bytes, struct rlimit *saved)
{
    if (step != fault.step) return 0;
    if (fault.kill_rank == rank && fault.at_checkpoint && rank != 0) raise(SIGKILL);
    const int kill_writer = rank == 0 && fault.kill_rank == 0 && fault.at_checkpoint;
    const int full = rank == 0 && fault.full_disk > 0;
    if ((!kill_writer && !full) || getrlimit(RLIMIT_FSIZE, saved)) return 0;
    struct rlimit lim = *saved;
    lim.rlim_cur = (rlim_t)(full ? (size_t)fault.full_disk : file_bytes / 2);
    signal(SIGXFSZ, full ? SIG_IGN : fault_die);
    return setrlimit(RLIMIT_FSIZE, &lim) == 0;
}

void faults_disarm(const struct rlimit *saved)
{
    setrlimit(RLIMIT_FSIZE, saved);
    signal(SIGXFSZ, SIG_DFL);
}

/* The nan-grad fault: where the tensor's gradient starts in the gradient
 * vector, and the model whose step count says when. */
static struct {
    const mimae_model_t *model;
    size_t offset;
} nan_target;

static void poison_gradient(void *ctx, float *grads)
{
    (void)ctx;
    if (nan_target.model->step == fault.step) grads[nan_target.offset] = NAN;
}

int faults_attach(train_step_t *step, mimae_model_t *m, char *err, size_t errlen)
{
    if (!fault.nan_grad[0]) return 0;
    const param_info_t *p = param_table_find(&m->table, fault.nan_grad);
    const param_info_t *q = p ? NULL : param_table_find(&m->q_table, fault.nan_grad);
    if (!p && !q)
        return snprintf(err, errlen, "MIMAE_FAULT: nan-grad=%s: no such tensor", fault.nan_grad), -1;
    nan_target.model = m;
    nan_target.offset = p ? p->offset : m->table.total + q->offset;
    step->gradient_hook = poison_gradient;
    step->gradient_hook_ctx = NULL;
    return 0;
}

void faults_at_step(int rank, long step)
{
    if (fault.kill_rank == rank && !fault.at_checkpoint && step == fault.step) raise(SIGKILL);
    if (fault.slow_ms > 0) {
        const struct timespec pause = {fault.slow_ms / 1000, fault.slow_ms % 1000 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

void faults_at_eval_phase(const char *phase, int rank, int ranks)
{
    if (rank == ranks - 1 && fault.eval_phase[0] && strcmp(phase, fault.eval_phase) == 0) {
        fault.eval_phase[0] = 0; /* once: a rerun's evaluation is not stopped again */
        raise(SIGTERM);
    }
}
