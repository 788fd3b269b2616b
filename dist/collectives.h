/* Small collective helpers of the trainer: agreeing on success, summing
 * loss terms, and moving the MI features (gathered for the global-batch
 * InfoNCE/CLUB, their gradients scattered back). */
#ifndef MIMAE_DIST_COLLECTIVES_H
#define MIMAE_DIST_COLLECTIVES_H

#include <mpi.h>
#include <stddef.h>

/* 1 on every rank when ok is 1 on every rank. */
int dist_all_ok(int ok, MPI_Comm comm);

/* In-place sum of n doubles over the ranks. */
void dist_sum_doubles(double *v, int n, MPI_Comm comm);

/* Every rank's `count` floats at buf + rank*count are gathered in place so
 * that buf holds all ranks' rows in rank order. */
void dist_allgather_rows(float *buf, size_t count, MPI_Comm comm);

/* Sums the ranks' full arrays (ranks*count floats each) and leaves rank r's
 * slice [r*count, (r+1)*count) of the sum in out. */
void dist_reduce_scatter_rows(const float *full, float *out, size_t count, MPI_Comm comm);

/* The MPI library's version text (MPI_Get_library_version, callable before
 * MPI_Init) in buf; "" when it fails. */
void dist_library_version(char *buf, size_t len);

#endif
