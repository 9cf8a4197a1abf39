"""QEnsemble: N critics in one batched pass compute what N separate MLPs would."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rl_repara import QEnsemble

OBS_DIM, ACT_DIM, N, HIDDEN = 3, 2, 3, (8, 6)


def separate_mlps(ensemble: QEnsemble) -> list[nn.Sequential]:
    """One ``nn.Sequential`` per member, holding a copy of that member's weights."""
    nets = []
    for k in range(ensemble.num_critics):
        layers: list[nn.Module] = []
        for i, layer in enumerate(ensemble.layers):
            linear = nn.Linear(layer.in_dim, layer.out_dim)
            with torch.no_grad():
                linear.weight.copy_(layer.weight[k].T)
                linear.bias.copy_(layer.bias[k, 0])
            layers.append(linear)
            if i < len(ensemble.layers) - 1:
                layers.append(nn.ReLU())
        nets.append(nn.Sequential(*layers))
    return nets


def inputs(batch: int = 7):
    obs = torch.randn(batch, OBS_DIM)
    action = torch.randn(batch, ACT_DIM, requires_grad=True)
    return obs, action


def test_ensemble_equals_separate_mlps_values_and_weight_gradients():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    nets = separate_mlps(ensemble)
    obs, action = inputs()
    q = ensemble(obs, action)
    assert q.shape == (N, 7)
    q_sep = torch.stack([net(torch.cat([obs, action], -1)).squeeze(-1) for net in nets])
    torch.testing.assert_close(q, q_sep, rtol=1e-5, atol=1e-6)

    weights = torch.randn(N, 7)  # a loss that weighs every output differently
    (q * weights).sum().backward()
    (q_sep * weights).sum().backward()
    for k, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for layer, linear in zip(ensemble.layers, linears):
            torch.testing.assert_close(layer.weight.grad[k], linear.weight.grad.T, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(layer.bias.grad[k, 0], linear.bias.grad, rtol=1e-5, atol=1e-6)


def test_members_are_different_functions():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    q = ensemble(*inputs())
    assert not torch.allclose(q[0], q[1])


def test_detach_params_same_values_action_gradient_and_no_weight_gradient():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = inputs()
    q = ensemble(obs, action)
    (grad_action,) = torch.autograd.grad(q.sum(), action)

    q_detached = ensemble(obs, action, detach_params=True)
    torch.testing.assert_close(q_detached, q.detach())
    q_detached.sum().backward()
    torch.testing.assert_close(action.grad, grad_action)
    assert all(p.grad is None for p in ensemble.parameters())


def test_detach_params_without_action_gradient_builds_no_graph():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    q = ensemble(torch.randn(4, OBS_DIM), torch.randn(4, ACT_DIM), detach_params=True)
    assert not q.requires_grad


def test_num_critics_must_be_positive():
    with pytest.raises(ValueError, match="num_critics >= 1"):
        QEnsemble(OBS_DIM, ACT_DIM, 0, HIDDEN)
