"""One owner per concern, as a user meets it: one error base class with meaningful exit codes,
``train`` closing what it opened, and one episode loop (with its step cap) for evaluation and
video."""

from __future__ import annotations

import inspect

import helpers_envs as H
import numpy as np
import pytest
import torch

import rl_repara
from rl_repara import EnvConfig, EvalConfig, SACConfig, TanhGaussianPolicy, TrainConfig, errors, train
from rl_repara.cli.errors import describe
from rl_repara.data.collector import Collector
from rl_repara.training.config import LogConfig

USER_MISTAKES = {"ConfigError", "CheckpointError", "VideoError"}


def test_every_error_has_one_base_is_exported_and_has_its_exit_code():
    classes = {
        name: cls for name, cls in vars(errors).items() if inspect.isclass(cls) and issubclass(cls, Exception)
    }
    assert set(errors.__all__) == set(classes)
    for name, cls in classes.items():
        assert issubclass(cls, errors.RLReparaError), name
        assert getattr(rl_repara, name) is cls, f"{name} is not exported by rl_repara"
        if name != "RLReparaError":
            assert cls.exit_code == (2 if name in USER_MISTAKES else 1), name
            assert describe(cls("what went wrong"), TrainConfig) == ("what went wrong", cls.exit_code)
    assert issubclass(errors.ConfigError, ValueError)  # code that catches ValueError still does


def _config(tmp_path, env: str = "Counting", **kw) -> TrainConfig:
    return TrainConfig(
        env=EnvConfig(id=H.env_id(env), kwargs=kw.pop("env_kwargs", {})),
        total_steps=kw.pop("total", 120),
        run_dir=str(tmp_path),
        device="cpu",
        agent=SACConfig(hidden_sizes=[8], batch_size=8, learning_starts=50),
        eval=EvalConfig(every_steps=0),
        log=LogConfig(progress="none"),
        **kw,
    )


@pytest.fixture
def collectors(monkeypatch) -> list[Collector]:
    made: list[Collector] = []
    real_init = Collector.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Collector, "__init__", spy)
    return made


def test_train_closes_the_envs_it_made(tmp_path, collectors):
    train(_config(tmp_path))
    assert len(collectors) == 1 and collectors[0].envs.closed


def test_train_closes_the_envs_it_made_when_the_env_fails(tmp_path, collectors):
    with pytest.raises(rl_repara.EnvError, match="non-finite observation"):
        train(_config(tmp_path, env_kwargs={"nan_obs_at": [70]}))
    assert len(collectors) == 1 and collectors[0].envs.closed


def test_a_video_of_an_endless_episode_stops_at_the_step_cap(tmp_path):
    """Video goes through the evaluation's one episode loop, step cap included: an episode that
    would run a million steps gives the reset frame and 5 steps."""
    pytest.importorskip("imageio_ffmpeg")
    pytest.importorskip("pygame")
    import imageio.v2 as imageio

    from rl_repara.training.video import prepare_headless, record_episode

    prepare_headless()
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(3, 1, hidden_sizes=(8,), action_low=-2.0, action_high=2.0)
    path = tmp_path / "capped.mp4"
    ret = record_episode(policy, "Pendulum-v1", path, {"max_episode_steps": 10**6}, seed=0, max_steps=5)
    assert np.isfinite(ret) and ret < 0
    assert sum(1 for _ in imageio.get_reader(str(path))) == 6
