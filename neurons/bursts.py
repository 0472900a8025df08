"""Offline event/burst detection and per-bin burst statistics (16 ms rule).

Rule (Payeur et al. 2021; Naud & Sprekeler 2018): a spike whose preceding ISI
is >= 16 ms (or a neuron's first spike) starts an *event*; a spike less than
16 ms after the previous one belongs to the same event, and an event with two
or more spikes counts once as a *burst*. Event rate E, burst rate B and burst
probability P = B/E.

The offline detector reproduces the online detection of
:mod:`neurons.pyramidal` exactly: the online ``'event'`` fires at the event's
first spike and ``'burst'`` at its second spike, which is what
:func:`detect_events_bursts` returns as ``event_times`` and ``burst_times``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import MburstError

__all__ = ["Detection", "BurstStats", "detect_events_bursts", "detect_population", "burst_statistics",
           "BurstMonitor"]

DEFAULT_TOLERANCE = 1e-6  # s; ISIs within this of the 16 ms threshold count as >= threshold


@dataclass(frozen=True)
class Detection:
    """Events and bursts of a population (times in seconds, indices of neurons).

    ``event_i/event_t``: first spike of each event; ``burst_i/burst_t``: second
    spike of each burst (when it becomes one); ``burst_onset_t``: first spike of
    each bursting event; ``event_size``: spikes per event (aligned with event_t).
    """

    event_i: np.ndarray
    event_t: np.ndarray
    event_size: np.ndarray
    burst_i: np.ndarray
    burst_t: np.ndarray
    burst_onset_t: np.ndarray


def _as_seconds(times) -> np.ndarray:
    try:
        from brian2 import Quantity, second

        if isinstance(times, Quantity):
            if times.dim is not second.dim:
                raise MburstError(f"spike times must be in seconds, got {times!r}")
            return np.asarray(times / second, dtype=float)
    except ImportError:  # pragma: no cover - brian2 is a dependency; the detector itself needs only numpy
        pass
    return np.asarray(times, dtype=float)


def detect_population(spike_i, spike_t, threshold=0.016, tolerance: float = DEFAULT_TOLERANCE) -> Detection:
    """Detect events and bursts in the spikes ``(spike_i, spike_t)`` of many neurons.

    Implements the 16 ms rule of Payeur et al. 2021 (Naud & Sprekeler 2018): a
    spike whose preceding ISI is >= ``threshold`` (or a neuron's first spike)
    starts an event; an event of two or more spikes is a burst.

    Parameters
    ----------
    spike_i : array_like of int, shape (n_spikes,)
        Neuron index of each spike.
    spike_t : array_like of float or Quantity (s), shape (n_spikes,)
        Spike times, in seconds (plain floats are read as seconds).
    threshold : float (s) or Quantity (s), optional
        The burst ISI, default 16 ms.
    tolerance : float (s), optional
        An ISI counts as ">= threshold" when ``isi > threshold - tolerance``.

    Returns
    -------
    Detection
        ``event_i``/``event_t``/``event_size``: shape (n_events,);
        ``burst_i``/``burst_t``/``burst_onset_t``: shape (n_bursts,); times in s.

    Raises
    ------
    MburstError
        If ``spike_i`` and ``spike_t`` are not 1-D of equal shape, ``spike_t``
        holds non-finite times, ``threshold`` is not positive, or a Quantity
        is not in seconds.
    """
    idx = np.asarray(spike_i, dtype=np.int64)
    t = _as_seconds(spike_t)
    thr = float(_as_seconds(threshold))
    if idx.shape != t.shape or idx.ndim != 1:
        raise MburstError(f"detect_population: spike_i {idx.shape} and spike_t {t.shape} must be 1-D and equal")
    if not np.all(np.isfinite(t)):
        raise MburstError("detect_population: spike_t contains non-finite times")
    if not thr > 0:
        raise MburstError(f"detect_population: threshold={threshold!r} must be positive")
    order = np.lexsort((t, idx))
    idx, t = idx[order], t[order]
    first = np.ones(len(t), dtype=bool)
    first[1:] = idx[1:] != idx[:-1]
    isi = np.empty(len(t))
    isi[0:1] = np.inf
    isi[1:] = t[1:] - t[:-1]
    new_event = first | (isi > thr - tolerance)
    # The second spike of an event: not an event start, and the previous spike was one.
    second_spike = np.zeros(len(t), dtype=bool)
    second_spike[1:] = ~new_event[1:] & new_event[:-1]
    event_id = np.cumsum(new_event) - 1
    event_size = np.bincount(event_id, minlength=int(new_event.sum())) if len(t) else np.zeros(0, int)
    starts = np.flatnonzero(new_event)
    return Detection(
        event_i=idx[new_event], event_t=t[new_event], event_size=event_size,
        burst_i=idx[second_spike], burst_t=t[second_spike],
        burst_onset_t=t[starts[event_id[second_spike]]],
    )


def detect_events_bursts(spike_times, threshold=0.016, tolerance: float = DEFAULT_TOLERANCE) -> Detection:
    """Events and bursts of one neuron's spike train (see :func:`detect_population`).

    Parameters
    ----------
    spike_times : array_like of float or Quantity (s), shape (n_spikes,)
        Spike times of one neuron, in seconds.
    threshold : float (s) or Quantity (s), optional
        The burst ISI, default 16 ms (Payeur et al. 2021).
    tolerance : float (s), optional
        ISI tolerance at the threshold.

    Returns
    -------
    Detection
        As :func:`detect_population`, with all neuron indices 0.

    Raises
    ------
    MburstError
        If ``spike_times`` is not 1-D, a Quantity is not in seconds, or as
        :func:`detect_population`.
    """
    t = _as_seconds(spike_times)
    if t.ndim != 1:
        raise MburstError(f"detect_events_bursts: spike_times must be 1-D, got shape {t.shape}")
    return detect_population(np.zeros(len(t), dtype=np.int64), t, threshold, tolerance)


@dataclass(frozen=True)
class BurstStats:
    """Per time bin of a population: rates per neuron (Hz) and P = B/E (NaN where E = 0).

    Events and bursts are binned by the event's onset; ``spike_count`` is the
    population's number of spikes in the bin.
    """

    edges: np.ndarray
    event_rate: np.ndarray
    burst_rate: np.ndarray
    burst_prob: np.ndarray
    spike_count: np.ndarray
    n_neurons: int


def burst_statistics(spike_i, spike_t, n_neurons: int, t_start, t_stop, bin_size,
                     threshold=0.016, tolerance: float = DEFAULT_TOLERANCE) -> BurstStats:
    """E, B, P = B/E and spike counts per bin of ``[t_start, t_stop)`` for ``n_neurons`` cells.

    Detection uses all spikes (so an event that started before ``t_start`` is not
    counted again); only onsets inside the window are counted.

    Parameters
    ----------
    spike_i : array_like of int, shape (n_spikes,)
        Neuron index of each spike.
    spike_t : array_like of float or Quantity (s), shape (n_spikes,)
        Spike times, in seconds.
    n_neurons : int
        Population size (rates are per neuron).
    t_start, t_stop : float (s) or Quantity (s)
        Window of the bins.
    bin_size : float (s) or Quantity (s)
        Bin width; ``n_bins = round((t_stop - t_start) / bin_size)``.
    threshold : float (s) or Quantity (s), optional
        The burst ISI, default 16 ms.
    tolerance : float (s), optional
        ISI tolerance at the threshold.

    Returns
    -------
    BurstStats
        ``edges`` shape (n_bins + 1,) in s; ``event_rate``, ``burst_rate`` (Hz per
        neuron), ``burst_prob`` (NaN where E = 0) and ``spike_count`` shape (n_bins,).

    Raises
    ------
    MburstError
        If ``bin_size <= 0``, ``t_stop <= t_start`` or ``n_neurons < 1``, or as
        :func:`detect_population`.
    """
    t0, t1, width = (float(_as_seconds(v)) for v in (t_start, t_stop, bin_size))
    if not (width > 0 and t1 > t0):
        raise MburstError(f"burst_statistics: need bin_size > 0 and t_stop > t_start (got {bin_size}, {t_start}, {t_stop})")
    if n_neurons < 1:
        raise MburstError(f"burst_statistics: n_neurons={n_neurons!r} must be positive")
    det = detect_population(spike_i, spike_t, threshold, tolerance)
    n_bins = int(round((t1 - t0) / width))
    edges = t0 + width * np.arange(n_bins + 1)

    def count(times):
        return np.histogram(times, bins=edges)[0].astype(float)

    events = count(det.event_t)
    bursts = count(det.burst_onset_t)
    spikes = count(_as_seconds(spike_t))
    scale = 1.0 / (n_neurons * width)
    with np.errstate(invalid="ignore", divide="ignore"):
        prob = np.where(events > 0, bursts / np.maximum(events, 1), np.nan)
    return BurstStats(edges=edges, event_rate=events * scale, burst_rate=bursts * scale, burst_prob=prob,
                      spike_count=spikes.astype(np.int64), n_neurons=n_neurons)


class BurstMonitor:
    """Records a population's spikes (and its online events/bursts) and returns :class:`BurstStats`.

    ``objects`` holds the Brian2 monitors: add them to your ``Network``
    (``net.add(monitor.objects)``; the magic ``run()`` does not look inside this object).
    """

    def __init__(self, group, name: str | None = None, online: bool = True):
        from brian2 import EventMonitor, SpikeMonitor

        self.group = group
        base = name or f"{group.name}_bursts"
        self.spikes = SpikeMonitor(group, name=f"{base}_spikes")
        self.online = online and "event" in getattr(group, "events", {}) and "burst" in group.events
        self.events = EventMonitor(group, "event", name=f"{base}_events") if self.online else None
        self.bursts = EventMonitor(group, "burst", name=f"{base}_bursts") if self.online else None
        self.objects = [m for m in (self.spikes, self.events, self.bursts) if m is not None]

    def offline(self, threshold=None) -> Detection:
        """Offline detection over the recorded spikes.

        Parameters
        ----------
        threshold : float (s) or Quantity (s), optional
            The burst ISI; default the group's ``burst_isi`` (else 16 ms).

        Returns
        -------
        Detection
            See :func:`detect_population`; tolerance is half the group's dt.

        Raises
        ------
        MburstError
            As :func:`detect_population`.
        """
        thr = threshold if threshold is not None else self.group.namespace.get("burst_isi", 0.016)
        return detect_population(self.spikes.i[:], self.spikes.t[:], thr, self._tolerance())

    def _tolerance(self) -> float:
        from brian2 import second

        return 0.5 * float(self.group.clock.dt / second)

    def stats(self, bin_size, t_start=0.0, t_stop=None, threshold=None) -> BurstStats:
        """Per-bin E, B, P and spike count from the recorded spikes.

        Parameters
        ----------
        bin_size : float (s) or Quantity (s)
            Bin width.
        t_start : float (s) or Quantity (s), optional
            Start of the window, default 0.
        t_stop : float (s) or Quantity (s), optional
            End of the window; default the group clock's current time.
        threshold : float (s) or Quantity (s), optional
            The burst ISI; default the group's ``burst_isi`` (else 16 ms).

        Returns
        -------
        BurstStats
            See :func:`burst_statistics`.

        Raises
        ------
        MburstError
            As :func:`burst_statistics`.
        """
        from brian2 import second

        thr = threshold if threshold is not None else self.group.namespace.get("burst_isi", 0.016)
        if t_stop is None:
            t_stop = float(self.group.clock.t / second)
        return burst_statistics(self.spikes.i[:], self.spikes.t[:], len(self.group), t_start, t_stop,
                                bin_size, thr, self._tolerance())
