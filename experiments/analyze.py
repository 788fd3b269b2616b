#!/usr/bin/python3
"""Reading mimae results files from Python: an example.

Finds every results.h5 under DIR (a run, a sweep's task-NNNN directories, the
demo's runs side by side, at any depth), prints each run's final metrics (and,
for a run evaluated more than once, each evaluation) and plots L_rec against
the step, one line per run, to a PNG.

    /usr/bin/python3 experiments/analyze.py DIR [--out FILE.png]

The layout of a results file is in README.md ("File formats"): root attributes
config.<section>.<key>, run.name, train.seed, ...; /train/<metric> per logged
step; /eval/<name> scalars (the latest evaluation); /eval_history/<name> rows
of (step, epoch, value), every evaluation. Needs Debian's python3-h5py and
python3-matplotlib.
"""
import argparse
import pathlib
import sys

import h5py
import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt


def text(value):
    """String attributes come back as str (or bytes from older writers)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def number(value, width):
    """A number in a column, '-' when there is none."""
    return f"{'-':>{width}}" if value is None else f"{value:{width}.4f}"


def load(path):
    """The attributes, the /train columns, the /eval metrics (latest values)
    and each metric's evaluations as (step, epoch, value) rows of one file."""
    with h5py.File(path, "r") as f:
        if text(f.attrs.get("format", "")) != "mimae-results":
            raise ValueError("not a mimae results file")
        attrs = {key: f.attrs[key] for key in f.attrs}
        train = {name: f["train"][name][()] for name in f["train"]}
        evals = {name: float(f["eval"][name][()]) for name in f.get("eval", {})}
        # files written before /eval_history have the latest value only
        history = {name: [(int(s), float(e), float(v)) for s, e, v in rows[()]]
                   for name, rows in f.get("eval_history", {}).items()}
        for name, ds in f.get("eval", {}).items():
            history.setdefault(name, [(int(ds.attrs["step"]), float("nan"), evals[name])])
    return attrs, train, evals, history


def print_evaluations(history):
    """One line per evaluated step: the top-1 metrics at that step."""
    shown = [m for m in ("linear_probe_top1", "knn_top1", "finetune_top1") if m in history]
    steps = sorted({row[0] for m in shown for row in history[m]})
    if len(steps) < 2:
        return
    for step in steps:
        at = {m: row for m in shown for row in history[m] if row[0] == step}
        epoch = next((row[1] for row in at.values()), float("nan"))
        values = ", ".join(f"{m} {row[2]:.4f}" for m, row in at.items())
        print(f"{'':<4}step {step:>6} epoch {epoch:6.2f}: {values}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, help="PNG to write (default DIR/analyze-L_rec.png)")
    args = parser.parse_args()
    if not args.dir.is_dir():
        sys.exit(f"analyze.py: {args.dir}: not a directory")
    out = args.out or args.dir / "analyze-L_rec.png"

    fig, ax = plt.subplots(figsize=(8, 5))
    print(f"{'run':<24} {'mask_ratio':>10} {'N':>3} {'seed':>5} {'steps':>6} "
          f"{'L_rec':>8} {'L':>8} {'probe':>7} {'k-NN':>7}")
    found = 0
    for path in sorted(args.dir.rglob("results.h5")):
        try:
            attrs, train, evals, history = load(path)
        except (OSError, KeyError, ValueError) as e:
            print(f"{str(path.parent.relative_to(args.dir)):<24} cannot read {path.name}: {e}")
            continue
        found += 1
        name = text(attrs.get("run.name", path.parent.name))
        steps = train["step"]
        logged = len(steps) > 0
        print(f"{name:<24} {float(attrs['config.mimae.mask_ratio']):>10g} "
              f"{int(attrs['config.mimae.num_masks']):>3} {text(attrs.get('train.seed', '-')):>5} "
              f"{int(steps[-1]) if logged else 0:>6} "
              f"{number(train['L_rec'][-1] if logged else None, 8)} "
              f"{number(train['L'][-1] if logged else None, 8)} "
              f"{number(evals.get('linear_probe_top1'), 7)} {number(evals.get('knn_top1'), 7)}")
        print_evaluations(history)
        ax.plot(steps, train["L_rec"], label=name)

    if found == 0:
        sys.exit(f"analyze.py: no readable results.h5 under {args.dir}")
    ax.set_xlabel("step")
    ax.set_ylabel("L_rec")
    ax.set_title(f"Reconstruction loss: {args.dir}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
