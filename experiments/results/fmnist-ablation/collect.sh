#!/usr/bin/env bash
# Copies the finished tasks of the sweep run from experiments/fmnist_ablation.ini
# (their results.h5, descriptor.ini and reconstruction PNG; no checkpoints) into
# this directory, writes wall-time.tsv from the job logs, and regenerates the
# report. Run from the repository root after `mimae sweep submit`:
#   experiments/results/fmnist-ablation/collect.sh [SWEEP_DIR]   (default runs/fmnist_ablation)
# A task counts as finished when its log ends with exit status 0; running and
# unfinished tasks are left for the next collection.
set -euo pipefail
sweep=${1:-runs/fmnist_ablation}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
mimae=${MIMAE:-build/mimae}
[ -d "$sweep/logs" ] || { echo "collect.sh: $sweep/logs: no such directory: give the sweep directory" >&2; exit 2; }

# the plan and every task's expanded descriptor: tasks not finished yet show
# in the report as missing rows of their arm
cp "$sweep/plan.tsv" "$here/plan.tsv"
cp experiments/fmnist_ablation.ini "$here/fmnist_ablation.ini" # the descriptor used
mkdir -p "$here/tasks"
cp "$sweep"/tasks/task-*.ini "$here/tasks/"
printf 'task\tstarted\tfinished\twall_s\trestarts\n' >"$here/wall-time.tsv"
for log in "$sweep"/logs/task-*.log; do
    task=$(basename "$log" .log)          # task-NNNN
    n=$((10#${task#task-}))
    tail -n 1 "$log" | grep -q "task $n: mimae_dist exited with status 0$" || continue
    dir=$(ls -d "$sweep/$task"-* 2>/dev/null | head -n 1)
    [ -n "$dir" ] && [ -f "$dir/results.h5" ] || continue
    dest="$here/$(basename "$dir")"
    mkdir -p "$dest"
    cp "$dir/results.h5" "$dir/descriptor.ini" "$dest/"
    cp "$dir"/results-recon-*.png "$dest/" 2>/dev/null || true
    # wall time: first start to last exit (requeued tasks count their waits too)
    start=$(grep -m1 '^== .* restart 0' "$log" | cut -d' ' -f2,3)
    end=$(tail -n 1 "$log" | cut -d' ' -f2,3)
    restarts=$(grep -c '^== .* restart [0-9]' "$log")
    printf '%d\t%s\t%s\t%d\t%d\n' "$n" "$start" "$end" \
        $(($(date -d "$end" +%s) - $(date -d "$start" +%s))) $((restarts - 1)) >>"$here/wall-time.tsv"
done
# the report names the directory as given: relative, so no machine's path lands in it
rel=$(realpath --relative-to=. "$here")
"$mimae" report "$rel" --out "$rel" --baseline mae-equal-compute
