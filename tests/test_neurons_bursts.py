"""Test 2: the 16 ms event/burst rule on hand-made trains; online detection == offline detection."""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Network, SpikeGeneratorGroup, Synapses, defaultclock, ms, pA, second  # noqa: E402

from neurons.bursts import BurstMonitor, burst_statistics, detect_events_bursts, detect_population  # noqa: E402
from neurons.common import MburstError  # noqa: E402
from neurons.device import use_target  # noqa: E402
from neurons.inputs import payeur_background  # noqa: E402
from neurons.params import PyramidalParams  # noqa: E402
from neurons.pyramidal import pyramidal_group  # noqa: E402

# Spike times (ms) and what the 16 ms rule makes of them.
TRAIN = [100.0,                 # a single spike: one event, no burst
         300.0, 316.0,          # ISI exactly 16 ms: two events, no burst
         500.0, 505.0, 512.0,   # a run of three: one event, one burst (flagged at 505)
         700.0, 715.9,          # ISI 15.9 ms: one event, one burst
         900.0]                 # a single spike again
EVENTS = [100.0, 300.0, 316.0, 500.0, 700.0, 900.0]
BURSTS = [505.0, 715.9]
ONSETS = [500.0, 700.0]
SIZES = [1, 1, 1, 3, 2, 1]


def test_offline_hand_made_train():
    det = detect_events_bursts(np.array(TRAIN) * 1e-3)
    np.testing.assert_allclose(det.event_t * 1e3, EVENTS)
    np.testing.assert_allclose(det.burst_t * 1e3, BURSTS)
    np.testing.assert_allclose(det.burst_onset_t * 1e3, ONSETS)
    np.testing.assert_array_equal(det.event_size, SIZES)


def test_offline_edge_cases():
    assert len(detect_events_bursts([]).event_t) == 0
    one = detect_events_bursts(np.array([0.2]) * second)
    assert len(one.event_t) == 1 and len(one.burst_t) == 0
    run3 = detect_events_bursts([0.0, 0.005, 0.010])
    assert len(run3.event_t) == 1 and len(run3.burst_t) == 1 and run3.event_size[0] == 3
    exact = detect_events_bursts([0.3, 0.316])  # 0.316 - 0.3 is 0.016000000000000014 in floating point
    assert len(exact.event_t) == 2 and len(exact.burst_t) == 0
    exact2 = detect_events_bursts([0.0003, 0.0163])  # 0.015999999999999997: still exactly 16 ms
    assert len(exact2.event_t) == 2 and len(exact2.burst_t) == 0
    just_under = detect_events_bursts([0.0, 0.0159])
    assert len(just_under.event_t) == 1 and len(just_under.burst_t) == 1
    # Unsorted input and two neurons interleaved.
    pop = detect_population([1, 0, 1, 0], [0.010, 0.0, 0.0, 0.020])
    assert sorted(zip(pop.event_i, pop.event_t)) == [(0, 0.0), (0, 0.02), (1, 0.0)]
    assert list(pop.burst_i) == [1]
    with pytest.raises(MburstError):
        detect_population([0, 1], [0.1])


def test_burst_statistics_rates():
    # 10 neurons, each with one burst (onset 0.05 s) and one single spike (0.55 s) in [0, 1) s.
    i = np.repeat(np.arange(10), 3)
    t = np.tile([0.05, 0.055, 0.55], 10)
    st = burst_statistics(i, t, 10, 0.0, 1.0, 0.5)
    np.testing.assert_allclose(st.event_rate, [2.0, 2.0])   # 1 event per neuron per 0.5 s
    np.testing.assert_allclose(st.burst_rate, [2.0, 0.0])
    np.testing.assert_allclose(st.burst_prob, [1.0, 0.0])
    np.testing.assert_array_equal(st.spike_count, [20, 10])


def _forced_spikes(target: str):
    """A pyramidal cell (no bAP, no dendritic coupling) made to spike at TRAIN (+ one dt)."""
    use_target(target, tag="test_bursts")
    defaultclock.dt = 0.1 * ms
    params = PyramidalParams(c=0 * pA, g_s=0 * pA)
    cell = pyramidal_group(1, params=params)
    gen = SpikeGeneratorGroup(1, [0] * len(TRAIN), np.array(TRAIN) * ms)
    kick = Synapses(gen, cell, on_pre="v_s_post = theta_post + 10*mV")
    kick.connect()
    mon = BurstMonitor(cell)
    net = Network(cell, gen, kick, mon.objects)
    net.run(1 * second)
    return cell, mon


@pytest.mark.parametrize("target", ["numpy"])
def test_online_hand_made_train(target):
    cell, mon = _forced_spikes(target)
    spikes = np.asarray(mon.spikes.t / ms)
    np.testing.assert_allclose(spikes, np.array(TRAIN) + 0.1, atol=1e-6)  # the kick acts in the next step
    np.testing.assert_allclose(np.asarray(mon.events.t / ms), np.array(EVENTS) + 0.1, atol=1e-6)
    np.testing.assert_allclose(np.asarray(mon.bursts.t / ms), np.array(BURSTS) + 0.1, atol=1e-6)
    assert cell.n_events[0] == len(EVENTS) and cell.n_bursts[0] == len(BURSTS) and cell.n_spikes[0] == len(TRAIN)


def _noisy_population(target: str, n: int = 100, duration=1 * second):
    use_target(target, tag="test_bursts_pop")
    defaultclock.dt = 0.1 * ms
    brian2.seed(3)
    group = pyramidal_group(n)
    group.I_ext_s = np.linspace(0, 300, n) * pA
    group.I_ext_d = np.linspace(-100, 500, n)[::-1] * pA
    mon = BurstMonitor(group)
    Network(group, payeur_background(group, "pyramidal"), mon.objects).run(duration)
    return group, mon


def _assert_online_equals_offline(group, mon):
    off = mon.offline()
    on_e = sorted(zip(mon.events.i[:], np.round(np.asarray(mon.events.t / ms), 4)))
    off_e = sorted(zip(off.event_i, np.round(off.event_t * 1e3, 4)))
    on_b = sorted(zip(mon.bursts.i[:], np.round(np.asarray(mon.bursts.t / ms), 4)))
    off_b = sorted(zip(off.burst_i, np.round(off.burst_t * 1e3, 4)))
    assert len(off_b) > 20 and len(off_e) > len(off_b), "the population should both fire and burst"
    assert on_e == off_e
    assert on_b == off_b
    n = len(group)
    np.testing.assert_array_equal(group.n_events[:], np.bincount(off.event_i, minlength=n))
    np.testing.assert_array_equal(group.n_bursts[:], np.bincount(off.burst_i, minlength=n))
    np.testing.assert_array_equal(group.n_spikes[:], np.bincount(mon.spikes.i[:], minlength=n))


def test_online_equals_offline_noisy_population():
    group, mon = _noisy_population("numpy")
    _assert_online_equals_offline(group, mon)
    st = mon.stats(0.25)
    assert st.event_rate.shape == (4,) and np.all(st.burst_prob <= 1)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_online_equals_offline_compiled(target):
    cell, mon = _forced_spikes(target)
    np.testing.assert_allclose(np.asarray(mon.bursts.t / ms), np.array(BURSTS) + 0.1, atol=1e-6)
    group, mon = _noisy_population(target, n=400, duration=2 * second)
    _assert_online_equals_offline(group, mon)
    use_target("numpy")
