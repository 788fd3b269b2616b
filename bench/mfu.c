/* Model FLOP utilisation of mimae's single-process step at one thread.
 *
 *   build/bench/mfu [--steps K] [--warmup W] [--configs cifar,fmnist] [--masks 4,1]
 *                   [--peak-n N]
 *
 * In the same run: the cblas_sgemm peak on an N x N x N square product
 * (N = 1536, best of 3, at the start); then for every config K steps, each
 * between two square cblas_sgemm products, so that
 * every step is compared with the peak measured next to it (the machine is
 * shared: its speed drifts with other work). Per step: the analytic FLOPs
 * (bench/bench_util.h bench_step_flops: every matrix product of the forward
 * and backward, 2 FLOPs per multiply-add; elementwise work not counted) /
 * step time / max(peak before, peak after, OpenBLAS peak). Reports the
 * median over steps of that fraction and of the step time. Prints a table and
 * `RESULT mfu ...` lines for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"

int main(int argc, char **argv)
{
    int steps = 3, warmup = 1, peak_n = 1536;
    char configs[64] = "cifar,fmnist", masks[64] = "4,1";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--peak-n")) peak_n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--configs"))
            snprintf(configs, sizeof configs, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--masks")) snprintf(masks, sizeof masks, "%s", argv[i + 1]);
        else {
            fprintf(stderr, "usage: mfu [--steps K] [--warmup W] [--configs cifar,fmnist] "
                            "[--masks 4,1] [--peak-n N]\n");
            return 2;
        }
    }
    if (steps < 1 || warmup < 0 || peak_n < 64) return 2;
    openblas_set_num_threads(1); /* core/kernels/parallel.h follows it: one thread */
    bench_print_blas("mfu");
    const double blas_peak = bench_sgemm_peak(peak_n, 3);
    printf("mfu: 1 thread; cblas_sgemm %d^3 peak (OpenBLAS core %s): %.1f GFLOP/s at the start, "
           "measured again around every step\n", peak_n, openblas_get_corename(), blas_peak);
    printf("%-7s %-7s %10s %9s %10s %11s %9s %12s\n", "config", "method", "GFLOP/step", "ms/step",
           "GFLOP/s", "peak GF/s", "of peak", "of OpenBLAS");
    fflush(stdout);
    const int batch = 64;
    double best_peak = blas_peak;
    char cfgs[64];
    snprintf(cfgs, sizeof cfgs, "%s", configs);
    for (char *cs = NULL, *cname = strtok_r(cfgs, ",", &cs); cname;
         cname = strtok_r(NULL, ",", &cs)) {
        char ms[64];
        snprintf(ms, sizeof ms, "%s", masks);
        for (char *mp = NULL, *mn = strtok_r(ms, ",", &mp); mn; mn = strtok_r(NULL, ",", &mp)) {
            const int N = atoi(mn);
            mimae_config_t c;
            if (bench_config(&c, cname, N, batch)) return 2;
            mimae_model_t *m = bench_model(&c);
            const size_t n = (size_t)batch * c.img_h * c.img_w * c.channels;
            float *images = malloc(n * sizeof *images);
            bench_images(images, n, 5);
            const double flops = bench_step_flops(&c, batch);
            double t[64], frac[64], pk[64];
            if (steps > 64) steps = 64;
            train_step_t step;
            bench_step_init(&step, m);
            bench_time_steps(&step, images, warmup, 0, NULL); /* warm-up only */
            double before = bench_sgemm_peak(peak_n, 1);
            for (int i = 0; i < steps; i++) {
                t[i] = bench_time_steps(&step, images, 0, 1, NULL);
                const double after = bench_sgemm_peak(peak_n, 1);
                double p = before > after ? before : after;
                p = p > blas_peak ? p : blas_peak;
                pk[i] = p;
                frac[i] = flops / t[i] / 1e9 / p;
                best_peak = p > best_peak ? p : best_peak;
                before = after;
            }
            train_step_free(&step);
            free(images);
            mimae_model_free(m);
            const double med = bench_median(t, steps), f = bench_median(frac, steps);
            const double p = bench_median(pk, steps), g = flops / med / 1e9;
            const char *method = N == 1 ? "MAE" : "MI-MAE";
            printf("%-7s %-7s %10.2f %9.1f %10.1f %11.1f %8.1f%% %11.1f%%\n", cname, method,
                   flops / 1e9, 1e3 * med, g, p, 100.0 * f, 100.0 * g / blas_peak);
            printf("RESULT mfu config=%s method=%s gflop=%.3f ms=%.1f gflops=%.2f peak=%.2f "
                   "frac=%.4f\n", cname, method, flops / 1e9, 1e3 * med, g, p, f);
            fflush(stdout);
        }
    }
    printf("RESULT mfu_peak blas_gflops=%.2f peak_gflops=%.2f core=%s\n", blas_peak, best_peak,
           openblas_get_corename());
    return 0;
}
