"""Whether the replay buffer fits in memory, checked before it is allocated."""

from __future__ import annotations

import os

import torch

from .errors import ConfigError

__all__ = ["available_bytes", "check_buffer_fits", "format_bytes"]

# The share of the available memory the buffer may take; the rest is for the networks, the
# envs, and the checkpoint written from it.
BUFFER_SHARE = 0.9


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest unit that keeps a number >= 1 (``'110.6 GB'``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def available_bytes(device: torch.device) -> int | None:
    """Memory that can be allocated now on ``device``, or None when it cannot be told.

    CUDA: the free memory the driver reports. Host: ``MemAvailable`` from ``/proc/meminfo``
    (Linux: free memory plus what the page cache can give back), else the free pages.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_buffer_fits(needed: int, capacity: int, device: torch.device, available: int | None = None) -> None:
    """Raise ``ConfigError`` when a replay buffer of ``needed`` bytes (``capacity``
    transitions) would not fit in ``BUFFER_SHARE`` of the memory available on ``device``."""
    available = available_bytes(device) if available is None else available
    if available is None or needed <= BUFFER_SHARE * available:
        return
    fits = int(capacity * BUFFER_SHARE * available / needed)
    raise ConfigError(
        f"the replay buffer needs {format_bytes(needed)} ({capacity:,} transitions) but "
        f"{format_bytes(available)} of {device.type} memory is available; lower "
        f"agent.buffer_size (at most about {fits:,} fits)."
    )
