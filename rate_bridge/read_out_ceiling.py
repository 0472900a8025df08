"""The counting-noise ceilings of a read-out: how closely ensembles counted in one read-out window can follow the rate
model at best, for event rates (Poisson counts) and for burst probabilities (bursts among the counted events). They
say whether a bridge's fidelity is limited by the circuit or by the number of spikes it counts
(:func:`rate_bridge.equivalence.layer_fidelity`)."""
from __future__ import annotations

import numpy as np

__all__ = ["counting_ceiling", "burst_counting_ceiling"]


def counting_ceiling(rate_hz, spike_hz, cells_per_unit: float, window_s: float) -> float:
    """The Pearson r between a layer's rate-model event rates and a perfect spiking layer's measured ones, if the only
    error were the counting noise of its read-out windows.

    An ensemble of ``n`` cells counting ``n T E`` events in a window of ``T`` seconds, Poisson-like, measures
    ``E`` with variance ``E / (n T)``; against the rate model's variance over frames x units, ``var_s``, the
    correlation is at most ``sqrt(var_s / (var_s + mean(E) / (n T)))``. Regular (quiet) cells count with less
    noise than Poisson, so for them this is a lower bound on the ceiling.

    Parameters
    ----------
    rate_hz, spike_hz : numpy.ndarray, shape (F, units)
        The rate model's expected and the ensembles' measured event rates (Hz).
    cells_per_unit : float
        Cells of an ensemble.
    window_s : float
        Read-out window (s).

    Returns
    -------
    float
        In [0, 1]; NaN when the rate model's rates do not vary.
    """
    var_s = float(np.var(rate_hz))
    if var_s == 0:
        return float("nan")
    return float(np.sqrt(var_s / (var_s + float(np.mean(spike_hz)) / (cells_per_unit * window_s))))


def burst_counting_ceiling(p_rate, p_spk, events, span: float) -> float:
    """The Pearson r between burstprop's burst probabilities and a perfect spiking layer's measured ones, if the only
    error were the counting noise of bursts among the events of each read-out window.

    A perfect circuit bursts with ``P = P_mean + span (p - p_mean)`` (the feedback's current maps burstprop's
    ``sigma(beta u)`` onto the fit's range ``span = p_hi - p_lo``, :func:`rate_bridge.regime.ensemble_cells`;
    ``P_mean``: the measured mean); counting ``N`` events of which each bursts with ``P``, the ratio has variance
    ``P (1 - P) / N``. Against the signal's variance ``span^2 var(p)`` (over frames x units where the ensemble had
    events) the correlation is at most ``sqrt(var_s / (var_s + mean(P (1 - P) / N)))``, with ``N`` the measured
    event counts.

    Parameters
    ----------
    p_rate, p_spk : numpy.ndarray, shape (F, units)
        Burstprop's burst probabilities and the ensembles' bursts / events (NaN where no event).
    events : numpy.ndarray, shape (F, units)
        Events counted in each ensemble and window.
    span : float
        ``p_hi - p_lo`` of the calibrated fit.

    Returns
    -------
    float
        In [0, 1]; NaN when no ensemble had events or burstprop's ``p`` does not vary there.
    """
    p_spk, events = np.asarray(p_spk, float), np.asarray(events, float)
    seen = np.isfinite(p_spk) & (events > 0)
    p_rate = np.asarray(p_rate, float)[seen]
    if p_rate.size == 0 or np.ptp(p_rate) <= 1e-6:  # constant up to rounding (the output's pbar_L)
        return float("nan")
    var_s = span ** 2 * float(np.var(p_rate))
    perfect = np.clip(p_spk[seen].mean() + span * (p_rate - p_rate.mean()), 0.0, 1.0)
    noise = float(np.mean(perfect * (1 - perfect) / events[seen]))
    return float(np.sqrt(var_s / (var_s + noise)))
