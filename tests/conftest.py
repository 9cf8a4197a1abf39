"""Shared test setup: every test starts from the same global RNG state and torch thread count;
compiled code can be made to draw with that RNG (``inductor_uses_torch_rng``); what ``run_cli``
changes in the process is undone (``cli_process``).

Tests that draw random numbers with the global generators (``torch.randn`` inside
``rsample``, ``np.random``) are then reproducible one by one, whatever ran before them.
Plain helper functions and constants are in ``support.py``, the test envs in ``helpers_envs.py``.
"""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_global_rngs() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


TORCH_THREADS = torch.get_num_threads()  # this process's count, before any test changed it


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """``train(torch_threads=1)`` sets torch's process-wide thread count: every test starts and
    ends with the count the process started with, also after a module-scoped fixture that
    trained in-process (it runs before this fixture, so "the count before the test" would be
    its count)."""
    torch.set_num_threads(TORCH_THREADS)
    yield
    torch.set_num_threads(TORCH_THREADS)


# what run_cli sets in os.environ (for its sweep workers, and NO_COLOR off a terminal)
CLI_ENV = ("NO_COLOR", "_RL_REPARA_MAIN_PID", "_RL_REPARA_FULL_ERROR", "HYDRA_FULL_ERROR")


@pytest.fixture
def cli_process(monkeypatch):
    """For a test that runs a command in this process (``run_cli``, ``train_main``): it starts
    with ``CLI_ENV`` unset, and the process-wide state a command changes is given back after:
    ``os.environ`` (or later tests' subprocesses inherit ``HYDRA_FULL_ERROR=1`` and print
    tracebacks), the warning display, and the root logger's handlers and level (Hydra's)."""
    environ = dict(os.environ)
    handlers, level = logging.root.handlers[:], logging.root.level
    for name in CLI_ENV:
        os.environ.pop(name, None)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    yield
    os.environ.clear()
    os.environ.update(environ)
    logging.root.handlers[:], logging.root.level = handlers, level


@pytest.fixture
def fresh_dynamo():
    """Dynamo's caches and counters emptied before and after the test."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def inductor_uses_torch_rng(fresh_dynamo):
    """Compiled code draws its random numbers with torch's RNG, as eager code does, so a
    compiled loss (the loss-only compile) and an eager one can be compared draw for draw. The
    whole update needs no fixture: it compiles with this option (``whole_update.COMPILE_OPTIONS``)."""
    import torch._inductor.config as inductor_config

    with inductor_config.patch(fallback_random=True):
        yield


# The longest tests of the non-slow tier (CI's durations), run first: pytest-xdist hands out
# tests in collection order, and one of these started last keeps a worker busy while the other
# has nothing left to do.
LONGEST_FIRST = (
    "test_quick_tour_runs_as_written",
    "test_compiled_crossq_resumed_through_the_cli_ends_in_the_same_state",
    "test_bench_runs_both_libraries_and_the_report_fills_every_cell",
    "test_a_fresh_cli_run_checks_builds_and_opens_the_logger_once",
    "test_the_machine_is_checked_once_in_the_whole_process",
    "test_a_compiled_run_resumed_in_a_new_process_ends_in_the_same_state",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move ``LONGEST_FIRST`` to the front, in that order; the rest keep theirs."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.originalname, len(rank)))
