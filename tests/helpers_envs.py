"""Small Gymnasium envs for the reliability and environment tests, registered on import.

Every env here counts its ``step`` calls since construction in ``self.t``; the observation
carries that count in its last entry, so a transition stored in the replay buffer can be
traced back to the env step that made it (``obs[-1] = t``, ``next_obs[-1] = t + 1``). With a
single env and no episode end, ``t`` before a step equals the trainer's ``global_step``.

Ids: ``RlReparaTest/<Name>-v0``; ``gym.make`` kwargs override the class defaults.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

PREFIX = "RlReparaTest/"


class CountingEnv(gym.Env):
    """obs = [sin t, cos t, t] (float32), one action in [-1, 1], reward = −a², never ends
    unless ``episode_len`` is given (then ``terminated`` at that length). ``step`` asserts that
    the action is finite unless ``check_action=False`` (then a NaN action gives a NaN reward).

    Faults, keyed by the step index ``s`` (= ``t`` before the call, 0-based):
    ``nan_obs_at``: obs[0] is NaN; ``inf_reward_at``: reward is +inf;
    ``nan_reset_at``: the first reset at that step count returns obs[0] = NaN (the next is fine);
    ``huge_reward_from``: reward is 1e38 (finite in float32, but its square is not);
    ``signal_at``: the process sends itself SIGUSR2 (a scheduler's preemption notice) during
    that step.
    """

    def __init__(
        self,
        nan_obs_at: Sequence[int] = (),
        inf_reward_at: Sequence[int] = (),
        huge_reward_from: int | None = None,
        episode_len: int | None = None,
        check_action: bool = True,
        signal_at: int | None = None,
        nan_reset_at: Sequence[int] = (),
    ) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.nan_obs_at, self.inf_reward_at = set(nan_obs_at), set(inf_reward_at)
        self.huge_reward_from, self.episode_len = huge_reward_from, episode_len
        self.check_action = check_action
        self.signal_at = signal_at
        self.nan_reset_at = set(nan_reset_at)
        self.t, self.ep_t = 0, 0

    def observe(self) -> np.ndarray:
        return np.array([np.sin(self.t), np.cos(self.t), self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.ep_t = 0
        obs = self.observe()
        if self.t in self.nan_reset_at:
            self.nan_reset_at.remove(self.t)
            obs[0] = np.nan
        return obs, {}

    def step(self, action):
        if self.check_action:
            assert np.all(np.isfinite(action)), f"the env was given a non-finite action {action!r}"
        s = self.t
        self.t, self.ep_t = self.t + 1, self.ep_t + 1
        if s == self.signal_at:
            os.kill(os.getpid(), signal.SIGUSR2)
        obs = self.observe()
        reward = -float(np.sum(np.square(action)))
        if s in self.nan_obs_at:
            obs[0] = np.nan
        if s in self.inf_reward_at:
            reward = float("inf")
        if self.huge_reward_from is not None and s >= self.huge_reward_from:
            reward = 1e38
        terminated = self.episode_len is not None and self.ep_t >= self.episode_len
        return obs, reward, terminated, False, {}


class BoundsCheckEnv(CountingEnv):
    """Per-dimension, asymmetric action bounds; ``step`` asserts the action lies in the box
    (Gymnasium's ``Box.contains``: right shape, castable dtype, ``low <= a <= high``).
    Every action it was given is kept in the class-level list ``seen``."""

    LOW = np.array([-3.0, 0.0, 2.0], dtype=np.float32)
    HIGH = np.array([0.2, 0.5, 10.0], dtype=np.float32)
    seen: list[np.ndarray] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action_space = spaces.Box(self.LOW, self.HIGH, dtype=np.float32)

    def step(self, action):
        action = np.asarray(action)
        BoundsCheckEnv.seen.append(action.copy())
        assert self.action_space.contains(action), (
            f"action {action!r} (dtype {action.dtype}) is outside {self.action_space}"
        )
        return super().step((action - self.LOW) / (self.HIGH - self.LOW))


class DictObsEnv(CountingEnv):
    """A Dict observation: {"pos": 2 floats, "t": 1 float, "mode": Discrete(3)}."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict(
            {
                "pos": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
                "t": spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float32),
                "mode": spaces.Discrete(3),
            }
        )

    def observe(self) -> dict[str, Any]:
        return {
            "pos": np.array([np.sin(self.t), np.cos(self.t)], dtype=np.float32),
            "t": np.array([self.t], dtype=np.float32),
            "mode": self.t % 3,
        }


class TupleObsEnv(CountingEnv):
    """A Tuple observation: (Box of 2 floats, Discrete(4))."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Tuple(
            (spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), spaces.Discrete(4))
        )

    def observe(self) -> tuple:
        return np.array([np.sin(self.t), np.cos(self.t)], dtype=np.float32), self.t % 4


class Float64ObsEnv(CountingEnv):
    """A float64 Box observation (as MuJoCo envs have), with values that float32 rounds."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float64)

    def observe(self) -> np.ndarray:
        return np.array([np.sin(self.t), 1.0 / 3.0, self.t], dtype=np.float64)


class IntObsEnv(CountingEnv):
    """An int64 Box observation in [0, 1000]."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(0, 1000, shape=(3,), dtype=np.int64)

    def observe(self) -> np.ndarray:
        return np.array([self.t % 7, 5, self.t], dtype=np.int64)


class DiscreteObsEnv(CountingEnv):
    """A Discrete(5) observation (not a Box, Dict or Tuple)."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Discrete(5)

    def observe(self) -> int:
        return self.t % 5


class MatrixObsEnv(CountingEnv):
    """A (2, 3) float32 Box observation: row 0 = [sin t, cos t, t], row 1 = 2 × row 0."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2, 3), dtype=np.float32)

    def observe(self) -> np.ndarray:
        row = super().observe()
        return np.stack([row, 2 * row])


class WrongShapeObsEnv(CountingEnv):
    """Says obs has shape (3,), but returns shape (4,) from ``step`` index ``bad_at`` on
    (from ``reset`` when ``bad_at`` is -1)."""

    def __init__(self, bad_at: int = 5) -> None:
        super().__init__()
        self.bad_at = bad_at

    def observe(self) -> np.ndarray:
        obs = super().observe()
        if self.bad_at < 0 or self.t > self.bad_at:
            return np.append(obs, 0.0).astype(np.float32)
        return obs


class WrongDtypeObsEnv(CountingEnv):
    """Says obs is a float32 Box, but returns strings from ``step`` index ``bad_at`` on."""

    def __init__(self, bad_at: int = 5) -> None:
        super().__init__()
        self.bad_at = bad_at

    def observe(self) -> np.ndarray:
        obs = super().observe()
        return np.array(["a", "b", "c"]) if self.t > self.bad_at else obs


class OldApiEnv(CountingEnv):
    """The pre-Gymnasium step API: ``(obs, reward, done, info)``."""

    def step(self, action):
        obs, reward, terminated, _, info = super().step(action)
        return obs, reward, terminated, info


class VectorRewardEnv(CountingEnv):
    """Returns a reward of shape (2,) instead of a scalar."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, np.array([reward, reward]), terminated, truncated, info


class _ActionSpaceEnv(CountingEnv):
    ACTION_SPACE: spaces.Space = spaces.Discrete(2)

    def __init__(self) -> None:
        super().__init__()
        self.action_space = self.ACTION_SPACE


class DiscreteActEnv(_ActionSpaceEnv):
    ACTION_SPACE = spaces.Discrete(3)


class MultiDiscreteActEnv(_ActionSpaceEnv):
    ACTION_SPACE = spaces.MultiDiscrete([3, 2])


class MultiBinaryActEnv(_ActionSpaceEnv):
    ACTION_SPACE = spaces.MultiBinary(2)


class MatrixActEnv(_ActionSpaceEnv):
    ACTION_SPACE = spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32)


class UnboundedActEnv(_ActionSpaceEnv):
    ACTION_SPACE = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)


class HalfBoundedActEnv(_ActionSpaceEnv):
    ACTION_SPACE = spaces.Box(
        np.array([-1.0, 0.0], dtype=np.float32), np.array([1.0, np.inf], dtype=np.float32)
    )


class _ObsSpaceEnv(CountingEnv):
    """An env whose observation space is ``OBS_SPACE``; ``reset`` and ``step`` return a sample
    of it (the tests only build these envs, to see them refused or flattened)."""

    OBS_SPACE: spaces.Space = spaces.Discrete(2)

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = self.OBS_SPACE

    def observe(self) -> Any:
        return self.observation_space.sample()


class ImageObsEnv(_ObsSpaceEnv):
    OBS_SPACE = spaces.Box(0, 255, shape=(96, 96, 3), dtype=np.uint8)


class GreyImageObsEnv(_ObsSpaceEnv):
    OBS_SPACE = spaces.Box(0, 255, shape=(84, 84), dtype=np.uint8)


class PixelsInDictObsEnv(_ObsSpaceEnv):
    OBS_SPACE = spaces.Dict(
        {
            "state": spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
            "pixels": spaces.Box(0.0, 1.0, shape=(3, 64, 64), dtype=np.float32),
        }
    )


class StackedFramesObsEnv(_ObsSpaceEnv):
    OBS_SPACE = spaces.Box(0, 255, shape=(4, 96, 96, 3), dtype=np.uint8)  # FrameStackObservation


class TextObsEnv(_ObsSpaceEnv):
    OBS_SPACE = spaces.Text(8)


class SequenceInTupleObsEnv(_ObsSpaceEnv):
    OBS_SPACE = spaces.Tuple((spaces.Discrete(3), spaces.Sequence(spaces.Discrete(2))))


class HugeObsEnv(_ObsSpaceEnv):
    """A flat float observation of 40,000 numbers (a replay buffer of it is large)."""

    OBS_SPACE = spaces.Box(-1.0, 1.0, shape=(40_000,), dtype=np.float32)


ENVS = {
    "Counting": (CountingEnv, {}),
    "NanObs": (CountingEnv, {"nan_obs_at": (57,)}),
    "InfReward": (CountingEnv, {"inf_reward_at": (63,)}),
    "HugeReward": (CountingEnv, {"huge_reward_from": 250, "check_action": False}),
    "Lenient": (CountingEnv, {"check_action": False}),
    "Preempted": (CountingEnv, {"signal_at": 150}),
    "BoundsCheck": (BoundsCheckEnv, {}),
    "DictObs": (DictObsEnv, {}),
    "TupleObs": (TupleObsEnv, {}),
    "Float64Obs": (Float64ObsEnv, {}),
    "IntObs": (IntObsEnv, {}),
    "DiscreteObs": (DiscreteObsEnv, {}),
    "MatrixObs": (MatrixObsEnv, {}),
    "WrongShapeObs": (WrongShapeObsEnv, {}),
    "WrongDtypeObs": (WrongDtypeObsEnv, {}),
    "OldApi": (OldApiEnv, {}),
    "VectorReward": (VectorRewardEnv, {}),
    "DiscreteAct": (DiscreteActEnv, {}),
    "MultiDiscreteAct": (MultiDiscreteActEnv, {}),
    "MultiBinaryAct": (MultiBinaryActEnv, {}),
    "MatrixAct": (MatrixActEnv, {}),
    "UnboundedAct": (UnboundedActEnv, {}),
    "HalfBoundedAct": (HalfBoundedActEnv, {}),
    "ImageObs": (ImageObsEnv, {}),
    "GreyImageObs": (GreyImageObsEnv, {}),
    "PixelsInDictObs": (PixelsInDictObsEnv, {}),
    "StackedFramesObs": (StackedFramesObsEnv, {}),
    "TextObs": (TextObsEnv, {}),
    "SequenceInTupleObs": (SequenceInTupleObsEnv, {}),
    "HugeObs": (HugeObsEnv, {}),
}


def env_id(name: str) -> str:
    """The registered id of one of ``ENVS``, e.g. ``env_id("NanObs")``."""
    return f"{PREFIX}{name}-v0"


def register_all() -> None:
    """Register every env of ``ENVS`` (idempotent: a second import changes nothing)."""
    for name, (cls, kwargs) in ENVS.items():
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point=f"{__name__}:{cls.__name__}", kwargs=kwargs)


register_all()
