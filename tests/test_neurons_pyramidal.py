"""The pyramidal cell's pieces against closed forms: leak/steady state, bAP box, dynamic and fixed thresholds."""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Network, SpikeGeneratorGroup, SpikeMonitor, StateMonitor, Synapses, defaultclock, mV, ms, pA, second  # noqa: E402

from neurons.device import use_target  # noqa: E402
from neurons.params import PyramidalParams  # noqa: E402
from neurons.pyramidal import pyramidal_group  # noqa: E402


@pytest.fixture(autouse=True)
def numpy_target():
    use_target("numpy", tag="test_pyramidal")
    defaultclock.dt = 0.1 * ms


def test_subthreshold_steady_state_and_time_constant():
    """Without dendritic drive: v_s(t) = E_L + (I/gL_s)(1 - exp(-t/tau_s)) (forward Euler to 1e-3)."""
    p = PyramidalParams(g_s=0 * pA)
    cell = pyramidal_group(1, p)
    cell.I_ext_s = 300 * pA
    mon = StateMonitor(cell, "v_s", record=0)
    Network(cell, mon).run(100 * ms)
    t = np.asarray(mon.t / second)
    expected = -0.070 + (300e-12 / float(p.gL_s / brian2.siemens)) * (1 - np.exp(-t / 0.016))
    np.testing.assert_allclose(np.asarray(mon.v_s[0] / brian2.volt), expected, atol=2e-5)


def _kicked_cell(params, kick_times_ms, record=("v_d", "theta")):
    cell = pyramidal_group(1, params)
    gen = SpikeGeneratorGroup(1, [0] * len(kick_times_ms), np.array(kick_times_ms) * ms)
    kick = Synapses(gen, cell, on_pre="v_s_post = theta_post + 10*mV")
    kick.connect()
    state = StateMonitor(cell, list(record) + ["K"], record=0)
    spikes = SpikeMonitor(cell)
    Network(cell, gen, kick, state, spikes).run(60 * ms)
    return state, spikes


def test_bap_box_lasts_2_ms_and_threshold_jumps():
    p = PyramidalParams(g_s=0 * pA)          # no dendrite-to-soma drive: exactly one spike per kick
    state, spikes = _kicked_cell(p, [10.0])
    assert spikes.num_spikes == 1
    K = np.asarray(state.K[0])
    assert K.sum() == 20, f"bAP box active for {K.sum()} steps of 0.1 ms, expected 20 (2 ms)"
    theta = np.asarray(state.theta[0] / mV)
    t = np.asarray(state.t / ms)
    after = t > 10.15
    # theta jumps by 2 mV at the spike (10.1 ms; recorded from the next step, 10.2 ms, on)
    # and relaxes to -50 mV with tau 27 ms (forward Euler).
    expected = -50 + 2 * np.exp(-(t[after] - 10.2) / 27.0)
    np.testing.assert_allclose(theta[after], expected, atol=2e-3)


def test_fixed_threshold_refractoriness():
    """Fixed threshold: theta stays at -50 mV; a constant current gives ISI = t_ref + tau_s ln(I/(I - gL(theta - E_L)))."""
    p = PyramidalParams(threshold_mode="fixed", t_ref=3 * ms, g_s=0 * pA, b_w=0 * pA)  # no adaptation
    cell = pyramidal_group(1, p)
    cell.I_ext_s = 3000 * pA
    spikes = SpikeMonitor(cell)
    theta = StateMonitor(cell, "theta", record=0)
    Network(cell, spikes, theta).run(100 * ms)
    isi = np.diff(np.asarray(spikes.t / ms))
    gl = float(p.gL_s / brian2.siemens)
    expected = 3.0 + 16.0 * np.log(3000e-12 / (3000e-12 - gl * 0.020))
    assert len(isi) > 10
    np.testing.assert_allclose(isi, expected, atol=0.25)   # spikes fall on the 0.1 ms grid
    assert isi.min() >= 3.0
    np.testing.assert_allclose(np.asarray(theta.theta[0] / mV), -50.0)


def test_dendritic_plateau_makes_a_burst():
    """A somatic spike's bAP plus dendritic current triggers a plateau and a burst; without it, a single spike."""
    counts = []
    for I_d in (0 * pA, 500 * pA):
        cell = pyramidal_group(1)
        cell.I_ext_d = I_d
        gen = SpikeGeneratorGroup(1, [0], [20] * ms)
        kick = Synapses(gen, cell, on_pre="v_s_post = theta_post + 10*mV")
        kick.connect()
        state = StateMonitor(cell, "v_d", record=0)
        Network(cell, gen, kick, state).run(60 * ms)
        counts.append((int(cell.n_spikes[0]), int(cell.n_bursts[0]), float(np.max(state.v_d[0] / mV))))
    (n0, b0, vmax0), (n1, b1, vmax1) = counts
    assert n0 == 1 and b0 == 0, counts
    assert n1 >= 2 and b1 == 1, counts
    assert vmax1 > -38 > vmax0, counts     # the plateau crosses the nonlinearity's midpoint E_d


def test_extra_equations_replace_a_parameter_and_substitutions_rename():
    """The ``extra`` hook turns the parameter I_ext_s into a subexpression, ``substitutions`` renames I_ext_d:
    both cells follow the plain cell given the same currents."""
    from brian2 import Equations
    from brian2.equations.equations import PARAMETER, SUBEXPRESSION

    from neurons.pyramidal import pyramidal_equations

    p = PyramidalParams()
    eqs = pyramidal_equations(p, extra=Equations("I_ext_s = 2*I_half : amp\nI_half : amp"),
                              substitutions={"I_ext_d": "I_apical"})
    assert eqs["I_ext_s"].type == SUBEXPRESSION and eqs["I_half"].type == PARAMETER
    assert "I_ext_d" not in eqs and eqs["I_apical"].type == PARAMETER
    assert "I_apical" in eqs["v_d"].identifiers
    plain = pyramidal_group(1, p, name="plain")
    plain.I_ext_s, plain.I_ext_d = 600 * pA, 200 * pA
    ext = pyramidal_group(1, p, name="ext", extra="I_ext_s = 2*I_half : amp\nI_half : amp",
                          substitutions={"I_ext_d": "I_apical"})
    ext.I_half, ext.I_apical = 300 * pA, 200 * pA
    mons = [StateMonitor(g, ["v_s", "v_d"], record=0) for g in (plain, ext)]
    Network(plain, ext, *mons).run(60 * ms)
    assert int(plain.n_spikes[0]) >= 1  # the comparison covers spikes and resets
    np.testing.assert_array_equal(mons[0].v_s[0], mons[1].v_s[0])
    np.testing.assert_array_equal(mons[0].v_d[0], mons[1].v_d[0])
    assert int(ext.n_spikes[0]) == int(plain.n_spikes[0])


def test_extra_equations_cannot_redefine_the_dynamics():
    from neurons.common import MburstError
    from neurons.pyramidal import pyramidal_equations

    with pytest.raises(MburstError, match="redefine v_s"):
        pyramidal_equations(PyramidalParams(), extra="dv_s/dt = -v_s/(10*ms) : volt")
    with pytest.raises(MburstError, match="redefine f_d"):
        pyramidal_group(1, extra="f_d = 0.5 : 1")
