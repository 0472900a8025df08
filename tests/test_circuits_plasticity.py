"""Burst-dependent plasticity (circuits.plasticity): exact single-synapse updates and the dW-vs-P law."""
from __future__ import annotations

import math

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
from brian2 import Hz, NeuronGroup, Network, TimedArray, defaultclock, ms, second  # noqa: E402

from circuits.plasticity import BurstPlasticityParams, burst_plastic_synapses, plasticity_curve  # noqa: E402
from neurons.common import MburstError  # noqa: E402
from neurons.device import use_target  # noqa: E402


def _scripted_group(name, event_steps, burst_steps, n_steps):
    """One unit whose 'event'/'burst' fire at the given time steps (via TimedArrays)."""
    ev = np.zeros(n_steps)
    ev[list(event_steps)] = 1
    bu = np.zeros(n_steps)
    bu[list(burst_steps)] = 1
    g = NeuronGroup(1, "", threshold="ev_in(t) > 0.5", events={"event": "ev_in(t) > 0.5", "burst": "bu_in(t) > 0.5"},
                    namespace={"ev_in": TimedArray(ev, dt=defaultclock.dt), "bu_in": TimedArray(bu, dt=defaultclock.dt)},
                    name=name)
    return g


def _replay(pre_t, post_ev_t, post_b_t, p: BurstPlasticityParams, w0):
    """The rule applied by hand, with exact exponential decays between events (reference implementation)."""
    tau_pre, tau_avg = float(p.tau_pre / second), float(p.tau_avg / second)
    items = sorted([(t, 0) for t in pre_t] + [(t, 1) for t in post_ev_t] + [(t, 2) for t in post_b_t])
    w, etr, E, B, last = w0, 0.0, float(p.e0 / Hz), p.p0 * float(p.e0 / Hz), 0.0
    for t, kind in items:
        etr *= math.exp(-(t - last) / tau_pre)
        E *= math.exp(-(t - last) / tau_avg)
        B *= math.exp(-(t - last) / tau_avg)
        last = t
        if kind == 0:
            etr += 1
        elif kind == 1:
            w = min(max(w - p.eta * (B / (E + 1e-9)) * etr, p.w_min), p.w_max)
            E += 1 / tau_avg
        else:
            w = min(max(w + p.eta * etr, p.w_min), p.w_max)
            B += 1 / tau_avg
    return w


def test_single_synapse_matches_exact_replay():
    use_target("numpy")
    defaultclock.dt = 0.5 * ms
    n_steps = 4000
    pre_steps = [20, 180, 300, 304, 800, 1400, 1460, 2400]
    post_ev = [200, 600, 820, 1800, 3000]
    post_b = [212, 836, 3016]  # second spikes of bursting events
    pre = _scripted_group("scripted_pre", pre_steps, [], n_steps)
    post = _scripted_group("scripted_post", post_ev, post_b, n_steps)
    params = BurstPlasticityParams(eta=0.05, tau_avg=1 * second, e0=4 * Hz, p0=0.3)
    syn = burst_plastic_synapses(pre, post, params, i=[0], j=[0], w_init=0.5, name="probe")
    Network(pre, post, syn).run(n_steps * defaultclock.dt, namespace={})
    dt = float(defaultclock.dt / second)
    # Brian2 tests 't >= step*dt' on the grid: the event of step k happens at t = k*dt.
    expected = _replay([k * dt for k in pre_steps], [k * dt for k in post_ev], [k * dt for k in post_b], params, 0.5)
    assert float(syn.w[0]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert abs(float(syn.w[0]) - 0.5) > 1e-3  # the protocol does change the weight


def test_weight_change_follows_P_minus_Pbar():
    """Potentiation above Pbar, depression below, ~0 at Pbar; corr with the rate prediction >= 0.95."""
    p_values = (0.0, 0.1, 0.2, 0.3, 0.45, 0.6)
    r = plasticity_curve(p_values, pbar0=0.2, duration=4 * second, n_post_per_level=10, n_pre=30, seed=1,
                         dt=0.5 * ms)
    dw = r["dw_mean"]
    assert r["corr"] >= 0.95, r
    assert np.all(dw[np.array(p_values) <= 0.1] < 0)
    assert np.all(dw[np.array(p_values) >= 0.3] > 0)
    span = dw.max() - dw.min()
    assert abs(dw[2]) < 0.2 * span  # P = Pbar: no net change
    assert r["slope"] == pytest.approx(1.0, abs=0.3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=-1e-3), "eta"),
    (dict(p0=1.5), "p0"),
    (dict(tau_pre=-5 * ms), "tau_pre"),
    (dict(w_min=1.0, w_max=0.0), "w_min < w_max"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(MburstError, match=match):
        BurstPlasticityParams(**kwargs).validate()


def test_bad_connection_probability_raises_before_building():
    use_target("numpy")
    from circuits.burst_sources import event_source_group

    a = event_source_group(2, name="bad_p_pre")
    b = event_source_group(2, name="bad_p_post")
    with pytest.raises(MburstError, match="p="):
        burst_plastic_synapses(a, b, p=1.5)
    with pytest.raises(MburstError, match="n="):
        event_source_group(0)


def test_simulate_plasticity_command_writes_outputs(tmp_path):
    import json

    from experiments.cli import main

    out = tmp_path / "run"
    rc = main(["simulate", "plasticity", "--out", str(out), "--duration", "1", "--levels", "3",
               "--post-per-level", "3", "--n-pre", "4", "--seed", "2"])
    assert rc == 0
    for name in ("config.json", "metrics.json", "dw_vs_p.png", "dw_vs_p.md", "dw_vs_p.csv"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["dw_mean"]) == 3 and np.isfinite(metrics["corr"])


@pytest.mark.parametrize("argv", [
    ["simulate", "plasticity", "--eta", "-1"],
    ["simulate", "propagation", "--n-pyr", "0"],
    ["simulate", "propagation", "--p", "1.5"],
    ["simulate", "xor", "--n", "0"],
])
def test_simulate_commands_reject_bad_configuration(tmp_path, argv, capsys):
    from experiments.cli import main

    assert main([*argv, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]
