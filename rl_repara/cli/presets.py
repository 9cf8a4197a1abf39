"""What the presets set, said once: the values a run took from ``conf/tuned/<agent>_<env>.yaml``
(the agent values tuned for that pair) and, for ``env.id=X`` without ``env=NAME``, from the env
preset it kept. The command line wins over both; a key it set is never listed.
"""

from __future__ import annotations

from typing import Any

from rl_repara.cli.schemas import command_line_keys, conf_values
from rl_repara.data.envs import make_env
from rl_repara.training.config import TrainConfig


def override_keys(hc: Any) -> set[str]:
    """The config keys the user set on the command line (``+key``/``++key`` included)."""
    return set(command_line_keys(hc.overrides.task))


def _value_keys(hc: Any) -> set[str]:
    """The config keys the user set a value of (``agent.lr=...``), not a config group's choice
    (``agent=tqc``, ``env=hopper``)."""
    return override_keys(hc) - set(hc.runtime.choices)


def _set_here(key: str, user_keys: set[str]) -> bool:
    """Whether the command line set ``key`` (or a config node above it)."""
    return any(key == k or key.startswith(k + ".") for k in user_keys)


def _value(config: TrainConfig, key: str) -> Any:
    obj: Any = config
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _show(value: Any) -> str:
    """A value as the command line writes it (``0.001``, ``[400,300]``, ``true``, ``null``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _from_file(config: TrainConfig, values: dict[str, Any], user_keys: set[str]) -> str:
    """``key=value, ...`` of the values a conf file set that this run kept (not set here)."""
    kept = [k for k, v in values.items() if not _set_here(k, user_keys) and _value(config, k) == v]
    return ", ".join(f"{k}={_show(_value(config, k))}" for k in kept)


def _tuned(config: TrainConfig, hc: Any) -> tuple[str, str]:
    """(``key=value, ...``, its file) of the values ``conf/tuned/<agent>_<env>.yaml`` gave this
    run, the keys the command line did not set; ("", "") when no such file applied."""
    pair = hc.runtime.choices.get("tuned")
    values = _from_file(config, conf_values("tuned", pair), _value_keys(hc)) if pair else ""
    return (values, f"conf/tuned/{pair}.yaml") if values else ("", "")


def _env_id_note(config: TrainConfig, hc: Any) -> str:
    """``env.id=X`` without ``env=NAME`` keeps the env preset's other values and its tuning:
    the note naming those this run kept ("" when it kept none, or ``env.id`` was not set)."""
    user_keys = override_keys(hc)
    choices = hc.runtime.choices
    preset = choices.get("env")
    if "env.id" not in user_keys or "env" in user_keys or not preset:
        return ""
    env_values = {k: v for k, v in conf_values("env", preset).items() if k != "env.id"}
    inherited, (tuned, source) = _from_file(config, env_values, _value_keys(hc)), _tuned(config, hc)
    parts = [f"the '{preset}' preset's other values ({inherited})"] if inherited else []
    parts += [f"its tuning for {choices.get('agent')} ({tuned}; {source})"] if tuned else []
    if not parts:
        return ""
    return (
        f"note: env.id={config.env.id} runs with {' and '.join(parts)} unless set here; "
        "env=NAME picks a closer preset (conf/env/), ~tuned drops the tuning."
    )


def _tuned_line(config: TrainConfig, hc: Any) -> str:
    """``tuned for (tqc, Pendulum-v1): agent.lr=0.001 (conf/tuned/tqc_pendulum.yaml)``, or ""."""
    tuned, source = _tuned(config, hc)
    if not tuned:
        return ""
    choices = hc.runtime.choices
    preset = choices.get("env")
    env_id = conf_values("env", preset).get("env.id", config.env.id) if preset else config.env.id
    return f"tuned for ({choices.get('agent')}, {env_id}): {tuned} ({source})"


def say_what_the_presets_set(config: TrainConfig, hc: Any) -> None:
    """One line at the start of a fresh run: the env.id note (which names the tuned values too),
    else the tuned values applied; nothing when neither applies. The env is made first, so that
    an env error comes alone, before any line."""
    line = _env_id_note(config, hc) or _tuned_line(config, hc)
    if line:
        make_env(config.env.id, config.env.kwargs).close()
        print(f"[rl_repara] {line}", flush=True)
