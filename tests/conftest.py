"""Shared fixtures: real-data locations (skipped with a reason when absent); one torch thread."""
from __future__ import annotations

import pytest

from experiments.data.paths import data_root


@pytest.fixture(scope="session")
def shared_data():
    root = data_root()
    if root is None:
        pytest.skip("real data not found: set MBURST_DATA or place GRID/noise under ../shared/data")
    return root


@pytest.fixture(scope="session")
def grid_root(shared_data):
    root = shared_data / "grid"
    if not (root / "s1").is_dir():
        pytest.skip(f"no GRID speaker folder under {root}")
    return root


@pytest.fixture(scope="session")
def noise_root(shared_data):
    root = shared_data / "noise"
    if not any(root.glob("*.wav")):
        pytest.skip(f"no noise wav files under {root}")
    return root


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one thread avoids OpenMP stalls on a loaded 2-core machine (torch imported only here)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
