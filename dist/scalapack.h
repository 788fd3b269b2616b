/* ScaLAPACK, PBLAS and BLACS as used by the evaluation solvers.
 *
 * Debian's libscalapack-openmpi ships no C header, so the prototypes are
 * declared here (ScaLAPACK 2.2, 32-bit integers). Three kinds of routine:
 *   - C BLACS (Cblacs_*, Csys2blacs_handle): plain C, values by value.
 *   - PBLAS (pdgemm_, pdsyrk_) and REDIST (pdgemr2d_): C code with the
 *     Fortran calling convention (every argument a pointer), no hidden
 *     string lengths.
 *   - ScaLAPACK proper (descinit_, numroc_, pdposv_, pdpotrf_, ...):
 *     Fortran; CHARACTER arguments carry a hidden length (size_t, gfortran
 *     ABI) after the last ordinary argument, declared here and passed as 1.
 *
 * Descriptors are the 9-integer DESC arrays of ScaLAPACK (type 1, dense):
 * DTYPE, CTXT, M, N, MB, NB, RSRC, CSRC, LLD. Local blocks are column-major.
 *
 * On top: a BLACS grid over an MPI communicator (blacs_grid_t) and the
 * index helpers the solvers need. */
#ifndef MIMAE_DIST_SCALAPACK_H
#define MIMAE_DIST_SCALAPACK_H

#include <mpi.h>
#include <stddef.h>

/* ---- BLACS (C interface) ------------------------------------------------ */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int icontxt, int what, int *val);
void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
void Cblacs_exit(int notdone);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);

/* ---- ScaLAPACK tools (Fortran) ------------------------------------------ */
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
            const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld,
               int *info);

/* ---- PBLAS (C, Fortran convention) -------------------------------------- */
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n,
             const int *k, const double *alpha, const double *a, const int *ia,
             const int *ja, const int *desca, const double *b, const int *ib,
             const int *jb, const int *descb, const double *beta, double *c,
             const int *ic, const int *jc, const int *descc);
void pdsyrk_(const char *uplo, const char *trans, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja,
             const int *desca, const double *beta, double *c, const int *ic,
             const int *jc, const int *descc);

/* ---- Redistribution between grids (C, Fortran convention) --------------- */
/* Copies the m x n submatrix A(ia.., ja..) to B(ib.., jb..); ictxt is a
 * context holding every process of both grids (all of them call). */
void pdgemr2d_(const int *m, const int *n, const double *a, const int *ia,
               const int *ja, const int *desca, double *b, const int *ib,
               const int *jb, const int *descb, const int *ictxt);

/* ---- ScaLAPACK solvers (Fortran; trailing size_t = hidden string length) -- */
void pdpotrf_(const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, int *info, size_t uplo_len);
void pdpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a,
              const int *ia, const int *ja, const int *desca, double *b, const int *ib,
              const int *jb, const int *descb, int *info, size_t uplo_len);
void pdposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *ia,
             const int *ja, const int *desca, double *b, const int *ib, const int *jb,
             const int *descb, int *info, size_t uplo_len);
void pdgesv_(const int *n, const int *nrhs, double *a, const int *ia, const int *ja,
             const int *desca, int *ipiv, double *b, const int *ib, const int *jb,
             const int *descb, int *info);

/* ---- A BLACS grid over an MPI communicator -------------------------------- */
typedef struct {
    int sys;            /* BLACS system handle of the communicator (-1: none) */
    int ctxt;           /* grid context (-1: none) */
    int nprow, npcol;   /* grid shape */
    int myrow, mycol;   /* this process's coordinates */
} blacs_grid_t;

/* A near-square shape for p processes: nprow * npcol == p, nprow <= npcol,
 * nprow the largest divisor of p not above sqrt(p) (4 -> 2x2, 6 -> 2x3,
 * 2 -> 1x2, a prime p -> 1 x p). */
void blacs_grid_shape(int p, int *nprow, int *npcol);

/* Collective over comm: a row-major nprow x npcol grid over all of comm's
 * ranks (rank r at row r / npcol, column r % npcol); nprow * npcol must
 * equal the size of comm. Returns 0, or -1 with a message in err. */
int blacs_grid_create(blacs_grid_t *g, MPI_Comm comm, int nprow, int npcol, char *err,
                      size_t errlen);

/* Releases the grid and its system handle. Safe to call again, and after a
 * failed blacs_grid_create (both leave ctxt and sys at -1). Collective. */
void blacs_grid_free(blacs_grid_t *g);

/* Rows (or columns) of an n-long dimension in blocks of nb held by process
 * coordinate iproc of nprocs, first block on process 0 (numroc_). */
int scalapack_local_count(int n, int nb, int iproc, int nprocs);

/* Global index (0-based) of local index il (0-based) on process coordinate
 * iproc of nprocs, blocks of nb, first block on process 0. */
int scalapack_global_index(int il, int nb, int iproc, int nprocs);

/* Fills desc for an m x n matrix in nb_r x nb_c blocks on grid g, first
 * block on process (0,0), leading dimension max(1, local rows). Returns 0,
 * or -1 with a message naming `what` when descinit_ rejects it. */
int scalapack_desc(int *desc, const blacs_grid_t *g, int m, int n, int nb_r, int nb_c,
                   const char *what, char *err, size_t errlen);

#endif
