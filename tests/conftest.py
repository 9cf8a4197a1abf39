"""Shared test setup: every test starts from the same global RNG state.

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
