"""External inputs: Poisson background conductances and injected currents.

Background (Payeur et al. 2021, Fig. 3 microcircuit): every neuron receives an
excitatory and an inhibitory Poisson spike train at 500 Hz; each input spike
increments ``g_ampa`` / ``g_gaba`` of the chosen compartment by its weight
(in leak-conductance units, :class:`neurons.params.BackgroundParams`). As in
Brian2's ``PoissonInput``, the number of input spikes per time step is drawn
from a binomial, ``k ~ Binomial(N, rate*dt)``, and ``g += w k`` in the
``'synapses'`` slot, so no spike generator group or synapse object is needed.
:class:`PoissonBackground` does this for *all* the inputs of one group in a
single code object (one loop over the neurons, and one OpenMP parallel region
per time step instead of one per input and receptor: with 2 threads every
extra region is an extra fork/join barrier per step).
"""
from __future__ import annotations

import numpy as np
from brian2 import Hz, Quantity, amp, siemens
from brian2.core.variables import Variables
from brian2.groups.group import CodeRunner
from brian2.input.binomial import BinomialFunction
from brian2.units.fundamentalunits import DIMENSIONLESS, get_dimensions

from .common import MburstError
from .params import BackgroundParams, check_quantity
from .synapses import is_pyramidal, synaptic_weight, target_variable

__all__ = ["PoissonBackground", "poisson_background", "payeur_background", "inject_current"]


class PoissonBackground(CodeRunner):
    """Independent Poisson inputs onto several variables of one group, in one code object.

    ``terms``: ``(variable, n_inputs, rate, weight)`` tuples. At every time step and
    for every neuron and term, ``variable += weight * Binomial(n_inputs, rate*dt)``
    (independent draws), in the ``when`` slot (default ``'synapses'``, as Brian2's
    ``PoissonInput``, of which this is the multi-variable form).

    Single inputs (``n_inputs == 1``, the Payeur background) are Bernoulli(p = rate dt)
    draws, and all of a neuron's Bernoulli draws of one step come from **one** uniform
    number by recycling it (Devroye 1986, "Non-Uniform Random Variate Generation",
    ch. 2): with ``U ~ U[0, 1)``, ``k = [U < p]`` is Bernoulli(p), and given ``k``,
    ``U' = U/p`` (``k = 1``) or ``(U - p)/(1 - p)`` (``k = 0``) is again uniform on [0, 1)
    and independent of ``k``; so the next term uses ``U'``. The joint law is exactly
    that of independent draws (each recycling step costs at most log2(1/p) of U's 53
    bits: 4.3 bits per input spike at 500 Hz and 0.1 ms), and the random-number work
    per neuron and step is one uniform instead of one per input: the background was
    about half of the benchmark network's simulation time. ``n_inputs > 1`` uses
    Brian2's ``BinomialFunction`` (one per term).
    """

    def __init__(self, target, terms, when: str = "synapses", order: int = 0, name: str = "poissonbackground*"):
        if not terms:
            raise MburstError(f"PoissonBackground: no inputs given for group {target.name!r}")
        lines, functions, constants = [], [], []
        for k, (var, n_inputs, rate, weight) in enumerate(terms):
            if var not in target.variables:
                raise MburstError(f"PoissonBackground: group {target.name!r} has no variable {var!r}")
            dim = target.variables[var].dim
            if get_dimensions(weight) is not dim:
                raise MburstError(f"PoissonBackground: weight={weight!r} has not the unit of {target.name}.{var}")
            p = float(rate * target.clock.dt)
            if not 0.0 <= p <= 1.0:
                raise MburstError(f"PoissonBackground: rate={rate!r} gives rate*dt={p:g} > 1 per input and step; "
                                  "use more inputs at a lower rate")
            # the weight as a constant of full precision (not its printed repr)
            w = f"poissonbackground_weight_{k}"
            constants.append((w, float(np.asarray(weight)), dim))
            if n_inputs > 1:
                binomial = BinomialFunction(n_inputs, p, name="poissonbackground_binomial*")
                functions.append(binomial)
                lines.append(f"{var} += {binomial.name}()*{w}")
                continue
            if p == 0.0:
                continue
            if not any(line.startswith("poissonbackground_u = rand()") for line in lines):
                lines.append("poissonbackground_u = rand()")
            one = DIMENSIONLESS
            constants += [(f"poissonbackground_p_{k}", p, one), (f"poissonbackground_invp_{k}", 1.0 / p, one),
                          (f"poissonbackground_invq_{k}", 1.0 / (1.0 - p) if p < 1.0 else 0.0, one)]
            lines += [f"poissonbackground_k = int(poissonbackground_u < poissonbackground_p_{k})",
                      f"{var} += poissonbackground_k*{w}",
                      # recycle: U/p if k else (U - p)/(1 - p)
                      f"poissonbackground_u = (poissonbackground_u - poissonbackground_p_{k}*(1 - poissonbackground_k))"
                      f" * (poissonbackground_k*poissonbackground_invp_{k}"
                      f" + (1 - poissonbackground_k)*poissonbackground_invq_{k})"]
        if not lines:
            raise MburstError(f"PoissonBackground: every input to {target.name!r} has rate 0")
        recycles = [i for i, line in enumerate(lines) if line.startswith("poissonbackground_u = (")]
        if recycles and not any(line.startswith("poissonbackground_k") for line in lines[recycles[-1]:]):
            del lines[recycles[-1]]  # no Bernoulli term after it: nothing left to recycle for
        self.terms = tuple(terms)
        self._stored_dt = target.dt_[:]
        self._group = target
        CodeRunner.__init__(self, group=target, template="stateupdate", code="\n".join(lines), user_code="",
                            when=when, order=order, name=name, clock=target.clock)
        self.variables = Variables(self)
        for function in functions:
            self.variables._add_variable(function.name, function)
        for name, value, dim in constants:
            self.variables.add_constant(name, value, dimensions=dim)

    def before_run(self, run_namespace):
        """Check that the group's dt is unchanged, then prepare the code object.

        Parameters
        ----------
        run_namespace : dict
            Brian2's namespace of the run.

        Raises
        ------
        MburstError
            If the group's dt changed after the background was created.
        """
        if self._group.dt_ != self._stored_dt:
            raise MburstError(f"PoissonBackground: the dt of {self._group.name!r} changed after its background "
                              "was created; create the background after setting dt")
        CodeRunner.before_run(self, run_namespace=run_namespace)


def _background_terms(group, rate: Quantity, w_exc, w_inh, target: str, n_inputs: int) -> list:
    terms = []
    for receptor, weight in (("ampa", w_exc), ("gaba", w_inh)):
        var = target_variable(group, target, receptor)
        w = synaptic_weight(group, target, weight)
        if float(w / siemens) != 0.0 and float(rate / Hz) != 0.0:
            terms.append((var, n_inputs, rate, w))
    return terms


def poisson_background(group, rate: Quantity = 500 * Hz, w_exc: float = 0.35, w_inh: float = 0.35,
                       target: str = "soma", n_inputs: int = 1) -> list:
    """Excitatory + inhibitory Poisson conductance input to ``group``'s ``target`` compartment.

    Parameters
    ----------
    group : NeuronGroup
        Pyramidal or AdEx group.
    rate : Quantity (Hz), optional
        Rate of each of the ``n_inputs`` independent trains per neuron and receptor.
    w_exc, w_inh : float or Quantity (S), optional
        Increments in leak units of the target (or conductances).
    target : {'soma', 'dendrite'}, optional
        Compartment.
    n_inputs : int, optional
        Independent trains per neuron and receptor.

    Returns
    -------
    list of PoissonBackground
        One :class:`PoissonBackground` (empty if the rate or both weights are 0);
        add it to your ``Network``.

    Raises
    ------
    MburstError
        If ``rate`` is not a non-negative frequency, ``n_inputs`` is not a
        positive int, the target/weights are invalid (see
        :func:`neurons.synapses.synaptic_weight`) or ``rate*dt > 1``.
    """
    check_quantity("poisson_background", "rate", rate, Hz, nonnegative=True)
    if not isinstance(n_inputs, int) or isinstance(n_inputs, bool) or n_inputs < 1:
        raise MburstError(f"poisson_background: n_inputs={n_inputs!r} must be a positive integer")
    terms = _background_terms(group, rate, w_exc, w_inh, target, n_inputs)
    return [PoissonBackground(group, terms)] if terms else []


def payeur_background(group, kind: str, params: BackgroundParams | None = None) -> list:
    """The Payeur et al. 2021 (Fig. 3) background for ``kind`` in {'pyramidal', 'pv', 'som'}.

    Parameters
    ----------
    group : NeuronGroup
        The group (a pyramidal_group for ``kind='pyramidal'``).
    kind : {'pyramidal', 'pv', 'som'}
        Cell type; pyramidal cells get soma and dendrite inputs, E and I.
    params : BackgroundParams, optional
        Rate (Hz) and weights (leak units); default :class:`BackgroundParams`.

    Returns
    -------
    list of PoissonBackground
        One :class:`PoissonBackground` holding all of the group's inputs (empty
        if all rates/weights are 0).

    Raises
    ------
    MburstError
        If ``params`` is invalid, ``kind`` is unknown, or ``kind='pyramidal'``
        and ``group`` is not a pyramidal group.
    """
    params = (params or BackgroundParams()).validate()
    if kind == "pyramidal":
        if not is_pyramidal(group):
            raise MburstError(f"payeur_background: group {group.name!r} is not a pyramidal_group")
        terms = (_background_terms(group, params.rate, *params.pyr_soma, "soma", 1)
                 + _background_terms(group, params.rate, *params.pyr_dendrite, "dendrite", 1))
    elif kind in ("pv", "som"):
        terms = _background_terms(group, params.rate, *getattr(params, kind), "soma", 1)
    else:
        raise MburstError(f"payeur_background: kind={kind!r}; expected 'pyramidal', 'pv' or 'som'")
    return [PoissonBackground(group, terms)] if terms else []


def inject_current(group, current, target: str = "soma") -> None:
    """Set the injected current of ``group`` (scalar or one value per neuron, in amperes).

    Pyramidal cells: ``target`` 'soma' -> ``I_ext_s``, 'dendrite' -> ``I_ext_d``;
    interneurons: ``I_ext`` (soma only).

    Parameters
    ----------
    group : NeuronGroup
        Pyramidal or AdEx group.
    current : Quantity (A), scalar or shape (n_neurons,)
        The current; a plain 0 is accepted.
    target : {'soma', 'dendrite'}, optional
        Compartment.

    Raises
    ------
    MburstError
        If ``target`` is invalid for the group, ``current`` is not in amperes
        (or unitless and non-zero), has the wrong shape or is not finite.
    """
    if is_pyramidal(group):
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
