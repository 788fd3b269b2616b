/* Peak resident memory of one process running mimae's training step, against
 * the analytic bytes it must hold.
 *
 *   build/bench/memory CONFIG MASKS [--batch B] [--steps K]
 *
 * CONFIG is cifar or fmnist (bench/bench_util.h). Creates the model, runs K
 * steps (2), and reports ru_maxrss against the analytic bytes: parameters,
 * gradients, AdamW m and v of model and Q (4 x 4 bytes per parameter) and
 * the activations of bench_act_floats (what the forward keeps for the
 * backward plus the backward's scratch). Also shows the process's resident
 * size before the model (libraries) and the model's activation arena. One
 * config per process, so the peak is that config's. Prints `RESULT memory`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: memory CONFIG MASKS [--batch B] [--steps K]\n");
        return 2;
    }
    const char *name = argv[1];
    const int N = atoi(argv[2]);
    int batch = 64, steps = 2;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
    }
    mimae_config_t c;
    if (bench_config(&c, name, N, batch) || steps < 1) {
        fprintf(stderr, "memory: unknown config %s\n", name);
        return 2;
    }
    const long base_kb = bench_rss_now_kb();
    mimae_model_t *m = bench_model(&c);
    const size_t n = (size_t)batch * c.img_h * c.img_w * c.channels;
    float *images = malloc(n * sizeof *images);
    bench_images(images, n, 5);
    train_step_t step;
    bench_step_init(&step, m);
    bench_time_steps(&step, images, 0, steps, NULL);
    const long peak_kb = bench_peak_rss_kb();

    const double MB = 1024.0 * 1024.0;
    const double params = bench_param_floats(m);
    const double state_b = 4.0 * params * sizeof(float); /* params, grads, m, v */
    const double act_b = bench_act_floats(&c, batch) * sizeof(float);
    const double arena_b = (double)m->act_floats * sizeof(float);
    const double images_b = (double)n * sizeof(float);
    const double analytic = state_b + act_b;
    const double peak_b = (double)peak_kb * 1024.0;
    const char *method = N == 1 ? "MAE" : "MI-MAE";
    printf("memory %s %s batch %d: peak RSS %.1f MiB; analytic %.1f MiB = parameters, gradients, "
           "AdamW m, v %.1f MiB (%.2fM parameters) + activations %.1f MiB; ratio %.3f\n",
           name, method, batch, peak_b / MB, analytic / MB, state_b / MB, params / 1e6,
           act_b / MB, peak_b / analytic);
    printf("  (before the model: %.1f MiB resident, libraries; activation arena %.1f MiB = "
           "%.3f x analytic; input images %.1f MiB)\n", base_kb / 1024.0, arena_b / MB,
           arena_b / act_b, images_b / MB);
    printf("RESULT memory config=%s method=%s batch=%d peak_mib=%.1f analytic_mib=%.1f ratio=%.4f "
           "base_mib=%.1f\n", name, method, batch, peak_b / MB, analytic / MB, peak_b / analytic,
           base_kb / 1024.0);
    free(images);
    mimae_model_free(m);
    return 0;
}
