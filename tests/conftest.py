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


@pytest.fixture(scope="session")
def tiny_trained():
    """A tiny Multimodal trained on a learnable target with the circuit's calibration (calibrated-circuit):
    ``(model, audio [64, 1, 2, 6], visual [64, 1, 4, 6], target [64, 6])``."""
    import torch
    import torch.nn.functional as F

    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.manual_seed(1)
    model = build_model("multimodal", ModelConfig(activation="calibrated-circuit", n_bins=6, context=2, lip_hw=(4, 6),
                                                  channels=1, embed=4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    a, v = torch.randn(64, 1, 2, 6), torch.randn(64, 1, 4, 6)
    target = (a[:, 0, -1] + 0.5 * a[:, 0, 0] > 0).float()
    for _ in range(100):
        opt.zero_grad()
        F.binary_cross_entropy(model(a, v), target).backward()
        opt.step()
    return model.eval(), a, v, target
