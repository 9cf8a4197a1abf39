"""SAC's losses and update: each touches only its own parameters, the target network follows
the Polyak rule exactly, and the Bellman target bootstraps on truncation only."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import yaml
from support import REPO

from rl_repara import SAC, Batch, QEnsemble, SACConfig, TanhGaussianPolicy
from rl_repara.agent.losses import actor_loss, alpha_loss, critic_loss
from rl_repara.agent.parts import ACTOR_REDUCTIONS
from rl_repara.nn.norms import BatchRenorm

OBS_DIM, ACT_DIM, B = 3, 2, 16


def make_batch(batch_size: int = B) -> Batch:
    return Batch(
        obs=torch.randn(batch_size, OBS_DIM),
        action=torch.rand(batch_size, ACT_DIM) * 5.0 - 2.0,
        reward=torch.randn(batch_size),
        next_obs=torch.randn(batch_size, OBS_DIM),
        terminated=(torch.rand(batch_size) < 0.3).float(),
    )


def make_policy() -> TanhGaussianPolicy:
    return TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=(16,), action_low=-2.0, action_high=3.0)


def make_modules():
    """Policy, critics, and target critics that differ from the critics and still have
    ``requires_grad`` on (so a leak of gradient into them would show)."""
    policy = make_policy()
    critics = QEnsemble(OBS_DIM, ACT_DIM, 2, (16,))
    targets = copy.deepcopy(critics)
    with torch.no_grad():
        for p in targets.parameters():
            p.add_(0.1 * torch.randn_like(p))
    log_alpha = torch.tensor(math.log(0.3), requires_grad=True)
    return policy, critics, targets, log_alpha


def grads_present(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


def no_grads(module: torch.nn.Module) -> bool:
    return all(p.grad is None for p in module.parameters())


def clone_batch(batch: Batch) -> Batch:
    return Batch(*(None if t is None else t.clone() for t in batch))


def assert_batch_equal(a: Batch, b: Batch) -> None:
    for name, x, y in zip(Batch._fields, a, b):
        assert (x is None and y is None) or torch.equal(x, y), f"batch.{name} was modified"


# ------------------------------------------------------------- each loss, its own parameters
def test_critic_loss_reaches_only_the_critics():
    policy, critics, targets, log_alpha = make_modules()
    batch = make_batch()
    before = clone_batch(batch)
    loss, info = critic_loss(policy, critics, targets, log_alpha.exp(), batch, gamma=0.99)
    loss.backward()
    assert all(grads_present(critics))
    assert no_grads(policy) and no_grads(targets) and log_alpha.grad is None
    assert_batch_equal(batch, before)
    assert not info["qf_loss"].requires_grad and info["qf_loss"] == loss.detach()


def test_actor_loss_reaches_only_the_policy():
    policy, critics, targets, log_alpha = make_modules()
    batch = make_batch()
    before = clone_batch(batch)
    alpha = log_alpha.exp()
    torch.manual_seed(3)
    loss, info = actor_loss(policy, critics, alpha, batch.obs)
    loss.backward()
    assert all(grads_present(policy))
    assert no_grads(critics) and no_grads(targets) and log_alpha.grad is None
    assert_batch_equal(batch, before)
    assert not info["log_prob"].requires_grad

    # its value: mean[α·log π(ã|s) − min_k Q_k(s, ã)] at the same reparameterized sample
    torch.manual_seed(3)
    with torch.no_grad():
        action, log_prob = policy.sample_unit(batch.obs)
        q_min = critics(batch.obs, action).min(0).values
        expected = (alpha * log_prob - q_min).mean()
    torch.testing.assert_close(loss.detach(), expected)
    torch.testing.assert_close(info["log_prob"], log_prob)


def test_alpha_loss_reaches_only_log_alpha_with_the_right_gradient():
    policy, critics, targets, log_alpha = make_modules()
    batch = make_batch()
    before = clone_batch(batch)
    _, info = actor_loss(policy, critics, log_alpha.exp(), batch.obs)
    target_entropy = -float(ACT_DIM)
    loss, _ = alpha_loss(log_alpha, info["log_prob"], target_entropy)
    loss.backward()
    assert no_grads(policy) and no_grads(critics) and no_grads(targets)
    # d/d log α of −mean[log α·(log π + H)] = −mean[log π + H]
    expected = -(info["log_prob"] + target_entropy).mean()
    torch.testing.assert_close(log_alpha.grad, expected)
    assert_batch_equal(batch, before)


def test_alpha_loss_in_alpha_has_the_gradient_alpha_times_the_entropy_gap():
    """SimbaV2's and FlashSAC's ``α·(H − H̄)``: d/d log α = α·(H − H̄), the log form's
    gradient times α; the same sign, so α moves the same way."""
    log_alpha = torch.tensor(math.log(0.03), requires_grad=True)
    log_prob = torch.tensor([-1.0, 0.5, 2.0])  # H = −mean log π = −0.5
    loss, _ = alpha_loss(log_alpha, log_prob, target_entropy=-2.0, form="alpha")
    loss.backward()
    torch.testing.assert_close(log_alpha.grad, torch.tensor(0.03 * (-0.5 + 2.0)))
    assert float(loss.detach()) == pytest.approx(0.03 * 1.5)


# ------------------------------------------------------------------------ bootstrapping
def constant_ensemble(values: list[float]) -> QEnsemble:
    """Critic k outputs ``values[k]`` for every input: zero last-layer weights, bias = value."""
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, len(values), (8,))
    last = ensemble.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(values).reshape(-1, 1, 1))
    return ensemble


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_critic_target_bootstraps_on_truncation_but_not_on_termination(alpha):
    """y = r + γ·(1 − terminated)·(min_k Q'_k − α·log π(a'|s')), with Q' constant and Q constant:
    loss = Σ_k mean_b (Q_k − y_b)², all by hand."""
    gamma, q_values, target_values = 0.9, [1.0, 2.0], [5.0, 3.0]
    critics, targets = constant_ensemble(q_values), constant_ensemble(target_values)
    policy = make_policy()
    rewards = [1.0, -0.5, 2.0, 0.0]
    terminated = [1.0, 0.0, 1.0, 0.0]  # 0.0 is what a truncated (time-limit) step stores
    batch = Batch(
        obs=torch.randn(4, OBS_DIM),
        action=torch.rand(4, ACT_DIM),
        reward=torch.tensor(rewards),
        next_obs=torch.randn(4, OBS_DIM),
        terminated=torch.tensor(terminated),
    )
    torch.manual_seed(9)
    with torch.no_grad():
        _, next_log_prob = policy.sample_unit(batch.next_obs)  # the a' ~ π(·|s') the loss draws
    torch.manual_seed(9)
    loss, _ = critic_loss(policy, critics, targets, torch.tensor(alpha), batch, gamma)

    soft_next = [min(target_values) - alpha * float(lp) for lp in next_log_prob]
    y = [r + gamma * (1.0 - d) * v for r, d, v in zip(rewards, terminated, soft_next)]
    assert y[0] == rewards[0] and y[2] == rewards[2]  # terminated: the reward alone
    expected = sum(sum((q - y_b) ** 2 for y_b in y) / len(y) for q in q_values)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------ SAC.update
def small_config(**overrides) -> SACConfig:
    base = dict(hidden_sizes=[16], batch_size=B, tau=0.1, lr=1e-2, learning_starts=0, init_alpha=0.5)
    return SACConfig(**{**base, **overrides})


def snapshot(sac: SAC) -> dict[str, list[torch.Tensor]]:
    return {
        "policy": [p.detach().clone() for p in sac.policy.parameters()],
        "critics": [p.detach().clone() for p in sac.critics.parameters()],
        "targets": [p.detach().clone() for p in sac.target_critics.parameters()],
        "log_alpha": [sac.log_alpha.detach().clone()],
    }


def changed(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(not torch.equal(x, y) for x, y in zip(a, b))


def unchanged(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def assert_polyak(before: dict, after: dict, tau: float) -> None:
    """θ'_new = θ'_old + τ·(θ_new − θ'_old), θ the critics after this update's critic step."""
    for t_old, t_new, c_new in zip(before["targets"], after["targets"], after["critics"]):
        torch.testing.assert_close(t_new, t_old + tau * (c_new - t_old), rtol=1e-6, atol=1e-7)


def test_update_changes_what_it_should_and_moves_targets_by_polyak():
    sac = SAC(make_policy(), small_config())
    batch = make_batch()
    batch_before = clone_batch(batch)
    for _ in range(2):  # the second time the targets already differ from the critics
        before = snapshot(sac)
        metrics = sac.update(batch)
        after = snapshot(sac)
        assert changed(before["policy"], after["policy"])
        assert changed(before["critics"], after["critics"])
        assert changed(before["log_alpha"], after["log_alpha"])
        assert_polyak(before, after, tau=0.1)
    assert_batch_equal(batch, batch_before)
    assert set(metrics) == {"qf_loss", "qf_values", "actor_loss", "entropy", "alpha_loss", "alpha"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["alpha"] == pytest.approx(math.exp(after["log_alpha"][0].item()))


def test_policy_delay_holds_actor_and_alpha_between_actor_steps():
    sac = SAC(make_policy(), small_config(policy_delay=2))
    batch = make_batch()
    before = snapshot(sac)
    sac.update(batch)  # update 1: critic step only
    after = snapshot(sac)
    assert unchanged(before["policy"], after["policy"])
    assert unchanged(before["log_alpha"], after["log_alpha"])
    assert changed(before["critics"], after["critics"])
    assert_polyak(before, after, tau=0.1)
    sac.update(batch)  # update 2: critic, actor and α
    final = snapshot(sac)
    assert changed(after["policy"], final["policy"])
    assert changed(after["log_alpha"], final["log_alpha"])


def test_target_update_every_skips_polyak_in_between():
    sac = SAC(make_policy(), small_config(target_update_every=2))
    batch = make_batch()
    before = snapshot(sac)
    sac.update(batch)
    middle = snapshot(sac)
    assert unchanged(before["targets"], middle["targets"])
    sac.update(batch)
    assert_polyak(middle, snapshot(sac), tau=0.1)


def test_fixed_alpha_stays_fixed():
    sac = SAC(make_policy(), small_config(autotune_alpha=False, init_alpha=0.2))
    batch = make_batch()
    for _ in range(3):
        metrics = sac.update(batch)
    assert sac.alpha.item() == pytest.approx(0.2)
    assert metrics["alpha"] == pytest.approx(0.2)
    assert "alpha_loss" not in metrics


def test_alpha_keeps_training_after_load_state_dict():
    """A learner restored from a (serialized) state continues exactly like the original,
    α included: the α optimizer still steps the restored log α."""
    cfg = small_config()
    original = SAC(make_policy(), cfg)
    batch = make_batch()
    for _ in range(3):
        original.update(batch)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = SAC(make_policy(), small_config())
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert restored.log_alpha.item() == original.log_alpha.item()

    for step in range(3):
        log_alpha_before = restored.log_alpha.item()
        torch.manual_seed(100 + step)
        original.update(batch)
        torch.manual_seed(100 + step)
        restored.update(batch)
        assert restored.log_alpha.item() != log_alpha_before
        assert restored.log_alpha.item() == original.log_alpha.item()
    for name in ("policy", "critics", "targets"):
        for x, y in zip(snapshot(original)[name], snapshot(restored)[name]):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_log_alpha_trains_with_adam_beta1_0_9_whatever_adam_beta1_says():
    """``adam_beta1`` is the actor's and the critics' β1 (CrossQ: 0.5); log α's Adam keeps
    β1 = 0.9, as the SAC and CrossQ authors, SBX and SB3-contrib train it. The gradients that
    reached log α, replayed through torch's Adam with betas (0.9, 0.999), give the learner's
    log α after every update."""
    torch.manual_seed(0)
    sac = SAC(make_policy(), small_config(adam_beta1=0.5))
    assert sac.actor_optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert sac.critic_optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert sac.alpha_optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    grads: list[torch.Tensor] = []
    sac.log_alpha.register_hook(lambda g: grads.append(g.detach().clone()))
    mirror = torch.nn.Parameter(sac.log_alpha.detach().clone())
    reference = torch.optim.Adam([mirror], lr=sac.config.lr, betas=(0.9, 0.999))
    for step in range(5):
        sac.update(make_batch())
        mirror.grad = grads[-1]
        reference.step()
        assert sac.log_alpha.item() == pytest.approx(mirror.item(), rel=1e-6, abs=1e-7), step


def test_a_state_whose_alpha_optimizer_holds_beta1_0_5_loads_with_0_9():
    """CrossQ checkpoints written before log α's β1 was fixed at 0.9 hold β1 = 0.5 in the α
    optimizer's param group, which ``torch.optim.Optimizer.load_state_dict`` restores. The
    learner keeps the betas it was built with, so a resumed CrossQ run trains α with 0.9; the
    Adam moments and step counts come from the state."""
    torch.manual_seed(0)
    old = SAC(make_policy(), small_config(adam_beta1=0.5))
    old.update(make_batch())
    state = copy.deepcopy(old.state_dict())
    state["alpha_optimizer"]["param_groups"][0]["betas"] = (0.5, 0.999)
    restored = SAC(make_policy(), small_config(adam_beta1=0.5))
    restored.load_state_dict(state)
    assert restored.alpha_optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    assert restored.actor_optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert restored.critic_optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    saved, loaded = state["alpha_optimizer"]["state"][0], restored.alpha_optimizer.state_dict()["state"][0]
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(torch.as_tensor(loaded[key]), torch.as_tensor(saved[key])), key


def test_the_actor_step_keeps_dropout_on_in_batch_renorm_critics_and_their_statistics_as_they_are():
    """Batch Renorm critics with dropout (CrossQ's critics with DroQ's dropout): in the actor
    step's critic pass dropout is on and Batch Renorm normalizes with its running statistics,
    which the pass leaves untouched, as in the published code (flax ``Dropout(deterministic=
    False)`` beside ``BatchRenorm(use_running_average=True)``). The pass is replayed from its
    inputs and RNG state: the output is that of train-mode dropout over eval-mode Batch Renorm,
    and neither that without dropout nor that on batch statistics."""
    torch.manual_seed(0)
    cfg = small_config(
        target_network=False, critic_norm="batchrenorm", critic_dropout=0.3, brn_warmup_steps=0
    )
    sac = SAC(make_policy(), cfg)
    passes: list[dict] = []

    def before(module, args, kwargs):
        passes.append({"rng": torch.get_rng_state(), "buffers": [b.clone() for b in module.buffers()]})

    def after(module, args, kwargs, output):
        passes[-1].update(
            args=[a.detach().clone() for a in args], kwargs=kwargs, output=output.detach().clone(),
            buffers_after=[b.clone() for b in module.buffers()],
        )  # fmt: skip

    hooks = [
        sac.critics.register_forward_pre_hook(before, with_kwargs=True),
        sac.critics.register_forward_hook(after, with_kwargs=True),
    ]
    sac.update(make_batch())
    for hook in hooks:
        hook.remove()
    assert len(passes) == 2  # the critic step's joint pass, then the actor step's pass
    actor_pass = passes[1]
    for x, y in zip(actor_pass["buffers"], actor_pass["buffers_after"]):
        assert torch.equal(x, y), "the actor step's critic pass changed the Batch Renorm statistics"

    def replay(dropout: bool, batch_statistics: bool) -> torch.Tensor:
        critics = copy.deepcopy(sac.critics).train(dropout)
        for layer in critics.modules():
            if isinstance(layer, BatchRenorm):
                layer.train(batch_statistics)
        torch.set_rng_state(actor_pass["rng"])
        with torch.no_grad():
            return critics(*actor_pass["args"], **actor_pass["kwargs"])

    torch.testing.assert_close(actor_pass["output"], replay(True, False), rtol=0, atol=0)
    assert not torch.allclose(actor_pass["output"], replay(False, False)), "dropout was off"
    assert not torch.allclose(actor_pass["output"], replay(True, True)), "batch statistics were used"
    assert sac.critics.training and all(m.training for m in sac.critics.modules())  # at rest


def test_the_droq_preset_actor_maximizes_the_mean_of_its_two_critics():
    """conf/agent/droq.yaml: the actor loss is ``mean_B [α·log π(ã|s) − ½(Q₁ + Q₂)(s, ã)]``, as in
    the DroQ authors' code (``q = 0.5 * (q1 + q2)`` when dropout is on), not the min."""
    values = yaml.safe_load((REPO / "conf" / "agent" / "droq.yaml").read_text())
    values.pop("defaults")
    cfg = SACConfig(**{**values, "hidden_sizes": [16]})
    torch.manual_seed(0)
    policy, critics = make_policy(), QEnsemble(OBS_DIM, ACT_DIM, **cfg.critic_kwargs()).eval()
    obs, alpha = torch.randn(B, OBS_DIM), torch.tensor(0.3)
    torch.manual_seed(1)
    loss, _ = actor_loss(policy, critics, alpha, obs, ACTOR_REDUCTIONS[cfg.actor_q])
    torch.manual_seed(1)
    action, log_prob = policy.sample_unit(obs)
    q = critics(obs, action)
    assert q.shape[0] == 2 and not torch.allclose(q[0], q[1])
    torch.testing.assert_close(loss, (alpha * log_prob - q.mean(0)).mean())


def _same_net_two_bounds(dim: int, half: float) -> tuple[TanhGaussianPolicy, TanhGaussianPolicy]:
    unit = TanhGaussianPolicy(OBS_DIM, dim, hidden_sizes=(16,))
    other = copy.deepcopy(unit)
    other.action_low.fill_(-half)
    other.action_high.fill_(half)
    return unit, other


def test_entropy_terms_in_the_losses_do_not_depend_on_the_action_bounds():
    """One network, bounds ±1 and ±0.4 (Humanoid's, 17 dims), the same noise: the log π that
    enters the critic target, the actor loss and the α loss is the same, and so is every loss.
    In env units it would differ by 17·log 0.4 = −15.6 nats, an α-weighted constant added to
    every step's reward (a survival bonus or penalty on a terminating env). What users see,
    ``policy(obs)``, stays the env-unit density."""
    from rl_repara.agent.losses import default_target_entropy

    dim, obs = 17, torch.randn(B, OBS_DIM)
    policies = _same_net_two_bounds(dim, 0.4)
    critics, targets = QEnsemble(OBS_DIM, dim, 2, (16,)), QEnsemble(OBS_DIM, dim, 2, (16,))
    batch = Batch(
        obs,
        torch.rand(B, dim) * 2 - 1,
        torch.randn(B),
        torch.randn(B, OBS_DIM),
        (torch.arange(B) % 2).float(),
    )  # half of the transitions terminate
    alpha, out = torch.tensor(0.7), []
    for policy in policies:
        torch.manual_seed(3)
        c_loss, _ = critic_loss(policy, critics, targets, alpha, batch, 0.99)
        torch.manual_seed(4)
        a_loss, a_info = actor_loss(policy, critics, alpha, obs)
        l_loss, _ = alpha_loss(torch.tensor(0.1), a_info["log_prob"], default_target_entropy(dim))
        torch.manual_seed(5)
        user_log_prob = policy(obs)[1]
        out.append((c_loss, a_loss, a_info["log_prob"], l_loss, user_log_prob))
    for name, x, y in zip(("critic", "actor", "log_prob", "alpha", "user"), *out):
        if name == "user":
            torch.testing.assert_close(y - x, torch.full_like(x, -dim * math.log(0.4)))
        else:
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)


def test_soft_target_of_a_hand_built_transition_is_the_same_for_any_bounds():
    """Constant critics Q' = (5, 3): y = r + γ·(1 − d)·(3 − α·log π_unit(a'|s')) by hand, for
    a terminating and a non-terminating transition, under bounds ±1 and ±0.4 alike."""
    policies = _same_net_two_bounds(ACT_DIM, 0.4)
    critics, targets = constant_ensemble([1.0, 2.0]), constant_ensemble([5.0, 3.0])
    batch = Batch(
        torch.randn(2, OBS_DIM),
        torch.zeros(2, ACT_DIM),
        torch.tensor([1.0, -1.0]),
        torch.randn(2, OBS_DIM),
        torch.tensor([1.0, 0.0]),
    )
    gamma, alpha = 0.9, 0.5
    torch.manual_seed(9)
    with torch.no_grad():
        _, log_prob = policies[0].sample_unit(batch.next_obs)
    y = [1.0, -1.0 + gamma * (3.0 - alpha * float(log_prob[1]))]
    expected = sum(sum((q - y_b) ** 2 for y_b in y) / 2 for q in (1.0, 2.0))
    for policy in policies:
        torch.manual_seed(9)
        loss, _ = critic_loss(policy, critics, targets, torch.tensor(alpha), batch, gamma)
        assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_default_entropy_target_is_minus_act_dim_in_the_unit_box():
    """−1 nat per action dim whatever the bounds; an explicit target_entropy is taken as given."""
    from rl_repara.agent.losses import default_target_entropy

    unit, narrow = _same_net_two_bounds(17, 0.4)
    assert default_target_entropy(17) == -17.0
    assert SAC(unit, SACConfig(hidden_sizes=[16])).target_entropy == -17.0
    assert SAC(narrow, SACConfig(hidden_sizes=[16])).target_entropy == -17.0
    assert SAC(narrow, SACConfig(hidden_sizes=[16], target_entropy=-3.0)).target_entropy == -3.0
