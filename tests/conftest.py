"""Shared fixtures: the torch device (CPU unless PLINTH_TEST_DEVICE says otherwise) and the bench data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"  # artifacts (screenshots, sample models); git-ignored


def bench_root() -> Path:
    """The shared benchmark data: $PLINTH_BENCH, default ../shared/bench beside the project root."""
    return Path(os.environ.get("PLINTH_BENCH", ROOT.parent / "shared" / "bench")).resolve()


@pytest.fixture(scope="session")
def device() -> str:
    return os.environ.get("PLINTH_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def bench() -> Path:
    root = bench_root()
    if not (root / "single").is_dir():
        # Fail loudly: a test that needs the bench must not turn green without it.
        raise FileNotFoundError(f"benchmark data not found at {root}; set PLINTH_BENCH")
    return root


@pytest.fixture(scope="session")
def artifacts() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
