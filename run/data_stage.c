/* data.stage_dir for a run (see data_stage.h). */
#include "run/data_stage.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "dist/collectives.h"
#include "dist/mpi_check.h"
#include "io/io_error.h"
#include "io/stage.h"
#include "run/exit_status.h"
#include "run/faults.h"

int data_stage(const char *index, const char *stage_dir, int rank, int ranks, char *staged,
               size_t staged_len, char *err, size_t errlen)
{
    stage_plan_t plan;
    int ok = stage_plan(index, stage_dir, rank, ranks, &plan, err, errlen) == 0;
    if (ok && (size_t)snprintf(staged, staged_len, "%s", plan.index) >= staged_len)
        ok = io_fail(err, errlen, "%s: path too long: set a shorter data.stage_dir", plan.index)
             == 0;
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) {
        if (ok) err[0] = '\0';
        stage_plan_free(&plan); /* a failed plan is freed already: a no-op then */
        return EXIT_BAD_INPUT;
    }
    /* the ranks of a node share its disk: their copies together must fit */
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    int node_rank, node_ranks;
    MPI_CHECK(MPI_Comm_rank(node, &node_rank));
    MPI_CHECK(MPI_Comm_size(node, &node_ranks));
    long long need = plan.total;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &need, 1, MPI_LONG_LONG, MPI_SUM, node));
    MPI_CHECK(MPI_Comm_free(&node));
    if (node_rank == 0 && need > 0) {
        const long long free_bytes = stage_free_bytes(plan.dir, err, errlen);
        if (free_bytes < 0) ok = 0;
        else if (free_bytes < need)
            ok = io_fail(err, errlen, "%s: %d rank(s) of this node need %.3g GB there for their "
                         "shards and %.3g GB are free: free space there or set data.stage_dir "
                         "to a larger local disk (nothing was copied)", plan.dir, node_ranks,
                         (double)need / 1e9, (double)free_bytes / 1e9) == 0;
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) {
        if (ok) err[0] = '\0';
        stage_plan_free(&plan);
        return EXIT_BAD_INPUT;
    }
    struct rlimit saved;
    const int armed = faults_arm_stage(&saved); /* test hook: a full disk */
    const int rc = stage_copy(&plan, err, errlen);
    if (armed) faults_disarm(&saved);
    stage_plan_free(&plan);
    int status = rc == 0 ? EXIT_OK : rc == IO_WRITE_FAILED ? EXIT_FAILURE_INTERNAL : EXIT_BAD_INPUT;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (status != EXIT_OK && rc == 0) err[0] = '\0';
    return status;
}
