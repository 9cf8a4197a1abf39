"""Learning curves and results tables from rl_repara (and SB3) runs; statistics from rliable.

    python scripts/plot.py runs/HalfCheetah-v5/multirun-2025-01-01_12-00-00 -o cheetah.png
    python scripts/plot.py sweep_a sweep_b --labels "lr 3e-4" "lr 1e-3" --tag charts/episodic_return
    python scripts/plot.py --bench bench/first -o bench/first/report

Curves (run or sweep dirs): each argument is a run dir or any dir above run dirs (a sweep);
every dir below it holding TensorBoard event files is one run (one seed). The runs of a group
are put on a common grid of env steps (linear interpolation, up to the shortest run), and the
curve is their mean with a 95% confidence interval: rliable's stratified bootstrap (runs
resampled with replacement ``--boot`` times; percentile interval of the resampled means).

Benchmark report (``--bench DIR``, a dir written by ``scripts/bench.py``; ``-o`` is then a dir,
default ``DIR/report``):

* ``curves.png``: a panel per env, a line per library and preset (mean and 95% CI over seeds);
* ``results.md`` and ``results.csv``: a row per env, a column per library and preset. A run's
  score is the mean of its last three evaluations; a cell holds the mean score over seeds with
  its 95% CI, each seed's score, and the mean wall clock of a run (from ``meta.json``);
* ``aggregate.png``, ``profiles.png``, ``aggregate.csv``: across envs, rliable's interquartile
  mean (IQM) of normalized scores with 95% stratified bootstrap CIs, and performance profiles.
  Normalization (scores of different envs cannot be pooled raw): per env, min-max over every
  evaluation that any run of that env logged, ``(score - lowest) / (highest - lowest)``. 0 is
  the worst evaluation seen (near the untrained policy), 1 the best; it ranks the runs of this
  benchmark against each other and means nothing across benchmarks.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

LAST_EVALS = 3  # a run's score: the mean of its last three evaluations
NORMALIZATION = (
    "per env, min-max over every evaluation any run of that env logged: (score - lowest) / (highest - lowest)"
)


class PlotError(Exception):
    """A mistake on the command line, or a missing extra: ``main`` prints it as one line and
    exits with 2, as the rl_repara commands do."""


def fail(message: str) -> PlotError:
    """The error to raise: ``raise fail("...")``."""
    return PlotError(message)


# ------------------------------------------------------------------------------- reading
def find_runs(root: Path) -> list[Path]:
    """Dirs at or below ``root`` that directly hold TensorBoard event files."""
    if not root.exists():
        raise fail(f"no such dir: {root}")
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


# ---------------------------------------------------------------------------- statistics
def rliable() -> tuple[Any, Any]:
    """rliable's ``library`` and ``metrics`` modules, or a one-line error naming the extra."""
    try:
        from rliable import library, metrics
    except ImportError:
        raise fail('needs rliable (the plot extra): pip install -e ".[plot]"') from None
    except Exception as exc:  # a broken dependency (arch against a newer pandas) fails on import
        hint = ""
        if "deprecate_kwarg" in str(exc):  # arch 7 (rliable asks for arch<8) against pandas 3
            hint = "; arch<8 does not import with pandas 3: pip install 'pandas<3'"
        raise fail(f"rliable does not import: {type(exc).__name__}: {exc}{hint}") from None
    return library, metrics


def interval(scores: np.ndarray, func: Callable[[np.ndarray], np.ndarray], boot: int):
    """``func`` of ``scores [runs, tasks, ...]`` and its 95% CI: rliable's stratified bootstrap
    (runs resampled within each task), percentile method. Returns (point, lo, hi)."""
    library, _ = rliable()
    points, cis = library.get_interval_estimates({"x": scores}, func, reps=boot)
    return np.asarray(points["x"]), np.asarray(cis["x"][0]), np.asarray(cis["x"][1])


def mean_ci(values: np.ndarray, boot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (axis 0) of ``values [runs, G]`` and its 95% CI, pointwise along G."""
    return interval(values[:, None, :], lambda s: s.mean(axis=(0, 1)), boot)


def iqm_ci(scores: np.ndarray, boot: int) -> tuple[float, float, float]:
    """rliable's interquartile mean of ``scores [runs, tasks]`` and its 95% CI."""
    _, metrics = rliable()
    point, lo, hi = interval(scores, lambda s: np.array([metrics.aggregate_iqm(s)]), boot)
    return float(point[0]), float(lo[0]), float(hi[0])


# --------------------------------------------------------------------------- curves mode
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", type=Path, help="run or sweep dirs: one curve each")
    p.add_argument("--bench", type=Path, help="a scripts/bench.py dir: write its report to -o")
    p.add_argument("-o", "--out", type=Path, default=None, help="PNG (curves) or report dir (--bench)")
    p.add_argument("--tag", default="eval/mean_return", help="TensorBoard scalar to plot")
    p.add_argument("--labels", nargs="+", help="one legend label per dir (default: dir names)")
    p.add_argument("--points", type=int, default=200, help="grid size for unaligned runs")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--title", default=None)
    p.add_argument("--csv", type=Path, default=None, help="also write group,step,mean,lo,hi")
    args = p.parse_args(argv)
    if bool(args.dirs) == bool(args.bench):
        p.error("give run or sweep dirs, or --bench DIR (not both)")
    if args.labels and len(args.labels) != len(args.dirs):
        p.error(f"--labels needs one label per dir ({len(args.dirs)}); got {len(args.labels)}")
    if args.boot < 1:
        p.error(f"--boot must be >= 1; got {args.boot}")
    return args


def pyplot() -> Any:
    """matplotlib's pyplot on the headless backend, or a one-line error naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise fail('needs matplotlib (the plot extra): pip install -e ".[plot]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_main(args: argparse.Namespace) -> None:
    """One curve per dir argument, the seeds below it aggregated; a PNG and optionally a CSV."""
    plt = pyplot()
    out = args.out or Path("curves.png")
    labels = args.labels or [d.resolve().name for d in args.dirs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = []
    for root, label in zip(args.dirs, labels):
        runs = find_runs(root)
        curves = [c for c in (read_scalars(r, args.tag) for r in runs) if c is not None]
        if not curves:
            raise fail(f"no run below {root} has the scalar {args.tag!r}")
        grid, values = on_grid(curves, args.points)
        mean, lo, hi = mean_ci(values, args.boot)
        (line,) = ax.plot(grid, mean, label=f"{label} (n={len(curves)})")
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
        rows += [(label, s, m, a, b) for s, m, a, b in zip(grid, mean, lo, hi)]
        print(
            f"{label}: {len(curves)} run(s), final {args.tag} {mean[-1]:.2f} "
            f"[95% CI {lo[-1]:.2f}, {hi[-1]:.2f}] at step {int(grid[-1])}"
        )
    ax.set_xlabel("env steps")
    ax.set_ylabel(args.tag)
    ax.set_title(args.title or f"{args.tag}: mean and 95% bootstrap CI over seeds (rliable)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["group", "step", "mean", "lo", "hi"])
            w.writerows(rows)


# ---------------------------------------------------------------------------- bench mode
@dataclass
class Run:
    """One run of a benchmark dir: ``<library>/<env id>/<agent>/seed<k>``, and its curve."""

    library: str
    env_id: str
    agent: str
    seed: int
    steps: np.ndarray
    values: np.ndarray
    wall_s: float | None

    @property
    def method(self) -> str:
        """The column this run belongs to: library and preset."""
        return f"{self.library} {self.agent}"

    @property
    def score(self) -> float:
        """The mean of the last three evaluations."""
        return float(self.values[-LAST_EVALS:].mean())


def load_bench(root: Path, tag: str) -> tuple[list[Run], dict[str, Any]]:
    """Every run of a bench dir that logged ``tag``, and the dir's ``meta.json`` (or {})."""
    if not root.is_dir():
        raise fail(f"no such dir: {root}")
    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    walls = {name: r.get("wall_s") for name, r in meta.get("runs", {}).items()}
    runs = []
    for tb in sorted(root.glob("*/*/*/seed*/tb")):
        library, env_id, agent, seed_dir = tb.parent.relative_to(root).parts
        curve = read_scalars(tb, tag)
        if curve is None or not seed_dir[4:].isdigit():
            continue
        name = tb.parent.relative_to(root).as_posix()
        runs.append(Run(library, env_id, agent, int(seed_dir[4:]), *curve, walls.get(name)))
    if not runs:
        raise fail(f"no run of {root} (<library>/<env id>/<agent>/seed<k>/tb) has the scalar {tag!r}")
    return runs, meta


def by_env(runs: list[Run]) -> dict[str, dict[str, list[Run]]]:
    """Runs by env id, then by method, each list sorted by seed."""
    table: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=lambda r: (r.env_id, r.method, r.seed)):
        table[run.env_id][run.method].append(run)
    return {env: dict(methods) for env, methods in table.items()}


def methods_of(runs: list[Run]) -> list[str]:
    """The table's columns: rl_repara's presets first, then the other libraries."""
    return sorted({r.method for r in runs}, key=lambda m: (not m.startswith("rl_repara"), m))


def fmt(x: float) -> str:
    """A return for the table: thousands separated, one decimal."""
    return f"{x:,.1f}"


@dataclass
class Cell:
    """One env × method cell: mean score over seeds, its CI, the seeds' scores, wall clock."""

    mean: float
    lo: float
    hi: float
    seeds: dict[int, float]
    wall_min: float | None

    def markdown(self) -> str:
        seeds = " / ".join(fmt(v) for v in self.seeds.values())
        wall = "n/a" if self.wall_min is None else f"{self.wall_min:.1f} min"
        if self.wall_min is not None and self.wall_min < 1:
            wall = f"{self.wall_min * 60:.0f} s"
        return f"{fmt(self.mean)} [{fmt(self.lo)}, {fmt(self.hi)}] · seeds {seeds} · {wall}"


def cell(runs: list[Run], boot: int) -> Cell:
    """The cell of one env and method."""
    scores = np.array([r.score for r in runs])
    mean, lo, hi = mean_ci(scores[:, None], boot)
    walls = [r.wall_s for r in runs]
    wall = float(np.mean(walls)) / 60 if all(w is not None for w in walls) else None
    return Cell(float(mean[0]), float(lo[0]), float(hi[0]), {r.seed: r.score for r in runs}, wall)


def results_table(envs: dict[str, dict[str, list[Run]]], methods: list[str], boot: int):
    """``{env: {method: Cell}}`` (a method without runs on an env has no entry)."""
    return {env: {m: cell(envs[env][m], boot) for m in methods if m in envs[env]} for env in envs}


def write_results(out: Path, table: dict[str, dict[str, Cell]], methods: list[str]) -> list[str]:
    """``results.csv`` (a row per env; per method: mean, lo, hi, seeds, wall_min); returns the
    markdown table's lines."""
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["env", *(f"{m} {c}" for m in methods for c in ("mean", "lo", "hi", "seeds", "wall_min"))])
        for env, cells in table.items():
            row: list[Any] = [env]
            for m in methods:
                c = cells.get(m)
                if c is None:
                    row += [""] * 5
                    continue
                seeds = " ".join(f"{s}:{v:.2f}" for s, v in c.seeds.items())
                wall = f"{c.wall_min:.2f}" if c.wall_min is not None else ""
                row += [f"{c.mean:.2f}", f"{c.lo:.2f}", f"{c.hi:.2f}", seeds, wall]
            w.writerow(row)
    lines = [f"| env | {' | '.join(methods)} |", "| --- |" + " --- |" * len(methods)]
    for env, cells in table.items():
        row_cells = [cells[m].markdown() if m in cells else "–" for m in methods]
        lines.append(f"| {env} | {' | '.join(row_cells)} |")
    return lines


def normalized_scores(envs: dict[str, dict[str, list[Run]]], methods: list[str]) -> dict[str, np.ndarray]:
    """``{method: [runs, envs]}`` of normalized scores (``NORMALIZATION``), for the envs that
    every method ran; a method keeps as many seeds per env as its smallest env has."""
    shared = [env for env in envs if all(m in envs[env] for m in methods)]
    out = {}
    for m in methods:
        n = min(len(envs[env][m]) for env in shared)
        columns = []
        for env in shared:
            every = np.concatenate([r.values for runs in envs[env].values() for r in runs])
            low, high = every.min(), every.max()
            scores = np.array([r.score for r in envs[env][m][:n]])
            columns.append((scores - low) / (high - low) if high > low else np.zeros(n))
        out[m] = np.stack(columns, axis=1)
    return out


def aggregate(scores: dict[str, np.ndarray], boot: int, out: Path) -> list[tuple[str, float, float, float]]:
    """IQM with CI per method (``aggregate.csv``, ``aggregate.png``) and performance profiles
    (``profiles.png``), both from rliable; returns (method, iqm, lo, hi) rows."""
    library, _ = rliable()
    from rliable import plot_utils

    rows = [(m, *iqm_ci(s, boot)) for m, s in scores.items()]
    with open(out / "aggregate.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "iqm", "lo", "hi", "runs", "envs"])
        w.writerows([(m, f"{q:.4f}", f"{a:.4f}", f"{b:.4f}", *scores[m].shape) for m, q, a, b in rows])
    plt = pyplot()
    points = {m: np.array([q]) for m, q, _, _ in rows}
    cis = {m: np.array([[a], [b]]) for m, _, a, b in rows}
    fig, _ = plot_utils.plot_interval_estimates(
        points, cis, metric_names=["IQM of normalized score"], algorithms=list(scores),
        xlabel="per-env min-max normalized (results.md says how)",
    )  # fmt: skip
    fig.savefig(out / "aggregate.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    taus = np.linspace(0.0, 1.0, 51)
    # rliable's default of 2000 resamples: each one evaluates the profile at every tau
    profiles, profile_cis = library.create_performance_profile(scores, taus, reps=min(boot, 2000))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=profile_cis, ax=ax,
        xlabel=r"per-env min-max normalized score $\tau$", ylabel=r"fraction of runs with score $> \tau$",
    )  # fmt: skip
    ax.legend()
    fig.savefig(out / "profiles.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return rows


def footer(meta: dict[str, Any]) -> str:
    """One line for a figure: the machine, threads per run and versions it was made with."""
    if not meta:
        return ""
    v = meta.get("versions", {})
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "gymnasium", "mujoco", "stable-baselines3") if v.get(k))
    commit = (v.get("rl_repara_commit") or "?")[:7]
    return (
        f"{meta.get('cpu', {}).get('model')}, {meta.get('threads_per_run')} torch thread(s) per run; "
        f"rl_repara {commit}, {libs}"
    )


def plot_env_curves(
    envs: dict[str, dict[str, list[Run]]], methods: list[str], boot: int, path: Path, note: str
) -> None:
    """A panel per env: mean and 95% CI over seeds of each method's evaluation curve."""
    plt = pyplot()
    cols = min(len(envs), 3)
    rows = -(-len(envs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for ax, (env, by_method) in zip(axes.flat, envs.items()):
        for m, runs in by_method.items():
            grid, values = on_grid([(r.steps, r.values) for r in runs], 200)
            mean, lo, hi = mean_ci(values, boot)
            ax.plot(grid, mean, color=colors[m], label=f"{m} (n={len(runs)})")
            ax.fill_between(grid, lo, hi, color=colors[m], alpha=0.2, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(envs) :]:
        ax.set_visible(False)
    fig.tight_layout()
    if note:
        fig.text(0.5, 0.0, note, ha="center", va="top", fontsize=7, color="0.4")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def provenance(meta: dict[str, Any]) -> list[str]:
    """Markdown lines naming the command, machine, threads, versions and times of the bench."""
    if not meta:
        return ["- no meta.json: command, machine and versions unknown"]
    cpu, v = meta.get("cpu", {}), meta.get("versions", {})
    flags = ", ".join(f"{k} {'yes' if on else 'no'}" for k, on in cpu.get("flags", {}).items())
    phases = ", ".join(
        f"{k} {p['wall_s'] / 60:.1f} min"
        + (f", load average at its end {p['load_at_end']}" if p.get("load_at_end") else "")
        for k, p in meta.get("phases", {}).items()
    )
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if k != "rl_repara_commit" and val)
    lines = [
        f"- bench command: `{meta.get('command')}`",
        f"- machine: {cpu.get('model')}, {cpu.get('logical_cores')} logical cores ({flags}; torch ISA "
        f"{cpu.get('torch_cpu_capability')}; GPU {cpu.get('gpu') or 'none'}); "
        f"{meta.get('threads_per_run')} torch thread(s) per run, {meta.get('jobs')} run(s) at a time",
        f"- time: {meta.get('started')} to {meta.get('finished')} ({phases})",
        f"- versions: {libs}; rl_repara commit {v.get('rl_repara_commit')}",
    ]
    for earlier in meta.get("history", []):
        envs = ", ".join((earlier.get("grid") or {}).get("envs", {}).values())
        commit = (earlier.get("versions") or {}).get("rl_repara_commit")
        lines.append(
            f"- earlier command into this dir ({envs or 'grid unknown'}; {earlier.get('started')} to "
            f"{earlier.get('finished')}; rl_repara commit {commit}): `{earlier.get('command')}`"
        )
    for env_id, s in meta.get("sb3_settings", {}).items():
        lines.append(f"- SB3 SAC on {env_id}: {json.dumps(s['kwargs'])} ({s['source']})")
    return lines


def final_steps_note(envs: dict[str, dict[str, list[Run]]]) -> list[str]:
    """A warning line for each env whose runs did not all reach the same last step."""
    notes = []
    for env, by_method in envs.items():
        last = {f"{m} seed {r.seed}": int(r.steps[-1]) for m, runs in by_method.items() for r in runs}
        if len(set(last.values())) > 1:
            short = ", ".join(f"{k} at {s}" for k, s in last.items() if s < max(last.values()))
            notes.append(f"{env}: not every run reached step {max(last.values())} ({short})")
    return notes


def bench_main(args: argparse.Namespace) -> None:
    """The report of a bench dir: curves, results table, aggregate statistics."""
    runs, meta = load_bench(args.bench, args.tag)
    out = args.out or args.bench / "report"
    out.mkdir(parents=True, exist_ok=True)
    envs, methods = by_env(runs), methods_of(runs)
    plot_env_curves(envs, methods, args.boot, out / "curves.png", footer(meta))
    table = results_table(envs, methods, args.boot)
    table_lines = write_results(out, table, methods)
    agg = aggregate(normalized_scores(envs, methods), args.boot, out)
    notes = final_steps_note(envs)
    for note in notes:
        print(f"plot.py: warning: {note}", file=sys.stderr)
    report = [
        f"# Benchmark report: {args.bench}",
        "",
        f"- report command: `python scripts/plot.py --bench {args.bench} -o {out}`",
        *provenance(meta),
        "",
        f"A run's score is the mean of its last {LAST_EVALS} evaluations ({args.tag}). A cell: the mean "
        "score over seeds [95% CI, rliable stratified bootstrap], each seed's score, the mean wall "
        "clock of a run (first to last TensorBoard event).",
        "",
        *table_lines,
        *(["", *(f"- warning: {n}" for n in notes)] if notes else []),
        "",
        f"Across envs (normalized {NORMALIZATION}): interquartile mean and its 95% stratified "
        "bootstrap CI (rliable); performance profiles in profiles.png.",
        "",
        "| method | IQM of normalized score | 95% CI |",
        "| --- | --- | --- |",
        *(f"| {m} | {q:.3f} | [{a:.3f}, {b:.3f}] |" for m, q, a, b in agg),
        "",
        "![curves](curves.png) ![aggregate](aggregate.png) ![profiles](profiles.png)",
    ]
    (out / "results.md").write_text("\n".join(report) + "\n")
    print("\n".join(table_lines))
    print(f"normalization for the aggregate: {NORMALIZATION}")
    print(f"wrote {out}: results.md, results.csv, aggregate.csv, curves.png, aggregate.png, profiles.png")


def main(argv: list[str] | None = None) -> None:
    """Curves or a bench report; a mistake or a missing extra is one line and exit code 2."""
    args = parse_args(argv)
    np.random.seed(args.seed)  # rliable's bootstrap draws from numpy's global generator
    try:
        pyplot()  # both modes need the plot extra: say so before any work
        rliable()
        if args.bench:
            bench_main(args)
        else:
            curves_main(args)
    except PlotError as exc:
        print(f"plot.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(sys.argv[1:])
