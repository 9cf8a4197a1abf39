"""What ``agent.compile=auto`` picks for a run: the compiled update where it pays off, eager
otherwise. ``train`` asks once, before anything is built, and says which in one line.

Compiling the whole update costs 15-60 s of wall time at the first update on this project's
2-core CPU (more for larger presets, two graphs with a policy delay); it then saves 25-60 % of
every update (``docs/performance.md``, ``scripts/update_cost.py``). With SAC's default nets that
earns the compile time back after roughly 10-20k updates; ``MIN_UPDATES`` asks for a few times
that, so a short run (the README's Pendulum quick start: 19k updates) stays eager and does not
get slower.
"""

from __future__ import annotations

import torch

from rl_repara.agent.config import SACConfig
from rl_repara.agent.requirements import cxx_compiler_found

__all__ = ["MIN_UPDATES", "choose_compile"]

MIN_UPDATES = 50_000


def choose_compile(config: SACConfig, device: torch.device, updates: int) -> tuple[bool, str]:
    """``(compile, why)`` for a run of ``updates`` gradient updates with ``config`` on
    ``device``: ``config.compile`` when it says true or false; for ``auto``, compiled on a CPU
    with a C++ compiler and at least ``MIN_UPDATES`` updates to run, else eager. ``why`` is the
    line a run prints about an ``auto`` choice (empty for an explicit one)."""
    explicit = config.compile_choice()
    if explicit is not None:
        return explicit, ""
    if device.type != "cpu":
        return False, (
            f"agent.compile=auto: eager on {device} (the compiled update is measured on CPU only; "
            "agent.compile=true compiles the losses here)."
        )
    if cxx_compiler_found() is False:
        return False, "agent.compile=auto: eager (no C++ compiler for torch.compile; install g++ to compile)."
    if updates < MIN_UPDATES:
        return False, (
            f"agent.compile=auto: eager ({updates:,} updates to run; compiling pays off from about "
            f"{MIN_UPDATES:,}, or set agent.compile=true)."
        )
    return True, (
        f"agent.compile=auto: compiling the update ({updates:,} updates to run; the first update "
        "takes 15-60 s to compile, agent.compile=false to skip)."
    )
