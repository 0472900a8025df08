"""Burst multiplexing in time (Naud & Sprekeler 2018, Fig. 2; Payeur et al. 2021, Fig. 2).

A population of pyramidal cells with the Payeur Poisson background receives
two independent, piecewise-constant input currents shared by all cells: one
into the somata, one into the dendrites. Binned over the population, the
event rate E(t) follows the somatic current and the burst probability
P(t) = B(t)/E(t) follows the dendritic current: two signals in one spike train.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import MburstError

__all__ = ["MultiplexResult", "multiplexing_demo", "plot_multiplexing"]


@dataclass(frozen=True)
class MultiplexResult:
    """Per bin: bin centres (s), inputs (pA), E and B (Hz per cell), P; plus a raster sample."""

    t: np.ndarray
    I_s: np.ndarray
    I_d: np.ndarray
    E: np.ndarray
    B: np.ndarray
    P: np.ndarray
    corr: dict
    raster_i: np.ndarray
    raster_t: np.ndarray
    raster_burst: np.ndarray
    n: int
    target: str


def multiplexing_demo(n: int = 2000, duration: float = 4.0, step: float = 0.25, bin_size: float = 0.05,
                      I_s_range=(-100.0, 400.0), I_d_range=(-100.0, 500.0), warmup: float = 0.2,
                      target: str = "cython", seed: int = 0, raster_cells: int = 40) -> MultiplexResult:
    """Run the demo (Naud & Sprekeler 2018, Fig. 2; Payeur et al. 2021, Fig. 2).

    Inputs change every ``step`` seconds to values drawn uniformly from the ranges.

    Parameters
    ----------
    n : int, optional
        Pyramidal cells (>= 10).
    duration : float (s), optional
        Analysed time after ``warmup``.
    step : float (s), optional
        Duration of each input value.
    bin_size : float (s), optional
        Bin of E, B and P.
    I_s_range, I_d_range : (float, float) (pA), optional
        Ranges of the somatic and dendritic currents.
    warmup : float (s), optional
        Discarded start.
    target : str, optional
        Brian2 target (see :func:`neurons.device.use_target`).
    seed : int, optional
        Seed of the inputs and of Brian2.
    raster_cells : int, optional
        Cells kept for the raster.

    Returns
    -------
    MultiplexResult
        Arrays per bin of shape (round(duration/bin_size),); ``corr``: Pearson
        correlations of E and P with I_s and I_d over the bins.

    Raises
    ------
    MburstError
        If ``n < 10`` or ``duration``, ``step`` or ``bin_size`` is not positive.
    """
    from brian2 import Network, TimedArray, defaultclock, ms, pA, second
    from brian2 import seed as brian_seed

    from .bursts import BurstMonitor, detect_population
    from .device import use_target
    from .inputs import payeur_background
    from .pyramidal import pyramidal_group

    if n < 10 or duration <= 0 or step <= 0 or bin_size <= 0:
        raise MburstError("multiplexing_demo: need n >= 10 and positive duration, step and bin_size")
    rng = np.random.default_rng(seed)
    n_steps = int(np.ceil((duration + warmup) / step))
    i_s = rng.uniform(*I_s_range, n_steps)
    i_d = rng.uniform(*I_d_range, n_steps)
    chosen = use_target(target, tag="multiplexing", n_neurons=n, duration=(duration + warmup) * second)
    defaultclock.dt = 0.1 * ms
    brian_seed(seed)
    group = pyramidal_group(n, name="multiplex_pyr")
    group.namespace["Is_t"] = TimedArray(i_s * pA, dt=step * second)
    group.namespace["Id_t"] = TimedArray(i_d * pA, dt=step * second)
    group.run_regularly("I_ext_s = Is_t(t)\nI_ext_d = Id_t(t)", when="start", name="multiplex_inputs")
    mon = BurstMonitor(group, online=False, name="multiplex")
    Network(group, payeur_background(group, "pyramidal"), mon.objects).run((duration + warmup) * second)
    spike_i, spike_t = np.asarray(mon.spikes.i[:]), np.asarray(mon.spikes.t / second)
    det = detect_population(spike_i, spike_t, 0.016, 5e-5)
    edges = warmup + bin_size * np.arange(int(round(duration / bin_size)) + 1)
    events = np.histogram(det.event_t, edges)[0]
    bursts = np.histogram(det.burst_onset_t, edges)[0]
    E = events / (n * bin_size)
    B = bursts / (n * bin_size)
    P = np.where(events > 0, bursts / np.maximum(events, 1), np.nan)
    centres = 0.5 * (edges[1:] + edges[:-1])
    idx = np.minimum((centres / step).astype(int), n_steps - 1)
    I_s, I_d = i_s[idx], i_d[idx]
    ok = np.isfinite(P)

    def r(a, b):
        return float(np.corrcoef(a[ok], b[ok])[0, 1])

    corr = {"E~I_s": r(E, I_s), "E~I_d": r(E, I_d), "P~I_s": r(P, I_s), "P~I_d": r(P, I_d)}
    keep = spike_i < raster_cells
    burst_spike = np.zeros(len(spike_t), dtype=bool)
    # Mark the spikes that belong to bursting events (for the raster colours).
    order = np.lexsort((spike_t, spike_i))
    si, st = spike_i[order], spike_t[order]
    isi_prev = np.r_[np.inf, np.diff(st)]
    isi_prev[np.r_[True, si[1:] != si[:-1]]] = np.inf
    isi_next = np.r_[isi_prev[1:], np.inf]
    in_burst = (isi_prev < 0.016 - 5e-5) | (isi_next < 0.016 - 5e-5)
    burst_spike[order] = in_burst
    return MultiplexResult(t=centres, I_s=I_s, I_d=I_d, E=E, B=B, P=P, corr=corr,
                           raster_i=spike_i[keep], raster_t=spike_t[keep], raster_burst=burst_spike[keep],
                           n=n, target=chosen)


def plot_multiplexing(res: MultiplexResult, path):
    """Raster (burst spikes red) and the two decoded signals against their inputs; PNG.

    Parameters
    ----------
    res : MultiplexResult
        Result of :func:`multiplexing_demo`.
    path : str or os.PathLike
        Destination image.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .common import atomic_savefig

    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    ax = axes[0]
    ax.scatter(res.raster_t[~res.raster_burst], res.raster_i[~res.raster_burst], s=2, c="k", label="single")
    ax.scatter(res.raster_t[res.raster_burst], res.raster_i[res.raster_burst], s=2, c="C3", label="in burst")
    ax.set_ylabel("cell")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    ax.set_title(f"{res.n} two-compartment cells, Poisson background ({res.target})", fontsize=10)
    for ax, y, inp, ylabel, key in ((axes[1], res.E, res.I_s, "event rate E (Hz)", "E~I_s"),
                                    (axes[2], res.P, res.I_d, "burst prob. P", "P~I_d")):
        ax.plot(res.t, y, "k", lw=1.2)
        ax.set_ylabel(ylabel)
        twin = ax.twinx()
        twin.step(res.t, inp, "C0", where="mid", lw=1)
        twin.set_ylabel("somatic I (pA)" if key == "E~I_s" else "dendritic I (pA)", color="C0")
        ax.text(0.01, 0.9, f"corr = {res.corr[key]:.2f}", transform=ax.transAxes, fontsize=9)
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    out = atomic_savefig(fig, path)
    plt.close(fig)
    return out
