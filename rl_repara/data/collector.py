"""``Collector``: steps the vector env and keeps the episode statistics.

Gymnasium's SAME_STEP autoreset: the step that ends an episode returns the first obs of the
next one and puts the episode's final obs in ``info["final_obs"]``. So every env step is one
transition ``(obs, action, reward, final-or-next obs, terminated)`` that lies inside one
episode, and no step is spent on a reset. Truncated (time-limit) transitions carry
``terminated = 0`` and their true final obs, so the learner bootstraps from them.

It knows nothing of learning: it takes actions and returns transitions.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from rl_repara.data.env_state import restorable, restore_env, snapshot_env
from rl_repara.data.envs import check_step, episode_limit, make_vec_env
from rl_repara.errors import EnvError
from rl_repara.spaces import flat_obs_dim

__all__ = ["Collector", "Transitions"]


@dataclass
class Transitions:
    """One vector step: ``obs`` acted on, ``next_obs`` (an ended episode's final obs),
    ``reward``, ``terminated``, ``truncated``, ``keep`` (the transitions to store: all but
    non-finite ones under ``on_nonfinite=skip``), ``ended`` (envs that start a new episode next
    step: ended or restarted) and the ``(return, length)`` of each episode that ended."""

    obs: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    keep: np.ndarray
    ended: np.ndarray
    episodes: list[tuple[float, int]] = field(default_factory=list)


class Collector:
    """``num_envs`` copies of ``env_id`` in a SAME_STEP ``SyncVectorEnv``.

    ``on_nonfinite``: ``"error"`` raises ``EnvError`` on a NaN/inf observation or reward;
    ``"skip"`` drops such transitions (counted in ``skipped_nonfinite``) and restarts an env
    whose observation went non-finite, so that obs is never acted on nor stored.
    """

    def __init__(
        self, env_id: str, num_envs: int, env_kwargs: dict | None = None, on_nonfinite: str = "error"
    ) -> None:
        self.env_id, self.on_nonfinite = env_id, on_nonfinite
        self.envs = make_vec_env(env_id, num_envs, env_kwargs)
        self.num_envs = num_envs
        self.obs = np.empty(0, dtype=np.float32)
        self.ep_return = np.zeros(num_envs)
        self.ep_length = np.zeros(num_envs, dtype=np.int64)
        self.episodes, self.skipped_nonfinite, self.env_steps = 0, 0, 0
        self.recent_returns: deque[float] = deque(maxlen=20)

    @property
    def episode_steps(self) -> int:
        """The env's time limit (1000 when it has none): a colored-noise sequence's length."""
        return episode_limit(self.envs.envs[0]) or 1000

    @property
    def obs_shape(self) -> tuple[int, int]:
        return (self.num_envs, flat_obs_dim(self.envs.single_observation_space))

    def start(self, seed: int) -> None:
        """Seed the random-action sampler and reset every env (env i with ``seed + i``)."""
        self.envs.action_space.seed(seed)
        self.obs = self._reset(seed=seed)

    def random_actions(self) -> np.ndarray:
        """Uniform actions in env units, from the action space's own (saved) generator."""
        return self.envs.action_space.sample()

    def step(self, actions: np.ndarray) -> Transitions:
        """Step every env once with ``actions`` (env units) and return the transitions."""
        obs = self.obs
        next_obs, reward, terminated, truncated, info = self._step(actions)
        stored_next = _final_obs(next_obs, info)
        keep = np.ones(self.num_envs, dtype=bool)
        bad = check_step(self.env_id, self.env_steps, stored_next, reward, self.obs_shape)
        if bad is None and stored_next is not next_obs:  # an episode ended: check the new obs too
            bad = check_step(self.env_id, self.env_steps, next_obs, reward, self.obs_shape)
        if bad is not None:
            keep = self._nonfinite(bad, stored_next, reward)
        done = terminated | truncated
        restarted = np.zeros_like(done)
        if bad is not None and not np.isfinite(next_obs).all():  # (bad is None: all finite)
            next_obs, restarted = self._restart_nonfinite(next_obs, done)
        episodes = self._track_episodes(reward, done, keep)
        self.obs = next_obs
        self.env_steps += self.num_envs
        return Transitions(obs, stored_next, reward, terminated, truncated, keep, done | restarted, episodes)

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        with self._api_errors("step"):
            next_obs, reward, terminated, truncated, info = self.envs.step(actions)
            return (
                next_obs,
                np.asarray(reward, dtype=np.float64),
                np.asarray(terminated, dtype=bool),
                np.asarray(truncated, dtype=bool),
                info,
            )

    def _reset(self, **kwargs: Any) -> np.ndarray:
        with self._api_errors("reset"):
            return self.envs.reset(**kwargs)[0]

    @contextlib.contextmanager
    def _api_errors(self, call: str) -> Iterator[None]:
        """Errors raised inside ``envs.step``/``reset`` become an ``EnvError`` naming the env."""
        try:
            yield
        except (ValueError, TypeError, AssertionError, IndexError) as exc:
            raise EnvError(
                f"{self.env_id} broke the Gymnasium API in {call}() at env step "
                f"{self.env_steps}: {type(exc).__name__}: {exc}. reset() must return (obs, "
                "info) and step() (obs, reward, terminated, truncated, info), with obs in the "
                "observation space."
            ) from exc

    def _nonfinite(self, field_name: str, next_obs: np.ndarray, reward: np.ndarray) -> np.ndarray:
        """The transitions to keep when one holds a NaN/inf (or an ``EnvError``)."""
        if self.on_nonfinite == "error":
            raise EnvError(
                f"{self.env_id} returned a non-finite {field_name} at env step {self.env_steps}. "
                "Fix the env, or set on_nonfinite=skip to drop such transitions."
            )
        keep = np.isfinite(next_obs).all(axis=1) & np.isfinite(reward)
        self.skipped_nonfinite += int((~keep).sum())
        return keep

    def _restart_nonfinite(self, obs: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(on_nonfinite=skip) An env whose next obs is non-finite is reset now. An episode cut
        by it is not counted as finished; one that had just ended (its reset obs was the bad
        one) still is. Returns the obs to act on next and which envs were reset."""
        bad = ~np.isfinite(obs).all(axis=1)
        reset_obs = self._reset(options={"reset_mask": bad})
        cut = bad & ~done
        self.ep_return[cut], self.ep_length[cut] = 0.0, 0
        return np.where(bad[:, None], reset_obs, obs), bad

    def _track_episodes(
        self, reward: np.ndarray, done: np.ndarray, keep: np.ndarray
    ) -> list[tuple[float, int]]:
        # every kept reward is finite (checked in step); a dropped one may not be
        self.ep_return += reward if keep.all() else np.where(keep, np.nan_to_num(reward), 0.0)
        self.ep_length += keep
        ended = []
        for i in np.flatnonzero(done):
            ended.append((float(self.ep_return[i]), int(self.ep_length[i])))
            self.recent_returns.append(float(self.ep_return[i]))
            self.ep_return[i], self.ep_length[i] = 0.0, 0
        self.episodes += len(ended)
        return ended

    # --------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """What exact resume needs: the current obs, episode statistics, env snapshots (None
        for an env that cannot be snapshotted) and the random-action generator."""
        return {
            "obs": self.obs.copy(),
            "ep_return": self.ep_return.copy(),
            "ep_length": self.ep_length.copy(),
            "episodes": self.episodes,
            "skipped_nonfinite": self.skipped_nonfinite,
            "env_steps": self.env_steps,
            "recent_returns": list(self.recent_returns),
            "envs": [snapshot_env(e) for e in self.envs.envs],
            "action_space_rng": self.envs.action_space.np_random.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any], seed: int) -> bool:
        """Restore ``state_dict``'s output. Returns False when an env could not be snapshotted:
        then every env starts a new episode (reset with a seed derived from ``seed`` and the
        step), and the episode statistics restart."""
        self.episodes, self.env_steps = state["episodes"], state["env_steps"]
        self.skipped_nonfinite = state["skipped_nonfinite"]
        self.recent_returns.extend(state["recent_returns"])
        snaps = state["envs"]
        exact = all(s is not None and restorable(e, s) for e, s in zip(self.envs.envs, snaps))
        if exact:
            self._reset(seed=seed)  # a restore writes into envs that have been reset
            self.envs.envs = [restore_env(e, s) for e, s in zip(self.envs.envs, state["envs"])]
            self.obs, self.ep_return = state["obs"], state["ep_return"]
            self.ep_length = state["ep_length"]
        else:
            self.obs = self._reset(seed=seed + self.env_steps)
        self.envs.action_space.np_random.bit_generator.state = state["action_space_rng"]
        return exact

    def close(self) -> None:
        self.envs.close()


def _final_obs(next_obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """``next_obs`` with each ended episode's row replaced by its final obs."""
    mask = info.get("_final_obs")
    if mask is None or not np.any(mask):
        return next_obs
    out = next_obs.copy()
    for i in np.flatnonzero(mask):
        out[i] = info["final_obs"][i]
    return out
