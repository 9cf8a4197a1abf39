"""The tests mirror the package: every test module lives in ``tests/<subpackage>/`` for a
subpackage ``rl_repara/<subpackage>/`` (or in ``tests/project/``, for checks of the whole
project: docs, scripts, packaging, import layers), never in ``tests/`` itself; test module
names are unique across the dirs (pytest's default import mode puts each module under its bare
name); and no module under ``tests/`` imports a test module (or ``conftest``): what several
tests share lives in ``support.py``, ``helpers_envs.py`` or a ``conftest.py`` fixture.

Every ``tests/**/*.py`` is parsed with ``ast`` (nothing is imported); an import inside a
function counts too.
"""

from __future__ import annotations

import ast
import textwrap
from collections import Counter
from pathlib import Path

from support import REPO

WHOLE_PROJECT = "project"  # the one tests/ dir without a subpackage of its own


def _sources(tests: Path) -> list[Path]:
    return sorted(p for p in tests.rglob("*.py") if "__pycache__" not in p.parts)


def _test_dirs(tests: Path) -> list[Path]:
    return sorted(d for d in tests.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))


def imports(source: str) -> list[tuple[ast.stmt, set[str]]]:
    """Each ``import`` statement of ``source``, at any depth in the file, with the module names
    it may import: ``import a.b`` gives ``a.b``; ``from a import b, c`` gives ``a``, ``a.b`` and
    ``a.c`` (``b`` may be a module); a relative ``from . import b`` gives ``b``."""
    found: list[tuple[ast.stmt, set[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.append((node, {alias.name for alias in node.names}))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = {f"{base}.{alias.name}" if base else alias.name for alias in node.names}
            found.append((node, names | ({base} if base else set())))
    return found


def layout_problems(tests: Path, package: Path) -> list[str]:
    """What breaks the mirror under ``tests`` for the package dir ``package``, one line each:
    a test module in ``tests/`` itself, a dir without a subpackage of that name (``project``
    excepted), a test module name used twice, and an import of a test module or ``conftest``
    (any dotted part of a name it may import equal to a test module's name), as
    ``path:line: statement``."""
    problems = []
    test_modules = [p for p in _sources(tests) if p.name.startswith("test_")]
    for path in test_modules:
        if path.parent == tests:
            problems.append(f"{path.relative_to(tests)}: a test module outside the subpackage dirs")
    for folder in _test_dirs(tests):
        if folder.name != WHOLE_PROJECT and not (package / folder.name / "__init__.py").is_file():
            problems.append(f"{folder.name}/: no subpackage {package.name}/{folder.name}/ to mirror")
    for name, count in sorted(Counter(p.name for p in test_modules).items()):
        if count > 1:
            problems.append(f"{name}: {count} test modules of this name")
    not_importable = {p.stem for p in test_modules} | {"conftest"}
    for path in _sources(tests):
        for node, modules in sorted(imports(path.read_text()), key=lambda found: found[0].lineno):
            if any(not_importable & set(module.split(".")) for module in modules):
                problems.append(f"{path.relative_to(tests)}:{node.lineno}: {ast.unparse(node)}")
    return problems


def test_the_tests_mirror_the_package_and_import_no_test_module():
    assert layout_problems(REPO / "tests", REPO / "rl_repara") == []


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_each_way_of_breaking_the_layout_is_named(tmp_path):
    package, tests = tmp_path / "pkg", tmp_path / "tests"
    _write(package, {"__init__.py": "", "nn/__init__.py": "", "data/__init__.py": "", "models.py": ""})
    _write(
        tests,
        {
            "conftest.py": "",
            "support.py": "import os\nfrom pkg.nn import layers\n",
            "test_top.py": "",
            "nn/test_a.py": "from test_b import helper\n",
            "data/test_b.py": "def f():\n    import test_a\n",
            "data/test_c.py": "from conftest import fixture\nfrom tests.nn import test_a\n",
            "models/test_d.py": "",  # models.py is a module, not a subpackage
            "project/test_a.py": "from . import support\n",
            "project/__pycache__/test_x.cpython-311.pyc": "",
        },
    )
    assert layout_problems(tests, package) == [
        "test_top.py: a test module outside the subpackage dirs",
        "models/: no subpackage pkg/models/ to mirror",
        "test_a.py: 2 test modules of this name",
        "data/test_b.py:2: import test_a",
        "data/test_c.py:1: from conftest import fixture",
        "data/test_c.py:2: from tests.nn import test_a",
        "nn/test_a.py:1: from test_b import helper",
    ]


def test_an_import_names_every_module_it_may_import():
    source = "import support\ndef f():\n    from pkg.nn import layers, norms as N\nfrom . import b\n"
    assert [(node.lineno, modules) for node, modules in imports(source)] == [
        (1, {"support"}),
        (4, {"b"}),
        (3, {"pkg.nn", "pkg.nn.layers", "pkg.nn.norms"}),
    ]
