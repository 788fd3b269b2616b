/* `mimae report SWEEP_DIR [--out DIR] [--no-plots] [--baseline ARM]`: one
 * table over the results files of a sweep (or of runs side by side), as
 * aligned text on stdout, CSV and Markdown, plus gnuplot PNG plots; for an
 * arm sweep, the arms compared over seeds.
 *
 * Which results files (one level deep, nothing further down):
 *   SWEEP_DIR/results.h5            a single run (the directory itself)
 *   SWEEP_DIR/task-NNNN/results.h5  the tasks of a sweep (mimae_dist --task)
 *   SWEEP_DIR/task-NNNN-<arm>-seed<S>/results.h5  the tasks of an arm sweep
 *   SWEEP_DIR/<dir>/results.h5      runs side by side (demo/mimae, demo/mae)
 * Rows are never dropped silently: a task directory without results.h5, a
 * task listed as SWEEP_DIR/tasks/task-NNNN.ini (mimae sweep submit) without
 * a directory, and a <dir> holding descriptor.ini or checkpoints/ but no
 * results.h5 are rows marked "missing"; a results file that does not load,
 * or whose `status` attribute is neither "running" nor "finished", is marked
 * "failed" with the reason. Other subdirectories are ignored.
 * Order: SWEEP_DIR itself, the tasks by number (then directory name), the
 * other directories by name.
 *
 * Status: "finished" (the results' status attribute says so, or the file
 * predates that attribute), "running" (its values so far are shown; every
 * mean, std, difference and accuracy plot leaves it out), "missing",
 * "failed".
 *
 * Columns: name (results attribute run.name, else the directory); the
 * configuration keys whose values differ between the runs, from the results'
 * config.* attributes, the run's descriptor.ini (run.* keys excepted; for a
 * missing task also SWEEP_DIR/tasks/task-NNNN.ini) and the extra "section.key"
 * attributes (sweep.arm first), plus train.seed; steps done (the last logged
 * step); the loss terms of the last logged step; every evaluation metric
 * present (linear_probe_top1, knn_top1, finetune_top1, mi_*, then the others);
 * images/s as the mean over the logged steps; the status.
 *
 * Groups. An arm sweep (some run has the attribute sweep.arm; a run without
 * results takes its arm from SWEEP_DIR/plan.tsv's `arm` column, else from its
 * directory's name) is grouped by arm, arms in the order of their first
 * task: the number of finished seeds, mean +- sample std (n - 1) of the
 * *_top1 metrics, the mi_* metrics and the final L_rec over the finished
 * seeds (a seed without the metric left out), and each other arm's paired
 * difference to the baseline arm: d_s = metric(arm, s) - metric(baseline, s)
 * over the seeds both finished with the metric, mean d and the 95 % interval
 * mean d +- t(0.975, n - 1) sd(d) / sqrt(n) (none below two pairs), marked
 * when it excludes 0 (experiments/report_stats.h). The baseline is --baseline
 * ARM, else the arm of the lowest task; an unknown ARM, or --baseline without
 * arms, is bad input. Otherwise runs whose keys differ only in train.seed are
 * summarised as mean +- sample standard deviation (n - 1) over the seeds.
 *
 * Written atomically (temporary name, fsync, rename) to DIR (default
 * SWEEP_DIR): report.csv (one row per run; for an arm sweep one row per arm
 * and metric: arm, metric, n, mean, std, baseline, pairs, diff, lo, hi,
 * excludes_zero, with the runs in report-runs.csv), report-seeds.csv (when
 * some setting has several seeds, not for arm sweeps), report.md,
 * report-loss.png (every run's L_rec and L against the step), and
 * report-<key>.png (top-1 accuracies against each numeric swept key other
 * than train.seed) or, for an arm sweep, report-arms-<metric>.png (each
 * top-1 accuracy per arm: mean +- std bars and the seeds) and
 * report-arms-loss.png (L_rec and L per arm, mean over the finished seeds,
 * against the masked views seen). A CSV file the report does not write this
 * time is removed, so none is left from an earlier kind of report. The
 * plots run `gnuplot` (pngcairo terminal) on a generated script in a
 * temporary directory.
 *
 * Exit status: 0 done; 2 bad input (missing directory, nothing found, bad
 * option, unknown baseline), one line on stderr, nothing written; 1
 * something could not be written or plotted (gnuplot missing or failing),
 * one line on stderr after whatever could be written. */
#ifndef MIMAE_EXPERIMENTS_REPORT_H
#define MIMAE_EXPERIMENTS_REPORT_H

/* argv holds the arguments after "report". */
int report_command(int argc, char **argv);

#endif
