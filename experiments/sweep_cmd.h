/* `mimae sweep plan|submit`: the task table of a descriptor's [sweep], and
 * its submission to Slurm as one job array (slurm/job.sbatch.in, slurm/README.md).
 *
 *   mimae sweep plan EXP.ini [--set section.key=value]...
 *       prints the task table (index, each swept key's value, the task's
 *       output directory run.out_dir/task-NNNN) and the total; for arms
 *       (experiments/sweep.h) index, arm, seed, the arm's overrides and
 *       run.out_dir/task-NNNN-<arm>-seed<S>
 *   mimae sweep submit EXP.ini [--ranks R] [--limit L] [--set section.key=value]...
 *                      [--bin DIR] [--template FILE] [--dry-run] [-- SBATCH_OPTION...]
 *       writes into the sweep directory (run.out_dir of the descriptor):
 *         sweep.sbatch          the job script (from the template)
 *         tasks/task-NNNN.ini   each task's expanded descriptor (descriptor_write:
 *                               every key, the schedule derived from the data set)
 *         plan.tsv              the task table, tab-separated, with a header line
 *         logs/                 one log per task (task-NNNN.log, appended across requeues)
 *         submissions.log       one line per submitted job array
 *       then runs `sbatch --parsable --array=LIST[%L] --signal=B:USR1@120
 *       --requeue [SBATCH_OPTION...] sweep.sbatch` and prints
 *       "Submitted batch job ID". LIST (compact ranges, 3-8,12) leaves out
 *       the tasks whose results.h5 says status = finished and those whose
 *       run directory lock a live job holds, one line per class left out
 *       ("3 of 18 finished: 0-2"); a results.h5 that cannot be read (in a
 *       child with a time bound, io/bounded_read.h), is not a regular file
 *       or is another run's (its config or seed not the task's) is not
 *       finished, said in one line. Nothing left: a line says so, nothing is written, no sbatch,
 *       status 0. An --array among the SBATCH_OPTIONs skips the selection
 *       (it wins over ours). Each array task runs `srun --mpi=pmix -n R
 *       mimae_dist EXP.ini --task $SLURM_ARRAY_TASK_ID [--set ...]` from the
 *       directory the sweep was submitted from, and requeues itself when
 *       mimae_dist exits with 3 (stopped by SIGUSR1 after a checkpoint).
 *
 * Before anything is written, submit refuses an array the cluster would
 * refuse: more tasks than Slurm's MaxArraySize (from `scontrol show config`
 * when it answers, else Slurm's default 1001), or a --limit above it; and
 * task files of more than 64 MiB together (estimated from task 0's). A
 * --set of a swept key is refused (every task's value would replace it).
 *
 * mimae_dist is looked for in --bin DIR, else next to the running program
 * (/proc/self/exe); the template is --template FILE, else
 * $MIMAE_SLURM_TEMPLATE, else <program dir>/../slurm/job.sbatch.in (the
 * repository's for build/mimae, whatever the current directory).
 *
 * Exit status: 0 done; 2 bad input (a bad descriptor, sweep key or value,
 * option, missing data set, program or template: one line on stderr); 1
 * anything else (a file that cannot be written, sbatch failing). */
#ifndef MIMAE_EXPERIMENTS_SWEEP_CMD_H
#define MIMAE_EXPERIMENTS_SWEEP_CMD_H

/* argv[0] is the subcommand ("plan" or "submit"), as `mimae sweep ARGS`
 * passes argv + 2. Returns the exit status. */
int sweep_command(int argc, char **argv);

#endif
