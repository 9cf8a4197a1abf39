"""``Storage``: the replay buffer's preallocated tensors, one row per transition, and how rows are
written, copied, saved and loaded (where the rows go and how they are sampled: ``buffer``).

Per row: ``obs [obs_dim]``, ``action [act_dim]``, ``reward``, ``next_obs [obs_dim]`` and
``terminated`` as float32, and three bool flags (truncated, valid, link; ``nstep``). On the CPU
rows are written through NumPy views of the same memory, a few µs per field where a torch
conversion and ``index_copy_`` took tens (about 0.15 ms per env step in a training loop;
docs/performance.md); on other devices through ``index_copy_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["FIELDS", "Storage"]

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class Storage:
    """``capacity`` rows of every field (``fields[name]``, ``[capacity, ...]``) and of the flags
    (``flags [capacity, 3]``, with the column views ``truncated``, ``valid``, ``link``) on
    ``device``; ``host`` holds their NumPy views on the CPU (None elsewhere)."""

    @staticmethod
    def bytes_needed(capacity: int, obs_dim: int, act_dim: int) -> int:
        """Bytes allocated: per row ``obs``, ``next_obs``, ``action``, ``reward`` and
        ``terminated`` as float32, and three bool flags."""
        return int(capacity) * (4 * (2 * obs_dim + act_dim + 2) + 3)

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.device = device
        shapes = {
            "obs": (obs_dim,),
            "action": (act_dim,),
            "reward": (),
            "next_obs": (obs_dim,),
            "terminated": (),
        }
        self.fields = {
            k: torch.zeros((capacity, *s), dtype=torch.float32, device=device) for k, s in shapes.items()
        }
        # Per-row flags in one tensor (one write per add).
        self.flags = torch.zeros((capacity, 3), dtype=torch.bool, device=device)
        self.truncated, self.valid, self.link = self.flags.unbind(1)
        self.host = self._numpy_views()

    def _numpy_views(self) -> dict[str, np.ndarray] | None:
        """NumPy views of the fields and flags on the CPU (None on other devices)."""
        if self.device.type != "cpu":
            return None
        return {k: v.numpy() for k, v in (*self.fields.items(), ("flags", self.flags))}

    def __getstate__(self) -> dict[str, Any]:
        """A copy (``copy.deepcopy``, pickle) gets views of its own tensors, not of these."""
        return {k: v for k, v in self.__dict__.items() if k != "host"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.host = self._numpy_views()

    def write(
        self,
        rows: np.ndarray,
        first: int,
        values: dict[str, Any],
        dropped: np.ndarray | None,
        flags: np.ndarray,
    ) -> None:
        """Write ``flags`` at ``rows`` and each field's ``values`` (NumPy or torch, any dtype,
        leading dim ``len(rows) - first``) at ``rows[first:]``, as float32; the ``dropped``
        rows (their data may be NaN) are stored as zeros, the caller's arrays left as they are."""
        if self.host is None:
            self._write_on_device(rows, first, values, dropped, flags)
            return
        n = len(rows) - first
        for key, value in values.items():
            if torch.is_tensor(value):  # any dtype (bf16 has no NumPy twin); np.array copies
                # .numpy(): NumPy 2.4 deprecates np.array(tensor) (Tensor.__array__ takes no copy=)
                value = value.detach().to("cpu", torch.float32).numpy()
            src = np.array(value, dtype=np.float32).reshape(n, *self.fields[key].shape[1:])
            if dropped is not None:
                src[dropped] = 0.0
            self.host[key][rows[first:]] = src
        self.host["flags"][rows] = flags

    def _write_on_device(
        self,
        rows: np.ndarray,
        first: int,
        values: dict[str, Any],
        dropped: np.ndarray | None,
        flags: np.ndarray,
    ) -> None:
        """``write`` off the CPU, through ``index_copy_``."""
        n = len(rows) - first
        flag_idx = torch.as_tensor(rows, device=self.device)
        idx = flag_idx[first:]
        mask = None if dropped is None else torch.as_tensor(dropped, device=self.device)
        for key, value in values.items():
            src = torch.as_tensor(value if torch.is_tensor(value) else np.asarray(value))
            src = src.to(self.device, torch.float32).reshape(n, *self.fields[key].shape[1:])
            if mask is not None:
                src = src.masked_fill(mask.view(n, *([1] * (src.dim() - 1))), 0.0)
            self.fields[key].index_copy_(0, idx, src)
        self.flags.index_copy_(0, flag_idx, torch.from_numpy(flags).to(self.device))

    def state(self, size: int) -> dict[str, torch.Tensor]:
        """Copies on the CPU of the first ``size`` rows: the fields, ``truncated`` and ``valid``
        (the links follow from them)."""
        data = {k: v[:size].cpu().clone() for k, v in self.fields.items()}
        data["truncated"] = self.truncated[:size].cpu().clone()
        data["valid"] = self.valid[:size].cpu().clone()
        return data

    def load(self, data: dict[str, torch.Tensor], size: int) -> None:
        """Restore ``state(size)`` into the first ``size`` rows; every flag is cleared first (the
        links are the caller's to rebuild). Data without flags (written before they existed)
        restores as all valid, none truncated."""
        for k in FIELDS:
            self.fields[k][:size] = data[k].to(self.device)
        self.flags.zero_()
        self.truncated[:size] = data["truncated"].to(self.device) if "truncated" in data else False
        self.valid[:size] = data["valid"].to(self.device) if "valid" in data else True
