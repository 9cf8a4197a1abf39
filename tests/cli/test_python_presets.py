"""``agent.presets.sac_config`` (no Hydra) gives the agent config the CLI composes, for every
agent preset alone and with every env preset it has tuned values for; and it refuses what the
CLI refuses, in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support import REPO, composed

from rl_repara import ConfigError
from rl_repara.agent.presets import agent_names, sac_config


def _pairs() -> list[tuple[str, str | None]]:
    """(agent, None) for each agent preset, and (agent, env) for each tuned pair file."""
    out: list[tuple[str, str | None]] = [(name, None) for name in agent_names()]
    for path in sorted((REPO / "conf" / "tuned").glob("*.yaml")):
        agent = next(a for a in sorted(agent_names(), key=len, reverse=True) if path.stem.startswith(a + "_"))
        out.append((agent, path.stem[len(agent) + 1 :]))
    return out


@pytest.mark.parametrize("agent, env", _pairs())
def test_sac_config_is_what_the_cli_composes(agent, env):
    # no env: the CLI's default env (pendulum) without its tuned pair file
    overrides = [f"agent={agent}"] + ([f"env={env}"] if env else ["~tuned"])
    cli = composed("config", overrides).agent
    assert dataclasses.asdict(sac_config(agent, env=env)) == dataclasses.asdict(cli)


def test_overrides_win_and_unknown_names_are_one_line_errors():
    assert sac_config("crossq", env="pendulum", lr=2e-3).lr == 2e-3
    with pytest.raises(ConfigError, match="no agent preset 'crossqq'; the presets are: crossq,"):
        sac_config("crossqq")
    with pytest.raises(ConfigError, match="SACConfig has no field lrr; its fields are:"):
        sac_config("sac", lrr=1e-3)
    with pytest.raises(ConfigError, match="tau must be in"):
        sac_config("sac", tau=2.0)


def test_the_pairs_cover_every_tuned_file():
    assert len(_pairs()) == len(agent_names()) + len(list(Path(REPO / "conf" / "tuned").glob("*.yaml")))
