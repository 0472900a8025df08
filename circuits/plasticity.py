"""Spiking burst-dependent plasticity (Payeur et al. 2021, Eq. 1 and Methods) on Brian2 synapses.

Rule (reference.md section 3)::

    dW/dt = eta [B_post(t) - Pbar(t) E_post(t)] etilde_pre(t),    W clipped to [w_min, w_max]

``E_post``/``B_post`` are the postsynaptic event and burst trains (sums of
deltas), so a post *event* changes W by ``-eta Pbar etilde_pre`` and a post
*burst* by ``+eta etilde_pre``. ``etilde_pre`` is the presynaptic event trace
``d etilde/dt = -etilde/tau_pre``, ``+1`` per presynaptic event (tau_pre 100 ms).
``Pbar = Bbar/Ebar`` with moving averages ``dEbar/dt = -Ebar/tau_avg`` (+1/tau_avg
per post event) and ``dBbar/dt = -Bbar/tau_avg`` (+1/tau_avg per post burst), in Hz.

All traces are ``(event-driven)``: Brian2 advances them in closed form from the
last update to the current event, so nothing is integrated clock-driven. Each
synapse keeps its own copy of its postsynaptic neuron's averages (identical
for all synapses onto one neuron, because all of them see the same post events).

Optional homeostasis (Payeur et al. 2021, XOR): at each presynaptic event
``W += eta_homeo [(e_min - Ebar)_+ - (Ebar - e_max)_+]`` keeps ``Ebar`` in
``[e_min, e_max]``. An optional ``gate`` (a Brian2 ``TimedArray`` of 0/1 named
in the namespace as ``learning_gate(t)``) switches weight changes on and off
while the averages keep running (the prediction/learning phases of XOR).

Mean-field expectation for stationary Poisson trains (used by the demo/test)::

    <dW/dt> = eta E_post (P - Pbar) E_pre tau_pre

which is burstprop's update with b - bbar = (P - Pbar) E_post and e_pre =
E_pre tau_pre: the weight moves along +(b - bbar) e_pre, i.e. against the
quantity Delta W = -(b - bbar) e_pre that the rate code stores as the gradient.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from brian2 import Hz, Quantity, Synapses, ms, second, siemens

from neurons.common import MburstError
from neurons.params import check_count, check_nonnegative, check_probability, check_quantity
from neurons.synapses import draw_connections

__all__ = ["BurstPlasticityParams", "burst_plastic_synapses", "rate_prediction"]


@dataclass(frozen=True)
class BurstPlasticityParams:
    """Parameters of the spiking burst-dependent rule (Payeur et al. 2021).

    ``eta``: learning rate (3.5e-3 in the single-synapse demo; XOR 8e-3 input to
    hidden, 4e-3 hidden to output); ``tau_pre``: presynaptic event trace (100 ms);
    ``tau_avg``: window of Ebar and Bbar (2-5 s); ``e0``/``p0``: initial Ebar and
    Pbar; ``w_min``/``w_max``: weight bounds ([0, 1]); ``eta_homeo`` (seconds):
    homeostatic rate, 0 = off; ``e_min``/``e_max``: its target band (2-10 Hz).
    """

    eta: float = 3.5e-3
    tau_pre: Quantity = field(default_factory=lambda: 100 * ms)
    tau_avg: Quantity = field(default_factory=lambda: 2 * second)
    e0: Quantity = field(default_factory=lambda: 5 * Hz)
    p0: float = 0.2
    w_min: float = 0.0
    w_max: float = 1.0
    eta_homeo: Quantity = field(default_factory=lambda: 0 * second)
    e_min: Quantity = field(default_factory=lambda: 2 * Hz)
    e_max: Quantity = field(default_factory=lambda: 10 * Hz)

    def validate(self) -> "BurstPlasticityParams":
        o = "BurstPlasticityParams"
        check_nonnegative(o, "eta", self.eta)
        check_quantity(o, "tau_pre", self.tau_pre, second, positive=True)
        check_quantity(o, "tau_avg", self.tau_avg, second, positive=True)
        check_quantity(o, "e0", self.e0, Hz, positive=True)
        check_probability(o, "p0", self.p0)
        lo = float(self.w_min) if isinstance(self.w_min, numbers.Real) else None
        hi = float(self.w_max) if isinstance(self.w_max, numbers.Real) else None
        if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise MburstError(f"{o}: need finite numbers w_min < w_max (got {self.w_min!r}, {self.w_max!r})")
        check_quantity(o, "eta_homeo", self.eta_homeo, second, nonnegative=True)
        check_quantity(o, "e_min", self.e_min, Hz, nonnegative=True)
        check_quantity(o, "e_max", self.e_max, Hz, positive=True)
        if self.e_max < self.e_min:
            raise MburstError(f"{o}: e_max={self.e_max!r} must be >= e_min={self.e_min!r}")
        return self


def _has_events(group, *names) -> bool:
    return all(n in getattr(group, "events", {}) for n in names)


def burst_plastic_synapses(pre, post, params: BurstPlasticityParams | None = None, *,
                           target_var: str | None = None, g_max: Quantity | None = None,
                           transmit: str = "event", w_offset: float = 0.0, p: float = 1.0, i=None, j=None,
                           w_init=None, gate=None, name: str | None = None) -> Synapses:
    """Plastic synapses from ``pre`` to ``post`` under the burst-dependent rule (Payeur et al. 2021, Eq. 1).

    Variables: ``w``, ``etr`` (etilde_pre), ``Ebar``, ``Bbar`` (Hz); ``Pbar = Bbar/Ebar``.

    Parameters
    ----------
    pre : NeuronGroup
        Needs an online ``'event'`` event (:func:`neurons.pyramidal.pyramidal_group`,
        :mod:`circuits.burst_sources`).
    post : NeuronGroup
        Needs online ``'event'`` and ``'burst'`` events.
    params : BurstPlasticityParams, optional
        Rule parameters (default ``BurstPlasticityParams()``).
    target_var : str, optional
        The post variable incremented by ``(w - w_offset) * g_max`` on each transmitted
        presynaptic ``transmit``; ``None`` (or ``g_max`` None or 0) makes the synapse
        silent (a pure plasticity probe).
    g_max : Quantity, optional
        Has the variable's unit (a conductance, S, or a current, A, for current-based inputs); >= 0.
    transmit : {'event', 'spike'}, optional
        What a presynaptic cell transmits.
    w_offset : float, optional
        ``w_offset > 0`` lets a bounded weight act with either sign: it equals a plastic
        excitatory synapse plus a fixed inhibitory one of strength ``w_offset * g_max``.
    p : float, optional
        Connection probability (when ``i``, ``j`` are None).
    i, j : array_like of int, shape (n_synapses,), optional
        Explicit presynaptic and postsynaptic indices.
    w_init : float, array_like of shape (n_synapses,) or str, optional
        Initial weights (number, array, or a Brian2 string expression such as
        ``'rand()'``); default 0.5 * (w_min + w_max).
    gate : TimedArray, optional
        0/1 over time, switching weight changes on/off.
    name : str, optional
        Brian2 name.

    Returns
    -------
    Synapses

    Raises
    ------
    MburstError
        If ``params`` is invalid, ``pre``/``post`` lack the online events,
        ``transmit`` is unknown, ``p`` is not in [0, 1], only one of ``i``/``j``
        is given, ``post`` has no ``target_var``, ``g_max`` has the wrong unit or
        sign, or ``w_offset`` is not finite.
    """
    params = (params or BurstPlasticityParams()).validate()
    if not _has_events(pre, "event"):
        raise MburstError(f"burst_plastic_synapses: pre={pre.name!r} has no online 'event' detection")
    if not _has_events(post, "event", "burst"):
        raise MburstError(f"burst_plastic_synapses: post={post.name!r} has no online 'event'/'burst' detection")
    if transmit not in ("event", "spike"):
        raise MburstError(f"burst_plastic_synapses: transmit={transmit!r}; expected 'event' or 'spike'")
    if i is None:
        check_probability("burst_plastic_synapses", "p", p)
    if (i is None) != (j is None):
        raise MburstError("burst_plastic_synapses: give both i and j, or neither")
    silent = target_var is None or g_max is None or float(np.asarray(g_max)) == 0.0
    if not silent:
        if target_var not in post.variables:
            raise MburstError(f"burst_plastic_synapses: post={post.name!r} has no variable {target_var!r}")
        unit = post.variables[target_var].dim
        if not isinstance(g_max, Quantity) or g_max.dim is not unit or not float(np.asarray(g_max)) >= 0:
            raise MburstError(f"burst_plastic_synapses: g_max={g_max!r} must be >= 0 with the unit of "
                              f"{post.name}.{target_var}")
    w_offset = float(w_offset)
    if not math.isfinite(w_offset):
        raise MburstError(f"burst_plastic_synapses: w_offset={w_offset!r} must be finite")

    g = "learning_gate(t)" if gate is not None else "1"
    model = """
    w : 1
    detr/dt = -etr/tau_pre : 1 (event-driven)
    dEbar/dt = -Ebar/tau_avg : Hz (event-driven)
    dBbar/dt = -Bbar/tau_avg : Hz (event-driven)
    Pbar = Bbar/(Ebar + 1e-9*Hz) : 1
    """
    homeo = ""
    if float(params.eta_homeo / second) > 0:
        homeo = (f"\nw = clip(w + {g}*eta_homeo*(int(Ebar < e_min)*(e_min - Ebar) "
                 "- int(Ebar > e_max)*(Ebar - e_max)), w_min, w_max)")
    pre_trace = "etr += 1" + homeo
    on_pre = {}
    on_event = {}
    if silent:
        on_pre["pre"] = pre_trace
        on_event["pre"] = "event"
    elif transmit == "event":
        on_pre["pre"] = f"{target_var}_post += (w - w_offset)*g_max\n" + pre_trace
        on_event["pre"] = "event"
    else:
        on_pre["pre_transmit"] = f"{target_var}_post += (w - w_offset)*g_max"
        on_event["pre_transmit"] = "spike"
        on_pre["pre"] = pre_trace
        on_event["pre"] = "event"
    on_post = {
        "post_event": f"w = clip(w - {g}*eta*Pbar*etr, w_min, w_max)\nEbar += 1/tau_avg",
        "post_burst": f"w = clip(w + {g}*eta*etr, w_min, w_max)\nBbar += 1/tau_avg",
    }
    on_event.update({"post_event": "event", "post_burst": "burst"})
    namespace = dict(tau_pre=params.tau_pre, tau_avg=params.tau_avg, eta=float(params.eta),
                     w_min=float(params.w_min), w_max=float(params.w_max), eta_homeo=params.eta_homeo,
                     e_min=params.e_min, e_max=params.e_max, w_offset=w_offset,
                     g_max=g_max if not silent else 0 * siemens)
    if gate is not None:
        namespace["learning_gate"] = gate
    syn = Synapses(pre, post, model=model, on_pre=on_pre, on_post=on_post, on_event=on_event,
                   namespace=namespace, name=name or f"{pre.name}_to_{post.name}_bdsp*")
    draw_connections(syn, pre, post, p, i, j)
    syn.w = 0.5 * (params.w_min + params.w_max) if w_init is None else w_init
    syn.Ebar = params.e0
    syn.Bbar = params.p0 * params.e0
    return syn


def rate_prediction(P, Pbar, E_post, E_pre, tau_pre, eta: float, duration):
    """Expected weight change ``eta E_post (P - Pbar) E_pre tau_pre T`` (see the module docstring).

    Equals ``eta T (b - bbar) e_pre`` with ``b - bbar = (P - Pbar) E_post``, ``e_pre = E_pre tau_pre``.

    Parameters
    ----------
    P, Pbar : float or array_like, broadcastable
        Burst probability and its moving average (dimensionless).
    E_post, E_pre : float (Hz) or array_like, broadcastable
        Post and pre event rates.
    tau_pre : float (s)
        Presynaptic trace time constant.
    eta : float
        Learning rate.
    duration : float (s)
        Time T.

    Returns
    -------
    numpy.ndarray of float, broadcast shape
        Weight change (dimensionless, in weight units).
    """
    return (eta * np.asarray(E_post, float) * (np.asarray(P, float) - np.asarray(Pbar, float))
            * np.asarray(E_pre, float) * float(tau_pre) * float(duration))


def plasticity_curve(p_values=tuple(np.round(np.linspace(0.0, 0.5, 11), 3)), *, pbar0: float = 0.2,
                     e_post=10 * Hz, e_pre=10 * Hz, n_post_per_level: int = 20, n_pre: int = 40,
                     duration=10 * second, params: BurstPlasticityParams | None = None, seed: int = 0,
                     target: str = "numpy", dt=0.1 * ms, progress: bool = False) -> dict:
    """Mean weight change against the postsynaptic burst probability P (the rule's defining property).

    ``n_pre`` presynaptic and ``len(p_values) * n_post_per_level`` postsynaptic
    :func:`~circuits.burst_sources.event_source_group` units fire Poisson events at
    fixed rates ``e_pre`` / ``e_post``; post units of level k burst with probability
    ``p_values[k]``. All-to-all silent plastic synapses start at w = 0.5 with the
    averages at ``Ebar = e_post``, ``Pbar = pbar0`` (the history the cell had). After
    ``duration`` the mean dW per level is compared with :func:`rate_prediction`, where
    Pbar relaxes from pbar0 to P with ``tau_avg`` (so the effective duration is
    ``tau_avg (1 - exp(-T/tau_avg))``) and E, P, E_pre are the measured rates.

    Parameters
    ----------
    p_values : sequence of float, shape (n_levels,), n_levels >= 2, optional
        Burst probabilities in [0, 1] of the post levels.
    pbar0 : float, optional
        Initial Pbar.
    e_post, e_pre : Quantity (Hz), optional
        Post and pre event rates.
    n_post_per_level, n_pre : int, optional
        Post cells per level; pre cells.
    duration : Quantity (s), optional
        Simulated time T.
    params : BurstPlasticityParams, optional
        Rule parameters (default eta 3.5e-3).
    seed : int, optional
        Seed of Brian2 and numpy.
    target : str, optional
        Brian2 target (see :func:`neurons.device.use_target`).
    dt : Quantity (s), optional
        Time step.
    progress : bool, optional
        Text progress report.

    Returns
    -------
    dict
        Arrays of shape (n_levels,): ``p_nominal, p_measured, e_post_measured`` (Hz),
        ``dw_mean, dw_sem, dw_predicted``; scalars ``corr``, ``corr_with_gradient``,
        ``slope``, ``e_pre_measured`` (Hz), ``pbar0``, ``duration_s``, ``t_eff_s``,
        ``n_synapses``, ``eta``, ``tau_avg_s``, ``tau_pre_s``.

    Raises
    ------
    MburstError
        If ``params`` is invalid, ``p_values`` are not >= 2 probabilities,
        ``pbar0`` is not in [0, 1], a count is < 1, ``duration`` is not a
        positive time, or the target is unavailable.
    """
    from brian2 import Network, defaultclock, seed as brian_seed

    from neurons.device import use_target

    from .burst_sources import event_source_group

    params = (params or BurstPlasticityParams(eta=3.5e-3)).validate()
    p_values = np.asarray(p_values, dtype=float)
    if p_values.ndim != 1 or p_values.size < 2 or np.any((p_values < 0) | (p_values > 1)):
        raise MburstError(f"plasticity_curve: p_values={p_values.tolist()!r} must be >= 2 probabilities in [0, 1]")
    check_probability("plasticity_curve", "pbar0", pbar0)
    check_count("plasticity_curve", "n_post_per_level", n_post_per_level)
    check_count("plasticity_curve", "n_pre", n_pre)
    check_quantity("plasticity_curve", "duration", duration * 1.0, second, positive=True)

    use_target(target, tag="circuits_plasticity_curve")
    defaultclock.dt = dt
    brian_seed(seed)
    np.random.seed(seed)
    n_levels = len(p_values)
    n_post = n_levels * n_post_per_level
    pre = event_source_group(n_pre, rate=e_pre, p_burst=0.2, name="bdsp_pre")
    post = event_source_group(n_post, rate=e_post, p_burst=0.0, name="bdsp_post")
    level = np.repeat(np.arange(n_levels), n_post_per_level)
    post.p_burst = p_values[level]
    params_run = BurstPlasticityParams(**{**params.__dict__, "e0": e_post, "p0": pbar0})
    syn = burst_plastic_synapses(pre, post, params_run, p=1.0, name="bdsp_probe")
    net = Network(pre, post, syn)
    net.run(duration, report="text" if progress else None, namespace={})

    w = np.asarray(syn.w[:], float)
    post_j = np.asarray(syn.j[:], int)
    dw = w - 0.5 * (params.w_min + params.w_max)
    T = float(duration / second)
    n_ev = np.asarray(post.n_events[:], float)
    n_b = np.asarray(post.n_bursts[:], float)
    e_pre_meas = float(np.sum(pre.n_events[:])) / (n_pre * T)
    dw_mean = np.array([dw[level[post_j] == k].mean() for k in range(n_levels)])
    # The SEM runs over post cells (synapses onto one cell share its post train).
    per_cell = np.array([dw[post_j == c].mean() for c in range(n_post)])
    dw_sem = np.array([per_cell[level == k].std(ddof=1) / np.sqrt(n_post_per_level) for k in range(n_levels)])
    e_meas = np.array([n_ev[level == k].sum() / (n_post_per_level * T) for k in range(n_levels)])
    p_meas = np.array([n_b[level == k].sum() / max(n_ev[level == k].sum(), 1.0) for k in range(n_levels)])
    tau_avg = float(params.tau_avg / second)
    t_eff = tau_avg * (1.0 - np.exp(-T / tau_avg))
    pred = rate_prediction(p_meas, pbar0, e_meas, e_pre_meas, float(params.tau_pre / second), params.eta, t_eff)
    corr = float(np.corrcoef(dw_mean, pred)[0, 1])
    slope = float(np.polyfit(pred, dw_mean, 1)[0])
    return dict(p_nominal=p_values, p_measured=p_meas, e_post_measured=e_meas, dw_mean=dw_mean, dw_sem=dw_sem,
                dw_predicted=pred, corr=corr, corr_with_gradient=-corr, slope=slope, e_pre_measured=e_pre_meas,
                pbar0=pbar0, duration_s=T, t_eff_s=t_eff, n_synapses=int(len(w)), eta=params.eta,
                tau_avg_s=tau_avg, tau_pre_s=float(params.tau_pre / second))
