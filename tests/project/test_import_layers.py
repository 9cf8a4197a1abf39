"""The package's layers, as docs/architecture.md's layer table states them, kept by its imports.

Every ``rl_repara/**/*.py`` is parsed with ``ast`` (nothing is imported). The table's rows, top
= highest layer, say which subpackage sits where; the root modules (``rl_repara/*.py``) are the
bottom layer. Checked: no module imports a higher layer (an import inside a function or under
``TYPE_CHECKING`` counts too), no module imports the package ``rl_repara`` itself (its
``__init__`` is the public face and imports everything; it is exempt as an importer), only
``rl_repara/cli/`` imports hydra or omegaconf, and the imports run at import time (not those in
a function or under ``TYPE_CHECKING``) form no cycle. The doc stays true to the tree: the layer
table has a row for every subpackage, and each subpackage's module table lists exactly its
modules.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from support import REPO

PACKAGE = REPO / "rl_repara"
DOC = REPO / "docs" / "architecture.md"
CLI_ONLY = ("hydra", "omegaconf")
ROOT_LAYER = ""  # the key of the root modules' layer


# ------------------------------------------------------------------------- the layer table
def layer_rows(doc: str) -> list[list[str]]:
    """The backticked names of each row's first cell in the table headed ``| subpackage | ...``,
    top row first: ``["cli/"]``, ..., ``["errors.py", "rng.py", ...]`` for the root modules."""
    lines = doc.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if _cells(line)[:1] == ["subpackage"]),
        None,
    )
    assert start is not None, "docs/architecture.md has no table headed | subpackage | holds | ..."
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(re.findall(r"`([^`]+)`", _cells(line)[0]))
    return rows


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []


def layers(doc: str) -> dict[str, int]:
    """Layer number by subpackage name (``"nn"``), the root modules under ``ROOT_LAYER``: the
    bottom row is 0, each row above one more. A row that names no ``name/`` is the root's."""
    rows = layer_rows(doc)
    out: dict[str, int] = {}
    for level, names in enumerate(reversed(rows)):
        subpackages = [n.rstrip("/") for n in names if n.endswith("/")]
        assert len(subpackages) <= 1, f"a layer row names several subpackages: {names}"
        key = subpackages[0] if subpackages else ROOT_LAYER
        assert key not in out, f"two rows for {key or 'the root modules'}"
        out[key] = level
    return out


def root_modules_named(doc: str) -> set[str]:
    """The module names (``errors``) in the root row of the layer table."""
    return {
        n.removesuffix(".py")
        for names in layer_rows(doc)
        if not any(n.endswith("/") for n in names)
        for n in names
    }


def module_tables(doc: str) -> dict[str, set[str]]:
    """The modules (``policies``) each ``### `nn/``` (or ``### root``) section's ``| module |
    holds |`` table lists, by the layer table's key."""
    out: dict[str, set[str]] = {}
    key = None
    for line in doc.splitlines():
        heading = re.match(r"#+ (?:`(\w+)/`|(root))\s*$", line)
        if heading:
            key = heading.group(1) or ROOT_LAYER
        elif line.startswith("#"):
            key = None
        elif key is not None and line.startswith("|") and not re.match(r"\|\s*(module|-)", line):
            out.setdefault(key, set()).update(
                n.removesuffix(".py") for n in re.findall(r"`([^`]+)`", _cells(line)[0])
            )
    return out


# ------------------------------------------------------------------------------- imports
@dataclass(frozen=True)
class Import:
    """One imported module, as ``importer`` (a dotted module name) imports it at ``line``."""

    importer: str
    file: Path
    line: int
    target: str  # absolute dotted name: rl_repara.nn.policies, hydra.core, ...
    text: str  # the statement, on one line
    at_import_time: bool  # not inside a function, not under TYPE_CHECKING

    def where(self, package: Path) -> str:
        return f"{self.file.relative_to(package.parent).as_posix()}:{self.line}: `{self.text}`"


def module_name(file: Path, package: Path) -> str:
    """``rl_repara.nn.policies`` for ``rl_repara/nn/policies.py``; a package's ``__init__.py`` is
    the package."""
    parts = file.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, package: Path) -> bool:
    path = package.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


class _Collector(ast.NodeVisitor):
    def __init__(self, file: Path, package: Path) -> None:
        self.file, self.package = file, package
        self.name = module_name(file, package)
        # where a relative import starts: the package itself for an __init__, else the parent
        self.here = self.name if file.name == "__init__.py" else self.name.rpartition(".")[0]
        self.found: list[Import] = []
        self._deferred = 0  # > 0 inside a function or a TYPE_CHECKING block

    def _add(self, node: ast.Import | ast.ImportFrom, target: str) -> None:
        self.found.append(
            Import(self.name, self.file, node.lineno, target, ast.unparse(node), self._deferred == 0)
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "__future__":
            return
        base = node.module or ""
        if node.level:
            parts = self.here.split(".")
            up = parts[: len(parts) - (node.level - 1)]
            base = ".".join(up + ([node.module] if node.module else []))
        if base == self.package.name:  # `from rl_repara import X`: the package itself, whatever X is
            self._add(node, base)
            return
        for alias in node.names:  # `from rl_repara.nn import policies` imports the module
            sub = f"{base}.{alias.name}"
            self._add(node, sub if _is_module(sub, self.package) else base)

    def _deferring(self, node: ast.AST) -> None:
        self._deferred += 1
        self.generic_visit(node)
        self._deferred -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _deferring

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self._deferred += 1
            for child in node.body:
                self.visit(child)
            self._deferred -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)


def imports(package: Path) -> list[Import]:
    """Every import of every module of ``package`` (a dir), in file and line order."""
    found: list[Import] = []
    for file in sorted(package.rglob("*.py")):
        collector = _Collector(file, package)
        collector.visit(ast.parse(file.read_text(), filename=str(file)))
        found += collector.found
    return found


# -------------------------------------------------------------------------------- checks
def _layer_key(module: str, package: Path) -> str:
    """The layer table's key of a module of ``package``: its subpackage, or ``ROOT_LAYER``."""
    parts = module.split(".")
    if len(parts) > 1 and (package / parts[1]).is_dir():
        return parts[1]
    return ROOT_LAYER


def layer_violations(package: Path, layer_of: dict[str, int]) -> list[str]:
    """Imports of a higher layer or of the package itself, and modules of a subpackage that has
    no layer; the package's ``__init__`` is exempt as an importer."""
    out: list[str] = []
    for sub in sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file()):
        if sub not in layer_of:
            out.append(f"{package.name}/{sub}/ has no row in the layer table of docs/architecture.md")
    for imp in imports(package):
        if imp.importer == package.name:
            continue
        if imp.target == package.name:
            out.append(
                f"{imp.where(package)} imports the package {package.name} itself (its __init__ "
                f"imports everything): import {package.name}.<subpackage>.<module>"
            )
            continue
        if not imp.target.startswith(package.name + "."):
            continue
        mine, theirs = _layer_key(imp.importer, package), _layer_key(imp.target, package)
        if mine in layer_of and theirs in layer_of and layer_of[theirs] > layer_of[mine]:
            out.append(
                f"{imp.where(package)}: {_describe(mine, layer_of)} imports "
                f"{_describe(theirs, layer_of)}, a higher layer"
            )
    return out


def _describe(key: str, layer_of: dict[str, int]) -> str:
    return f"{key + '/' if key else 'the root modules'} (layer {layer_of[key]})"


def cli_only_violations(package: Path) -> list[str]:
    """Imports of hydra or omegaconf (anywhere in a module) outside ``<package>/cli/``."""
    cli = f"{package.name}.cli"
    return [
        f"{imp.where(package)} imports {imp.target.split('.')[0]} outside {package.name}/cli/"
        for imp in imports(package)
        if imp.target.split(".")[0] in CLI_ONLY and not (imp.importer + ".").startswith(cli + ".")
    ]


def cycles(package: Path) -> list[str]:
    """Each cycle of the import-time imports between the package's modules (its ``__init__``
    left out), as ``a -> b -> a`` with the line of each import; one cycle per strongly
    connected group of modules."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports(package):
        inside = imp.target.startswith(package.name + ".")
        if imp.at_import_time and inside and imp.importer != package.name and imp.target != imp.importer:
            edges.setdefault(imp.importer, {}).setdefault(imp.target, imp)
    out = []
    for group in _strongly_connected(edges):
        if len(group) > 1:
            path = _cycle_in(group, edges)
            steps = [edges[a][b].where(package) for a, b in zip(path, path[1:])]
            out.append(" -> ".join(path) + "\n    " + "\n    ".join(steps))
    return out


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's strongly connected components of the graph ``edges`` (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    nodes = sorted(set(edges) | {t for targets in edges.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, {})))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _cycle_in(group: list[str], edges: dict[str, dict[str, Import]]) -> list[str]:
    """A shortest cycle through the group's first module, by breadth-first search in the group."""
    first, members = group[0], set(group)
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(edges.get(node, {})):
                if child == first:
                    path = [node]
                    while path[-1] != first:
                        path.append(came_from[path[-1]])
                    return [first, *reversed(path[:-1]), first] if len(path) > 1 else [first, node, first]
                if child in members and child not in came_from:
                    came_from[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {first} in {group}")


# -------------------------------------------------------------------------- the real tree
def test_the_layer_table_covers_the_package():
    """Every subpackage has a row, every row names a subpackage that exists, and the root row
    names exactly the root modules, so no module is outside the check."""
    doc = DOC.read_text()
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert set(layers(doc)) == subpackages | {ROOT_LAYER}
    root = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert root_modules_named(doc) == root


def test_each_module_table_lists_exactly_the_modules_of_its_subpackage():
    """A module added, renamed or removed shows up here until docs/architecture.md says so."""
    on_disk: dict[str, set[str]] = {}
    for file in PACKAGE.rglob("*.py"):
        if file.name != "__init__.py":
            on_disk.setdefault(_layer_key(module_name(file, PACKAGE), PACKAGE), set()).add(file.stem)
    assert module_tables(DOC.read_text()) == on_disk


def test_no_module_imports_a_higher_layer_or_the_package_itself():
    found = layer_violations(PACKAGE, layers(DOC.read_text()))
    assert not found, "imports against the layer table of docs/architecture.md:\n" + "\n".join(found)


def test_only_the_cli_imports_hydra_or_omegaconf():
    found = cli_only_violations(PACKAGE)
    assert not found, "\n".join(found)


def test_no_import_cycles():
    found = cycles(PACKAGE)
    assert not found, "import cycles (imports run at import time):\n" + "\n".join(found)


# ------------------------------------------------------------------ the checker itself
TOY_DOC = """
| subpackage | holds | knows nothing of |
| --- | --- | --- |
| `cli/` | commands | math |
| `agent/` | learning | commands |
| `nn/` | networks | learning |
| root: `errors.py` | errors | everything |

after the table

### root

| module | holds |
| --- | --- |
| `errors.py` | errors |

### `nn/`

| module | holds |
| --- | --- |
| `low.py` | a module |
| `other.py` | another |

## Rules
| not | a module table |
"""

TOY_TREE = {
    "__init__.py": "from .agent.a import A\nfrom rl_repara.cli import c\n",  # the public face: exempt
    "errors.py": "",
    "nn/__init__.py": "",
    "nn/low.py": """
        from __future__ import annotations
        from rl_repara import errors
        from rl_repara.agent.a import A
        from rl_repara.errors import Oops
        from . import other

        def late():
            from ..agent import a
        """,
    "nn/other.py": "import rl_repara\n",
    "agent/__init__.py": "",
    "agent/a.py": """
        from typing import TYPE_CHECKING
        from rl_repara.agent import b
        if TYPE_CHECKING:
            from hydra.types import RunMode
            from rl_repara.agent.c import C
        """,
    "agent/b.py": "import rl_repara.agent.a\n",
    "agent/c.py": """
        import rl_repara.agent.d
        class C:
            def f(self):
                import omegaconf
        """,
    "agent/d.py": "def g():\n    from rl_repara.agent.c import C\n",
    "cli/__init__.py": "",
    "cli/c.py": "import hydra\nfrom omegaconf import OmegaConf\nfrom ..agent import a\n",
    "extra/__init__.py": "",
    "extra/x.py": "from rl_repara.cli.c import main\n",
}


def _toy(tmp_path: Path) -> Path:
    package = tmp_path / "rl_repara"
    for name, text in TOY_TREE.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return package


def test_the_layer_table_is_read_top_down():
    assert layers(TOY_DOC) == {"cli": 3, "agent": 2, "nn": 1, ROOT_LAYER: 0}
    assert root_modules_named(TOY_DOC) == {"errors"}
    assert module_tables(TOY_DOC) == {ROOT_LAYER: {"errors"}, "nn": {"low", "other"}}


def test_the_checker_names_file_line_and_import_of_each_violation(tmp_path):
    package = _toy(tmp_path)
    assert layer_violations(package, layers(TOY_DOC)) == [
        "rl_repara/extra/ has no row in the layer table of docs/architecture.md",
        "rl_repara/nn/low.py:3: `from rl_repara import errors` imports the package rl_repara itself "
        "(its __init__ imports everything): import rl_repara.<subpackage>.<module>",
        "rl_repara/nn/low.py:4: `from rl_repara.agent.a import A`: nn/ (layer 1) imports agent/ "
        "(layer 2), a higher layer",
        "rl_repara/nn/low.py:9: `from ..agent import a`: nn/ (layer 1) imports agent/ (layer 2), "
        "a higher layer",
        "rl_repara/nn/other.py:1: `import rl_repara` imports the package rl_repara itself "
        "(its __init__ imports everything): import rl_repara.<subpackage>.<module>",
    ]


def test_the_checker_finds_hydra_and_omegaconf_outside_the_cli(tmp_path):
    """In a ``TYPE_CHECKING`` block and in a method too; the cli's own imports pass."""
    assert cli_only_violations(_toy(tmp_path)) == [
        "rl_repara/agent/a.py:5: `from hydra.types import RunMode` imports hydra outside rl_repara/cli/",
        "rl_repara/agent/c.py:5: `import omegaconf` imports omegaconf outside rl_repara/cli/",
    ]


def test_the_checker_finds_cycles_of_import_time_imports_only(tmp_path):
    """a <-> b is a cycle; c -> d -> c (d's import is in a function) and a -> c (under
    ``TYPE_CHECKING``) are not, and neither is the package ``__init__`` importing a."""
    assert cycles(_toy(tmp_path)) == [
        "rl_repara.agent.a -> rl_repara.agent.b -> rl_repara.agent.a\n"
        "    rl_repara/agent/a.py:3: `from rl_repara.agent import b`\n"
        "    rl_repara/agent/b.py:1: `import rl_repara.agent.a`"
    ]
