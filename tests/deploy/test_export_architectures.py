"""The 2025-26 presets' actors export whole: a short SimbaV2, XQC and FlashSAC run (small nets)
is exported to ONNX and ``.pt2``; the export's own check runs each graph and compares it with the
policy (batch norms in eval mode, observation normalization and rescaling inside), and a second
comparison here runs the written ONNX with onnxruntime against ``load_policy(...).act``."""

from __future__ import annotations

import numpy as np
import pytest

from rl_repara import EvalConfig, TrainConfig, load_policy, train
from rl_repara.agent.presets import sac_config
from rl_repara.deploy.export import export_policy
from rl_repara.training.config import LogConfig

SMALL = {
    "simbav2": {
        "critic_arch_kwargs": {"width": 16, "blocks": 1},
        "actor_arch_kwargs": {"width": 16, "blocks": 1},
    },
    "flashsac": {
        "critic_arch_kwargs": {"width": 16, "blocks": 1},
        "actor_arch_kwargs": {"width": 16, "blocks": 1},
    },
    "xqc": {"critic_arch_kwargs": {"hidden_sizes": [16]}, "hidden_sizes": [16, 16]},
}


@pytest.mark.parametrize("preset", sorted(SMALL))
def test_a_trained_actor_exports_and_runs_without_us(tmp_path, preset):
    pytest.importorskip("onnxruntime")
    agent = sac_config(preset, **SMALL[preset], batch_size=32, learning_starts=100, utd=1, compile=False)
    cfg = TrainConfig(
        total_steps=300, run_dir=str(tmp_path / "run"), torch_threads=1, agent=agent,
        eval=EvalConfig(every_steps=0), log=LogConfig(progress="none"),
    )  # fmt: skip
    train(cfg)
    policy = load_policy(tmp_path / "run")
    obs = np.random.default_rng(0).normal(size=(8, policy.obs_dim)).astype(np.float32) * 3
    for fmt in ("onnx", "pt2"):
        path = export_policy(tmp_path / "run", fmt)  # checks the graph against the policy itself
        assert path.is_file()
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "run" / "export" / "policy.onnx"))
    (got,) = session.run(None, {session.get_inputs()[0].name: obs})
    np.testing.assert_allclose(got, policy.act(obs), rtol=1e-4, atol=1e-5)
