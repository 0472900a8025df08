"""Calibrated activations: the spiking cell's own population transfer functions in torch.

In Nengo's spirit (rate neurons whose ``rates()`` equal the spiking neurons' measured
response), the rate model can train with the fits of :mod:`neurons.transfer`
(``neurons/data/transfer_fit.json``, measured on pyramidal populations with the
Payeur Poisson background):

* somatic: ``E(I_s) = r0 + k s log(1 + exp((I_s - I0)/s))``  [Hz, pA];
* dendritic: ``P(I_d) = p_lo + (p_hi - p_lo) / (1 + exp(-(I_d - I_half)/width))``.

Unit map between the rate model and the cells (a :class:`Calibration`):

* drive ``v`` (dimensionless) <-> somatic current ``I_s = i_offset + i_scale * v`` (pA); the default
  ``i_offset`` is the fit's soft threshold ``I0``, so that, as for ReLU, zero drive sits at the knee
  of the curve and negative drive silences the cell down to its background rate ``r0`` (with
  ``i_offset = 0`` every unit would idle at E(0) = 5.6 Hz, and the large common input this gives a
  dense layer drives it into saturation within a few Adam steps);
* event rate ``e = E(I_s) / e_ref`` (dimensionless; ``e_ref`` Hz);
* dendritic drive ``u`` <-> dendritic current ``I_d = I_half + i_scale_d * u``, so
  ``p = sigma_cal(u) = p_lo + (p_hi - p_lo) sigmoid(i_scale_d u / width)``.

Hence ``e = f_cal(v) = E(I_eff(I_s)) / e_ref`` where ``I_eff`` saturates softly at the top
of the measured sweep (``i_max``: 600 pA for the default fit, 1.5 nA for the quiet one; beyond
it the fit is an extrapolation, and the converter saturates the cells' drive the same way, since
unsaturated cells keep speeding up past the model's cap), and burstprop's ``h(e) = f_cal'(v) / e``
(e >= r0/e_ref > 0, so no guard is needed). Everything is pure torch and differentiable.

Three calibrations are built in (:func:`calibrated_names`), and
:mod:`rate_bridge.burstprop.activations` offers each as an activation of the same name:
``'calibrated'`` (default fit and scales) and ``'calibrated-quiet'``, the same cells measured
without the Poisson background as a heterogeneous ensemble (``neurons/data/transfer_fit_quiet.json``:
threshold-linear, 0.04 Hz/pA up to 46 Hz at 1.5 nA, no bursts without dendritic input). Spike
trains in that regime are regular, so an ensemble's count carries far less noise; the converter
then runs the network without background and with the measured per-cell offsets. ``'calibrated-circuit'``
(``neurons/data/transfer_fit_circuit.json``) is a layer measured in place, with its PV/SOM microcircuit and the
background (:mod:`circuits.calibration`): the regime of the full circuit the bridge runs by default.  Each fit file
is read on first use (:func:`calibration_of`), not at import.  This module imports nothing of the
activation registry (the dependency runs one way: activations -> calibrated).

The hidden burst probability of burstprop is ``sigmoid(beta u + alpha)`` (range 0..1);
``sigma_cal`` has the same slope at its centre when ``beta = i_scale_d/width`` and
``alpha = 0`` (:meth:`Calibration.burst_params`), but its range is [p_lo, p_hi]
(0.12..0.88 for the default fit). :func:`burst_prob` gives the calibrated p.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurons.common import MburstError
from neurons.transfer_fit import CIRCUIT_FIT_PATH, QUIET_FIT_PATH, TransferFit, load_default_fit

from rate_bridge.burstprop.functional import Activation

__all__ = ["Calibration", "default_calibration", "calibrated_activation",
           "event_rate", "event_rate_deriv", "burst_prob", "inverse_event_rate", "calibration_of", "calibrated_names",
           "CALIBRATED", "CALIBRATED_QUIET", "CALIBRATED_CIRCUIT"]

CALIBRATED = "calibrated"
CALIBRATED_QUIET = "calibrated-quiet"
CALIBRATED_CIRCUIT = "calibrated-circuit"


@dataclass(frozen=True)
class Calibration:
    """Unit map rate model <-> cells: ``I_s = i_offset + i_scale v`` (pA), ``e = E/e_ref``,
    ``I_d = I_half + i_scale_d u`` (pA).

    Raises
    ------
    MburstError
        ``i_scale``, ``e_ref``, ``i_scale_d`` or ``i_soft`` not a positive number.
    """

    fit: TransferFit
    i_scale: float  # pA per unit of somatic drive v
    e_ref: float = 10.0  # Hz per unit of event rate e
    i_scale_d: float = 100.0  # pA per unit of dendritic drive u
    i_max: float = 600.0  # pA: top of the measured somatic sweep; the drive saturates softly there
    i_soft: float = 60.0  # pA: softness of that saturation
    i_offset: float = 0.0  # pA: somatic current at zero drive (I_s = i_offset + i_scale v)

    def __post_init__(self):
        for key in ("i_scale", "e_ref", "i_scale_d", "i_soft"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and value > 0):
                raise MburstError(f"calibration: {key}={value!r} must be a positive number")

    # --- numpy-side maps (used by the converter)
    def current_s(self, v):
        """Somatic current ``I_s = i_offset + i_scale v`` (pA, ndarray shaped like v) for drive v (dimensionless)."""
        return self.i_offset + self.i_scale * np.asarray(v, float)

    def effective_current(self, I):
        """Soft saturation at the sweep's top: ``I_eff = i_max - i_soft softplus((i_max - I)/i_soft)``
        (pA, ndarray shaped like the current I in pA)."""
        return self.i_max - self.i_soft * np.logaddexp(0.0, (self.i_max - np.asarray(I, float)) / self.i_soft)

    def rate_hz_of_current(self, I):
        """Expected event rate (Hz, ndarray shaped like I) at somatic current I (pA), saturated like f_cal."""
        return self.fit.event_rate(self.effective_current(I))

    def rate_hz(self, v):
        """Expected event rate ``e_ref f_cal(v)`` (Hz, ndarray shaped like v) of a cell with drive v."""
        return self.rate_hz_of_current(self.current_s(v))

    def to_dict(self) -> dict:
        """JSON-able dict (the fit as :meth:`TransferFit.to_dict`); inverse of :meth:`from_dict`."""
        return {"fit": self.fit.to_dict(), "i_scale": self.i_scale, "e_ref": self.e_ref, "i_scale_d": self.i_scale_d,
                "i_max": self.i_max, "i_soft": self.i_soft, "i_offset": self.i_offset}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        """The calibration saved by :meth:`to_dict` (``i_offset`` 0 when absent: older checkpoints)."""
        f = d["fit"]
        return cls(TransferFit(**{k: f[k] for k in ("r0", "k", "I0", "s", "p_lo", "p_hi", "I_half", "width")},
                               meta=f.get("meta", {})), d["i_scale"], d["e_ref"], d["i_scale_d"], d["i_max"], d["i_soft"],
                   d.get("i_offset", 0.0))

    @property
    def quiet(self) -> bool:
        """Measured without the Payeur background (deterministic cells; ``neurons.transfer`` quiet regime)."""
        return self.fit.meta.get("regime") == "quiet"

    @property
    def regime(self) -> str:
        """Where the cells were measured: ``'circuit'`` (a layer with its microcircuit in place,
        :mod:`circuits.calibration`), ``'payeur'`` (isolated cells with background) or ``'quiet'``."""
        return str(self.fit.meta.get("regime", "payeur"))

    @property
    def offset_spread(self) -> float:
        """Somatic offsets (+- pA) of an ensemble's cells in the measurement (:func:`neurons.transfer_fit.cell_offsets`)."""
        return float(self.fit.meta.get("offset_spread_pA", 0.0))

    def burst_params(self) -> dict:
        """``{'beta': i_scale_d / width, 'alpha': 0}``: burstprop's sigmoid with the centre slope of sigma_cal."""
        return {"beta": self.i_scale_d / self.fit.width, "alpha": 0.0}


def default_calibration(fit: TransferFit | None = None, e_ref: float = 10.0) -> Calibration:
    """The default unit map of a transfer fit.

    ``i_scale = e_ref / k`` (so f_cal' -> 1 for large v, like ReLU; 845 pA for the committed fit),
    ``i_offset = I0`` (zero drive at the curve's knee, -428 pA), ``i_max`` the top of the measured
    sweep and ``i_scale_d = width`` (so beta = 1).

    Parameters
    ----------
    fit : TransferFit, optional
        Default: the committed fit ``neurons/data/transfer_fit.json``.
    e_ref : float
        Hz per unit of event rate e.

    Returns
    -------
    Calibration

    Raises
    ------
    MburstError
        The committed fit file is missing or malformed.
    """
    fit = fit or load_default_fit()
    return Calibration(fit, i_scale=e_ref / fit.k, e_ref=e_ref, i_scale_d=fit.width, i_offset=fit.I0,
                       i_max=float(fit.meta.get("I_s_max", 600.0)))


def _i_eff(v: torch.Tensor, cal: Calibration) -> torch.Tensor:
    return cal.i_max - cal.i_soft * F.softplus((cal.i_max - cal.i_offset - cal.i_scale * v) / cal.i_soft)


def event_rate(v: torch.Tensor, cal: Calibration) -> torch.Tensor:
    """Event rate ``e = f_cal(v) = (r0 + k s softplus((I_eff - I0)/s)) / e_ref``.

    ``I_eff = i_max - i_soft softplus((i_max - I_s)/i_soft)``, ``I_s = i_offset + i_scale v``: the
    measured curve (:mod:`neurons.transfer`), saturating softly at the top of the measured sweep
    (the cells are not calibrated beyond it and do saturate).

    Parameters
    ----------
    v : Tensor
        Somatic drive (dimensionless).
    cal : Calibration

    Returns
    -------
    Tensor
        e (dimensionless, ``e_ref`` Hz per unit), shaped like v; differentiable.
    """
    f = cal.fit
    return (f.r0 + f.k * f.s * F.softplus((_i_eff(v, cal) - f.I0) / f.s)) / cal.e_ref


def event_rate_deriv(v: torch.Tensor, cal: Calibration) -> torch.Tensor:
    """Slope ``f_cal'(v) = k i_scale sigmoid((I_eff - I0)/s) sigmoid((i_max - I_s)/i_soft) / e_ref``.

    Parameters
    ----------
    v : Tensor
        Somatic drive.
    cal : Calibration

    Returns
    -------
    Tensor
        de/dv, shaped like v.
    """
    f = cal.fit
    return (f.k * cal.i_scale * torch.sigmoid((_i_eff(v, cal) - f.I0) / f.s)
            * torch.sigmoid((cal.i_max - cal.i_offset - cal.i_scale * v) / cal.i_soft) / cal.e_ref)


def inverse_event_rate(e: torch.Tensor, cal: Calibration) -> torch.Tensor:
    """The drive v with ``f_cal(v) = e``.

    Parameters
    ----------
    e : Tensor
        Event rates between the floor ``r0/e_ref`` and the saturation (clamped inside).
    cal : Calibration

    Returns
    -------
    Tensor
        v, shaped like e.
    """
    f = cal.fit
    x = ((e * cal.e_ref - f.r0) / (f.k * f.s)).clamp_min(1e-12)
    i_eff = f.s * (x + torch.log(-torch.expm1(-x))) + f.I0  # softplus^-1
    y = ((cal.i_max - i_eff) / cal.i_soft).clamp_min(1e-12)
    return (cal.i_max - cal.i_soft * (y + torch.log(-torch.expm1(-y))) - cal.i_offset) / cal.i_scale


def burst_prob(u: torch.Tensor, cal: Calibration) -> torch.Tensor:
    """The cells' burst probability ``p = sigma_cal(u) = p_lo + (p_hi - p_lo) sigmoid(i_scale_d u / width)``.

    Parameters
    ----------
    u : Tensor
        Dendritic drive (``I_d = I_half + i_scale_d u`` pA).
    cal : Calibration

    Returns
    -------
    Tensor
        p in [p_lo, p_hi], shaped like u.
    """
    f = cal.fit
    return f.p_lo + (f.p_hi - f.p_lo) * torch.sigmoid(cal.i_scale_d * u / f.width)


def calibrated_activation(cal: Calibration | None = None, name: str = CALIBRATED) -> Activation:
    """The burstprop activation ``e = f_cal(v)``, ``h(e) = f_cal'(v)/e`` (eqs. 2, 5-6; needs v).

    Parameters
    ----------
    cal : Calibration, optional
        Default :func:`default_calibration`.
    name : str
        The activation's name.

    Returns
    -------
    Activation
    """
    cal = cal or default_calibration()

    def fn(v):
        return event_rate(v, cal)

    def h(e, v):
        return event_rate_deriv(v, cal) / e

    return Activation(name, fn, h, needs_v=True)


def calibrated_names() -> tuple[str, ...]:
    """The calibrated activation names, sorted (models the bridge maps exactly); reads no file."""
    return tuple(sorted(_BUILT_IN))


def calibration_of(name: str = CALIBRATED) -> Calibration:
    """The :class:`Calibration` behind a calibrated activation (its fit file is read once, on first use).

    Parameters
    ----------
    name : str
        One of :func:`calibrated_names`.

    Returns
    -------
    Calibration

    Raises
    ------
    MburstError
        ``name`` is not a calibrated activation, or its fit file is missing or malformed.
    """
    if name not in _BUILT_IN:
        raise MburstError(f"activation '{name}' is not a calibrated activation; calibrated: {list(calibrated_names())}")
    if name not in _LOADED:
        _LOADED[name] = _BUILT_IN[name]()
    return _LOADED[name]


#: The calibrated activations: name -> how to build its calibration (read lazily, then kept in _LOADED).
_BUILT_IN = {CALIBRATED: default_calibration,
             CALIBRATED_QUIET: lambda: default_calibration(TransferFit.load(QUIET_FIT_PATH)),
             CALIBRATED_CIRCUIT: lambda: default_calibration(TransferFit.load(CIRCUIT_FIT_PATH))}
_LOADED: dict[str, Calibration] = {}
