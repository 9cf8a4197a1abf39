"""Learning curves from rl_repara runs: one curve per argument, the seeds below it aggregated.

    python scripts/plot.py runs/HalfCheetah-v5/multirun-2025-01-01_12-00-00 -o cheetah.png
    python scripts/plot.py sweep_a sweep_b --labels "lr 3e-4" "lr 1e-3" --tag charts/episodic_return

Each argument is a run dir or any dir above run dirs (a sweep); every dir below it holding
TensorBoard event files is one run (one seed). The runs of a group are put on a common grid of
env steps (linear interpolation, up to the shortest run), and the curve is their mean with a 95%
bootstrap confidence interval: the runs are resampled with replacement ``--boot`` times and the
2.5th and 97.5th percentiles of the resampled means bound the band.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def find_runs(root: Path) -> list[Path]:
    """Dirs at or below ``root`` that directly hold TensorBoard event files."""
    if not root.exists():
        raise SystemExit(f"plot.py: error: no such dir: {root}")
    return sorted({p.parent for p in root.rglob("events.out.tfevents.*")})


def read_scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) of ``tag`` in one run, sorted by step; None when the run lacks it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return None
    events = acc.Scalars(tag)
    steps = np.array([e.step for e in events], dtype=np.float64)
    values = np.array([e.value for e in events], dtype=np.float64)
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


def on_grid(curves: list[tuple[np.ndarray, np.ndarray]], points: int) -> tuple[np.ndarray, np.ndarray]:
    """The curves interpolated on a shared grid: ``grid [G]``, ``values [runs, G]``.

    Runs that log at the same steps (evaluations) keep exactly those steps; otherwise ``points``
    evenly spaced steps between the latest first step and the earliest last step.
    """
    if all(np.array_equal(s, curves[0][0]) for s, _ in curves):
        return curves[0][0], np.stack([v for _, v in curves])
    start = max(s[0] for s, _ in curves)
    end = min(s[-1] for s, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    return grid, np.stack([np.interp(grid, s, v) for s, v in curves])


def bootstrap_ci(values: np.ndarray, boot: int, rng: np.random.Generator, level: float = 0.95):
    """Mean over runs (axis 0) and the percentile bootstrap interval of that mean."""
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n == 1:
        return mean, mean.copy(), mean.copy()
    idx = rng.integers(0, n, size=(boot, n))
    means = values[idx].mean(axis=1)  # [boot, G]
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return mean, lo, hi


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="run or sweep dirs: one curve each")
    p.add_argument("-o", "--out", type=Path, default=Path("curves.png"), help="PNG to write")
    p.add_argument("--tag", default="eval/mean_return", help="TensorBoard scalar to plot")
    p.add_argument("--labels", nargs="+", help="one legend label per dir (default: dir names)")
    p.add_argument("--points", type=int, default=200, help="grid size for unaligned runs")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--title", default=None)
    p.add_argument("--csv", type=Path, default=None, help="also write group,step,mean,lo,hi")
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.dirs):
        p.error(f"--labels needs one label per dir ({len(args.dirs)}); got {len(args.labels)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('plot.py: error: needs matplotlib: pip install -e ".[plot]"') from None

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(args.seed)
    labels = args.labels or [d.resolve().name for d in args.dirs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = []
    for root, label in zip(args.dirs, labels):
        runs = find_runs(root)
        curves = [c for c in (read_scalars(r, args.tag) for r in runs) if c is not None]
        if not curves:
            raise SystemExit(f"plot.py: error: no run below {root} has the scalar {args.tag!r}")
        grid, values = on_grid(curves, args.points)
        mean, lo, hi = bootstrap_ci(values, args.boot, rng)
        (line,) = ax.plot(grid, mean, label=f"{label} (n={len(curves)})")
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
        rows += [(label, s, m, a, b) for s, m, a, b in zip(grid, mean, lo, hi)]
        print(
            f"{label}: {len(curves)} run(s), final {args.tag} {mean[-1]:.2f} "
            f"[95% CI {lo[-1]:.2f}, {hi[-1]:.2f}] at step {int(grid[-1])}"
        )
    ax.set_xlabel("env steps")
    ax.set_ylabel(args.tag)
    ax.set_title(args.title or f"{args.tag}: mean and 95% bootstrap CI over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["group", "step", "mean", "lo", "hi"])
            w.writerows(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
