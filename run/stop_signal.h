/* Stop requests: SIGTERM, SIGINT and SIGUSR1 (Slurm's warning before the
 * time limit) only set a flag, which the trainer acts on at the next step
 * boundary, and evaluation at its next safe point, on every rank together
 * (everything saved, then exit 3). */
#ifndef MIMAE_RUN_STOP_SIGNAL_H
#define MIMAE_RUN_STOP_SIGNAL_H

/* Installs the handlers (SA_RESTART: whatever the process is doing when the
 * signal comes, MPI_Init or a read, goes on instead of failing with EINTR). */
void stop_signal_install(void);

/* 1 once SIGTERM, SIGINT or SIGUSR1 has arrived in this process. */
int stop_signal_requested(void);

#endif
