"""``ReplayBuffer``: a circular store of transitions in preallocated tensors, one stream per env,
with n-step returns computed when a batch is sampled (the windows: ``nstep``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from rl_repara.data.nstep import Newest, add_flags, host_bool, n_step_walk, stored_links, walk_constants
from rl_repara.data.storage import FIELDS, Storage
from rl_repara.rng import restore_generator

__all__ = ["Batch", "ReplayBuffer"]


class Batch(NamedTuple):
    """A batch of transitions: ``obs [B, obs_dim]``, ``action [B, act_dim]``, ``reward [B]``,
    ``next_obs [B, obs_dim]`` and ``terminated [B]`` (1.0 where the episode truly ended, so the
    target does not bootstrap; 0.0 on time-limit truncation, which does).

    From ``ReplayBuffer.sample(B, n_step, gamma)``: ``reward`` is the n-step discounted sum,
    ``next_obs``/``terminated`` belong to the last step taken and ``discount [B]`` is
    ``gamma ** steps_taken * (1 - terminated)``, so the critic target is
    ``reward + discount * soft_next``. ``discount`` is None in a batch built by hand from the
    first five fields."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    discount: torch.Tensor | None = None


class ReplayBuffer:
    """Fixed-capacity circular buffer on ``device``; the oldest transitions are overwritten.

    Layout: ``num_envs`` streams, one per env. Each ``add`` is one vector step (or several),
    rows in env order, written at the flat index ``pos``; the storage is a flat
    ``[capacity, ...]`` tensor per field, i.e. ``[capacity // num_envs, num_envs]`` flattened
    row-major, so the next transition of the env at flat index ``i`` is at
    ``(i + num_envs) % capacity``. A ``capacity`` that is not a multiple of ``num_envs`` is
    rounded down to one (``self.capacity`` is that number); ``capacity < num_envs`` is an error.

    ``sample`` draws start transitions uniformly with replacement among the valid stored ones,
    from the buffer's own ``torch.Generator`` (seeded by ``seed``), so sampling is reproducible
    and independent of the global RNG; ``state_dict`` holds the stored data and flags, the write
    position and that generator's state, which is what an exact resume needs.
    """

    @staticmethod
    def bytes_needed(capacity: int, obs_dim: int, act_dim: int) -> int:
        """Bytes the buffer allocates: per transition ``obs``, ``next_obs``, ``action``,
        ``reward`` and ``terminated`` as float32, and three bool flags."""
        return Storage.bytes_needed(capacity, obs_dim, act_dim)

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        num_envs: int = 1,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer capacity must be >= 1; got {capacity}.")
        if num_envs < 1:
            raise ValueError(f"ReplayBuffer num_envs must be >= 1; got {num_envs}.")
        if capacity < num_envs:
            raise ValueError(
                f"ReplayBuffer capacity ({capacity}) must be >= num_envs ({num_envs}): it holds "
                "whole vector steps."
            )
        self.num_envs = int(num_envs)
        self.capacity = int(capacity) // self.num_envs * self.num_envs
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device)
        # The rows; the link flag of row i says an n-step walk goes on to row i + num_envs.
        self._store = Storage(self.capacity, obs_dim, act_dim, self.device)
        self._data = self._store.fields
        self._truncated, self._valid, self._link = self._store.truncated, self._store.valid, self._store.link
        # The newest rows' (truncated, valid, may-go-on) on the host: the next add links them.
        none = np.zeros(self.num_envs, dtype=bool)
        self._newest: Newest = (none, none, none)
        self._walk_cache: tuple[Any, torch.Tensor, torch.Tensor] = (None, torch.empty(0), torch.empty(0))
        # A host copy of the valid flags: the count of valid rows is kept without reading the
        # device, and sampling takes the plain path when every stored row is valid.
        self._valid_host = np.zeros(self.capacity, dtype=bool)
        self._num_valid = 0
        self.pos, self.size = 0, 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        """Stored transitions, invalid ones included."""
        return self.size

    @property
    def num_valid(self) -> int:
        """Stored transitions that can be sampled."""
        return self._num_valid

    def add(
        self,
        obs: Any,
        action: Any,
        reward: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any = None,
        valid: Any = None,
    ) -> None:
        """Store ``n`` transitions, each argument with a leading dim ``n`` (NumPy or torch), ``n``
        a multiple of ``num_envs``: whole vector steps, rows in env order.

        ``truncated`` (default all False) marks a time-limit end: the episode ended there but
        the target bootstraps. ``valid`` (default all True) False marks a row that is never
        sampled (a dropped non-finite transition; its data is stored as zeros) and that also
        ends every n-step window reaching it.
        """
        n = len(reward)
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}.")
        if n % self.num_envs:
            raise ValueError(
                f"cannot add {n} transitions to a buffer of num_envs {self.num_envs}: add whole "
                "vector steps (one row per env, in env order) and mark dropped rows with valid."
            )
        valid_host = host_bool(valid, n, True)
        # Flags (truncated, valid, link) of these rows, and again of the newest rows before
        # them (unless this add overwrites those), which now link into these.
        linked = 0 < self.size and n < self.capacity
        flags, newest = add_flags(
            host_bool(truncated, n, False),
            valid_host,
            host_bool(terminated, n, False),
            self._newest,
            linked,
            self.num_envs,
        )
        first = len(flags) - n
        rows = np.arange(self.pos - first, self.pos + n) % self.capacity
        values = dict(zip(FIELDS, (obs, action, reward, next_obs, terminated)))
        dropped = None if valid_host.all() else ~valid_host  # their data may be NaN: store zeros
        self._store.write(rows, first, values, dropped, flags)
        self._newest = newest
        host_idx = rows[first:]
        overwritten = np.count_nonzero(self._valid_host[host_idx])
        self._num_valid += int(np.count_nonzero(valid_host)) - int(overwritten)
        self._valid_host[host_idx] = valid_host
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def end_streams(self) -> None:
        """The episodes of the newest rows will not go on (a resume that had to start new
        episodes): those rows are marked truncated, so no n-step window runs from them into the
        next ``add``'s rows (another episode); a window stops there and bootstraps from their
        own ``next_obs``. The mark is stored, so it survives ``state_dict``."""
        if self.size == 0:
            return
        trunc, valid, go_on = self._newest
        self._truncated[self._newest_rows()] = torch.as_tensor(trunc | go_on, device=self.device)
        self._newest = (trunc | go_on, valid, np.zeros(self.num_envs, dtype=bool))

    def sample(self, batch_size: int, n_step: int = 1, gamma: float = 0.99) -> Batch:
        """``batch_size`` start transitions drawn uniformly among the valid ones, with
        replacement, each with its ``n_step`` return.

        From a start ``t`` the walk follows that env's stream for ``k = 0 … n_step − 1``:
        ``reward = Σ gamma^k r_{t+k}``; it stops after a step that is terminated or truncated,
        and before a step that is invalid or not written yet (it never passes the write head
        into older data). ``next_obs``/``terminated`` are those of the last step taken and
        ``discount = gamma^steps_taken · (1 − terminated)``; with ``n_step=1`` the batch is the
        stored transition and ``discount = gamma · (1 − terminated)``.
        """
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1; got {n_step}.")
        if self._num_valid == 0:
            raise RuntimeError(
                "cannot sample from an empty ReplayBuffer (or one without valid transitions); "
                "add transitions first."
            )
        idx = torch.randint(0, self.size, (batch_size,), device=self.device, generator=self.generator)
        if self._num_valid < self.size:
            idx = self._redraw_invalid(idx)
        host = self._store.host
        if n_step == 1 and host is not None:  # the hot path, on the CPU: NumPy takes
            rows = idx.numpy()
            obs, action, reward, next_obs, term = (host[k][rows] for k in FIELDS)
            fields = (obs, action, reward, next_obs, term, np.float32(gamma) * (1.0 - term))
            return Batch(*(torch.from_numpy(x) for x in fields))
        if n_step == 1:  # index_select is cheaper than indexing with idx
            obs, action, reward, next_obs, terminated = (self._data[k].index_select(0, idx) for k in FIELDS)
            return Batch(obs, action, reward, next_obs, terminated, gamma * (1.0 - terminated))
        return self._n_step_batch(idx, n_step, gamma)  # nstep: the windows

    def _redraw_invalid(self, idx: torch.Tensor) -> torch.Tensor:
        """Rejection sampling: every draw that fell on an invalid row is drawn again (from the
        same generator), which leaves the valid rows uniformly likely."""
        while True:
            bad = ~self._valid[idx]
            n_bad = int(bad.sum())
            if n_bad == 0:
                return idx
            redraw = torch.randint(0, self.size, (n_bad,), device=self.device, generator=self.generator)
            idx = idx.masked_scatter(bad, redraw)

    def _n_step_batch(self, idx: torch.Tensor, n_step: int, gamma: float) -> Batch:
        """The start rows ``idx`` with their n-step windows (``nstep.n_step_walk``); the walk's
        constants are made once per ``(n_step, gamma)``."""
        data = self._data
        if self._walk_cache[0] != (n_step, gamma):
            self._walk_cache = ((n_step, gamma), *walk_constants(n_step, gamma, self.num_envs, self.device))
        constants = self._walk_cache[1], self._walk_cache[2]
        reward, last, gamma_k = n_step_walk(idx, data["reward"], self._link, constants, self.num_envs)
        terminated = data["terminated"].index_select(0, last)
        return Batch(
            data["obs"].index_select(0, idx),
            data["action"].index_select(0, idx),
            reward,
            data["next_obs"].index_select(0, last),
            terminated,
            gamma_k * (1.0 - terminated),
        )

    def _newest_rows(self) -> torch.Tensor:
        """The rows of the last vector step written (one per env, just behind the write head)."""
        return ((self.pos - self.num_envs + torch.arange(self.num_envs)) % self.capacity).to(self.device)

    def _rebuild_links(self) -> None:
        """``_link`` and ``_newest`` from the stored data, flags and write position."""
        link, cont = stored_links(
            self._data["terminated"], self._truncated, self._valid, self.size, self.num_envs
        )
        self._link.copy_(link)
        newest = self._newest_rows()
        self._link[newest] = False
        trunc, valid, go_on = (x[newest].cpu().numpy() for x in (self._truncated, self._valid, cont))
        self._newest = (trunc, valid, go_on)

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions and flags (only the filled part), layout, write position and
        RNG state."""
        return {
            "capacity": self.capacity,
            "num_envs": self.num_envs,
            "pos": self.pos,
            "size": self.size,
            "data": self._store.state(self.size),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (same capacity and num_envs), generator state
        included. A state without flags (written before they existed) restores as all valid,
        none truncated."""
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"checkpoint buffer capacity {state['capacity']} != this buffer's {self.capacity}."
            )
        num_envs = state.get("num_envs", 1)
        if num_envs != self.num_envs:
            raise ValueError(f"checkpoint buffer num_envs {num_envs} != this buffer's {self.num_envs}.")
        size = state["size"]
        self._store.load(state["data"], size)
        self._valid_host[:] = self._valid.cpu().numpy()
        self._num_valid = int(self._valid_host.sum())
        self.pos, self.size = state["pos"], size
        self._rebuild_links()
        restore_generator(self.generator, state["generator"], "replay buffer's sampling")
