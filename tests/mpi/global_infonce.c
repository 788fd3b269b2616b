/* Run by tests/test_dist.c under `mpirun -n 2`: the InfoNCE and CLUB terms
 * over the global batch, with features gathered from the ranks and the
 * gradients scattered back (dist/collectives.h), equal the single-process
 * computation on all 2B images. Prints one line and exits 0 when equal. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "core/objective/gaussian_q.h"
#include "core/config/config.h"
#include "core/objective/infonce.h"
#include "core/data/rng.h"
#include "dist/collectives.h"

enum { B = 5, N = 3, E = 8, D = 6 };

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0, scale = 1e-12;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]) / scale);
    return worst;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    const int Bg = B * ranks;
    const size_t rows = (size_t)Bg * N;
    float *u = calloc(rows * E, sizeof(float)), *z = calloc(rows * D, sizeof(float));
    float *mu = calloc(rows * D, sizeof(float)), *lv = calloc(rows * D, sizeof(float));
    float *du = calloc(rows * E, sizeof(float)), *dz = calloc(rows * D, sizeof(float));
    float *du_ref = calloc(rows * E, sizeof(float)), *dz_ref = calloc(rows * D, sizeof(float));
    float *du_local = calloc((size_t)B * N * E, sizeof(float));
    float *dz_local = calloc((size_t)B * N * D, sizeof(float));
    float *scratch = calloc((size_t)Bg * Bg, sizeof(float));
    if (!u || !z || !mu || !lv || !du || !dz || !du_ref || !dz_ref || !du_local || !dz_local || !scratch)
        MPI_Abort(MPI_COMM_WORLD, 1);

    /* Every rank knows the whole batch (same seed) but contributes only its
     * own rows to the gathered arrays, as in training. */
    rng_t r;
    rng_init(&r, 99, 0, 0, RNG_STREAM_EVAL);
    for (size_t i = 0; i < rows; i++) {
        double n2 = 0.0;
        for (int e = 0; e < E; e++) u[i * E + e] = rng_normal(&r), n2 += u[i * E + e] * u[i * E + e];
        for (int e = 0; e < E; e++) u[i * E + e] /= (float)sqrt(n2);
        for (int d = 0; d < D; d++) {
            z[i * D + d] = rng_normal(&r);
            mu[i * D + d] = rng_normal(&r);
            lv[i * D + d] = 0.5f * rng_normal(&r);
        }
    }
    float *gu = calloc(rows * E, sizeof(float)), *gz = calloc(rows * D, sizeof(float));
    if (!gu || !gz) MPI_Abort(MPI_COMM_WORLD, 1);
    const size_t mine = (size_t)rank * B * N;
    memcpy(gu + mine * E, u + mine * E, (size_t)B * N * E * sizeof(float));
    memcpy(gz + mine * D, z + mine * D, (size_t)B * N * D * sizeof(float));
    dist_allgather_rows(gu, (size_t)B * N * E, MPI_COMM_WORLD);
    dist_allgather_rows(gz, (size_t)B * N * D, MPI_COMM_WORLD);

    double terms[3];
    terms[0] = infonce_loss(du, gu, N, Bg, rank * B, B, E, 0.2f, 1.0f, scratch);
    terms[1] = club_min_loss(dz, gz, mu + mine * D, lv + mine * D, N, Bg, rank * B, B, D,
                             CLUB_CONTRAST_MASKS, 1.0f);
    memset(dz_ref, 0, rows * D * sizeof(float));
    terms[2] = club_min_loss(dz_ref, gz, mu + mine * D, lv + mine * D, N, Bg, rank * B, B, D,
                             CLUB_CONTRAST_BATCH, 1.0f); /* value only: batch contrast */
    dist_sum_doubles(terms, 3, MPI_COMM_WORLD);
    dist_reduce_scatter_rows(du, du_local, (size_t)B * N * E, MPI_COMM_WORLD);
    dist_reduce_scatter_rows(dz, dz_local, (size_t)B * N * D, MPI_COMM_WORLD);

    /* the single-process reference on all Bg images */
    memset(du_ref, 0, rows * E * sizeof(float));
    memset(dz_ref, 0, rows * D * sizeof(float));
    float *scratch_all = calloc((size_t)Bg * Bg, sizeof(float));
    if (!scratch_all) MPI_Abort(MPI_COMM_WORLD, 1);
    double ref_max = infonce_loss(du_ref, u, N, Bg, 0, Bg, E, 0.2f, 1.0f, scratch_all);
    double ref_min = club_min_loss(dz_ref, z, mu, lv, N, Bg, 0, Bg, D, CLUB_CONTRAST_MASKS, 1.0f);
    float *tmp = calloc(rows * D, sizeof(float));
    if (!tmp) MPI_Abort(MPI_COMM_WORLD, 1);
    double ref_min_batch = club_min_loss(tmp, z, mu, lv, N, Bg, 0, Bg, D, CLUB_CONTRAST_BATCH, 1.0f);

    double e_max = fabs(terms[0] - ref_max) / fabs(ref_max);
    double e_min = fabs(terms[1] - ref_min) / fmax(fabs(ref_min), 1e-12);
    double e_batch = fabs(terms[2] - ref_min_batch) / fmax(fabs(ref_min_batch), 1e-12);
    double e_du = max_rel_diff(du_local, du_ref + mine * E, (size_t)B * N * E);
    double e_dz = max_rel_diff(dz_local, dz_ref + mine * D, (size_t)B * N * D);
    int ok = e_max < 1e-6 && e_min < 1e-6 && e_batch < 1e-6 && e_du < 1e-5 && e_dz < 1e-5;
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    printf("rank %d of %d: L_max %.9f (single %.9f, rel %.1e) L_min %.9f (rel %.1e) batch-CLUB rel "
           "%.1e, du rel %.1e, dz rel %.1e: %s\n", rank, ranks, terms[0], ref_max, e_max, terms[1],
           e_min, e_batch, e_du, e_dz, ok ? "equal" : "DIFFERENT");
    free(u), free(z), free(mu), free(lv), free(du), free(dz), free(du_ref), free(dz_ref);
    free(du_local), free(dz_local), free(scratch), free(scratch_all), free(gu), free(gz), free(tmp);
    MPI_Finalize();
    return all_ok ? 0 : 1;
}
