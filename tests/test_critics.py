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
            linear = nn.Linear(layer.in_dim, layer.out_dim, dtype=layer.weight.dtype)
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


# ------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("hidden", [(), (8,), (8, 8)])
@pytest.mark.parametrize("num_critics", [1, 2, 3])
def test_min_q_action_gradient_equals_autograd_min(hidden, num_critics):
    """With no hidden layer the one layer is first and last: its transpose keeps the action rows."""
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, num_critics, hidden)
    obs, action = inputs(64)
    weights = torch.randn(64)
    q = ensemble.min_q(obs, action)
    assert q.grad_fn.name() == "_MinQBackward"
    (grad,) = torch.autograd.grad((q * weights).sum(), action)
    plain = ensemble(obs, action, detach_params=True).min(dim=0).values
    (grad_ref,) = torch.autograd.grad((plain * weights).sum(), action)
    torch.testing.assert_close(q, plain.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-6)


def test_float64_ensemble_returns_float64_matching_separate_mlps():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN).double()
    obs, action = torch.randn(7, OBS_DIM, dtype=torch.float64), torch.randn(7, ACT_DIM, dtype=torch.float64)
    q = ensemble(obs, action)
    x = torch.cat([obs, action], -1)
    q_ref = torch.stack([net(x).squeeze(-1) for net in separate_mlps(ensemble)])
    assert q_ref.dtype == torch.float64
    torch.testing.assert_close(q, q_ref, rtol=1e-12, atol=1e-12)  # asserts float64 too


def test_bf16_autocast_output_is_float32():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = ensemble(*inputs())
    assert q.dtype == torch.float32


@pytest.mark.parametrize("batch", [(), (5,), (N, 4), (2, N, 3)])
def test_leading_batch_dims_equal_the_flattened_input(batch):
    """``[N, B, dim]`` with N == num_critics is a batch, not one input per critic."""
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = torch.randn(*batch, OBS_DIM), torch.randn(*batch, ACT_DIM, requires_grad=True)
    q = ensemble(obs, action)
    assert q.shape == (N, *batch)
    flat = ensemble(obs.reshape(-1, OBS_DIM), action.reshape(-1, ACT_DIM))
    torch.testing.assert_close(q, flat.reshape(N, *batch))

    q_min = ensemble.min_q(obs, action)
    assert q_min.shape == batch
    (grad,) = torch.autograd.grad(q_min.sum(), action)
    plain = ensemble(obs, action, detach_params=True).min(dim=0).values
    (grad_ref,) = torch.autograd.grad(plain.sum(), action)
    torch.testing.assert_close(q_min, plain.detach())
    torch.testing.assert_close(grad, grad_ref)


def test_rows_of_a_critic_sized_batch_are_independent():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = torch.randn(N, 4, OBS_DIM), torch.randn(N, 4, ACT_DIM)
    q = ensemble(obs, action)
    torch.testing.assert_close(q, torch.stack([ensemble(obs[t], action[t]) for t in range(N)], dim=1))


@pytest.mark.parametrize(
    "obs_shape, act_shape",
    [
        ((7, OBS_DIM), (8, ACT_DIM)),  # different batch sizes
        ((N, 7, OBS_DIM), (7, ACT_DIM)),  # different leading shapes
        ((7, OBS_DIM + 1), (7, ACT_DIM - 1)),  # right total width, wrong split
        ((7, OBS_DIM), (7, ACT_DIM + 1)),
    ],
)
@pytest.mark.parametrize("method", ["forward", "min_q"])
def test_mismatched_shapes_raise(obs_shape, act_shape, method):
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = torch.randn(obs_shape), torch.randn(act_shape, requires_grad=True)
    with pytest.raises(ValueError, match=r"obs \[\*batch, 3\] and action \[\*batch, 2\]"):
        getattr(ensemble, method)(obs, action)
