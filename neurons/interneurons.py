"""PV and SOM interneurons: adaptive exponential integrate-and-fire cells (Brian2).

Brette & Gerstner (2005) AdEx with the parameters of Payeur et al. (2021)
(:data:`neurons.params.PV_PARAMS`, :data:`neurons.params.SOM_PARAMS`)::

    C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T)/Delta_T) - w + I_syn + I_ext
    tau_w dw/dt = a (v - E_L) - w
    I_syn = g_ampa (E_exc - v) + g_gaba (E_inh - v),   dg/dt = -g/tau
    spike: v > V_T + 5 Delta_T;  reset: v <- v_reset, w += b;  refractory t_ref

The rheobase is set by V_T (solved analytically in :class:`neurons.params.AdExParams`)
and checked by simulation in ``tests/test_neurons_interneurons.py``.
"""
from __future__ import annotations

from brian2 import NeuronGroup

from .common import MburstError
from .params import PV_PARAMS, SOM_PARAMS, SYNAPSE_PARAMS, AdExParams, SynapseParams

__all__ = ["adex_group", "pv_group", "som_group", "ADEX_EQUATIONS"]

ADEX_EQUATIONS = """
dv/dt = (-g_L*(v - E_L) + g_L*Delta_T*exp((v - V_T)/Delta_T) - w + I_syn + I_ext) / C : volt (unless refractory)
dw/dt = (a*(v - E_L) - w)/tau_w : amp
I_syn = g_ampa*(E_exc - v) + g_gaba*(E_inh - v) : amp
dg_ampa/dt = -g_ampa/tau_ampa : siemens
dg_gaba/dt = -g_gaba/tau_gaba : siemens
I_ext : amp
"""


def adex_group(n: int, params: AdExParams, name: str | None = None, method: str = "euler",
               synapse_params: SynapseParams | None = None, dt=None) -> NeuronGroup:
    """``n`` AdEx cells (Brette & Gerstner 2005), initially at rest (v = E_L).

    Parameters
    ----------
    n : int
        Number of cells.
    params : AdExParams
        Cell parameters.
    name : str, optional
        Brian2 name (default ``'<params.name>*'``).
    method : str, optional
        Brian2 integration method.
    synapse_params : SynapseParams, optional
        Synaptic time constants and reversals; default :data:`SYNAPSE_PARAMS`.
    dt : Quantity (s), optional
        The group's time step (default the default clock's).

    Returns
    -------
    NeuronGroup
        ``n`` cells with ``v`` (V), ``w`` (A), ``g_ampa``, ``g_gaba`` (S), ``I_ext`` (A).

    Raises
    ------
    MburstError
        If ``params`` is not a valid AdExParams, ``synapse_params`` is invalid
        or ``n`` is not a positive int.
    """
    if not isinstance(params, AdExParams):
        raise MburstError(f"adex_group: params={params!r} must be an AdExParams")
    params.validate()
    synapse_params = (synapse_params or SYNAPSE_PARAMS).validate()
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise MburstError(f"adex_group: n={n!r} must be a positive integer")
    namespace = params.namespace()
    namespace.update(synapse_params.namespace())
    group = NeuronGroup(n, ADEX_EQUATIONS, threshold="v > V_cut", reset="v = v_reset; w += b",
                        refractory=params.t_ref, method=method, namespace=namespace,
                        name=name or f"{params.name.lower()}*", dt=dt)
    group.v = params.E_L
    return group


def pv_group(n: int, params: AdExParams = PV_PARAMS, name: str | None = None, method: str = "euler",
             synapse_params: SynapseParams | None = None, dt=None) -> NeuronGroup:
    """``n`` fast-spiking, non-adapting PV cells (rheobase 200 pA; Payeur et al. 2021).

    Parameters
    ----------
    n : int
        Number of cells.
    params : AdExParams, optional
        Cell parameters; default :data:`PV_PARAMS`.
    name : str, optional
        Brian2 name (default ``'<params.name>*'``).
    method : str, optional
        Brian2 integration method.
    synapse_params : SynapseParams, optional
        Synaptic time constants and reversals; default :data:`SYNAPSE_PARAMS`.
    dt : Quantity (s), optional
        The group's time step (default the default clock's).

    Returns
    -------
    NeuronGroup
        ``n`` cells with ``v`` (V), ``w`` (A), ``g_ampa``, ``g_gaba`` (S), ``I_ext`` (A).

    Raises
    ------
    MburstError
        If ``params`` is not a valid AdExParams, ``synapse_params`` is invalid
        or ``n`` is not a positive int.
    """
    return adex_group(n, params, name=name, method=method, synapse_params=synapse_params, dt=dt)


def som_group(n: int, params: AdExParams = SOM_PARAMS, name: str | None = None, method: str = "euler",
              synapse_params: SynapseParams | None = None, dt=None) -> NeuronGroup:
    """``n`` adapting SOM cells (rheobase 25 pA, a = 0.5 nS, b = 10 pA, tau_w = 500 ms; Payeur et al. 2021).

    Parameters
    ----------
    n : int
        Number of cells.
    params : AdExParams, optional
        Cell parameters; default :data:`SOM_PARAMS`.
    name : str, optional
        Brian2 name (default ``'<params.name>*'``).
    method : str, optional
        Brian2 integration method.
    synapse_params : SynapseParams, optional
        Synaptic time constants and reversals; default :data:`SYNAPSE_PARAMS`.
    dt : Quantity (s), optional
        The group's time step (default the default clock's).

    Returns
    -------
    NeuronGroup
        ``n`` cells with ``v`` (V), ``w`` (A), ``g_ampa``, ``g_gaba`` (S), ``I_ext`` (A).

    Raises
    ------
    MburstError
        If ``params`` is not a valid AdExParams, ``synapse_params`` is invalid
        or ``n`` is not a positive int.
    """
    return adex_group(n, params, name=name, method=method, synapse_params=synapse_params, dt=dt)
