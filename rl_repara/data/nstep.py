"""n-step windows over the replay buffer's env streams: which rows link, and the walk along them.

Rows ``i`` and ``i + num_envs`` (mod capacity) of the buffer are one env's consecutive steps.
Row ``i`` *links* to that next row when an n-step window may go on from it: ``i`` neither ended
its episode (terminated or truncated) nor is invalid, and the next row is valid. The newest
rows (just behind the write head) link nowhere, so no window passes the head into older data.

A window from a start row ``t`` takes steps ``k = 0 … n − 1`` while the links hold::

    reward   = Σ_{k < K} γ^k · r_{t+k}        K = steps taken, 1 ≤ K ≤ n
    next_obs = next_obs of the last step taken, terminated likewise
    discount = γ^K · (1 − terminated)         so the target is reward + discount · soft_next
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["Newest", "host_bool", "add_flags", "stored_links", "walk_constants", "n_step_walk"]

# The newest rows' (truncated, valid, may go on) on the host: the next add links them.
Newest = tuple[np.ndarray, np.ndarray, np.ndarray]


def host_bool(value: Any, n: int, default: bool) -> np.ndarray:
    """A per-row flag (NumPy or torch, bool or 0/1; None: ``default`` everywhere) as a new
    host NumPy bool array of ``[n]``."""
    if value is None:
        return np.full(n, default)
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    value = np.asarray(value).reshape(n)
    return value.copy() if value.dtype == np.bool_ else value != 0


def add_flags(
    truncated: np.ndarray,
    valid: np.ndarray,
    terminated: np.ndarray,
    newest: Newest,
    linked: bool,
    num_envs: int,
) -> tuple[np.ndarray, Newest]:
    """The ``(truncated, valid, link)`` flags ``[first + n, 3]`` of ``n`` rows being added (whole
    vector steps, env order), and the new ``newest``.

    When ``linked`` (the buffer holds rows this add does not overwrite), the first
    ``first = num_envs`` flag rows are those of the newest rows before the add, which now link
    into the first added rows; otherwise ``first = 0``. A row may go on if it is valid and
    neither terminated nor truncated; it links if it may go on and its env's next row is valid.
    """
    n = len(valid)
    cont = valid & ~(truncated | terminated)  # may go on
    first = num_envs if linked else 0
    flags = np.zeros((first + n, 3), dtype=bool)
    flags[first:, 0], flags[first:, 1] = truncated, valid
    flags[first : first + n - num_envs, 2] = cont[: n - num_envs] & valid[num_envs:]
    if linked:
        prev_trunc, prev_valid, prev_cont = newest
        flags[:first, 0], flags[:first, 1] = prev_trunc, prev_valid
        flags[:first, 2] = prev_cont & valid[:num_envs]
    return flags, (truncated[-num_envs:], valid[-num_envs:], cont[-num_envs:])


def stored_links(
    terminated: torch.Tensor, truncated: torch.Tensor, valid: torch.Tensor, size: int, num_envs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(link, may_go_on)`` of every row of stored flags ``[capacity]`` (rows from ``size`` on
    are unwritten and go nowhere), by the rule ``add_flags`` applies; the caller unlinks the
    newest rows."""
    cont = (terminated == 0) & ~truncated & valid
    cont[size:] = False
    return cont & valid.roll(-num_envs), cont


def walk_constants(
    n_step: int, gamma: float, num_envs: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The row offsets ``k · num_envs`` for ``k < n_step`` and the powers ``γ^k`` for
    ``k ≤ n_step`` (float32 of the float64 power)."""
    steps = torch.arange(n_step + 1, dtype=torch.float64)
    offsets = torch.arange(n_step, device=device) * num_envs
    return offsets, (gamma**steps).to(device, torch.float32)


def n_step_walk(
    idx: torch.Tensor,
    reward: torch.Tensor,
    link: torch.Tensor,
    constants: tuple[torch.Tensor, torch.Tensor],
    num_envs: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The windows from start rows ``idx [B]``: ``(Σ γ^k r_{t+k}, last row taken, γ^K)``, each
    ``[B]``, for rewards and links ``[capacity]`` and ``constants = walk_constants(...)``."""
    offsets, powers = constants
    n_step = len(offsets)
    walk = (idx[:, None] + offsets) % len(reward)  # [B, n]: the start's env stream
    # Steps taken: the first, then one more for each link followed without a break.
    num_taken = 1 + link[walk[:, :-1]].cumprod(dim=1).sum(dim=1)
    taken = offsets < num_taken[:, None] * num_envs
    total = torch.where(taken, powers[:n_step] * reward[walk], 0.0).sum(dim=1)
    last = walk.gather(1, (num_taken - 1)[:, None]).squeeze(1)
    return total, last, powers[num_taken]
