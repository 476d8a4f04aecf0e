"""Shared fixtures. Tests use real data: the shared data folder when present (development
machines and CI), else the small real samples shipped in ``tests/data``."""

from __future__ import annotations

import os

# One thread per BLAS / OpenMP pool in tests: on the 2-core CI machine, torch's OpenMP pool and
# OpenBLAS otherwise oversubscribe the cores and small linear-algebra calls slow down by 100x.
# Set before numpy or torch is imported by any test module.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XASML_SHARED_DATA", REPO.parent / "shared" / "data"))
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; tests that need it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Small real samples committed with the tests."""
    return TEST_DATA
