"""Hydra command line: ``rl-repara-train`` and ``rl-repara-eval``.

Hydra lives only here and in ``conf/``; the library underneath is ``train(TrainConfig(...))``.

* ``conf/config.yaml`` (defaults ``env: pendulum``, ``agent: sac``) is checked against the
  ``TrainConfig`` dataclasses, stored below as ``train_schema``: a misspelled key or a wrong
  type fails with the key named; ``TrainConfig.validate`` checks the values.
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

import difflib
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError,
)

from .checkpoint import FORMAT, CheckpointError, find_checkpoint, load_checkpoint
from .config import TrainConfig
from .envs import EnvError, make_env
from .evaluation import run_episode
from .loading import load_policy
from .sac import check_cudagraphs
from .spaces import ConfigError
from .trainer import TrainingDiverged, TrainResult, resolve_device, train

__all__ = ["train_main", "eval_main", "config_dir", "register_configs", "EvalCliConfig"]

_USER_ERRORS = (ConfigError, EnvError, TrainingDiverged)
_RESUME_KEYS = {"resume", "total_steps", "log.progress", "video"}  # what a resume may change
_FULL_ERROR = "_RL_REPARA_FULL_ERROR"  # the user's HYDRA_FULL_ERROR, seen by sweep workers too
_MAIN_PID = "_RL_REPARA_MAIN_PID"  # the process that parsed the command line
_SCHEMA: type = TrainConfig  # the dataclass the running command's config follows


class JobFailed(Exception):
    """One job of a sweep failed; its message was printed. Hydra collects it like any error."""


@dataclass
class EvalCliConfig:
    """``rl-repara-eval``: deterministic episodes of a saved policy."""

    checkpoint: Optional[str] = None  # a run dir, or a checkpoint file (last.pt, best.pt)
    episodes: int = 10
    seed: Optional[int] = None  # None: the seeds of the trainer's evaluations (train seed + 1e6)
    device: str = "cpu"  # auto | cpu | cuda | cuda:N
    video: bool = False  # also write one episode (the first seed) to an mp4
    video_path: Optional[str] = None  # None: <run dir>/videos/<checkpoint>-step<N>-<time>.mp4


# ---------------------------------------------------------------------------------- configs
def config_dir() -> str:
    """``conf/``: inside the installed package (a wheel), or beside it (a source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    return "pkg://rl_repara.conf"


def _run_dir(resume: Optional[str], default: str) -> str:
    """``hydra.run.dir`` (and a sweep job's subdir): the run to resume, else ``default``."""
    if not resume:
        return default
    path = Path(resume).expanduser()
    if path.is_file():
        raise ConfigError(
            f"resume= takes a run dir (the one holding checkpoints/), not the file {path}."
        )
    find_checkpoint(path)  # a clear error before Hydra makes any dir
    return str(path.absolute())


def _output_subdir(resume: Optional[str]) -> Optional[str]:
    """``hydra.output_subdir``: none when resuming, so the run's own ``.hydra/`` stays as the
    record of the config it was trained with."""
    return None if resume else ".hydra"


def register_configs() -> None:
    """The schemas (``train_schema``, ``eval_schema``) and the resolvers ``conf/`` uses."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalCliConfig)
    OmegaConf.register_new_resolver("rl_repara.run_dir", _run_dir, replace=True)
    OmegaConf.register_new_resolver("rl_repara.output_subdir", _output_subdir, replace=True)


register_configs()  # at import: sweep workers unpickle the task and need these too


def _to_object(cfg: DictConfig, cls: type) -> Any:
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message(exc)) from None
    if not isinstance(obj, cls):  # a config composed without the schema
        raise ConfigError(f"the config does not follow the {cls.__name__} schema.")
    return obj


# ------------------------------------------------------------------------------ the errors
def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _schema_keys(schema: type) -> list[str]:
    def walk(node: Any, prefix: str) -> list[str]:
        keys = []
        for k in node:
            full = f"{prefix}{k}"
            keys.append(full)
            if OmegaConf.is_dict(node[k]) and k != "kwargs":
                keys += walk(node[k], full + ".")
        return keys

    return walk(OmegaConf.structured(schema), "")


# names other libraries use (SB3, CleanRL) for our keys
_ALIASES = {
    "learning_rate": "lr", "net_arch": "hidden_sizes", "hidden_dims": "hidden_sizes",
    "total_timesteps": "total_steps", "n_envs": "num_envs", "ent_coef": "init_alpha",
    "gradient_steps": "utd", "policy_frequency": "policy_delay",
}


def _omegaconf_message(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and " not in " in first and key:
        known = _schema_keys(_SCHEMA)
        parent, _, leaf = key.rpartition(".")
        alias = f"{parent}.{_ALIASES[leaf]}" if parent and leaf in _ALIASES else _ALIASES.get(leaf)
        close = [alias] if alias in known else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        return f"unknown config key '{key}'.{hint} List the keys with --cfg job."
    if isinstance(exc, ValidationError) and key:
        return f"bad value for {key}: {first}"
    return first


def _describe(exc: BaseException) -> Optional[str]:
    """One line for a user mistake anywhere in the chain; None for a bug."""
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, _USER_ERRORS):
            return str(e)
    for e in chain:
        if isinstance(e, OmegaConfBaseException):
            return _omegaconf_message(e)
    from hydra.errors import HydraException

    for e in chain:
        if isinstance(e, ValueError) and str(e).startswith("Only one of --run"):
            return f"{e} (print a sweep's config without -m: --cfg job)"  # Hydra's flag check
        if isinstance(e, HydraException):
            text = str(e).split("Config search path")[0]  # Hydra's internals: not for users
            return " ".join(text.split())
    return None


def _print_error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def _run_cli(prog: str, schema: type, hydra_main: Callable[[], Any]) -> None:
    """Run a Hydra main; Hydra re-raises its errors (HYDRA_FULL_ERROR) and we print them as
    one line, unless the user asked for the full trace."""
    global _SCHEMA
    _SCHEMA = schema
    os.environ[_MAIN_PID] = str(os.getpid())  # inherited by sweep workers
    full = os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")
    os.environ[_FULL_ERROR] = "1" if full else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except BrokenPipeError:  # output piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C: the trainer stops without a checkpoint
        if full:
            raise
        _print_error(prog, "interrupted")
        sys.exit(130)
    except JobFailed as exc:
        if full:
            raise
        _print_error(prog, f"a sweep job failed: {exc}")
        sys.exit(1)
    except Exception as exc:
        message = _describe(exc)
        if full or message is None:
            raise
        _print_error(prog, message)
        sys.exit(2)


def _job_error(prog: str, exc: Exception, hc: Any) -> NoReturn:
    """In a job: one line and exit (one run), or one line and ``JobFailed`` (a sweep job,
    so the other jobs go on and Hydra reports the failure)."""
    from hydra.types import RunMode

    if os.environ.get(_FULL_ERROR) == "1":
        raise exc
    if hc.mode == RunMode.MULTIRUN:
        message = f"job {hc.job.num} ({hc.runtime.output_dir}): {exc}"
        _print_error(prog, message)
        raise JobFailed(message) from None
    _print_error(prog, str(exc))
    raise SystemExit(2 if isinstance(exc, ConfigError) else 1)


# --------------------------------------------------------------------------------- training
def _override_keys(hc: Any) -> set[str]:
    """The config keys the user set on the command line (``+key``/``++key`` included)."""
    keys = set()
    for o in hc.overrides.task:
        key = o.split("=", 1)[0].lstrip("+~")
        keys.add(key)
    return keys


def _saved_state(path: str | Path) -> dict[str, Any]:
    """Config and counters of the checkpoint in ``path``, without reading its tensors
    (memory-mapped); the library's loader reports anything unreadable."""
    file = find_checkpoint(path)
    try:
        state = torch.load(file, map_location="cpu", mmap=True, weights_only=False)
    except Exception:
        state = None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        state = load_checkpoint(file)  # raises CheckpointError naming the problem
    if "config" not in state or "counters" not in state:
        raise CheckpointError(f"{file} is missing its config or counters.")
    return {"file": file, "config": state["config"], "counters": state["counters"],
            "resumable": "buffer" in state}


def _resume_config(
    config: TrainConfig, resume_dir: Path, hc: Any, auto: bool
) -> tuple[Optional[TrainConfig], TrainConfig]:
    """The ``TrainConfig`` that resumes ``resume_dir`` (None when it is already complete) and
    the saved run's config."""
    saved = _saved_state(resume_dir)
    if not saved["resumable"]:
        raise CheckpointError(
            f"{saved['file']} holds only a policy; resuming needs checkpoints/last.pt."
        )
    step = saved["counters"]["global_step"]
    user_keys = _override_keys(hc)
    total = config.total_steps if "total_steps" in user_keys else saved["config"]["total_steps"]
    ignored = sorted(user_keys - _RESUME_KEYS)
    if ignored and not auto:
        print(f"[rl_repara] resuming uses the saved config; ignoring: {', '.join(ignored)}",
              file=sys.stderr, flush=True)
    saved_cfg = TrainConfig.from_dict(saved["config"])
    saved_cfg.video = config.video if "video" in user_keys else saved_cfg.video
    if step >= total:
        print(f"[rl_repara] {resume_dir} is already at step {step} of total_steps={total}; "
              "pass total_steps=N to train it longer.", flush=True)
        return None, saved_cfg
    how = "found a checkpoint in the run dir; resuming" if auto else "resuming"
    print(f"[rl_repara] {how} {resume_dir} at step {step}, training to step {total}.", flush=True)
    return TrainConfig(resume=str(resume_dir), total_steps=total, log=config.log), saved_cfg


def _in_sweep_worker() -> bool:
    """True in a job that a launcher started in another process (joblib, submitit)."""
    return os.environ.get(_MAIN_PID, str(os.getpid())) != str(os.getpid())


def _remove_unused_run_dir(run_dir: Path) -> None:
    """A fresh run that failed before training leaves only Hydra's files: remove the dir
    (and its parent, ``runs/<env id>``, when that is left empty)."""
    cwd = Path.cwd().resolve()
    if run_dir.resolve() in (cwd, *cwd.parents):
        return
    try:
        if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", ".lock"}:
            shutil.rmtree(run_dir)
            run_dir.parent.rmdir()  # each only succeeds when empty
            run_dir.parent.parent.rmdir()
    except OSError:
        pass


def _train(cfg: DictConfig, hc: Any) -> Optional[float]:
    config: TrainConfig = _to_object(cfg, TrainConfig)
    if "run_dir" in _override_keys(hc):
        raise ConfigError("the run dir is Hydra's output dir: choose it with hydra.run.dir=DIR.")
    run_dir = Path(hc.runtime.output_dir)
    config.run_dir = str(run_dir)
    if _in_sweep_worker() and config.torch_threads == 0 and "SLURM_JOB_ID" not in os.environ:
        config.torch_threads = 1  # parallel local jobs: one thread each is fastest
    effective = config
    resume_dir = Path(config.resume) if config.resume else None
    auto = resume_dir is None and (run_dir / "checkpoints").is_dir()
    if auto:
        try:
            find_checkpoint(run_dir)
            resume_dir = run_dir
        except CheckpointError:
            auto = False
    if resume_dir is not None:
        config, effective = _resume_config(config, resume_dir, hc, auto)
        if config is None:
            return None
    check_cudagraphs(effective.agent, resolve_device(effective.device))
    if resume_dir is None:
        _note_inherited_preset(config, hc)
    if effective.video:
        from .video import check_writer, prepare_headless

        check_writer()
        prepare_headless()
    return _finish(train(config), effective, hc)


def _note_inherited_preset(config: TrainConfig, hc: Any) -> None:
    """``env.id=X`` without ``env=NAME`` keeps the default preset's other values; say so."""
    keys = _override_keys(hc)
    preset = hc.runtime.choices.get("env")
    if "env.id" in keys and "env" not in keys and preset:
        print(f"[rl_repara] note: env.id={config.env.id} runs with the '{preset}' preset's other "
              f"values (agent.lr={config.agent.lr:g}, agent.learning_starts="
              f"{config.agent.learning_starts}, eval.every_steps={config.eval.every_steps}) "
              "unless set here; env=NAME picks a closer preset (conf/env/).", flush=True)


def _finish(result: TrainResult, effective: TrainConfig, hc: Any) -> Optional[float]:
    from hydra.types import RunMode

    if result.interrupted:
        if hc.mode == RunMode.MULTIRUN and _in_sweep_worker():
            raise JobFailed(f"job {hc.job.num} was stopped; resume with resume={result.run_dir}")
        signum = getattr(result, "signum", None)  # 128 + signal, the shell's convention
        raise SystemExit(128 + signum if signum else 1)
    if effective.video:
        from .video import record_episode

        path = result.run_dir / "videos" / f"step{result.global_step}.mp4"
        ret = record_episode(load_policy(result.run_dir), effective.env.id, path,
                             effective.env.kwargs, seed=effective.seed + 1_000_000)
        print(f"[rl_repara] video of one deterministic episode (return {ret:.2f}): {path}")
    last = "none (eval.every_steps=0)" if result.last_eval_return is None else (
        f"{result.last_eval_return:.2f} (best {result.best_eval_return:.2f})")
    print(f"[rl_repara] done: run dir {result.run_dir} | step {result.global_step} | "
          f"last eval return {last}", flush=True)
    return result.last_eval_return


def _train_job(cfg: DictConfig) -> Optional[float]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    try:
        return _train(cfg, hc)
    except _USER_ERRORS as exc:
        if isinstance(exc, ConfigError):
            _remove_unused_run_dir(Path(hc.runtime.output_dir))
        _job_error("rl-repara-train", exc, hc)


# ------------------------------------------------------------------------------- evaluation
def _evaluate(cfg: DictConfig) -> tuple[float, float]:
    args: EvalCliConfig = _to_object(cfg, EvalCliConfig)
    if not args.checkpoint:
        raise ConfigError("give the policy to evaluate: checkpoint=RUN_DIR or checkpoint=FILE.")
    if args.episodes < 1:
        raise ConfigError(f"episodes must be >= 1; got {args.episodes}.")
    if args.video:
        from .video import check_writer, prepare_headless

        check_writer()
        prepare_headless()
    device = resolve_device(args.device)
    saved = _saved_state(args.checkpoint)
    train_cfg = TrainConfig.from_dict(saved["config"])
    policy = load_policy(saved["file"], device=device)
    env = make_env(train_cfg.env.id, train_cfg.env.kwargs)
    seed = train_cfg.seed + 1_000_000 if args.seed is None else args.seed
    returns = [run_episode(policy, env, seed + k) for k in range(args.episodes)]
    env.close()
    mean, std = float(np.mean(returns)), float(np.std(returns))
    step = saved["counters"].get("global_step", "?")
    print(f"{train_cfg.env.id}: mean return {mean:.2f} +- {std:.2f} over {args.episodes} "
          f"deterministic episodes (checkpoint {saved['file']}, step {step})", flush=True)
    if args.video:
        from .video import record_episode

        path = Path(args.video_path) if args.video_path else _video_path(saved["file"], step)
        ret = record_episode(policy, train_cfg.env.id, path, train_cfg.env.kwargs, seed=seed)
        print(f"video (return {ret:.2f}): {path}", flush=True)
    return mean, std


def _video_path(file: Path, step: Any) -> Path:
    run_dir = file.parent.parent if file.parent.name == "checkpoints" else file.parent
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return run_dir / "videos" / f"{file.stem}-step{step}-{stamp}.mp4"


def _eval_job(cfg: DictConfig) -> Optional[tuple[float, float]]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    try:
        return _evaluate(cfg)
    except _USER_ERRORS as exc:
        _job_error("rl-repara-eval", exc, hc)


# ------------------------------------------------------------------------------ entry points
def train_main() -> None:
    """``rl-repara-train [KEY=VALUE ...]``: SAC on Pendulum-v1 unless told otherwise."""
    import hydra

    main = hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
    _run_cli("rl-repara-train", TrainConfig, main(_train_job))


def eval_main() -> None:
    """``rl-repara-eval checkpoint=PATH [episodes=N] [video=true] [device=...]``."""
    import hydra

    main = hydra.main(config_path=config_dir(), config_name="eval", version_base="1.3")
    _run_cli("rl-repara-eval", EvalCliConfig, main(_eval_job))
