"""Poisson background: PoissonBackground draws Binomial(N, rate*dt) increments per step, all inputs of a group
in one code object, single inputs as Bernoulli draws recycled from one uniform per neuron and step
(neurons/inputs.py)."""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Hz, Network, NeuronGroup, defaultclock, ms, mV, nS, pA  # noqa: E402

from neurons.common import MburstError  # noqa: E402
from neurons.device import use_target  # noqa: E402
from neurons.inputs import PoissonBackground, payeur_background, poisson_background  # noqa: E402
from neurons.interneurons import pv_group  # noqa: E402
from neurons.params import BackgroundParams, PyramidalParams  # noqa: E402
from neurons.pyramidal import pyramidal_group  # noqa: E402


@pytest.fixture
def numpy_target():
    use_target("numpy")
    defaultclock.dt = 0.1 * ms


def test_counts_are_binomial_and_independent(numpy_target):
    """Per neuron, the summed increments / weight over T steps are Binomial(T N, rate dt):
    mean and variance within 5 standard errors; two terms are uncorrelated."""
    n, steps = 4000, 1000
    brian2.seed(3)
    g = NeuronGroup(n, "a : siemens\nb : siemens\nc : siemens")
    bg = PoissonBackground(g, [("a", 1, 500 * Hz, 1.5 * nS), ("b", 3, 200 * Hz, 2 * nS), ("c", 1, 500 * Hz, 1 * nS)])
    Network(g, bg).run(steps * 0.1 * ms)
    for values, w, n_inputs, rate in ((g.a[:] / nS, 1.5, 1, 500.0), (g.b[:] / nS, 2.0, 3, 200.0),
                                      (g.c[:] / nS, 1.0, 1, 500.0)):
        k = values / w
        np.testing.assert_allclose(k, np.round(k), atol=1e-9)  # whole numbers of input spikes
        trials, p = steps * n_inputs, rate * 1e-4
        mean, var = trials * p, trials * p * (1 - p)
        assert abs(k.mean() - mean) < 5 * np.sqrt(var / n), (k.mean(), mean)
        assert abs(k.var(ddof=1) - var) < 5 * var * np.sqrt(2 / (n - 1)), (k.var(ddof=1), var)
    for x, y in ((g.a, g.b), (g.a, g.c), (g.b, g.c)):  # a and c share each step's recycled uniform
        assert abs(np.corrcoef(x[:], y[:])[0, 1]) < 5 / np.sqrt(n)


def test_recycled_uniform_gives_independent_bernoullis(numpy_target):
    """One step on many neurons: the joint law of four single inputs (drawn from one recycled
    uniform per neuron) is the product of Bernoulli(p_k) laws (chi-square over the 16 outcomes)."""
    from scipy.stats import chi2

    n = 200_000
    rates = (3000.0, 5000.0, 2000.0, 4000.0)  # p = rate*dt = 0.3, 0.5, 0.2, 0.4: every outcome well populated
    names = "abcd"
    g = NeuronGroup(n, "\n".join(f"{v} : 1" for v in names))
    brian2.seed(11)
    bg = PoissonBackground(g, [(v, 1, r * Hz, 1.0) for v, r in zip(names, rates)])
    Network(g, bg).run(0.1 * ms)
    bits = np.stack([np.asarray(getattr(g, v)[:]) for v in names]).astype(int)
    assert set(np.unique(bits)) == {0, 1}
    outcome = bits[0] + 2 * bits[1] + 4 * bits[2] + 8 * bits[3]
    observed = np.bincount(outcome, minlength=16)
    p = np.array(rates) * 1e-4
    expected = np.array([n * np.prod([p[k] if (o >> k) & 1 else 1 - p[k] for k in range(4)]) for o in range(16)])
    stat = float(np.sum((observed - expected) ** 2 / expected))
    assert chi2.sf(stat, df=15) > 1e-4, (stat, observed, expected.round())


def test_payeur_background_is_one_object_per_group(numpy_target):
    pyr = pyramidal_group(5)
    objects = payeur_background(pyr, "pyramidal")
    assert len(objects) == 1 and isinstance(objects[0], PoissonBackground)
    params, cell = BackgroundParams(), PyramidalParams()
    expected = {"g_ampa_s": params.pyr_soma[0] * cell.gL_s, "g_gaba_s": params.pyr_soma[1] * cell.gL_s,
                "g_ampa_d": params.pyr_dendrite[0] * cell.gL_d, "g_gaba_d": params.pyr_dendrite[1] * cell.gL_d}
    terms = {var: (n_inputs, rate, w) for var, n_inputs, rate, w in objects[0].terms}
    assert set(terms) == set(expected)
    for var, w in expected.items():
        assert terms[var][0] == 1 and float(terms[var][1] / Hz) == pytest.approx(500.0)
        assert float(terms[var][2] / nS) == pytest.approx(float(w / nS), rel=1e-12)
    assert len(payeur_background(pv_group(3), "pv")[0].terms) == 2
    assert poisson_background(pv_group(3), w_exc=0.0, w_inh=0.0) == []
    assert poisson_background(pv_group(3), rate=0 * Hz) == []


def test_background_drives_a_pyramidal_population(numpy_target):
    """With the Payeur background alone, the conductances settle at rate * w * tau (shot-noise mean)."""
    pyr = pyramidal_group(2000)
    pyr.v_s = -70 * mV
    Network(pyr, payeur_background(pyr, "pyramidal")).run(60 * ms)
    cell = PyramidalParams()
    expected = 500.0 * 0.35 * float(cell.gL_s / nS) * 5e-3  # rate * weight * tau_ampa, in nS
    measured = float(np.mean(pyr.g_ampa_s[:] / nS))
    assert measured == pytest.approx(expected, rel=0.05)  # 5 standard errors of the mean over 2000 cells


def test_bad_background_arguments(numpy_target):
    g = NeuronGroup(2, "a : siemens\nI : amp")
    with pytest.raises(MburstError, match="no variable 'x'"):
        PoissonBackground(g, [("x", 1, 500 * Hz, 1 * nS)])
    with pytest.raises(MburstError, match="unit"):
        PoissonBackground(g, [("I", 1, 500 * Hz, 1 * nS)])
    PoissonBackground(g, [("I", 1, 500 * Hz, 1 * pA)])
    with pytest.raises(MburstError, match="no inputs"):
        PoissonBackground(g, [])
    with pytest.raises(MburstError, match="rate"):
        PoissonBackground(g, [("a", 1, 20 * brian2.kHz, 1 * nS)])  # 2 spikes per 0.1 ms step: not Bernoulli
    with pytest.raises(MburstError, match="n_inputs"):
        poisson_background(pv_group(2), n_inputs=0)
