"""What one env step of learning costs for each SAC-family preset: the time of the updates it
runs (``utd`` gradient updates on a batch from a filled buffer), on this machine, one process.

    python scripts/update_cost.py --obs-dim 17 --act-dim 6 --threads 1 [--precision bf16] [--compile]
        [--override xqc agent.utd=1 agent.critic_arch_kwargs.hidden_sizes=[256,256]]

Presets are read from ``conf/agent/*.yaml`` (``presets.sac_config``), so the table follows
the files. With ``--compile`` every preset runs with ``agent.compile=true``; its graphs are
compiled in the untimed warm-up, whose wall time is printed too. The env step itself is left
out (it is small next to an update on the MuJoCo tasks).
Wall time and process CPU time are both printed: on a busy machine, with 1 thread, the CPU
time is the steadier of the two.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from rl_repara import SAC, ReplayBuffer, SACConfig, TanhGaussianPolicy
from rl_repara.agent.presets import preset_values, sac_config
from rl_repara.device import cpu_name


def ms_per_env_step(cfg: SACConfig, obs_dim: int, act_dim: int, steps: int) -> tuple[float, float, float]:
    """(wall ms, process CPU ms) of the ``utd`` updates of one env step, batch sampling included,
    and the wall seconds of the untimed warm-up (3 env steps of updates: the compile, if any)."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(obs_dim, act_dim, **cfg.policy_kwargs())
    sac = SAC(policy, cfg)
    buf = ReplayBuffer(20_000, obs_dim, act_dim)
    n = 10_000
    buf.add(np.random.randn(n, obs_dim), np.random.uniform(-1, 1, (n, act_dim)), np.random.randn(n),
            np.random.randn(n, obs_dim), np.zeros(n))  # fmt: skip
    warm = time.perf_counter()
    for _ in range(3 * cfg.utd):
        sac.update_tensors(buf.sample(cfg.batch_size, cfg.n_step, cfg.gamma))
    warm = time.perf_counter() - warm
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps * cfg.utd):
        sac.update_tensors(buf.sample(cfg.batch_size, cfg.n_step, cfg.gamma))
    return (time.perf_counter() - start) / steps * 1e3, (time.process_time() - cpu) / steps * 1e3, warm


def preset_with(name: str, overrides: list[str]) -> dict[str, Any]:
    """Preset ``name``'s values with the CLI's ``agent.KEY=VALUE`` overrides merged in as Hydra
    merges them (OmegaConf: dotted keys, YAML values, a dict merged into the preset's)."""
    dotlist = OmegaConf.from_dotlist([item.removeprefix("agent.") for item in overrides])
    merged = OmegaConf.to_container(OmegaConf.merge(preset_values(name), dotlist))
    assert isinstance(merged, dict)
    return {str(k): v for k, v in merged.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--obs-dim", type=int, default=17)
    p.add_argument("--act-dim", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="env steps timed per preset")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="agent.compile=true for every preset")
    p.add_argument("--presets", nargs="+", default=["sac", "crossq", "tqc", "droq", "redq", "sac_residual"])
    p.add_argument(
        "--override", nargs="+", action="append", default=[], metavar=("PRESET", "KEY=VALUE"),
        help="the CLI's agent overrides for one preset, e.g. --override xqc agent.utd=1 "
        "agent.critic_arch_kwargs.hidden_sizes=[256,256] (repeat for other presets)",
    )  # fmt: skip
    args = p.parse_args()
    overrides = {group[0]: group[1:] for group in args.override}
    torch.set_num_threads(args.threads)
    print(
        f"{cpu_name()}, torch {torch.__version__}, {args.threads} thread(s), {args.precision}"
        f"{', compile' if args.compile else ''}, "
        f"obs {args.obs_dim}, act {args.act_dim}"
    )
    base = None
    for name in args.presets:
        values = preset_with(name, overrides.get(name, []))
        cfg = sac_config(name, **{**values, "precision": args.precision, "compile": args.compile})
        wall, cpu, warm = ms_per_env_step(cfg, args.obs_dim, args.act_dim, args.steps)
        base = base or cpu
        print(
            f"{name:7s} utd {cfg.utd:2d}: {wall:8.1f} ms wall, {cpu:8.1f} ms CPU of updates per env "
            f"step ({cpu / base:5.1f}x SAC, CPU time), warm-up {warm:6.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
