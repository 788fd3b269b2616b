#!/usr/bin/env bash
# Copies the finished tasks of the sweep run from experiments/fmnist_ablation.ini
# (their results.h5, descriptor.ini and reconstruction PNG; no checkpoints) into
# this directory, writes wall-time.tsv from the job logs, and regenerates the
# report. Run from the repository root after `mimae sweep submit`:
#   experiments/results/fmnist-ablation/collect.sh [SWEEP_DIR]   (default runs/fmnist_ablation)
# A task counts as finished when the job script's last line in its log says exit
# status 0 (slurmstepd may write after it) and its results.h5, as copied, says
# status = finished; running and unfinished tasks are left for the next collection.
#
# The sweep directory is what a cluster left there. Only regular files in
# directories of its own are read: a symbolic link is never followed out of it
# (files are opened with O_NOFOLLOW), a FIFO never waited on (O_NONBLOCK), and a
# file that changes while it is copied is not taken. Nothing here is written
# through a link: each file is copied to a temporary of its own (mktemp) in this
# directory and renamed into place, and a link or anything but a regular file
# (a directory for a task) at a name written here is refused and left as it is.
# Each refusal is one line on stderr; what could be collected is, the report is
# regenerated, and the exit status is 2.
set -euo pipefail
shopt -s nullglob
sweep=${1:-runs/fmnist_ablation}
case $sweep in -*) sweep=./$sweep ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
mimae=${MIMAE:-build/mimae}

refused=0
refuse() {
    printf 'collect.sh: %s\n' "$*" >&2
    refused=1
}

# Temporaries: every one is removed however the script ends. The functions
# below return names in globals (TMP, STAGED), not through $(...), whose
# subshell would lose what they record.
tmps=()
cleanup() { [ ${#tmps[@]} -eq 0 ] || rm -f -- "${tmps[@]}"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
new_tmp() { # TMP: a new empty file of ours in directory $1 (mktemp: O_EXCL)
    TMP=$(mktemp "$1/.collect.XXXXXX")
    tmps+=("$TMP")
}

# What is at a path, the link itself rather than its target: "regular file",
# "regular empty file", "directory", "symbolic link", "fifo", ...; "nothing".
kind() { stat -c %F -- "$1" 2>/dev/null || echo nothing; }
what() { # kind as a phrase
    case $(kind "$1") in nothing) echo "no such file" ;; *) echo "a $(kind "$1")" ;; esac
}
is_file() { case $(kind "$1") in 'regular file' | 'regular empty file') return 0 ;; esac; return 1; }
is_dir() { [ "$(kind "$1")" = directory ]; }

# An output here: a regular file or nothing, else refused with a line.
check_output() {
    case $(kind "$1") in nothing | 'regular file' | 'regular empty file') return 0 ;; esac
    refuse "$1: $(what "$1") where collect.sh writes a file: left as it is, not written (remove it)"
    return 1
}

# stage SRC DIR [CHECK]: STAGED = a copy of the regular file SRC in a new
# temporary in DIR, read with O_NOFOLLOW|O_NONBLOCK, taken only when SRC did
# not change meanwhile (inode, size, times) and CHECK STAGED, when given,
# accepts it. 1 after a line otherwise; 2 without one when SRC changed and
# DIR is not here (a log that grows: its task runs).
stage() {
    local src=$1 check=${3:-} before after
    if ! is_file "$src"; then
        refuse "$src: $(what "$src"), not a regular file: not read (remove it, or put the file itself there)"
        return 1
    fi
    before=$(stat -c '%i %s %.9Y %.9Z' -- "$src" 2>/dev/null) || before=gone
    new_tmp "$2"
    STAGED=$TMP
    if ! dd if="$src" of="$STAGED" iflag=nofollow,nonblock status=none 2>/dev/null ||
        ! after=$(stat -c '%i %s %.9Y %.9Z' -- "$src" 2>/dev/null) || [ "$before" != "$after" ] ||
        [ "$(stat -c %s -- "$STAGED")" != "$(echo "$before" | cut -d' ' -f2)" ]; then
        [ "$2" = "$here" ] || return 2
        refuse "$src: changed or replaced while it was copied: not taken (collect again later)"
        return 1
    fi
    if [ -n "$check" ] && ! "$check" "$STAGED"; then
        refuse "$src: not a results file of a finished run (status is not 'finished'): not taken"
        return 1
    fi
    chmod 0644 "$STAGED"
}

# install TMP DEST: renames the staged TMP onto DEST (rename(2) replaces the
# name, it never writes through it); DEST was checked by check_output.
install() { mv -fT -- "$1" "$2"; }

# copy_in SRC DEST: one file staged and installed.
copy_in() { check_output "$2" && stage "$1" "$here" && install "$STAGED" "$2"; }

finished_results() { "$mimae" inspect "$1" 2>/dev/null | grep -qx '  status finished'; }

# here/NAME as a directory: made when absent; 1 after a line when something
# else (a link to a directory too) is there.
out_dir() {
    case $(kind "$here/$1") in
    directory) return 0 ;;
    nothing) mkdir -- "$here/$1" ;;
    *)
        refuse "$here/$1: $(what "$here/$1") where collect.sh keeps a directory: left as it is (remove it)"
        return 1
        ;;
    esac
}

is_dir "$sweep/logs" || {
    echo "collect.sh: $sweep/logs: $(what "$sweep/logs"), not a directory: give the sweep directory" >&2
    exit 2
}

# the plan and every task's expanded descriptor: tasks not finished yet show
# in the report as missing rows of their arm
copy_in "$sweep/plan.tsv" "$here/plan.tsv" || true
copy_in experiments/fmnist_ablation.ini "$here/fmnist_ablation.ini" || true # the descriptor used
if ! is_dir "$sweep/tasks"; then
    refuse "$sweep/tasks: $(what "$sweep/tasks"), not a directory: no task descriptors copied"
elif out_dir tasks; then
    for ini in "$sweep"/tasks/task-*.ini; do
        [[ ${ini##*/} =~ ^task-[0-9]{4,6}\.ini$ ]] || continue
        copy_in "$ini" "$here/tasks/${ini##*/}" || true
    done
fi

new_tmp "$here"
wall=$TMP
printf 'task\tstarted\tfinished\twall_s\trestarts\n' >"$wall"
for log in "$sweep"/logs/task-*.log; do
    task=${log##*/}
    task=${task%.log}
    [[ $task =~ ^task-([0-9]{4,6})$ ]] || continue # not a task's log (nor arithmetic for bash)
    n=$((10#${BASH_REMATCH[1]}))
    stage "$log" "${TMPDIR:-/tmp}" || continue
    text=$STAGED
    # the job script's last line ("== ... exited with status N"); Slurm may log after it
    last=$(grep '^== ' "$text" | tail -n 1 || true)
    [[ $last == *"task $n: mimae_dist exited with status 0" ]] || continue
    # the task's directory: one, and a directory of the sweep's own
    dirs=()
    while IFS= read -r -d '' entry; do dirs+=("$entry"); done \
        < <(find -H "$sweep" -mindepth 1 -maxdepth 1 -name "$task-*" -print0)
    [ ${#dirs[@]} -gt 0 ] || continue
    if [ ${#dirs[@]} -gt 1 ]; then
        refuse "$sweep: ${#dirs[@]} directories of $task: not collected (move the stale ones away)"
        continue
    fi
    dir=${dirs[0]}
    if ! is_dir "$dir"; then
        refuse "$dir: $(what "$dir"), not a directory of the sweep: not read"
        continue
    fi
    dest=$here/${dir##*/}
    # every file staged and checked before any is installed; results.h5 last
    srcs=("$dir/descriptor.ini" "$dir"/results-recon-*.png "$dir/results.h5")
    staged=()
    ok=1
    for f in "${srcs[@]}"; do
        check=''
        [ "${f##*/}" != results.h5 ] || check=finished_results
        if check_output "$dest/${f##*/}" && stage "$f" "$here" "$check"; then
            staged+=("$STAGED")
        else
            ok=0
        fi
    done
    if [ "$ok" = 0 ] || ! out_dir "${dir##*/}"; then
        [ ${#staged[@]} -eq 0 ] || rm -f -- "${staged[@]}"
        continue
    fi
    for i in "${!srcs[@]}"; do install "${staged[$i]}" "$dest/${srcs[$i]##*/}"; done
    # wall time: first start to last exit (requeued tasks count their waits too);
    # empty when the log does not show them
    start=$(grep -m1 '^== .* restart 0' "$text" | cut -d' ' -f2,3 || true)
    end=$(cut -d' ' -f2,3 <<<"$last")
    restarts=$(grep -c '^== .* restart [0-9]' "$text" || true)
    if [ -n "$start" ] && s=$(date -d "$start" +%s 2>/dev/null) && e=$(date -d "$end" +%s 2>/dev/null); then
        printf '%d\t%s\t%s\t%d\t%d\n' "$n" "$start" "$end" $((e - s)) $((restarts - 1)) >>"$wall"
    else
        printf '%d\t\t\t\t\n' "$n" >>"$wall"
    fi
done
if check_output "$here/wall-time.tsv"; then
    chmod 0644 "$wall"
    install "$wall" "$here/wall-time.tsv"
fi

# the report names the directory as given: relative, so no machine's path lands in it
rel=$(realpath --relative-to=. "$here")
"$mimae" report "$rel" --out "$rel" --baseline mae-equal-compute
exit $((refused ? 2 : 0))
