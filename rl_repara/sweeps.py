"""The best trial of an Optuna sweep (``rl-repara-train -m search=...``), as the overrides that
train it again:

    rl-repara-train $(python -m rl_repara.sweeps runs/Pendulum-v1/multirun-2026-01-01_12-00-00)

Hydra's Optuna sweeper writes ``optimization_results.yaml`` (``best_params``, ``best_value``)
into the sweep dir, and each job's command-line overrides into ``<job>/.hydra/overrides.yaml``.
The best job is the one whose overrides hold every best parameter; its overrides, without
``search=...`` (which only shapes a sweep), are the command line of a single run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["best_trial"]


def _as_override_value(value: Any) -> str:
    """``value`` as Hydra's Optuna sweeper wrote it on the job's command line."""
    return str(value).replace(" ", "")


def best_trial(sweep_dir: str | Path) -> tuple[Path, float, list[str]]:
    """``(job dir, best value, overrides)`` of the best trial of the study in ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    results_file = sweep_dir / "optimization_results.yaml"
    if not results_file.is_file():
        raise ConfigError(
            f"{results_file} does not exist: give the dir of a finished Optuna sweep "
            "(rl-repara-train -m search=...)."
        )
    results = yaml.safe_load(results_file.read_text())
    wanted = {f"{k}={_as_override_value(v)}" for k, v in results["best_params"].items()}
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        overrides = yaml.safe_load(overrides_file.read_text())
        if wanted <= {o.replace(" ", "") for o in overrides}:
            kept = [o for o in overrides if not o.lstrip("+~").startswith("search=")]
            return overrides_file.parent.parent, float(results["best_value"]), kept
    raise ConfigError(f"no job dir in {sweep_dir} holds the best parameters {sorted(wanted)}.")


def main(argv: list[str] | None = None) -> int:
    """Print the best trial's overrides on stdout, one word each (no spaces, no quotes: the
    shell splits ``$(...)`` on spaces and does not remove quotes); its job dir and value go to
    stderr."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rl_repara.sweeps SWEEP_DIR", file=sys.stderr)
        return 2
    try:
        job_dir, value, overrides = best_trial(args[0])
    except ConfigError as exc:
        print(f"rl_repara.sweeps: error: {exc}", file=sys.stderr)
        return 2
    print(f"best trial: {job_dir} (objective {value:.2f})", file=sys.stderr)
    print(" ".join(o.replace(" ", "") for o in overrides))  # words for the shell's $(...)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
