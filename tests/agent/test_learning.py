"""The SAC family learns: Pendulum-v1 reaches a deterministic eval return >= -200 within 20k env
steps on 3 seeds, for SAC and for every preset of its family.

The RL Zoo's tuned SAC reaches -157 ± 89 at that budget. Each seed runs in its own process
with one torch thread (the fastest layout on a 2-core machine); a run stops as soon as an
evaluation (10 deterministic episodes, every 1000 steps) reaches the threshold. Every preset
but SAC runs at a reduced size here so that CI's 30 runs fit its time limit (fewer updates per
step, fewer or narrower critics, smaller batches; ``REDUCED`` names each change); the published
sizes are what ``conf/agent/*.yaml`` holds, and ``scripts/learning_check.py`` runs them. The
2025-26 presets (XQC, SimbaV2, FlashSAC) run from their preset files with narrower networks,
UTD 1 and γ = 0.99 (Pendulum's episodes last 200 steps; their files' 0.995 is their rule for
1000).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rl_repara.agent.presets import preset_values

THRESHOLD = -200.0
BUDGET = 20_000
EVAL_EVERY = 1_000
SEEDS = [0, 1, 2]

SMALL_UNITS = {
    "critic_arch_kwargs": {"width": 64, "blocks": 1},
    "actor_arch_kwargs": {"width": 64, "blocks": 1},
}
W128 = {"hidden_sizes": [128, 128], "critic_hidden_sizes": [128, 128]}
W128_B128 = {**W128, "batch_size": 128}
# Reduced sizes: (what differs from conf/agent/<name>.yaml)
REDUCED = {
    "sac": {},
    "compile": {"compile": True, **W128},  # agent.compile=true must learn as eager does
    "crossq": {  # critics and actor 128 wide (preset: 512 and 256; paper: 2048 and 256)
        "target_network": False, "critic_norm": "batchrenorm", "actor_norm": "batchrenorm",
        "policy_delay": 3, "adam_beta1": 0.5, **W128,
    },
    "tqc": {  # 2 critics of 128x128, batch 128 (preset: 5 of 512x512x512, batch 256)
        "num_critics": 2, "num_quantiles": 25, "drop_quantiles": 2, "actor_q": "mean", **W128_B128,
    },
    "droq": {  # UTD 5, 128 wide, batch 128 (preset: UTD 20, 256 wide, batch 256)
        "critic_dropout": 0.01, "critic_norm": "layer", "utd": 5, "policy_delay": 5, "actor_q": "mean",
        **W128_B128,
    },
    "redq": {  # 5 critics, UTD 5, 128 wide, batch 128 (preset: 10 critics, UTD 20, 256 wide, batch 256)
        "num_critics": 5, "critic_subset": 2, "utd": 5, "policy_delay": 5, "actor_q": "mean",
        **W128_B128,
    },
    "sac_residual": {  # residual critics 64 wide, 1 block, actor 128 wide (preset: 256 and 256)
        "critic_arch": "residual", "critic_arch_kwargs": {"width": 64, "blocks": 1},
        "hidden_sizes": [128, 128],
    },
    "xqc": {  # critics and actor 2 x 128, UTD 1, batch 128 (preset: 4 x 512 and 4 x 256, UTD 2, 256)
        **preset_values("xqc"), "critic_arch_kwargs": {"hidden_sizes": [128, 128]},
        "hidden_sizes": [128, 128], "utd": 1, "gamma": 0.99, "lr_end": 1e-4, "batch_size": 128,
    },
    "simbav2": {  # critics and actor 64 wide, 1 block, UTD 1, batch 128 (preset: 512 x 2 blocks, 2, 256)
        **preset_values("simbav2"), **SMALL_UNITS, "utd": 1, "gamma": 0.99, "lr_end": 1e-4, "batch_size": 128,
    },
    "flashsac": {  # critics and actor 64 wide, 1 block, batch 128 (preset: 256 x 2 blocks, batch 512)
        **preset_values("flashsac"), **SMALL_UNITS, "batch_size": 128, "lr_end": 5e-4,
    },
}  # fmt: skip


def _train_pendulum(seed: int, run_dir: str, extra_agent: dict) -> tuple[int, float | None, int, str]:
    """``(seed, last eval return, env steps, "wall s / CPU s")`` of one run."""
    import time

    from rl_repara import SACConfig, TrainConfig, train
    from rl_repara.training.config import EvalConfig, LogConfig

    cfg = TrainConfig(
        seed=seed,
        total_steps=BUDGET,
        run_dir=run_dir,
        torch_threads=1,
        agent=SACConfig(**{**extra_agent, "lr": 1e-3, "learning_starts": 1_000}),  # the pendulum preset
        eval=EvalConfig(every_steps=EVAL_EVERY, episodes=10, stop_return=THRESHOLD),
        log=LogConfig(progress="none", every_steps=1_000),
    )
    start, cpu = time.perf_counter(), time.process_time()
    result = train(cfg)
    took = f"{time.perf_counter() - start:.0f} s wall / {time.process_time() - cpu:.0f} s CPU"
    return seed, result.last_eval_return, result.global_step, took


# The runs of the tests selected in this module, longest first (measured on CI), so that the
# two workers stay busy to the end: one pool for all of them, not one per test (a pool of 3
# seeds on 2 workers leaves a core idle while the third seed runs).
LONGEST_FIRST = [
    "xqc", "flashsac", "sac", "crossq", "tqc", "droq", "compile", "sac_residual", "simbav2", "redq",
]  # fmt: skip


def _names_of(item: pytest.Item) -> list[str]:
    """The presets a collected test of this module asserts on."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "name" in callspec.params:
        return [callspec.params["name"]]
    return ["sac", "crossq"] if item.name == "test_sac_and_crossq_learn_and_report_their_steps" else []


@pytest.fixture(scope="module")
def learned(request, tmp_path_factory) -> tuple[Path, dict[str, list[tuple[int, float | None, int, str]]]]:
    """Train every (preset, seed) the selected tests need, 2 processes of 1 thread at a time."""
    here = Path(__file__)
    wanted = {n for item in request.session.items if Path(item.path) == here for n in _names_of(item)}
    root = tmp_path_factory.mktemp("learning")
    names = [n for n in LONGEST_FIRST if n in wanted]
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        futures = {
            (n, s): pool.submit(_train_pendulum, s, str(_run_dir(root, n, s)), REDUCED[n])
            for n in names
            for s in SEEDS
        }
        results = {n: [futures[n, s].result() for s in SEEDS] for n in names}
    for name, runs in results.items():
        for seed, ret, steps, wall in runs:
            print(f"{name} seed {seed}: eval return {ret} at {steps} env steps, {wall}")
    return root, results


def _run_dir(tmp_path: Path, name: str, seed: int) -> Path:
    return tmp_path / f"{name}-s{seed}"


def _evals(run_dir: Path) -> list[tuple[int, float]]:
    """``(env step, eval/mean_return)`` of every evaluation a run logged, in order."""
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars("eval/mean_return")]


def _assert_learned(tmp_path: Path, name: str, results) -> None:
    """Every seed reached THRESHOLD, and the steps it reports are the steps to get there: the
    run stopped at its first evaluation at or above THRESHOLD (all earlier ones were below)."""
    for seed, ret, steps, _ in results:
        assert ret is not None and ret >= THRESHOLD, f"{name} seed {seed}: eval return {ret} < {THRESHOLD}"
        evals = _evals(_run_dir(tmp_path, name, seed))
        first = next((step for step, value in evals if value >= THRESHOLD), None)
        assert first == steps, (
            f"{name} seed {seed}: first eval >= {THRESHOLD} at step {first}, but the run stopped at "
            f"step {steps}; evals: {evals}"
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["compile", "tqc", "droq", "redq", "sac_residual", "xqc", "simbav2", "flashsac"]
)
def test_pendulum_learns_for_three_seeds(learned, name):
    root, results = learned
    _assert_learned(root, name, results[name])


@pytest.mark.slow
def test_sac_and_crossq_learn_and_report_their_steps(learned):
    """Both reach -200 on 3 seeds; the steps each needed are printed side by side. CrossQ is
    not asserted to be faster here: on Pendulum at this size it was not (measured: SAC 4000 /
    4000 / 5000 steps, CrossQ 5000 / 3000 / 6000; docs/benchmarks.md), while on HalfCheetah it
    was far ahead at 10k steps."""
    root, results = learned
    sac, crossq = results["sac"], results["crossq"]
    _assert_learned(root, "sac", sac)
    _assert_learned(root, "crossq", crossq)
    steps = {name: statistics.mean(s for _, _, s, _ in r) for name, r in (("sac", sac), ("crossq", crossq))}
    print(f"mean env steps to -200: {steps}")
