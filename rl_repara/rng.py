"""The process-wide random generators: seeding, and their state for exact resume."""

from __future__ import annotations

import hashlib
import random
import warnings
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "global_rng_state", "set_global_rng_state", "restore_generator"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def global_rng_state() -> dict[str, Any]:
    """The state of every generator ``seed_everything`` seeds."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore ``global_rng_state``'s output (the CUDA part only where CUDA is available)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore_generator(generator: torch.Generator, saved: torch.Tensor, what: str) -> None:
    """Set ``generator`` to a saved state. A state saved on another device type (a CUDA run
    resumed on CPU, or the reverse) cannot be set: the generator is then reseeded from a hash
    of it, with a warning that ``what`` will differ from an uninterrupted run."""
    if saved.numel() == generator.get_state().numel():
        generator.set_state(saved)
        return
    warnings.warn(
        f"the {what} RNG was saved on another device type than {generator.device}; it is "
        "reseeded from the saved state, so this resume draws other values than an "
        "uninterrupted run would.",
        stacklevel=3,
    )
    digest = hashlib.sha256(saved.cpu().numpy().tobytes()).digest()
    generator.manual_seed(int.from_bytes(digest[:8], "little"))
