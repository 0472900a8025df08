"""Parts of the ensemble layers of :mod:`circuits.ensembles`: the cells, feedback, PV/SOM and the counting.

Records of what was built (:class:`PopulationRecord`, :class:`SynapseRecord`) let a caller count
spikes, events and synaptic events after a run without knowing the Brian2 objects' layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PopulationRecord", "SynapseRecord", "layer_cells", "interneurons", "bin_counts"]


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
    16 ms-rule ``'event'``), the cell synapses each one stands for (``copies``: a synapse onto an
    ensemble's shared current reaches all of its cells) and its short-term plasticity (``stp``: ``'STD'``,
    ``'STF'`` or ``''`` for static)."""

    pre: str
    pre_index: np.ndarray
    pathway: str
    trigger: str = "spike"
    copies: int = 1
    stp: str = ""


def layer_cells(name: str, n_cells: int, n_per: int, params, input_layer: bool, namespace: dict,
                feedback: bool = False, dend_drive: bool = False):
    """The pyramidal cells of one layer (``pyr_<name>``), with their somatic drive and plateau events, on Brian2's
    default clock (:func:`circuits.shared_current.shared_current` says why).

    Extends :func:`neurons.pyramidal.pyramidal_group`'s equations (the ``extra`` hook) with
    ``I_ext_s = i_in(t, unit) + I_off`` (input layers: a ``TimedArray`` ``i_in`` over frames in
    ``namespace``) or ``I_ext_s = I_sat + I_off`` (``I_sat`` linked to the unit's saturated synaptic
    drive); ``I_ext_d = I_dend + I_fb + d_in(t, unit)``: a constant, the unit's shared feedback current
    (``feedback``; linked, :mod:`circuits.shared_current`) and a per-frame ``TimedArray`` ``d_in`` (``dend_drive``:
    teaching); ``unit = cell // n_per``; events ``'plateau'``/``'plateau_end'`` when ``v_d`` crosses
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
    feedback, dend_drive : bool, optional
        The dendrites read a shared feedback current ``I_fb`` (linked) and a per-frame current ``d_in``.

    Returns
    -------
    brian2.NeuronGroup
        ``n_cells`` cells.
    """
    from brian2 import Equations

    from neurons.pyramidal import pyramidal_group

    drive = "i_in(t, unit)" if input_layer else "I_sat"
    dend = "I_dend" + (" + I_fb" if feedback else "") + (" + d_in(t, unit)" if dend_drive else "")
    extra = Equations(f"I_ext_s = {drive} + I_off : amp\n" + ("" if input_layer else "I_sat : amp (linked)\n")
                      + f"I_ext_d = {dend} : amp\nI_dend : amp (constant)\n" + ("I_fb : amp (linked)\n" if feedback else "")
                      + "I_off : amp (constant)\nunit : integer (constant)\nin_plateau : 1")
    g = pyramidal_group(n_cells, params, name=f"pyr_{name}", method="euler", extra=extra, namespace=namespace,
                        events={"plateau": "v_d > E_d and in_plateau < 0.5",
                                "plateau_end": "v_d < E_d and in_plateau > 0.5"})
    g.run_on_event("plateau", "in_plateau = 1")
    g.run_on_event("plateau_end", "in_plateau = 0")
    g.unit = np.arange(n_cells) // n_per
    return g


def interneurons(g, name: str, rng: np.random.Generator, deferred: list, gain: float = 1.0):
    """PV (soma; STD in, GABA out) and SOM (dendrite; STF in, GABA out) for one layer.

    ``len(g) // 4`` cells of each, with the Payeur background; connection probabilities keep the
    reference circuit's in-degrees (:func:`circuits.wiring.indegree_p`: 200 inputs from the layer per
    interneuron, 50 from PV and 50 from SOM per pyramidal cell), and where a small layer has fewer cells
    than that, every cell connects and the weights grow by the missing factor, so that each cell's mean
    input is the reference circuit's (the one the calibration in place measured); projections ``ff_pv``, ``pv_soma``, ``fb_som`` and
    ``som_dend`` of :data:`circuits.wiring.WIRING` (STP, target, receptor and weight in the target's
    leak units), with the layer in both pyramidal roles: its own PV and SOM read it and inhibit it
    (Payeur's Fig. 3 puts PV between two layers and SOM under the upper layer's feedback).
    Random connectivity is known only after the run in standalone mode, so the synapses are
    appended to ``deferred`` as ``(pre population, Synapses, 'interneuron', STP label)``.

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
    gain : float, optional
        Factor on the weights of the layer onto its PV and SOM cells (``ff_pv``, ``fb_som``): with ``m_cal / m``,
        a layer firing at ``m`` Hz drives them as the calibration's layer at ``m_cal`` did
        (:func:`circuits.calibration.interneuron_gain`).

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

    from circuits.wiring import REFERENCE_P, REFERENCE_SIZES, WIRING, indegree_p, stp_label, stp_of

    n_i = max(1, len(g) // 4)
    pv, som = pv_group(n_i, name=f"pv_{name}"), som_group(n_i, name=f"som_{name}")
    objs = [pv, som, *payeur_background(pv, "pv"), *payeur_background(som, "som")]
    pops = []
    for grp in (pv, som):
        mon = SpikeMonitor(grp, name=f"spk_{grp.name}")
        objs.append(mon)
        pops.append(PopulationRecord(grp.name, name, len(grp), mon))
    for key, pre, post, pre_name, kind in (("ff_pv", g, pv, name, "pyramidal"), ("pv_soma", pv, g, pv.name, "pv"),
                                           ("fb_som", g, som, name, "pyramidal"), ("som_dend", som, g, som.name, "som")):
        w = WIRING[key]
        p = indegree_p(len(pre), REFERENCE_SIZES[kind])
        boost = REFERENCE_P * REFERENCE_SIZES[kind] / (p * len(pre))  # 1 unless the layer is small
        boost = max(1.0, boost) * (gain if key in ("ff_pv", "fb_som") else 1.0)
        syn = connect(pre, post, stp_of(w), target=w.target, receptor=w.receptor, p=p, weight=w.weight * boost,
                      seed=int(rng.integers(1 << 30)), name=f"{pre.name}_{post.name}_{w.receptor}")
        objs.append(syn)
        deferred.append((pre_name, syn, "interneuron", stp_label(stp_of(w))))
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
