"""The Payeur Fig. 3 microcircuit (circuits.microcircuit) at reduced size; full size is marked slow."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")
from brian2 import mV, second  # noqa: E402

from circuits.microcircuit import MicrocircuitConfig, drive_signals, run_propagation  # noqa: E402
from circuits.signals import lagged_pearson, pearson, smooth_signals  # noqa: E402
from neurons.common import MburstError  # noqa: E402


def test_signals_are_smooth_orthogonal_and_unit_variance():
    s = smooth_signals(3000, 1e-3, 0.2, np.random.default_rng(3))
    assert abs(pearson(s[0], s[1])) < 1e-9
    assert np.allclose(s.std(axis=1), 1.0)
    # smooth: neighbouring 1 ms samples almost identical, 1 s apart nearly unrelated
    assert pearson(s[0][:-1], s[0][1:]) > 0.99
    r, lag = lagged_pearson(s[0], np.r_[np.zeros(5), s[0][:-5]], 10)
    assert lag == 5 and r == pytest.approx(1.0, abs=1e-6)


def test_sine_drive_is_off_during_warmup_and_nearly_uncorrelated():
    cfg = MicrocircuitConfig(warmup=1 * second, duration=6 * second)
    sig = drive_signals(cfg, 1e-3, np.random.default_rng(0))
    assert sig.shape == (2, 7001)
    assert np.all(sig[:, :1000] == 0.0)
    t = np.arange(7001)[1000:] * 1e-3 - 1.0
    assert np.allclose(sig[0, 1000:], np.sin(2 * np.pi * t / 0.5))
    assert np.allclose(sig[1, 1000:], np.sin(2 * np.pi * t / np.sqrt(5)))
    # incommensurate periods: the two inputs are nearly uncorrelated over the analysed window
    assert abs(pearson(sig[0, 1000:], sig[1, 1000:])) < 0.05


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_pyr=0), "n_pyr"), (dict(n_som=-3), "n_som"), (dict(p=1.2), "p="), (dict(p=-0.1), "p="),
    (dict(stp="random"), "stp"), (dict(w_fb_dend=-1.0), "w_fb_dend"), (dict(duration=-1 * second), "duration"),
    (dict(signal="square"), "signal"), (dict(realizations=0), "realizations"), (dict(v_init_sd=-1 * mV), "v_init_sd"),
    (dict(i_pv=5 * mV), "i_pv"),
])
def test_bad_configuration_raises_before_building(kwargs, match):
    with pytest.raises(MburstError, match=match):
        run_propagation(MicrocircuitConfig(**kwargs))


@pytest.fixture(scope="module")
def reduced():
    cfg = MicrocircuitConfig(n_pyr=1000, n_pv=250, n_som=250, duration=3 * second, warmup=0.5 * second,
                             realizations=2, target="cpp_standalone")
    return run_propagation(cfg, seed=2, tag="test_propagation", progress=False)


def test_reduced_circuit_multiplexes(reduced):
    r = {k: v["r"] for k, v in reduced["correlations"].items()}
    # 1000 cells per layer (in-degree kept) x 2 realizations, 30 bins of 100 ms: noisier than the
    # published 4000 cells x 5 realizations (seed 2 measured: 0.94, 0.65, 0.97, 0.77; cross 0.12, -0.12,
    # -0.03), so margins here, the >= 0.9 / <= 0.2 targets in the slow tests.
    assert r["L1_E_vs_s1"] > 0.8, r
    assert r["L2_E_vs_L1_E"] > 0.5, r
    assert r["L2_P_vs_s2"] > 0.85, r
    assert r["L1_P_vs_L2_B"] > 0.55, r
    # each rate follows its own cause, not the other signal
    for key in ("L1_E_vs_s2", "L2_E_vs_s2", "L1_P_vs_s1"):
        assert abs(r[key]) < 0.4, (key, r)
    assert abs(r["L1_P_vs_s1"]) < r["L1_P_vs_L2_B"] - 0.3, r
    s = reduced["summary"]
    assert 1.0 < s["L1_E_mean_hz"] < 40.0 and 0.02 < s["L1_P_mean"] < 0.9


def _full(**kwargs):
    cfg = MicrocircuitConfig(target="cpp_standalone", realizations=5, **kwargs)
    return run_propagation(cfg, seed=0, tag="test_propagation_full", progress=False)


@pytest.fixture(scope="module")
def full_size():
    return _full()


@pytest.mark.slow
def test_full_size_event_pairs_and_cross_pairs_meet_targets(full_size):
    c = full_size["correlations"]
    for key in ("L1_E_vs_s1", "L2_E_vs_L1_E"):
        assert c[key]["r"] >= 0.9, (key, c)
    for key in ("L1_E_vs_s2", "L1_P_vs_s1", "L2_E_vs_s2"):
        assert abs(c[key]["r"]) <= 0.2, (key, c)


@pytest.mark.slow
def test_full_size_burst_probability_tracks_feedback_burst_rate(full_size):
    assert full_size["correlations"]["L1_P_vs_L2_B"]["r"] >= 0.9, full_size["correlations"]


@pytest.mark.slow
def test_full_size_ablations_change_the_code(full_size):
    base = full_size
    no_som = _full(som=False)
    swapped = _full(stp="swapped")
    # Without SOM the burst probability loses its dynamic range or saturates.
    assert (no_som["summary"]["L1_P_range_5_95"] < 0.8 * base["summary"]["L1_P_range_5_95"]
            or no_som["summary"]["L1_P_mean"] > base["summary"]["L1_P_mean"] + 0.1)
    # With STP swapped the multiplexing is lost: a tracking pair degrades or a cross pair grows.
    cb, cs = base["correlations"], swapped["correlations"]
    lost = (cs["L2_E_vs_L1_E"]["r"] < cb["L2_E_vs_L1_E"]["r"] - 0.1
            or cs["L1_P_vs_L2_B"]["r"] < cb["L1_P_vs_L2_B"]["r"] - 0.1
            or abs(cs["L1_P_vs_s1"]["r"]) > abs(cb["L1_P_vs_s1"]["r"]) + 0.1)
    assert lost, (cb, cs)
