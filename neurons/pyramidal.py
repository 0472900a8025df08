"""Two-compartment pyramidal cell with online event/burst detection (Brian2).

Model of Payeur et al. (2021, Nat. Neurosci., Methods "Spiking model") after
Naud & Sprekeler (2018, PNAS), ported from Auryn to Brian2. Parameters:
:class:`neurons.params.PyramidalParams`. Equations (SI units, currents in A)::

    C_s dv_s/dt = -gL_s (v_s - E_L) + g_s f(v_d) + w_s + I_syn,s + I_ext,s
    C_d dv_d/dt = -gL_d (v_d - E_L) + g_d f(v_d) + w_d + c K(t) + I_syn,d + I_ext,d
    f(v_d)      = 1 / (1 + exp(-(v_d - E_d)/D))            (regenerative plateau)
    tau_ws dw_s/dt = -w_s,            w_s += b_w at each somatic spike
    tau_wd dw_d/dt = -w_d + a_w (v_d - E_L)
    K(t) = 1 for the 2 ms (20 steps of 0.1 ms) after a somatic spike (backpropagating AP box)
    I_syn,x = g_ampa_x (E_exc - v_x) + g_gaba_x (E_inh - v_x),  dg/dt = -g/tau

Spike: v_s > theta; reset v_s <- E_L, theta += 2 mV (dynamic threshold relaxing
to -50 mV with 27 ms; ``threshold_mode='fixed'`` uses -50 mV and refractoriness).

Events and bursts (16 ms rule, Payeur et al. 2021): a spike whose preceding
ISI is >= 16 ms (or the first spike) starts an *event*; the second spike of an
event (ISI < 16 ms) makes the event a *burst*; later spikes of the run belong
to the same burst. Because spike times lie on the dt grid, "ISI >= 16 ms" is
evaluated as ``t - t_last > burst_isi - dt/2`` (exact for on-grid times).
Custom Brian2 events ``'event'`` and ``'burst'`` fire in the same time step as
the spike, so synapses can use ``on_event={'pre': 'event'}`` (see
:func:`neurons.synapses.connect`). Counters ``n_spikes``, ``n_events`` and
``n_bursts`` accumulate per neuron.
"""
from __future__ import annotations

from collections.abc import Mapping

from brian2 import Equations, NeuronGroup, second
from brian2.equations.equations import PARAMETER

from .common import MburstError
from .params import SYNAPSE_PARAMS, PyramidalParams, SynapseParams

__all__ = ["pyramidal_group", "PYRAMIDAL_EQUATIONS", "COMPARTMENT_INPUT_EQUATIONS", "PYRAMIDAL_RESET",
           "pyramidal_equations"]

COMPARTMENT_INPUT_EQUATIONS = """
I_syn_s = g_ampa_s*(E_exc - v_s) + g_gaba_s*(E_inh - v_s) : amp
I_syn_d = g_ampa_d*(E_exc - v_d) + g_gaba_d*(E_inh - v_d) : amp
dg_ampa_s/dt = -g_ampa_s/tau_ampa : siemens
dg_gaba_s/dt = -g_gaba_s/tau_gaba : siemens
dg_ampa_d/dt = -g_ampa_d/tau_ampa : siemens
dg_gaba_d/dt = -g_gaba_d/tau_gaba : siemens
I_ext_s : amp
I_ext_d : amp
"""
"""Inputs of a soma (v_s) and dendrite (v_d) pair: AMPA/GABA conductances per compartment
(``dg/dt = -g/tau``, ``I_syn = g (E - v)``) and external currents ``I_ext_s``, ``I_ext_d``.
Shared by the pyramidal cell and :mod:`circuits.burst_sources`; no braces (safe for ``str.format``)."""

PYRAMIDAL_EQUATIONS = """
dv_s/dt = (-gL_s*(v_s - E_L) + g_s*f_d + w_s + I_syn_s + I_ext_s) / C_s : volt {unless}
dv_d/dt = (-gL_d*(v_d - E_L) + g_d*f_d + w_d + c*K + I_syn_d + I_ext_d) / C_d : volt
f_d = 1/(1 + exp(-(v_d - E_d)/D)) : 1
K = int(t - t_spike < bap_duration + 0.5*dt) : 1
dw_s/dt = -w_s/tau_ws : amp
dw_d/dt = (-w_d + a_w*(v_d - E_L))/tau_wd : amp
dtheta/dt = (theta_0 - theta)/tau_theta : volt""" + COMPARTMENT_INPUT_EQUATIONS + """t_spike : second
in_burst : 1
n_spikes : 1
n_events : 1
n_bursts : 1
"""

PYRAMIDAL_RESET = """
is_new = int(t - t_spike > burst_isi - 0.5*dt)
n_events += is_new
n_bursts += (1 - is_new)*(1 - in_burst)
in_burst = 1 - is_new
n_spikes += 1
t_spike = t
v_s = E_L
w_s += b_w
theta += theta_jump
"""


"""Reset of a somatic spike (Brian2 code): the 16 ms event/burst bookkeeping, evaluated with the state
*before* the update (``t_spike`` is the previous spike), then ``v_s <- E_L``, ``w_s += b_w`` and
``theta += theta_jump`` (Payeur et al. 2021, Methods)."""


def pyramidal_equations(params: PyramidalParams, extra: Equations | str | None = None,
                        substitutions: Mapping | None = None) -> Equations:
    """The cell's Brian2 equations (:data:`PYRAMIDAL_EQUATIONS`), optionally extended.

    Parameters
    ----------
    params : PyramidalParams
        Only ``threshold_mode`` is read: ``v_s`` is clamped during refractoriness in ``'fixed'`` mode.
    extra : brian2.Equations or str, optional
        Equations added to the cell's. A *parameter* of the cell (e.g. ``I_ext_s : amp``) that
        ``extra`` defines is replaced by that definition, so ``extra`` can turn an external
        current into a subexpression (``I_ext_s = i_in(t, unit) + I_off : amp``) with new
        parameters of its own.
    substitutions : mapping, optional
        Brian2's ``Equations(eqs, name=replacement)`` substitutions, applied to the cell's
        equations before ``extra`` is added: a string renames a variable or external constant, a
        quantity replaces an external constant by its value (e.g. ``{"tau_ws": 50 * ms}``).

    Returns
    -------
    brian2.Equations
        The model for a ``NeuronGroup`` (with :data:`PYRAMIDAL_RESET` and threshold ``v_s > theta``).

    Raises
    ------
    MburstError
        When ``extra`` redefines a differential equation or subexpression of the cell (only
        parameters can be replaced).
    """
    unless = "(unless refractory)" if params.threshold_mode == "fixed" else ""
    eqs = Equations(PYRAMIDAL_EQUATIONS.format(unless=unless), **dict(substitutions or {}))
    if extra is None:
        return eqs
    extra = extra if isinstance(extra, Equations) else Equations(extra)
    fixed = sorted(name for name in extra if name in eqs and eqs[name].type != PARAMETER)
    if fixed:
        raise MburstError(f"pyramidal_equations: extra equations redefine {', '.join(fixed)}, which the cell "
                          "integrates or computes (only its parameters can be replaced)")
    return Equations([eq for name, eq in eqs.items() if name not in extra] + list(extra.values()))


def pyramidal_group(n: int, params: PyramidalParams | None = None, name: str | None = None,
                    method: str = "euler", synapse_params: SynapseParams | None = None,
                    dt=None, online_events: bool = True, extra: Equations | str | None = None,
                    substitutions: Mapping | None = None, events: Mapping | None = None,
                    namespace: Mapping | None = None) -> NeuronGroup:
    """``n`` two-compartment pyramidal cells in a Brian2 ``NeuronGroup``.

    Variables: ``v_s, v_d, w_s, w_d, theta``; conductances ``g_ampa_s, g_gaba_s,
    g_ampa_d, g_gaba_d``; settable currents ``I_ext_s, I_ext_d`` (scalars or per
    neuron); online detection ``t_spike, in_burst`` and counters ``n_spikes,
    n_events, n_bursts``. Custom events ``'event'`` and ``'burst'`` fire in the
    spike's time step. Initial state: rest (E_L), theta = theta_0, no previous
    spike (``t_spike = -1 s``). Equations: module docstring; reset: :data:`PYRAMIDAL_RESET`.

    Parameters
    ----------
    n : int
        Number of cells (>= 1).
    params : PyramidalParams, optional
        Cell parameters (default: Payeur et al. 2021).
    name : str, optional
        Brian2 name of the group (default ``'pyramidal*'``).
    method : str
        Brian2 integration method (forward Euler by default, as Auryn; dt = 0.1 ms keeps it
        accurate for these time constants).
    synapse_params : SynapseParams, optional
        Receptor reversal potentials and time constants of the conductances.
    dt : brian2.Quantity, optional
        Time step of the group (default: the default clock's).
    online_events : bool
        Declare the custom events ``'event'`` and ``'burst'`` (needed by synapses on those
        pathways and by online monitors). Each costs one threshold test per neuron and step
        (about 4 % of the benchmark network's loop), so a network that uses neither can leave
        them out; the counters ``n_events`` and ``n_bursts`` are kept either way.
    extra, substitutions
        Extensions of the equations, see :func:`pyramidal_equations`.
    events : mapping, optional
        More custom events, ``{name: condition}`` (Brian2 code), after ``'event'`` and ``'burst'``.
    namespace : mapping, optional
        More external names for the equations and events (added to the parameters').

    Returns
    -------
    brian2.NeuronGroup
        The cells, threshold ``v_s > theta`` (``and not_refractory`` in ``'fixed'`` mode).

    Raises
    ------
    MburstError
        For invalid parameters, ``n < 1``, or ``extra`` redefining a non-parameter.
    """
    params = (params or PyramidalParams()).validate()
    synapse_params = (synapse_params or SYNAPSE_PARAMS).validate()
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise MburstError(f"pyramidal_group: n={n!r} must be a positive integer")
    ns = params.namespace()
    ns.update(synapse_params.namespace())
    ns.update(namespace or {})
    spike = "v_s > theta"
    is_event = "t - t_spike > burst_isi - 0.5*dt"
    kwargs = {}
    if params.threshold_mode == "fixed":
        spike = "v_s > theta and not_refractory"
        kwargs["refractory"] = params.t_ref
    custom = {}
    if online_events:
        custom = {"event": f"{spike} and {is_event}", "burst": f"{spike} and not ({is_event}) and in_burst < 0.5"}
    custom.update(events or {})
    if custom:
        kwargs["events"] = custom
    group = NeuronGroup(
        n, pyramidal_equations(params, extra, substitutions), threshold=spike, reset=PYRAMIDAL_RESET, method=method,
        namespace=ns, name=name or "pyramidal*", dt=dt, **kwargs,
    )
    group.v_s = params.E_L
    group.v_d = params.E_L
    group.theta = params.theta_0
    group.t_spike = -1 * second
    return group
