"""``Trainer``: one run's parts and what one loop iteration does with them (collect, update,
evaluate, log), and the run's whole state.

One loop iteration steps every vector env once (``num_envs`` env steps, each one stored
transition) and runs ``utd · num_envs`` SAC updates once ``learning_starts`` env steps are
collected. The parts are built in ``build.py``, collection lives in ``collector.py``,
checkpoint writing in ``checkpoint_writer.py``, and when each iteration logs, evaluates,
checkpoints and stops in ``loop.py``; ``train.py`` prepares a run and runs a ``Trainer``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from rl_repara.agent.exploration import explore
from rl_repara.console import Progress, note
from rl_repara.data.env_state import simulator_versions
from rl_repara.errors import TrainingDiverged
from rl_repara.rng import global_rng_state, set_global_rng_state
from rl_repara.training.build import build
from rl_repara.training.checkpoint_writer import CheckpointWriter
from rl_repara.training.config import TrainConfig
from rl_repara.training.evaluation import eval_seed, evaluate
from rl_repara.training.logger import LOSS_TAGS, Logger
from rl_repara.training.resume import STATE_VERSION

__all__ = ["TrainResult", "Trainer"]


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


class Trainer:
    """One run's parts (collector, learner, replay buffer, checkpoint writer, logger) and one
    loop iteration's work with them.

    ``start()`` (a fresh run) or ``load_state_dict()`` (a resumed one) opens the logger, before
    the first step; then ``loop.run_loop(trainer, stop)``, or ``collect()`` and ``learn()``,
    one iteration's two halves; ``close()`` closes the envs and the logger.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path, device: torch.device) -> None:
        self.cfg, self.run_dir, self.device = cfg, run_dir, device
        parts = build(cfg, device)
        self.collector, self.eval_env, self.sac = parts.collector, parts.eval_env, parts.sac
        self.buffer, self.noise = parts.buffer, parts.noise
        policy = self.sac.policy
        self.checkpoints = CheckpointWriter(run_dir / "checkpoints")
        self._logger: Optional[Logger] = None  # opened by start() or load_state_dict()
        self.last_eval: Optional[float] = None
        self.best_eval: Optional[float] = None
        self.last_eval_step = -1
        self.last_info: dict[str, torch.Tensor] = {}
        # The last update of a step also draws the next step's actions where that saves a
        # pass: the compiled whole update samples them in its graph (SAC.update_and_act). Only
        # with white noise and raw observations, where they are the actions explore() would
        # draw, and one update per step (more would compile a second graph, for the updates
        # that do not act).
        self.acts_in_update: bool = (
            self.sac.compiled_whole_update
            and cfg.agent.utd * cfg.num_envs == 1
            and self.noise is None
            and policy.obs_normalizer is None
        )
        self._next_actions: Optional[tuple[np.ndarray, np.ndarray]] = None

    @property
    def global_step(self) -> int:
        """Env steps so far, summed over the vector envs (each one a stored transition)."""
        return self.collector.env_steps

    @property
    def logger(self) -> Logger:
        """The run's TensorBoard logger; ``start()`` or ``load_state_dict()`` opens it."""
        if self._logger is None:
            raise RuntimeError("the trainer has not begun: call start() or load_state_dict() first.")
        return self._logger

    def _open_logger(self) -> None:
        """Open the logger at this step: a fresh run writes its hyperparameters; a resumed one
        drops the events a killed run wrote after its checkpoint (``Logger``'s purge step)."""
        if self._logger is not None:
            self._logger.close()
        resumed_at = self.global_step
        self._logger = Logger(self.run_dir / "tb", purge_step=resumed_at + 1 if resumed_at else None)
        if not resumed_at:
            self._logger.hparams(self.cfg.to_dict())

    def start(self) -> None:
        """A fresh run: reset the envs with the run's seed; open the logger."""
        self.collector.start(self.cfg.seed)
        self._next_actions = None
        self._open_logger()

    # ------------------------------------------------------------------------- one step
    def collect(self) -> None:
        """One vector step; stores its transitions (unit-box actions) and logs ended episodes."""
        unit_actions, env_actions = self._actions()
        t = self.collector.step(env_actions)
        if self.sac.reward_scaler is not None:  # the return statistics (a skipped step ends its return)
            ends = t.terminated | t.truncated | ~t.keep
            self.sac.observe_rewards(torch.as_tensor(np.where(t.keep, t.reward, 0.0)), torch.as_tensor(ends))
        if self.noise is not None and t.ended.any():
            self.noise.reset(t.ended)
        self.buffer.add(
            t.obs, unit_actions, t.reward, t.next_obs, t.terminated, t.truncated, valid=t.keep
        )  # every row, so each env's stream stays whole for n-step returns
        for ret, length in t.episodes:
            self.logger.scalars(
                {"charts/episodic_return": ret, "charts/episodic_length": length}, self.global_step
            )

    def _actions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(unit-box actions, env-unit actions)``: uniform random ones until
        ``learning_starts``, then samples from the policy (``exploration.explore``), or the
        ones the last update drew (``acts_in_update``)."""
        if self._next_actions is not None:
            (unit, env_actions), self._next_actions = self._next_actions, None
        else:
            warmup = self.global_step < self.cfg.agent.learning_starts
            random_actions = self.collector.random_actions() if warmup else None
            unit, env_actions = explore(self.sac.policy, self.collector.obs, self.noise, random_actions)
        if not np.isfinite(env_actions).all():
            raise TrainingDiverged(
                f"the policy produced non-finite actions at env step {self.global_step}. "
                f"Last good checkpoint: {self.checkpoints.last_good()}. Try a lower agent.lr."
            )
        return unit, env_actions

    def learn(self) -> None:
        """``utd · num_envs`` SAC updates, once ``learning_starts`` env steps are collected;
        with ``acts_in_update`` the last one also draws the actions of the next ``collect``
        (so each ``learn`` draws them, the last of a run too; two ``learn`` calls in a row
        replace the first one's)."""
        if self.global_step < self.cfg.agent.learning_starts:
            return
        agent = self.cfg.agent
        updates = agent.utd * self.cfg.num_envs
        for i in range(updates):
            batch = self.buffer.sample(agent.batch_size, agent.n_step, agent.gamma)
            if self.acts_in_update and i == updates - 1:
                obs = torch.as_tensor(self.collector.obs, device=self.device)
                self.last_info, (unit, env_actions) = self.sac.update_and_act(batch, obs)
                self._next_actions = (unit.cpu().numpy(), env_actions.cpu().numpy())
            else:
                self.last_info = self.sac.update_tensors(batch)

    def evaluate(self, progress: Progress) -> None:
        """Deterministic episodes on the eval env; logged, and the best policy to ``best.pt``."""
        assert self.eval_env is not None
        mean, std = evaluate(
            self.sac.policy, self.eval_env, self.cfg.eval.episodes, seed=eval_seed(self.cfg.seed)
        )
        self.last_eval, self.last_eval_step = mean, self.global_step
        if self.best_eval is None or mean > self.best_eval:
            self.best_eval = mean
            self.checkpoints.write_best(
                {
                    "config": self.cfg.to_dict(),
                    "sac": {"policy": self.sac.policy.state_dict(), "obs_dim": self.sac.policy.obs_dim},
                    "counters": {"global_step": self.global_step, "eval_return": mean},
                }
            )
        self.logger.scalars(
            {"eval/mean_return": mean, "eval/std_return": std, "eval/best_return": self.best_eval},
            self.global_step,
        )
        progress.write(f"[rl_repara] step {self.global_step}: eval return {mean:.2f} ± {std:.2f}")

    def log_losses(self, rate: tuple[str, float], progress: Progress) -> None:
        """The latest update's metrics and the env steps per second (``rate``: its tag and
        value, from ``StepRate``); a non-finite metric stops the run."""
        sps_tag, sps = rate
        values = {sps_tag: sps}
        for key, tensor in self.last_info.items():
            value = float(tensor)
            if not np.isfinite(value):
                raise TrainingDiverged(
                    f"non-finite {key} ({value}) at env step {self.global_step}. Last good "
                    f"checkpoint: {self.checkpoints.last_good()}. Try a lower agent.lr, or "
                    "agent.precision=fp32."
                )
            if key in LOSS_TAGS:
                values[LOSS_TAGS[key]] = value
        self.logger.scalars(values, self.global_step)
        progress.line(self.global_step, {"SPS": sps, **self.bar_stats()})

    def bar_stats(self) -> dict[str, float]:
        stats = {}
        if self.collector.recent_returns:
            stats["return"] = float(np.mean(self.collector.recent_returns))
        if self.last_eval is not None:
            stats["eval"] = self.last_eval
        return stats

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The whole training state: learner, buffer, collector, counters and every RNG.
        Refuses (``TrainingDiverged``) when the weights went non-finite."""
        if not self.sac.parameters_finite():
            raise TrainingDiverged(
                f"the weights are non-finite at env step {self.global_step}; not overwriting "
                f"the last good checkpoint ({self.checkpoints.last_good()})."
            )
        return {
            "version": STATE_VERSION,
            "config": self.cfg.to_dict(),
            "sac": self.sac.state_dict(),
            "buffer": self.buffer.state_dict(),
            "collector": self.collector.state_dict(),
            "counters": {
                "global_step": self.global_step,
                "last_eval": self.last_eval,
                "best_eval": self.best_eval,
                "last_eval_step": self.last_eval_step,
            },
            "last_info": {k: v.detach().cpu() for k, v in self.last_info.items()},
            "noise": None if self.noise is None else self.noise.state_dict(),
            "next_actions": None if self._next_actions is None else [a.copy() for a in self._next_actions],
            "rng": global_rng_state(),
            "simulators": self.simulators(),
        }

    def simulators(self) -> dict[str, str]:
        """The MuJoCo (and dm_control) release the envs run on (``env_state.simulator_versions``);
        the training state records it."""
        return simulator_versions(self.collector.envs.envs[0])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict``'s output, bit for bit where the envs can be snapshotted;
        open the logger."""
        self.sac.load_state_dict(state["sac"])
        self.buffer.load_state_dict(state["buffer"])
        c = state["counters"]
        self.last_eval, self.best_eval = c["last_eval"], c["best_eval"]
        self.last_eval_step = c["last_eval_step"]
        self.last_info = {k: v.to(self.device) for k, v in state["last_info"].items()}
        if self.noise is not None:
            self.noise.load_state_dict(state["noise"])
        actions = state.get("next_actions")  # drawn by the last update, not yet taken
        self._next_actions = None if actions is None else (actions[0], actions[1])
        if not self.collector.load_state_dict(state["collector"], self.cfg.seed):
            # new episodes: no n-step window may run from the stored ones into them, and
            # colored noise starts new sequences as at any episode start
            self.buffer.end_streams()
            self._next_actions = None  # drawn for an observation the new episodes replace
            if self.noise is not None:
                self.noise.reset(np.ones(self.cfg.num_envs, dtype=bool))
            warnings.warn(
                f"{self.cfg.env.id} cannot be snapshotted mid-episode; the resumed run starts "
                "new episodes (the learner, buffer and RNGs are restored exactly).",
                stacklevel=2,
            )
        set_global_rng_state(state["rng"])
        self._note_new_simulators(state.get("simulators", {}))
        self._open_logger()

    def _note_new_simulators(self, saved: dict[str, str]) -> None:
        """Say once, when the envs were saved under another MuJoCo or dm_control release than
        this one: they continue from MuJoCo's state all the same (``env_state.restore_env``)."""
        here = self.simulators()
        changed = [name for name in saved if here.get(name) != saved[name]]
        if changed:
            then = " and ".join(f"{name} {saved[name]}" for name in changed)
            now = " and ".join(f"{name} {here.get(name, '(not installed)')}" for name in changed)
            note(
                f"the checkpoint was written with {then} and this run has {now}: the envs "
                "continue from the saved physics state, which this release may step differently "
                "from an unbroken run."
            )

    def close(self) -> None:
        """Close the envs this trainer made, and its logger."""
        self.collector.close()
        if self.eval_env is not None:
            self.eval_env.close()
        if self._logger is not None:
            self._logger.close()
