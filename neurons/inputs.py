"""External inputs: Poisson background conductances and injected currents.

Background (Payeur et al. 2021, Fig. 3 microcircuit): every neuron receives an
excitatory and an inhibitory Poisson spike train at 500 Hz; each input spike
increments ``g_ampa`` / ``g_gaba`` of the chosen compartment by its weight
(in leak-conductance units, :class:`neurons.params.BackgroundParams`). Brian2's
``PoissonInput`` draws the number of input spikes per time step from a
binomial, so no spike generator group or synapse object is needed.
"""
from __future__ import annotations

import numpy as np
from brian2 import Hz, PoissonInput, Quantity, amp, siemens

from .common import MburstError
from .params import BackgroundParams, check_quantity
from .synapses import _is_pyramidal, _weight, target_variable

__all__ = ["poisson_background", "payeur_background", "inject_current"]


def poisson_background(group, rate: Quantity = 500 * Hz, w_exc: float = 0.35, w_inh: float = 0.35,
                       target: str = "soma", n_inputs: int = 1) -> list:
    """Excitatory + inhibitory Poisson conductance input to ``group``'s ``target`` compartment.

    ``rate``: rate of each of the ``n_inputs`` independent trains per neuron and receptor;
    ``w_exc``/``w_inh``: increments in leak units of the target (or conductances).
    Returns the ``PoissonInput`` objects (add them to your ``Network``).
    """
    check_quantity("poisson_background", "rate", rate, Hz, nonnegative=True)
    if not isinstance(n_inputs, int) or n_inputs < 1:
        raise MburstError(f"poisson_background: n_inputs={n_inputs!r} must be a positive integer")
    inputs = []
    for receptor, weight in (("ampa", w_exc), ("gaba", w_inh)):
        var = target_variable(group, target, receptor)
        w = _weight(group, target, weight)
        if float(w / siemens) == 0.0:
            continue
        inputs.append(PoissonInput(group, var, N=n_inputs, rate=rate, weight=w))
    return inputs


def payeur_background(group, kind: str, params: BackgroundParams | None = None) -> list:
    """The Payeur et al. background for ``kind`` in {'pyramidal', 'pv', 'som'}."""
    params = (params or BackgroundParams()).validate()
    if kind == "pyramidal":
        if not _is_pyramidal(group):
            raise MburstError(f"payeur_background: group {group.name!r} is not a pyramidal_group")
        return (poisson_background(group, params.rate, *params.pyr_soma, target="soma")
                + poisson_background(group, params.rate, *params.pyr_dendrite, target="dendrite"))
    if kind in ("pv", "som"):
        return poisson_background(group, params.rate, *getattr(params, kind), target="soma")
    raise MburstError(f"payeur_background: kind={kind!r}; expected 'pyramidal', 'pv' or 'som'")


def inject_current(group, current, target: str = "soma") -> None:
    """Set the injected current of ``group`` (scalar or one value per neuron, in amperes).

    Pyramidal cells: ``target`` 'soma' -> ``I_ext_s``, 'dendrite' -> ``I_ext_d``;
    interneurons: ``I_ext`` (soma only).
    """
    if _is_pyramidal(group):
        if target not in ("soma", "dendrite"):
            raise MburstError(f"inject_current: target={target!r}; expected 'soma' or 'dendrite'")
        var = "I_ext_s" if target == "soma" else "I_ext_d"
    elif target == "soma" and "I_ext" in group.variables:
        var = "I_ext"
    else:
        raise MburstError(f"inject_current: group {group.name!r} has no {target!r} current input")
    if isinstance(current, Quantity) and not current.is_dimensionless:
        if current.dim is not amp.dim:
            raise MburstError(f"inject_current: current={current!r} must be in amperes")
        values = np.asarray(current / amp, dtype=float)
    else:
        values = np.asarray(current, dtype=float)
        if np.any(values != 0):
            raise MburstError(f"inject_current: current={current!r} has no unit; use e.g. 200*pA")
    if values.ndim > 1 or (values.ndim == 1 and values.size != len(group)):
        raise MburstError(f"inject_current: current has shape {values.shape}; expected a scalar or {len(group)} values")
    if not np.all(np.isfinite(values)):
        raise MburstError("inject_current: current must be finite")
    setattr(group, var, values * amp)
