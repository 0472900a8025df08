"""Event sources and the simplified XOR burst neuron (circuits.burst_sources) against their defining rules."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("brian2")
from brian2 import EventMonitor, Hz, Network, SpikeMonitor, defaultclock, mV, ms, pA, second  # noqa: E402

from circuits.burst_sources import SimpleBurstParams, event_source_group, simple_burst_group  # noqa: E402
from neurons.common import MburstError  # noqa: E402
from neurons.device import use_target  # noqa: E402


def test_event_source_rates_and_burst_probability():
    use_target("numpy")
    defaultclock.dt = 0.5 * ms
    g = event_source_group(200, rate=10 * Hz, p_burst=0.3, name="src_test")
    ev = EventMonitor(g, "event", name="src_ev")
    bu = EventMonitor(g, "burst", name="src_bu")
    Network(g, ev, bu).run(5 * second, namespace={})
    n_ev, n_bu = ev.num_events, bu.num_events
    rate = n_ev / (200 * 5.0)
    # Poisson counts: 10,000 expected events -> 1% s.d.; allow 4 s.d.
    assert rate == pytest.approx(10.0, rel=0.04)
    p = n_bu / n_ev
    assert p == pytest.approx(0.3, abs=4 * math.sqrt(0.3 * 0.7 / n_ev) + 0.01)
    # each burst spike follows its event by 5-15 ms, so no event is closer than the dead time
    t = np.asarray(ev.t[:] / second)
    i = np.asarray(ev.i[:])
    order = np.lexsort((t, i))
    gaps = np.diff(t[order])[np.diff(i[order]) == 0]
    assert gaps.min() >= 0.020 - 1e-9


def test_simple_neuron_bursts_with_sigmoid_probability():
    """With the dendrite clamped by current at v_d, P(burst | event) = sigma((v_d + 57 mV)/6 mV)."""
    use_target("numpy")
    defaultclock.dt = 0.2 * ms
    params = SimpleBurstParams()
    g = simple_burst_group(300, params, name="xor_cell_test")
    g.I_ext_s = 700 * pA  # tonic firing
    v_target = np.where(np.arange(300) < 150, -63.0, -51.0)  # two dendritic levels, in mV
    g.I_ext_d = (v_target - (-70.0)) * float(params.gL_d / (pA / mV)) * pA
    g.v_d = v_target * mV
    spikes = SpikeMonitor(g, name="xor_cell_spk")
    bursts = EventMonitor(g, "burst", name="xor_cell_bu")
    Network(g, spikes, bursts).run(2 * second, namespace={})
    si, bi = np.asarray(spikes.i[:]), np.asarray(bursts.i[:])
    for half, v in ((slice(0, 150), -63.0), (slice(150, 300), -51.0)):
        idx = np.arange(300)[half]
        n_ev = np.isin(si, idx).sum()
        n_b = np.isin(bi, idx).sum()
        expected = 1 / (1 + math.exp(-(v + 57.0) / 6.0))
        assert n_ev > 1000
        assert n_b / n_ev == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / n_ev) + 0.01)
    assert np.all(np.asarray(g.n_events[:]) == np.bincount(si, minlength=300))


@pytest.mark.parametrize("call, match", [
    (lambda: event_source_group(0), "n="),
    (lambda: event_source_group(3, p_burst=1.5), "p_burst"),
    (lambda: event_source_group(3, rate=80 * Hz), "impossible"),
    (lambda: simple_burst_group(-1), "n="),
    (lambda: simple_burst_group(2, SimpleBurstParams(tau_s=-1 * ms)), "tau_s"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(MburstError, match=match):
        call()
