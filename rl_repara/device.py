"""Choosing the torch device a run asks for, with a clear error for one it cannot have, and
whether that device does bf16 matmuls in hardware."""

from __future__ import annotations

import platform
from functools import lru_cache
from typing import Optional

import torch

from rl_repara.errors import ConfigError

__all__ = ["resolve_device", "bf16_supported", "cpu_flags", "cpu_name"]

# /proc/cpuinfo flags of CPUs with bf16 dot products: x86 AVX512_BF16 or AMX-BF16, Arm's BF16
_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; a ``ConfigError`` for an unusable device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a valid device; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={name} was asked for, but this torch sees no CUDA GPU "
                f"(torch {torch.__version__}). Use device=cpu or device=auto."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: only {torch.cuda.device_count()} CUDA device(s) visible.")
    return device


@lru_cache(maxsize=1)
def cpu_flags() -> Optional[frozenset[str]]:
    """The CPU's feature flags as Linux lists them (``flags`` on x86, ``Features`` on Arm), or
    None where ``/proc/cpuinfo`` cannot be read (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        return None
    return None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_supported(device: torch.device) -> Optional[bool]:
    """Whether ``device`` runs bf16 matmuls in hardware: True, False, or None when unknown.

    A CUDA device asks torch. A CPU needs AVX512_BF16 or AMX-BF16 (x86) or BF16 (Arm) in its
    flags: without them oneDNN emulates bf16, and a bf16 GEMM runs ~18× slower than fp32 (about
    2 GFLOP/s against 36 at 256-wide shapes on an AVX2-only EPYC). None where the flags cannot
    be read. ``torch.backends.cpu.get_cpu_capability()`` is not enough: it says ``AVX512`` for
    AVX-512 CPUs with and without AVX512_BF16.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return None
    flags = cpu_flags()
    return None if flags is None else bool(flags & _BF16_CPU_FLAGS)
