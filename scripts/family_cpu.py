"""Collect ``scripts/bench.py`` runs into ``docs/results/family_cpu.json`` and draw its curves.

    python scripts/family_cpu.py --bench bench/fam26a bench/fam26b --settings xqc="..." \\
        --json docs/results/family_cpu.json --png docs/results/{env}-family-cpu.png

Every run dir ``<bench>/rl_repara/<EnvId>/<agent>/seed<k>/tb`` becomes
``json[EnvId][agent]["seed<k>"] = {curve, wall_min, median_learning_sps}``:

* ``curve``: ``[env step, eval/mean_return]`` of every evaluation, rounded to 0.1;
* ``wall_min``: minutes from the run's first TensorBoard event to its last (as ``bench.py``);
* ``median_learning_sps``: the median of ``charts/SPS`` (env steps per second, logged in the
  learning phase only).

Runs already in the file are replaced; others are kept. ``--settings agent=TEXT`` records, under
``json["settings"][agent]``, the overrides those runs ran with. The PNG (one per env, ``{env}``
in its name) draws every preset of the file but the diagnostic runs (``tables.DIAGNOSTIC``): the
mean over seeds, and each seed thin; and, dashed, the authors' published means from
``--published`` where they have more than one point in the plotted range (their v4 task beside
our v5 one).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from tables import DIAGNOSTIC, read_published
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def run_summary(tb: Path) -> dict[str, Any]:
    """``curve``, ``wall_min`` and ``median_learning_sps`` of one run's TensorBoard dir."""
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    evals = acc.Scalars("eval/mean_return")
    times = [e.wall_time for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)]
    sps = [e.value for e in acc.Scalars("charts/SPS")] if "charts/SPS" in acc.Tags()["scalars"] else []
    return {
        "curve": [[e.step, round(e.value, 1)] for e in evals],
        "wall_min": round((max(times) - min(times)) / 60, 1),
        "median_learning_sps": round(statistics.median(sps), 1) if sps else None,
    }


def collect(benches: list[Path], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every run of ``benches`` put in (or replaced)."""
    for bench in benches:
        for tb in sorted(bench.glob("rl_repara/*/*/seed*/tb")):
            seed_dir = tb.parent
            env, agent = seed_dir.parent.parent.name, seed_dir.parent.name
            summary = run_summary(tb)
            if summary["curve"]:
                data.setdefault(env, {}).setdefault(agent, {})[seed_dir.name] = summary
    for env, agents in data.items():  # seeds in order, whichever bench dir held each
        if env != "settings":
            for agent, seeds in agents.items():
                agents[agent] = dict(sorted(seeds.items(), key=lambda kv: int(kv[0].removeprefix("seed"))))
    return data


def published_curves(csv_path: Path, env: str, last_step: int) -> dict[str, list[tuple[int, float, int]]]:
    """From ``published_early.csv``: per method, ``(step, mean over seeds, seeds)`` at every
    step up to ``last_step`` of the v4 twin of ``env`` (HalfCheetah-v5 → HalfCheetah-v4)."""
    return {
        method: [(step, statistics.mean(v), len(v)) for step, v in sorted(steps.items()) if step <= last_step]
        for (method, env_name), steps in read_published(csv_path).items()
        if env_name == env.replace("-v5", "-v4")
    }


def plot(data: dict[str, Any], env: str, out: Path, published: Path | None = None) -> None:
    """Every preset of ``data[env]`` but the diagnostic runs: mean over seeds of the evaluations
    at common steps, and each seed thin; dashed, the authors' published means (``published``)
    where they have more than one point in the range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    presets = {agent: seeds for agent, seeds in data[env].items() if agent not in DIAGNOSTIC}
    for i, (agent, seeds) in enumerate(presets.items()):
        color = f"C{i}"
        curves = [dict(map(tuple, s["curve"])) for s in seeds.values()]
        for curve in curves:
            ax.plot(list(curve), list(curve.values()), color=color, alpha=0.25, lw=0.8)
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        means = [statistics.mean(c[s] for c in curves) for s in steps]
        ax.plot(steps, means, color=color, lw=2, label=f"{agent} ({len(curves)} seeds)")
    if published is not None:
        last = max(step for seeds in presets.values() for s in seeds.values() for step, _ in s["curve"])
        shown = {m: pts for m, pts in published_curves(published, env, last).items() if len(pts) > 1}
        for j, (method, points) in enumerate(shown.items()):
            seeds = min(n for _, _, n in points)
            label = f"{method}, published ({env.replace('-v5', '-v4')}, {seeds} seeds)"
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax.plot(xs, ys, color="k", ls=["--", ":", "-."][j % 3], lw=1.2, label=label)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return (10 deterministic episodes)")
    ax.set_title(f"{env}, 2-core CPU: mean over seeds (thick), each seed (thin)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", nargs="+", type=Path, required=True, help="scripts/bench.py dirs")
    p.add_argument("--json", type=Path, default=Path("docs/results/family_cpu.json"))
    p.add_argument("--png", default="docs/results/{env}-family-cpu.png", help="{env} is the env id")
    p.add_argument("--settings", nargs="*", default=[], metavar="AGENT=TEXT")
    p.add_argument("--published", type=Path, default=Path("docs/results/family2026/published_early.csv"))
    args = p.parse_args()
    data = json.loads(args.json.read_text()) if args.json.exists() else {}
    data = collect(args.bench, data)
    for item in args.settings:
        agent, text = item.split("=", 1)
        data.setdefault("settings", {})[agent] = text
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    for env in data:
        if env != "settings":
            plot(data, env, Path(args.png.format(env=env)), args.published)
            print(f"wrote {args.png.format(env=env)}")


if __name__ == "__main__":
    main()
