"""Reproducibility on CPU: the same seed gives the same run bit for bit, and a run stopped at
step N and resumed to N + M logs exactly what an uninterrupted N + M run logs.

The runs are compared through what a user sees: the ``losses/*`` and
``charts/episodic_return`` scalars in the TensorBoard event files (``charts/SPS`` is wall-clock
time and is left out), and the weights in the final checkpoint.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

import pytest
import torch
from support import scalars

from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig, train
from rl_repara.agent.presets import preset_values
from rl_repara.rng import seed_everything
from rl_repara.training.checkpoint import find_checkpoint, load_checkpoint
from rl_repara.training.config import LogConfig
from rl_repara.training.logger import LOSS_TAGS
from rl_repara.training.trainer import Trainer

COMPARED = sorted(LOSS_TAGS.values()) + ["charts/episodic_return"]
Series = dict[str, list[tuple[int, float]]]


TOTAL, LEARNING_STARTS, LOG_EVERY = 320, 150, 10


def _config(
    run_dir: Path,
    env_id: str = "Pendulum-v1",
    total: int = TOTAL,
    seed: int = 0,
    eval_every: int = 160,
    normalize_obs: bool = False,
) -> TrainConfig:
    """Tiny nets, few updates: a 320-step run takes about a second."""
    return TrainConfig(
        env=EnvConfig(id=env_id),
        seed=seed,
        total_steps=total,
        run_dir=str(run_dir),
        torch_threads=1,
        agent=SACConfig(
            learning_starts=LEARNING_STARTS, hidden_sizes=[16, 16], batch_size=16, normalize_obs=normalize_obs
        ),
        eval=EvalConfig(every_steps=eval_every, episodes=1),
        log=LogConfig(progress="none", every_steps=LOG_EVERY),
    )


def read_scalars(run_dir: Path) -> Series:
    """Every (step, value) of the compared tags in ``run_dir/tb``, all event files merged the
    way TensorBoard shows them (events purged on resume are dropped)."""
    return {tag: series for tag, series in scalars(run_dir).items() if tag in COMPARED}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    sac = load_checkpoint(find_checkpoint(run_dir))["sac"]
    out = {f"policy.{k}": v for k, v in sac["policy"].items()}
    out.update({f"critics.{k}": v for k, v in sac["critics"].items()})
    out["log_alpha"] = sac["log_alpha"]
    return out


def _assert_same_series(a: Series, b: Series) -> None:
    assert sorted(a) == sorted(b)
    for tag in a:
        steps_a, steps_b = [s for s, _ in a[tag]], [s for s, _ in b[tag]]
        assert steps_a == steps_b, f"{tag}: logged at different steps"
        diff = [(s, x, y) for (s, x), (_, y) in zip(a[tag], b[tag]) if x != y]
        assert not diff, f"{tag}: first differences (step, a, b): {diff[:3]}"


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"weights differ: {differ}"


@pytest.fixture(scope="module")
def pendulum_straight(tmp_path_factory) -> Path:
    """One uninterrupted Pendulum run (seed 0), shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("straight")
    train(_config(run_dir))
    return run_dir


def test_same_seed_gives_bit_identical_metrics_and_weights(pendulum_straight, tmp_path):
    train(_config(tmp_path / "again"))
    first, second = read_scalars(pendulum_straight), read_scalars(tmp_path / "again")
    assert set(first) == set(COMPARED)
    logged_at = [s for s, _ in first["losses/qf_loss"]]
    assert logged_at == list(range(LEARNING_STARTS, TOTAL + 1, LOG_EVERY))
    _assert_same_series(first, second)
    _assert_same_weights(_weights(pendulum_straight), _weights(tmp_path / "again"))


def test_another_seed_gives_other_metrics(pendulum_straight, tmp_path):
    train(_config(tmp_path / "seed1", seed=1))
    first, other = read_scalars(pendulum_straight), read_scalars(tmp_path / "seed1")
    for tag in ("losses/qf_loss", "losses/actor_loss", "charts/episodic_return"):
        values_0 = [v for _, v in first[tag]]
        values_1 = [v for _, v in other[tag]]
        assert values_0 != values_1, f"{tag} is the same for seeds 0 and 1"


def _stop_and_resume(run_dir: Path, env_id: str, stop_at: int, total: int, **kw) -> None:
    train(_config(run_dir, env_id, total=stop_at, **kw))
    assert load_checkpoint(find_checkpoint(run_dir))["counters"]["global_step"] == stop_at
    train(TrainConfig(resume=str(run_dir), total_steps=total, log=LogConfig(progress="none")))


@pytest.mark.parametrize("stop_at", [250, 200], ids=["mid-episode", "at-episode-end"])
def test_pendulum_resume_is_bit_exact(pendulum_straight, tmp_path, stop_at):
    """Pendulum episodes last 200 steps: stopping at 250 cuts an episode in half (the env is
    restored from its snapshot); stopping at 200 stops right after a truncation, whose step
    already returned the next episode's first obs (SAME_STEP autoreset)."""
    _stop_and_resume(tmp_path / "resumed", "Pendulum-v1", stop_at, TOTAL)
    _assert_same_series(read_scalars(pendulum_straight), read_scalars(tmp_path / "resumed"))
    _assert_same_weights(_weights(pendulum_straight), _weights(tmp_path / "resumed"))


@pytest.mark.parametrize("normalize_obs", [False, True], ids=["raw-obs", "normalized-obs"])
def test_hopper_resume_is_bit_exact_mid_episode_and_at_an_episode_end(tmp_path, normalize_obs):
    """Hopper-v5 (MuJoCo, its physics restored through MuJoCo's state API). Its random-action episodes
    end early at steps the straight run shows; stop once just after one ends and once in the
    middle of one. With observation normalization its running statistics are part of the
    state too."""
    pytest.importorskip("mujoco")
    total, kw = TOTAL, {"eval_every": 0, "normalize_obs": normalize_obs}
    train(_config(tmp_path / "straight", "Hopper-v5", total=total, **kw))
    straight = read_scalars(tmp_path / "straight")
    ends = [s for s, _ in straight["charts/episodic_return"]]
    at_end = next(s for s in ends if s >= LEARNING_STARTS + 20)
    mid = next(s for s in range(at_end + 5, total) if s not in ends and s - 1 not in ends)
    failures = {}
    for name, stop_at in (("mid-episode", mid), ("at-episode-end", at_end)):
        _stop_and_resume(tmp_path / name, "Hopper-v5", stop_at, total, **kw)
        try:
            _assert_same_series(straight, read_scalars(tmp_path / name))
            _assert_same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / name))
        except AssertionError as exc:
            failures[f"{name} (stopped at {stop_at})"] = str(exc).splitlines()[0]
    assert not failures, failures


def test_ant_resume_is_bit_exact_mid_episode(tmp_path):
    """Ant-v5 rewards forward motion read from ``data.xpos``, a field that ``mj_step`` leaves
    one step stale: restoring only the integration state and calling ``mj_forward`` gave a
    different first reward after the resume. The snapshot keeps those stale fields too
    (``env_state._DERIVED_FIELDS``)."""
    pytest.importorskip("mujoco")
    total, kw = TOTAL, {"eval_every": 0}
    train(_config(tmp_path / "straight", "Ant-v5", total=total, **kw))
    straight = read_scalars(tmp_path / "straight")
    ends = [s for s, _ in straight.get("charts/episodic_return", [])]
    stop_at = next(s for s in range(250, total) if s not in ends and s - 1 not in ends)
    _stop_and_resume(tmp_path / "resumed", "Ant-v5", stop_at, total, **kw)
    _assert_same_series(straight, read_scalars(tmp_path / "resumed"))
    _assert_same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))


def test_dm_control_resume_is_bit_exact_mid_episode_and_at_an_episode_end(tmp_path):
    """DeepMind Control (walker-run through shimmy): its physics state, the task's random state and
    dm_control's own step counter are restored. Its episodes last 1000 steps: stop in the
    middle of the first one, and right after it ends (the step that truncates it)."""
    pytest.importorskip("shimmy")
    env_id, total, kw = "dm_control/walker-run-v0", 1100, {"eval_every": 0}
    train(_config(tmp_path / "straight", env_id, total=total, **kw))
    straight = read_scalars(tmp_path / "straight")
    assert [s for s, _ in straight["charts/episodic_return"]] == [1000]
    for name, stop_at in (("mid-episode", 600), ("at-episode-end", 1000)):
        _stop_and_resume(tmp_path / name, env_id, stop_at, total, **kw)
        _assert_same_series(straight, read_scalars(tmp_path / name))
        _assert_same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / name))


def test_env_without_snapshot_resumes_with_a_warning_and_keeps_learning(tmp_path):
    """LunarLanderContinuous (Box2D) cannot be snapshotted: resume warns, starts new episodes
    and trains on to the new total, logging losses past the stop step. With 3-step returns the
    last stored row is marked truncated, so no window runs from it into the new episode."""
    pytest.importorskip("Box2D")
    env_id = "LunarLanderContinuous-v3"
    config = _config(tmp_path, env_id, total=200, eval_every=0)
    config.agent.n_step, config.agent.noise_beta = 3, 1.0
    train(config)
    before = load_checkpoint(find_checkpoint(tmp_path))
    with pytest.warns(UserWarning, match=r"LunarLanderContinuous-v3 cannot be snapshotted"):
        result = train(TrainConfig(resume=str(tmp_path), total_steps=TOTAL, log=LogConfig(progress="none")))
    assert result.global_step == TOTAL
    steps = [s for s, _ in read_scalars(tmp_path)["losses/qf_loss"]]
    assert steps == list(range(LEARNING_STARTS, TOTAL + 1, LOG_EVERY))  # no gap, no duplicate
    after = load_checkpoint(find_checkpoint(tmp_path))
    assert after["counters"]["global_step"] == TOTAL
    n = before["buffer"]["size"]
    assert after["buffer"]["size"] > n + (TOTAL - 200) * 3 // 4  # new transitions stored ...
    for key, old in before["buffer"]["data"].items():  # ... after the restored ones
        if key == "truncated":  # the last row before the resume: its episode ends there
            assert bool(after["buffer"]["data"]["truncated"][n - 1] or old_ended(before, n - 1))
            old = old[: n - 1]
        assert torch.equal(after["buffer"]["data"][key][: len(old)], old), key


def old_ended(state: dict, row: int) -> bool:
    """Whether ``row`` of a checkpoint's buffer ended its episode already (no link to mark)."""
    data = state["buffer"]["data"]
    return bool(data["terminated"][row] or data["truncated"][row] or not data["valid"][row])


FAMILY = {
    "crossq": {"target_network": False, "critic_norm": "batchrenorm", "actor_norm": "batchrenorm",
               "policy_delay": 3, "adam_beta1": 0.5, "brn_warmup_steps": 60},
    "tqc": {"num_critics": 3, "num_quantiles": 5, "drop_quantiles": 1, "actor_q": "mean"},
    "droq": {"critic_dropout": 0.01, "critic_norm": "layer", "utd": 2, "policy_delay": 2},
    "redq": {"num_critics": 4, "critic_subset": 2, "utd": 2, "policy_delay": 2, "actor_q": "mean"},
    "nstep-pink": {"n_step": 3, "noise_beta": 1.0},
}  # fmt: skip
TINY_UNITS = {"width": 16, "blocks": 1}
# The 2025-26 presets as conf/agent/<name>.yaml has them (categorical critics, reward scaling,
# unit-norm projections, lr schedules), at tiny sizes; the lr decays over the first 100 updates,
# so the resumed half runs on lr_end.
DECAY = {"lr_decay_updates": 100}
TINY_NETS = {"critic_arch_kwargs": TINY_UNITS, "actor_arch_kwargs": TINY_UNITS, **DECAY}
FAMILY |= {
    "xqc": {**preset_values("xqc"), "critic_arch_kwargs": {"hidden_sizes": [16, 16]}, **DECAY},
    "simbav2": {**preset_values("simbav2"), **TINY_NETS},
    "flashsac": {**preset_values("flashsac"), **TINY_NETS},
}


@pytest.mark.parametrize("variant", list(FAMILY))
def test_every_sac_family_preset_resumes_bit_exactly(tmp_path, variant):
    """Stop mid-episode and resume: every preset's state (Batch Renorm statistics, the REDQ
    subset generator, dropout's RNG, n-step windows, the colored-noise sequences, the reward
    scaler's statistics, the lr schedule's position, observation statistics) comes back,
    so the resumed run logs what the straight one logs, bit for bit."""

    def config(run_dir: Path, total: int) -> TrainConfig:
        cfg = _config(run_dir, total=total, eval_every=0)
        tiny = {"learning_starts": LEARNING_STARTS, "hidden_sizes": [16, 16], "batch_size": 16}
        cfg.agent = SACConfig(**{**FAMILY[variant], **tiny})
        return cfg

    train(config(tmp_path / "straight", TOTAL))
    train(config(tmp_path / "resumed", 250))
    train(TrainConfig(resume=str(tmp_path / "resumed"), total_steps=TOTAL, log=LogConfig(progress="none")))
    straight = read_scalars(tmp_path / "straight")
    assert len(straight["losses/qf_loss"]) == (TOTAL - LEARNING_STARTS) // LOG_EVERY + 1
    _assert_same_series(straight, read_scalars(tmp_path / "resumed"))
    _assert_same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))


def _trainer(run_dir: Path, state: Optional[dict[str, Any]] = None, **agent: Any) -> Trainer:
    """A Trainer of the tiny Pendulum config (``agent`` overrides), fresh or loaded from
    ``state``."""
    cfg = _config(run_dir, eval_every=0)
    for key, value in agent.items():
        setattr(cfg.agent, key, value)
    cfg.validate()
    seed_everything(cfg.seed)
    trainer = Trainer(cfg, run_dir, torch.device("cpu"))
    if state is None:
        trainer.start()
    else:
        trainer.load_state_dict(state)
    return trainer


def _step_to(trainer: Trainer, steps: int) -> Trainer:
    """Collect + learn iterations up to ``steps`` env steps."""
    while trainer.global_step < steps:
        trainer.collect()
        trainer.learn()
    return trainer


def _stepped(
    run_dir: Path, steps: int, acts_in_update: bool, state: Optional[dict[str, Any]] = None
) -> Trainer:
    """``_trainer`` with ``acts_in_update`` forced, stepped to ``steps``."""
    trainer = _trainer(run_dir, state)
    trainer.acts_in_update = acts_in_update
    return _step_to(trainer, steps)


def _assert_same_run(a: Trainer, b: Trainer) -> None:
    data_a, data_b = a.buffer.state_dict()["data"], b.buffer.state_dict()["data"]
    differ = [k for k in data_a if not torch.equal(data_a[k], data_b[k])]
    assert not differ, f"stored transitions differ: {differ}"
    for name in ("policy", "critics"):
        _assert_same_weights(getattr(a.sac, name).state_dict(), getattr(b.sac, name).state_dict())


def test_actions_drawn_by_the_update_change_nothing_and_resume_bit_exactly(tmp_path):
    """``Trainer.acts_in_update`` (on where the compiled update samples the next step's
    actions in its graph; forced here on the eager learner, which then samples them right
    after its update): the run is bit for bit the run that acts through ``explore``, and a
    state saved between an update and the step that takes its actions resumes bit for bit."""
    plain = _stepped(tmp_path / "plain", 200, acts_in_update=False)
    fused = _stepped(tmp_path / "fused", 200, acts_in_update=True)
    _assert_same_run(plain, fused)
    part = _stepped(tmp_path / "part", 180, acts_in_update=True)
    state = copy.deepcopy(part.state_dict())
    assert state["next_actions"] is not None, "no actions were pending after the update"
    resumed = _stepped(tmp_path / "resumed", 200, acts_in_update=True, state=state)
    _assert_same_run(fused, resumed)
    for trainer in (plain, fused, part, resumed):
        trainer.close()


def test_a_compiled_run_acts_in_its_update_and_resumes_bit_exactly(tmp_path):
    """With ``agent.compile=true`` the update draws the next actions in its graph; a state saved
    with those actions pending resumes to the same transitions and weights, bit for bit."""
    straight = _step_to(_trainer(tmp_path / "straight", compile=True), 180)
    assert straight.acts_in_update
    state = copy.deepcopy(straight.state_dict())
    assert state["next_actions"] is not None
    _step_to(straight, 200)
    resumed = _step_to(_trainer(tmp_path / "resumed", state, compile=True), 200)
    _assert_same_run(straight, resumed)
    for trainer in (straight, resumed):
        trainer.close()


@pytest.mark.parametrize(
    "agent, acts",
    [
        ({"compile": True}, True),
        ({"compile": True, "noise_beta": 1.0}, False),  # colored ε comes from the noise process
        ({"compile": True, "noise_repeat_max": 16}, False),  # so does held ε (FlashSAC)
        ({"compile": True, "normalize_obs": True}, False),  # acting updates the statistics
        ({"compile": True, "utd": 2}, False),  # the updates that do not act: a second graph
        ({}, False),  # eager: nothing to save
    ],
    ids=["compiled", "colored-noise", "held-noise", "normalize-obs", "utd-2", "eager"],
)
def test_the_update_acts_only_where_it_draws_what_explore_draws(tmp_path, agent, acts):
    trainer = _trainer(tmp_path, **agent)
    assert trainer.acts_in_update is acts
    trainer.close()
