"""Test 1: Tsodyks-Markram efficacies equal the closed-form recursion; PPR < 1 (STD), > 1 (STF)."""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Network, SpikeGeneratorGroup, StateMonitor, defaultclock, ms, second  # noqa: E402

from neurons.device import use_target  # noqa: E402
from neurons.params import STD, STF  # noqa: E402
from neurons.pyramidal import pyramidal_group  # noqa: E402
from neurons.stp import paired_pulse_ratio, simulate_efficacies, tm_efficacies  # noqa: E402
from neurons.synapses import connect  # noqa: E402

RATES = (5, 20, 50)
N_SPIKES = 8


@pytest.mark.parametrize("stp", [STD, STF], ids=["STD", "STF"])
def test_efficacies_match_closed_form(stp):
    sim = simulate_efficacies(stp, RATES, N_SPIKES, target="numpy")
    for rate in RATES:
        times, eff = sim[rate]
        np.testing.assert_allclose(np.diff(times), 1.0 / rate, rtol=1e-9)
        np.testing.assert_allclose(eff, tm_efficacies(stp, 1.0 / rate, N_SPIKES), rtol=1e-6, atol=0)
    ppr = paired_pulse_ratio(sim[20][1])
    if stp is STD:
        assert ppr < 1, f"STD paired-pulse ratio at 20 Hz = {ppr:.3f}"
        assert sim[50][1][-1] < sim[5][1][-1], "depression must deepen with rate"
    else:
        assert ppr > 1, f"STF paired-pulse ratio at 20 Hz = {ppr:.3f}"
        assert sim[50][1][-1] > sim[5][1][-1], "facilitation must grow with rate"


def test_recursion_first_two_spikes_analytic():
    """The recursion against the explicit two-spike formula (written out independently)."""
    for p in (STD, STF):
        isi = 0.05
        e = tm_efficacies(p, isi, 2)
        x2 = 1 - p.U * np.exp(-isi / float(p.tau_D / second))
        u2 = p.U + p.f * (1 - p.U) * np.exp(-isi / float(p.tau_F / second))
        assert e[0] == pytest.approx(p.U, rel=1e-12)
        assert e[1] == pytest.approx(u2 * x2, rel=1e-12)


def test_conductance_jump_is_weight_times_efficacy():
    """The postsynaptic conductance jumps by w u x (weight in leak units of the dendrite, 24.3 nS)."""
    use_target("numpy", tag="test_stp")
    defaultclock.dt = 0.1 * ms
    pre = SpikeGeneratorGroup(1, [0, 0], [5, 25] * ms)
    post = pyramidal_group(1)
    syn = connect(pre, post, STD, target="dendrite", receptor="ampa", i=[0], j=[0], weight=0.5)
    mon = StateMonitor(post, "g_ampa_d", record=0, when="end")
    Network(pre, post, syn, mon).run(6 * ms)
    g = np.asarray(mon.g_ampa_d[0])
    gl_d = 170e-12 / 7e-3
    assert g.max() == pytest.approx(0.5 * gl_d * STD.U, rel=1e-9)
    assert g[0] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_efficacies_match_closed_form_compiled(target):
    for stp in (STD, STF):
        sim = simulate_efficacies(stp, RATES, N_SPIKES, target=target)
        for rate in RATES:
            np.testing.assert_allclose(sim[rate][1], tm_efficacies(stp, 1.0 / rate, N_SPIKES), rtol=1e-6, atol=0)
    use_target("numpy")
