"""The docs' results tables, made from the raw files in ``docs/results/``.

A table sits in a doc between two markers, ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``;
this script makes NAME's Markdown from the raw files (``TABLES[NAME]``) and compares or writes it.
The cost comments of the README's Quick tour (``TOUR``) are made and checked the same way.

    python scripts/tables.py --check   # exit 1, naming every table that differs from its raw files
    python scripts/tables.py --write   # rewrite the tables and the tour comments in place

A Markdown table outside the markers is an error too, unless its header line is in
``NOT_RESULTS`` (tables of names and settings, not of measurements). Pure Python (json, csv, re):
no torch, so the check takes well under a second.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
CONF = ROOT / "conf"
NOTEBOOK = RESULTS / "performance_notebook.md"
MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)
NOT_RESULTS = {
    "| preset | what it sets (conf/agent/NAME.yaml, sources in the file) |",
    "| subpackage | holds | knows nothing of |",
    "| module | holds |",
    "| u | exact | `log(1 − tanh²u)` | `log(1 − tanh²u + 1e-6)` |",
    "| key | what it holds |",
    "| setting | what it does | when |",
}
PRESETS = {"sac": "SAC", "crossq": "CrossQ", "tqc": "TQC", "droq": "DroQ", "redq": "REDQ"}
VARIANTS = ("rl_repara", "rl_repara compile", "rl_repara bf16", "rl_repara compile+bf16")

TABLES: dict[str, Callable[[], str]] = {}


def table(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register a table maker under ``name`` (the name its markers carry)."""

    def register(fn: Callable[[], str]) -> Callable[[], str]:
        TABLES[name] = fn
        return fn

    return register


# ------------------------------------------------------------------------------ formatting
def md(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column, ``l`` or ``r``."""
    seps = ["---:" if a == "r" else "---" for a in (align or "l" * len(header))]
    lines = [header, seps, *rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


def num(x: float, digits: int = 0) -> str:
    """``x`` with thousands separators and ``digits`` decimals (halves rounded away from zero, as
    a reader rounds the printed value), a true minus sign."""
    exact = Decimal(repr(x)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
    return f"{exact:,.{digits}f}".replace("-", "−")


def dec(digits: int, unit: str = "") -> Callable[[float], str]:
    """A formatter: ``digits`` decimals (see ``num``), then ``unit``."""
    return lambda x: num(x, digits) + unit


def times(x: float) -> str:
    return num(x, 2) + "×"


def span(values: list[float], fmt: Callable[[float], str] | None = None, unit: str = "") -> str:
    """``lo–hi`` of ``values`` (one value alone when they are all equal)."""
    fmt = fmt or dec(2)
    lo, hi = fmt(min(values)), fmt(max(values))
    return f"{lo}{unit}" if lo == hi else f"{lo}–{hi}{unit}"


def two_digits(x: float) -> str:
    """``x`` (≥ 1) to two significant digits, thousands separated: 3.7, 12, 4,800, 81,000."""
    places = 2 - len(str(int(x)))  # decimals to keep; negative: round to tens, hundreds, ...
    rounded = Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return f"{rounded:,.{max(places, 0)}f}"


def sps_text(x: float) -> str:
    """Env steps per second: one decimal below 100, none above."""
    return num(x, 1 if x < 100 else 0)


def duration(seconds: float) -> str:
    """A rough duration: minutes, hours (one decimal below 10) or days (one decimal below 10)."""
    hours = seconds / 3600
    if hours < 1:
        return f"{num(seconds / 60)} min"
    if hours < 36:
        return f"{num(hours, 1 if hours < 10 else 0)} h"
    days = hours / 24
    return f"{num(days, 1 if days < 10 else 0)} days"


# ------------------------------------------------------------------- scripts/benchmark.py output
@dataclass
class EnvBlock:
    """One env's part of a ``benchmark.py`` run: median SPS and the ratios to SB3."""

    env: str
    sps: dict[str, float] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)  # median SPS / SB3's median SPS
    ratio_repeats: dict[str, list[float]] = field(default_factory=dict)
    warning: float | None = None  # "repeats differ by N x": the script's untrustworthy flag


@dataclass
class Bench:
    """A ``scripts/benchmark.py`` output file."""

    name: str
    threads: int
    gemm: float
    commit: str | None
    envs: list[EnvBlock]
    update_ms: dict[str, float]  # update-only process CPU ms per update
    update_ratio: dict[str, float]  # SB3 / this, median of the per-repeat ratios

    def block(self, env: str) -> EnvBlock | None:
        return next((b for b in self.envs if b.env == env), None)

    @property
    def run(self) -> str:
        return _find(r"^run(\d+)", self.name, Path(self.name))


def _find(pattern: str, text: str, path: Path) -> str:
    """The first group of ``pattern`` in ``text``; a clear error naming ``path`` when absent."""
    found = re.search(pattern, text)
    if found is None:
        raise ValueError(f"{path}: no match for {pattern!r}")
    return found.group(1)


def read_bench(path: Path) -> Bench:
    """Parse a ``benchmark.py`` output: the header, each env's table, the update-only table."""
    text = path.read_text()
    threads = int(_find(r"(\d+) torch thread\(s\)", text, path))
    gemm = float(_find(r": ([\d.]+) GFLOP/s on \d+ thread", text, path))
    commit = re.search(r"rl_repara commit (\S+)", text)
    envs: list[EnvBlock] = []
    update_ms: dict[str, float] = {}
    update_ratio: dict[str, float] = {}
    head, _, update = text.partition("\nUpdate-only CPU time")
    for line in head.splitlines():
        start = re.match(r"(\S+), num_envs=\d+ \(obs", line)
        if start:
            envs.append(EnvBlock(start.group(1)))
        elif envs:
            read_env_line(envs[-1], line)
    for line in update.splitlines():
        row = re.match(
            r"  (rl_repara(?: \S+)?|SB3)\s+([\d.]+) ms  \[[\d. ]+\](?:  SB3 / this: ([\d.]+)x)?", line
        )
        if row:
            update_ms[row.group(1)] = float(row.group(2))
            if row.group(3):
                update_ratio[row.group(1)] = float(row.group(3))
    return Bench(path.stem, threads, gemm, commit and commit.group(1), envs, update_ms, update_ratio)


def read_env_line(block: EnvBlock, line: str) -> None:
    """One line of an env's table: a variant's SPS, the untrustworthy warning, or a ratio to SB3."""
    row = re.match(r"  (rl_repara(?: \S+)?|SB3)\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+.*\]$", line)
    warn = re.search(r"WARNING: repeats differ by ([\d.]+)x", line)
    ratio = re.match(r"  SPS ratio (.+) / SB3: ([\d.]+)x \(per repeat: ([\d. ]+)\)", line)
    if row:
        block.sps[row.group(1)] = float(row.group(2))
    elif warn:
        block.warning = float(warn.group(1))
    elif ratio:
        block.ratio[ratio.group(1)] = float(ratio.group(2))
        block.ratio_repeats[ratio.group(1)] = [float(v) for v in ratio.group(3).split()]


def bench_runs(folder: str) -> list[Bench]:
    """Every ``run*.txt`` of ``docs/results/<folder>``, by threads, then run number."""
    runs = [read_bench(p) for p in (RESULTS / folder).glob("run*.txt")]
    return sorted(runs, key=lambda b: (b.threads, int(b.run)))


# -------------------------------------------------------------- scripts/update_cost.py output
def read_update_cost(path: Path) -> dict[tuple[str, bool], dict[str, tuple[int, float]]]:
    """{(precision, compiled): {preset: (utd, process CPU ms of updates per env step)}}."""
    out: dict[tuple[str, bool], dict[str, tuple[int, float]]] = {}
    key = ("fp32", False)
    for line in path.read_text().splitlines():
        head = re.search(r"thread\(s\), (fp32|bf16)(, compile)?, obs", line)
        if head:
            key = (head.group(1), bool(head.group(2)))
            out[key] = {}
            continue
        row = re.match(r"(\w+)\s+utd\s+(\d+):\s+[\d.]+ ms wall,\s+([\d.]+) ms CPU", line)
        if row:
            out[key][row.group(1)] = (int(row.group(2)), float(row.group(3)))
    return out


def preset_cells(costs: dict[str, tuple[int, float]]) -> dict[str, str]:
    """``ms (×SAC)`` for each preset of one ``update_cost.py`` table."""
    base = costs["sac"][1]
    return {p: f"{num(ms, 1)} ({num(ms / base, 1)}×)" for p, (_, ms) in costs.items()}


# ----------------------------------------------------------------------------- other raw files
def load_json(rel: str) -> dict:
    return json.loads((RESULTS / rel).read_text())


PUBLISHED_EARLY = RESULTS / "family2026" / "published_early.csv"


def read_published(path: Path = PUBLISHED_EARLY) -> dict[tuple[str, str], dict[int, list[float]]]:
    """``published_early.csv`` as ``{(method, env_name): {env_step: [value per seed]}}``."""
    by: dict[tuple[str, str], dict[int, list[float]]] = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            at = by.setdefault((r["method"], r["env_name"]), {})
            at.setdefault(int(r["env_step"]), []).append(float(r["value"]))
    return by


def load_csv(rel: str) -> list[dict[str, str]]:
    with open(RESULTS / rel, newline="") as f:
        return list(csv.DictReader(f))


def seed_scores(cell: str) -> list[float]:
    """``0:4252.43 1:4963.75 2:4518.36`` (a results.csv seeds cell) as scores by seed."""
    return [float(item.split(":")[1]) for item in cell.split()]


def score_cell(row: dict[str, str], method: str) -> list[str]:
    """``mean [seed range]`` and ``seed 0 / 1 / 2`` of one method in a ``plot.py`` results.csv.

    rliable's stratified bootstrap interval of a mean over 3 seeds is their range: each extreme
    resample (all three draws the lowest, or the highest, seed) has probability 1/27 > 2.5 %."""
    seeds = seed_scores(row[f"{method} seeds"])
    lo, hi = float(row[f"{method} lo"]), float(row[f"{method} hi"])
    assert len(seeds) != 3 or (lo, hi) == (min(seeds), max(seeds)), (row, "3 seeds: CI != seed range")
    return [f"{num(float(row[f'{method} mean']))} [{num(lo)}, {num(hi)}]", " / ".join(num(s) for s in seeds)]


def walls(meta: dict, prefix: str) -> list[float]:
    """Wall minutes of the runs under ``prefix`` in a ``bench.py`` meta.json."""
    return [run["wall_s"] / 60 for key, run in sorted(meta["runs"].items()) if key.startswith(prefix)]


def wall_cell(minutes: list[float]) -> str:
    return f"{span(minutes, dec(1))} min (mean {num(statistics.mean(minutes), 1)})"


# ------------------------------------------------------------------------------- FLOPs of SAC
def update_flops(obs: int, act: int, hidden: list[int], batch: int, critics: int = 2) -> int:
    """Matmul FLOPs of one SAC update, the count ``scripts/benchmark.py`` prints as analytic.

    With ``F(sizes)`` the forward FLOPs ``Σ 2·B·i·o`` of an MLP, ``W`` its weight gradients (the
    same) and ``I`` its input gradients of layers 2..L, actor ``a`` and each critic ``c``:
    ``a.F + N·c.F`` (target) ``+ N·(c.F + c.W + c.I)`` (critics) ``+ a.F + N·c.F + c.I + 2·B·act·h₁
    + a.W + a.I`` (actor: one critic's rows back to the action columns)."""

    def mlp(sizes: list[int]) -> tuple[int, int, int]:
        layers = [2 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:])]
        return sum(layers), sum(layers), sum(layers[1:])

    a_fwd, a_w, a_in = mlp([obs, *hidden, 2 * act])
    c_fwd, c_w, c_in = mlp([obs + act, *hidden, 1])
    target = a_fwd + critics * c_fwd
    critic = critics * (c_fwd + c_w + c_in)
    actor = a_fwd + critics * c_fwd + c_in + 2 * batch * act * hidden[0] + a_w + a_in
    return target + critic + actor


# -------------------------------------------------------------------------------- the tables
def speed_rows(runs: list[Bench], variants: tuple[str, ...]) -> list[list[str]]:
    """Rows (threads, env, runs, one ``lo–hi×`` per variant) of env-step SPS ratios to SB3."""
    rows = []
    for threads in sorted({b.threads for b in runs}):
        for env in ("HalfCheetah-v5", "Pendulum-v1"):
            blocks = [blk for b in runs if b.threads == threads and (blk := b.block(env))]
            flagged = sum(blk.warning is not None for blk in blocks)
            cells = []
            for v in variants:
                ratios = [blk.ratio[v] for blk in blocks if v in blk.ratio]
                mean = f" (mean {times(statistics.mean(ratios))})" if len(ratios) > 2 else ""
                cells.append(span(ratios, unit="×") + mean)
            rows.append([str(threads), env, f"{len(blocks)} ({flagged} flagged)", *cells])
    return rows


@table("speed_vs_sb3")
def speed_vs_sb3() -> str:
    """README: env steps per second as a ratio to SB3's, the runs of ``perf_act_in_update``."""
    rows = speed_rows(
        bench_runs("perf_act_in_update"), ("rl_repara", "rl_repara compile", "rl_repara compile+bf16")
    )
    return md(["torch threads", "env", "runs (flagged)", "eager", "compile", "compile + bf16"], rows)


@table("update_vs_eager")
def update_vs_eager() -> str:
    """Guide: process CPU time of one update relative to eager fp32, per thread count."""
    runs = [b for b in bench_runs("perf_act_in_update") if b.update_ms]
    rows = []
    for threads in sorted({b.threads for b in runs}):
        mine = [b for b in runs if b.threads == threads]
        cells = []
        for v in ("rl_repara compile", "rl_repara bf16", "rl_repara compile+bf16", "SB3"):
            rel = [b.update_ms[v] / b.update_ms["rl_repara"] for b in mine if v in b.update_ms]
            cells.append(f"{span(rel, unit='×')} ({len(rel)} runs)")
        eager = span([b.update_ms["rl_repara"] for b in mine], dec(1), " ms")
        rows.append([str(threads), eager, *cells])
    head = ["torch threads", "eager fp32, CPU ms per update", "compile", "bf16", "compile + bf16", "SB3"]
    return md(head, rows)


@table("threads")
def threads_gain() -> str:
    """Guide: one process's env steps per second at 2 torch threads over 1, in the same session."""
    runs = bench_runs("perf_act_in_update")
    rows = []
    for env in ("HalfCheetah-v5", "Pendulum-v1"):
        cells = []
        for v in (*VARIANTS, "SB3"):
            gains = []
            for one in (b for b in runs if b.threads == 1):
                two = next((b for b in runs if b.threads == 2 and b.run == one.run), None)
                b1, b2 = one.block(env), two and two.block(env)
                if b1 and b2 and v in b1.sps and v in b2.sps:
                    gains.append(b2.sps[v] / b1.sps[v])
            cells.append(span(gains, unit="×"))
        rows.append([env, *cells])
    return md(["env", "eager", "compile", "bf16", "compile + bf16", "SB3"], rows)


@table("preset_cost")
def preset_cost() -> str:
    """Guide, benchmarks.md: CPU ms of updates per env step for each preset (update_cost.py)."""
    costs = read_update_cost(RESULTS / "perf_compile_options" / "update_cost.txt")
    cols = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]
    cells = {key: preset_cells(costs[key]) for key in cols}
    rows = [
        [label, str(costs[cols[0]][p][0]), *(cells[key][p] for key in cols)] for p, label in PRESETS.items()
    ]
    head = ["preset", "updates per env step", "fp32 eager", "fp32 compile", "bf16 eager", "bf16 compile"]
    return md(head, rows, "lrrrrr")


@table("one_update_before_after")
def one_update_before_after() -> str:
    """Performance guide: CPU ms of updates per env step before (725db47: two update bodies, the
    loss-only compile for CrossQ) and after (the update written once; CrossQ's whole update
    compiled), the median of alternating rounds (``perf_one_update/alternating.txt``)."""
    runs: dict[tuple[str, bool], dict[str, list[float]]] = {}
    key = ("", False)
    for line in (RESULTS / "perf_one_update" / "alternating.txt").read_text().splitlines():
        round_head = re.match(r"## round \d+ (before|after)( --compile)?", line)
        if round_head:
            key = (round_head.group(1), bool(round_head.group(2)))
            continue
        row = re.match(r"(\w+)\s+utd\s+\d+:\s+[\d.]+ ms wall,\s+([\d.]+) ms CPU", line)
        if row:
            runs.setdefault(key, {}).setdefault(row.group(1), []).append(float(row.group(2)))
    rows = []
    for preset in ("sac", "crossq"):
        for compiled, mode in ((False, "eager"), (True, "`agent.compile=true`")):
            before = statistics.median(runs["before", compiled][preset])
            after = statistics.median(runs["after", compiled][preset])
            n = len(runs["after", compiled][preset])
            ratio = f"{num(after / before, 2)}×"
            rows.append([PRESETS[preset], mode, num(before, 1), num(after, 1), ratio, str(n)])
    head = ["preset", "update", "before (725db47)", "after", "after / before", "rounds"]
    return md(head, rows, "llrrrr")


@dataclass
class Tour:
    """A Quick tour command and what its cost estimate is made of.

    ``preset``: the per-env-step cost measured for that preset (``update_cost.py``, HalfCheetah's
    shapes, eager fp32, one thread). ``scaled``: (obs, act): not measured; SAC's measured cost
    scaled by the ratio of matmul FLOPs (``update_flops``), down to the FLOPs at the GEMM rate."""

    command: str
    preset: str = "sac"
    scaled: tuple[int, int] | None = None


TOUR = [
    Tour("rl-repara-train env=halfcheetah"),
    Tour("rl-repara-train agent=crossq env=hopper", "crossq"),
    Tour("rl-repara-train agent=tqc env=walker2d agent.n_step=3 agent.noise_beta=1.0", "tqc"),
    Tour(
        "rl-repara-train env.id=BipedalWalker-v3 agent.lr=7.3e-4 agent.learning_starts=10000 "
        "'agent.hidden_sizes=[400,300]' total_steps=500000",
        scaled=(24, 4),
    ),
    Tour("rl-repara-train env=dmc_cheetah_run"),
    Tour("rl-repara-train agent=sac_dmc env=dmc_walker_run", scaled=(24, 6)),
]


def _overrides(command: str) -> dict[str, str]:
    return dict(tok.strip("'").split("=", 1) for tok in command.split()[1:] if "=" in tok)


def _conf(path: Path, key: str) -> str | None:
    """A top-level ``key: value`` of a config file (no YAML parser: the keys read here are plain)."""
    found = re.search(rf"^{key}:\s*([^#\n]+)", path.read_text(), re.M)
    return found.group(1).strip() if found else None


def tour_cost(t: Tour) -> tuple[int, str, str]:
    """(env steps, the updates' time per env step, the estimate) of one tour command at its budget:
    the command's ``total_steps``, else its env preset's."""
    over = _overrides(t.command)
    budget = over.get("total_steps") or _conf(CONF / "env" / f"{over.get('env')}.yaml", "total_steps")
    if budget is None:
        raise ValueError(f"no total_steps for `{t.command}` (scripts/tables.py TOUR)")
    steps = int(budget)
    sac_ms = read_update_cost(RESULTS / "perf_compile_options" / "update_cost.txt")[("fp32", False)]
    if t.scaled is None:
        ms = sac_ms[t.preset][1]
        return steps, f"{num(ms, 1)} ms ({PRESETS[t.preset]}, measured)", duration(steps * ms / 1e3)
    lo, hi, ratio = scaled_ms(t, over, sac_ms["sac"][1])
    lo_t, hi_t = duration(steps * lo / 1e3), duration(steps * hi / 1e3)
    about = f"{lo_t.split()[0]}–{hi_t}" if lo_t.split()[1] == hi_t.split()[1] else f"{lo_t}–{hi_t}"
    return steps, f"{num(lo)}–{num(hi)} ms (not measured: {num(ratio, 1)}× SAC's FLOPs)", about


def scaled_ms(t: Tour, over: dict[str, str], sac_ms: float) -> tuple[float, float, float]:
    """(low, high) ms per env step of a network that was not measured, and its FLOPs over SAC's.

    high = SAC's measured ms × the FLOP ratio (SAC's efficiency); low = the FLOPs at the fastest
    1-thread GEMM rate of the same session (bigger matmuls run closer to it)."""
    assert t.scaled is not None
    agent = CONF / "agent" / f"{over['agent']}.yaml" if "agent" in over else None
    hidden = over.get("agent.hidden_sizes") or (agent and _conf(agent, "hidden_sizes")) or "[256, 256]"
    batch = int((agent and _conf(agent, "batch_size")) or 256)
    flops = update_flops(*t.scaled, json.loads(hidden), batch)
    ratio = flops / update_flops(17, 6, [256, 256], 256)
    gemm = max(b.gemm for b in bench_runs("perf_compile_options") if b.threads == 1)
    return flops / gemm / 1e6, ratio * sac_ms, ratio


def tour_comment(t: Tour) -> str:
    return f"about {tour_cost(t)[2]} on one CPU core"


@table("run_cost")
def run_cost() -> str:
    """Guide: what the Quick tour's long commands cost on one core (the updates alone)."""
    rows = []
    for t in TOUR:
        steps, per_step, about = tour_cost(t)
        rows.append([f"`{t.command}`", num(steps), per_step, f"about {about}"])
    return md(["command", "env steps", "updates per env step", "time of the updates"], rows, "lrll")


@table("halfcheetah_1m")
def halfcheetah_1m() -> str:
    """Guide: 1M HalfCheetah steps, from the measured wall clock of the 100k-step runs.

    A 100k-step run learns for 90k steps (10k random first), a 1M-step run for 990k: ×11."""
    meta = load_json("mujoco100k/meta.json")
    runs = [
        ("eager fp32", walls(meta, "rl_repara/HalfCheetah-v5/")),
        ("`agent.compile=true`", walls(load_json("hc_bf16_100k/meta_fp32c.json"), "rl_repara/")),
        (
            "`agent.compile=true agent.precision=bf16`",
            walls(load_json("hc_bf16_100k/meta_bf16c.json"), "rl_repara/"),
        ),
        ("SB3 SAC, for comparison", walls(meta, "sb3/HalfCheetah-v5/")),
    ]
    rows = [[name, wall_cell(w), f"about {duration(statistics.mean(w) * 60 * 11)}"] for name, w in runs]
    return md(["setting", "a 100k-step run, 3 seeds (measured)", "1M steps (× 11)"], rows, "lrr")


@table("gpu_presets")
def gpu_presets() -> str:
    """benchmarks.md: learning-phase env steps per second of each preset on the H200."""
    lines = [json.loads(line) for line in (RESULTS / "gpu_smoke_h200.jsonl").read_text().splitlines() if line]
    label = {
        "sac": "SAC",
        "sac-compile-cudagraphs": "SAC, compile + CUDA graphs",
        "crossq": "CrossQ (critics 2048 wide)",
        "tqc": "TQC (5 × 25 quantiles, 512×3)",
        "droq": "DroQ (UTD 20)",
        "redq": "REDQ (10 critics, UTD 20)",
        "sac-nstep3-pink": "SAC, 3-step returns, pink noise",
    }
    rows = [[label[r["preset"]], sps_text(r["learning_sps"]), "yes" if r["ok"] else "no"] for r in lines]
    return md(["preset", "env steps/s", "ran"], rows, "lrl")


@table("gpu_hc10k")
def gpu_hc10k() -> str:
    """benchmarks.md: HalfCheetah at 10k steps on the H200, eval return per seed."""
    rows = []
    for preset in ("sac", "tqc", "crossq"):
        runs = load_json(f"HalfCheetah-v5-{preset}.json")["runs"]
        finals = [r["final"] for r in runs]
        rows.append([PRESETS[preset], " / ".join(num(f) for f in finals), num(statistics.mean(finals))])
    return md(["preset", "eval return at 10k steps, seeds 0 / 1 / 2", "mean"], rows, "lrr")


PENDULUM_RUN = re.compile(
    r"^(?P<name>\w+) seed (?P<seed>\d+): eval return (?P<ret>\S+) at (?P<steps>\d+) env steps, "
    r"(?P<wall>\d+) s wall / (?P<cpu>\d+) s CPU$",
    re.M,
)


@table("pendulum_ci")
def pendulum_ci() -> str:
    """benchmarks.md: CI's learning test (tests/agent/test_learning.py -s), per preset: the env
    steps each seed needed to reach −200, its eval return then, and the CPU seconds per run."""
    text = (RESULTS / "pendulum_learning" / "learning_tier.txt").read_text()
    runs: dict[str, list[re.Match]] = {}
    for m in PENDULUM_RUN.finditer(text):
        runs.setdefault(m["name"], []).append(m)
    rows = [
        [
            name,
            " / ".join(num(int(m["steps"])) for m in ms),
            " / ".join(num(float(m["ret"])) for m in ms),
            span([float(m["cpu"]) for m in ms], dec(0), " s"),
        ]
        for name, ms in runs.items()
    ]
    head = ["test entry", "env steps to −200, seeds 0 / 1 / 2", "eval return then", "CPU per run"]
    return md(head, rows, "lrrr")


@table("published_early")
def published_early() -> str:
    """benchmarks.md: the authors' per-seed returns (Gym-MuJoCo v4), mean over seeds at the
    steps nearest 20k, 50k and 100k their files hold (family2026/published_early.csv); "—"
    where a file has no step within 5k of it."""
    by = read_published()
    label = {"crossq": "CrossQ", "sac": "SAC", "simbav2_utd2": "SimbaV2 (UTD 2)", "xqc": "XQC"}

    def cell(steps: dict[int, list[float]], want: int) -> str:
        step = min(steps, key=lambda s: abs(s - want))
        if abs(step - want) > 5_000:
            return "—"
        return num(statistics.mean(steps[step])) + ("" if step == want else f" (at {num(step)})")

    rows = [
        [env, label[method], str(len(steps[max(steps)]))]
        + [cell(steps, w) for w in (20_000, 50_000, 100_000)]
        for (method, env), steps in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return md(["task", "method", "seeds", "20k", "50k", "100k"], rows, "llrrrr")


@table("family2026_cost")
def family2026_cost() -> str:
    """benchmarks.md: CPU ms of updates per env step (update_cost.py, eager fp32, 1 thread) of
    the 2025-26 presets at their papers' sizes and at their files' CPU-trial sizes."""
    paper = read_update_cost(RESULTS / "family2026" / "update_cost_paper_size_eager.txt")["fp32", False]
    trial = read_update_cost(RESULTS / "family2026" / "update_cost_cpu_trial_eager.txt")["fp32", False]
    cells_p, cells_t = preset_cells(paper), preset_cells(trial)
    labels = {**PRESETS, "crossq": "CrossQ (critics 512)", **FAMILY_2026}
    rows = [
        [labels[p].split(" (")[0], str(paper[p][0]), cells_p[p], labels[p] if p in FAMILY_2026 else "(same)",
         str(trial[p][0]), cells_t[p]]
        for p in paper
    ]  # fmt: skip
    head = ["preset", "UTD", "paper size: ms (×SAC)", "CPU-trial size", "UTD", "ms (×SAC)"]
    return md(head, rows, "lrrlrr")


# The 2025-26 presets ran at their files' CPU-trial sizes (family_cpu.json "settings").
FAMILY_2026 = {
    "xqc": "XQC (critics 2 × 256)",
    "simbav2": "SimbaV2 (critics 128, 1 block)",
    "flashsac": "FlashSAC (critics 128, actor 64, 1 block)",
}
# Runs that ask why a preset fell short, and the presets' earlier runs (family_cpu.json
# "settings" names their overrides and commits); the curves leave them out.
DIAGNOSTIC = {
    "crossq_256": "CrossQ, critics 2 × 256 (XQC's trial size)",
    "xqc_utd1": "XQC at UTD 1",
    "simbav2_utd1": "SimbaV2 at UTD 1, critics first, α loss in log α",
    "simbav2_critics_first": "SimbaV2, critics first, α loss in log α",
    "flashsac_before": "FlashSAC before its noise repetition, [s; s′] actor pass and α loss",
}


def family_cpu(env: str) -> str:
    data = load_json("family_cpu.json")[env]
    rows = []
    labels = {**PRESETS, **FAMILY_2026, **DIAGNOSTIC}
    for preset in [p for p in ("sac", "crossq", "tqc", *FAMILY_2026, *DIAGNOSTIC) if p in data]:
        seeds = data[preset]
        cells = [labels[preset] + (f" (seeds {' / '.join(s[-1] for s in seeds)})" if len(seeds) < 3 else "")]
        for step in (10_000, 20_000):
            at = [dict(map(tuple, s["curve"])).get(step) for s in seeds.values()]
            ok = [a for a in at if a is not None]
            cells += [" / ".join(num(a) for a in ok), num(statistics.mean(ok))] if ok else ["(not run)", ""]
        sps = [s["median_learning_sps"] for s in seeds.values()]
        cells += [span(sps, dec(1)), span([s["wall_min"] for s in seeds.values()], dec(0), " min")]
        rows.append(cells)
    head = [
        env,
        "eval at 10k, seeds 0/1/2",
        "mean",
        "at 20k",
        "mean",
        "learning env steps/s",
        "wall clock per run",
    ]
    return md(head, rows, "lrrrrrr")


@table("family_cpu_hopper")
def family_cpu_hopper() -> str:
    return family_cpu("Hopper-v5")


@table("family_cpu_halfcheetah")
def family_cpu_halfcheetah() -> str:
    return family_cpu("HalfCheetah-v5")


@table("mujoco100k")
def mujoco100k() -> str:
    """benchmarks.md: the #13 grid, rl_repara's SAC and SB3's at 100k steps, 3 seeds."""
    rows = [
        [r["env"], *score_cell(r, "rl_repara sac"), *score_cell(r, "sb3 sac")]
        for r in sorted(load_csv("mujoco100k/results.csv"), key=lambda r: ENV_ORDER.index(r["env"]))
    ]
    head = [
        "env",
        "rl_repara SAC: mean [seed range]",
        "seeds 0 / 1 / 2",
        "SB3 SAC: mean [seed range]",
        "seeds 0 / 1 / 2",
    ]
    return md(head, rows, "lrrrr")


ENV_ORDER = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5"]


@table("mujoco100k_iqm")
def mujoco100k_iqm() -> str:
    rows = []
    for r in load_csv("mujoco100k/aggregate.csv"):
        lo, hi = num(float(r["lo"]), 3), num(float(r["hi"]), 3)
        rows.append([r["method"], num(float(r["iqm"]), 3), f"[{lo}, {hi}]", f"{r['runs']} × {r['envs']}"])
    return md(["method", "IQM of normalized score", "95% bootstrap CI", "seeds × envs"], rows, "lrrr")


@table("mujoco100k_wall")
def mujoco100k_wall() -> str:
    """benchmarks.md: wall clock per run of the #13 grid (meta.json), per env and library."""
    meta = load_json("mujoco100k/meta.json")
    rows = [
        [env, wall_cell(walls(meta, f"rl_repara/{env}/")), wall_cell(walls(meta, f"sb3/{env}/"))]
        for env in ENV_ORDER
    ]
    return md(["env", "rl_repara SAC, per run", "SB3 SAC, per run"], rows)


@table("published_1m")
def published_1m() -> str:
    rows = [
        [r["source"], r["budget"], r["HalfCheetah"], r["Hopper"], r["Walker2d"], r["Ant"]]
        for r in load_csv("published_1m.csv")
    ]
    return md(["source", "budget, runs", "HalfCheetah", "Hopper", "Walker2d", "Ant"], rows, "llrrrr")


# --------------------------------------------------------------------- the notebook's tables
@table("bench_machine")
def bench_machine() -> str:
    """Notebook: what the benchmark files' headers say of the machine."""
    runs = bench_runs("perf_compile_options") + bench_runs("perf_act_in_update")
    first = (RESULTS / "perf_act_in_update" / "run1_1thread_halfcheetah.txt").read_text().splitlines()[0]
    cpu = _find(r"CPU: (.*?), torch \S+, \d+ torch", first, Path("run1_1thread_halfcheetah.txt"))
    rows = [["CPU (as the files' first line has it)", cpu]]
    for threads in (1, 2):
        rates = [b.gemm for b in runs if b.threads == threads]
        rows.append(
            [
                f"fp32 GEMM `[256,256]@[256,256]`, {threads} thread(s), {len(rates)} runs",
                span(rates, dec(1), " GFLOP/s"),
            ]
        )
    return md(["key", "value"], rows)


def bench_table(folder: str) -> str:
    """Notebook: every run of a folder, env steps/s as a ratio to SB3, the warning it printed."""
    rows = []
    for b in bench_runs(folder):
        for blk in b.envs:
            cells = []
            for v in VARIANTS:
                r = blk.ratio_repeats.get(v)
                cells.append(f"{times(blk.ratio[v])} ({span(r)})" if r else "")
            warning = f"repeats differ by {num(blk.warning, 1)}×" if blk.warning else ""
            rows.append([str(b.threads), blk.env, b.run, warning, *cells])
    head = [
        "threads",
        "env",
        "run",
        "untrustworthy (the script's flag)",
        "eager",
        "compile",
        "bf16 eager",
        "compile + bf16",
    ]
    return md(head, rows)


def update_only_table(folder: str) -> str:
    """Notebook: update-only process CPU ms per update and SB3 / this, every run of a folder."""
    rows = []
    for b in (b for b in bench_runs(folder) if b.update_ms):
        cells = [
            f"{num(b.update_ms[v], 2)} ({times(b.update_ratio[v])})" if v in b.update_ms else ""
            for v in VARIANTS
        ]
        rows.append([str(b.threads), b.run, *cells, num(b.update_ms["SB3"], 2)])
    return md(["threads", "run", "eager", "compile", "bf16 eager", "compile + bf16", "SB3"], rows)


@table("bench_compile_options")
def bench_compile_options() -> str:
    return bench_table("perf_compile_options")


@table("update_only_compile_options")
def update_only_compile_options() -> str:
    return update_only_table("perf_compile_options")


@table("bench_act_in_update")
def bench_act_in_update() -> str:
    return bench_table("perf_act_in_update")


@table("update_only_act_in_update")
def update_only_act_in_update() -> str:
    return update_only_table("perf_act_in_update")


@table("family_act_in_update")
def family_act_in_update() -> str:
    """Notebook: the presets compiled after acting moved into the update, and before (brackets)."""
    before = read_update_cost(RESULTS / "perf_compile_options" / "update_cost.txt")
    after = {
        p: read_update_cost(RESULTS / "perf_act_in_update" / f"family_compile_{p}.txt")[(p, True)]
        for p in ("fp32", "bf16")
    }
    rows = []
    for p, label in PRESETS.items():
        cells = [f"{num(after[pr][p][1], 1)} ({num(before[(pr, True)][p][1], 1)})" for pr in ("fp32", "bf16")]
        ratios = [num(after[pr][p][1] / after[pr]["sac"][1], 1) + "×" for pr in ("fp32", "bf16")]
        rows.append([label, cells[0], ratios[0], cells[1], ratios[1]])
    return md(["preset", "fp32 compile (before)", "× SAC", "bf16 compile (before)", "× SAC"], rows, "lrrrr")


@table("preset_cost_compile_options")
def preset_cost_compile_options() -> str:
    return preset_cost()


def pendulum_table(folder: str) -> str:
    """Notebook: Pendulum learning runs, compiled fp32 and bf16: finals, first eval past −200, wall."""
    rows = []
    for precision in ("fp32", "bf16"):
        runs = load_json(f"{folder}/pend_compile_{precision}.json")["runs"]
        finals = " / ".join(num(r["final"], 1) for r in runs)
        past = " / ".join(next((f"{s // 1000}k" for s, v in r["curve"] if v > -200), "never") for r in runs)
        wall = span([r["wall_s"] for r in runs], dec(0), " s")
        rows.append([f"compile {precision}", finals, past, wall])
    return md(
        ["run", "final eval return, seeds 0 / 1 / 2", "first eval past −200", "wall clock per run"], rows
    )


@table("pend_compile_options")
def pend_compile_options() -> str:
    return pendulum_table("perf_compile_options")


@table("pend_act_in_update")
def pend_act_in_update() -> str:
    return pendulum_table("perf_act_in_update")


@table("hc_bf16_100k")
def hc_bf16_100k() -> str:
    """Notebook: HalfCheetah at 100k steps, compiled fp32 and bf16 beside the #13 grid's runs."""
    grid = next(r for r in load_csv("mujoco100k/results.csv") if r["env"] == "HalfCheetah-v5")
    meta = load_json("mujoco100k/meta.json")
    rows = []
    for label, tag in (("fp32, `compile=true`", "fp32c"), ("bf16, `compile=true`", "bf16c")):
        row = load_csv(f"hc_bf16_100k/results_{tag}.csv")[0]
        wall = wall_cell(walls(load_json(f"hc_bf16_100k/meta_{tag}.json"), "rl_repara/"))
        rows.append([label, *score_cell(row, "rl_repara sac"), wall])
    for label, method, lib in (
        ("fp32 eager (#13 grid)", "rl_repara sac", "rl_repara"),
        ("SB3 (#13 grid)", "sb3 sac", "sb3"),
    ):
        rows.append([label, *score_cell(grid, method), wall_cell(walls(meta, f"{lib}/HalfCheetah-v5/"))])
    return md(["run", "score, mean [seed range]", "seeds 0 / 1 / 2", "wall clock per run"], rows, "lrrr")


@table("hc_bf16_100k_curve")
def hc_bf16_100k_curve() -> str:
    """Notebook: the mean evaluation of each group every 10k steps (curves.csv)."""
    groups = ["bf16 compile", "fp32 compile", "fp32 eager (#13 grid)", "SB3 (#13 grid)"]
    means: dict[tuple[str, int], float] = {
        (r["group"], int(float(r["step"]))): float(r["mean"]) for r in load_csv("hc_bf16_100k/curves.csv")
    }
    steps = sorted({s for _, s in means})
    rows = [[f"{s // 1000}k", *(num(means[(g, s)]) for g in groups)] for s in steps]
    return md(["env steps", *groups], rows, "rrrrr")


# --------------------------------------------------------------------------- math.md's tables
def read_gradient_variance(path: Path) -> dict:
    """{"mu"|"sigma": {N: (pathwise, score, score+b)}, "bias": worst |mean − ref| in standard errors}."""
    out: dict = {"bias": None}
    param = None
    for line in path.read_text().splitlines():
        head = re.match(r"variance of the d/d(mu|sigma) estimate", line)
        if head:
            param = head.group(1)
            out[param] = {}
            continue
        row = re.match(r"\s+(\d+)\s+([\d.e+-]+)\s+([\d.e+-]+)\s+([\d.e+-]+|-)\s", line)
        if row and param:
            out[param][int(row.group(1))] = tuple(
                Decimal(v) if v != "-" else None for v in row.group(2, 3, 4)
            )
        bias = re.search(r"stderr over all cells = ([\d.]+)", line)
        if bias:
            out["bias"] = float(bias.group(1))
    return out


def sci(x: Decimal | None) -> str:
    """Three significant digits as ``2.57e-1`` (halves rounded up, from the printed digits)."""
    if x is None:
        return "–"
    exp = x.adjusted()
    mant = x.scaleb(-exp).quantize(Decimal("0.01"), ROUND_HALF_UP)
    if mant >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:.2f}e{exp}"


@table("gradient_variance")
def gradient_variance() -> str:
    """math.md: variance of the N-sample estimates, σ = 0.7."""
    gv = read_gradient_variance(RESULTS / "gradient_variance" / "sigma_0.7.txt")
    rows = [
        [str(n), *(sci(v) for v in gv["mu"][n]), *(sci(v) for v in gv["sigma"][n])] for n in sorted(gv["mu"])
    ]
    head = ["N", "∂/∂μ pathwise", "score", "score + baseline", "∂/∂σ pathwise", "score", "score + baseline"]
    return md(head, rows, "rrrrrrr")


@table("gradient_variance_ratios")
def gradient_variance_ratios() -> str:
    """math.md: how many times more samples the score-function estimators need (variance ratio)."""
    rows = []
    for sigma in ("0.7", "0.1"):
        gv = read_gradient_variance(RESULTS / "gradient_variance" / f"sigma_{sigma}.txt")
        cells = []
        for param in ("mu", "sigma"):
            for k in (1, 2):
                r = [float(v[k] / v[0]) for v in gv[param].values() if v[k] is not None]
                cells.append(span(r, two_digits, "×"))
        rows.append([sigma, *cells, num(gv["bias"], 2)])
    head = [
        "σ",
        "∂/∂μ score",
        "score + baseline",
        "∂/∂σ score",
        "score + baseline",
        "largest bias (std. errors)",
    ]
    return md(head, rows, "rrrrrr")


# ----------------------------------------------------------------------------- the docs
def docs() -> list[Path]:
    """The hand-written docs: README.md, docs/*.md and the performance notebook."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), NOTEBOOK]


def render(text: str, made: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` with every marked table replaced by ``made[name]``; the names that changed."""
    changed: list[str] = []

    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in made:
            raise KeyError(f"no table maker named {name!r} (scripts/tables.py TABLES)")
        if m.group("body") != made[name]:
            changed.append(name)
        return m.group(1) + made[name] + m.group(4)

    return MARKER.sub(fill, text), changed


def render_tour(text: str) -> tuple[str, list[str]]:
    """README ``text`` with each ``TOUR`` command's comment set to its cost; the commands changed."""
    changed: list[str] = []
    for t in TOUR:
        want = f"{t.command}   # {tour_comment(t)}"
        pattern = re.compile(rf"^{re.escape(t.command)}(?:[ \t]+#[^\n]*)?$", re.M)
        found = pattern.search(text)
        if found is None:
            raise KeyError(f"the Quick tour has no line `{t.command}` (scripts/tables.py TOUR)")
        if found.group(0) != want:
            changed.append(f"tour: {t.command}")
            text = text[: found.start()] + want + text[found.end() :]
    return text, changed


def unmarked_tables(text: str) -> list[str]:
    """Header lines of the Markdown tables outside markers and code blocks, not in ``NOT_RESULTS``."""
    text = MARKER.sub("", text)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    lines = text.splitlines()
    return [
        line
        for line, nxt in zip(lines, lines[1:])
        if line.startswith("|") and re.match(r"\|\s*:?-{3}", nxt) and line.strip() not in NOT_RESULTS
    ]


def problems(paths: list[Path], write: bool = False) -> list[str]:
    """What differs from the raw files in ``paths`` (rewritten in place when ``write``), and, when
    ``paths`` are all the docs, each table maker that no doc uses."""
    made = {name: fn() for name, fn in TABLES.items()}
    out: list[str] = []
    used: set[str] = set()
    for path in paths:
        text = path.read_text()
        used |= {m.group("name") for m in MARKER.finditer(text)}
        new, changed = render(text, made)
        if path.name == "README.md" and "## Quick tour" in new:
            new, tour = render_tour(new)
            changed += tour
        out += [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {c}" for c in changed]
        if not write:
            out += [f"{path.name}: a table outside the markers: {h}" for h in unmarked_tables(text)]
        elif new != text:
            path.write_text(new)
    if set(paths) == set(docs()):
        out += [f"scripts/tables.py: no doc has the table {name!r}" for name in sorted(set(TABLES) - used)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--check", action="store_true", help="exit 1 if a docs table differs from its raw files"
    )
    mode.add_argument("--write", action="store_true", help="rewrite the docs' tables in place")
    p.add_argument(
        "paths", nargs="*", type=Path, help="docs to check (default: README.md, docs/*.md, the notebook)"
    )
    args = p.parse_args(argv)
    found = problems([path.resolve() for path in args.paths] or docs(), write=args.write)
    for line in found:
        print(line)
    if args.write:
        found = problems([path.resolve() for path in args.paths] or docs())
        for line in found:
            print(f"still: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
