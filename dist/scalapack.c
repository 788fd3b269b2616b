#include "dist/scalapack.h"

#include <stdio.h>

#include "dist/mpi_check.h"

void blacs_grid_shape(int p, int *nprow, int *npcol)
{
    int r = 1;
    for (int i = 1; (long)i * i <= p; i++)
        if (p % i == 0) r = i;
    *nprow = r;
    *npcol = p / r;
}

int blacs_grid_create(blacs_grid_t *g, MPI_Comm comm, int nprow, int npcol, char *err,
                      size_t errlen)
{
    g->sys = -1;
    g->ctxt = -1;
    g->nprow = g->npcol = 0;
    g->myrow = g->mycol = -1;
    int size = 0;
    MPI_CHECK(MPI_Comm_size(comm, &size));
    if (nprow < 1 || npcol < 1 || (long)nprow * npcol != size) {
        snprintf(err, errlen, "blacs: a %d x %d grid does not cover the %d ranks of the communicator",
                 nprow, npcol, size);
        return -1;
    }
    /* BLACS takes MPI_COMM_WORLD as its world; initialise it once (a no-op
     * afterwards, and it does not call MPI_Init when MPI is running). */
    int me = 0, np = 0;
    Cblacs_pinfo(&me, &np);
    g->sys = Csys2blacs_handle(comm);
    int ctxt = g->sys;
    Cblacs_gridinit(&ctxt, "Row", nprow, npcol);
    g->ctxt = ctxt;
    int r = -1, c = -1, pr = 0, pc = 0;
    if (ctxt >= 0) Cblacs_gridinfo(ctxt, &pr, &pc, &r, &c);
    int ok = ctxt >= 0 && pr == nprow && pc == npcol && r >= 0 && c >= 0, all = 0;
    MPI_CHECK(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm));
    if (!all) {
        snprintf(err, errlen, "blacs: Cblacs_gridinit could not make a %d x %d grid", nprow, npcol);
        blacs_grid_free(g);
        return -1;
    }
    g->nprow = pr;
    g->npcol = pc;
    g->myrow = r;
    g->mycol = c;
    return 0;
}

void blacs_grid_free(blacs_grid_t *g)
{
    if (g->ctxt >= 0) Cblacs_gridexit(g->ctxt);
    if (g->sys >= 0) Cfree_blacs_system_handle(g->sys);
    g->ctxt = -1;
    g->sys = -1;
}

int scalapack_local_count(int n, int nb, int iproc, int nprocs)
{
    const int src = 0;
    return numroc_(&n, &nb, &iproc, &src, &nprocs);
}

int scalapack_global_index(int il, int nb, int iproc, int nprocs)
{
    return ((il / nb) * nprocs + iproc) * nb + il % nb;
}

int scalapack_desc(int *desc, const blacs_grid_t *g, int m, int n, int nb_r, int nb_c,
                   const char *what, char *err, size_t errlen)
{
    const int zero = 0;
    int lld = scalapack_local_count(m, nb_r, g->myrow, g->nprow);
    if (lld < 1) lld = 1;
    int info = 0;
    descinit_(desc, &m, &n, &nb_r, &nb_c, &zero, &zero, &g->ctxt, &lld, &info);
    if (info != 0) {
        snprintf(err, errlen, "scalapack: descinit_ rejected %s (%d x %d in %d x %d blocks): info %d",
                 what, m, n, nb_r, nb_c, info);
        return -1;
    }
    return 0;
}
