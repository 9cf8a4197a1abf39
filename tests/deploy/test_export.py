"""Export: the deterministic controller (normalization, MLP, squashed mean, rescaling to the
env's bounds) as ONNX and .pt2, run by onnxruntime and ``torch.export.load``, compared with
``policy.act``, in a process that cannot import rl_repara, and for observations far outside
anything seen in training. Bad input through the real command: one line, exit 2, nothing
written. The policies: one trained through ``train()`` on an env with asymmetric per-dim bounds,
and one built by hand with large, per-dim observation statistics.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import helpers_envs as H
import numpy as np
import pytest
import torch
from support import EXPORT, REPO, assert_clean_error, composed, ok, run

import rl_repara
from rl_repara import EnvConfig, EvalConfig, SACConfig, TanhGaussianPolicy, TrainConfig, load_policy, train
from rl_repara.cli.schemas import ExportCliConfig
from rl_repara.deploy.export import export_policy
from rl_repara.deploy.formats import FORMATS
from rl_repara.deploy.sidecar import sidecar_path
from rl_repara.errors import ConfigError
from rl_repara.training.checkpoint import save_atomic
from rl_repara.training.config import LogConfig

# format=onnx needs torch's torch.export-based ONNX exporter (torch >= 2.6), and the exports are
# tested from there on; under an older torch (below our 2.13 floor, so only where an install
# bypassed it) test_onnx_below_torch_2_6_names_the_requirement runs instead.
_BELOW_2_6 = tuple(int(x) for x in torch.__version__.split(".")[:2]) < (2, 6)
needs_torch_2_6 = pytest.mark.skipif(
    _BELOW_2_6,
    reason=f"needs torch >= 2.6 (its torch.export-based ONNX exporter); this is torch {torch.__version__}",
)
pt2_needs_torch_2_6 = pytest.mark.skipif(
    _BELOW_2_6,
    reason=f"needs torch >= 2.6 (.pt2 exports are tested from 2.6 on); this is torch {torch.__version__}",
)
LOW, HIGH = [-2.0, 0.0, -0.4], [3.0, 1.0, 0.4]  # the hand-made policy's bounds
OBS_MEAN = [50.0, -300.0, 0.0, 1e3, -7.0]  # its normalizer's statistics: far from N(0, 1)
OBS_SCALE = [100.0, 5.0, 0.01, 1e3, 1.0]


def _run_export(path: Path, obs: np.ndarray) -> np.ndarray:
    """Run an exported file the way a deployment does (no rl_repara involved)."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        return ort.InferenceSession(str(path)).run(["action"], {"obs": obs})[0]
    return torch.export.load(str(path)).module()(torch.from_numpy(obs)).numpy()


def _typical_obs(policy: TanhGaussianPolicy, n: int, seed: int = 0) -> np.ndarray:
    """Observations around the normalizer's statistics (what the policy saw in training)."""
    norm = policy.obs_normalizer
    assert norm is not None
    rng = np.random.default_rng(seed)
    std = np.sqrt(norm.var.numpy())
    return (norm.mean.numpy() + 2 * std * rng.standard_normal((n, policy.obs_dim))).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run dir from ``train()``: 300 steps on BoundsCheck (bounds [-3, 0, 2] to [0.2, 0.5, 10]),
    observation normalization on."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    _train_bounds_check(run_dir)  # torch_threads=1; conftest gives the thread count back
    return run_dir


def _train_bounds_check(run_dir: Path) -> None:
    train(
        TrainConfig(
            env=EnvConfig(id=H.env_id("BoundsCheck")),
            total_steps=300,
            run_dir=str(run_dir),
            device="cpu",
            agent=SACConfig(hidden_sizes=[16], batch_size=32, learning_starts=100, normalize_obs=True),
            eval=EvalConfig(every_steps=0),
            log=LogConfig(progress="none"),
            torch_threads=1,
        )
    )


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> Path:
    """A checkpoint file holding a policy with bounds LOW..HIGH and a normalizer fed data of
    mean OBS_MEAN and scale OBS_SCALE."""
    torch.manual_seed(1)
    policy = TanhGaussianPolicy(5, 3, [16], action_low=LOW, action_high=HIGH, normalize_obs=True)
    assert policy.obs_normalizer is not None
    data = torch.randn(4096, 5) * torch.tensor(OBS_SCALE) + torch.tensor(OBS_MEAN)
    policy.obs_normalizer.update(data)
    config = TrainConfig(
        env=EnvConfig(id="Handmade-v0"), agent=SACConfig(hidden_sizes=[16], normalize_obs=True)
    )
    file = tmp_path_factory.mktemp("handmade") / "run" / "checkpoints" / "last.pt"
    return save_atomic({"config": config.to_dict(), "sac": {"policy": policy.state_dict()}}, file)


@pytest.fixture(scope="module")
def exports(trained, handmade, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Each policy in each format, exported once: ``{(source, format): model path}``."""
    out_dir = tmp_path_factory.mktemp("exports")
    sources = {"trained": trained, "handmade": handmade}
    return {
        (name, fmt): export_policy(src, fmt, out_dir / f"{name}.{fmt}")
        for name, src in sources.items()
        for fmt in FORMATS
    }


def _source(name: str, trained: Path, handmade: Path) -> Path:
    return {"trained": trained, "handmade": handmade}[name]


# ------------------------------------------------------------------------ the same actions
@needs_torch_2_6
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["handmade", "trained"])
def test_exported_controller_equals_policy_act(exports, trained, handmade, name, fmt):
    policy = load_policy(_source(name, trained, handmade))
    obs = _typical_obs(policy, 64)
    for batch in (64, 1):  # one graph, any batch size
        want = policy.act(obs[:batch])
        got = _run_export(exports[name, fmt], obs[:batch])
        assert got.shape == (batch, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # the normalization is in the graph, and on these observations it matters
    raw = copy.deepcopy(policy)
    raw.obs_normalizer = None
    assert np.abs(raw.act(obs) - policy.act(obs)).max() > 1e-2


def test_trained_policy_has_the_env_bounds(trained):
    policy = load_policy(trained)
    np.testing.assert_array_equal(policy.action_low.numpy(), H.BoundsCheckEnv.LOW)
    np.testing.assert_array_equal(policy.action_high.numpy(), H.BoundsCheckEnv.HIGH)


@needs_torch_2_6
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["handmade", "trained"])
def test_actions_stay_in_bounds_far_outside_the_training_range(exports, name, fmt):
    path = exports[name, fmt]
    meta = json.loads(sidecar_path(path).read_text())
    low, high = np.float32(meta["action_low"]), np.float32(meta["action_high"])
    rng = np.random.default_rng(3)
    signs = np.array([[1, -1, 1, -1, 1], [-1, 1, -1, 1, -1]], dtype=np.float32)
    dim = meta["obs_shape"][1]
    obs = np.concatenate(
        [
            np.full((1, dim), 1e6),
            np.full((1, dim), -1e6),
            1e6 * signs[:, :dim],
            1e6 * rng.standard_normal((32, dim)),
            np.full((1, dim), 1e30),
            np.full((1, dim), -1e30),
            1e30 * signs[:, :dim],
            1e6 * np.eye(dim),
        ]
    ).astype(np.float32)
    got = _run_export(path, obs)
    assert got.shape == (len(obs), len(low))
    assert np.isfinite(got).all()
    assert (got >= low).all() and (got <= high).all(), (got.min(0), got.max(0))
    checkpoint = sidecar_path(path).parent / meta["checkpoint"]  # relative to the sidecar
    np.testing.assert_allclose(got, load_policy(checkpoint).act(obs), rtol=0, atol=1e-5)


CHILD = """
import sys
sys.modules["rl_repara"] = None  # as on a machine where rl_repara is not installed
try:
    import rl_repara
except ImportError:
    pass
else:
    raise SystemExit("rl_repara is importable in the child")
import numpy as np, onnxruntime as ort, torch
data = np.load(sys.argv[1])
session = ort.InferenceSession(sys.argv[2])
module = torch.export.load(sys.argv[3]).module()
for n in (len(data["obs"]), 1):
    obs, want = data["obs"][:n], data["want"][:n]
    np.testing.assert_allclose(session.run(["action"], {"obs": obs})[0], want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(module(torch.from_numpy(obs)).numpy(), want, rtol=0, atol=1e-5)
loaded = [m for m, mod in sys.modules.items() if m.startswith("rl_repara") and mod is not None]
assert not loaded, loaded
print("child ok")
"""


@needs_torch_2_6
@pytest.mark.parametrize("name", ["handmade", "trained"])
def test_exports_run_in_a_process_without_rl_repara(exports, trained, handmade, name, tmp_path):
    policy = load_policy(_source(name, trained, handmade))
    obs = _typical_obs(policy, 16, seed=5)
    np.savez(tmp_path / "data.npz", obs=obs, want=policy.act(obs))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cmd = [sys.executable, "-I", str(script), str(tmp_path / "data.npz")]
    cmd += [str(exports[name, "onnx"]), str(exports[name, "pt2"])]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "child ok" in proc.stdout, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------ the sidecar
@needs_torch_2_6
@pytest.mark.parametrize("fmt", FORMATS)
def test_sidecar_says_what_the_graph_expects(exports, trained, fmt):
    path = exports["trained", fmt]
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["format"] == fmt and meta["model"] == path.name
    assert meta["input_name"] == "obs" and meta["output_name"] == "action"
    assert meta["obs_shape"] == ["batch", 3] and meta["action_shape"] == ["batch", 3]
    np.testing.assert_array_equal(np.float32(meta["action_low"]), H.BoundsCheckEnv.LOW)
    np.testing.assert_array_equal(np.float32(meta["action_high"]), H.BoundsCheckEnv.HIGH)
    assert meta["env_id"] == H.env_id("BoundsCheck")
    assert meta["obs_normalization_inside"] is True and meta["global_step"] == 300
    assert meta["rl_repara_version"] == rl_repara.__version__ and meta["torch_version"] == torch.__version__
    assert meta["env_kwargs"] == {} and meta["action_rescaling"].startswith(
        "inside the graph: action = clamp("
    )
    assert meta["model_sha256"] == _sha256(path)  # the sidecar belongs to this very file
    assert (meta["onnx_opset"] > 0) if fmt == "onnx" else "onnx_opset" not in meta


@needs_torch_2_6
@pytest.mark.parametrize("fmt", FORMATS)
def test_sidecar_names_the_checkpoint_without_the_training_machines_paths(exports, trained, fmt):
    """A deployed controller gets the checkpoint's path relative to the sidecar and its SHA-256;
    no value is an absolute path of the machine that exported it."""
    path = exports["trained", fmt]
    text = sidecar_path(path).read_text()
    meta = json.loads(text)
    last = trained / "checkpoints" / "last.pt"
    assert not Path(meta["checkpoint"]).is_absolute()
    assert (sidecar_path(path).parent / meta["checkpoint"]).resolve() == last.resolve()
    assert meta["checkpoint_sha256"] == _sha256(last)
    assert str(trained.parent) not in text and str(path.parent) not in text


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_torch_2_6
def test_onnx_graph_declares_its_names_and_a_dynamic_batch(exports):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exports["handmade", "onnx"]))
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("obs", "action")
    assert isinstance(inp.shape[0], str) and inp.shape[1] == 5  # a named, symbolic batch dim
    assert isinstance(out.shape[0], str) and out.shape[1] == 3
    assert inp.type == out.type == "tensor(float)"


# ----------------------------------------------------------------------- paths and failures
@pt2_needs_torch_2_6
def test_default_paths_beside_the_run(handmade, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(handmade.read_bytes())
    (run_dir / "checkpoints" / "best.pt").write_bytes(handmade.read_bytes())
    assert export_policy(run_dir, "pt2") == run_dir / "export" / "policy.pt2"
    best = export_policy(run_dir / "checkpoints" / "best.pt", "pt2")
    assert best == run_dir / "export" / "policy-best.pt2"
    assert export_policy(run_dir, "pt2", tmp_path) == tmp_path / "policy.pt2"  # out= a dir
    for model in (run_dir / "export" / "policy.pt2", best, tmp_path / "policy.pt2"):
        assert sidecar_path(model).is_file()
    checkpoints = {
        m: json.loads(sidecar_path(m).read_text())["checkpoint"] for m in (best, tmp_path / "policy.pt2")
    }
    assert checkpoints == {best: "../checkpoints/best.pt", tmp_path / "policy.pt2": "run/checkpoints/last.pt"}


@pt2_needs_torch_2_6
def test_a_failed_export_leaves_nothing_half_written(handmade, tmp_path, monkeypatch):
    def broken_save(ep, f, *args, **kwargs):
        Path(f).write_bytes(b"half a model")
        raise RuntimeError("disk gone")

    monkeypatch.setattr(torch.export, "save", broken_save)
    old = tmp_path / "old" / "policy.pt2"  # an earlier export stays as it was
    old.parent.mkdir()
    old.write_bytes(b"old model")
    sidecar_path(old).write_text("old sidecar")
    with pytest.raises(RuntimeError, match="disk gone"):
        export_policy(handmade, "pt2", old)
    assert old.read_bytes() == b"old model" and sidecar_path(old).read_text() == "old sidecar"
    assert sorted(p.name for p in old.parent.iterdir()) == ["policy.pt2", "policy.pt2.json"]
    fresh = tmp_path / "new" / "deeper" / "policy.pt2"  # dirs made for it are removed again
    with pytest.raises(RuntimeError, match="disk gone"):
        export_policy(handmade, "pt2", fresh)
    assert not (tmp_path / "new").exists()


@needs_torch_2_6
@pytest.mark.parametrize("package", ["onnx", "onnxscript", "onnxruntime"])
def test_onnx_without_the_extra_names_the_package_and_the_fix(handmade, tmp_path, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now fails
    out = tmp_path / "policy.onnx"
    with pytest.raises(ConfigError) as info:
        export_policy(handmade, "onnx", out)
    assert f"format=onnx needs the package {package}: pip install 'rl_repara[export]'" in str(info.value)
    assert info.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pt2_needs_torch_2_6
def test_pt2_needs_no_extra(handmade, tmp_path, monkeypatch):
    for package in ("onnx", "onnxscript", "onnxruntime"):
        monkeypatch.setitem(sys.modules, package, None)
    assert export_policy(handmade, "pt2", tmp_path / "p.pt2").is_file()


def test_export_yaml_composes_to_the_schema_defaults():
    cfg = composed("export", overrides=["checkpoint=some/run"])
    assert cfg == ExportCliConfig(checkpoint="some/run")
    assert composed("export", overrides=["format=pt2", "out=x.pt2"]) == ExportCliConfig(
        format="pt2", out="x.pt2"
    )


@pt2_needs_torch_2_6
def test_export_cli_writes_model_and_sidecar(trained, tmp_path):
    proc = ok([EXPORT, f"checkpoint={trained}", "format=pt2"], tmp_path)
    model = trained.absolute() / "export" / "policy.pt2"
    assert (
        f"controller: {model}" in proc.stdout
        and f"sidecar (shapes, bounds, names): {model}.json" in proc.stdout
    )
    obs = _typical_obs(load_policy(trained), 8)
    np.testing.assert_allclose(_run_export(model, obs), load_policy(trained).act(obs), rtol=0, atol=1e-5)
    assert json.loads(sidecar_path(model).read_text())["format"] == "pt2"


def _no_policy(tmp_path: Path) -> Path:
    return save_atomic({"config": TrainConfig().to_dict()}, tmp_path / "nopolicy.pt")


def _corrupt(tmp_path: Path) -> Path:
    file = tmp_path / "corrupt.pt"
    file.write_bytes(np.random.default_rng(0).bytes(4096))
    return file


CLI_ERRORS = {
    "missing": (lambda t, h: t / "no_such_run", "onnx", "no such file or directory"),
    "corrupt": (lambda t, h: _corrupt(t), "onnx", "is not a readable rl_repara checkpoint"),
    "no policy": (lambda t, h: _no_policy(t), "onnx", "has no policy in it (missing 'sac')"),
    "unknown format": (lambda t, h: h, "tflite", "unknown export format 'tflite'; choose one of: onnx, pt2"),
}


@needs_torch_2_6
@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_export_cli_bad_input_is_one_line_exit_2_and_writes_nothing(handmade, tmp_path, case):
    make, fmt, expected = CLI_ERRORS[case]
    checkpoint = make(tmp_path, handmade)
    out = tmp_path / "out" / "policy.onnx"
    proc = run([EXPORT, f"checkpoint={checkpoint}", f"format={fmt}", f"out={out}"], tmp_path)
    assert_clean_error(proc, "rl-repara-export", expected)
    assert not (tmp_path / "out").exists()


@pt2_needs_torch_2_6
def test_a_full_disk_is_a_runtime_fault_and_leaves_nothing(handmade, tmp_path, monkeypatch):
    """Disk full while the export is moved into place: ``ExportWriteError`` (exit 1, a fault of
    the machine, not ``ConfigError``'s 2), and no model, sidecar or temp file is left."""
    from rl_repara import ExportWriteError
    from rl_repara.deploy import staging

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(staging.os, "replace", full)
    with pytest.raises(ExportWriteError, match="No space left on device. Nothing was written") as info:
        export_policy(handmade, "pt2", tmp_path / "out" / "policy.pt2")
    assert info.value.exit_code == 1 and not isinstance(info.value, ConfigError)
    assert not (tmp_path / "out").exists()


def test_onnx_below_torch_2_6_names_the_requirement(handmade, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    with pytest.raises(ConfigError, match=r"format=onnx needs torch >= 2.6 .* this is torch 2.4.1"):
        export_policy(handmade, "onnx", tmp_path / "policy.onnx")
    assert list(tmp_path.iterdir()) == []


OLD_TORCH = """
import torch

torch.__version__ = "2.4.1"  # as at the floor, for the skip marks (set before test_export is read)
"""


def test_at_the_torch_floor_the_skips_say_why_and_the_floor_test_runs(tmp_path):
    (tmp_path / "old_torch.py").write_text(OLD_TORCH)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "old_torch", str(Path(__file__))]
    cmd += ["-k", "test_sidecar_says_what or test_pt2_needs_no_extra or test_onnx_below_torch_2_6"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "tests")])}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert "1 passed, 3 skipped" in proc.stdout, proc.stdout + proc.stderr
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 2 and all(
        "needs torch >= 2.6 (" in line and "this is torch 2.4.1" in line for line in skips
    )
