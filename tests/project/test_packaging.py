"""What a non-editable install gets: the wheel ships every file under ``conf/`` (each config
group, ``search/`` included) as ``rl_repara/conf/...``, where ``cli_config.config_dir`` finds it;
and the floors CI runs at (``.ci/floors.txt``) are the ones ``pyproject.toml`` declares."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import REPO


def _build_wheel(tmp_path: Path) -> zipfile.ZipFile:
    """``pip wheel`` of a copy of the sources (the checkout's own ``build/`` may hold stale
    files from an earlier build, which would hide a file the config leaves out)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("rl_repara", "conf"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run([*cmd, "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("rl_repara-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_ships_every_config_file_at_its_package_path(tmp_path):
    """``conf/search/sac.yaml`` was left out before (``search=sac``: "unknown config key")."""
    conf = REPO / "conf"
    expected = {f"rl_repara/conf/{p.relative_to(conf).as_posix()}" for p in conf.rglob("*") if p.is_file()}
    assert "rl_repara/conf/search/sac.yaml" in expected
    with _build_wheel(tmp_path) as wheel:
        shipped = {n for n in wheel.namelist() if n.startswith("rl_repara/conf/")}
        missing = sorted(expected - shipped)
        assert not missing, f"files under conf/ that the wheel leaves out: {missing}"
        assert shipped == expected, f"the wheel ships conf files the checkout lacks: {shipped - expected}"
        assert wheel.read("rl_repara/conf/search/sac.yaml") == (conf / "search" / "sac.yaml").read_bytes()


def _base_floors() -> dict[str, str]:
    """``name: floor`` of each base dependency (``torch>=2.13`` → ``torch: 2.13``)."""
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for dep in deps:
        match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", dep)
        assert match, f"base dependency without a floor: {dep}"
        floors[match.group(1).lower().replace("_", "-")] = match.group(3)
    return floors


def test_the_floors_file_pins_each_base_dependency_at_its_declared_floor():
    """CI's floors run (``.ci/floors.txt``) tests what ``pyproject.toml`` promises."""
    pins = {}
    for line in (REPO / ".ci" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    for name, floor in _base_floors().items():
        assert name in pins, f".ci/floors.txt does not pin {name} (declared floor {floor})"
        assert pins[name] == floor or pins[name].startswith(floor + "."), (
            f".ci/floors.txt pins {name}=={pins[name]}; pyproject.toml declares {name}>={floor}"
        )


def test_mujoco_has_one_range_in_the_base_dependencies_and_no_extra_moves_it():
    """The base install and every extra resolve the same MuJoCo (an extra that capped it alone
    made ``pip install -e ".[dmc]"`` downgrade the MuJoCo a base install had, and a checkpoint
    written before no longer loaded)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = [d for d in project["dependencies"] if re.match(r"mujoco\b", d)]
    assert base == ["mujoco>=3.17,<4"]
    for extra, deps in project["optional-dependencies"].items():
        assert not [d for d in deps if re.match(r"mujoco\b", d)], f"the {extra} extra names mujoco again"
