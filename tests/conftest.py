"""Shared test setup: every test starts from the same global RNG state; compiled code can be
made to draw with it (``inductor_uses_torch_rng``).

Tests that draw random numbers with the global generators (``torch.randn`` inside
``rsample``, ``np.random``) are then reproducible one by one, whatever ran before them.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_global_rngs() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """``train(torch_threads=1)`` sets torch's global thread count; give it back after."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


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
