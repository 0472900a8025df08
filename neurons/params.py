"""Typed, documented parameters of the spiking models (Brian2 quantities).

Every dataclass is frozen and has ``validate()``, which raises a one-line
:class:`~neurons.common.MburstError` naming the parameter when a value has the
wrong unit, the wrong sign, or an unknown option. The group/synapse builders
call ``validate()`` before any Brian2 object exists, so no bad model ever
reaches code generation.

Sources (numbers in ``../shared/design/reference.md`` section 3):
Payeur, Guerguiev, Zenke, Richards & Naud (2021) "Burst-dependent synaptic
plasticity can coordinate learning in hierarchical circuits", Nat. Neurosci.
24:1010; Naud & Sprekeler (2018) "Sparse bursts optimize information
transmission in a multiplexed neural code", PNAS 115:E6329.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

from brian2 import Hz, Quantity, amp, farad, mV, ms, nS, pA, pF, second, siemens, volt
from brian2.units.fundamentalunits import DimensionMismatchError, get_dimensions

from .common import MburstError

__all__ = [
    "PyramidalParams", "TwoCompartmentLeak", "AdExParams", "PV_PARAMS", "SOM_PARAMS", "STPParams", "STD", "STF",
    "SynapseParams", "SYNAPSE_PARAMS", "BackgroundParams", "COMPARTMENTS", "RECEPTORS", "PATHWAYS",
    "check_quantity", "check_count", "check_probability", "check_nonnegative",
]

COMPARTMENTS = ("soma", "dendrite")
RECEPTORS = ("ampa", "gaba")
PATHWAYS = ("spike", "event", "burst")


def _q(value: Quantity):
    """A dataclass default for a quantity (quantities are arrays, hence 'mutable' to dataclasses)."""
    return field(default_factory=lambda: value)


def check_quantity(owner: str, name: str, value, unit, *, positive: bool = False,
                   nonnegative: bool = False) -> None:
    """Raise :class:`MburstError` unless ``value`` is a scalar with the dimensions of ``unit``.

    Parameters
    ----------
    owner, name : str
        Object and parameter named in the error message.
    value, unit : Quantity
        The value, and a Brian2 unit with the expected dimensions (e.g. ``mV``).
    positive, nonnegative : bool, optional
        Add a sign check.

    Raises
    ------
    MburstError
        If ``value`` has no unit, other dimensions, is not finite or fails the sign check.
    """
    label = f"{owner}.{name}"
    if not isinstance(value, Quantity):
        raise MburstError(f"{label}={value!r} has no unit; expected a quantity in {unit!r} (e.g. 5*{unit!r})")
    try:
        if get_dimensions(value) is not get_dimensions(unit):
            raise DimensionMismatchError("")
    except DimensionMismatchError:
        raise MburstError(f"{label}={value!r} has the wrong unit; expected dimensions of {unit!r}") from None
    magnitude = float(value / unit)
    if not math.isfinite(magnitude):
        raise MburstError(f"{label}={value!r} is not finite")
    if positive and not magnitude > 0:
        raise MburstError(f"{label}={value!r} must be positive")
    if nonnegative and magnitude < 0:
        raise MburstError(f"{label}={value!r} must not be negative")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_count(owner: str, name: str, value) -> int:
    """Return ``value`` if it is an ``int`` >= 1 (``bool`` refused), else raise naming ``owner.name``.

    Parameters
    ----------
    owner, name : str
    value : object

    Returns
    -------
    int

    Raises
    ------
    MburstError
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MburstError(f"{owner}.{name}={value!r} must be an integer >= 1")
    return value


def check_probability(owner: str, name: str, value) -> float:
    """Return ``value`` as float if it is a real number in [0, 1] (not ``bool``), else raise naming ``owner.name``.

    Parameters
    ----------
    owner, name : str
    value : object

    Returns
    -------
    float

    Raises
    ------
    MburstError
    """
    if not _is_real(value) or not 0.0 <= float(value) <= 1.0:
        raise MburstError(f"{owner}.{name}={value!r} must lie in [0, 1]")
    return float(value)


def check_nonnegative(owner: str, name: str, value) -> float:
    """Return ``value`` as float if it is a finite real number >= 0 (not ``bool``), else raise naming ``owner.name``.

    Parameters
    ----------
    owner, name : str
    value : object

    Returns
    -------
    float

    Raises
    ------
    MburstError
    """
    if not _is_real(value) or not math.isfinite(float(value)) or value < 0:
        raise MburstError(f"{owner}.{name}={value!r} must be a finite number >= 0")
    return float(value)


def _check_number(owner: str, name: str, value, lo=None, hi=None) -> None:
    label = f"{owner}.{name}"
    if isinstance(value, Quantity) and not value.is_dimensionless:
        raise MburstError(f"{label}={value!r} must be a plain number")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MburstError(f"{label}={value!r} must be a number") from None
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise MburstError(f"{label}={value!r} must lie in [{lo}, {hi}]")


class TwoCompartmentLeak:
    """Leak conductances of a soma/dendrite pair, for parameter classes with ``C_s, tau_s, C_d, tau_d``."""

    @property
    def gL_s(self) -> Quantity:
        """Somatic leak conductance C_s/tau_s (23.1 nS for the defaults): the unit of somatic weights."""
        return self.C_s / self.tau_s

    @property
    def gL_d(self) -> Quantity:
        """Dendritic leak conductance C_d/tau_d (24.3 nS for the defaults): the unit of dendritic weights."""
        return self.C_d / self.tau_d


@dataclass(frozen=True)
class PyramidalParams(TwoCompartmentLeak):
    """Two-compartment pyramidal cell (Payeur et al. 2021, Methods; Naud & Sprekeler 2018).

    Equations (currents in amperes, see :mod:`neurons.pyramidal`)::

        C_s dv_s/dt = -gL_s (v_s - E_L) + g_s f(v_d) + w_s + I_syn,s + I_ext,s
        C_d dv_d/dt = -gL_d (v_d - E_L) + g_d f(v_d) + w_d + c K(t) + I_syn,d + I_ext,d
        f(v) = 1 / (1 + exp(-(v - E_d)/D)),   gL_s = C_s/tau_s,  gL_d = C_d/tau_d
        tau_ws dw_s/dt = -w_s                  (w_s += b_w at a spike)
        tau_wd dw_d/dt = -w_d + a_w (v_d - E_L)
        K(t) = 1 for bap_duration after each somatic spike, else 0

    Threshold: ``threshold_mode='dynamic'`` (default, Payeur): spike when
    v_s > theta; theta jumps by ``theta_jump`` (+2 mV) per spike and relaxes to
    ``theta_0`` (-50 mV) with ``tau_theta`` (27 ms); no absolute refractory
    period. ``threshold_mode='fixed'`` (Naud & Sprekeler): theta stays at
    ``theta_0`` and v_s is clamped at E_L for ``t_ref``.
    ``burst_isi``: the 16 ms rule for events and bursts.
    """

    E_L: Quantity = _q(-70 * mV)
    tau_s: Quantity = _q(16 * ms)
    C_s: Quantity = _q(370 * pF)
    g_s: Quantity = _q(1300 * pA)
    tau_ws: Quantity = _q(100 * ms)
    b_w: Quantity = _q(-200 * pA)
    tau_d: Quantity = _q(7 * ms)
    C_d: Quantity = _q(170 * pF)
    g_d: Quantity = _q(1200 * pA)
    tau_wd: Quantity = _q(30 * ms)
    a_w: Quantity = _q(-13 * nS)
    c: Quantity = _q(2600 * pA)
    E_d: Quantity = _q(-38 * mV)
    D: Quantity = _q(6 * mV)
    bap_duration: Quantity = _q(2 * ms)
    threshold_mode: str = "dynamic"
    theta_0: Quantity = _q(-50 * mV)
    theta_jump: Quantity = _q(2 * mV)
    tau_theta: Quantity = _q(27 * ms)
    t_ref: Quantity = _q(3 * ms)
    burst_isi: Quantity = _q(16 * ms)

    def validate(self) -> "PyramidalParams":
        o = "PyramidalParams"
        for name in ("tau_s", "tau_ws", "tau_d", "tau_wd", "tau_theta", "bap_duration", "burst_isi"):
            check_quantity(o, name, getattr(self, name), second, positive=True)
        check_quantity(o, "t_ref", self.t_ref, second, nonnegative=True)
        for name in ("C_s", "C_d"):
            check_quantity(o, name, getattr(self, name), farad, positive=True)
        for name in ("g_s", "g_d", "c"):
            check_quantity(o, name, getattr(self, name), amp, nonnegative=True)
        check_quantity(o, "b_w", self.b_w, amp)
        check_quantity(o, "a_w", self.a_w, siemens)
        for name in ("E_L", "E_d", "theta_0"):
            check_quantity(o, name, getattr(self, name), volt)
        check_quantity(o, "D", self.D, volt, positive=True)
        check_quantity(o, "theta_jump", self.theta_jump, volt, nonnegative=True)
        if self.threshold_mode not in ("dynamic", "fixed"):
            raise MburstError(f"{o}.threshold_mode={self.threshold_mode!r}: expected 'dynamic' or 'fixed'")
        if self.theta_0 <= self.E_L:
            raise MburstError(f"{o}.theta_0={self.theta_0!r} must lie above the reset E_L={self.E_L!r}")
        return self

    def namespace(self) -> dict:
        """The constants as a Brian2 namespace (names as used in the equation strings)."""
        ns = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "threshold_mode"}
        ns.update(gL_s=self.gL_s, gL_d=self.gL_d)
        if self.threshold_mode == "fixed":
            ns["theta_jump"] = 0 * mV
        return ns


@dataclass(frozen=True)
class AdExParams:
    """Adaptive exponential integrate-and-fire interneuron (Brette & Gerstner 2005).

    Equations::

        C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T)/Delta_T) - w + I_syn + I_ext
        tau_w dw/dt = a (v - E_L) - w;  spike when v > V_T + 5 Delta_T:  v <- v_reset, w += b

    Payeur et al. (2021) give g_L, tau_m, Delta_T, a, b, tau_w, reset,
    refractoriness and the rheobase, but not E_L or V_T. We take E_L = -70 mV
    (as the pyramidal cell) and solve V_T from the rheobase of the AdEx
    saddle-node bifurcation (Touboul 2008):
    ``I_rh = (g_L + a) (V_T - E_L - Delta_T + Delta_T ln(1 + a/g_L))``.
    """

    name: str
    g_L: Quantity
    tau_m: Quantity
    Delta_T: Quantity
    a: Quantity
    b: Quantity
    tau_w: Quantity
    v_reset: Quantity
    t_ref: Quantity
    rheobase: Quantity
    E_L: Quantity = _q(-70 * mV)

    @property
    def C(self) -> Quantity:
        """Membrane capacitance g_L * tau_m."""
        return self.g_L * self.tau_m

    @property
    def V_T(self) -> Quantity:
        """Soft threshold solved from the rheobase (see the class docstring)."""
        ratio = float(self.a / self.g_L)
        return (self.E_L + self.Delta_T - self.Delta_T * math.log1p(ratio)
                + self.rheobase / (self.g_L + self.a))

    @property
    def V_cut(self) -> Quantity:
        """Spike detection (numerical cut-off): V_T + 5 Delta_T."""
        return self.V_T + 5 * self.Delta_T

    def validate(self) -> "AdExParams":
        o = f"AdExParams({self.name})"
        check_quantity(o, "g_L", self.g_L, siemens, positive=True)
        check_quantity(o, "a", self.a, siemens, nonnegative=True)
        for name in ("tau_m", "tau_w"):
            check_quantity(o, name, getattr(self, name), second, positive=True)
        check_quantity(o, "t_ref", self.t_ref, second, nonnegative=True)
        check_quantity(o, "Delta_T", self.Delta_T, volt, positive=True)
        check_quantity(o, "b", self.b, amp, nonnegative=True)
        check_quantity(o, "rheobase", self.rheobase, amp, positive=True)
        for name in ("v_reset", "E_L"):
            check_quantity(o, name, getattr(self, name), volt)
        if self.v_reset >= self.V_cut:
            raise MburstError(f"{o}.v_reset={self.v_reset!r} must lie below the spike cut-off {self.V_cut!r}")
        return self

    def namespace(self) -> dict:
        return dict(g_L=self.g_L, C=self.C, E_L=self.E_L, Delta_T=self.Delta_T, V_T=self.V_T,
                    V_cut=self.V_cut, a=self.a, b=self.b, tau_w=self.tau_w, v_reset=self.v_reset)


PV_PARAMS = AdExParams(name="PV", g_L=10 * nS, tau_m=10 * ms, Delta_T=2 * mV, a=0 * nS, b=0 * pA,
                       tau_w=100 * ms, v_reset=-55 * mV, t_ref=1 * ms, rheobase=200 * pA)
"""PV (fast-spiking, non-adapting) basket cell of Payeur et al. 2021 (a = b = 0, so tau_w is unused)."""

SOM_PARAMS = AdExParams(name="SOM", g_L=5 * nS, tau_m=20 * ms, Delta_T=4 * mV, a=0.5 * nS, b=10 * pA,
                        tau_w=500 * ms, v_reset=-65 * mV, t_ref=2 * ms, rheobase=25 * pA)
"""SOM (Martinotti, adapting) cell of Payeur et al. 2021."""


@dataclass(frozen=True)
class STPParams:
    """Tsodyks-Markram short-term plasticity (Tsodyks & Markram 1997; Payeur et al. 2021).

    Between spikes ``dx/dt = (1-x)/tau_D`` and ``du/dt = (U-u)/tau_F`` (solved
    exactly). At a presynaptic spike the efficacy is ``w u x`` (values before
    the update), then ``x -= u x`` and ``u += f (1 - u)``.
    """

    name: str
    tau_D: Quantity
    tau_F: Quantity
    U: float
    f: float

    def validate(self) -> "STPParams":
        o = f"STPParams({self.name})"
        check_quantity(o, "tau_D", self.tau_D, second, positive=True)
        check_quantity(o, "tau_F", self.tau_F, second, positive=True)
        _check_number(o, "U", self.U, 0.0, 1.0)
        _check_number(o, "f", self.f, 0.0, 1.0)
        return self


STF = STPParams(name="STF", tau_D=100 * ms, tau_F=100 * ms, U=0.02, f=0.1)
"""Facilitating: feedback to dendrites, pyramidal to SOM."""
STD = STPParams(name="STD", tau_D=20 * ms, tau_F=1 * second, U=0.9, f=0.1)
"""Depressing: feedforward to soma, pyramidal to PV."""


@dataclass(frozen=True)
class SynapseParams:
    """Conductance-based synapses: ``dg/dt = -g/tau``; ``I = g (E - v)``.

    AMPA tau 5 ms, reversal 0 mV; GABA tau 10 ms, reversal -80 mV (Payeur et al. 2021).
    Weights given as plain numbers are in units of the target's leak conductance
    (pyramidal soma C_s/tau_s = 23.1 nS, dendrite 24.3 nS, interneuron g_L).
    """

    tau_ampa: Quantity = _q(5 * ms)
    tau_gaba: Quantity = _q(10 * ms)
    E_exc: Quantity = _q(0 * mV)
    E_inh: Quantity = _q(-80 * mV)

    def validate(self) -> "SynapseParams":
        o = "SynapseParams"
        check_quantity(o, "tau_ampa", self.tau_ampa, second, positive=True)
        check_quantity(o, "tau_gaba", self.tau_gaba, second, positive=True)
        check_quantity(o, "E_exc", self.E_exc, volt)
        check_quantity(o, "E_inh", self.E_inh, volt)
        return self

    def namespace(self) -> dict:
        return dict(tau_ampa=self.tau_ampa, tau_gaba=self.tau_gaba, E_exc=self.E_exc, E_inh=self.E_inh)


SYNAPSE_PARAMS = SynapseParams()


@dataclass(frozen=True)
class BackgroundParams:
    """Poisson background of the Payeur microcircuit: ``rate`` per input, weights in leak units.

    Pyramidal soma E/I 0.35/0.35, dendrite 0.05/0.05; SOM 0.4/0.5; PV 0.75/1.125 (Payeur Fig. 3).
    """

    rate: Quantity = _q(500 * Hz)
    pyr_soma: tuple = (0.35, 0.35)
    pyr_dendrite: tuple = (0.05, 0.05)
    som: tuple = (0.4, 0.5)
    pv: tuple = (0.75, 1.125)

    def validate(self) -> "BackgroundParams":
        check_quantity("BackgroundParams", "rate", self.rate, Hz, nonnegative=True)
        for name in ("pyr_soma", "pyr_dendrite", "som", "pv"):
            pair = getattr(self, name)
            if len(pair) != 2:
                raise MburstError(f"BackgroundParams.{name}={pair!r}: expected (w_exc, w_inh)")
            for value in pair:
                _check_number("BackgroundParams", name, value, 0.0, None)
        return self
