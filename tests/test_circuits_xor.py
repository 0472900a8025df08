"""Spiking XOR (circuits.xor): a reduced run must learn measurably; the full 5-seed run is marked slow."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")
from brian2 import second  # noqa: E402

from circuits.xor import TARGETS, XORConfig, run_xor  # noqa: E402
from neurons.common import MburstError  # noqa: E402


def _separation(res, epochs) -> float:
    """Mean output rate of the target-1 patterns minus the target-0 patterns over the given epochs (Hz)."""
    order = np.asarray(res["order"])
    out = np.asarray(res["out_rate"])
    sel = np.isin(np.arange(len(order)) // 4, epochs)
    hi = out[sel & np.isin(order, np.flatnonzero(TARGETS == 1))].mean()
    lo = out[sel & np.isin(order, np.flatnonzero(TARGETS == 0))].mean()
    return float(hi - lo)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n="), (dict(n_hidden=-2), "n_hidden"), (dict(p=1.5), "p="), (dict(eta_ih=-1e-3), "eta_ih"),
    (dict(learn_fraction=1.0), "learn_fraction"), (dict(t_present=-1 * second), "t_present"),
])
def test_bad_configuration_raises_before_building(kwargs, match):
    with pytest.raises(MburstError, match=match):
        run_xor(XORConfig(**kwargs))


def test_reduced_xor_learns_to_separate_the_patterns():
    # 40 cells per input/output population and 80 hidden, with p raised so every cell keeps
    # the in-degree of the full network (20 inputs per input population, 40 hidden->output, 20 feedback).
    epochs = 16
    cfg = XORConfig(n=40, n_hidden=80, p=0.5, epochs=epochs)
    res = run_xor(cfg, seed=0, tag="xor_test", progress=False)
    before = _separation(res, [0, 1, 2])
    after = _separation(res, [epochs - 3, epochs - 2, epochs - 1])
    # At the start the output does not tell the targets apart; after training the
    # XOR-true patterns drive it harder than the XOR-false ones.
    # The class-mean rate difference has a standard error of about 0.3 Hz here (n = 40 outputs).
    assert after > before + 1.0, (before, after, res["final_rates"])
    assert after > 0.0, (before, after, res["final_rates"])
    assert res["spikes"] > 0 and res["simulated_s"] == pytest.approx(epochs * 4 * 2.0)


@pytest.mark.slow
def test_full_xor_solves_in_four_of_five_seeds():
    solved = [run_xor(XORConfig(), seed=s, progress=False)["solved"] for s in range(5)]
    assert sum(solved) >= 4, solved
