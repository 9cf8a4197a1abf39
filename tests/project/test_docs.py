"""The README's promises: its test command is what CI runs, and its Python snippets run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import REPO

README = (REPO / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _bash_blocks()[1].strip()
    assert "pytest" in test_command
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(), "the README's test command differs from .ci/run's"


def test_readme_first_command_sets_up_and_trains():
    first = _bash_blocks()[0].strip()
    assert first.startswith("python3 -m venv .venv") and first.endswith("rl-repara-train")


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    """The library snippet that builds a TanhNormal and a policy runs as written."""
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    snippet = next(b for b in blocks if "TanhNormal(" in b)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    a, log_prob = scope["a"], scope["log_prob"]
    assert a.shape == (8, 2) and log_prob.shape == (8,)
    assert (a[:, 0] >= -2).all() and (a[:, 0] <= 3).all() and (a[:, 1] <= 1).all()
    assert scope["action"].shape == (256, 1) and (scope["action"].abs() <= 2).all()
    assert scope["logp"].shape == (256,) and scope["logp"].isfinite().all()


def test_readme_preset_snippet_builds_the_cli_config():
    """The ``sac_config`` snippet gives CrossQ's values with the Pendulum pair's and the override
    (``train`` is stubbed: the config it is handed is what the test reads)."""
    from rl_repara import TrainConfig

    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    snippet = next(b for b in blocks if "sac_config(" in b)
    handed: list = []
    exec(compile(snippet, "README.md", "exec"), {"train": handed.append, "TrainConfig": TrainConfig})
    agent = handed[0].agent
    assert (agent.lr, agent.adam_beta1, agent.critic_norm) == (1e-3, 0.5, "batchrenorm")
    assert agent.learning_starts == 1000  # conf/tuned/crossq_pendulum.yaml


DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "docs" / "results" / "performance_notebook.md",
]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(doc: Path) -> list[str]:
    """Relative links of ``doc`` whose file, or whose ``#anchor`` in a Markdown file, is missing."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(target)
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    """Files and section anchors that the docs link to exist (docs/performance.md was split in two)."""
    assert broken_links(doc) == []
