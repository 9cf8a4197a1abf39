"""Norm layers and ``mlp`` against references written by hand in float64: Batch Renorm (warm-up,
renorm with clipped r and d, running statistics, eval mode, ensemble), ensemble LayerNorm,
dropout and the layer orders."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rl_repara import QEnsemble
from rl_repara.nn.layers import mlp
from rl_repara.nn.norms import BatchRenorm, EnsembleBatchRenorm, EnsembleLayerNorm

EPS = 1e-3  # BatchRenorm's default (SBX's)


def brn(num_features: int = 4, **kw) -> BatchRenorm:
    """A float64 BatchRenorm with random affine params."""
    layer = BatchRenorm(num_features, **kw).double()
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
        layer.bias.normal_()
    return layer


def batch_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance over the rows, as sums."""
    mean = x.sum(0) / x.shape[0]
    return mean, ((x - mean) ** 2).sum(0) / x.shape[0]


def test_defaults_are_sbx_s():
    layer = BatchRenorm(3)
    assert (layer.momentum, layer.eps, layer.r_max, layer.d_max, layer.warmup_steps) == (
        0.01,
        1e-3,
        3.0,
        5.0,
        100_000,
    )
    assert torch.equal(layer.running_mean, torch.zeros(3)) and torch.equal(layer.running_var, torch.ones(3))


def test_warm_up_is_batch_norm_on_batch_statistics():
    layer = brn(warmup_steps=5)
    for _ in range(3):
        x = torch.randn(16, 4, dtype=torch.float64) * 3 + 1
        y = layer(x)
        mean, var = batch_stats(x)
        ref = (x - mean) / torch.sqrt(var + EPS) * layer.weight + layer.bias
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(  # the same as torch's batch norm in train mode
            y, F.batch_norm(x, None, None, layer.weight, layer.bias, training=True, eps=EPS)
        )


def test_after_warm_up_r_and_d_are_clipped_and_carry_no_gradient():
    """Feature 0: running std tiny (r clips at r_max); 1: huge (r clips at 1/r_max); 2: running
    mean far below (d clips at d_max); 3: close to the batch's (nothing clipped)."""
    layer = brn(warmup_steps=0)
    x = (torch.randn(32, 4, dtype=torch.float64) * 2 + 1).requires_grad_(True)
    mean, var = batch_stats(x.detach())
    run_mean = torch.tensor([mean[0], mean[1], mean[2] - 100.0, mean[3] + 0.3], dtype=torch.float64)
    run_var = torch.tensor([1e-6, 1e4, var[2], var[3] * 1.5], dtype=torch.float64)
    layer.running_mean.copy_(run_mean)
    layer.running_var.copy_(run_var)

    y = layer(x)
    std, run_std = torch.sqrt(var + EPS), torch.sqrt(run_var + EPS)
    r_raw, d_raw = std / run_std, (mean - run_mean) / run_std
    assert r_raw[0] > 3 and r_raw[1] < 1 / 3 and d_raw[2] > 5  # the constructed case clips
    assert 1 / 3 < r_raw[3] < 3 and -5 < d_raw[3] < 5
    r, d = r_raw.clamp(1 / 3, 3), d_raw.clamp(-5, 5)
    assert r[0] == 3 and r[1] == 1 / 3 and d[2] == 5

    # The reference with r, d constants: gradients flow through the batch mean and std only.
    xr = x.detach().clone().requires_grad_(True)
    m, v = xr.mean(0), xr.var(0, unbiased=False)
    ref = ((xr - m) / torch.sqrt(v + EPS) * r + d) * layer.weight + layer.bias
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad((y * g).sum(), x)
    (gref,) = torch.autograd.grad((ref * g).sum(), xr)
    torch.testing.assert_close(gx, gref, rtol=1e-10, atol=1e-12)


def test_warm_up_ends_after_warmup_steps_calls():
    """Calls 1..k are batch norm; call k+1 renormalizes with the statistics the k calls left."""
    k = 3
    layer = brn(warmup_steps=k)
    xs = [torch.randn(8, 4, dtype=torch.float64) * (i + 1) + i for i in range(k + 1)]
    for x in xs[:k]:
        layer(x)
    run_mean, run_var = layer.running_mean.clone(), layer.running_var.clone()
    y = layer(xs[k])
    mean, var = batch_stats(xs[k])
    std, run_std = torch.sqrt(var + EPS), torch.sqrt(run_var + EPS)
    r, d = (std / run_std).clamp(1 / 3, 3), ((mean - run_mean) / run_std).clamp(-5, 5)
    assert not torch.allclose(r, torch.ones_like(r))
    ref = ((xs[k] - mean) / std * r + d) * layer.weight + layer.bias
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def test_running_statistics_are_the_ema_of_biased_batch_statistics():
    m, k = 0.1, 5
    layer = brn(momentum=m, warmup_steps=2)  # crosses the end of the warm-up
    run_mean, run_var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    for i in range(k):
        x = torch.randn(8, 4, dtype=torch.float64) * (i + 1) + i
        layer(x)
        mean, var = batch_stats(x)
        run_mean, run_var = (1 - m) * run_mean + m * mean, (1 - m) * run_var + m * var
    torch.testing.assert_close(layer.running_mean, run_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.running_var, run_var, rtol=1e-12, atol=1e-12)
    assert layer.steps.item() == k and layer.steps.dtype == torch.long


def test_eval_mode_uses_running_statistics_and_changes_no_buffer():
    layer = brn(warmup_steps=0)
    for _ in range(3):
        layer(torch.randn(8, 4, dtype=torch.float64) * 2 + 1)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.eval()
    x = torch.randn(1, 4, dtype=torch.float64)  # a batch of 1 is fine in eval mode
    y = layer(x)
    ref = (x - before["running_mean"]) / torch.sqrt(before["running_var"] + EPS) * layer.weight + layer.bias
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    for name, value in layer.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_leading_dims_are_all_rows():
    layer, twin = brn(), brn()
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), twin(x.reshape(15, 4)).reshape(3, 5, 4))


@pytest.mark.parametrize("layer", [BatchRenorm(3), EnsembleBatchRenorm(2, 3)])
def test_a_batch_of_one_in_train_mode_is_a_one_line_error(layer):
    x = torch.randn(2, 1, 3) if isinstance(layer, EnsembleBatchRenorm) else torch.randn(1, 3)
    with pytest.raises(ValueError, match="BatchRenorm needs a batch of at least 2 in train mode") as err:
        layer(x)
    assert "\n" not in str(err.value)
    assert layer.steps.item() == 0


def test_state_dict_holds_the_statistics_and_a_load_restores_them():
    layer = brn(warmup_steps=2)
    for _ in range(4):
        layer(torch.randn(8, 4, dtype=torch.float64) + 3)
    state = layer.state_dict()
    assert {"weight", "bias", "running_mean", "running_var", "steps"} <= set(state)
    fresh = brn(warmup_steps=2)
    fresh.load_state_dict(state)
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, state[name]), name
    x = torch.randn(8, 4, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)  # train mode, past warm-up
    torch.testing.assert_close(fresh.eval()(x), layer.eval()(x), rtol=0, atol=0)


def test_ensemble_batch_renorm_equals_separate_layers():
    n, f = 3, 4
    ens = EnsembleBatchRenorm(n, f, momentum=0.2, warmup_steps=2).double()
    with torch.no_grad():
        ens.weight.uniform_(0.5, 2.0)
        ens.bias.normal_()
    singles = [BatchRenorm(f, momentum=0.2, warmup_steps=2).double() for _ in range(n)]
    for k, single in enumerate(singles):
        with torch.no_grad():
            single.weight.copy_(ens.weight[k, 0])
            single.bias.copy_(ens.bias[k, 0])
    for step in range(4):  # two warm-up calls, two renorm calls
        x = torch.randn(n, 8, f, dtype=torch.float64) * torch.arange(1, n + 1.0)[:, None, None] + step
        torch.testing.assert_close(ens(x), torch.stack([s(x[k]) for k, s in enumerate(singles)]))
    for k, single in enumerate(singles):
        torch.testing.assert_close(ens.running_mean[k, 0], single.running_mean)
        torch.testing.assert_close(ens.running_var[k, 0], single.running_var)
    assert ens.steps.item() == 4
    shared = torch.randn(8, f, dtype=torch.float64)  # a shared input is every member's input
    ens.eval()
    torch.testing.assert_close(ens(shared), torch.stack([s.eval()(shared) for s in singles]))


def test_ensemble_layer_norm_equals_separate_layer_norms():
    n, f = 3, 5
    ens = EnsembleLayerNorm(n, f).double()
    with torch.no_grad():
        ens.weight.normal_()
        ens.bias.normal_()
    x = torch.randn(n, 7, f, dtype=torch.float64) * 3 + 2
    for k in range(n):
        ln = nn.LayerNorm(f).double()
        with torch.no_grad():
            ln.weight.copy_(ens.weight[k, 0])
            ln.bias.copy_(ens.bias[k, 0])
        torch.testing.assert_close(ens(x)[k], ln(x[k]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ens(x[0])[k], ln(x[0]), rtol=1e-12, atol=1e-12)  # shared input


# ------------------------------------------------------------------------------- mlp
def kinds(net: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in net]


def test_mlp_layer_orders():
    assert kinds(mlp(3, (4, 5), 2)) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    droq = mlp(3, (4,), 1, norm="layer", dropout=0.1)
    assert kinds(droq) == ["Linear", "Dropout", "LayerNorm", "ReLU", "Linear"]
    crossq = mlp(3, (4, 5), 1, norm="batchrenorm", input_norm=True, momentum=0.2, warmup_steps=7)
    brn_relu = ["Linear", "ReLU", "BatchRenorm"]  # SBX / CrossQ: the norm after the activation
    assert kinds(crossq) == ["BatchRenorm", *brn_relu, *brn_relu, "Linear"]
    assert all(m.momentum == 0.2 and m.warmup_steps == 7 for m in crossq if isinstance(m, BatchRenorm))
    assert [m.num_features for m in crossq if isinstance(m, BatchRenorm)] == [3, 4, 5]


def test_mlp_bad_norm_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="norm must be one of 'none', 'layer', 'batchrenorm'; got 'batch'"):
        mlp(3, (4,), norm="batch")
    with pytest.raises(ValueError, match="input_norm=True needs a norm"):
        mlp(3, (4,), input_norm=True)
    with pytest.raises(ValueError, match="takes no norm kwargs"):
        mlp(3, (4,), momentum=0.1)


def test_dropout_zeroes_in_train_mode_and_is_the_identity_in_eval_mode():
    torch.manual_seed(0)
    net, plain = mlp(3, (64,), 1, dropout=0.5), mlp(3, (64,), 1)
    with torch.no_grad():
        net[0].bias.fill_(10.0)  # every pre-activation positive: zeros come from dropout only
        for a, b in zip((net[0], net[3]), (plain[0], plain[2])):
            b.load_state_dict(a.state_dict())
    x = torch.randn(32, 3)
    hidden = net[1](net[0](x))
    assert 0.3 < (hidden == 0).float().mean() < 0.7
    torch.testing.assert_close(hidden[hidden != 0], 2 * net[0](x)[hidden != 0])  # scaled by 1/(1−p)
    net.eval()
    torch.testing.assert_close(net(x), plain(x))


# --------------------------------------------------- QEnsemble configurations (shape, keys)
@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_quantile_and_categorical_heads_shape_and_min_q(batch):
    """A quantile head's Q is the mean of its quantiles, a categorical head's the mean of its
    distribution over the support; ``min_q`` is the min of those over the critics."""
    obs, action = torch.randn(*batch, 3), torch.randn(*batch, 2)
    quantiles = QEnsemble(3, 2, 3, (8, 6), num_quantiles=7)
    assert quantiles(obs, action).shape == (3, *batch, 7)
    torch.testing.assert_close(quantiles.min_q(obs, action), quantiles(obs, action).mean(-1).min(0).values)
    bins = QEnsemble(3, 2, 3, (8, 6), num_bins=5, v_min=-2.0, v_max=2.0)
    logits = bins(obs, action)
    assert logits.shape == (3, *batch, 5)
    means = (torch.softmax(logits, -1) * torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])).sum(-1)
    torch.testing.assert_close(bins.q_values(obs, action), means)
    torch.testing.assert_close(bins.min_q(obs, action), means.min(0).values)


def test_plain_ensemble_state_dict_keys_are_unchanged():
    ensemble = QEnsemble(3, 2, 3, (8, 6))
    assert set(ensemble.state_dict()) == {f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")}


def test_unknown_norm_is_a_one_line_error_naming_the_choices():
    with pytest.raises(ValueError, match="norm must be one of 'none', 'layer', 'batchrenorm'; got 'bn'"):
        QEnsemble(3, 2, 3, (8, 6), norm="bn")
