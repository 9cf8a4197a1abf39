"""``ReplayBuffer``: a circular store of transitions in preallocated tensors."""

from __future__ import annotations

import hashlib
import warnings
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = ["Batch", "ReplayBuffer"]

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class Batch(NamedTuple):
    """A batch of transitions: ``obs [B, obs_dim]``, ``action [B, act_dim]``, ``reward [B]``,
    ``next_obs [B, obs_dim]`` and ``terminated [B]`` (1.0 where the episode truly ended, so the
    target does not bootstrap; 0.0 on time-limit truncation, which does)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """Fixed-capacity circular buffer on ``device``; the oldest transitions are overwritten.

    ``sample`` draws indices uniformly with replacement from the buffer's own
    ``torch.Generator`` (seeded by ``seed``), so sampling is reproducible and independent of
    the global RNG; ``state_dict`` holds the stored data, the write position and that
    generator's state, which is what an exact resume needs.
    """

    def __init__(
        self, capacity: int, obs_dim: int, act_dim: int, device: str | torch.device = "cpu", seed: int = 0
    ) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer capacity must be >= 1; got {capacity}.")
        self.capacity, self.obs_dim, self.act_dim = int(capacity), obs_dim, act_dim
        self.device = torch.device(device)
        shapes = {
            "obs": (obs_dim,),
            "action": (act_dim,),
            "reward": (),
            "next_obs": (obs_dim,),
            "terminated": (),
        }
        self._data = {
            k: torch.zeros((self.capacity, *s), dtype=torch.float32, device=self.device)
            for k, s in shapes.items()
        }
        self.pos, self.size = 0, 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any) -> None:
        """Store ``n`` transitions, each argument with a leading dim ``n`` (NumPy or torch)."""
        values = dict(zip(_FIELDS, (obs, action, reward, next_obs, terminated)))
        n = len(values["reward"])
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}.")
        idx = (self.pos + torch.arange(n)) % self.capacity
        idx = idx.to(self.device)
        for key, value in values.items():
            src = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
            self._data[key].index_copy_(
                0, idx, src.to(self.device, torch.float32).reshape(n, *self._data[key].shape[1:])
            )
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly, with replacement."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty ReplayBuffer; add transitions first.")
        idx = torch.randint(0, self.size, (batch_size,), device=self.device, generator=self.generator)
        return Batch(*(self._data[k][idx] for k in _FIELDS))

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions (only the filled part), write position and RNG state."""
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": self.size,
            "data": {k: v[: self.size].cpu().clone() for k, v in self._data.items()},
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (same capacity), generator state included."""
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"checkpoint buffer capacity {state['capacity']} != this buffer's {self.capacity}."
            )
        size = state["size"]
        for k in _FIELDS:
            self._data[k][:size] = state["data"][k].to(self.device)
        self.pos, self.size = state["pos"], size
        saved = state["generator"]
        if saved.numel() == self.generator.get_state().numel():
            self.generator.set_state(saved)
        else:  # saved on another device type (a CUDA run resumed on CPU, or the reverse)
            warnings.warn(
                f"the replay buffer's sampling RNG was saved on another device type than "
                f"{self.device}; it is reseeded from the saved state, so this resume samples "
                "other batches than an uninterrupted run would.",
                stacklevel=2,
            )
            digest = hashlib.sha256(saved.cpu().numpy().tobytes()).digest()
            self.generator.manual_seed(int.from_bytes(digest[:8], "little"))
