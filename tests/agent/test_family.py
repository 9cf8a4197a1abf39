"""The SAC family as configurations of one learner: TQC's quantile Huber loss and truncated
pooled target, REDQ's random subsets, CrossQ's joint pass without a target network, DroQ's
dropout and LayerNorm critics, and a one-line error for knobs that make no sense together."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from rl_repara import SAC, Batch, QEnsemble, SACConfig, TanhGaussianPolicy
from rl_repara.agent.losses import critic_loss
from rl_repara.agent.targets import quantile_huber_loss, truncated_quantiles
from rl_repara.nn.norms import BatchRenorm

OBS_DIM, ACT_DIM = 3, 2


def _policy() -> TanhGaussianPolicy:
    return TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=(8,))


def _constant(values: list[list[float]] | list[float], **kw) -> QEnsemble:
    """Critic k outputs ``values[k]`` (a scalar or one value per quantile) for every input."""
    table = torch.tensor(values, dtype=torch.float32)
    quantiles = 1 if table.dim() == 1 else table.shape[1]
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, table.shape[0], (8,), num_quantiles=quantiles, **kw)
    last = ensemble.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(table.reshape(table.shape[0], 1, quantiles))
    return ensemble


def _batch(n: int = 4, terminated: float = 0.0) -> Batch:
    return Batch(
        torch.randn(n, OBS_DIM), torch.rand(n, ACT_DIM) * 2 - 1, torch.zeros(n), torch.randn(n, OBS_DIM),
        torch.full((n,), terminated),
    )  # fmt: skip


def test_quantile_huber_loss_matches_a_hand_computed_example():
    """θ = (0, 1) at τ = (¼, ¾), targets (½, 2), κ = 1. Pairs (u = y − θ, weight, Huber):
    (½, ¼, ⅛), (2, ¼, 3/2), (−½, ¼, ⅛), (1, ¾, ½) → mean of the weighted terms = 0.203125."""
    loss = quantile_huber_loss(torch.tensor([[[0.0, 1.0]]]), torch.tensor([[0.5, 2.0]]))
    assert loss.item() == pytest.approx(0.203125, abs=1e-7)
    # the asymmetry: raising a low quantile towards the targets lowers the loss
    assert quantile_huber_loss(torch.tensor([[[0.4, 1.0]]]), torch.tensor([[0.5, 2.0]])) < loss


def test_quantile_huber_loss_and_its_gradient_match_the_formula_written_out():
    """Against ``ρ(u) = |τ − 1{u < 0}|·H_κ(u)/κ`` written out term by term in float64, at κ = ½
    (both branches of H_κ taken), for values and the gradient in θ."""
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(3, 8, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    target = 2 * torch.randn(8, 7, generator=gen, dtype=torch.float64)
    kappa, (n, b, m), k = 0.5, theta.shape, target.shape[1]
    terms = []
    for c in range(n):
        for row in range(b):
            for i in range(m):
                for j in range(k):
                    u = target[row, j] - theta[c, row, i]
                    huber = 0.5 * u**2 if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                    terms.append(abs((i + 0.5) / m - float(u < 0)) * huber / kappa)
    expected = torch.stack(terms).mean()
    loss = quantile_huber_loss(theta, target, kappa)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(loss, theta)
    (expected_grad,) = torch.autograd.grad(expected, theta)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_tqc_target_pools_sorts_and_drops_the_top_quantiles_of_all_critics():
    """Target critics with quantiles (1, 2, 3) and (10, 20, 30), d = 1 per critic: the pooled
    sorted mixture (1, 2, 3, 10, 20, 30) loses its top 2, so the target is (1, 2, 3, 10)
    (reward 0, γ = 1, α = 0, no termination)."""
    critics = _constant([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    targets = _constant([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    batch = _batch()
    loss, _ = critic_loss(_policy(), critics, targets, torch.tensor(0.0), batch, 1.0, truncated_quantiles(1))
    expected_target = torch.tensor([1.0, 2.0, 3.0, 10.0]).expand(4, 4)
    zeros = torch.zeros(2, 4, 3)
    assert loss.item() == pytest.approx(quantile_huber_loss(zeros, expected_target).item(), rel=1e-6)
    keep_all, _ = critic_loss(
        _policy(), critics, targets, torch.tensor(0.0), batch, 1.0, truncated_quantiles(0)
    )
    assert keep_all.item() > loss.item()  # the dropped top quantiles were really left out


def test_redq_target_takes_the_min_over_the_drawn_subset():
    """Constant target critics (5, 3, 8, 1, 7): with the subset {0, 2} the target is
    r + γ·(min(5, 8) − α·log π) = γ·5 at α = 0."""
    critics, targets = _constant([0.0] * 5), _constant([5.0, 3.0, 8.0, 1.0, 7.0])
    batch = _batch()
    loss, _ = critic_loss(
        _policy(), critics, targets, torch.tensor(0.0), batch, 0.5, subset=torch.tensor([0, 2])
    )
    assert loss.item() == pytest.approx(5 * (0.0 - 0.5 * 5.0) ** 2, rel=1e-6)


def test_redq_draws_m_distinct_critics_from_the_learners_own_generator():
    cfg = SACConfig(num_critics=10, critic_subset=2, hidden_sizes=[8])
    a, b = SAC(_policy(), cfg, seed=3), SAC(_policy(), cfg, seed=3)
    torch.manual_seed(0)
    draws = [a.draw_subset() for _ in range(50)]
    torch.manual_seed(123)  # the global RNG plays no part
    assert all(torch.equal(x, b.draw_subset()) for x in draws)
    assert all(len(set(d.tolist())) == 2 and 0 <= min(d) and max(d) < 10 for d in draws)
    assert len({tuple(sorted(d.tolist())) for d in draws}) > 10  # varies from draw to draw
    c = SAC(_policy(), cfg, seed=4)
    assert [c.draw_subset().tolist() for _ in range(5)] != [d.tolist() for d in draws[:5]]


def test_crossq_has_no_target_network_and_its_joint_pass_equals_two_passes_in_eval_mode():
    cfg = SACConfig(
        target_network=False, critic_norm="batchrenorm", actor_norm="batchrenorm", hidden_sizes=[16]
    )
    sac = SAC(TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=(16,), norm="batchrenorm"), cfg)
    assert sac.target_critics is None and sac.state_dict()["target_critics"] is None
    critics, batch = sac.critics.eval(), _batch(8)
    torch.manual_seed(0)
    joint, _ = critic_loss(sac.policy, critics, None, torch.tensor(0.1), batch, 0.99)
    # the same loss from two separate passes: Q(s, a), and Q(s', a') as the target
    torch.manual_seed(0)
    with torch.no_grad():
        next_action, log_prob = sac.policy.sample_unit(batch.next_obs)
        y = 0.99 * (critics(batch.next_obs, next_action).min(0).values - 0.1 * log_prob)
    q = critics(batch.obs, batch.action)
    torch.testing.assert_close(joint, (q - y).square().mean(1).sum())


def test_crossq_batch_statistics_cover_both_halves_of_the_joint_pass():
    """In train mode the joint pass normalizes (s, a) and (s', a') with the statistics of both:
    the loss differs from two train-mode passes, each Batch Renorm layer sees both halves' 2B
    rows in one call, and an update moves every running statistic."""
    cfg = SACConfig(target_network=False, critic_norm="batchrenorm", hidden_sizes=[16, 16])
    sac = SAC(_policy(), cfg)
    critics, batch, alpha = sac.critics.train(), _batch(32), torch.tensor(0.1)
    fresh = copy.deepcopy(critics.state_dict())
    norms = [m for m in critics.modules() if isinstance(m, BatchRenorm)]  # the input norm too
    rows: list[int] = []
    for norm in norms:
        norm.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[-2]))
    torch.manual_seed(0)
    joint, _ = critic_loss(sac.policy, critics, None, alpha, batch, 0.99)
    joint_rows = list(rows)
    # two train-mode passes, each normalized with its own half's batch statistics
    critics.load_state_dict(fresh)
    torch.manual_seed(0)
    with torch.no_grad():
        next_action, log_prob = sac.policy.sample_unit(batch.next_obs)
        y = 0.99 * (critics(batch.next_obs, next_action).min(0).values - alpha * log_prob)
    separate = (critics(batch.obs, batch.action) - y).square().mean(1).sum()
    assert not torch.allclose(joint, separate, rtol=1e-3), (joint, separate)
    assert joint_rows == [64] * len(norms), joint_rows

    critics.load_state_dict(fresh)
    sac.update(_batch(32))
    after = sac.critics.state_dict()
    stats = [k for k in fresh if "running" in k]
    assert stats, "no Batch Renorm statistics in the critics' state_dict"
    assert all(not torch.equal(fresh[k], after[k]) for k in stats), [
        k for k in stats if torch.equal(fresh[k], after[k])
    ]


def test_a_batch_renorm_target_network_normalizes_with_the_running_statistics_it_copies():
    """Batch Renorm critics with a target network: the target's (s', a') pass uses the running
    statistics Polyak copies from the critics, and leaves them as they are; so the target equals
    the critics' own eval-mode pass right after a copy."""
    cfg = SACConfig(critic_norm="batchrenorm", hidden_sizes=[16], tau=1.0)
    sac = SAC(_policy(), cfg)
    assert sac.target_critics is not None
    for _ in range(3):
        sac.update(_batch(32))
    stats = {k: v.clone() for k, v in sac.target_critics.state_dict().items() if "running" in k}
    assert stats and all(torch.equal(v, sac.critics.state_dict()[k]) for k, v in stats.items())
    batch = _batch(32)
    with torch.no_grad():
        target = sac.target_critics(batch.next_obs, batch.action)
        own = sac.critics.eval()(batch.next_obs, batch.action)
    torch.testing.assert_close(target, own)  # tau=1: the same weights and statistics
    assert all(torch.equal(v, sac.target_critics.state_dict()[k]) for k, v in stats.items())


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"drop_quantiles": 2}, "drop_quantiles=2 needs a quantile head: set num_quantiles > 1"),
        ({"num_critics": 3, "critic_subset": 5}, "critic_subset (5) must be between 1 and num_critics (3)"),
        ({"critic_norm": "batchrenorm", "batch_size": 1}, "needs batch_size >= 2"),
        ({"target_network": False}, "target_network=false (CrossQ) needs critic_norm=batchrenorm"),
        ({"critic_norm": "group"}, "critic_norm must be one of none, layer, batchrenorm"),
        ({"actor_q": "max"}, "actor_q must be min or mean"),
        ({"critic_arch_kwargs": {"width": 64}}, "belong to a critic_arch other than mlp"),
        ({"actor_arch_kwargs": {"width": 64}}, "belong to an actor_arch other than mlp"),
        ({"update_order": "actor"}, "update_order must be critics_first or actor_first"),
        ({"alpha_loss": "exp"}, "alpha_loss must be log_alpha or alpha"),
        ({"lr_clock": "steps"}, "lr_clock must be updates or own_steps"),
    ],
)
def test_knobs_that_make_no_sense_get_one_line_naming_them(overrides, message):
    with pytest.raises(ValueError) as info:
        SACConfig(**overrides).validate()
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "preset",
    [
        {},  # SAC
        {
            "target_network": False,
            "critic_norm": "batchrenorm",
            "actor_norm": "batchrenorm",
            "policy_delay": 3,
        },
        {"num_critics": 3, "num_quantiles": 5, "drop_quantiles": 1, "actor_q": "mean"},
        {"critic_dropout": 0.01, "critic_norm": "layer", "utd": 2},
        {"num_critics": 4, "critic_subset": 2, "actor_q": "mean"},
    ],
    ids=["sac", "crossq", "tqc", "droq", "redq"],
)
def test_every_variant_updates_with_finite_losses_and_touches_only_its_own_parameters(preset):
    """Update by update: the critic step changes the critics every time; the policy (weights and
    norm statistics) and log α change on actor steps only (every ``policy_delay``-th update);
    the target critics change only by the Polyak rule ``θ' ← θ' + τ(θ − θ')`` towards the
    updated critics (CrossQ has none)."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=(16,), norm=preset.get("actor_norm", "none"))
    sac = SAC(policy, SACConfig(hidden_sizes=[16], **preset))
    assert (sac.target_critics is None) == (preset.get("target_network") is False)
    for n in range(1, 4):
        before = _learner_state(sac)
        info = sac.update(_batch(16))
        after = _learner_state(sac)
        assert all(torch.isfinite(torch.tensor(v)) for v in info.values()), info
        actor_step = n % sac.config.policy_delay == 0
        assert _differ(before["critics"], after["critics"]), f"update {n}: the critics did not move"
        assert _differ(before["policy"], after["policy"]) == actor_step, f"update {n}: policy"
        assert (not torch.equal(before["log_alpha"], after["log_alpha"])) == actor_step, f"update {n}: α"
        if sac.target_critics is not None:
            polyak = {
                k: v.lerp(after["critics"][k], sac.config.tau) if v.is_floating_point() else v
                for k, v in before["target"].items()
            }
            changed = [k for k in polyak if not torch.equal(polyak[k], after["target"][k])]
            assert not changed, f"update {n}: target critics not θ' + τ(θ − θ'): {changed}"
    assert not sac.policy.training or "actor_norm" not in preset  # at rest in eval mode (Batch Renorm)


def _learner_state(sac: SAC) -> dict[str, Any]:
    """Copies of the policy's and critics' state dicts (weights and norm statistics), the
    target critics' (empty without them) and log α."""
    target = {} if sac.target_critics is None else sac.target_critics.state_dict()
    return {
        "policy": copy.deepcopy(sac.policy.state_dict()),
        "critics": copy.deepcopy(sac.critics.state_dict()),
        "target": copy.deepcopy(target),
        "log_alpha": sac.log_alpha.detach().clone(),
    }


def _differ(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)
