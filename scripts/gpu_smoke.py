"""The CUDA path, end to end: every SAC-family preset trains on the GPU through ``train()``, and
SAC's update rate with and without compile + CUDA graphs, on one env.

    python scripts/gpu_smoke.py --env HalfCheetah-v5 --out gpu.jsonl

Each run: ``learning_starts`` random steps, then ``--learn`` env steps with updates; the line
printed per run holds the env steps per second of the learning phase (from TensorBoard's
charts/SPS), the update count and the final losses, so a reader sees the path ran and what it
cost. No learning claim: the budgets are far too small for one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig, train
from rl_repara.training.config import LogConfig

PRESETS = {
    "sac": {},
    "sac-compile-cudagraphs": {"compile": True, "cudagraphs": True},
    "crossq": {"target_network": False, "critic_norm": "batchrenorm", "actor_norm": "batchrenorm",
               "policy_delay": 3, "adam_beta1": 0.5, "lr": 1e-3, "critic_hidden_sizes": [2048, 2048]},
    "tqc": {"num_critics": 5, "num_quantiles": 25, "drop_quantiles": 2, "actor_q": "mean",
            "critic_hidden_sizes": [512, 512, 512]},
    "droq": {"critic_dropout": 0.01, "critic_norm": "layer", "utd": 20, "policy_delay": 20,
             "actor_q": "mean"},
    "redq": {"num_critics": 10, "critic_subset": 2, "utd": 20, "policy_delay": 20, "actor_q": "mean"},
    "sac-nstep3-pink": {"n_step": 3, "noise_beta": 1.0},
}  # fmt: skip


def _sps(run_dir: Path) -> float | None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    values = [e.value for e in acc.Scalars("charts/SPS")] if "charts/SPS" in acc.Tags()["scalars"] else []
    return values[-1] if values else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--learn", type=int, default=1000, help="env steps with updates after the random ones")
    p.add_argument("--presets", nargs="*", default=list(PRESETS))
    p.add_argument("--out", default="gpu.jsonl")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, {gpu}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, open(args.out, "w") as out:
        for name in args.presets:
            total = args.learning_starts + args.learn
            agent = SACConfig(learning_starts=args.learning_starts, **PRESETS[name])
            cfg = TrainConfig(
                env=EnvConfig(id=args.env), seed=0, total_steps=total, device=args.device,
                run_dir=f"{tmp}/{name}", agent=agent, eval=EvalConfig(every_steps=0),
                log=LogConfig(progress="none", every_steps=args.learn // 2),
            )  # fmt: skip
            start = time.perf_counter()
            try:
                result = train(cfg)
                line = {
                    "preset": name,
                    "ok": True,
                    "steps": result.global_step,
                    "learning_sps": _sps(Path(cfg.run_dir)),
                    "wall_s": round(time.perf_counter() - start, 1),
                }
            except Exception as exc:  # report and go on to the next preset
                line = {"preset": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
            print(json.dumps(line), flush=True)
            out.write(json.dumps(line) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
