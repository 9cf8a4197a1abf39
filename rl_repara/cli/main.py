"""Hydra command line: ``rl-repara-train`` and ``rl-repara-eval``.

Hydra lives only here and in ``conf/``; the library underneath is ``train(TrainConfig(...))``.

* ``conf/config.yaml`` (defaults ``env: pendulum``, ``agent: sac``) is checked against the
  ``TrainConfig`` dataclasses, stored below as ``train_schema``: a misspelled key or a wrong
  type fails with the key named; ``TrainConfig.validate`` checks the values.
* An env preset sets env-level keys only; agent values tuned for an (agent, env) pair come from
  ``conf/tuned/<agent>_<env>.yaml`` when it exists, and a fresh run names the ones it applied
  in one line. The command line wins over all of them.
* The run dir is Hydra's output dir: ``runs/<env id>/<time>`` for one run and
  ``runs/<env id>/multirun-<time>/<job>_seed<seed>`` for each job of ``-m`` sweeps.
* ``resume=RUN_DIR`` continues that run in place: Hydra's output dir *is* ``RUN_DIR`` (no new
  dir is made) and Hydra writes nothing there, so the run's ``.hydra/`` still describes it.
  The saved config is used; ``total_steps=N`` extends the run.
* A run dir that already holds a checkpoint (a requeued SLURM job) resumes itself.
* A user mistake prints one line on stderr and exits with 2 (1 for a diverged run or a broken
  env); ``HYDRA_FULL_ERROR=1`` shows the full traceback instead. A run stopped by SIGINT or
  SIGTERM checkpoints, prints how to resume, and exits non-zero (128 + the signal number
  when ``TrainResult`` carries a ``signum``, else 1).
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import numpy as np
from omegaconf import DictConfig

from rl_repara.cli.errors import JobFailed, in_sweep_worker, job_error, run_cli
from rl_repara.cli.presets import override_keys, say_what_the_presets_set
from rl_repara.cli.schemas import EvalCliConfig, config_dir, to_object
from rl_repara.data.envs import make_env
from rl_repara.deploy.loading import load_policy
from rl_repara.device import resolve_device
from rl_repara.errors import CheckpointError, ConfigError, RLReparaError
from rl_repara.training.checkpoint import RunDirLock, find_checkpoint, load_latest
from rl_repara.training.config import TrainConfig
from rl_repara.training.evaluation import eval_seed, run_episode
from rl_repara.training.prepare import prepare
from rl_repara.training.resume import RESUMABLE_KEYS, ResumePoint, get_key, resume_point, run_dir_of
from rl_repara.training.train import run
from rl_repara.training.trainer import TrainResult

__all__ = ["train_main", "eval_main"]


# --------------------------------------------------------------------------------- training
def _resume_point(config: TrainConfig, resume_dir: Path, hc: Any, auto: bool) -> Optional[ResumePoint]:
    """Where ``resume_dir`` continues, with the resumable keys the user set (the library's
    ``resume_point`` decides the rest); None when the run is already complete."""
    user_keys = override_keys(hc)
    overrides = {k: get_key(config, k) for k in RESUMABLE_KEYS if k in user_keys}
    ignored = sorted(user_keys - set(RESUMABLE_KEYS) - {"resume"})
    if ignored and not auto:
        print(
            f"[rl_repara] resuming uses the saved config; ignoring: {', '.join(ignored)}",
            file=sys.stderr,
            flush=True,
        )
    point = resume_point(resume_dir, overrides)
    step, total = point.step, point.config.total_steps
    if step >= total:
        print(
            f"[rl_repara] {resume_dir} is already at step {step} of total_steps={total}; "
            "pass total_steps=N to train it longer.",
            flush=True,
        )
        return None
    how = "found a checkpoint in the run dir; resuming" if auto else "resuming"
    print(f"[rl_repara] {how} {resume_dir} at step {step}, training to step {total}.", flush=True)
    return point


def _remove_unused_run_dir(run_dir: Path) -> None:
    """A fresh run that failed before training leaves only Hydra's files: remove the dir
    (and its parent, ``runs/<env id>``, when that is left empty), unless another trainer
    holds it (it has not written its first files yet)."""
    cwd = Path.cwd().resolve()
    if run_dir.resolve() in (cwd, *cwd.parents) or not run_dir.is_dir():
        return
    try:
        with RunDirLock(run_dir):
            if {p.name for p in run_dir.iterdir()} <= {".hydra", ".lock"}:
                shutil.rmtree(run_dir)
                run_dir.parent.rmdir()  # each only succeeds when empty
                run_dir.parent.parent.rmdir()
    except (OSError, ConfigError):  # ConfigError: the run dir is in use
        pass


def _train(cfg: DictConfig, hc: Any) -> Optional[float]:
    config: TrainConfig = to_object(cfg, TrainConfig)
    if "run_dir" in override_keys(hc):
        raise ConfigError("the run dir is Hydra's output dir: choose it with hydra.run.dir=DIR.")
    run_dir = Path(hc.runtime.output_dir)
    config.run_dir = str(run_dir)
    _check_search(config, hc)
    if in_sweep_worker() and config.torch_threads == 0 and "SLURM_JOB_ID" not in os.environ:
        config.torch_threads = 1  # parallel local jobs: one thread each is fastest
    resume_dir = Path(config.resume) if config.resume else None
    auto = resume_dir is None and (run_dir / "checkpoints").is_dir()
    if auto:
        try:
            find_checkpoint(run_dir)
            resume_dir = run_dir
        except CheckpointError:
            auto = False
    point = None
    if resume_dir is not None:
        _check_not_in_use(resume_dir)
        point = _resume_point(config, resume_dir, hc, auto)
        if point is None:
            return None
    prepared = prepare(config if point is None else point)  # the checks; the state read once
    del point  # the prepared run holds the state now, until the trainer takes it
    if prepared.config.video:
        from rl_repara.training.video import check_writer, prepare_headless

        check_writer()
        prepare_headless()
    if resume_dir is None:
        _check_not_in_use(run_dir)
        say_what_the_presets_set(prepared.config, hc)
    return _finish(run(prepared), prepared.config, hc)


def _check_not_in_use(run_dir: Path) -> None:
    """A second trainer on a run dir fails here with the lock's own error, before it prints
    anything (``train`` takes the lock again, for the run's lifetime)."""
    with RunDirLock(run_dir):
        pass


def _check_search(config: TrainConfig, hc: Any) -> None:
    """An Optuna study needs -m, maximization and an eval return to maximize."""
    from hydra.types import RunMode

    search = hc.runtime.choices.get("search")
    if search and hc.mode != RunMode.MULTIRUN:
        raise ConfigError(
            f"search={search} sets up an Optuna study: run it with -m (rl-repara-train -m ...)."
        )
    if hc.runtime.choices.get("hydra/sweeper") != "optuna":
        return
    if "maximize" not in str(hc.sweeper.get("direction", "")).lower():
        raise ConfigError(
            "the Optuna sweeper minimizes unless told otherwise, and each job returns its eval "
            "return: add hydra.sweeper.direction=maximize, or use a shipped search=sac."
        )
    if config.eval.every_steps <= 0:
        raise ConfigError(
            "an Optuna search maximizes the final eval return, and eval.every_steps=0 turns "
            "evaluation off: set eval.every_steps to a positive number of steps."
        )


def _finish(result: TrainResult, effective: TrainConfig, hc: Any) -> Optional[float]:
    from hydra.types import RunMode

    if result.interrupted:
        if hc.mode == RunMode.MULTIRUN and in_sweep_worker():
            raise JobFailed(f"job {hc.job.num} was stopped; resume with resume={result.run_dir}")
        signum = getattr(result, "signum", None)  # 128 + signal, the shell's convention
        raise SystemExit(128 + signum if signum else 1)
    if effective.video:
        from rl_repara.training.video import record_episode

        path = result.run_dir / "videos" / f"step{result.global_step}.mp4"
        ret = record_episode(
            load_policy(result.run_dir),
            effective.env.id,
            path,
            effective.env.kwargs,
            seed=eval_seed(effective.seed),
        )
        print(f"[rl_repara] video of one deterministic episode (return {ret:.2f}): {path}")
    last = (
        "none (eval.every_steps=0)"
        if result.last_eval_return is None
        else (f"{result.last_eval_return:.2f} (best {result.best_eval_return:.2f})")
    )
    print(
        f"[rl_repara] done: run dir {result.run_dir} | step {result.global_step} | last eval return {last}",
        flush=True,
    )
    return result.last_eval_return


def _train_job(cfg: DictConfig) -> Optional[float]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    try:
        return _train(cfg, hc)
    except RLReparaError as exc:
        if isinstance(exc, ConfigError):
            _remove_unused_run_dir(Path(hc.runtime.output_dir))
        job_error("rl-repara-train", exc, hc)


# ------------------------------------------------------------------------------- evaluation
def _evaluate(cfg: DictConfig) -> tuple[float, float]:
    args: EvalCliConfig = to_object(cfg, EvalCliConfig)
    if not args.checkpoint:
        raise ConfigError("give the policy to evaluate: checkpoint=RUN_DIR or checkpoint=FILE.")
    if args.episodes < 1:
        raise ConfigError(f"episodes must be >= 1; got {args.episodes}.")
    if args.video:
        from rl_repara.training.video import check_writer, prepare_headless

        check_writer()
        prepare_headless()
    device = resolve_device(args.device)
    file, saved = load_latest(args.checkpoint, mmap=True)
    if "config" not in saved or "counters" not in saved:
        raise CheckpointError(f"{file} is missing its config or counters.")
    train_cfg = TrainConfig.from_dict(saved["config"])
    policy = load_policy(file, device=device)
    env = make_env(train_cfg.env.id, train_cfg.env.kwargs)
    seed = eval_seed(train_cfg.seed) if args.seed is None else args.seed
    returns = [run_episode(policy, env, seed + k) for k in range(args.episodes)]
    env.close()
    mean, std = float(np.mean(returns)), float(np.std(returns))
    step = saved["counters"].get("global_step", "?")
    print(
        f"{train_cfg.env.id}: mean return {mean:.2f} +- {std:.2f} over {args.episodes} "
        f"deterministic episodes (checkpoint {file}, step {step})",
        flush=True,
    )
    if args.video:
        from rl_repara.training.video import record_episode

        path = Path(args.video_path) if args.video_path else _video_path(file, step)
        ret = record_episode(policy, train_cfg.env.id, path, train_cfg.env.kwargs, seed=seed)
        print(f"video (return {ret:.2f}): {path}", flush=True)
    return mean, std


def _video_path(file: Path, step: Any) -> Path:
    run_dir = run_dir_of(file)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return run_dir / "videos" / f"{file.stem}-step{step}-{stamp}.mp4"


def _eval_job(cfg: DictConfig) -> Optional[tuple[float, float]]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    try:
        return _evaluate(cfg)
    except RLReparaError as exc:
        job_error("rl-repara-eval", exc, hc)


# ------------------------------------------------------------------------------ entry points
def train_main() -> None:
    """``rl-repara-train [KEY=VALUE ...]``: SAC on Pendulum-v1 unless told otherwise."""
    import hydra

    main = hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
    run_cli("rl-repara-train", TrainConfig, main(_train_job))


def eval_main() -> None:
    """``rl-repara-eval checkpoint=PATH [episodes=N] [video=true] [device=...]``."""
    import hydra

    main = hydra.main(config_path=config_dir(), config_name="eval", version_base="1.3")
    run_cli("rl-repara-eval", EvalCliConfig, main(_eval_job))
