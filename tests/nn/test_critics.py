"""QEnsemble: N critics in one batched pass compute what N separate MLPs would."""

from __future__ import annotations

import pytest
import torch
from support import separate_mlps
from torch import nn

from rl_repara import QEnsemble
from rl_repara.nn.layers import mlp
from rl_repara.nn.norms import BatchRenorm

OBS_DIM, ACT_DIM, N, HIDDEN = 3, 2, 3, (8, 6)


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


# ------------------------------------------------------- norms, dropout, quantile heads
def member_mlp(ensemble: QEnsemble, k: int, **norm_kwargs) -> nn.Sequential:
    """``mlp`` with member k's weights, norm params and statistics: the reference for member k."""
    sizes = [layer.out_dim for layer in ensemble.layers]
    net = mlp(
        ensemble.obs_dim + ensemble.act_dim,
        sizes[:-1],
        sizes[-1],
        norm=ensemble.norm,
        dropout=ensemble.dropout,
        input_norm=ensemble.in_norm is not None,
        **norm_kwargs,
    ).to(ensemble.layers[0].weight.dtype)
    ens_norms = [m for m in (ensemble.in_norm, *ensemble.norms) if m is not None]
    with torch.no_grad():
        for linear, layer in zip([m for m in net if isinstance(m, nn.Linear)], ensemble.layers, strict=True):
            linear.weight.copy_(layer.weight[k].T)
            linear.bias.copy_(layer.bias[k, 0])
        for single, ens in zip([m for m in net if isinstance(m, NORM_TYPES)], ens_norms, strict=True):
            for name, value in single.state_dict().items():
                value.copy_(getattr(ens, name) if name == "steps" else getattr(ens, name)[k, 0])
    return net.train(ensemble.training)


NORM_TYPES = (nn.LayerNorm, BatchRenorm)
CONFIGS = {  # name: QEnsemble kwargs
    "layer": dict(norm="layer"),
    "droq": dict(norm="layer", dropout=0.3),
    "crossq": dict(norm="batchrenorm", input_norm=True, warmup_steps=1, momentum=0.3),
    "tqc-layer": dict(norm="layer", num_quantiles=4),
}


def normed_ensemble(config: str) -> QEnsemble:
    """A float64 ensemble with random norm params (so that members differ everywhere)."""
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN, **CONFIGS[config]).double()
    with torch.no_grad():
        for p in ensemble.parameters():
            if p.dim() == 3 and p.shape[1] == 1 and p is not ensemble.layers[-1].bias:
                p.add_(0.3 * torch.randn_like(p))
    return ensemble


def member_kwargs(config: str) -> dict:
    return {k: v for k, v in CONFIGS[config].items() if k in ("warmup_steps", "momentum")}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_member_k_equals_a_single_mlp_with_its_weights(config):
    """Train mode (deterministic without dropout; batch renorm past its warm-up), then eval mode
    (running statistics, no dropout)."""
    ensemble = normed_ensemble(config)
    obs, action = torch.randn(9, OBS_DIM, dtype=torch.float64), torch.randn(9, ACT_DIM, dtype=torch.float64)
    x = torch.cat([obs, action], -1)
    nets = [member_mlp(ensemble, k, **member_kwargs(config)) for k in range(N)]
    squeeze = ensemble.num_quantiles == 1
    if ensemble.dropout == 0:
        for _ in range(3):
            q_ref = torch.stack([net(x) for net in nets])
            torch.testing.assert_close(ensemble(obs, action), q_ref.squeeze(-1) if squeeze else q_ref)
    ensemble.eval()
    q_ref = torch.stack([net.eval()(x) for net in nets])
    torch.testing.assert_close(ensemble(obs, action), q_ref.squeeze(-1) if squeeze else q_ref)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("config", ["droq", "crossq"])
def test_detach_params_leaves_no_gradient_on_any_critic_parameter(config, train):
    kwargs = {k: v for k, v in CONFIGS[config].items() if k != "warmup_steps"}  # stay in warm-up
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN, **kwargs).train(train)
    obs, action = inputs(16)
    torch.manual_seed(1)  # the same dropout masks in both passes
    (grad_ref,) = torch.autograd.grad(ensemble(obs, action).sum(), action)
    torch.manual_seed(1)
    ensemble(obs, action, detach_params=True).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    torch.testing.assert_close(action.grad, grad_ref)
    names = [name for name, _ in ensemble.named_parameters()]
    assert any("norm" in name for name in names)
    assert all(p.grad is None for p in ensemble.parameters())


def test_min_q_without_the_fast_path_is_the_min_of_the_detached_forward():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN, norm="layer").eval()
    assert not ensemble.is_plain and QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN).is_plain
    obs, action = inputs(16)
    q = ensemble.min_q(obs, action)
    assert q.grad_fn.name() != "_MinQBackward"
    torch.testing.assert_close(q, ensemble(obs, action, detach_params=True).min(0).values)


def test_dropout_masks_differ_across_members_and_eval_mode_has_none():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, (64, 8), dropout=0.5)
    with torch.no_grad():
        for layer in ensemble.layers:  # every member the same function
            layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
            layer.bias.copy_(layer.bias[:1].expand_as(layer.bias))
        ensemble.layers[0].bias.fill_(10.0)  # positive pre-activations: zeros are dropout's
    seen = []
    ensemble.layers[1].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    ensemble(*inputs(32))
    zeros = seen[-1] == 0
    assert 0.3 < zeros.float().mean() < 0.7
    assert not torch.equal(zeros[0], zeros[1]) and not torch.equal(zeros[1], zeros[2])
    q = ensemble.eval()(*inputs(32))
    assert not (seen[-1] == 0).any()
    torch.testing.assert_close(q[0], q[1], rtol=0, atol=0)


def test_a_batch_of_one_in_train_mode_with_batch_renorm_is_a_one_line_error():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN, norm="batchrenorm", input_norm=True)
    for batch in [(1,), ()]:
        obs, action = torch.randn(*batch, OBS_DIM), torch.randn(*batch, ACT_DIM)
        with pytest.raises(ValueError, match="BatchRenorm needs a batch of at least 2 in train mode") as err:
            ensemble(obs, action)
        assert "\n" not in str(err.value)
        assert ensemble.eval()(obs, action).shape == (N, *batch)
        ensemble.train()


def test_state_dict_holds_the_batch_renorm_statistics_and_a_load_restores_them():
    ensemble = normed_ensemble("crossq")
    for _ in range(3):
        ensemble(torch.randn(8, OBS_DIM, dtype=torch.float64), torch.randn(8, ACT_DIM, dtype=torch.float64))
    state = ensemble.state_dict()
    assert {"in_norm.running_mean", "in_norm.steps", "norms.0.running_var", "norms.1.weight"} <= set(state)
    fresh = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN, **CONFIGS["crossq"]).double()
    fresh.load_state_dict(state)
    assert all(torch.equal(value, state[name]) for name, value in fresh.state_dict().items())
    obs, action = torch.randn(5, OBS_DIM, dtype=torch.float64), torch.randn(5, ACT_DIM, dtype=torch.float64)
    torch.testing.assert_close(fresh.eval()(obs, action), ensemble.eval()(obs, action), rtol=0, atol=0)
