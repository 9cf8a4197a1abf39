"""Whether the replay buffer fits in memory, checked before it is allocated."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rl_repara.errors import ConfigError

__all__ = ["available_bytes", "host_available", "check_buffer_fits", "format_bytes"]

# The share of the available memory a run may plan to use; the rest is for the networks and
# the envs.
USABLE_SHARE = 0.9


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest unit that keeps a number >= 1 (``'110.6 GB'``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def _cgroup_room() -> int | None:
    """Bytes this process's cgroup (a container, a SLURM job's ``--mem``) may still take, or
    None without a limit: cgroup v2 ``memory.max − memory.current``, else v1's files."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # no limit (v1 writes a huge number)
            return None
        return max(int(limit) - usage, 0)
    return None


def host_available() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` (free memory plus what the page cache can give
    back), else the free pages; the cgroup's room when that is less."""
    found = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except OSError:
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    return found if room is None else min(found, room)


def available_bytes(device: torch.device) -> int | None:
    """Memory that can be allocated now on ``device`` (CUDA: the driver's free memory; host:
    see ``host_available``), or None when it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return host_available() if device.type == "cpu" else None


def check_buffer_fits(
    needed: int,
    capacity: int,
    device: torch.device,
    host_free: int | None = None,
    device_free: int | None = None,
) -> None:
    """Raise ``ConfigError`` when a replay buffer of ``needed`` bytes (``capacity``
    transitions) on ``device`` does not fit in ``USABLE_SHARE`` of the memory available.

    A checkpoint copies the buffer's filled part to host memory before writing it, so the host
    needs room for the buffer twice when the buffer lives there, and once more when it lives
    on a GPU. ``host_free`` / ``device_free`` override what is measured."""
    host_free = host_available() if host_free is None else host_free
    if device.type == "cpu":
        _require(2 * needed, host_free, "host", capacity, " (the buffer, and its copy in a checkpoint)")
        return
    device_free = available_bytes(device) if device_free is None else device_free
    _require(needed, device_free, device.type, capacity, "")
    _require(needed, host_free, "host", capacity, " (a checkpoint's copy of the buffer)")


def _require(needed: int, free: int | None, where: str, capacity: int, why: str) -> None:
    if free is None or needed <= USABLE_SHARE * free:
        return
    fits = int(capacity * USABLE_SHARE * free / needed)
    raise ConfigError(
        f"the replay buffer needs {format_bytes(needed)}{why} for {capacity:,} transitions "
        f"but {format_bytes(free)} of {where} memory is available; lower agent.buffer_size "
        f"(at most about {fits:,} fits)."
    )
