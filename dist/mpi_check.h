/* Every MPI call is checked through MPI_CHECK, which names the call, file and
 * line and aborts the whole job: a failed collective cannot be recovered
 * from on one rank, and aborting beats a hang.
 *
 * MPI's default error handler (MPI_ERRORS_ARE_FATAL) would end the job inside
 * the failing call before MPI_CHECK could say where: mpi_check_install sets
 * MPI_ERRORS_RETURN on the world and self communicators (communicators made
 * from them inherit it), right after MPI_Init. */
#ifndef MIMAE_DIST_MPI_CHECK_H
#define MIMAE_DIST_MPI_CHECK_H

#include <mpi.h>
#include <stdio.h>

#define MPI_CHECK(call)                                                                   \
    do {                                                                                  \
        int mpi_check_rc_ = (call);                                                       \
        if (mpi_check_rc_ != MPI_SUCCESS) {                                               \
            char mpi_check_msg_[MPI_MAX_ERROR_STRING];                                    \
            int mpi_check_len_ = 0;                                                       \
            MPI_Error_string(mpi_check_rc_, mpi_check_msg_, &mpi_check_len_);             \
            fprintf(stderr, "mimae_dist: %s failed at %s:%d: %s\n", #call, __FILE__,     \
                    __LINE__, mpi_check_msg_);                                            \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                 \
        }                                                                                 \
    } while (0)

static inline void mpi_check_install(void)
{
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
}

#endif
