"""Test 7: bad parameters raise one-line MburstErrors naming the parameter, before any Brian2 object exists."""
from __future__ import annotations

import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Hz, mV, ms, nS, pA, second  # noqa: E402

import neurons.interneurons as interneurons  # noqa: E402
import neurons.pyramidal as pyramidal  # noqa: E402
import neurons.synapses as synapses  # noqa: E402
from neurons.common import MburstError  # noqa: E402
from neurons.params import PV_PARAMS, STD, AdExParams, PyramidalParams, STPParams, SynapseParams  # noqa: E402


@pytest.fixture
def no_brian_objects(monkeypatch):
    """Fail the test if a NeuronGroup or Synapses would be created (i.e. before any compile)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a Brian2 object was created before the parameters were checked")

    monkeypatch.setattr(pyramidal, "NeuronGroup", forbidden)
    monkeypatch.setattr(interneurons, "NeuronGroup", forbidden)
    monkeypatch.setattr(synapses, "Synapses", forbidden)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(tau_s=-16 * ms), "PyramidalParams.tau_s"),
    (dict(tau_d=0 * ms), "PyramidalParams.tau_d"),
    (dict(tau_wd=-30 * ms), "PyramidalParams.tau_wd"),
    (dict(C_s=370), "PyramidalParams.C_s"),          # missing unit
    (dict(g_s=1300 * mV), "PyramidalParams.g_s"),    # wrong unit
    (dict(threshold_mode="adaptive"), "threshold_mode"),
    (dict(D=0 * mV), "PyramidalParams.D"),
    (dict(theta_0=-80 * mV), "theta_0"),
])
def test_bad_pyramidal_params(no_brian_objects, kwargs, needle):
    with pytest.raises(MburstError, match=needle) as err:
        pyramidal.pyramidal_group(10, PyramidalParams(**kwargs))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("field, value", [("tau_m", -10 * ms), ("g_L", 10), ("tau_w", 0 * second),
                                          ("Delta_T", -2 * mV), ("b", -1 * pA)])
def test_bad_interneuron_params(no_brian_objects, field, value):
    import dataclasses

    bad = dataclasses.replace(PV_PARAMS, **{field: value})
    with pytest.raises(MburstError, match=field):
        interneurons.pv_group(5, bad)


@pytest.mark.parametrize("stp, needle", [
    (STPParams("x", tau_D=-20 * ms, tau_F=1 * second, U=0.5, f=0.1), "tau_D"),
    (STPParams("x", tau_D=20 * ms, tau_F=1000, U=0.5, f=0.1), "tau_F"),
    (STPParams("x", tau_D=20 * ms, tau_F=1 * second, U=1.5, f=0.1), "U"),
    (STPParams("x", tau_D=20 * ms, tau_F=1 * second, U=0.5, f=-0.1), "f"),
])
def test_bad_stp_params(stp, needle):
    pre = pyramidal.pyramidal_group(2)
    with pytest.raises(MburstError, match=needle):
        synapses.connect(pre, pre, stp, weight=0.1)


def test_bad_connect_arguments():
    pyr = pyramidal.pyramidal_group(3)
    pv = interneurons.pv_group(3)
    cases = [
        (dict(pre=pyr, post=pyr, target="axon", weight=0.1), "target='axon'"),
        (dict(pre=pyr, post=pv, target="dendrite", weight=0.1), "point neuron"),
        (dict(pre=pyr, post=pyr, receptor="nmda", weight=0.1), "receptor='nmda'"),
        (dict(pre=pyr, post=pyr, pathway="doublet", weight=0.1), "pathway='doublet'"),
        (dict(pre=pv, post=pyr, pathway="burst", weight=0.1), "no online 'burst'"),
        (dict(pre=pyr, post=pyr, weight=-1.0), "weight"),
        (dict(pre=pyr, post=pyr, weight=3 * mV), "weight"),
        (dict(pre=pyr, post=pyr, weight=0.1, p=1.5), "p=1.5"),
        (dict(pre=pyr, post=pyr, stp="STD", weight=0.1), "stp="),
    ]
    for kwargs, needle in cases:
        with pytest.raises(MburstError, match=needle):
            synapses.connect(**kwargs)


def test_other_param_objects():
    with pytest.raises(MburstError, match="tau_gaba"):
        SynapseParams(tau_gaba=-10 * ms).validate()
    with pytest.raises(MburstError, match="n=0"):
        pyramidal.pyramidal_group(0)
    with pytest.raises(MburstError, match="v_reset"):
        AdExParams(name="bad", g_L=10 * nS, tau_m=10 * ms, Delta_T=2 * mV, a=0 * nS, b=0 * pA, tau_w=100 * ms,
                   v_reset=0 * mV, t_ref=1 * ms, rheobase=200 * pA).validate()
    from neurons.inputs import inject_current, poisson_background

    pyr = pyramidal.pyramidal_group(4)
    with pytest.raises(MburstError, match="rate"):
        poisson_background(pyr, rate=-5 * Hz)
    with pytest.raises(MburstError, match="no unit"):
        inject_current(pyr, 100.0)
    with pytest.raises(MburstError, match="shape"):
        inject_current(pyr, [1, 2] * pA, target="dendrite")
    inject_current(pyr, [1, 2, 3, 4] * pA, target="dendrite")
    assert list(pyr.I_ext_d[:] / pA) == pytest.approx([1, 2, 3, 4])


def test_valid_defaults_pass():
    for p in (PyramidalParams(), PV_PARAMS, STD, SynapseParams()):
        assert p.validate() is p
    assert float(PyramidalParams().gL_s / nS) == pytest.approx(23.125)
    assert float(PyramidalParams().gL_d / nS) == pytest.approx(24.2857, rel=1e-4)
