"""The learning-rate schedule (``lr_schedule``): each update's lr is the formula's, for all three
optimizers, in the eager and the compiled update, and changing it recompiles nothing."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch._dynamo.utils import counters

from rl_repara import SAC, Batch, SACConfig, TanhGaussianPolicy


def _batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(16, 3, generator=g), torch.rand(16, 1, generator=g) * 2 - 1,
                 torch.randn(16, generator=g), torch.randn(16, 3, generator=g), torch.zeros(16))  # fmt: skip


def _lr(kind: str, t: int, total: int, start: float = 1e-3, end: float = 1e-4) -> float:
    f = min(t / total, 1.0)
    if kind == "linear":
        return start + (end - start) * f
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * f))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_each_update_uses_the_scheduled_lr(kind):
    cfg = SACConfig(
        hidden_sizes=[8], batch_size=16, lr=1e-3, lr_end=1e-4, lr_schedule=kind, lr_decay_updates=4
    )
    sac = SAC(TanhGaussianPolicy(3, 1), cfg)
    for t in range(6):
        sac.update(_batch(t))
        for optimizer in sac.optimizers.values():
            assert float(optimizer.param_groups[0]["lr"]) == pytest.approx(_lr(kind, t, 4), rel=1e-6), t


def test_own_steps_clock_decays_the_delayed_actor_and_alpha_on_their_own_steps():
    """``lr_clock=own_steps`` with policy delay 3 (XQC): before update ``n`` (from 1) the
    critics have taken ``n − 1`` steps, the actor and α ``⌊(n − 1)/3⌋``; each optimizer's lr is
    the schedule at its own count, and on the actor's steps that is the one it steps with."""
    cfg = SACConfig(hidden_sizes=[8], batch_size=16, lr=1e-3, lr_end=1e-4, lr_schedule="linear",
                    lr_decay_updates=6, policy_delay=3, lr_clock="own_steps")  # fmt: skip
    sac = SAC(TanhGaussianPolicy(3, 1), cfg)
    for n in range(1, 10):
        sac.update(_batch(n))
        lrs = {k: float(o.param_groups[0]["lr"]) for k, o in sac.optimizers.items()}
        assert lrs["critic_optimizer"] == pytest.approx(_lr("linear", n - 1, 6), rel=1e-6), n
        for name in ("actor_optimizer", "alpha_optimizer"):
            assert lrs[name] == pytest.approx(_lr("linear", (n - 1) // 3, 6), rel=1e-6), (n, name)
        # the step counts the schedule reads are the optimizers' own
        actor_state = sac.actor_optimizer.state[next(iter(sac.policy.parameters()))]
        assert int(actor_state.get("step", 0)) == n // 3


def test_the_compiled_update_follows_the_schedule_in_one_graph(fresh_dynamo):
    cfg = SACConfig(
        hidden_sizes=[8], batch_size=16, lr=1e-3, lr_end=1e-4, lr_schedule="linear", lr_decay_updates=3
    )
    torch.manual_seed(0)
    eager = SAC(TanhGaussianPolicy(3, 1), cfg)
    compiled_cfg = copy.deepcopy(cfg)
    compiled_cfg.compile = True
    torch.manual_seed(0)
    compiled = SAC(TanhGaussianPolicy(3, 1), compiled_cfg)
    counters.clear()
    for t in range(5):
        torch.manual_seed(t)
        eager.update(_batch(t))
        torch.manual_seed(t)
        compiled.update(_batch(t))
    assert counters["stats"]["unique_graphs"] == 1
    for a, b in zip(eager.nets.parameters(), compiled.nets.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
