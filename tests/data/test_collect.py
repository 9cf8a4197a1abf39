"""The trainer's collect step under Gymnasium's SAME_STEP autoreset: every env step is one
stored transition (no step is spent on a reset), every stored transition lies inside one
episode (an ended episode's next obs is its final obs, not the next episode's first),
truncation is stored with terminated = 0 and termination with terminated = 1, and actions are
stored in the unit box."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig
from rl_repara.training.trainer import Trainer

COUNTDOWN_ID = "RlReparaTest/Countdown-v0"


class CountdownEnv(gym.Env):
    """obs = [t, episode, k]: step t of episode number ``episode``, which terminates
    (``terminated=True``) when t reaches k; k is drawn from {2, ..., 6} at each reset."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.episode, self.t, self.k = -1, 0, 0

    def observe(self) -> np.ndarray:
        return np.array([self.t, self.episode, self.k], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        self.k = int(self.np_random.integers(2, 7))
        return self.observe(), {}

    def step(self, action):
        self.t += 1
        return self.observe(), float(self.t), self.t >= self.k, False, {}


if COUNTDOWN_ID not in gym.registry:
    gym.register(COUNTDOWN_ID, entry_point=CountdownEnv)


def make_run(tmp_path, env_id: str, env_kwargs: dict, num_envs: int) -> Trainer:
    cfg = TrainConfig(
        env=EnvConfig(id=env_id, kwargs=env_kwargs),
        num_envs=num_envs,
        device="cpu",
        agent=SACConfig(learning_starts=10**6, hidden_sizes=[8], batch_size=4, buffer_size=1000),
        eval=EvalConfig(every_steps=0),
    )
    cfg.validate()
    run = Trainer(cfg, tmp_path, torch.device("cpu"))
    run.start()
    return run


def record_steps(run: Trainer, iterations: int) -> dict[str, np.ndarray]:
    """Run ``collect`` and record what the vector env was given and returned, step by step:
    obs [T+1, N, d] (obs[t] is what step t acted on), action, reward, terminated, truncated,
    and final [T, N, d]: the obs the step reached (an ended episode's final obs from info)."""
    log: dict[str, list] = {
        "obs": [run.collector.obs.copy()],
        "action": [],
        "reward": [],
        "terminated": [],
        "truncated": [],
        "final": [],
    }
    env_step = run.collector.envs.step

    def recording_step(actions):
        out = env_step(actions)
        for key, value in zip(("action", "obs", "reward", "terminated", "truncated"), (actions, *out)):
            log[key].append(np.array(value, copy=True))
        final, info = np.array(out[0], copy=True), out[4]
        for i in np.flatnonzero(info.get("_final_obs", [])):
            final[i] = info["final_obs"][i]
        log["final"].append(final)
        return out

    run.collector.envs.step = recording_step
    for _ in range(iterations):
        run.collect()
    return {k: np.stack(v) for k, v in log.items()}


def stored(run: Trainer) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in run.buffer.state_dict()["data"].items()}


def ended(rec: dict[str, np.ndarray]) -> np.ndarray:
    """[T, N]: True where the step ended an episode (its returned obs starts the next one)."""
    return rec["terminated"] | rec["truncated"]


# ------------------------------------------------------------------------------- Pendulum
def pendulum_step(obs: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pendulum-v1's dynamics (g = 10, m = l = 1, dt = 0.05) from an observation: the next
    observation and the reward of the step, for a batch of (obs, action)."""
    th, thdot = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
    u = np.clip(action[:, 0], -2.0, 2.0)
    reward = -(th**2 + 0.1 * thdot**2 + 0.001 * u**2)  # arctan2 already lies in [-π, π]
    new_thdot = np.clip(thdot + (3 * 10.0 / 2 * np.sin(th) + 3.0 * u) * 0.05, -8.0, 8.0)
    new_th = th + new_thdot * 0.05
    return np.stack([np.cos(new_th), np.sin(new_th), new_thdot], axis=1), reward


def physics_error(obs, action, next_obs, reward) -> np.ndarray:
    predicted_obs, predicted_reward = pendulum_step(obs, action)
    return np.maximum(np.abs(predicted_obs - next_obs).max(1), np.abs(predicted_reward - reward))


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """Pendulum with 5-step episodes (TimeLimit truncation), 3 envs, 20 vector steps."""
    torch.manual_seed(0)
    run = make_run(tmp_path_factory.mktemp("run"), "Pendulum-v1", {"max_episode_steps": 5}, 3)
    rec = record_steps(run, 20)
    return run, rec


def test_stored_pendulum_transitions_obey_the_dynamics_of_one_episode(pendulum_run):
    run, rec = pendulum_run
    data = stored(run)
    env_action = 2.0 * data["action"]  # stored in the unit box; Pendulum's bounds are ±2
    err = physics_error(data["obs"], env_action, data["next_obs"], data["reward"])
    assert err.max() < 1e-4

    # The check has teeth: pairing an ended step's obs with the obs the vector env returned
    # (the next episode's first) fails it.
    end = ended(rec)
    assert end.sum() >= 9
    crossing = physics_error(
        rec["obs"][:-1][end], rec["action"][end], rec["obs"][1:][end], rec["reward"][end]
    )
    assert crossing.min() > 1e-2


def test_every_env_step_is_one_stored_transition(pendulum_run):
    """No step is spent on a reset: 20 vector steps of 3 envs are 60 stored transitions, in
    step order, each exactly what the env was given and reached."""
    run, rec = pendulum_run
    data = stored(run)
    steps, num_envs = rec["reward"].shape
    assert run.global_step == len(run.buffer) == steps * num_envs == 60
    np.testing.assert_array_equal(data["obs"], rec["obs"][:-1].reshape(60, 3))
    np.testing.assert_array_equal(data["next_obs"], rec["final"].reshape(60, 3))
    np.testing.assert_allclose(data["action"], rec["action"].reshape(60, 1) / 2.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(data["reward"], rec["reward"].reshape(60).astype(np.float32))


def test_truncated_pendulum_steps_are_stored_with_terminated_zero(pendulum_run):
    run, rec = pendulum_run
    data = stored(run)
    assert not rec["terminated"].any()
    assert rec["truncated"].sum() == 12  # 5-step episodes: steps 4, 9, 14, 19 of 3 envs
    assert (data["terminated"] == 0.0).all()  # ... stored as non-terminal, so they bootstrap


def test_episode_returns_sum_the_rewards_of_each_episode(pendulum_run):
    run, rec = pendulum_run
    returns = []
    for t, i in zip(*np.nonzero(rec["truncated"])):  # episode of env i ended at step t
        returns.append((t, i, rec["reward"][t - 4 : t + 1, i].sum()))  # 5-step episodes
    expected = [r for _, _, r in sorted(returns)]  # logged in step order, then env order
    assert run.collector.episodes == len(expected) == 12
    np.testing.assert_allclose(list(run.collector.recent_returns), expected[-20:], rtol=1e-5)


# ------------------------------------------------------------------------ the countdown env
@pytest.mark.parametrize("env_kwargs", [{}, {"max_episode_steps": 4}])
def test_terminated_is_stored_as_one_exactly_at_the_end_of_an_episode(tmp_path, env_kwargs):
    """Episodes of 2 to 6 steps; with a 4-step time limit some are truncated instead."""
    run = make_run(tmp_path, COUNTDOWN_ID, env_kwargs, 3)
    rec = record_steps(run, 30)
    data = stored(run)
    obs, next_obs = data["obs"], data["next_obs"]
    t, episode, k = obs.T
    next_t, next_episode, next_k = next_obs.T

    # each pair is consecutive within one episode
    np.testing.assert_array_equal(next_t, t + 1)
    np.testing.assert_array_equal(next_episode, episode)
    np.testing.assert_array_equal(next_k, k)
    # terminated = 1 exactly where the episode's own end was reached
    np.testing.assert_array_equal(data["terminated"], (next_t == next_k).astype(np.float32))
    assert data["terminated"].sum() >= 5
    assert len(run.buffer) == rec["reward"].size == run.global_step
    if env_kwargs:  # time-limit ends (t = 4 < k) are stored, as non-terminal
        cut = (next_t == 4) & (next_k > 4)
        assert cut.sum() == (rec["truncated"] & ~rec["terminated"]).sum() >= 3
        assert (data["terminated"][cut] == 0.0).all()
