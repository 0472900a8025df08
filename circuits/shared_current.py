"""Synaptic currents shared by the cells of an ensemble: forward onto somata, feedback onto dendrites.

All cells of an ensemble receive the same synapses (every cell of unit ``a`` onto every cell of unit
``b`` with the same weight), so their summed synaptic current is one variable per unit: a group of
``units`` neurons holding ``I = g_ampa x 1 mV`` with ``tau dg_ampa/dt = -g_ampa`` (the conductance
carries pA per mV, so :func:`neurons.synapses.connect` and its Tsodyks-Markram state drive it
unchanged). The current is linear and its excitatory and inhibitory parts share ``tau``, so one signed
conductance sums both exactly, and one synapse group per pathway carries signed weights: a weight that
changes sign (``mburst learn``) leaves the synapse counts, and so the standalone code, as they were. The
cells read ``I`` through a linked variable: the dynamics of ``n`` identical copies at ``1/n`` of the
synaptic work; the energy census counts every cell synapse (``copies``).

Two pathways of the burst-multiplexing circuit (Payeur et al. 2021, Fig. 3; :data:`circuits.wiring.WIRING`):

* forward (``ff_soma``): every presynaptic spike, depressing (STD): a burst transmits little more
  than its first spike, so the somatic current follows the presynaptic *event* rate;
* feedback (``fb_dend``): every spike of the upper layer, facilitating (STF): a lone spike transmits
  ``U`` and a burst far more, so the dendritic current follows the upper layer's *burst* rate.

A synapse's jump per spike is ``q eff / norm`` where ``eff = u x`` (1 without STP) and ``norm`` the
efficacy of the unit the pathway transmits (forward: a lone spike, ``U``; feedback: a two-spike burst
at the cells' measured intra-burst interval, :func:`burst_efficacy`), so ``q`` is the current per
event (forward) or per burst (feedback).
"""
from __future__ import annotations

import numpy as np

__all__ = ["V_UNIT_MV", "shared_current", "shared_synapses", "burst_efficacy"]

V_UNIT_MV = 1.0
"""``I = g_ampa x 1 mV``: the shared current's signed conductance carries pA per mV (nS)."""


def burst_efficacy(stp, isi_ms: float) -> float:
    """Summed efficacy ``u x`` of a two-spike burst ``isi_ms`` apart, from rest (Tsodyks-Markram).

    Parameters
    ----------
    stp : neurons.params.STPParams
        The synapses' parameters.
    isi_ms : float
        Intra-burst interval (ms), > 0.

    Returns
    -------
    float
        ``eff_1 + eff_2`` (:func:`neurons.stp.tm_efficacies`); 0.13 for STF at 6 ms against 0.02 for a lone spike.
    """
    from neurons.stp import tm_efficacies

    return float(np.sum(tm_efficacies(stp, isi_ms * 1e-3, 2)))


def shared_current(name: str, units: int, tau_name: str, namespace: dict, reset_dt=None, extra: str = ""):
    """The shared synaptic current of each unit (group ``name``): ``I = g_ampa x 1 mV``, ``g_ampa`` signed.

    The group runs on Brian2's default clock, as every group of the circuit does: groups given their own ``dt`` each
    get a clock, Brian2 orders clocks by identity, and a standalone build's main code then changes from run to run and
    recompiles.

    Parameters
    ----------
    name : str
        Brian2 name of the group.
    units : int
        Units of the layer.
    tau_name : str
        Name of the conductances' time constant in ``namespace`` (e.g. ``'tau_syn'``).
    namespace : dict
        External names; ``v_unit`` is added.
    reset_dt : brian2.Quantity, optional
        Zero the current every ``reset_dt`` (settle mode with reset).
    extra : str, optional
        More equations of the group (e.g. the forward current's bias and saturation).

    Returns
    -------
    brian2.NeuronGroup
        With ``g_ampa`` (S, signed) and ``I`` (A).
    """
    from brian2 import NeuronGroup, mV

    eqs = f"dg_ampa/dt = -g_ampa/{tau_name} : siemens\nI = g_ampa*v_unit : amp\n" + extra
    cur = NeuronGroup(units, eqs, method="exact", namespace={**namespace, "v_unit": V_UNIT_MV * mV}, name=name)
    if reset_dt is not None:
        cur.run_regularly("g_ampa = 0*siemens", dt=reset_dt, when="start")
    return cur


def shared_synapses(pre_group, cur, i, j, q_pA, stp, norm: float, pathway: str, name: str):
    """Synapses from cells of ``pre_group`` onto the shared currents ``cur``: one group, signed weights.

    Each transmission (``pathway``) of presynaptic cell ``i`` adds ``q eff / norm`` to unit ``j``'s
    current (excitatory for q > 0, inhibitory for q < 0); ``eff = u x`` with ``stp``, 1 without.

    Parameters
    ----------
    pre_group : brian2.NeuronGroup
        Presynaptic cells.
    cur : brian2.NeuronGroup
        From :func:`shared_current`.
    i, j : numpy.ndarray of int, shape (K,)
        Presynaptic cell and postsynaptic unit of each synapse.
    q_pA : numpy.ndarray, shape (K,)
        Jump per transmitted event or burst (pA; signed).
    stp : neurons.params.STPParams or None
        Tsodyks-Markram parameters (state kept once per presynaptic cell), or static.
    norm : float
        Efficacy that transmits ``q`` (see the module docstring); 1 without STP.
    pathway : {'spike', 'event'}
        What transmits: every spike, or the online 16 ms-rule event.
    name : str
        Brian2 name.

    Returns
    -------
    brian2.Synapses or None
        The synapses (``K`` of them, in the order of ``i``), None where ``K`` is 0.
    """
    from brian2 import mV, nS, pA

    from neurons.synapses import connect

    if len(i) == 0:
        return None
    syn = connect(pre_group, cur, stp, target="soma", receptor="ampa", weight=0 * nS, pathway=pathway,
                  i=i, j=j, name=name)
    syn.w_syn = np.asarray(q_pA, float) / norm * pA / (V_UNIT_MV * mV)
    return syn
