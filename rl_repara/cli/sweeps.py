"""The best trial of an Optuna sweep (``rl-repara-train -m search=...``), as the overrides that
train it again:

    rl-repara-train $(python -m rl_repara.cli.sweeps runs/Pendulum-v1/multirun-2026-01-01_12-00-00)

Hydra's Optuna sweeper writes ``optimization_results.yaml`` (``best_params``, ``best_value``)
into the sweep dir, and each job's command-line overrides into ``<job>/.hydra/overrides.yaml``.
The best job is the one whose overrides hold every best parameter; its overrides, without
``search=...`` (which only shapes a sweep), are the command line of a single run.

``CliCallback`` is the Hydra callback of ``rl-repara-train`` (``hydra.callbacks`` in
``conf/config.yaml``): when a study ends it says which trial won and how to train it again; in
a sweep's parallel jobs it prefixes each line with its job (``[job 3 seed=2]``); and it names
the command line's keys to TensorBoard's HParams table (``logger.HPARAMS_FIRST_ENV``).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rl_repara.cli.errors import in_sweep_worker
from rl_repara.cli.schemas import command_line_keys
from rl_repara.console import prefix_output, restore_output, warnings_as_notes
from rl_repara.errors import ConfigError
from rl_repara.training.logger import HPARAMS_FIRST_ENV

__all__ = ["best_trial", "best_trial_lines", "job_label", "CliCallback"]


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


def best_trial_lines(sweep_dir: str | Path, prog: str = "rl-repara-train") -> list[str]:
    """What a finished study says: the trial that won (its job number, its parameters, its
    final eval return, its run dir), and the command that trains it again."""
    sweep_dir = Path(sweep_dir)
    job_dir, value, overrides = best_trial(sweep_dir)
    params = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["best_params"]
    shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
    command = " ".join([prog, *(shlex.quote(o) for o in overrides)])
    return [
        f"[rl_repara] best trial: job {_job_num(job_dir)} ({shown}), final eval return {value:.2f}, "
        f"run dir {job_dir}",
        f"[rl_repara] train it again: {command}",
    ]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _job_num(job_dir: Path) -> str:
    """The job's number in the sweep (Hydra's ``hydra.job.num``), else its dir's name."""
    try:
        saved = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())
        return str(int(saved["hydra"]["job"]["num"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return job_dir.name


def job_label(config: DictConfig) -> str:
    """``[job 3 seed=2]``: the job number and seed that a sweep job's lines start with (its dir
    is ``3_seed2``)."""
    seed = OmegaConf.select(config, "seed")
    return f"[job {config.hydra.job.num}" + ("" if seed is None else f" seed={seed}") + "]"


def _command_line_keys(config: DictConfig) -> list[str]:
    """The config keys of the command line and the sweeper's search space (``agent.lr``)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    return [*command_line_keys(config.hydra.overrides.task), *(str(k) for k in params)]


class CliCallback(Callback):
    """Hydra's hooks for ``rl-repara-train`` (register it under ``hydra.callbacks``)."""

    def __init__(self) -> None:
        self.prefixed = False

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _name_keys_first(_command_line_keys(config))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _name_keys_first(_command_line_keys(config))  # inherited by the jobs' processes

    def on_job_start(self, config: DictConfig, *, task_function: Any, **kwargs: Any) -> None:
        """In a job that a launcher runs in another process (its lines may interleave with
        the other jobs'): each line starts with the job's label, and warnings are our lines."""
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN and in_sweep_worker():
            if not sys.stderr.isatty():
                os.environ.setdefault("NO_COLOR", "1")  # colorlog and friends: no codes in log files
            prefix_output(job_label(config))
            warnings_as_notes()
            self.prefixed = True

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.prefixed:
            restore_output()
            self.prefixed = False

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """An Optuna study: which trial won, and how to train it again."""
        if "optuna" not in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")):
            return
        try:
            lines = best_trial_lines(str(config.hydra.sweep.dir))
        except ConfigError as exc:
            lines = [f"[rl_repara] the study's best trial is not known: {exc}"]
        print("\n".join(lines), flush=True)


def _name_keys_first(keys: list[str]) -> None:
    """Ask TensorBoard's HParams table to show ``keys`` first (``logger.Logger.hparams``)."""
    known = [k for k in os.environ.get(HPARAMS_FIRST_ENV, "").split(",") if k]
    os.environ[HPARAMS_FIRST_ENV] = ",".join(dict.fromkeys([*known, *keys]))


def main(argv: list[str] | None = None) -> int:
    """Print the best trial's overrides on stdout, one word each (no spaces, no quotes: the
    shell splits ``$(...)`` on spaces and does not remove quotes); its job dir and value go to
    stderr."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rl_repara.cli.sweeps SWEEP_DIR", file=sys.stderr)
        return 2
    try:
        job_dir, value, overrides = best_trial(args[0])
    except ConfigError as exc:
        print(f"rl_repara.cli.sweeps: error: {exc}", file=sys.stderr)
        return 2
    print(f"best trial: {job_dir} (objective {value:.2f})", file=sys.stderr)
    print(" ".join(o.replace(" ", "") for o in overrides))  # words for the shell's $(...)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
