"""The sidecar ``<model>.json``: what an exported graph expects and returns, for a controller on
another machine, without rl_repara.

It records the input and output names, dtype and shapes, the action bounds and the rescaling
inside the graph, the env, the versions, the model's SHA-256 (the sidecar belongs to that
file), and the checkpoint it came from by its path relative to the sidecar and its SHA-256 (no
absolute path of the training machine).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from rl_repara.deploy.formats import INPUT_NAME, OUTPUT_NAME, format_facts
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.training.config import TrainConfig
from rl_repara.version import __version__

__all__ = ["RESCALING", "sidecar_path", "sidecar", "model_facts", "sha256"]

RESCALING = (
    "inside the graph: action = clamp(mid + half * tanh(mean), action_low, action_high), "
    "mid = (action_low + action_high) / 2, half = (action_high - action_low) / 2"
)


def sidecar_path(model_path: str | Path) -> Path:
    """Where the sidecar JSON of an exported model lies: ``<model>.json``."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def sidecar(
    policy: TanhGaussianPolicy, saved: dict[str, Any], fmt: str, file: Path, target: Path
) -> dict[str, Any]:
    """The sidecar of ``policy`` (from the checkpoint ``file`` holding ``saved``) exported as
    ``fmt`` to ``target``, less the model file's own facts (``model_facts``)."""
    norm = policy.obs_normalizer
    env = TrainConfig.from_dict(saved["config"]).env
    return {
        "format": fmt,
        "model": target.name,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "dtype": "float32",
        "obs_shape": ["batch", policy.obs_dim],
        "action_shape": ["batch", policy.act_dim],
        "action_low": policy.action_low.tolist(),
        "action_high": policy.action_high.tolist(),
        "action_rescaling": RESCALING,
        "env_id": env.id,
        "env_kwargs": env.kwargs,
        "obs_normalization_inside": norm is not None,
        "obs_clip": None if norm is None else norm.clip,
        "checkpoint": _relative(file, target.parent),
        "checkpoint_sha256": sha256(file),
        "global_step": (saved.get("counters") or {}).get("global_step"),
        "rl_repara_version": __version__,
        "torch_version": torch.__version__,
    }


def model_facts(fmt: str, model: Path) -> dict[str, Any]:
    """The model file's SHA-256 and what it says of its format (the ONNX opset)."""
    return {"model_sha256": sha256(model)} | format_facts(fmt, model)


def _relative(file: Path, base: Path) -> str:
    """``file`` as a POSIX path relative to ``base`` (``../checkpoints/last.pt`` from a run's
    ``export/``); its bare name where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(file.absolute(), base.absolute())).as_posix()
    except ValueError:
        return file.name


def sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
