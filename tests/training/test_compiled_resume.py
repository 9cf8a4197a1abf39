"""``agent.compile=true`` resumes bit for bit from a checkpoint file, in a new process.

A compiled SAC run on Pendulum-v1 goes straight to ``TOTAL`` env steps; another run stops at
``STOP`` (mid-episode, with the actions its last update drew still pending) and a new Python
process resumes it from ``checkpoints/last.pt`` to ``TOTAL``. The two final checkpoints must hold
the same training state, every piece of it bit for bit: actor, critics, target critics, log α,
the three Adam states (moments and step counts), the replay buffer (contents, position, its
generator), the collector (observations, env snapshots, episode statistics, its action-space
generator), counters, the last metrics, the pending actions and the global RNG states. Only
the config's ``run_dir`` and ``resume`` may differ, and the generators of the
env's own action and observation spaces inside its snapshot: nothing seeds those (gymnasium
seeds them from OS entropy when first read), so two same-seed straight runs differ there too;
training never draws from them.

The same holds for compiled CrossQ (Batch Renorm statistics inside the compiled graph, two
graphs for its policy delay), with every run made and resumed through the CLI.

Each process compiles the whole update once (Inductor's on-disk cache makes the later ones
cheaper).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig, train
from rl_repara.training.checkpoint import load_checkpoint
from rl_repara.training.config import CheckpointConfig, LogConfig

TOTAL, STOP, LEARNING_STARTS = 320, 250, 150  # Pendulum episodes last 200 steps: 250 is mid-episode
NOT_STATE = ("run_dir", "resume")  # the config keys a resumed run may hold differently

RESUME_IN_A_NEW_PROCESS = """
import sys

from rl_repara import TrainConfig, train
from rl_repara.training.config import LogConfig

file, total = sys.argv[1], int(sys.argv[2])
train(TrainConfig(resume=file, total_steps=total, device="cpu", log=LogConfig(progress="none")))
"""


def _config(run_dir: Path, total: int) -> TrainConfig:
    """Tiny networks; an evaluation at STOP in both runs, so their eval counters agree."""
    return TrainConfig(
        env=EnvConfig(id="Pendulum-v1"),
        seed=0,
        total_steps=total,
        run_dir=str(run_dir),
        device="cpu",
        torch_threads=1,
        agent=SACConfig(compile=True, learning_starts=LEARNING_STARTS, hidden_sizes=[16, 16], batch_size=16),
        eval=EvalConfig(every_steps=STOP, episodes=1),
        checkpoint=CheckpointConfig(every_steps=0),
        log=LogConfig(progress="none", every_steps=10),
    )


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ, recursively (dicts, sequences, tensors, arrays, scalars):
    tensors and arrays bit for bit, with their dtypes and shapes; NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(map(str, set(a) ^ set(b)))} in one only"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}" if path else str(k))]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b) or type(a) is not type(b):
            return [f"{path}: {type(a).__name__} of {len(a)} vs {type(b).__name__} of {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.dtype == b.dtype and a.shape == b.shape and _bytes(a) == _bytes(b)
        return (
            [] if same else [f"{path}: tensors differ ({a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)})"]
        )
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        return [] if same else [f"{path}: arrays differ ({a.dtype}{a.shape} vs {b.dtype}{b.shape})"]
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, np.random.Generator):
        return _differences(a.bit_generator.state, b.bit_generator.state, f"{path}.bit_generator")
    if isinstance(a, gym.spaces.Space):  # its generator is seeded by no run (module docstring)
        return _differences(_without_generator(a), _without_generator(b), path)
    if hasattr(a, "__dict__") and not isinstance(a, type):  # an env unpickled from a snapshot
        return _differences(vars(a), vars(b), path)
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def _without_generator(space: gym.spaces.Space) -> dict[str, Any]:
    return {k: v for k, v in vars(space).items() if k != "_np_random"}


def _bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _state(run_dir: Path) -> dict[str, Any]:
    """The training state in ``run_dir``'s ``last.pt``, without the keys naming where it lives;
    env snapshots that are pickles are unpickled (two pickles of one state can differ in their
    bytes: the pickler's memo)."""
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    for key in NOT_STATE:
        state["config"].pop(key)
    for snapshot in state["collector"]["envs"]:
        if snapshot is not None and snapshot.get("kind") == "pickle":
            snapshot["env"] = pickle.loads(snapshot["env"])
    return state


CROSSQ_CLI = [
    "agent=crossq",
    "env=pendulum",
    "agent.compile=true",
    "agent.hidden_sizes=[16,16]",
    "agent.critic_hidden_sizes=[16,16]",
    "agent.batch_size=16",
    f"agent.learning_starts={LEARNING_STARTS}",
    "agent.brn_warmup_steps=50",
    "seed=0",
    "torch_threads=1",
    f"eval.every_steps={STOP}",
    "eval.episodes=1",
    "checkpoint.every_steps=0",
    "log.progress=none",
    "log.every_steps=10",
]


def _cli(*args: str, cwd: Path) -> None:
    """``rl-repara-train args`` in a new process (the installed entry point's code)."""
    code = (
        "import sys; from rl_repara.cli.main import train_main; sys.argv[0] = 'rl-repara-train'; train_main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_differences_finds_a_changed_bit_anywhere():
    state = {"sac": {"adam": {"state": {0: {"step": torch.tensor(3.0)}}}}, "rng": (1, np.zeros(2))}
    assert _differences(state, state) == []
    other = {"sac": {"adam": {"state": {0: {"step": torch.tensor(3.0000002)}}}}, "rng": (1, np.zeros(2))}
    assert _differences(state, other) == [
        "sac.adam.state.0.step: tensors differ (torch.float32[] vs torch.float32[])"
    ]
    assert _differences(state, {**state, "rng": (1, np.zeros(2, np.float32))}) == [
        "rng[1]: arrays differ (float64(2,) vs float32(2,))"
    ]


def test_a_compiled_run_resumed_in_a_new_process_ends_in_the_same_state(tmp_path, fresh_dynamo):
    train(_config(tmp_path / "straight", TOTAL))
    train(_config(tmp_path / "resumed", STOP))
    stopped = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert stopped["counters"]["global_step"] == STOP
    assert stopped["next_actions"] is not None, "the compiled update drew no pending actions"

    proc = subprocess.run(
        [sys.executable, "-c", RESUME_IN_A_NEW_PROCESS, str(tmp_path / "resumed" / "checkpoints" / "last.pt"),
         str(TOTAL)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    straight, resumed = _state(tmp_path / "straight"), _state(tmp_path / "resumed")
    assert straight["counters"]["global_step"] == resumed["counters"]["global_step"] == TOTAL
    assert straight["sac"]["num_updates"] == TOTAL - LEARNING_STARTS + 1
    assert straight["sac"]["target_critics"] is not None and straight["next_actions"] is not None
    differ = _differences(straight, resumed)
    assert not differ, f"{len(differ)} differences, first: {differ[:10]}"


def test_compiled_crossq_resumed_through_the_cli_ends_in_the_same_state(tmp_path):
    """CrossQ with ``agent.compile=true``: a straight CLI run to TOTAL, and a CLI run to STOP
    resumed by ``rl-repara-train resume=<run dir>`` in a new process, end in the same state bit
    for bit, Batch Renorm's running statistics and step counters included."""
    _cli(*CROSSQ_CLI, f"total_steps={TOTAL}", "hydra.run.dir=straight", cwd=tmp_path)
    _cli(*CROSSQ_CLI, f"total_steps={STOP}", "hydra.run.dir=resumed", cwd=tmp_path)
    stopped = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert stopped["counters"]["global_step"] == STOP
    assert stopped["config"]["agent"]["compile"] is True
    _cli(f"resume={tmp_path / 'resumed'}", f"total_steps={TOTAL}", cwd=tmp_path)

    straight, resumed = _state(tmp_path / "straight"), _state(tmp_path / "resumed")
    assert straight["counters"]["global_step"] == resumed["counters"]["global_step"] == TOTAL
    assert straight["sac"]["target_critics"] is None  # CrossQ: no target network
    renorm_steps = [v for k, v in straight["sac"]["critics"].items() if k.endswith("steps")]
    assert renorm_steps and all(int(s) > 50 for s in renorm_steps)  # past the warm-up: r, d in use
    differ = _differences(straight, resumed)
    assert not differ, f"{len(differ)} differences, first: {differ[:10]}"
