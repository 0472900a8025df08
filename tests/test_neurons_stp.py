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


def _stp_network(shared: bool):
    """Pyramidal cells with background noise and four recurrent STP projections (one on the 'event'
    pathway), built with :func:`connect` (shared presynaptic state) or with per-synapse state written
    directly in Brian2; returns the spike times of every cell after 300 ms."""
    from brian2 import SpikeMonitor, Synapses
    from brian2 import seed as brian_seed

    from neurons.inputs import payeur_background
    from neurons.synapses import leak_conductance

    use_target("numpy", tag="test_stp_shared")
    defaultclock.dt = 0.1 * ms
    brian_seed(7)
    rng = np.random.default_rng(3)
    n = 60
    pyr = pyramidal_group(n, name="stp_pyr")
    pyr.I_ext_s = 250 * brian2.pA
    pyr.I_ext_d = 300 * brian2.pA
    objects = payeur_background(pyr, "pyramidal")
    for k, (stp, target, receptor, pathway, w) in enumerate(((STD, "soma", "ampa", "spike", 0.4),
                                                             (STF, "dendrite", "ampa", "event", 2.0),
                                                             (STF, "dendrite", "gaba", "spike", 0.5),
                                                             (STF, "soma", "gaba", "spike", 0.3))):
        pairs = np.argwhere((rng.random((n, n)) < 0.2) & ~np.eye(n, dtype=bool))
        if shared:
            objects.append(connect(pyr, pyr, stp, target, receptor, i=pairs[:, 0], j=pairs[:, 1], weight=w,
                                   pathway=pathway, name=f"stp_proj{k}"))
            continue
        var = f"g_{receptor}_{'s' if target == 'soma' else 'd'}"
        syn = Synapses(pyr, pyr, "w_syn : siemens\nx : 1\nu : 1\nt_stp : second", on_pre="\n".join([
            "x = 1 - (1 - x)*exp(-(t - t_stp)/tau_D)", "u = U_stp + (u - U_stp)*exp(-(t - t_stp)/tau_F)",
            f"{var}_post += w_syn*u*x", "x = x - u*x", "u = u + f_stp*(1 - u)", "t_stp = t"]),
            on_event={"pre": pathway}, name=f"stp_proj{k}",
            namespace={"tau_D": stp.tau_D, "tau_F": stp.tau_F, "U_stp": float(stp.U), "f_stp": float(stp.f)})
        syn.connect(i=pairs[:, 0], j=pairs[:, 1])
        syn.w_syn = w * leak_conductance(pyr, target)
        syn.x, syn.u = 1.0, float(stp.U)
        objects.append(syn)
    mon = SpikeMonitor(pyr, name="stp_spikes")
    net = Network(pyr, *objects, mon)
    if shared:  # the two STF projections on the 'spike' pathway share one state
        assert sorted(o.name for o in net.sorted_objects if o.name.endswith("_stp")) == [
            "stp_proj0_stp", "stp_proj1_stp", "stp_proj2_stp"]
    net.run(300 * ms, namespace={})
    return np.asarray(mon.i[:]), np.asarray(mon.t[:] / ms)


def test_shared_presynaptic_state_equals_per_synapse_state():
    """Keeping (x, u) once per presynaptic cell is exact: the spike trains of a recurrent network equal
    those of the same network with per-synapse STP state, spike for spike."""
    i_shared, t_shared = _stp_network(shared=True)
    i_ref, t_ref = _stp_network(shared=False)
    assert len(t_ref) > 100, f"the test network fired only {len(t_ref)} spikes"
    np.testing.assert_array_equal(i_shared, i_ref)
    np.testing.assert_array_equal(t_shared, t_ref)


def test_stp_projection_refuses_per_synapse_delays():
    from neurons.common import MburstError

    use_target("numpy", tag="test_stp")
    cells = pyramidal_group(3)
    with pytest.raises(MburstError, match="scalar delay"):
        connect(cells, cells, STF, "dendrite", i=[0, 1], j=[1, 2], weight=0.1, delay=[1, 2] * ms)
