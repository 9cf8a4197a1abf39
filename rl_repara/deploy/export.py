"""From checkpoint to controller: a trained policy's deterministic action as one graph.

The exported graph is ``obs [B, obs_dim] → action [B, act_dim]`` (float32, CPU, any batch
size B): observation normalization (when the policy has it), the MLP, the squashed mean
``tanh(μ)`` and the rescaling to the env's bounds, i.e. ``policy.deterministic_action``. It runs
without rl_repara: ONNX in onnxruntime, ``.pt2`` with ``torch.export.load``.

* ``format="onnx"``: torch's ``torch.export``-based ONNX exporter (``torch.onnx.export(...,
  dynamo=True)``, which needs onnxscript; the TorchScript exporter is deprecated), checked
  against the policy in onnxruntime before it is kept.
* ``format="pt2"``: ``torch.export.export`` + ``torch.export.save``, checked the same way.

Beside the model, ``<out>.json`` (the sidecar) says what the graph expects and returns, for a
controller on another machine: shapes, bounds and the rescaling, the env, the versions, the
model's SHA-256, and the checkpoint it came from by its path relative to the sidecar and its
SHA-256 (no absolute path of the training machine). Both files are written to temp files in
the target dir and renamed into place only when the export and its check succeeded, so a
failure leaves nothing half-written at ``out``.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import logging
import os
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from rl_repara.deploy.loading import load_policy
from rl_repara.errors import ConfigError, ExportWriteError
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.training.checkpoint import load_latest
from rl_repara.training.config import TrainConfig
from rl_repara.training.resume import run_dir_of

__all__ = ["FORMATS", "INPUT_NAME", "OUTPUT_NAME", "Controller", "export_policy", "sidecar_path"]

FORMATS = ("onnx", "pt2")
INPUT_NAME, OUTPUT_NAME = "obs", "action"
_NEEDS = {"onnx": ("onnx", "onnxscript", "onnxruntime"), "pt2": ()}
_INSTALL = "pip install 'rl_repara[export]' (onnx, onnxscript, onnxruntime)"
_TOL = 1e-5  # exported vs. eager actions, in env units (relative and absolute)


class Controller(nn.Module):
    """``obs [B, obs_dim] → action [B, act_dim]``: the policy's deterministic action in env
    units, normalization and bounds included. The module every export traces."""

    def __init__(self, policy: TanhGaussianPolicy) -> None:
        super().__init__()
        self.policy = policy.cpu().requires_grad_(False)  # no autograd in the graph
        self.eval()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The squashed mean, rescaled to ``[action_low, action_high]``."""
        return self.policy.deterministic_action(obs)


def sidecar_path(model_path: str | Path) -> Path:
    """Where the sidecar JSON of an exported model lies: ``<model>.json``."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def export_policy(checkpoint: str | Path, format: str = "onnx", out: str | Path | None = None) -> Path:
    """Export the deterministic controller of ``checkpoint`` (a run dir or a checkpoint file)
    to ``out`` (default ``<run dir>/export/policy.<format>``; a dir gets that file name) and
    its sidecar to ``<out>.json``. Returns the model's path.

    Raises ``ConfigError`` for an unknown format, a missing optional package or an unwritable
    ``out``, and ``CheckpointError`` for a missing, corrupt or policy-less checkpoint; all of
    them before anything is written.
    """
    fmt = _check_format(format)
    _require_packages(fmt)
    file, saved = load_latest(checkpoint, mmap=True)
    policy = load_policy(file, device="cpu")
    target = _out_path(file, fmt, out)
    info = _sidecar(policy, saved, fmt, file, target)
    with _quiet(), _staged([target, sidecar_path(target)]) as (tmp_model, tmp_json):
        _EXPORTERS[fmt](Controller(policy), tmp_model)
        _check_matches(policy, _RUNNERS[fmt](tmp_model), target)
        info |= _model_facts(fmt, tmp_model)
        tmp_json.write_text(json.dumps(info, indent=2, default=str) + "\n")
    return target


# ------------------------------------------------------------------------------ checks
def _check_format(format: str) -> str:
    fmt = str(format).lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{format}'; choose one of: {', '.join(FORMATS)}.")
    return fmt


def _require_packages(fmt: str) -> None:
    """A ``ConfigError`` naming the first missing package of the ``export`` extra, or a torch
    too old for the ``torch.export``-based ONNX exporter (it came with torch 2.6)."""
    if fmt == "onnx" and _torch_version() < (2, 6):
        raise ConfigError(
            f"format=onnx needs torch >= 2.6 (its torch.export-based ONNX exporter); this is torch "
            f"{torch.__version__}. format=pt2 works with this torch."
        )
    for name in _NEEDS[fmt]:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ConfigError(f"format={fmt} needs the package {name}: {_INSTALL}.") from None


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int(minor)


def _out_path(file: Path, fmt: str, out: str | Path | None) -> Path:
    """``out`` (a file ending in ``.<fmt>``, or a dir), else ``<run dir>/export/policy.<fmt>``
    (``policy-best.<fmt>`` for ``best.pt``)."""
    stem = file.name.split(".")[0]
    name = f"policy.{fmt}" if stem == "last" else f"policy-{stem}.{fmt}"
    if out is None:
        return run_dir_of(file).absolute() / "export" / name
    path = Path(out).expanduser().absolute()
    if path.is_dir():
        return path / name
    if path.suffix != f".{fmt}":
        raise ConfigError(f"out= for format={fmt} must end in .{fmt} (or name a dir); got {path}.")
    return path


def _sidecar(
    policy: TanhGaussianPolicy, saved: dict[str, Any], fmt: str, file: Path, target: Path
) -> dict[str, Any]:
    """What a deployment needs to know about the graph, without rl_repara (``_model_facts``
    adds the model's own)."""
    from rl_repara.version import __version__

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
        "action_rescaling": _RESCALING,
        "env_id": env.id,
        "env_kwargs": env.kwargs,
        "obs_normalization_inside": norm is not None,
        "obs_clip": None if norm is None else norm.clip,
        "checkpoint": _relative(file, target.parent),
        "checkpoint_sha256": _sha256(file),
        "global_step": (saved.get("counters") or {}).get("global_step"),
        "rl_repara_version": __version__,
        "torch_version": torch.__version__,
    }


_RESCALING = (
    "inside the graph: action = clamp(mid + half * tanh(mean), action_low, action_high), "
    "mid = (action_low + action_high) / 2, half = (action_high - action_low) / 2"
)


def _model_facts(fmt: str, model: Path) -> dict[str, Any]:
    """The model file's SHA-256 (the sidecar belongs to that file) and, for ONNX, its opset."""
    facts: dict[str, Any] = {"model_sha256": _sha256(model)}
    if fmt == "onnx":
        import onnx

        opsets = onnx.load(str(model), load_external_data=False).opset_import
        facts["onnx_opset"] = next((o.version for o in opsets if o.domain in ("", "ai.onnx")), None)
    return facts


def _relative(file: Path, base: Path) -> str:
    """``file`` as a POSIX path relative to ``base`` (``../checkpoints/last.pt`` from a run's
    ``export/``); its bare name where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(file.absolute(), base.absolute())).as_posix()
    except ValueError:
        return file.name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- exporters
def _example(model: Controller) -> tuple[torch.Tensor, dict[str, Any]]:
    """An example input (batch 2, so the batch dim is not specialized) and its dynamic dims."""
    batch = torch.export.Dim("batch", min=1)
    return torch.zeros(2, model.policy.obs_dim), {INPUT_NAME: {0: batch}}


def _export_onnx(model: Controller, path: Path) -> None:
    obs, dims = _example(model)
    torch.onnx.export(
        model,
        (obs,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=dims,
        dynamo=True,
        external_data=False,  # one self-contained file
        verbose=False,
    )


def _export_pt2(model: Controller, path: Path) -> None:
    obs, dims = _example(model)
    torch.export.save(torch.export.export(model, (obs,), dynamic_shapes=dims), str(path))


Runner = Callable[[np.ndarray], np.ndarray]


def _run_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda obs: session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]


def _run_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()
    return lambda obs: module(torch.from_numpy(obs)).numpy()


_EXPORTERS: dict[str, Callable[[Controller, Path], None]] = {"onnx": _export_onnx, "pt2": _export_pt2}
_RUNNERS: dict[str, Callable[[Path], Runner]] = {"onnx": _run_onnx, "pt2": _run_pt2}


def _check_matches(policy: TanhGaussianPolicy, run: Runner, target: Path) -> None:
    """The exported graph gives the policy's actions (batch 1 and a batch, ordinary and
    extreme observations); otherwise nothing is kept (an exporter bug, not a user mistake)."""
    g = torch.Generator().manual_seed(0)
    dim = policy.obs_dim
    obs = torch.cat(
        [10 * torch.randn(6, dim, generator=g), torch.full((2, dim), 1e6) * torch.tensor([[1], [-1]])]
    )
    with torch.no_grad():
        want = policy.deterministic_action(obs).numpy()
    for n in (1, len(obs)):
        got = run(obs[:n].numpy())
        if got.shape != want[:n].shape or not np.allclose(got, want[:n], rtol=_TOL, atol=_TOL):
            raise RuntimeError(f"the exported {target.name} does not reproduce the policy's actions.")


# --------------------------------------------------------------------------------- files
# write errors that are faults of the machine, not of the path the user gave
_MACHINE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


@contextmanager
def _staged(paths: list[Path]) -> Iterator[list[Path]]:
    """Temp files beside ``paths`` for the block to write; renamed over ``paths`` when it
    succeeds, deleted when it fails (a dir made for them is removed again if left empty)."""
    parent = paths[0].parent
    made = [d for d in (parent, *parent.parents) if not d.exists()]
    tmps: list[Path] = []
    done = False
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # unique names, same suffix (torch.export.save wants .pt2), the writer's permissions
        tmps = [path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}") for path in paths]
        yield tmps
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
        done = True
    except OSError as exc:
        message = f"cannot write {paths[0]}: {exc.strerror or exc}"
        if exc.errno in _MACHINE_FAULTS:  # not the user's path: exit 1, like a checkpoint
            raise ExportWriteError(f"{message}. Nothing was written; free space and export again.") from None
        raise ConfigError(message) from None
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        for d in made if not done else []:
            _rmdir_if_empty(d)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide torch's exporter chatter (deprecation notes, skipped torchvision ops) during an
    export; errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
