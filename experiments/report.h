/* `mimae report SWEEP_DIR [--out DIR] [--no-plots]`: one table over the
 * results files of a sweep (or of runs side by side), as aligned text on
 * stdout, CSV and Markdown, plus gnuplot PNG plots.
 *
 * Which results files (one level deep, nothing further down):
 *   SWEEP_DIR/results.h5            a single run (the directory itself)
 *   SWEEP_DIR/task-NNNN/results.h5  the tasks of a sweep (mimae_dist --task)
 *   SWEEP_DIR/<dir>/results.h5      runs side by side (demo/mimae, demo/mae)
 * Rows are never dropped silently: a task directory without results.h5, a
 * task listed as SWEEP_DIR/tasks/task-NNNN.ini (mimae sweep submit) without
 * a directory, and a <dir> holding descriptor.ini or checkpoints/ but no
 * results.h5 are rows marked "missing"; a results file that does not load is
 * marked "failed" with the load error. Other subdirectories are ignored.
 * Order: SWEEP_DIR itself, the tasks by number, the other directories by name.
 *
 * Columns: name (results attribute run.name, else the directory); the
 * configuration keys whose values differ between the runs, from the results'
 * config.* attributes, the run's descriptor.ini (run.* keys excepted; for a
 * missing task also SWEEP_DIR/tasks/task-NNNN.ini) and the extra "section.key"
 * attributes, plus train.seed; steps done (the last logged step); the loss
 * terms of the last logged step; every evaluation metric present
 * (linear_probe_top1, knn_top1, finetune_top1, mi_*, then the others);
 * images/s as the mean over the logged steps; the status. Runs whose keys
 * differ only in train.seed are summarised as mean +- sample standard
 * deviation (n - 1) over the seeds.
 *
 * Written atomically (temporary name, fsync, rename) to DIR (default
 * SWEEP_DIR): report.csv, report-seeds.csv (when some setting has several
 * seeds), report.md, report-loss.png and report-<key>.png (top-1 accuracies
 * against each numeric swept key other than train.seed). The plots run
 * `gnuplot` (pngcairo terminal) on a generated script in a temporary
 * directory.
 *
 * Exit status: 0 done; 2 bad input (missing directory, nothing found, bad
 * option), one line on stderr, nothing written; 1 something could not be
 * written or plotted (gnuplot missing or failing), one line on stderr after
 * whatever could be written. */
#ifndef MIMAE_EXPERIMENTS_REPORT_H
#define MIMAE_EXPERIMENTS_REPORT_H

/* argv holds the arguments after "report". */
int report_command(int argc, char **argv);

#endif
