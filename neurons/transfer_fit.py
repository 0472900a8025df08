"""Fitted population transfer functions of the pyramidal cell: pure numpy, no Brian2.

The fits (Naud & Sprekeler 2018; Payeur et al. 2021), measured by :mod:`neurons.transfer`:

    E(I_s) = r0 + k s log(1 + exp((I_s - I0)/s))                    [Hz, pA]  (softplus)
    P(I_d) = p_lo + (p_hi - p_lo) / (1 + exp(-(I_d - I_half)/width))            (sigmoid)

This module is what the torch side (:mod:`rate_bridge.burstprop`) may read: plain numbers
from the committed JSON files (``neurons/data/transfer_fit.json``, ``transfer_fit_quiet.json``).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import MburstError, atomic_write_json

__all__ = ["TransferFit", "softplus_rate", "sigmoid_prob", "cell_offsets", "load_default_fit", "DEFAULT_FIT_PATH",
           "QUIET_FIT_PATH"]

DEFAULT_FIT_PATH = Path(__file__).with_name("data") / "transfer_fit.json"


def softplus_rate(I, r0, k, I0, s):
    """E(I) = r0 + k s log(1 + exp((I - I0)/s)); numerically stable (``np.logaddexp``).

    Parameters
    ----------
    I : array_like of float (pA), any shape
        Somatic current.
    r0 : float (Hz)
        Rate floor.
    k : float (Hz/pA)
        Asymptotic slope.
    I0 : float (pA)
        Knee.
    s : float (pA)
        Knee width (> 0).

    Returns
    -------
    numpy.ndarray (Hz), shape of ``I``
    """
    I = np.asarray(I, dtype=float)
    return r0 + k * s * np.logaddexp(0.0, (I - I0) / s)


def sigmoid_prob(I, p_lo, p_hi, I_half, width):
    """P(I) = p_lo + (p_hi - p_lo) / (1 + exp(-(I - I_half)/width)).

    Parameters
    ----------
    I : array_like of float (pA), any shape
        Dendritic current.
    p_lo, p_hi : float
        Lower and upper asymptotes (probabilities).
    I_half : float (pA)
        Midpoint.
    width : float (pA)
        Slope width (> 0).

    Returns
    -------
    numpy.ndarray, shape of ``I``
        Burst probability (dimensionless).
    """
    I = np.asarray(I, dtype=float)
    return p_lo + (p_hi - p_lo) * 0.5 * (1.0 + np.tanh(0.5 * (I - I_half) / width))


QUIET_FIT_PATH = Path(__file__).with_name("data") / "transfer_fit_quiet.json"
CIRCUIT_FIT_PATH = Path(__file__).with_name("data") / "transfer_fit_circuit.json"
"""A layer measured in place, with its PV/SOM microcircuit and background (:mod:`circuits.calibration`)."""


def cell_offsets(n: int, spread: float) -> np.ndarray:
    """Somatic current offsets (pA) of the ``n`` cells of a heterogeneous ensemble.

    Evenly spaced over ``[-spread, spread]`` (midpoints), so the ensemble's mean
    rate is the single cell's curve averaged over a uniform offset, the same for
    any ``n``.

    Parameters
    ----------
    n : int
        Number of cells.
    spread : float (pA)
        Half-width of the offsets.

    Returns
    -------
    numpy.ndarray (pA), shape (n,)
    """
    return spread * (2.0 * (np.arange(n) + 0.5) / n - 1.0)


@dataclass(frozen=True)
class TransferFit:
    """Fitted population transfer functions (currents in pA, rates in Hz). Pure numpy.

    ``event_rate(I_s) = r0 + k s softplus((I_s - I0)/s)``;
    ``burst_prob(I_d) = p_lo + (p_hi - p_lo) sigmoid((I_d - I_half)/width)``;
    ``rates(I_s, I_d) -> (E, B, P)`` with B = P E (Nengo-style analytic rates).
    ``meta``: how it was measured (fixed currents, cells, window, residuals, command).
    """

    r0: float
    k: float
    I0: float
    s: float
    p_lo: float
    p_hi: float
    I_half: float
    width: float
    meta: dict = field(default_factory=dict)

    def event_rate(self, I_s):
        """Event rate (Hz) at somatic current ``I_s`` (pA).

        Parameters
        ----------
        I_s : array_like of float (pA), any shape

        Returns
        -------
        numpy.ndarray (Hz), shape of ``I_s``
        """
        return softplus_rate(I_s, self.r0, self.k, self.I0, self.s)

    def burst_prob(self, I_d):
        """Burst probability at dendritic current ``I_d`` (pA).

        Parameters
        ----------
        I_d : array_like of float (pA), any shape

        Returns
        -------
        numpy.ndarray, shape of ``I_d``
            Dimensionless, in [p_lo, p_hi].
        """
        return sigmoid_prob(I_d, self.p_lo, self.p_hi, self.I_half, self.width)

    def rates(self, I_s, I_d):
        """``(E, B, P)``: event rate, burst rate = P E, burst probability.

        Parameters
        ----------
        I_s, I_d : array_like of float (pA), broadcastable
            Somatic and dendritic currents.

        Returns
        -------
        E, B : numpy.ndarray (Hz)
        P : numpy.ndarray (dimensionless)
            All of the broadcast shape.
        """
        E = self.event_rate(I_s)
        P = self.burst_prob(I_d)
        return E, P * E, P

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path) -> Path:
        """Write the fit as JSON.

        Parameters
        ----------
        path : str or os.PathLike
            Destination.

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "TransferFit":
        """Read a fit written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            JSON file.

        Returns
        -------
        TransferFit

        Raises
        ------
        MburstError
            If the file is missing, not JSON, lacks a parameter, or a parameter is
            not finite or ``s``/``width`` is not positive.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise MburstError(f"{path}: transfer fit file not found") from None
        except (OSError, ValueError) as err:
            raise MburstError(f"{path}: not a transfer fit JSON ({err})") from None
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n != "meta" and n not in data]
        if missing:
            raise MburstError(f"{path}: transfer fit lacks {', '.join(missing)}")
        values = {n: float(data[n]) for n in names if n != "meta"}
        if not all(np.isfinite(v) for v in values.values()) or values["s"] <= 0 or values["width"] <= 0:
            raise MburstError(f"{path}: transfer fit parameters must be finite with s, width > 0")
        return cls(**values, meta=data.get("meta", {}))


def load_default_fit() -> TransferFit:
    """The committed fit ``neurons/data/transfer_fit.json`` (measured by ``mburst simulate neuron --what transfer``)."""
    return TransferFit.load(DEFAULT_FIT_PATH)
