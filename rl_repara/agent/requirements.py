"""What a learner's config requires of the machine it runs on, checked before anything is built:
CUDA graphs need a CUDA device, bf16 needs bf16 matmul hardware, and ``compile=true`` on a CPU
needs a C++ compiler. Each refusal is a one-line ``ConfigError`` naming the fix."""

from __future__ import annotations

import torch

from rl_repara.agent.config import SACConfig
from rl_repara.device import bf16_supported, cpu_name
from rl_repara.errors import ConfigError

__all__ = [
    "check_requirements",
    "check_cudagraphs",
    "check_precision",
    "check_compile",
    "cxx_compiler_found",
]


def check_requirements(config: SACConfig, device: torch.device) -> None:
    """Every check below, in order (called by ``SAC`` and, before the run dir exists, by
    ``train``)."""
    check_cudagraphs(config, device)
    check_precision(config, device)
    check_compile(config, device)


def check_cudagraphs(config: SACConfig, device: torch.device) -> None:
    """CUDA graphs need a CUDA learner: a ``ConfigError`` (a ``ValueError``) naming the fix."""
    if config.cudagraphs and device.type != "cuda":
        raise ConfigError(
            f"agent.cudagraphs=true needs a CUDA device, but the learner is on {device}. Set "
            "device=cuda, or agent.cudagraphs=false (agent.compile=true works on CPU)."
        )


def check_precision(config: SACConfig, device: torch.device) -> None:
    """``precision=bf16`` needs bf16 matmul hardware (``device.bf16_supported``); without it
    bf16 runs ~18× slower than fp32 (2 against 36 GFLOP/s), so it is refused with a
    ``ConfigError`` naming the fix.
    Where the hardware cannot be told (no ``/proc/cpuinfo``), bf16 is allowed."""
    if config.precision != "bf16" or bf16_supported(device) is not False:
        return
    where = f"this CPU ({cpu_name()})" if device.type == "cpu" else f"device {device}"
    raise ConfigError(
        f"agent.precision=bf16 needs bf16 matmul hardware (a CPU with AVX512_BF16 or AMX-BF16, "
        f"or a GPU with bf16), and {where} has none: bf16 would run about 18x slower than "
        "fp32. Set agent.precision=fp32."
    )


def check_compile(config: SACConfig, device: torch.device) -> None:
    """``compile=true`` on a CPU needs the C++ compiler that Inductor builds its kernels with
    (``g++``, or ``$CXX``). Without one Inductor fails at the first update with a long
    traceback, so the missing compiler is a ``ConfigError`` naming the fix instead.
    (``compile=auto`` needs none: ``compile_choice`` picks eager without one.)"""
    if config.compile_choice() is not True or device.type != "cpu":
        return
    if cxx_compiler_found() is False:
        raise ConfigError(
            "agent.compile=true on a CPU needs a C++ compiler for torch.compile's kernels, and "
            "none was found (looked for $CXX, else g++). Install one (e.g. apt install g++) or "
            "set agent.compile=false."
        )


def cxx_compiler_found() -> bool | None:
    """Whether Inductor finds its C++ compiler; None where this torch moved the functions that
    say (then Inductor says it at the first update)."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        from torch._inductor.exc import InvalidCxxCompiler
    except ImportError:
        return None
    try:
        get_cpp_compiler()
    except InvalidCxxCompiler:
        return False
    return True
