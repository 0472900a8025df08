"""Signals and correlations of the propagation study (Payeur et al. 2021, Fig. 3): smooth drive
signals with exactly zero sample correlation, and (lagged) Pearson correlations. Pure numpy."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["smooth_signals", "pearson", "lagged_pearson"]


def smooth_signals(n_steps: int, step: float, tau: float, rng: np.random.Generator, n: int = 2) -> np.ndarray:
    """``n`` smooth unit-variance signals (Ornstein-Uhlenbeck noise filtered twice with ``tau``).

    The rows are made exactly orthogonal and zero-mean (Gram-Schmidt), so their sample Pearson correlation
    is 0: any correlation measured downstream comes from the circuit, not from a chance overlap of finite
    random signals.

    Parameters
    ----------
    n_steps : int
        Samples per signal.
    step, tau : float (s)
        Sample interval and filter time constant.
    rng : numpy.random.Generator
    n : int, optional
        Number of signals.

    Returns
    -------
    numpy.ndarray, shape (n, n_steps)
        Dimensionless.
    """
    a = math.exp(-step / tau)
    out = np.empty((n, n_steps))
    for k in range(n):
        x = rng.standard_normal(n_steps)
        for _ in range(2):
            y = np.empty(n_steps)
            acc = 0.0
            for t in range(n_steps):
                acc = a * acc + (1 - a) * x[t]
                y[t] = acc
            x = y
        out[k] = x
    out -= out.mean(axis=1, keepdims=True)
    for k in range(n):
        for m in range(k):
            out[k] -= (out[k] @ out[m]) / (out[m] @ out[m]) * out[m]
        out[k] /= out[k].std()
    return out


def pearson(a, b) -> float:
    """Pearson correlation of two 1-D arrays (NaN entries of either are dropped pairwise).

    Parameters
    ----------
    a, b : array_like of float, shape (n,)

    Returns
    -------
    float
        NaN with fewer than 3 finite pairs or a constant array.
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def lagged_pearson(a, b, max_lag: int) -> tuple[float, int]:
    """The Pearson r of ``a`` against ``b`` delayed by 0..max_lag bins with the largest |r|, and that lag.

    Parameters
    ----------
    a, b : numpy.ndarray of float, shape (n,)
    max_lag : int
        Largest delay of ``b``, in bins.

    Returns
    -------
    r : float
    lag : int
        In bins.
    """
    best = (pearson(a, b), 0)
    for lag in range(1, max_lag + 1):
        r = pearson(a[:-lag], b[lag:])
        if np.isfinite(r) and abs(r) > abs(best[0]):
            best = (r, lag)
    return best
