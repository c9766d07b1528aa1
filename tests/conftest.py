"""pytest configuration for the labsched test suite."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# Headless plotting for the rgb_array rendering tests (set before matplotlib is imported).
os.environ.setdefault("MPLBACKEND", "Agg")

# Keep Hypothesis' local cache inside tests/ (the property tests use no example database).
set_hypothesis_home_dir(Path(__file__).parent / ".hypothesis")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slower tests (a short RL training run)")
