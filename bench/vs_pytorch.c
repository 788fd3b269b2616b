/* mimae's single-process training step against the same step in PyTorch
 * (bench/vs_pytorch.py), same threads, same machine, same run.
 *
 *   build/bench/vs_pytorch [--threads T] [--steps K] [--warmup W]
 *                          [--configs cifar,fmnist] [--masks 4,1]
 *                          [--python /usr/bin/python3] [--script bench/vs_pytorch.py]
 *                          [--no-torch]
 *
 * For every config and mask count: W + K steps of mimae_dist's step, dist/train_step.h (median of
 * the K), then the PyTorch script in a child process with OPENBLAS_NUM_THREADS
 * = OMP_NUM_THREADS = T and torch.set_num_threads(T). Prints a table and one
 * `RESULT vs_pytorch ...` line per case for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/kernels/blas_check.h"

typedef struct {
    int threads, steps, warmup, torch;
    const char *python, *script;
    char configs[64], masks[64];
} options_t;

static void usage(void)
{
    fprintf(stderr, "usage: vs_pytorch [--threads T] [--steps K] [--warmup W] "
                    "[--configs cifar,fmnist] [--masks 4,1] [--python PY] [--script PATH] "
                    "[--no-torch]\n");
    exit(2);
}

/* Runs the PyTorch peer; returns its median ms/step or -1. */
static double torch_ms(const options_t *o, const char *config, int N, int batch)
{
    char cmd[1024];
    /* PyTorch with its own threading defaults, not the ones mimae's start set */
    snprintf(cmd, sizeof cmd,
             "env -u OPENBLAS_THREAD_TIMEOUT -u OMP_WAIT_POLICY "
             "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d %s %s --preset %s --masks %d "
             "--threads %d --steps %d --warmup %d --batch %d",
             o->threads, o->threads, o->python, o->script, config, N, o->threads, o->steps,
             o->warmup, batch);
    FILE *p = popen(cmd, "r");
    if (!p) return -1.0;
    char line[1024];
    double ms = -1.0;
    while (fgets(line, sizeof line, p)) {
        const char *k = strstr(line, "ms_per_step=");
        if (strncmp(line, "torch ", 6) == 0 && k) ms = atof(k + strlen("ms_per_step="));
    }
    if (pclose(p) != 0) return -1.0;
    return ms;
}

int main(int argc, char **argv)
{
    blas_quiet_idle_threads(argv); /* as mimae_dist does */
    options_t o = {1, 3, 1, 1, "/usr/bin/python3", "bench/vs_pytorch.py", "cifar,fmnist", "4,1"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-torch")) { o.torch = 0; continue; }
        if (!v) usage();
        if (!strcmp(a, "--threads")) o.threads = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--python")) o.python = v;
        else if (!strcmp(a, "--script")) o.script = v;
        else if (!strcmp(a, "--configs")) snprintf(o.configs, sizeof o.configs, "%s", v);
        else if (!strcmp(a, "--masks")) snprintf(o.masks, sizeof o.masks, "%s", v);
        else usage();
        i++;
    }
    if (o.threads < 1 || o.steps < 1 || o.warmup < 0) usage();
    openblas_set_num_threads(o.threads);
    const int batch = 64;
    bench_print_blas("vs_pytorch");
    printf("vs_pytorch: batch %d, %d thread(s), OpenBLAS core %s, median of %d steps after "
           "%d warm-up\n", batch, o.threads, openblas_get_corename(), o.steps, o.warmup);
    printf("%-7s %-7s %7s %12s %12s %9s %12s\n", "config", "method", "threads", "mimae ms",
           "torch ms", "speedup", "mimae img/s");
    fflush(stdout);

    char cfgs[64];
    snprintf(cfgs, sizeof cfgs, "%s", o.configs);
    for (char *cs = NULL, *cname = strtok_r(cfgs, ",", &cs); cname;
         cname = strtok_r(NULL, ",", &cs)) {
        char masks[64];
        snprintf(masks, sizeof masks, "%s", o.masks);
        for (char *ms = NULL, *mn = strtok_r(masks, ",", &ms); mn; mn = strtok_r(NULL, ",", &ms)) {
            const int N = atoi(mn);
            mimae_config_t c;
            if (bench_config(&c, cname, N, batch)) {
                fprintf(stderr, "vs_pytorch: unknown config %s\n", cname);
                return 2;
            }
            mimae_model_t *m = bench_model(&c);
            const size_t n = (size_t)batch * c.img_h * c.img_w * c.channels;
            float *images = malloc(n * sizeof *images);
            bench_images(images, n, 5);
            train_step_t step;
            bench_step_init(&step, m);
            double ours = 1e3 * bench_time_steps(&step, images, o.warmup, o.steps, NULL);
            train_step_free(&step);
            free(images);
            mimae_model_free(m);
            double theirs = o.torch ? torch_ms(&o, cname, N, batch) : -1.0;
            const char *method = N == 1 ? "MAE" : "MI-MAE";
            double speedup = theirs > 0 ? theirs / ours : 0.0;
            printf("%-7s %-7s %7d %12.1f %12.1f %8.2fx %12.1f\n", cname, method, o.threads, ours,
                   theirs, speedup, batch / (ours / 1e3));
            printf("RESULT vs_pytorch config=%s method=%s threads=%d mimae_ms=%.1f torch_ms=%.1f "
                   "speedup=%.3f\n", cname, method, o.threads, ours, theirs, speedup);
            fflush(stdout);
        }
    }
    return 0;
}
