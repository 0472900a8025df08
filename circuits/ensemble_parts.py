"""Parts of the ensemble layers of :mod:`circuits.ensembles`: the cells, feedback, PV/SOM and the counting.

Records of what was built (:class:`PopulationRecord`, :class:`SynapseRecord`) let a caller count
spikes, events and synaptic events after a run without knowing the Brian2 objects' layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PopulationRecord", "SynapseRecord", "layer_cells", "forward_current", "forward_synapses",
           "feedback_synapses", "interneurons", "bin_counts"]

V_UNIT_MV = 1.0
"""With depressing forward synapses, ``I_fwd = (g_ampa - g_gaba) x 1 mV``: the synaptic 'conductances' of the
shared current carry pA per mV (nS), so :func:`neurons.synapses.connect` and its STP state can drive it."""


@dataclass(frozen=True)
class PopulationRecord:
    """A spiking population: Brian2 ``name``, the ``layer`` it belongs to, ``n`` cells, its
    ``spikes`` (``SpikeMonitor``), ``pyramidal`` (has events, bursts and plateaus) and ``plateaus``
    (``EventMonitor`` of the dendritic plateau onsets, or None)."""

    name: str
    layer: str
    n: int
    spikes: object
    pyramidal: bool = False
    plateaus: object = None


@dataclass(frozen=True)
class SynapseRecord:
    """A synapse group: the presynaptic population ``pre`` (a :class:`PopulationRecord` name), the
    presynaptic cell of every synapse ``pre_index`` [synapses], its ``pathway`` (``'forward'``,
    ``'feedback'`` or ``'interneuron'``), what makes it transmit (``trigger``: ``'spike'`` or the
    16 ms-rule ``'event'``) and the cell synapses each one stands for (``copies``: a synapse onto an
    ensemble's shared current reaches all of its cells)."""

    pre: str
    pre_index: np.ndarray
    pathway: str
    trigger: str = "spike"
    copies: int = 1


def layer_cells(name: str, n_cells: int, n_per: int, params, input_layer: bool, namespace: dict, dt):
    """The pyramidal cells of one layer (``pyr_<name>``), with their somatic drive and plateau events.

    Extends :func:`neurons.pyramidal.pyramidal_group`'s equations (the ``extra`` hook) with
    ``I_ext_s = i_in(t, unit) + I_off`` (input layers: a ``TimedArray`` ``i_in`` over frames in
    ``namespace``) or ``I_ext_s = I_sat + I_off`` (``I_sat`` linked to the unit's saturated synaptic
    drive); ``unit = cell // n_per``; events ``'plateau'``/``'plateau_end'`` when ``v_d`` crosses
    ``E_d`` up/down (``in_plateau`` tracks it).

    Parameters
    ----------
    name : str
        Layer name.
    n_cells, n_per : int
        Cells of the layer and per unit.
    params : neurons.params.PyramidalParams
        Cell parameters.
    input_layer : bool
        Drive from ``i_in`` instead of ``I_sat``.
    namespace : dict
        External names (``i_in``, ``tau_syn``, ...).
    dt : brian2.Quantity
        Time step.

    Returns
    -------
    brian2.NeuronGroup
        ``n_cells`` cells.
    """
    from brian2 import Equations

    from neurons.pyramidal import pyramidal_group

    drive = "i_in(t, unit)" if input_layer else "I_sat"
    extra = Equations(f"I_ext_s = {drive} + I_off : amp\n" + ("" if input_layer else "I_sat : amp (linked)\n")
                      + "I_off : amp (constant)\nunit : integer (constant)\nin_plateau : 1")
    g = pyramidal_group(n_cells, params, name=f"pyr_{name}", method="euler", dt=dt, extra=extra, namespace=namespace,
                        events={"plateau": "v_d > E_d and in_plateau < 0.5",
                                "plateau_end": "v_d < E_d and in_plateau > 0.5"})
    g.run_on_event("plateau", "in_plateau = 1")
    g.run_on_event("plateau_end", "in_plateau = 0")
    g.unit = np.arange(n_cells) // n_per
    return g


def forward_current(name: str, units: int, stp: bool, namespace: dict, dt, reset_dt=None):
    """The shared forward current of each unit of a layer (group ``cur_<name>``), ``tau_syn dI_fwd/dt = -I_fwd``.

    Without STP ``I_fwd`` is a state variable that the synapses increment; with STP it is
    ``(g_ampa - g_gaba) x 1 mV`` (:data:`V_UNIT_MV`), two decaying state variables in nS that
    :func:`forward_synapses` increments through :func:`neurons.synapses.connect`. ``I_bias`` (constant)
    and ``I_sat`` (the saturated drive, set by the caller) complete it.

    Parameters
    ----------
    name : str
        Layer name.
    units : int
        Units of the layer.
    stp : bool
        Depressing (conductance-style) synapses instead of plain current jumps.
    namespace : dict
        Holds ``tau_syn``.
    dt : brian2.Quantity
        Time step.
    reset_dt : brian2.Quantity, optional
        Zero the current every ``reset_dt`` (settle mode with reset).

    Returns
    -------
    brian2.NeuronGroup
    """
    from brian2 import NeuronGroup, mV

    if stp:
        eqs = ("dg_ampa/dt = -g_ampa/tau_syn : siemens\ndg_gaba/dt = -g_gaba/tau_syn : siemens\n"
               "I_fwd = (g_ampa - g_gaba)*v_unit : amp\n")
        namespace = {**namespace, "v_unit": V_UNIT_MV * mV}
        zero = "g_ampa = 0*siemens\ng_gaba = 0*siemens"
    else:
        eqs, zero = "dI_fwd/dt = -I_fwd/tau_syn : amp\n", "I_fwd = 0*amp"
    cur = NeuronGroup(units, eqs + "I_bias : amp (constant)\nI_sat : amp", method="exact", namespace=namespace,
                      name=f"cur_{name}", dt=dt)
    if reset_dt is not None:
        cur.run_regularly(zero, dt=reset_dt, when="start")
    return cur


def forward_synapses(pre_group, cur, i, j, q_pA, stp: bool, name: str) -> list:
    """Event-driven forward synapses from cells of ``pre_group`` onto the shared currents ``cur``.

    Each online event (16 ms rule) of presynaptic cell ``i`` adds ``q`` to unit ``j``'s current.
    With ``stp`` the jump is ``q u x / U``: Tsodyks-Markram depression with the ``ff_soma`` parameters of
    :data:`circuits.wiring.WIRING` (STD, :func:`neurons.synapses.connect`; its state kept once per
    presynaptic cell), divided by ``U`` so that an isolated event (x = 1, u = U) transmits ``q`` as the
    current-based synapse does, while closely spaced events transmit less (the event rate, compressed).

    Parameters
    ----------
    pre_group : brian2.NeuronGroup
        Presynaptic pyramidal cells (with the online ``'event'``).
    cur : brian2.NeuronGroup
        From :func:`forward_current`, with the same ``stp``.
    i, j : numpy.ndarray of int, shape (K,)
        Presynaptic cell and postsynaptic unit of each synapse.
    q_pA : numpy.ndarray, shape (K,)
        Jump per event (pA; signed).
    stp : bool
        Depressing synapses.
    name : str
        Brian2 name (``_ampa``/``_gaba`` appended with STP, one group per sign).

    Returns
    -------
    list of (brian2.Synapses, numpy.ndarray)
        Each synapse group with the presynaptic cell of its synapses.
    """
    from brian2 import Synapses, mV, nS, pA

    from neurons.synapses import connect

    from circuits.wiring import WIRING, stp_of

    if not stp:
        syn = Synapses(pre_group, cur, model="q_syn : amp (constant)", on_pre="I_fwd_post += q_syn",
                       on_event={"pre": "event"}, name=name)
        syn.connect(i=i, j=j)
        syn.q_syn = q_pA * pA
        return [(syn, i)]
    std = stp_of(WIRING["ff_soma"])
    out = []
    for receptor, sel in (("ampa", q_pA > 0), ("gaba", q_pA < 0)):
        if not sel.any():
            continue
        syn = connect(pre_group, cur, std, target="soma", receptor=receptor, weight=0 * nS, pathway="event",
                      i=i[sel], j=j[sel], name=f"{name}_{receptor}")
        syn.w_syn = np.abs(q_pA[sel]) / float(std.U) * pA / (V_UNIT_MV * mV)
        out.append((syn, i[sel]))
    return out


def feedback_synapses(post_group, pre_group, pre_u, post_u, w, n_post: int, n_pre: int, fb_gain: float, name: str,
                      src: str):
    """Feedback from ``post_group`` (layer ``name``) onto the dendrites of ``pre_group`` (layer ``src``), STF
    (the ``fb_dend`` projection of :data:`circuits.wiring.WIRING`, with GABA for negative weights).

    One cell of each upper ensemble reaches one cell of each lower ensemble it reads (K = 1), AMPA
    where the forward weight is positive and GABA where it is negative, weight
    ``fb_gain |w| / max|w|`` in units of the dendritic leak ``gL_d``; every spike transmits
    (facilitation lets the burst rate through).

    Parameters
    ----------
    post_group, pre_group : brian2.NeuronGroup
        Upper and lower layer's cells.
    pre_u, post_u : numpy.ndarray of int, shape (K,)
        Unit pairs of the forward weights (lower unit, upper unit).
    w : numpy.ndarray, shape (K,)
        Forward weights (the feedback is tied to them).
    n_post, n_pre : int
        Cells per upper and per lower unit.
    fb_gain : float
        Weight of the largest |w| (dendritic leak units).
    name, src : str
        Upper and lower layer names.

    Returns
    -------
    objects : list
        Brian2 ``Synapses`` (one per receptor present).
    records : list of SynapseRecord
        Their census (pathway ``'feedback'``, trigger ``'spike'``).
    """
    from neurons.synapses import connect

    from circuits.wiring import WIRING, stp_of

    fb = WIRING["fb_dend"]
    objs, records = [], []
    w_max = float(np.max(np.abs(w))) or 1.0
    i = post_u * n_post
    j = pre_u * n_pre
    for receptor, sel in (("ampa", w > 0), ("gaba", w < 0)):
        if not sel.any():
            continue
        syn = connect(post_group, pre_group, stp_of(fb), target=fb.target, receptor=receptor, weight=0.0,
                      i=i[sel], j=j[sel], name=f"fb_{name}_{src}_{receptor}")
        syn.w_syn = fb_gain * np.abs(w[sel]) / w_max * pre_group.namespace["gL_d"]
        objs.append(syn)
        records.append(SynapseRecord(name, i[sel], "feedback", "spike"))
    return objs, records


def interneurons(g, name: str, rng: np.random.Generator, deferred: list):
    """PV (soma; STD in, GABA out) and SOM (dendrite; STF in, GABA out) for one layer.

    ``len(g) // 4`` cells of each, with the Payeur background; connection probability
    ``max(0.05, 4 / len(g))`` (at most 1); projections ``ff_pv``, ``pv_soma``, ``fb_som`` and
    ``som_dend`` of :data:`circuits.wiring.WIRING` (STP, target, receptor and weight in the target's
    leak units), with the layer in both pyramidal roles: its own PV and SOM read it and inhibit it
    (Payeur's Fig. 3 puts PV between two layers and SOM under the upper layer's feedback).
    Random connectivity is known only after the run in standalone mode, so the synapses are
    appended to ``deferred`` as ``(pre population, Synapses, 'interneuron')``.

    Parameters
    ----------
    g : brian2.NeuronGroup
        The layer's pyramidal cells.
    name : str
        Layer name.
    rng : numpy.random.Generator
        Draws one connection seed per projection.
    deferred : list
        Receives the synapses to count after the run.

    Returns
    -------
    objects : list
        Brian2 objects (groups, backgrounds, monitors, synapses).
    populations : list of PopulationRecord
        PV and SOM (layer ``name``).
    """
    from brian2 import SpikeMonitor

    from neurons.inputs import payeur_background
    from neurons.interneurons import pv_group, som_group
    from neurons.synapses import connect

    from circuits.wiring import WIRING, stp_of

    n_i = max(1, len(g) // 4)
    pv, som = pv_group(n_i, name=f"pv_{name}"), som_group(n_i, name=f"som_{name}")
    objs = [pv, som, *payeur_background(pv, "pv"), *payeur_background(som, "som")]
    pops = []
    for grp in (pv, som):
        mon = SpikeMonitor(grp, name=f"spk_{grp.name}")
        objs.append(mon)
        pops.append(PopulationRecord(grp.name, name, len(grp), mon))
    p = min(1.0, max(0.05, 4.0 / len(g)))
    for key, pre, post, pre_name in (("ff_pv", g, pv, name), ("pv_soma", pv, g, pv.name), ("fb_som", g, som, name),
                                     ("som_dend", som, g, som.name)):
        w = WIRING[key]
        syn = connect(pre, post, stp_of(w), target=w.target, receptor=w.receptor, p=p, weight=w.weight,
                      seed=int(rng.integers(1 << 30)), name=f"{pre.name}_{post.name}_{w.receptor}")
        objs.append(syn)
        deferred.append((pre_name, syn, "interneuron"))
    return objs, pops


def bin_counts(monitor, n_per: int, starts, width: float, n_units: int):
    """Events and bursts of each unit's cells in each window ``[start, start + width)``.

    Parameters
    ----------
    monitor : brian2.SpikeMonitor
        Spikes of a layer's pyramidal cells (cell ``u n_per + r`` belongs to unit ``u``).
    n_per : int
        Cells per unit.
    starts : numpy.ndarray, shape (F,)
        Window starts (s), sorted.
    width : float
        Window length (s).
    n_units : int
        Units of the layer.

    Returns
    -------
    events, bursts : numpy.ndarray, shape (F, n_units)
        Events (16 ms rule; by first spike) and bursts (by onset) of the unit's cells per window.
    """
    from neurons.bursts import detect_population

    det = detect_population(np.asarray(monitor.i[:]), np.asarray(monitor.t[:]))
    return (_bin(det.event_i // n_per, det.event_t, starts, width, n_units),
            _bin(det.burst_i // n_per, det.burst_onset_t, starts, width, n_units))


def _bin(unit, t, starts, width, n_units):
    """Counts [F, units] of (unit, t) inside each window ``[start, start + width)``."""
    out = np.zeros((len(starts), n_units))
    k = np.searchsorted(starts, t, side="right") - 1
    ok = (k >= 0) & (t < starts[np.clip(k, 0, None)] + width - 1e-12)
    np.add.at(out, (k[ok], unit[ok]), 1)
    return out
