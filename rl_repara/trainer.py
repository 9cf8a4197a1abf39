"""The training loop: collect, update, evaluate, log, checkpoint. A plain function of a config.

``train(TrainConfig(...))`` needs no Hydra. One loop iteration steps every vector env once
(``num_envs`` env steps), stores the transitions that belong to an episode, and runs
``utd · num_envs`` SAC updates once ``learning_starts`` env steps are collected.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import tempfile
import time
import warnings
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .buffer import ReplayBuffer
from .checkpoint import CheckpointError, RunDirLock, load_latest, remove_stale_temp_files, save_atomic
from .config import TrainConfig
from .envs import EnvError, check_step, make_env, make_vec_env, restore_env, snapshot_env
from .evaluation import evaluate
from .logger import LOSS_TAGS, Logger, Progress
from .policies import TanhGaussianPolicy
from .sac import SAC, check_cudagraphs
from .spaces import ConfigError

__all__ = ["train", "TrainResult", "TrainingDiverged", "resolve_device"]


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN/inf. The last good checkpoint is left untouched."""


@dataclass
class TrainResult:
    """What ``train`` returns: where the run lives, how far it got, and its eval returns
    (``None`` when evaluation was off); ``interrupted`` is True after SIGINT/SIGTERM."""

    run_dir: Path
    global_step: int
    last_eval_return: Optional[float]
    best_eval_return: Optional[float]
    interrupted: bool
    signum: Optional[int] = None  # the signal that stopped the run, if any


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; a clear error for an unusable device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a valid device; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={name} was asked for, but this torch sees no CUDA GPU "
                f"(torch {torch.__version__}). Use device=cpu or device=auto."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: only {torch.cuda.device_count()} CUDA device(s) visible.")
    return device


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state(envs) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "action_space": envs.action_space.np_random.bit_generator.state,
    }


def _set_rng_state(state: dict[str, Any], envs) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    envs.action_space.np_random.bit_generator.state = state["action_space"]


def _preempt_signal() -> Optional[int]:
    """The signal a cluster job gets shortly before it is stopped: submitit (Hydra's SLURM
    launcher) asks SLURM for SIGUSR2, or for the one named by ``SUBMITIT_PREEMPT_SIGNAL``."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper()
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the iteration and exits.

    The preemption signal (SIGUSR2) is taken over only where a handler is already installed
    (submitit's, which requeues the job and exits): it too stops the loop with a checkpoint,
    and ``pass_on`` then calls that handler, so the requeued job resumes from this step
    rather than from the last periodic checkpoint."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._old: dict[int, Any] = {}
        self._preempt = _preempt_signal()

    def _handler(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM, self._preempt):
            if sig is None or (sig == self._preempt and not callable(signal.getsignal(sig))):
                continue
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def pass_on(self) -> None:
        """After the checkpoint: hand the preemption signal to the handler it was meant for."""
        old = self._old.get(self.signum) if self.signum == self._preempt else None
        if callable(old):
            old(self.signum, None)


def _crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in ``(before, after]``."""
    return every > 0 and after // every > before // every


class _Run:
    """The state of one training run (the loop below reads like CleanRL's single file)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, device: torch.device) -> None:
        self.cfg, self.run_dir, self.device = cfg, run_dir, device
        self.ckpt_dir = run_dir / "checkpoints"
        self.envs = make_vec_env(cfg.env.id, cfg.num_envs, cfg.env.kwargs)
        self.eval_env = make_env(cfg.env.id, cfg.env.kwargs) if cfg.eval.every_steps > 0 else None
        single_obs = self.envs.single_observation_space
        policy = TanhGaussianPolicy.from_spaces(
            single_obs, self.envs.single_action_space, hidden_sizes=cfg.agent.hidden_sizes,
            log_std_bounds=(cfg.agent.log_std_min, cfg.agent.log_std_max),
        )
        self.sac = SAC(policy, cfg.agent, device=device)
        self.buffer = ReplayBuffer(
            cfg.agent.buffer_size, policy.obs_dim, policy.act_dim, device=device, seed=cfg.seed
        )
        self.global_step, self.episodes = 0, 0
        self.obs_shape = (cfg.num_envs, policy.obs_dim)
        self.ep_return = np.zeros(cfg.num_envs)
        self.ep_length = np.zeros(cfg.num_envs, dtype=np.int64)
        self.prev_done = np.zeros(cfg.num_envs, dtype=bool)
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.last_eval: Optional[float] = None
        self.last_eval_step = -1
        self.saved_step = -1
        self.logger: Optional[Logger] = None
        self.best_eval: Optional[float] = None
        self.last_info: dict[str, torch.Tensor] = {}
        self.skipped_nonfinite = 0
        self.obs: np.ndarray = np.empty(0)

    # ------------------------------------------------------------------ start or resume
    def start_fresh(self) -> None:
        self.envs.action_space.seed(self.cfg.seed)
        self.obs = self._reset(seed=self.cfg.seed)

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "sac": self.sac.state_dict(),
            "buffer": self.buffer.state_dict(),
            "counters": {
                "global_step": self.global_step, "episodes": self.episodes,
                "last_eval": self.last_eval, "best_eval": self.best_eval,
                "skipped_nonfinite": self.skipped_nonfinite,
                "last_eval_step": self.last_eval_step,
            },
            "loop": {
                "obs": self.obs.copy(), "ep_return": self.ep_return.copy(),
                "ep_length": self.ep_length.copy(), "prev_done": self.prev_done.copy(),
                "recent_returns": list(self.recent_returns),
                "last_info": {k: v.detach().cpu() for k, v in self.last_info.items()},
            },
            "envs": [snapshot_env(e) for e in self.envs.envs],
            "rng": _rng_state(self.envs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sac.load_state_dict(state["sac"])
        self.buffer.load_state_dict(state["buffer"])
        c, loop = state["counters"], state["loop"]
        self.global_step, self.episodes = c["global_step"], c["episodes"]
        self.last_eval, self.best_eval = c["last_eval"], c["best_eval"]
        self.skipped_nonfinite = c["skipped_nonfinite"]
        self.last_eval_step = c.get("last_eval_step", -1)
        self.recent_returns.extend(loop["recent_returns"])
        self.last_info = {k: v.to(self.device) for k, v in loop["last_info"].items()}
        self._reset(seed=self.cfg.seed)
        snaps = state["envs"]
        if all(s is not None for s in snaps):
            self.envs.envs = [restore_env(e, s) for e, s in zip(self.envs.envs, snaps)]
            self.obs, self.ep_return = loop["obs"], loop["ep_return"]
            self.ep_length, self.prev_done = loop["ep_length"], loop["prev_done"]
            # the vector env's own record of which envs reset on the next step
            self.envs._autoreset_envs = np.asarray(self.prev_done, dtype=bool).copy()
        else:
            warnings.warn(
                f"{self.cfg.env.id} cannot be snapshotted mid-episode; the resumed run starts "
                "new episodes (the learner, buffer and RNGs are restored exactly).",
                stacklevel=2,
            )
            self.obs = self._reset(seed=self.cfg.seed + self.global_step)
        _set_rng_state(state["rng"], self.envs)

    # ------------------------------------------------------------------------- the loop
    def collect(self) -> None:
        """One vector step; stores every transition that lies inside an episode.

        Gymnasium's NEXT_STEP autoreset: the step after an env reports ``terminated`` or
        ``truncated`` ignores the action and returns the first obs of a new episode. That step
        pairs two episodes, so it is masked out (``prev_done``). Truncated transitions are
        stored with ``terminated = 0`` and their true final obs, so the target bootstraps.
        """
        cfg = self.cfg
        actions = self._actions()
        next_obs, reward, terminated, truncated = self._step(actions)
        keep = ~self.prev_done
        bad = check_step(cfg.env.id, self.global_step, next_obs, reward, self.obs_shape)
        if bad is not None:
            keep = self._handle_nonfinite(bad, keep, next_obs, reward)
        if keep.any():
            self.buffer.add(self.obs[keep], actions[keep], reward[keep], next_obs[keep], terminated[keep])
        done = terminated | truncated
        self._track_episodes(reward, done, keep)
        if bad is not None:
            next_obs, done = self._restart_nonfinite(next_obs, done)
        self.prev_done = done
        self.obs = next_obs
        self.global_step += cfg.num_envs

    def _actions(self) -> np.ndarray:
        """Uniform random actions until ``learning_starts``, then samples from the policy."""
        if self.global_step < self.cfg.agent.learning_starts:
            return self.envs.action_space.sample()
        with torch.inference_mode():
            obs_t = torch.as_tensor(self.obs, device=self.device)
            actions = self.sac.policy.distribution(obs_t).sample().cpu().numpy()
        if not np.isfinite(actions).all():
            raise TrainingDiverged(
                f"the policy produced non-finite actions at env step {self.global_step}. "
                f"Last good checkpoint: {_last_good(self)}. Try a lower agent.lr."
            )
        return actions

    def _step(self, actions: np.ndarray):
        with self._api_errors("step"):
            next_obs, reward, terminated, truncated, _ = self.envs.step(actions)
            return (next_obs, np.asarray(reward, dtype=np.float64),
                    np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool))

    def _reset(self, **kwargs) -> np.ndarray:
        with self._api_errors("reset"):
            return self.envs.reset(**kwargs)[0]

    @contextlib.contextmanager
    def _api_errors(self, call: str):
        """Errors raised inside ``envs.step``/``reset`` become an ``EnvError`` naming the env."""
        try:
            yield
        except (ValueError, TypeError, AssertionError, IndexError) as exc:
            raise EnvError(
                f"{self.cfg.env.id} broke the Gymnasium API in {call}() at env step "
                f"{self.global_step}: {type(exc).__name__}: {exc}. reset() must return (obs, "
                "info) and step() (obs, reward, terminated, truncated, info), with obs in the "
                "observation space."
            ) from exc

    def _handle_nonfinite(self, field: str, keep, next_obs, reward) -> np.ndarray:
        if self.cfg.on_nonfinite == "error":
            raise EnvError(
                f"{self.cfg.env.id} returned a non-finite {field} at env step {self.global_step}. "
                "Fix the env, or set on_nonfinite=skip to drop such transitions."
            )
        finite = np.isfinite(next_obs).all(axis=1) & np.isfinite(reward)
        self.skipped_nonfinite += int((keep & ~finite).sum())
        return keep & finite

    def _restart_nonfinite(self, next_obs: np.ndarray, done: np.ndarray):
        """(on_nonfinite=skip) An env whose obs went non-finite starts a new episode now, so
        the bad obs is never fed to the policy nor stored as the start of a transition."""
        bad_obs = ~np.isfinite(next_obs).all(axis=1)
        if not bad_obs.any():
            return next_obs, done
        reset_obs = self._reset(options={"reset_mask": bad_obs})
        self.ep_return[bad_obs], self.ep_length[bad_obs] = 0.0, 0
        return np.where(bad_obs[:, None], reset_obs, next_obs), done & ~bad_obs

    def _track_episodes(self, reward, done, keep) -> None:
        self.ep_return += np.where(keep, np.nan_to_num(reward), 0.0)
        self.ep_length += keep
        for i in np.flatnonzero(done):
            self.episodes += 1
            self.recent_returns.append(float(self.ep_return[i]))
            if self.logger is not None:
                self.logger.scalars({
                    "charts/episodic_return": self.ep_return[i],
                    "charts/episodic_length": self.ep_length[i],
                }, self.global_step + self.cfg.num_envs)
            self.ep_return[i], self.ep_length[i] = 0.0, 0

    def learn(self) -> None:
        if self.global_step < self.cfg.agent.learning_starts:
            return
        for _ in range(self.cfg.agent.utd * self.cfg.num_envs):
            self.last_info = self.sac.update_tensors(self.buffer.sample(self.cfg.agent.batch_size))


def _default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / cfg.env.id / f"seed{cfg.seed}-{stamp}"


def _resume_config(cfg: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """The saved run's config (with the new ``total_steps``) and its checkpoint.

    ``cfg.resume`` may name the run dir, its ``checkpoints`` dir or a checkpoint file; the run
    continues in the run dir that holds it.
    """
    path, state = load_latest(cfg.resume)
    if "buffer" not in state:
        raise CheckpointError(
            f"{path} holds only a policy (best.pt is written for evaluation); resume from the "
            "run dir or its checkpoints/last.pt."
        )
    saved = TrainConfig.from_dict(state["config"])
    saved.total_steps, saved.resume = cfg.total_steps, cfg.resume
    saved.device = cfg.device  # the machine may differ; torch_threads stays (it changes the float sums)
    saved.run_dir = str(path.parent.parent if path.parent.name == "checkpoints" else path.parent)
    saved.log.progress = cfg.log.progress
    return saved, state


def train(config: TrainConfig) -> TrainResult:
    """Train SAC as ``config`` says; resume in place when ``config.resume`` names a run dir.

    Checkpoints go to ``<run_dir>/checkpoints/last.pt`` every ``checkpoint.every_steps``, at
    the end, and on SIGINT/SIGTERM (after which this returns with ``interrupted=True``). In a
    submitit (SLURM) job the preemption signal also checkpoints first; then submitit's own
    handler requeues the job and exits.
    Raises ``ConfigError`` for user mistakes, ``EnvError`` for broken envs and
    ``TrainingDiverged`` for NaN losses.
    """
    state = None
    if config.resume:
        config, state = _resume_config(config)
    config.validate()
    device = resolve_device(config.device)
    check_cudagraphs(config.agent, device)  # before anything is created
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    run_dir = Path(config.run_dir) if config.run_dir else _default_run_dir(config)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create run dir {run_dir}: {exc}") from None
    with _StopFlag() as stop, RunDirLock(run_dir):
        remove_stale_temp_files(run_dir / "checkpoints")
        if state is None and (run_dir / "checkpoints" / "last.pt").exists():
            raise ConfigError(
                f"run dir {run_dir} already holds a checkpoint; continue it with "
                f"resume={run_dir}, or choose another run dir."
            )
        _seed_everything(config.seed)  # before any network is built
        run = _Run(config, run_dir, device)
        if state is not None:
            run.load_state_dict(state)
            del state
        else:
            run.start_fresh()
        result = _loop(run, stop)
    stop.pass_on()  # a scheduler's preemption signal: now submitit requeues the job and exits
    return result


def _loop(run: _Run, stop: _StopFlag) -> TrainResult:
    cfg = run.cfg
    resumed_at = run.global_step
    run.logger = Logger(run.run_dir / "tb", purge_step=resumed_at + 1 if resumed_at else None)
    if not resumed_at:
        run.logger.hparams(cfg.to_dict())
    progress = Progress(cfg.total_steps, run.global_step, cfg.log.progress)
    sps_time, sps_step = time.perf_counter(), run.global_step
    try:
        while run.global_step < cfg.total_steps and stop.signum is None and not _solved(run):
            before = run.global_step
            run.collect()
            run.learn()
            after = run.global_step
            if _crossed(before, after, cfg.log.every_steps):
                sps = (after - sps_step) / max(time.perf_counter() - sps_time, 1e-9)
                sps_time, sps_step = time.perf_counter(), after
                _log_losses(run, sps, progress)
            if run.eval_env is not None and _crossed(before, after, cfg.eval.every_steps):
                _evaluate(run, progress)
            progress.update(after, after - before, _bar_stats(run))
            if _crossed(before, after, cfg.checkpoint.every_steps):
                _save_periodic(run, progress)
        interrupted = stop.signum is not None
        if run.eval_env is not None and not interrupted and run.last_eval_step != run.global_step:
            # a final evaluation of the finished policy
            _evaluate(run, progress)
        _save_final(run)
    finally:
        progress.close()
        run.logger.close()
    if interrupted:
        print(f"[rl_repara] stopped by signal {stop.signum} at step {run.global_step}; "
              f"checkpoint saved. Resume with: rl-repara-train resume={run.run_dir}", flush=True)
    return TrainResult(
        run.run_dir, run.global_step, run.last_eval, run.best_eval, interrupted, stop.signum
    )


def _solved(run: _Run) -> bool:
    target = run.cfg.eval.stop_return
    return target is not None and run.last_eval is not None and run.last_eval >= target


def _bar_stats(run: _Run) -> dict[str, float]:
    stats = {}
    if run.recent_returns:
        stats["return"] = float(np.mean(run.recent_returns))
    if run.last_eval is not None:
        stats["eval"] = run.last_eval
    return stats


def _log_losses(run: _Run, sps: float, progress: Progress) -> None:
    values = {"charts/SPS": sps}
    if run.last_info:
        floats = {k: float(v) for k, v in run.last_info.items()}
        for key, value in floats.items():
            if not np.isfinite(value):
                raise TrainingDiverged(
                    f"non-finite {key} ({value}) at env step {run.global_step}. "
                    f"Last good checkpoint: {_last_good(run)}. Try a lower agent.lr, or "
                    "precision=fp32."
                )
        values.update({LOSS_TAGS[k]: v for k, v in floats.items() if k in LOSS_TAGS})
    run.logger.scalars(values, run.global_step)
    progress.line(run.global_step, {"SPS": sps, **_bar_stats(run)})


def _last_good(run: _Run) -> str:
    path = run.ckpt_dir / "last.pt"
    return str(path) if path.exists() else "none written yet"


def _evaluate(run: _Run, progress: Progress) -> None:
    mean, std = evaluate(run.sac.policy, run.eval_env, run.cfg.eval.episodes, seed=run.cfg.seed + 1_000_000)
    run.last_eval, run.last_eval_step = mean, run.global_step
    run.logger.scalars({"eval/mean_return": mean, "eval/std_return": std}, run.global_step)
    if run.best_eval is None or mean > run.best_eval:
        run.best_eval = mean
        try:
            save_atomic(_policy_only(run, mean), run.ckpt_dir / "best.pt", keep_previous=False)
        except CheckpointError as exc:
            _warn(progress, f"{exc}. Training continues.")
    progress.write(f"[rl_repara] step {run.global_step}: eval return {mean:.2f} ± {std:.2f}")


def _policy_only(run: _Run, eval_return: float) -> dict[str, Any]:
    return {
        "config": run.cfg.to_dict(),
        "sac": {"policy": run.sac.policy.state_dict()},
        "counters": {"global_step": run.global_step, "eval_return": eval_return},
    }


def _save(run: _Run, path: Optional[Path] = None) -> None:
    """Write ``last.pt`` unless the weights went non-finite (then the good one is kept)."""
    if path is None and run.saved_step == run.global_step:
        return  # this very state is on disk already
    if not run.sac.parameters_finite():
        raise TrainingDiverged(
            f"the weights are non-finite at env step {run.global_step}; not overwriting the "
            f"last good checkpoint ({_last_good(run)})."
        )
    save_atomic(run.state_dict(), path or run.ckpt_dir / "last.pt")
    if path is None:
        run.saved_step = run.global_step


def _save_periodic(run: _Run, progress: Progress) -> None:
    """A failed periodic write (disk full, ...) is reported and training goes on: the state
    is still in memory, and the next periodic or final save tries again."""
    try:
        _save(run)
    except CheckpointError as exc:
        _warn(progress, f"{exc}. Training continues; will retry.")


def _warn(progress: Progress, message: str) -> None:
    """A warning that reaches the user whatever the progress mode."""
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _save_final(run: _Run) -> None:
    """The last write of a run; if the run dir cannot take it, the state goes to a rescue file
    in the temp dir so nothing is lost, and the error names both paths."""
    try:
        _save(run)
    except CheckpointError as exc:
        rescue = Path(tempfile.gettempdir()) / f"rl_repara-rescue-{os.getpid()}.pt"
        try:
            _save(run, rescue)
        except CheckpointError:
            raise exc from None
        raise CheckpointError(
            f"{exc}. The training state was saved instead to {rescue}; move it to "
            f"{run.ckpt_dir / 'last.pt'} and resume from {run.run_dir}."
        ) from None

