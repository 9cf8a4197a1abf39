"""Observations rl_repara cannot learn from are refused with one line before anything big is
built: images (until pixel-based training exists), spaces without a fixed-size vector, and
replay buffers that would not fit in memory. The envs are in ``helpers_envs.py``."""

from __future__ import annotations

import subprocess

import helpers_envs as H
import numpy as np
import pytest
import torch
from support import BIN, REPO, TRAIN

from rl_repara import EnvConfig, SACConfig, TrainConfig, train
from rl_repara.data import memory
from rl_repara.data.buffer import ReplayBuffer
from rl_repara.data.envs import make_env
from rl_repara.data.memory import check_buffer_fits, format_bytes
from rl_repara.errors import ConfigError
from rl_repara.training.config import LogConfig


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("ImageObs", "observation: uint8 (96, 96, 3)"),
        ("GreyImageObs", "observation: uint8 (84, 84)"),
        ("StackedFramesObs", "observation: uint8 (4, 96, 96, 3)"),
        ("PixelsInDictObs", "observation['pixels']: float32 (3, 64, 64)"),
    ],
)
def test_image_observations_are_refused_with_one_line(name, where):
    env_id = H.env_id(name)
    with pytest.raises(ConfigError) as info:
        make_env(env_id)
    assert str(info.value) == (
        f"{env_id} has image observations ({where}); rl_repara's networks are MLPs on state "
        "vectors and cannot learn from pixels yet. Pick an env with state observations (e.g. "
        "LunarLanderContinuous-v3, dm_control/cheetah-run-v0)."
    )


@pytest.mark.parametrize(
    ("name", "kind", "where"),
    [("TextObs", "Text", "observation"), ("SequenceInTupleObs", "Sequence", "observation[1]")],
)
def test_spaces_without_a_fixed_size_vector_are_refused_with_one_line(name, kind, where):
    env_id = H.env_id(name)
    with pytest.raises(ConfigError) as info:
        make_env(env_id)
    assert str(info.value) == (
        f"{env_id} has a {kind} observation space ({where}), which has no fixed-size vector "
        "form; rl_repara takes Box, Discrete, MultiDiscrete and MultiBinary observations, and "
        "Dicts and Tuples of them."
    )


def test_car_racing_is_refused_before_the_buffer_is_allocated():
    """The issue's case: CarRacing-v3 (96×96×3 pixels) used to end in a 40-line traceback
    after asking the allocator for 110 GB."""
    pytest.importorskip("Box2D")
    with pytest.raises(ConfigError, match=r"^CarRacing-v3 has image observations \(observation: uint8"):
        make_env("CarRacing-v3")


def test_the_cli_refuses_an_image_env_in_one_line_and_exits_2(tmp_path):
    env = {"PYTHONPATH": str(REPO / "tests"), "PATH": str(BIN)}
    proc = subprocess.run(
        [TRAIN, f"env.id=helpers_envs:{H.env_id('ImageObs')}", "log.progress=none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has image observations" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------ memory
def test_buffer_bytes_match_what_a_full_buffer_holds():
    """A full buffer's saved fields (five float32 ones and two of its three bool flags; the
    third, the n-step link, is rebuilt on load) plus one byte a row are ``bytes_needed``."""
    buf = ReplayBuffer(100, obs_dim=17, act_dim=6)
    row = np.zeros((1, 17), dtype=np.float32)
    for _ in range(100):
        buf.add(row, np.zeros((1, 6), np.float32), np.zeros(1), row, np.zeros(1), np.zeros(1, bool))
    saved = sum(t.numel() * t.element_size() for t in buf.state_dict()["data"].values())
    assert ReplayBuffer.bytes_needed(100, 17, 6) == saved + 100


def test_a_buffer_that_does_not_fit_is_refused_with_the_numbers_and_the_key():
    """On the host the buffer needs room twice: itself, and its copy while a checkpoint is
    written."""
    with pytest.raises(ConfigError) as info:
        check_buffer_fits(55_000_000_000, 1_000_000, torch.device("cpu"), host_free=24_000_000_000)
    assert str(info.value) == (
        "the replay buffer needs 110.0 GB (the buffer, and its copy in a checkpoint) for "
        "1,000,000 transitions but 24.0 GB of host memory is available; lower agent.buffer_size "
        "(at most about 196,363 fits)."
    )
    check_buffer_fits(10_000_000_000, 1_000_000, torch.device("cpu"), host_free=24_000_000_000)


def test_a_gpu_buffer_needs_room_on_the_gpu_and_for_its_checkpoint_copy_on_the_host():
    cuda = torch.device("cuda")
    check_buffer_fits(10_000_000_000, 1_000_000, cuda, host_free=12_000_000_000, device_free=12_000_000_000)
    with pytest.raises(
        ConfigError, match=r"needs 10\.0 GB for 1,000,000 transitions but 8\.0 GB of cuda memory"
    ):
        check_buffer_fits(
            10_000_000_000, 1_000_000, cuda, host_free=80_000_000_000, device_free=8_000_000_000
        )
    with pytest.raises(ConfigError, match=r"needs 10\.0 GB \(a checkpoint's copy of the buffer\) .* of host"):
        check_buffer_fits(
            10_000_000_000, 1_000_000, cuda, host_free=8_000_000_000, device_free=80_000_000_000
        )


def test_format_bytes():
    assert [format_bytes(n) for n in (512, 1500, 2_500_000, 110.6e9, 3e12)] == [
        "512 B",
        "1.5 kB",
        "2.5 MB",
        "110.6 GB",
        "3.0 TB",
    ]


def test_training_with_a_buffer_larger_than_memory_stops_before_allocating(tmp_path, monkeypatch):
    """40,000 floats per observation × 1M transitions is 320 GB (twice that with a checkpoint's
    copy) against 24 GB: refused in one line before the buffer is allocated (which would take
    minutes, or be killed, if it were)."""
    monkeypatch.setattr(memory, "host_available", lambda: 24_000_000_000)
    cfg = TrainConfig(
        env=EnvConfig(id=H.env_id("HugeObs")),
        total_steps=10,
        run_dir=str(tmp_path / "run"),
        agent=SACConfig(buffer_size=1_000_000, hidden_sizes=[8]),
        log=LogConfig(progress="none"),
    )
    with pytest.raises(ConfigError, match=r"^the replay buffer needs 640\.0 GB .* 24\.0 GB of host memory"):
        train(cfg)
