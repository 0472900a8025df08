"""Population transfer functions of the pyramidal cell and their smooth fits.

Naud & Sprekeler (2018) and Payeur et al. (2021) show that, in a population
receiving background noise, somatic input sets the *event rate* E and
dendritic input sets the *burst probability* P = B/E. We measure both curves
on a population (each current level gets its own group of cells, all with the
Payeur Poisson background) and fit

    E(I_s) = r0 + k s log(1 + exp((I_s - I0)/s))                    [Hz, pA]  (softplus)
    P(I_d) = p_lo + (p_hi - p_lo) / (1 + exp(-(I_d - I_half)/width))            (sigmoid)

The fits are what the rate model uses (``rate_bridge``); they live in the pure-numpy
:mod:`neurons.transfer_fit` (this module imports Brian2 only inside :func:`measure_sweeps`).
The committed default ``neurons/data/transfer_fit.json`` records the command that produced it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import MburstError, atomic_savez
from .transfer_fit import TransferFit, cell_offsets, sigmoid_prob, softplus_rate

__all__ = ["Sweeps", "measure_sweeps", "fit_transfer", "plot_transfer", "save_sweeps", "sensitivities"]

@dataclass(frozen=True)
class Sweeps:
    """Population responses to a somatic and a dendritic current sweep (currents in pA, rates in Hz).

    Somatic sweep: ``I_s`` varies, ``I_d = I_d_fixed``; dendritic sweep: ``I_d``
    varies, ``I_s = I_s_fixed``. For each level: event rate ``E``, burst rate
    ``B``, ``P = B/E`` and their standard errors over the level's cells.
    """

    I_s: np.ndarray
    E_s: np.ndarray
    P_s: np.ndarray
    E_s_sem: np.ndarray
    P_s_sem: np.ndarray
    I_d: np.ndarray
    E_d: np.ndarray
    P_d: np.ndarray
    E_d_sem: np.ndarray
    P_d_sem: np.ndarray
    I_s_fixed: float
    I_d_fixed: float
    n_per_level: int
    duration_s: float
    warmup_s: float
    target: str
    seed: int
    background: bool = True
    offset_spread: float = 0.0
    burst_isi_ms: float = float("nan")
    circuit: str = ""
    layer_mean_hz: float = float("nan")  # mean event rate of every cell of the run (what interneurons read)


def _level_stats(events: np.ndarray, bursts: np.ndarray, n_levels: int, n_per: int, window: float):
    ev = events.reshape(n_levels, n_per) / window
    bu = bursts.reshape(n_levels, n_per) / window
    E = ev.mean(1)
    B = bu.mean(1)
    P = np.where(E > 0, B / np.maximum(E, 1e-300), np.nan)
    E_sem = ev.std(1, ddof=1) / np.sqrt(n_per)
    # Ratio estimator error: var(P) ~ var(B - P E) / (n E^2).
    resid = bu - P[:, None] * ev
    P_sem = np.where(E > 0, resid.std(1, ddof=1) / np.sqrt(n_per) / np.maximum(E, 1e-300), np.nan)
    return E, P, E_sem, P_sem


def measure_sweeps(I_s_levels, I_d_levels, *, I_s_fixed: float = 100.0, I_d_fixed: float = 100.0,
                   n_per_level: int = 50, duration: float = 2.0, warmup: float = 0.2,
                   target: str = "cython", seed: int = 0, params=None, progress: bool = False,
                   background: bool = True, offset_spread: float = 0.0, attach=None, circuit: str = "") -> Sweeps:
    """Simulate both sweeps in one Brian2 run (one group; a block of cells per level).

    With ``background`` every cell gets the Payeur et al. 2021 Poisson background
    (500 Hz, soma 0.35/0.35, dendrite 0.05/0.05); without it (the *quiet* regime)
    the cells are deterministic, start at random somatic potentials, and the
    ``n_per_level`` cells of a level carry somatic offsets :func:`cell_offsets`
    (``offset_spread`` pA), a heterogeneous ensemble. Events and bursts (16 ms
    rule) are counted by onset in the window.

    Parameters
    ----------
    I_s_levels : array_like of float (pA), shape (n_s,), n_s >= 2
        Somatic currents of the somatic sweep.
    I_d_levels : array_like of float (pA), shape (n_d,), n_d >= 2
        Dendritic currents of the dendritic sweep.
    I_s_fixed, I_d_fixed : float (pA), optional
        Somatic current during the dendritic sweep, dendritic during the somatic.
    n_per_level : int, optional
        Cells per level (>= 2).
    duration : float (s), optional
        Measured window after ``warmup``.
    warmup : float (s), optional
        Discarded start.
    target : str, optional
        Brian2 target (see :func:`neurons.device.use_target`).
    seed : int, optional
        Seed of Brian2 and of the initial potentials.
    params : PyramidalParams, optional
        Cell parameters (default Payeur's).
    progress : bool, optional
        Show a progress bar (runtime targets).
    background : bool, optional
        Payeur background (True) or the quiet regime.
    offset_spread : float (pA), optional
        Half-width of the per-cell somatic offsets.
    attach : callable, optional
        ``attach(group) -> list`` of Brian2 objects run with the cells (e.g. a microcircuit's interneurons,
        :mod:`circuits.calibration`); ``circuit`` describes them (stored in the fit's meta).

    Returns
    -------
    Sweeps
        ``I_s``/``E_s``/``P_s`` (+ SEMs) shape (n_s,), ``I_d``/``E_d``/``P_d`` shape
        (n_d,); E in Hz per cell, P dimensionless.

    Raises
    ------
    MburstError
        If a sweep has < 2 levels or is not 1-D, ``n_per_level < 2``,
        ``duration <= 0``, ``warmup < 0``, or the target/params are invalid.
    """
    from brian2 import Network, SpikeMonitor, defaultclock, ms, pA, second
    from brian2 import seed as brian_seed

    from .bursts import detect_population
    from .device import use_target
    from .inputs import payeur_background
    from .pyramidal import pyramidal_group

    I_s_levels = np.asarray(I_s_levels, dtype=float)
    I_d_levels = np.asarray(I_d_levels, dtype=float)
    if I_s_levels.ndim != 1 or I_d_levels.ndim != 1 or len(I_s_levels) < 2 or len(I_d_levels) < 2:
        raise MburstError("measure_sweeps: I_s_levels and I_d_levels need >= 2 values each")
    if n_per_level < 2:
        raise MburstError(f"measure_sweeps: n_per_level={n_per_level} must be >= 2")
    if not (duration > 0 and warmup >= 0):
        raise MburstError(f"measure_sweeps: duration={duration} must be > 0 and warmup={warmup} >= 0")
    n_s, n_d = len(I_s_levels), len(I_d_levels)
    n = (n_s + n_d) * n_per_level
    chosen = use_target(target, tag="transfer", n_neurons=n, duration=(duration + warmup) * second)
    defaultclock.dt = 0.1 * ms
    brian_seed(seed)
    group = pyramidal_group(n, params=params, name="transfer_pyr")
    I_s = np.concatenate([np.repeat(I_s_levels, n_per_level), np.full(n_d * n_per_level, I_s_fixed)])
    I_d = np.concatenate([np.full(n_s * n_per_level, I_d_fixed), np.repeat(I_d_levels, n_per_level)])
    group.I_ext_s = (I_s + np.tile(cell_offsets(n_per_level, offset_spread), n_s + n_d)) * pA
    group.I_ext_d = I_d * pA
    if not background:
        rng = np.random.default_rng(seed)
        group.v_s = group.namespace["E_L"] + (group.namespace["theta_0"] - group.namespace["E_L"]) * rng.random(n)
    spikes = SpikeMonitor(group, name="transfer_spikes")
    net = Network(group, *(payeur_background(group, "pyramidal") if background else ()), spikes,
                  *(attach(group) if attach else ()))
    total = warmup + duration
    if progress and chosen != "cpp_standalone":
        from tqdm import tqdm

        chunk = 0.1
        steps = int(round(total / chunk))
        with tqdm(total=steps, desc=f"transfer ({chosen}, {n} cells)", unit="x100ms", disable=None) as bar:
            for _ in range(steps):
                net.run(chunk * second)
                bar.update()
    else:
        net.run(total * second)
    det = detect_population(spikes.i[:], spikes.t[:], 0.016, 5e-5)
    in_window = det.event_t >= warmup
    events = np.bincount(det.event_i[in_window], minlength=n).astype(float)
    b_window = det.burst_onset_t >= warmup
    bursts = np.bincount(det.burst_i[b_window], minlength=n).astype(float)
    k = n_s * n_per_level
    isi_ms = _intra_burst_isi_ms(np.asarray(spikes.i[:]), np.asarray(spikes.t[:]), warmup)
    E_s, P_s, E_s_sem, P_s_sem = _level_stats(events[:k], bursts[:k], n_s, n_per_level, duration)
    E_d, P_d, E_d_sem, P_d_sem = _level_stats(events[k:], bursts[k:], n_d, n_per_level, duration)
    return Sweeps(I_s=I_s_levels, E_s=E_s, P_s=P_s, E_s_sem=E_s_sem, P_s_sem=P_s_sem,
                  I_d=I_d_levels, E_d=E_d, P_d=P_d, E_d_sem=E_d_sem, P_d_sem=P_d_sem,
                  I_s_fixed=float(I_s_fixed), I_d_fixed=float(I_d_fixed), n_per_level=int(n_per_level),
                  duration_s=float(duration), warmup_s=float(warmup), target=chosen, seed=int(seed),
                  background=bool(background), offset_spread=float(offset_spread), burst_isi_ms=isi_ms,
                  circuit=circuit, layer_mean_hz=float(events.mean() / duration))


def _intra_burst_isi_ms(i: np.ndarray, t: np.ndarray, t0: float, burst_isi: float = 0.016) -> float:
    """Mean interval (ms) between consecutive spikes of a cell closer than ``burst_isi`` (s), after ``t0`` (s)."""
    order = np.lexsort((t, i))
    i, t = i[order], t[order]
    isi = np.diff(t)
    within = (np.diff(i) == 0) & (isi < burst_isi - 5e-5) & (t[1:] >= t0)
    return float(isi[within].mean() * 1e3) if within.any() else float("nan")


def sensitivities(sw: Sweeps) -> dict:
    """How strongly each sweep moves E and P, as numbers (Naud & Sprekeler 2018 multiplexing).

    Multiplexing means span_E_soma >> span_E_dend and span_P_dend >> span_P_soma.

    Parameters
    ----------
    sw : Sweeps
        Measured sweeps.

    Returns
    -------
    dict of str -> float
        ``span_<X>_<sweep>`` (X in E, P; sweep in soma, dend): (max - min of X over
        the sweep's levels) divided by (max - min of X over both sweeps), in [0, 1]:
        the share of X's observed dynamic range that the sweep covers.
        ``fold_<X>_<sweep>``: |ln(X_last/X_first)| from a straight-line fit of
        ln X against the current (dimensionless).

    Raises
    ------
    MburstError
        If a sweep has fewer than two levels with a positive E or P.
    """
    def fold(I, X):
        ok = np.isfinite(X) & (X > 0)
        if ok.sum() < 2:
            raise MburstError("sensitivities: fewer than two levels with a positive rate")
        slope = np.polyfit(I[ok], np.log(X[ok]), 1)[0]
        return float(abs(slope) * (I.max() - I.min()))

    out = {}
    for name, soma, dend in (("E", sw.E_s, sw.E_d), ("P", sw.P_s, sw.P_d)):
        both = np.concatenate([soma, dend])
        total = float(np.nanmax(both) - np.nanmin(both)) or 1.0
        out[f"span_{name}_soma"] = float(np.nanmax(soma) - np.nanmin(soma)) / total
        out[f"span_{name}_dend"] = float(np.nanmax(dend) - np.nanmin(dend)) / total
        out[f"fold_{name}_soma"] = fold(sw.I_s, soma)
        out[f"fold_{name}_dend"] = fold(sw.I_d, dend)
    return out


def _fit(func, x, y, p0, bounds):
    from scipy.optimize import curve_fit

    ok = np.isfinite(y)
    try:
        popt, _ = curve_fit(func, x[ok], y[ok], p0=p0, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError) as err:
        raise MburstError(f"fit_transfer: {func.__name__} fit failed ({err})") from None
    resid = y[ok] - func(x[ok], *popt)
    span = float(np.ptp(y[ok])) or 1.0
    return popt, {"rms_rel": float(np.sqrt(np.mean(resid ** 2)) / span),
                  "max_rel": float(np.max(np.abs(resid)) / span), "range": span}


def fit_transfer(sw: Sweeps, command: str | None = None) -> TransferFit:
    """Least-squares fits of the softplus rate to (I_s, E_s) and the sigmoid to (I_d, P_d).

    The forms of the module docstring (Naud & Sprekeler 2018; Payeur et al. 2021).

    Parameters
    ----------
    sw : Sweeps
        Measured sweeps (currents pA, rates Hz).
    command : str, optional
        The command line that produced ``sw``, stored in ``meta``.

    Returns
    -------
    TransferFit
        Parameters in pA / Hz; ``meta['residual']`` holds the RMS and max
        residual as fractions of each curve's range.

    Raises
    ------
    MburstError
        If a fit fails (``scipy.optimize.curve_fit`` error).
    """
    I, E = sw.I_s, sw.E_s
    span_I = float(np.ptp(I))
    p0 = [float(np.nanmin(E)), float(max(np.nanmax(E) - np.nanmin(E), 1e-3) / span_I), float(np.median(I)), span_I / 8]
    bounds = ([0.0, 0.0, float(I.min()) - 2 * span_I, 1e-3 * span_I], [np.inf, np.inf, float(I.max()) + 2 * span_I, 10 * span_I])
    rate_p, rate_res = _fit(softplus_rate, I, E, p0, bounds)
    Id, P = sw.I_d, sw.P_d
    span_d = float(np.ptp(Id))
    p0 = [float(np.nanmin(P)), float(np.nanmax(P)), float(np.median(Id)), span_d / 8]
    bounds = ([0.0, 0.0, float(Id.min()) - span_d, 1e-3 * span_d], [1.0, 1.0, float(Id.max()) + span_d, 10 * span_d])
    prob_p, prob_res = _fit(sigmoid_prob, Id, P, p0, bounds)
    meta = {
        "units": {"current": "pA", "rate": "Hz"},
        "event_rate_form": "r0 + k*s*log(1 + exp((I_s - I0)/s))",
        "burst_prob_form": "p_lo + (p_hi - p_lo)/(1 + exp(-(I_d - I_half)/width))",
        "I_d_fixed_for_event_rate": sw.I_d_fixed, "I_s_fixed_for_burst_prob": sw.I_s_fixed,
        "n_per_level": sw.n_per_level, "duration_s": sw.duration_s, "warmup_s": sw.warmup_s,
        "target": sw.target, "seed": sw.seed,
        "residual": {"event_rate": rate_res, "burst_prob": prob_res},
        "background": ("Payeur et al. 2021: Poisson 500 Hz, soma E/I 0.35/0.35, dendrite 0.05/0.05 (leak units)"
                       if sw.background else "none (quiet regime: deterministic cells, random initial potential)"),
        "regime": "payeur" if sw.background else "quiet",
        "offset_spread_pA": sw.offset_spread, "I_s_max": float(np.max(I)),
        "burst_isi_ms": sw.burst_isi_ms,
    }
    if sw.circuit:
        meta["circuit"], meta["regime"] = sw.circuit, "circuit"
        meta["layer_mean_hz"] = sw.layer_mean_hz  # the interneurons' operating point
    if command:
        meta["command"] = command
    return TransferFit(*map(float, rate_p), *map(float, prob_p), meta=meta)


def save_sweeps(sw: Sweeps, path) -> Path:
    """All sweep arrays and settings in one ``.npz``.

    Parameters
    ----------
    sw : Sweeps
        The sweeps.
    path : str or os.PathLike
        Destination (``.npz``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_savez(path, **{k: np.asarray(v) for k, v in dataclasses.asdict(sw).items()})


def plot_transfer(sw: Sweeps, fit: TransferFit | None, path) -> Path:
    """Four panels: E and P against the somatic and the dendritic sweep (with fits); PNG.

    Parameters
    ----------
    sw : Sweeps
        The sweeps (error bars: SEM).
    fit : TransferFit or None
        Fitted curves to overlay, if any.
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

    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), sharex="col")
    panels = [((0, 0), sw.I_s, sw.E_s, sw.E_s_sem, "event rate E (Hz)", f"somatic sweep (I_d = {sw.I_d_fixed:g} pA)"),
              ((1, 0), sw.I_s, sw.P_s, sw.P_s_sem, "burst probability P", None),
              ((0, 1), sw.I_d, sw.E_d, sw.E_d_sem, "event rate E (Hz)", f"dendritic sweep (I_s = {sw.I_s_fixed:g} pA)"),
              ((1, 1), sw.I_d, sw.P_d, sw.P_d_sem, "burst probability P", None)]
    for (r, c), x, y, err, ylabel, title in panels:
        ax = axes[r, c]
        ax.errorbar(x, y, yerr=err, fmt="o", ms=4, color="k", label="simulation")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize=10)
        if r == 1:
            ax.set_xlabel("somatic current I_s (pA)" if c == 0 else "dendritic current I_d (pA)")
            ax.set_ylim(0, 1)
    if fit is not None:
        xs = np.linspace(sw.I_s.min(), sw.I_s.max(), 200)
        axes[0, 0].plot(xs, fit.event_rate(xs), "C3", label="softplus fit")
        xd = np.linspace(sw.I_d.min(), sw.I_d.max(), 200)
        axes[1, 1].plot(xd, fit.burst_prob(xd), "C3", label="sigmoid fit")
        axes[0, 0].legend(fontsize=8)
        axes[1, 1].legend(fontsize=8)
    fig.suptitle(f"Pyramidal population transfer ({sw.n_per_level} cells/level, {sw.duration_s:g} s, Poisson background"
                 f"{'; PV/SOM in place' if sw.circuit else ''})",
                 fontsize=10)
    fig.tight_layout()
    out = atomic_savefig(fig, path)
    plt.close(fig)
    return out
