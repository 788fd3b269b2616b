/* The north-star estimate: the paper's ViT-B/16 MI-MAE pre-training on
 * ImageNet-1K (400 epochs of 1,281,167 images, global batch 4096) on a
 * cluster of 64 nodes of 64 cores and 256 GB, from rates measured here
 * (bench/vitb via bench/run.sh):
 *
 *   northstar --img-s IMG_PER_S_1_THREAD --img-s-batch1 IMG_PER_S_AT_BATCH_1
 *             --speedup2 S2 --state-mib M --act-mib-per-image A [--nodes 64] [--cores 64] [--node-gb 256]
 *             [--net-gbs 12.5] [--net-us 2] [--mem-gbs 20] [--epochs 400]
 *             [--precision f32|bf16]
 *
 * --precision only labels the output: the rates and memory given are of
 * that precision's step (bench/run.sh runs it once for each).
 * The model, stated so it can be argued with:
 * - compute: a rank of t threads runs its b images at r(b) x t x e^log2(t)
 *   images a second: r(b) the one-thread rate at per-rank batch b (measured
 *   at 8, IMG_PER_S, used for b >= 8, and at 1, log-linear in between: the
 *   update's fixed cost weighs more on small batches), e = min(S2 / 2, 1) the
 *   measured efficiency of one doubling of threads (1 -> 2), assumed to hold
 *   for every doubling; and a core runs as fast with 63 others busy as with
 *   one (memory bandwidth per core as measured here);
 * - memory per rank: the parameters, gradients and AdamW moments (M) plus b
 *   images' activations (A each), within 90 % of the node's memory shared by
 *   its ranks;
 * - gradients (M / 4) summed each step: within a node through memory
 *   (2 x bytes / MEM_GBS when the node holds more than one rank), across
 *   nodes by a ring allreduce, 2 (n-1)/n x bytes / NET_GBS + 2 (n-1) x NET_US,
 *   not overlapped with the backward (the fast reduction overlaps part of it:
 *   an upper bound).
 * Prints every layout of ranks x threads per node and the best, and a
 * `RESULT northstar ...` line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double img_s, img_s1, speedup2, state_mib, act_mib, node_gb, net_gbs, net_us, mem_gbs, epochs;
    int nodes, cores;
} model_t;

static void usage(void)
{
    fprintf(stderr, "usage: northstar --img-s X --img-s-batch1 X1 --speedup2 S --state-mib M "
                    "--act-mib-per-image A "
                    "[--nodes 64] [--cores 64] [--node-gb 256] [--net-gbs 12.5] [--net-us 2] "
                    "[--mem-gbs 20] [--epochs 400] [--precision f32|bf16]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    model_t m = {0, 0, 0, 0, 0, 256, 12.5, 2, 20, 400, 64, 64};
    const char *precision = "f32";
    struct { const char *flag; double *value; } opts[] = {
        {"--img-s", &m.img_s}, {"--img-s-batch1", &m.img_s1}, {"--speedup2", &m.speedup2}, {"--state-mib", &m.state_mib},
        {"--act-mib-per-image", &m.act_mib}, {"--node-gb", &m.node_gb},
        {"--net-gbs", &m.net_gbs}, {"--net-us", &m.net_us}, {"--mem-gbs", &m.mem_gbs},
        {"--epochs", &m.epochs},
    };
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) usage();
        int known = 0;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (!strcmp(argv[i], opts[k].flag)) *opts[k].value = atof(argv[i + 1]), known = 1;
        if (!strcmp(argv[i], "--nodes")) m.nodes = atoi(argv[i + 1]), known = 1;
        if (!strcmp(argv[i], "--cores")) m.cores = atoi(argv[i + 1]), known = 1;
        if (!strcmp(argv[i], "--precision") &&
            (!strcmp(argv[i + 1], "f32") || !strcmp(argv[i + 1], "bf16")))
            precision = argv[i + 1], known = 1;
        if (!known) usage();
    }
    if (!(m.img_s1 > 0)) m.img_s1 = m.img_s;
    if (!(m.img_s > 0) || !(m.speedup2 > 0) || !(m.state_mib > 0) || !(m.act_mib > 0) ||
        m.nodes < 1 || m.cores < 1)
        usage();
    const double images = 1281167.0, global = 4096.0;
    const double steps = ceil(m.epochs * images / global);
    /* a measured 2-thread speed-up above 2 (the machine's noise) counts as 2;
     * bf16's state holds the weights' bf16 copy too: 4.5 floats a parameter */
    const double e = m.speedup2 < 2.0 ? m.speedup2 / 2.0 : 1.0;
    const double grad_bytes =
        m.state_mib / (strcmp(precision, "bf16") ? 4.0 : 4.5) * 1048576.0;
    printf("north star: ViT-B/16 MI-MAE, %.0f epochs of ImageNet-1K (%.0f steps of %.0f "
           "images) on %d nodes x %d cores x %.0f GB\n", m.epochs, steps, global, m.nodes,
           m.cores, m.node_gb);
    printf("  measured here: %.3f img/s on 1 thread at batch 8 (%.3f at batch 1), 2 threads "
           "%.2fx one (efficiency %.2f a doubling), %.0f MiB of state, %.0f MiB of activations "
           "an image\n", m.img_s, m.img_s1, m.speedup2, e, m.state_mib, m.act_mib);
    printf("  assumed: network %.1f GB/s and %.0f us per message, %.0f GB/s within a node, no "
           "overlap of communication\n", m.net_gbs, m.net_us, m.mem_gbs);
    printf("  %6s %7s %9s %10s %8s %10s %9s %9s\n", "ranks", "threads", "img/rank",
           "GB/rank", "fits", "compute s", "comm s", "days");
    double best_days = HUGE_VAL, best_gb = 0;
    int best_r = 0;
    for (int r = 1; r <= m.cores; r *= 2) {
        const int t = m.cores / r, R = r * m.nodes;
        const double b = global / R;
        if (b < 1 || b != floor(b)) continue;
        const double gb = (m.state_mib + b * m.act_mib) / 1024.0;
        const int fits = gb * r <= 0.9 * m.node_gb;
        const double at_b = b >= 8 ? m.img_s
                                   : m.img_s1 * pow(m.img_s / m.img_s1, log2(b) / 3.0);
        const double rate = at_b * t * pow(e, log2((double)t));
        const double compute = b / rate;
        const double n = m.nodes;
        double comm = 2.0 * (n - 1) / n * grad_bytes / (m.net_gbs * 1e9) +
                      2.0 * (n - 1) * m.net_us * 1e-6;
        if (r > 1) comm += 2.0 * grad_bytes / (m.mem_gbs * 1e9);
        const double days = steps * (compute + comm) / 86400.0;
        printf("  %6d %7d %9.0f %10.1f %8s %10.2f %9.3f %9.1f\n", r, t, b, gb,
               fits ? "yes" : "no", compute, comm, days);
        if (fits && days < best_days) best_days = days, best_r = r, best_gb = gb * r;
    }
    if (!best_r) {
        printf("  no layout fits the node's memory\n");
        return 1;
    }
    printf("  best (%s): %d ranks x %d threads a node: %.1f days, %.0f GB a node\n", precision,
           best_r, m.cores / best_r, best_days, best_gb);
    printf("RESULT northstar precision=%s ranks_per_node=%d threads=%d days=%.2f "
           "gb_per_node=%.1f\n", precision, best_r, m.cores / best_r, best_days, best_gb);
    return 0;
}
