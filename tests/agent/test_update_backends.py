"""The update written once (``agent/update.py``) over its two backends: the functional backend
(``torch.func`` gradients, Adam on the optimizers' state; what ``agent.compile=true`` compiles)
gives the autograd backend's metrics, weights, norm statistics, optimizer state and actions for
every preset of ``conf/agent/``, compiled or not; Adam steps equal ``torch.optim.Adam``'s; and
checkpoints move between the two."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch._dynamo.utils import counters

from rl_repara import SAC, Batch, SACConfig, TanhGaussianPolicy
from rl_repara.agent.backends import adam_step, ensure_adam_state, make_update
from rl_repara.agent.presets import agent_names, sac_config

OBS_DIM, ACT_DIM, B, HIDDEN = 5, 3, 32, [16, 16]
# every preset at test size: small nets, and Batch Renorm past its warm-up after 2 steps (so its
# renorm corrections r, d are exercised)
SMALL = {
    "hidden_sizes": HIDDEN,
    "critic_hidden_sizes": HIDDEN,
    "batch_size": B,
    "brn_warmup_steps": 2,
    "compile": False,
}
VARIANTS = {  # beside the presets: settings the presets leave at their defaults
    "fixed_alpha": {"autotune_alpha": False, "init_alpha": 0.2},
    "normalize_obs": {"normalize_obs": True, "policy_delay": 2, "target_update_every": 3},
    "bf16": {"precision": "bf16"},
    "crossq_dropout": {"critic_dropout": 0.1},
    "hl_gauss": {"num_bins": 21, "v_min": -5.0, "v_max": 5.0, "target_rule": "hl_gauss"},
    "schedules": {"lr_schedule": "cosine", "lr_decay_updates": 3, "reward_scaling": "return_std_max"},
    "unit_norm": {"post_step_hooks": ["unit_norm_weights"], "policy_delay": 2},
}


def preset_config(name: str, **overrides) -> SACConfig:
    """``conf/agent/<name>.yaml`` (or a variant of sac.yaml) at test size."""
    if name in VARIANTS:
        base, extra = ("crossq", VARIANTS[name]) if name.startswith("crossq") else ("sac", VARIANTS[name])
    else:
        base, extra = name, {}
    kwargs = {**SMALL, **extra, **overrides}
    arch = sac_config(base).critic_arch
    if arch == "residual":
        kwargs["critic_arch_kwargs"] = {"width": 16, "blocks": 1}
    elif arch == "batchnorm":
        kwargs["critic_arch_kwargs"] = {"hidden_sizes": HIDDEN}
    elif arch in ("hyperspherical", "flash"):
        kwargs["critic_arch_kwargs"] = kwargs["actor_arch_kwargs"] = {"width": 16, "blocks": 1}
    return sac_config(base, **kwargs)


def make_sac(config: SACConfig | None = None, **overrides) -> SAC:
    """A small learner; with ``normalize_obs`` its statistics are those of shifted, scaled data."""
    torch.manual_seed(0)
    cfg = config or SACConfig(**{**SMALL, **overrides})
    sac = SAC(TanhGaussianPolicy(OBS_DIM, ACT_DIM, **cfg.policy_kwargs()), cfg, seed=3)
    if sac.policy.obs_normalizer is not None:
        sac.policy.obs_normalizer.update(3.0 + 2.0 * torch.randn(500, OBS_DIM))
    for step in range(30):  # reward scaling: statistics of some returns (a no-op without it)
        sac.observe_rewards(torch.tensor([1.0 + step % 4]), torch.tensor([step % 10 == 9]))
    return sac


def make_batch(seed: int) -> Batch:
    """Random transitions; odd seeds carry an n-step ``discount`` as the buffer makes one."""
    g = torch.Generator().manual_seed(seed)
    terminated = (torch.rand(B, generator=g) < 0.1).float()
    discount = 0.99 ** torch.randint(1, 4, (B,), generator=g) * (1 - terminated) if seed % 2 else None
    return Batch(
        torch.randn(B, OBS_DIM, generator=g),
        torch.rand(B, ACT_DIM, generator=g) * 2 - 1,
        torch.randn(B, generator=g),
        torch.randn(B, OBS_DIM, generator=g),
        terminated,
        discount,
    )


def state(sac: SAC) -> dict[str, torch.Tensor]:
    """Every tensor an update changes: weights, norm statistics, log α, Adam's moments and steps."""
    named = {f"nets.{k}": v for k, v in sac.nets.state_dict().items()}
    for key, optimizer in sac.optimizers.items():
        for i, s in enumerate(optimizer.state.values()):
            named.update({f"{key}.{i}.{k}": torch.as_tensor(v) for k, v in s.items()})
    return {k: v.detach().clone().float() for k, v in named.items()}


def assert_same_state(got: SAC, want: SAC, rtol: float, atol: float) -> None:
    """``state`` of both equal, an optimizer that never stepped holding Adam's zero state."""
    for sac in (got, want):
        for optimizer in sac.optimizers.values():
            ensure_adam_state(optimizer)
    mine, theirs = state(got), state(want)
    assert mine.keys() == theirs.keys()
    for name, value in theirs.items():
        torch.testing.assert_close(mine[name], value, rtol=rtol, atol=atol, msg=name)


PRESETS = sorted(agent_names())


def test_the_presets_include_each_learner_the_library_ships():
    shipped = {"sac", "crossq", "tqc", "droq", "redq", "sac_residual", "xqc", "simbav2", "flashsac"}
    assert shipped <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS + sorted(VARIANTS))
def test_the_functional_backend_is_the_autograd_backend(preset):
    """Run uncompiled, the function ``agent.compile=true`` compiles (the one update over the
    functional backend, plugged into a learner) gives the eager learner's metrics, weights, norm
    statistics, optimizer state and actions after 5 updates (delayed actor and target steps,
    schedules and reward scaling included) within 1e-5: the same random draws in the same
    order, gradients by ``torch.func`` instead of ``backward()``."""
    config = preset_config(preset)
    eager, functional = make_sac(config), make_sac(copy.deepcopy(config))
    functional._compiled = make_update(functional)  # the compiled path's function, uncompiled
    for step in range(5):
        batch = make_batch(step)
        torch.manual_seed(10 + step)
        info_eager, expected = eager.update_and_act(batch, batch.next_obs[:4])
        torch.manual_seed(10 + step)
        info, actions = functional.update_and_act(batch, batch.next_obs[:4])
        for got, want in zip(actions, expected):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=(preset, step))
        assert set(info) == set(info_eager), (preset, step)
        for key, value in info.items():
            want = float(info_eager[key])
            assert float(value) == pytest.approx(want, rel=1e-5, abs=1e-6), (preset, step, key)
    assert_same_state(functional, eager, rtol=1e-5, atol=1e-6)


def test_adam_step_is_torch_adam():
    """Five steps of ``adam_step`` with given gradients move the weights and the optimizer's
    state exactly as ``torch.optim.Adam.step`` with the same gradients in ``.grad``."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    mirror = [torch.nn.Parameter(p.detach().clone()) for p in params]
    ours = torch.optim.Adam(params, lr=1e-2, betas=(0.5, 0.999))
    theirs = torch.optim.Adam(mirror, lr=1e-2, betas=(0.5, 0.999))
    ensure_adam_state(ours)
    for _ in range(5):
        grads = [torch.randn_like(p) for p in params]
        with torch.no_grad():
            adam_step(ours, grads)
        for p, g in zip(mirror, grads):
            p.grad = g.clone()
        theirs.step()
    for p, q in zip(params, mirror):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    for p, q in zip(params, mirror):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(ours.state[p][key], theirs.state[q][key])


def test_the_whole_update_steps_log_alpha_with_beta1_0_9_whatever_adam_beta1_says():
    """``adam_beta1=0.5`` (CrossQ's) is the actor's and the critics' β1; the whole update's Adam
    step for log α, which reads the optimizer's betas, uses 0.9 as the eager update does. The
    α gradient ``−mean(log π + H)`` (the α loss over log α), replayed through torch's Adam with
    betas (0.9, 0.999), gives the learner's log α after every update."""
    sac = make_sac(adam_beta1=0.5, lr=1e-2, init_alpha=0.5)
    update = make_update(sac)
    mirror = torch.nn.Parameter(sac.log_alpha.detach().clone())
    reference = torch.optim.Adam([mirror], lr=1e-2, betas=(0.9, 0.999))
    for step in range(5):
        log_alpha = sac.log_alpha.item()
        sac.num_updates += 1
        info, _ = update(make_batch(step), None, True, True, None)
        mirror.grad = torch.tensor(float(info["alpha_loss"]) / log_alpha)
        reference.step()
        assert sac.log_alpha.item() == pytest.approx(mirror.item(), rel=1e-5, abs=1e-6), step


def test_a_checkpoint_moves_between_the_eager_and_the_whole_update():
    """A state saved by the eager learner before any update (empty Adam state) trains on in
    the whole update, and the state it writes resumes in the eager learner, which then takes
    the same step as the whole update does."""
    fresh = make_sac()
    functional = make_sac()
    functional.load_state_dict(fresh.state_dict())
    ensure_adam_state(functional.actor_optimizer)  # what SAC(compile=True).load_state_dict does
    ensure_adam_state(functional.critic_optimizer)
    ensure_adam_state(functional.alpha_optimizer)
    update = make_update(functional)
    for step in range(2):
        functional.num_updates += 1
        update(make_batch(step), None, True, True, None)
    eager = make_sac()
    eager.load_state_dict(copy.deepcopy(functional.state_dict()))
    torch.manual_seed(5)
    eager.update(make_batch(7))
    torch.manual_seed(5)
    functional.num_updates += 1
    update(make_batch(7), None, True, True, None)
    assert_same_state(eager, functional, rtol=1e-5, atol=1e-6)


def test_optimizer_settings_the_compiled_adam_lacks_are_refused():
    sac = make_sac()
    sac.critic_optimizer.param_groups[0]["weight_decay"] = 1e-4
    with pytest.raises(ValueError, match="agent.compile=true runs Adam without weight_decay"):
        ensure_adam_state(sac.critic_optimizer)


def test_compile_without_a_cpp_compiler_is_refused_before_the_run_starts(tmp_path):
    """Inductor builds CPU kernels with a C++ compiler; without one, ``agent.compile=true`` is a
    one-line ``ConfigError`` naming the fix, raised by the learner and by ``train`` before the run
    dir exists (not a traceback at the first update)."""
    import torch._inductor.config as inductor_config

    from rl_repara import ConfigError, EnvConfig, EvalConfig, TrainConfig, train

    with inductor_config.patch({"cpp.cxx": ("rl-repara-no-such-cxx",)}):
        message = re.escape("agent.compile=true on a CPU needs a C++ compiler")
        with pytest.raises(ConfigError, match=message) as refused:
            make_sac(compile=True)
        assert str(refused.value).endswith("or set agent.compile=false.")
        make_sac()  # eager needs no compiler
        cfg = TrainConfig(
            env=EnvConfig(id="Pendulum-v1"),
            agent=SACConfig(compile=True, hidden_sizes=[8]),
            total_steps=20,
            run_dir=str(tmp_path / "run"),
            eval=EvalConfig(every_steps=0),
        )
        with pytest.raises(ConfigError, match=message):
            train(cfg)
    assert not (tmp_path / "run").exists()


def test_compile_true_takes_the_whole_update_for_every_learner_and_auto_is_eager_in_a_bare_learner():
    """``agent.compile=true`` on a CPU compiles the whole update, Batch Renorm learners (CrossQ)
    included; ``false`` and ``auto`` (decided by ``train`` from the run's length; a learner
    built directly has none) run eager."""
    assert make_sac(preset_config("sac", compile=True)).compiled_whole_update
    assert make_sac(preset_config("crossq", compile=True)).compiled_whole_update
    assert not make_sac(preset_config("crossq", compile="auto")).compiled_whole_update
    assert not make_sac().compiled_whole_update


def test_a_compiled_learner_resumes_a_checkpoint_saved_before_its_first_update(fresh_dynamo):
    """``SAC(compile=True).load_state_dict`` of a state with empty Adam state (saved before any
    update) gives the optimizers the state the compiled Adam step runs on."""
    compiled = make_sac(compile=True)
    compiled.load_state_dict(make_sac().state_dict())
    info = compiled.update(make_batch(0))
    assert all(torch.isfinite(torch.tensor(v)) for v in info.values())
    assert all(float(s["step"]) == 1.0 for s in compiled.critic_optimizer.state.values())


def update_beside_eager(eager: SAC, compiled: SAC, batch: Batch, seed: int, rel: float) -> None:
    """One update of each on ``batch`` from the global seed ``seed``, each then acting on the
    batch's next observations (``update_and_act``: the compiled learner samples inside its
    graph); the compiled learner's metrics and actions within ``rel`` of the eager one's."""
    torch.manual_seed(seed)
    info_eager, actions_eager = eager.update_and_act(batch, batch.next_obs)
    torch.manual_seed(seed)
    info, actions = compiled.update_and_act(batch, batch.next_obs)
    assert info.keys() == info_eager.keys()
    for key, value in info_eager.items():
        assert float(info[key]) == pytest.approx(float(value), rel=rel, abs=rel / 10), (seed, key)
    for got, want in zip(actions, actions_eager):
        # actions in the unit box (and env units of the same size): 1e-5 absolute is 1e-5 agreement
        torch.testing.assert_close(got, want, rtol=rel, atol=rel, msg=f"actions, seed {seed}")


def compiled_beside_eager(config: SACConfig, steps: int, rel: float) -> tuple[SAC, SAC]:
    eager = make_sac(config)
    compiled = make_sac(_compiled(config))
    assert compiled.compiled_whole_update
    for step in range(steps):
        update_beside_eager(eager, compiled, make_batch(2 * step), step, rel)
    return eager, compiled


def _compiled(config: SACConfig) -> SACConfig:
    out = copy.deepcopy(config)
    out.compile = True
    return out


# one graph per schedule the preset runs in 3 updates: an actor step or not (policy delay)
@pytest.mark.parametrize("preset", PRESETS)
def test_the_compiled_update_is_one_graph_and_equals_eager(fresh_dynamo, preset):
    """Compiled (drawing through torch's RNG, ``COMPILE_OPTIONS``), every preset, Batch Renorm
    (CrossQ) and dropout (DroQ) included: no graph break, one graph per schedule (with and
    without the delayed actor step), and the eager update's metrics, actions, weights, norm
    statistics and optimizer state within 1e-5 after 3 updates (what is left is fp
    reassociation in fused kernels)."""
    config = preset_config(preset)
    counters.clear()
    eager, compiled = compiled_beside_eager(config, 3, 1e-5)
    assert not counters["graph_break"], dict(counters["graph_break"])
    schedules = {(n % config.policy_delay == 0, n % config.target_update_every == 0) for n in (1, 2, 3)}
    assert counters["stats"]["unique_graphs"] == len(schedules)
    assert_same_state(compiled, eager, rtol=1e-5, atol=1e-6)


def test_compiled_bf16_update_stays_close_to_eager_bf16(fresh_dynamo):
    """bf16 autocast inside the compiled graph: the metrics of 3 updates stay within bf16's
    rounding (2 %) of the eager bf16 update's, and the weights within 1e-3."""
    eager, compiled = compiled_beside_eager(preset_config("bf16"), 3, 2e-2)
    assert_same_state(compiled, eager, rtol=1e-2, atol=1e-3)


def test_the_compiled_update_sees_a_module_attribute_changed_after_it_compiled(fresh_dynamo):
    """Its guards see a module attribute changed after the first update: with the policy's
    log-std bounds narrowed, the compiled update compiles again and still matches the eager
    update (a guard setting that skips unchanged-looking modules must not hide it)."""
    eager, compiled = compiled_beside_eager(preset_config("sac"), 1, 1e-5)
    for sac in (eager, compiled):
        sac.policy.log_std_bounds = (-1.0, 0.5)
    counters.clear()
    update_beside_eager(eager, compiled, make_batch(7), 7, 1e-5)
    assert counters["stats"]["unique_graphs"] == 1, "no new graph for the changed bounds"
