"""Test 6: numpy, cython and cpp_standalone give the same population rates within statistical tolerance.

The three targets draw different random numbers (background, connectivity),
so rates are compared as means over neurons with their standard errors.
"""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import defaultclock, ms, second  # noqa: E402

from neurons.bursts import detect_population  # noqa: E402
from neurons.device import choose_target, use_target  # noqa: E402
from circuits.reference_network import reference_network  # noqa: E402

SIZES = dict(n_pyr=400, n_pv=100, n_som=100, p=0.05)
DURATION = 1.0


def population_rates(target: str, threads: int = 0, seed: int = 5) -> dict:
    """Per-neuron spike rates (Hz) per population, plus per-neuron pyramidal event and burst rates."""
    use_target(target, threads=threads, tag=f"test_codegen_{threads}")
    defaultclock.dt = 0.1 * ms
    ref = reference_network(**SIZES, seed=seed, record_spikes=True, online_events=True)
    ref.net.run(DURATION * second)
    out = {k: np.asarray(c, dtype=float) / DURATION for k, c in ref.spike_counts().items()}
    mon = ref.monitors["pyr"]
    det = detect_population(mon.i[:], mon.t[:], 0.016, 5e-5)
    n = SIZES["n_pyr"]
    out["event"] = np.bincount(det.event_i, minlength=n) / DURATION
    out["burst"] = np.bincount(det.burst_i, minlength=n) / DURATION
    out["n_events_online"] = np.asarray(ref.groups["pyr"].n_events[:])
    out["n_synapses"] = ref.n_synapses
    use_target("numpy")
    return out


def assert_agree(a: dict, b: dict, label: str) -> None:
    for key in ("pyr", "pv", "som", "event", "burst"):
        ma, mb = a[key].mean(), b[key].mean()
        se = np.hypot(a[key].std(ddof=1) / np.sqrt(len(a[key])), b[key].std(ddof=1) / np.sqrt(len(b[key])))
        # 4.5 standard errors, plus 2% for the network's shared fluctuations.
        assert abs(ma - mb) < 4.5 * se + 0.02 * max(ma, mb), f"{label} {key}: {ma:.3f} vs {mb:.3f} Hz (se {se:.3f})"


@pytest.fixture(scope="module")
def numpy_rates():
    return population_rates("numpy")


def test_populations_are_active(numpy_rates):
    for key in ("pyr", "pv", "som", "event", "burst"):
        assert numpy_rates[key].mean() > 0.5, f"{key} is nearly silent: {numpy_rates[key].mean():.2f} Hz"
    assert numpy_rates["n_synapses"] > 0.8 * 0.05 * (400 * 100 * 4 + 400 * 399)


@pytest.mark.slow  # a cold Cython build of the reference network: 166 s of a 15-minute CI budget on 2 cores
def test_cython_agrees_with_numpy(numpy_rates):
    assert_agree(numpy_rates, population_rates("cython"), "cython vs numpy")


@pytest.mark.skipif(choose_target("auto") == "numpy", reason="no C++ compiler")
def test_cpp_standalone_agrees_with_numpy(numpy_rates):
    rates = population_rates("cpp_standalone")
    assert_agree(numpy_rates, rates, "cpp_standalone vs numpy")
    # Online counters came back from the standalone binary and equal the offline detection.
    np.testing.assert_array_equal(rates["n_events_online"], rates["event"] * DURATION)


@pytest.mark.slow
def test_cpp_standalone_openmp_agrees_with_numpy(numpy_rates):
    assert_agree(numpy_rates, population_rates("cpp_standalone", threads=2), "cpp_standalone(2 threads) vs numpy")
