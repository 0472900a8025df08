"""Test 1: Tsodyks-Markram efficacies equal the closed-form recursion; PPR < 1 (STD), > 1 (STF)."""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Hz, Network, SpikeGeneratorGroup, StateMonitor, defaultclock, ms, second  # noqa: E402

from neurons.device import use_target  # noqa: E402
from neurons.params import STD, STF, STPParams  # noqa: E402
from neurons.pyramidal import pyramidal_group  # noqa: E402
from neurons.synapses import connect  # noqa: E402

RATES = (5, 20, 50)
N_SPIKES = 8


def tm_recursion(p: STPParams, isi_s: float, n: int) -> np.ndarray:
    """u_n x_n of a regular train, from the exact solution between spikes (reference.md section 3)."""
    tau_d, tau_f = float(p.tau_D / second), float(p.tau_F / second)
    x, u, out = 1.0, p.U, []
    for _ in range(n):
        out.append(u * x)
        x, u = x - u * x, u + p.f * (1 - u)
        x = 1 - (1 - x) * np.exp(-isi_s / tau_d)
        u = p.U + (u - p.U) * np.exp(-isi_s / tau_f)
    return np.array(out)


def simulated_efficacies(stp: STPParams, target: str) -> dict:
    """Drive one synapse per rate with a regular train; read u x at each spike."""
    use_target(target, tag="test_stp")
    defaultclock.dt = 0.1 * ms
    idx, times = [], []
    for k, rate in enumerate(RATES):
        isi = 1000.0 / rate
        idx += [k] * N_SPIKES
        times += [10.0 + isi * m for m in range(N_SPIKES)]
    pre = SpikeGeneratorGroup(len(RATES), np.array(idx), np.array(times) * ms)
    post = pyramidal_group(1)
    syn = connect(pre, post, stp, target="dendrite", i=range(len(RATES)), j=[0] * len(RATES),
                  weight=0.1, record_efficacy=True)
    mon = StateMonitor(syn, "eff", record=True, when="end")
    net = Network(pre, post, syn, mon)
    net.run((max(times) + 1.0) * ms)
    out = {}
    steps = np.round(np.asarray(mon.t / ms) / 0.1).astype(int)
    for k, rate in enumerate(RATES):
        spike_steps = np.round(np.array([t for i, t in zip(idx, times) if i == k]) / 0.1).astype(int)
        out[rate] = np.asarray(mon.eff[k])[np.searchsorted(steps, spike_steps)]
    return out


@pytest.mark.parametrize("stp", [STD, STF], ids=["STD", "STF"])
def test_efficacies_match_closed_form(stp):
    sim = simulated_efficacies(stp, "numpy")
    for rate in RATES:
        expected = tm_recursion(stp, 1.0 / rate, N_SPIKES)
        np.testing.assert_allclose(sim[rate], expected, rtol=1e-6, atol=0)
    ppr = sim[20][1] / sim[20][0]
    if stp is STD:
        assert ppr < 1, f"STD paired-pulse ratio at 20 Hz = {ppr:.3f}"
    else:
        assert ppr > 1, f"STF paired-pulse ratio at 20 Hz = {ppr:.3f}"


def test_recursion_first_two_spikes_analytic():
    """The helper itself: eff_1 = U, eff_2 from the explicit two-spike formula."""
    for p in (STD, STF):
        isi = 0.05
        e = tm_recursion(p, isi, 2)
        x2 = 1 - p.U * np.exp(-isi / float(p.tau_D / second))
        u2 = p.U + p.f * (1 - p.U) * np.exp(-isi / float(p.tau_F / second))
        assert e[0] == pytest.approx(p.U, rel=1e-12)
        assert e[1] == pytest.approx(u2 * x2, rel=1e-12)


def test_conductance_jump_is_weight_times_efficacy():
    """The postsynaptic conductance jumps by w u x (in leak units of the dendrite, 24.3 nS)."""
    use_target("numpy", tag="test_stp")
    defaultclock.dt = 0.1 * ms
    pre = SpikeGeneratorGroup(1, [0, 0], [5, 25] * ms)
    post = pyramidal_group(1)
    syn = connect(pre, post, STD, target="dendrite", receptor="ampa", i=[0], j=[0], weight=0.5)
    mon = StateMonitor(post, "g_ampa_d", record=0, when="end")
    Network(pre, post, syn, mon).run(6 * ms)
    g = np.asarray(mon.g_ampa_d[0])
    gl_d = float(170e-12 / 7e-3)
    assert g.max() == pytest.approx(0.5 * gl_d * STD.U, rel=1e-9)
    assert g[0] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_efficacies_match_closed_form_compiled(target):
    for stp in (STD, STF):
        sim = simulated_efficacies(stp, target)
        for rate in RATES:
            np.testing.assert_allclose(sim[rate], tm_recursion(stp, 1.0 / rate, N_SPIKES), rtol=1e-6, atol=0)
    use_target("numpy")
