"""From checkpoint to controller: a trained policy's deterministic action as one graph.

The exported graph is ``obs [B, obs_dim] → action [B, act_dim]`` (float32, CPU, any batch
size B): observation normalization (when the policy has it), the MLP, the squashed mean
``tanh(μ)`` and the rescaling to the env's bounds, i.e. ``policy.deterministic_action``. It runs
without rl_repara: ONNX in onnxruntime, ``.pt2`` with ``torch.export.load`` (``formats``), and
is checked against the policy there before it is kept.

Beside the model, ``<out>.json`` (the sidecar, ``sidecar``) says what the graph expects and
returns. Both files are written to temp files in the target dir and renamed into place only
when the export and its check succeeded (``staging``), so a failure leaves nothing
half-written at ``out``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rl_repara.deploy.formats import (
    Controller,
    check_format,
    check_matches,
    load_runner,
    quiet,
    require_packages,
    write_model,
)
from rl_repara.deploy.loading import load_policy
from rl_repara.deploy.sidecar import model_facts, sidecar, sidecar_path  # sidecar_path: cli.export
from rl_repara.deploy.staging import staged
from rl_repara.errors import ConfigError
from rl_repara.training.checkpoint import load_latest
from rl_repara.training.resume import run_dir_of

__all__ = ["export_policy", "sidecar_path"]


def export_policy(checkpoint: str | Path, format: str = "onnx", out: str | Path | None = None) -> Path:
    """Export the deterministic controller of ``checkpoint`` (a run dir or a checkpoint file)
    to ``out`` (default ``<run dir>/export/policy.<format>``; a dir gets that file name) and
    its sidecar to ``<out>.json``. Returns the model's path.

    Raises ``ConfigError`` for an unknown format, a missing optional package or an unwritable
    ``out``, and ``CheckpointError`` for a missing, corrupt or policy-less checkpoint; all of
    them before anything is written.
    """
    fmt = check_format(format)
    require_packages(fmt)
    file, saved = load_latest(checkpoint, mmap=True)
    policy = load_policy(file, device="cpu")
    target = _out_path(file, fmt, out)
    info = sidecar(policy, saved, fmt, file, target)
    with quiet(), staged([target, sidecar_path(target)]) as (tmp_model, tmp_json):
        write_model(fmt, Controller(policy), tmp_model)
        check_matches(policy, load_runner(fmt, tmp_model), target)
        info |= model_facts(fmt, tmp_model)
        tmp_json.write_text(json.dumps(info, indent=2, default=str) + "\n")
    return target


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
