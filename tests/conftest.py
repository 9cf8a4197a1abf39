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


@pytest.fixture
def inductor_uses_torch_rng():
    """Compiled code draws its random numbers with torch's RNG, as eager code does, so a
    compiled update and an eager one can be compared draw for draw."""
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    with inductor_config.patch(fallback_random=True):
        yield
    torch._dynamo.reset()
