"""Conductance synapses with optional Tsodyks-Markram short-term plasticity (Brian2).

Each presynaptic spike (or online *event* / *burst*, see :mod:`neurons.pyramidal`)
increments the postsynaptic conductance ``g_<receptor>[_s|_d]`` by the efficacy.
The synaptic weight variable is ``w_syn`` (siemens; ``w`` is the AdEx adaptation
current). Without STP the efficacy is ``w_syn``. With STP (Tsodyks & Markram 1997, in the form
of Payeur et al. 2021), the state ``(x, u)`` is updated *event-driven* and
exactly: between spikes ``dx/dt = (1-x)/tau_D`` and ``du/dt = (U-u)/tau_F`` are
solved in closed form over the elapsed time ``Delta = t - t_stp``::

    x <- 1 - (1 - x) exp(-Delta/tau_D);   u <- U + (u - U) exp(-Delta/tau_F)
    eff <- u x;   g_post += w_syn eff      (values before the update)
    x <- x - u x;   u <- u + f (1 - u);   t_stp <- t

No clock-driven integration of x and u ever happens, so the efficacies equal
the closed-form recursion to rounding error (``tests/test_neurons_stp.py``).

All synapses of one projection from the same presynaptic cell see the same
spike train with the same parameters and start from the same state, so their
``(x, u)`` are identical at all times. The state is therefore kept once per
presynaptic cell, in a small group ``<name>_stp`` advanced by a one-to-one
pathway (``<name>_stp_update``) that runs just before the projection's own and
is shared by all projections from that cell group with the same parameters,
pathway and delay; each synapse reads ``eff`` through a linked variable. The
result is the per-synapse recursion exactly (same operations, same order; a
test compares spike trains with a per-synapse Brian2 network), with two
exponentials per presynaptic spike instead of per synaptic event.
"""
from __future__ import annotations

import numbers

import numpy as np
from brian2 import Quantity, Synapses, second, seed as brian_seed, siemens

from .common import MburstError
from .params import COMPARTMENTS, PATHWAYS, RECEPTORS, STPParams

__all__ = ["connect", "draw_connections", "target_variable", "leak_conductance", "is_pyramidal", "synaptic_weight"]


def is_pyramidal(group) -> bool:
    """Whether ``group`` has the two-compartment pyramidal variables (``v_d``, ``g_ampa_d``).

    Parameters
    ----------
    group : brian2.Group
        Any group.

    Returns
    -------
    bool
    """
    return "v_d" in group.variables and "g_ampa_d" in group.variables


def target_variable(post, target: str, receptor: str) -> str:
    """The conductance that a synapse onto ``post`` increments (e.g. ``'g_ampa_d'``).

    Parameters
    ----------
    post : NeuronGroup
        Pyramidal or AdEx group.
    target : {'soma', 'dendrite'}
        Compartment ('dendrite' for pyramidal cells only).
    receptor : {'ampa', 'gaba'}
        Receptor.

    Returns
    -------
    str
        Variable name (unit S).

    Raises
    ------
    MburstError
        If ``target`` or ``receptor`` is unknown, ``post`` has no such
        conductance, or a point neuron is given ``target='dendrite'``.
    """
    if target not in COMPARTMENTS:
        raise MburstError(f"connect: target={target!r} is not a compartment; expected one of {COMPARTMENTS}")
    if receptor not in RECEPTORS:
        raise MburstError(f"connect: receptor={receptor!r} is unknown; expected one of {RECEPTORS}")
    if is_pyramidal(post):
        return f"g_{receptor}_{'s' if target == 'soma' else 'd'}"
    if f"g_{receptor}" not in post.variables:
        raise MburstError(f"connect: post={post.name!r} has no conductance g_{receptor}; "
                          "build it with neurons.pyramidal/neurons.interneurons")
    if target != "soma":
        raise MburstError(f"connect: post={post.name!r} is a point neuron; target={target!r} must be 'soma'")
    return f"g_{receptor}"


def leak_conductance(post, target: str) -> Quantity:
    """The leak conductance that plain-number weights onto ``post``/``target`` are multiplied by.

    Parameters
    ----------
    post : NeuronGroup
        Pyramidal (gL_s = 23.1 nS, gL_d = 24.3 nS) or AdEx (g_L) group.
    target : {'soma', 'dendrite'}
        Compartment (pyramidal cells only).

    Returns
    -------
    Quantity (S)
    """
    ns = post.namespace
    if is_pyramidal(post):
        return ns["gL_s"] if target == "soma" else ns["gL_d"]
    return ns["g_L"]


def synaptic_weight(post, target: str, weight) -> Quantity:
    """A synaptic weight as a conductance (siemens).

    Parameters
    ----------
    post : NeuronGroup
        The postsynaptic group (its leak conductance sets the unit of a plain number).
    target : {'soma', 'dendrite'}
        The compartment the synapse targets.
    weight : float or Quantity
        A number >= 0 in units of the target compartment's leak conductance, or a conductance.

    Returns
    -------
    Quantity
        The weight in siemens.

    Raises
    ------
    MburstError
        If ``weight`` is negative, not finite, or a quantity that is not a conductance.
    """
    if isinstance(weight, Quantity) and not weight.is_dimensionless:
        if weight.dim is not siemens.dim:
            raise MburstError(f"connect: weight={weight!r} must be a conductance (siemens) or a plain number in leak units")
        value = float(weight / siemens)
        if not np.isfinite(value) or value < 0:
            raise MburstError(f"connect: weight={weight!r} must be finite and >= 0")
        return weight
    if not isinstance(weight, numbers.Real) or isinstance(weight, bool) or not np.isfinite(weight) or weight < 0:
        raise MburstError(f"connect: weight={weight!r} must be a number >= 0 (leak-conductance units) or a conductance")
    return float(weight) * leak_conductance(post, target)


def draw_connections(syn: Synapses, pre, post, p: float = 1.0, i=None, j=None) -> None:
    """Create the connections of ``syn`` (from ``pre`` to ``post``).

    Parameters
    ----------
    syn : Synapses
        The synapses to connect.
    pre, post : NeuronGroup
        Its source and target groups.
    p : float, optional
        Probability of each pair (autapses excluded when ``pre is post``),
        used when ``i`` is None.
    i, j : array_like of int, shape (n_synapses,), optional
        Explicit presynaptic and postsynaptic indices.
    """
    if i is not None:
        syn.connect(i=np.asarray(i, dtype=int), j=np.asarray(j, dtype=int))
    elif pre is post:
        syn.connect(condition="i != j", p=float(p))
    else:
        syn.connect(p=float(p))


def connect(pre, post, stp: STPParams | None = None, target: str = "soma", receptor: str = "ampa",
            p: float = 0.05, *, weight, pathway: str = "spike", seed: int | None = None,
            i=None, j=None, delay=None, name: str | None = None) -> Synapses:
    """Connect ``pre`` to ``post`` and return the Brian2 ``Synapses``.

    Parameters
    ----------
    pre : NeuronGroup or SpikeGeneratorGroup
        Presynaptic group.
    post : NeuronGroup
        Postsynaptic group (pyramidal or AdEx).
    stp : STPParams or None, optional
        :data:`~neurons.params.STD`, :data:`~neurons.params.STF`, any
        :class:`~neurons.params.STPParams`, or ``None`` (static). With STP the
        synapses have ``eff`` (u x of the last transmitted spike, linked to the
        presynaptic cell's state; Tsodyks & Markram 1997); the state group and its
        update pathway are ``contained_objects`` of the returned ``Synapses`` and
        join any ``Network`` with it.
    target : {'soma', 'dendrite'}, optional
        Compartment ('dendrite' for pyramidal posts only).
    receptor : {'ampa', 'gaba'}, optional
        Receptor.
    p : float, optional
        Connection probability (random, autapses excluded when pre is post);
        or give explicit index arrays ``i``, ``j``.
    weight : float or Quantity (S)
        A plain number in units of the target's leak conductance
        (soma 23.1 nS, dendrite 24.3 nS, PV 10 nS, SOM 5 nS) or a conductance quantity.
    pathway : {'spike', 'event', 'burst'}, optional
        Every spike, or the pyramidal cell's online 16 ms-rule events/bursts
        (see :mod:`neurons.pyramidal`).
    seed : int, optional
        Seeds Brian2's random numbers (``brian2.seed``) before drawing connections.
    i, j : array_like of int, shape (n_synapses,), optional
        Explicit presynaptic and postsynaptic indices.
    delay : Quantity (s), optional
        One transmission delay for all synapses (per-synapse delays
        would break the shared STP state, so they are refused with STP).
    name : str, optional
        Brian2 name of the synapses.

    Returns
    -------
    Synapses
        With ``w_syn`` (S) set, and ``eff`` (dimensionless) with STP.

    Raises
    ------
    MburstError
        If ``stp`` is not an STPParams or invalid, an STP projection has a
        non-scalar delay, ``pathway`` is unknown or ``pre`` lacks it, the
        target/receptor/weight is invalid, only one of ``i``/``j`` is given,
        or ``p`` is not in [0, 1].
    """
    if stp is not None:
        if not isinstance(stp, STPParams):
            raise MburstError(f"connect: stp={stp!r} must be STD, STF, an STPParams or None")
        stp.validate()
        if delay is not None and np.ndim(delay) != 0:
            raise MburstError("connect: an STP projection takes one scalar delay (its state is kept per "
                              "presynaptic cell); per-synapse delays are not supported")
    if pathway not in PATHWAYS:
        raise MburstError(f"connect: pathway={pathway!r} is unknown; expected one of {PATHWAYS}")
    if pathway != "spike" and pathway not in getattr(pre, "events", {}):
        raise MburstError(f"connect: pre={pre.name!r} has no online '{pathway}' detection "
                          "(only pyramidal_group cells do)")
    var = target_variable(post, target, receptor)
    w = synaptic_weight(post, target, weight)
    if (i is None) != (j is None):
        raise MburstError("connect: give both i and j, or neither")
    if i is None and (not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0):
        raise MburstError(f"connect: p={p!r} must be a probability in [0, 1]")

    kwargs = {}
    if pathway != "spike":
        kwargs["on_event"] = {"pre": pathway}
    if delay is not None:
        kwargs["delay"] = delay
    model, on_pre = "w_syn : siemens", f"{var}_post += w_syn"
    if stp is not None:
        model, on_pre = model + "\neff : 1 (linked)", on_pre + "*eff"
    syn = Synapses(pre, post, model=model, on_pre=on_pre,
                   name=name or f"{pre.name}_to_{post.name}_{target}_{receptor}*", **kwargs)
    if stp is not None:
        _attach_stp_state(syn, pre, stp, kwargs)
    if seed is not None:
        brian_seed(seed)
    draw_connections(syn, pre, post, p, i, j)
    syn.w_syn = w
    return syn


def _attach_stp_state(syn: Synapses, pre, stp: STPParams, kwargs: dict) -> None:
    """Link ``syn.eff`` to the per-presynaptic-cell STP state (see module doc), creating the state group
    and the one-to-one pathway that advances it unless a projection from ``pre`` with the same
    parameters, pathway and delay already made them (their state is the same)."""
    from brian2 import NeuronGroup, get_device, linked_var

    key = (float(stp.tau_D / second), float(stp.tau_F / second), float(stp.U), float(stp.f), repr(sorted(kwargs.items())))
    # STP parameters/pathway/delay -> (state group, update pathway), kept on the group itself: the pathway refers
    # back to the group, so a process-wide table keyed by the group would keep every group of every earlier
    # network alive (and shift Brian2's names, so a rebuild of the same network in one process recompiled it all)
    shared = pre.__dict__.setdefault("_stp_states", {})
    if key not in shared:
        state = NeuronGroup(len(pre), "x : 1\nu : 1\nt_stp : second\neff : 1", name=f"{syn.name}_stp")
        state.x = 1.0
        state.u = float(stp.U)
        state.t_stp = 0 * second
        update = Synapses(pre, state, on_pre="\n".join([
            "x_post = 1 - (1 - x_post)*exp(-(t - t_stp_post)/tau_D)",
            "u_post = U_stp + (u_post - U_stp)*exp(-(t - t_stp_post)/tau_F)",
            "eff_post = u_post*x_post",
            "x_post = x_post - eff_post",
            "u_post = u_post + f_stp*(1 - u_post)",
            "t_stp_post = t",
        ]), namespace={"tau_D": stp.tau_D, "tau_F": stp.tau_F, "U_stp": float(stp.U), "f_stp": float(stp.f)},
            name=f"{syn.name}_stp_update", **kwargs)
        update.pre.order = syn.pre.order - 1  # advance the state before the projections read eff
        update.connect(j="i")
        # one-to-one: each state cell is written by one synapse, so the update is order-independent
        # (Brian2 would otherwise warn about writes to repeated postsynaptic indices)
        update.variables["_synaptic_post"].unique = True
        device = get_device()
        if isinstance(getattr(device, "synapses", None), set):
            # cpp_standalone declares the Synapses it finds among a Network's top-level objects only
            device.synapses.add(update)
        shared[key] = (state, update)
    state, update = shared[key]
    syn.eff = linked_var(state, "eff", index="i")
    syn.contained_objects.extend([state, update])
