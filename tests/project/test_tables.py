"""scripts/tables.py: every results table in the docs is what the script makes of the raw files
in docs/results/, and the check catches a doc that says otherwise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from support import REPO

SCRIPT = REPO / "scripts" / "tables.py"


def _tables() -> ModuleType:
    if "tables_script" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tables_script", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["tables_script"] = module  # its dataclasses need the module registered
        spec.loader.exec_module(module)
    return sys.modules["tables_script"]


def test_the_docs_tables_are_what_the_raw_files_say():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"run `python scripts/tables.py --write`:\n{proc.stdout}{proc.stderr}"
    assert time.perf_counter() - start < 10  # the script alone: well under a second


def _copy(tmp_path: Path, rel: str) -> Path:
    path = tmp_path / Path(rel).name
    path.write_text((REPO / rel).read_text())
    return path


def test_a_changed_number_in_a_table_is_caught(tmp_path):
    """The REDQ cost once read 66.8× SAC in benchmarks.md while its raw file said 40.5×."""
    tables = _tables()
    doc = _copy(tmp_path, "docs/benchmarks.md")
    assert tables.problems([doc]) == []
    text = doc.read_text()
    assert "| REDQ | 20 | 473.9 (40.5×) |" in text
    doc.write_text(text.replace("| REDQ | 20 | 473.9 (40.5×) |", "| REDQ | 20 | 756.8 (66.8×) |"))
    assert tables.problems([doc]) == [f"{doc}: preset_cost"]
    assert (
        subprocess.run([sys.executable, str(SCRIPT), "--check", str(doc)], capture_output=True).returncode
        == 1
    )
    tables.problems([doc], write=True)
    assert doc.read_text() == text


def test_a_table_outside_the_markers_is_caught(tmp_path):
    """A results table typed into a doc, without markers, is an error (its numbers have no raw file)."""
    tables = _tables()
    doc = tmp_path / "page.md"
    doc.write_text(
        "# A page\n\n| env step | 500 | 2,500 |\n| --- | --- | --- |\n| RSS (MiB) | 308.5 | 318.4 |\n"
    )
    assert tables.problems([doc]) == ["page.md: a table outside the markers: | env step | 500 | 2,500 |"]
    doc.write_text("```\n| not | a table |\n| --- | --- |\n```\n")  # inside a code block: text
    assert tables.problems([doc]) == []


def test_an_unknown_table_name_is_a_clear_error(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("<!-- table:no_such_table -->\n<!-- /table:no_such_table -->\n")
    with pytest.raises(KeyError, match="no table maker named 'no_such_table'"):
        _tables().problems([doc])


def test_the_tour_cost_comments_follow_the_raw_costs(tmp_path):
    """The Quick tour's cost comments are made like the tables: a changed one is caught and fixed."""
    tables = _tables()
    readme = _copy(tmp_path, "README.md")
    text = readme.read_text()
    line = next(x for x in text.splitlines() if x.startswith("rl-repara-train agent=tqc env=walker2d"))
    assert line.endswith("# about 1.9 days on one CPU core")
    readme.write_text(text.replace(line, line.replace("1.9 days", "6 h")))
    assert tables.problems([readme]) == [f"{readme}: tour: {tables.TOUR[2].command}"]
    tables.problems([readme], write=True)
    assert readme.read_text() == text


def test_three_seed_intervals_are_the_seed_range():
    """With 3 seeds rliable's bootstrap interval of the mean is the lowest and highest seed; the
    tables say "seed range", and the maker refuses a results file where that does not hold."""
    tables = _tables()
    row = {"m mean": "2.0", "m lo": "1.0", "m hi": "3.0", "m seeds": "0:1.0 1:2.0 2:3.0"}
    assert tables.score_cell(row, "m") == ["2 [1, 3]", "1 / 2 / 3"]
    with pytest.raises(AssertionError, match="CI != seed range"):
        tables.score_cell({**row, "m lo": "1.5"}, "m")


def test_update_flops_is_the_count_benchmark_prints():
    """The FLOP count behind the unmeasured tour costs equals benchmark.py's analytic count, which
    its raw outputs print (542.6 M on HalfCheetah, 511.3 M on Pendulum)."""
    tables = _tables()
    assert round(tables.update_flops(17, 6, [256, 256], 256) / 1e6, 1) == 542.6
    assert round(tables.update_flops(3, 1, [256, 256], 256) / 1e6, 1) == 511.3


def test_numbers_round_half_up_as_a_reader_would():
    tables = _tables()
    assert tables.num(494.5) == "495" and tables.num(-67.45) == "−67" and tables.num(0.5055, 3) == "0.506"
    assert tables.num(4578.18) == "4,578"
    assert tables.duration(3.3 * 3600) == "3.3 h" and tables.duration(45.7 * 3600) == "1.9 days"
