"""The two networks of ``bench/neuron_sim.py`` and their event counts.

The baseline: the same network written directly in Brian2, without any mburst code
(:func:`hand_written_network`); mburst's: :func:`circuits.reference_network.reference_network`
(:func:`framework_network`). 4000 pyramidal + 1000 PV + 1000 SOM cells at ``scale`` 1, p = 0.05.
"""
from __future__ import annotations

N_PYR, N_PV, N_SOM, P_CONN = 4000, 1000, 1000, 0.05

# ---------------------------------------------------------------------------------------------
# The baseline: the same network written directly in Brian2, without any mburst code.
# ---------------------------------------------------------------------------------------------
HAND_PYR = """
dv_s/dt = (-gLs*(v_s - EL) + 1300*pA/(1 + exp(-(v_d + 38*mV)/(6*mV))) + w_s
           + g_ampa_s*(0*mV - v_s) + g_gaba_s*(-80*mV - v_s)) / (370*pF) : volt
dv_d/dt = (-gLd*(v_d - EL) + 1200*pA/(1 + exp(-(v_d + 38*mV)/(6*mV))) + w_d
           + 2600*pA*int(t - t_spike < 2.05*ms) + g_ampa_d*(0*mV - v_d) + g_gaba_d*(-80*mV - v_d)) / (170*pF) : volt
dw_s/dt = -w_s/(100*ms) : amp
dw_d/dt = (-w_d - 13*nS*(v_d - EL))/(30*ms) : amp
dtheta/dt = (-50*mV - theta)/(27*ms) : volt
dg_ampa_s/dt = -g_ampa_s/(5*ms) : siemens
dg_gaba_s/dt = -g_gaba_s/(10*ms) : siemens
dg_ampa_d/dt = -g_ampa_d/(5*ms) : siemens
dg_gaba_d/dt = -g_gaba_d/(10*ms) : siemens
t_spike : second
"""
HAND_ADEX = """
dv/dt = (-gL*(v - EL) + gL*DT*exp((v - VT)/DT) - w + g_ampa*(0*mV - v) + g_gaba*(-80*mV - v)) / C : volt (unless refractory)
dw/dt = (a*(v - EL) - w)/tauw : amp
dg_ampa/dt = -g_ampa/(5*ms) : siemens
dg_gaba/dt = -g_gaba/(10*ms) : siemens
"""
HAND_STP = """
x = 1 - (1 - x)*exp(-(t - tl)/tauD)
u = U + (u - U)*exp(-(t - tl)/tauF)
{var}_post += w_syn*u*x
x = x - u*x
u = u + ff*(1 - u)
tl = t
"""


def hand_written_network(scale: float, seed: int):
    """The baseline network, ``scale`` x (4000 pyramidal, 1000 PV, 1000 SOM), Brian2 seed ``seed``.

    Returns ``(net, cells, syns, mons)``: the ``Network``, groups by role ('pyr', 'pv', 'som'), projections
    ``{name: (Synapses, pre role)}`` and a ``SpikeMonitor`` per role (counts only).
    """
    from brian2 import (Hz, Network, NeuronGroup, PoissonInput, SpikeMonitor, Synapses, mV, ms, nS, pA, pF,
                        second)
    from brian2 import seed as brian_seed

    brian_seed(seed)
    n_pyr, n_pv, n_som = (max(1, int(round(n * scale))) for n in (N_PYR, N_PV, N_SOM))
    gLs, gLd = 370 * pF / (16 * ms), 170 * pF / (7 * ms)
    pyr = NeuronGroup(n_pyr, HAND_PYR, threshold="v_s > theta",
                      reset="v_s = EL; w_s -= 200*pA; theta += 2*mV; t_spike = t", method="euler",
                      namespace=dict(gLs=gLs, gLd=gLd, EL=-70 * mV, pA=pA, mV=mV, nS=nS, pF=pF, ms=ms),
                      name="hand_pyr")
    pyr.v_s = pyr.v_d = -70 * mV
    pyr.theta = -50 * mV
    pyr.t_spike = -1 * second
    cells = {"pyr": pyr}
    for name, n, gL, tau, DT, a, b, tauw, vr, tref, rh in (("pv", n_pv, 10 * nS, 10 * ms, 2 * mV, 0 * nS, 0 * pA, 100 * ms, -55 * mV, 1 * ms, 200 * pA),
                                                         ("som", n_som, 5 * nS, 20 * ms, 4 * mV, 0.5 * nS, 10 * pA, 500 * ms, -65 * mV, 2 * ms, 25 * pA)):
        import math
        VT = -70 * mV + DT - DT * math.log1p(float(a / gL)) + rh / (gL + a)
        g = NeuronGroup(n, HAND_ADEX, threshold="v > VT + 5*DT", reset="v = vr; w += b", refractory=tref,
                        method="euler", name=f"hand_{name}",
                        namespace=dict(gL=gL, C=gL * tau, EL=-70 * mV, DT=DT, VT=VT, a=a, b=b, tauw=tauw, vr=vr,
                                       mV=mV, ms=ms))
        g.v = -70 * mV
        cells[name] = g
    inputs = [PoissonInput(pyr, "g_ampa_s", 1, 500 * Hz, 0.35 * gLs), PoissonInput(pyr, "g_gaba_s", 1, 500 * Hz, 0.35 * gLs),
              PoissonInput(pyr, "g_ampa_d", 1, 500 * Hz, 0.05 * gLd), PoissonInput(pyr, "g_gaba_d", 1, 500 * Hz, 0.05 * gLd),
              PoissonInput(cells["som"], "g_ampa", 1, 500 * Hz, 0.4 * 5 * nS), PoissonInput(cells["som"], "g_gaba", 1, 500 * Hz, 0.5 * 5 * nS),
              PoissonInput(cells["pv"], "g_ampa", 1, 500 * Hz, 0.75 * 10 * nS), PoissonInput(cells["pv"], "g_gaba", 1, 500 * Hz, 1.125 * 10 * nS)]
    std = dict(tauD=20 * ms, tauF=1 * second, U=0.9, ff=0.1)
    stf = dict(tauD=100 * ms, tauF=100 * ms, U=0.02, ff=0.1)
    syns = {}
    for name, pre, post, stp, var, w in (("pyr_pv", "pyr", "pv", std, "g_ampa", 0.05 * 10 * nS),
                                         ("pv_pyr", "pv", "pyr", None, "g_gaba_s", 0.07 * gLs),
                                         ("pyr_som", "pyr", "som", stf, "g_ampa", 0.3 * 5 * nS),
                                         ("som_pyr", "som", "pyr", None, "g_gaba_d", 0.035 * gLd),
                                         ("pyr_pyr", "pyr", "pyr", stf, "g_gaba_d", 0.1 * gLd)):
        if stp is None:
            s = Synapses(cells[pre], cells[post], "w_syn : siemens", on_pre=f"{var}_post += w_syn", name=f"hand_{name}")
        else:
            s = Synapses(cells[pre], cells[post], "w_syn : siemens\nx : 1\nu : 1\ntl : second",
                         on_pre=HAND_STP.format(var=var), namespace=stp, name=f"hand_{name}")
        if pre == post:
            s.connect(condition="i != j", p=P_CONN)
        else:
            s.connect(p=P_CONN)
        s.w_syn = w
        if stp is not None:
            s.x = 1
            s.u = stp["U"]
        syns[name] = (s, pre)
    mons = {k: SpikeMonitor(g, record=False, name=f"hand_{k}_spikes") for k, g in cells.items()}
    net = Network(*cells.values(), *inputs, *(s for s, _ in syns.values()), *mons.values())
    return net, cells, syns, mons


def framework_network(scale: float, seed: int, online_events: bool = False):
    """mburst's reference network at the same size, as ``(net, cells, syns, mons)`` like :func:`hand_written_network`;
    ``online_events``: the pyramidal cells declare their 'event'/'burst' events."""
    from circuits.reference_network import PROJECTIONS, reference_network

    n = [max(1, int(round(k * scale))) for k in (N_PYR, N_PV, N_SOM)]
    ref = reference_network(*n, p=P_CONN, seed=seed, online_events=online_events)
    syns = {name: (ref.synapses[name], pre) for name, pre, *_ in PROJECTIONS}
    return ref.net, ref.groups, syns, ref.monitors


def synaptic_events(cells, syns, mons, before=None) -> int:
    """Recurrent synaptic events: each presynaptic spike times its out-degree, summed over the projections;
    ``before``: spike counts per role to subtract (a warm-up run)."""
    import numpy as np

    total = 0
    for syn, pre in syns.values():
        counts = np.asarray(mons[pre].count[:], dtype=np.int64)
        if before is not None:
            counts = counts - before[pre]
        deg = np.bincount(np.asarray(syn.i[:]), minlength=len(cells[pre]))
        total += int(np.dot(deg, counts))
    return total


def background_events_per_s(net) -> float:
    """Expected background input spikes per simulated second (each is one synaptic event onto its cell:
    Brian2's ``PoissonInput`` and mburst's ``PoissonBackground`` apply them without synapse objects)."""
    from brian2 import Hz, PoissonInput

    from neurons.inputs import PoissonBackground

    total = 0.0
    for obj in net.objects:
        if isinstance(obj, PoissonInput):
            total += len(obj._group) * obj._N * float(obj._rate / Hz)
        elif isinstance(obj, PoissonBackground):
            total += len(obj._group) * sum(n * float(rate / Hz) for _, n, rate, _ in obj.terms)
    return total
