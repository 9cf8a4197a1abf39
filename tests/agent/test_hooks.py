"""Post-step hooks (``agent/hooks.py``, ``parts.POST_STEP_HOOKS``): the weight projection keeps
every linear weight at unit norm per output unit after each step and is idempotent; a registered
hook runs after every optimizer step of its group, eager and compiled alike."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from rl_repara import SAC, Batch, SACConfig, TanhGaussianPolicy
from rl_repara.agent import parts
from rl_repara.nn.layers import EnsembleLinear


def _batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(16, 3, generator=g), torch.rand(16, 2, generator=g) * 2 - 1,
                 torch.randn(16, generator=g), torch.randn(16, 3, generator=g), torch.zeros(16))  # fmt: skip


def _row_norms(module: nn.Module) -> list[torch.Tensor]:
    """Each linear layer's weight norms over its inputs, one per output unit."""
    out = []
    for m in module.modules():
        if isinstance(m, EnsembleLinear):
            out.append(m.weight.norm(dim=1))
        elif isinstance(m, nn.Linear):
            out.append(m.weight.norm(dim=1))
    return out


def test_unit_norm_weights_holds_after_each_step_and_starts_the_target_from_the_critics():
    cfg = SACConfig(
        hidden_sizes=[16, 16], batch_size=16, policy_delay=2, post_step_hooks=["unit_norm_weights"]
    )
    torch.manual_seed(0)
    sac = SAC(TanhGaussianPolicy(3, 2), cfg)
    for a, b in zip(sac.critics.state_dict().values(), sac.target_critics.state_dict().values()):
        assert torch.equal(a, b)
    for step in range(3):
        sac.update(_batch(step))
        for norms in _row_norms(sac.critics) + _row_norms(sac.policy):
            torch.testing.assert_close(norms, torch.ones_like(norms))
    before = copy.deepcopy(sac.nets.state_dict())
    with torch.no_grad():
        for hook in sac.post_step_hooks:  # a second projection changes nothing
            hook(sac.nets, "critics")
            hook(sac.nets, "policy")
    for key, value in sac.nets.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=1e-6, atol=1e-7)


@pytest.fixture
def counting_hook():
    """A hook that counts, in tensors (so a compiled graph counts too), the steps of each group."""
    counts: dict[str, torch.Tensor] = {}

    def make(config, nets):
        counts.update(critics=torch.zeros((), dtype=torch.long), policy=torch.zeros((), dtype=torch.long))

        def hook(nets, group):
            counts[group].add_(1)

        return hook

    parts.POST_STEP_HOOKS["count"] = make
    yield counts
    del parts.POST_STEP_HOOKS["count"]


@pytest.mark.parametrize("compile", [False, True])
def test_a_registered_hook_runs_after_every_step_of_its_group(counting_hook, fresh_dynamo, compile):
    cfg = SACConfig(
        hidden_sizes=[8], batch_size=16, policy_delay=2, post_step_hooks=["count"], compile=compile
    )
    sac = SAC(TanhGaussianPolicy(3, 2), cfg)
    for step in range(4):
        sac.update(_batch(step))
    assert int(counting_hook["critics"]) == 4 and int(counting_hook["policy"]) == 2
