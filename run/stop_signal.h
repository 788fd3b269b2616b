/* Stop requests: SIGTERM and SIGUSR1 (Slurm's warning before the time limit)
 * only set a flag, which the trainer acts on at the next step boundary on
 * every rank together (a checkpoint, then exit 3). */
#ifndef MIMAE_RUN_STOP_SIGNAL_H
#define MIMAE_RUN_STOP_SIGNAL_H

/* Installs the handlers (SA_RESTART: whatever the process is doing when the
 * signal comes, MPI_Init or a read, goes on instead of failing with EINTR). */
void stop_signal_install(void);

/* 1 once SIGTERM or SIGUSR1 has arrived in this process. */
int stop_signal_requested(void);

#endif
