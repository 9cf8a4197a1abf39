"""The exported controller's graph and its two formats: how each is written, run and checked.

* ``onnx``: torch's ``torch.export``-based ONNX exporter (``torch.onnx.export(...,
  dynamo=True)``, which needs onnxscript; the TorchScript exporter is deprecated), run in
  onnxruntime.
* ``pt2``: ``torch.export.export`` + ``torch.export.save``, run with ``torch.export.load``.

Both take ``obs [B, obs_dim]`` (input ``INPUT_NAME``, any batch size B) to ``action [B,
act_dim]`` (output ``OUTPUT_NAME``), float32 on the CPU.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from rl_repara.errors import ConfigError
from rl_repara.nn.policies import TanhGaussianPolicy

__all__ = [
    "FORMATS",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "Controller",
    "Runner",
    "check_format",
    "require_packages",
    "write_model",
    "load_runner",
    "format_facts",
    "check_matches",
    "quiet",
]

FORMATS = ("onnx", "pt2")
INPUT_NAME, OUTPUT_NAME = "obs", "action"
_NEEDS = {"onnx": ("onnx", "onnxscript", "onnxruntime"), "pt2": ()}
_INSTALL = "pip install 'rl_repara[export]' (onnx, onnxscript, onnxruntime)"
_TOL = 1e-5  # exported vs. eager actions, in env units (relative and absolute)

Runner = Callable[[np.ndarray], np.ndarray]


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


def check_format(format: str) -> str:
    """``format`` as one of ``FORMATS`` (``".ONNX"`` is ``"onnx"``); a ``ConfigError`` otherwise."""
    fmt = str(format).lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{format}'; choose one of: {', '.join(FORMATS)}.")
    return fmt


def require_packages(fmt: str) -> None:
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


def _example(model: Controller) -> tuple[torch.Tensor, dict[str, Any]]:
    """An example input (batch 2, so the batch dim is not specialized) and its dynamic dims."""
    batch = torch.export.Dim("batch", min=1)
    return torch.zeros(2, model.policy.obs_dim), {INPUT_NAME: {0: batch}}


def _write_onnx(model: Controller, path: Path) -> None:
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


def _write_pt2(model: Controller, path: Path) -> None:
    obs, dims = _example(model)
    torch.export.save(torch.export.export(model, (obs,), dynamic_shapes=dims), str(path))


def _run_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda obs: session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]


def _run_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()
    return lambda obs: module(torch.from_numpy(obs)).numpy()


_WRITERS: dict[str, Callable[[Controller, Path], None]] = {"onnx": _write_onnx, "pt2": _write_pt2}
_RUNNERS: dict[str, Callable[[Path], Runner]] = {"onnx": _run_onnx, "pt2": _run_pt2}


def write_model(fmt: str, model: Controller, path: Path) -> None:
    """Trace ``model`` and write its graph to ``path`` in format ``fmt``."""
    _WRITERS[fmt](model, path)


def load_runner(fmt: str, path: Path) -> Runner:
    """The model at ``path`` as a function ``obs [B, obs_dim] → action [B, act_dim]`` (NumPy
    float32), run the way a deployment runs it."""
    return _RUNNERS[fmt](path)


def format_facts(fmt: str, path: Path) -> dict[str, Any]:
    """What the model file says of its format: the ONNX opset (nothing for ``pt2``)."""
    if fmt != "onnx":
        return {}
    import onnx

    opsets = onnx.load(str(path), load_external_data=False).opset_import
    return {"onnx_opset": next((o.version for o in opsets if o.domain in ("", "ai.onnx")), None)}


def check_matches(policy: TanhGaussianPolicy, run: Runner, target: Path) -> None:
    """The exported graph gives the policy's actions (batch 1 and a batch, ordinary and
    extreme observations, within ``1e-5``); otherwise a ``RuntimeError`` (an exporter bug, not
    a user mistake)."""
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


@contextmanager
def quiet() -> Iterator[None]:
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
