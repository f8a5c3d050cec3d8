"""Shared fixtures. Tests use small, self-made data; nothing is downloaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Smoke tests use a tiny timm CNN; the recipe's efficientnet_b0 is exercised in export/benchmarks.
TINY_BACKBONE = "mobilenetv3_small_050"


@pytest.fixture(autouse=True)
def _few_threads():
    """One torch thread: on two busy cores, two spinning threads ran up to 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
