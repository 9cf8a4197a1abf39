"""``precision=bf16`` runs only where bf16 matmuls are in hardware: on a CPU without AVX512_BF16
(or AMX-BF16, or Arm's BF16) it is refused with one line naming the key and the fix, since
emulated bf16 runs ~18x slower than fp32. The hardware is mocked: these tests pass on any CPU."""

from __future__ import annotations

import pytest
import torch

from rl_repara import SAC, EnvConfig, EvalConfig, SACConfig, TanhGaussianPolicy, TrainConfig, train
from rl_repara import device as device_mod
from rl_repara.agent import requirements as requirements_mod
from rl_repara.agent.requirements import check_precision
from rl_repara.cli.errors import run_cli
from rl_repara.errors import ConfigError

ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
AVX2_ONLY = frozenset({"avx", "avx2", "fma"})
CPU = torch.device("cpu")


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend the CPU has the given ``/proc/cpuinfo`` flags (None: unreadable)."""

    def set_flags(flags):
        monkeypatch.setattr(device_mod, "cpu_flags", lambda: flags)
        monkeypatch.setattr(requirements_mod, "cpu_name", lambda: "AMD EPYC (mocked)")

    return set_flags


@pytest.mark.parametrize(
    "flags, expected",
    [(ZEN4, True), (AVX2_ONLY, False), (frozenset({"fp", "asimd", "bf16"}), True), (None, None)],
)
def test_bf16_hardware_is_read_from_the_cpu_flags(cpu_with, flags, expected):
    cpu_with(flags)
    assert device_mod.bf16_supported(CPU) is expected


def test_real_cpu_flags_are_read_on_linux():
    flags = device_mod.cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo here")
    assert any(f in flags for f in ("fpu", "fp", "sse2", "asimd"))  # a real flag list


def test_bf16_without_hardware_is_refused_with_the_key_and_the_fix(cpu_with):
    cpu_with(AVX2_ONLY)
    with pytest.raises(ConfigError) as info:
        SAC(TanhGaussianPolicy(3, 1, hidden_sizes=[8]), SACConfig(precision="bf16", hidden_sizes=[8]))
    message = str(info.value)
    assert "\n" not in message
    assert "agent.precision=bf16 needs bf16 matmul hardware" in message
    assert "AMD EPYC (mocked)" in message and "18x slower" in message
    assert message.endswith("Set agent.precision=fp32.")


@pytest.mark.parametrize("flags", [ZEN4, None])
def test_bf16_runs_with_hardware_or_when_the_cpu_cannot_be_told(cpu_with, flags):
    cpu_with(flags)
    check_precision(SACConfig(precision="bf16"), CPU)  # no error


def test_fp32_is_never_refused(cpu_with):
    cpu_with(AVX2_ONLY)
    check_precision(SACConfig(), CPU)
    SAC(TanhGaussianPolicy(3, 1, hidden_sizes=[8]), SACConfig(hidden_sizes=[8]))


def test_the_command_line_prints_the_refusal_as_one_line_and_exits_2(cpu_with, tmp_path, capsys, cli_process):
    """What a user of ``rl-repara-train agent.precision=bf16`` sees on an AVX2-only CPU."""
    cpu_with(AVX2_ONLY)
    cfg = TrainConfig(
        env=EnvConfig(id="Pendulum-v1"),
        agent=SACConfig(precision="bf16", hidden_sizes=[8], learning_starts=10),
        total_steps=20,
        run_dir=str(tmp_path / "run"),
        eval=EvalConfig(every_steps=0),
    )
    with pytest.raises(SystemExit) as exit_info:
        run_cli("rl-repara-train", TrainConfig, lambda: train(cfg))
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("rl-repara-train: error: agent.precision=bf16 needs bf16 matmul hardware")
    assert lines[0].endswith("Set agent.precision=fp32.")
