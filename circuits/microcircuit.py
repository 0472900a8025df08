"""The burst-multiplexing microcircuit of Payeur et al. (2021, Fig. 3): propagation of two signals.

Two layers of two-compartment pyramidal cells (:mod:`neurons.pyramidal`), a PV
population (feedforward inhibition of layer 2's somata) and a SOM population
(feedback inhibition of layer 1's dendrites), wired by the project's one table
:data:`circuits.wiring.WIRING` (layer 1 = ``'lower'``, layer 2 = ``'upper'``; reference.md
section 3; the fb_dend weight defaults to 0.45 here, see :class:`MicrocircuitConfig`), all with
connection probability p = 0.05. Background: Poisson 500 Hz E/I per neuron (pyr soma
0.35/0.35, dend 0.05/0.05, SOM 0.4/0.5, PV 0.75/1.125). Layer 1's somata receive the slow
signal s1(t), layer 2's dendrites the independent signal s2(t) (injected
currents). The claim: L1 events follow s1, L2 events follow L1 events (STD
transmits event rates), and L1 burst probability follows L2 bursts (STF
transmits burst rates): two signals multiplexed in one spike train.

Reduced sizes keep each cell's in-degree as in the 4000/1000/1000 circuit by
raising p (``keep_indegree=True``): p_eff = min(1, p * N_ref / N_pre).

Drive protocol (Payeur et al.'s Auryn script ``sim_propagation.cpp`` and its
``run_propagation.sh``, not in the paper's text): constant bias currents into
layer 1's dendrites (+50 pA), layer 2's somata (-100 pA) and the PV cells
(+205 pA, just above their 200 pA rheobase, so that feedforward STD input
modulates an ongoing PV rate); s1 and s2 are sines of periods 0.5 s and
0.5 sqrt(5) s (incommensurate, so they stay nearly uncorrelated over any
window; our default for s2 is sqrt(5) s); somatic current 0 +- 200 pA,
dendritic 100 +- 100 pA (our defaults change four of these numbers and one weight; :class:`MicrocircuitConfig` gives
each change and the measurement behind it); membrane
potentials start at E_L + 5 mV N(0, 1); the first second is discarded; the
published figure averages 5 noise realizations of the same signals. Our
first port (OU signals, no biases) gave r(P1, s1) = 0.68 at full size, and the
original protocol unchanged gives 0.77 (1000 cells): L1's burst probability
followed its own event rate, hence the changes. ``signal='ou'`` keeps the
alternative of two smooth random (Ornstein-Uhlenbeck) signals made exactly
orthogonal.

Ablations: ``som=False`` removes the SOM population; ``stp='swapped'`` uses STF
where the circuit has STD and vice versa.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from brian2 import Quantity, TimedArray, mV, ms, pA, second

from neurons.common import MburstError
from neurons.params import check_count, check_nonnegative, check_probability, check_quantity

from circuits.signals import lagged_pearson, pearson, smooth_signals
from circuits.wiring import REFERENCE_P, REFERENCE_SIZES, WIRING, indegree_p, stp_of

__all__ = ["MicrocircuitConfig", "drive_signals", "run_propagation"]



@dataclass(frozen=True)
class MicrocircuitConfig:
    """Sizes, connectivity, drive and run options of the propagation experiment.

    Drive: ``I_s1(t) = i_soma0 + i_soma_amp * s1(t)`` into layer 1's somata and
    ``I_d2(t) = i_dend0 + i_dend_amp * s2(t)`` into layer 2's dendrites. With
    ``signal='sine'`` (default, the original protocol) ``s1 = sin(2 pi t/period_1)``,
    ``s2 = sin(2 pi t/period_2)`` (unit amplitude); with ``signal='ou'`` they
    are unit-variance smooth random signals (correlation time ``signal_tau``)
    made exactly orthogonal. Constant biases: ``i_dend1`` (layer 1 dendrites),
    ``i_soma2`` (layer 2 somata), ``i_pv``, ``i_som``. ``v_init_sd``: spread of
    the initial membrane potentials around E_L. ``bin_size`` bins the rates;
    ``realizations`` runs with seeds seed, seed+1, ... share the signals and
    their rates are averaged before P = B/E is formed (the original averaged 5).

    Deviations from the original script (measured reasons, full size, seed 0):

    - ``i_soma_amp`` 60 pA (original 200 pA) and ``i_dend_amp`` 150 pA (100 pA).
      Layer 2's burst rate is B2 = P2 E2 and E2 follows s1, so with +-200 pA
      r(B2, s1) = 0.64: a P1 that tracks B2 cannot then be independent of s1.
      With these amplitudes B2 is carried by s2 (r(B2, s1) = 0.19, r(B2, s2) = 0.90).
    - ``i_dend1`` 350 pA (50 pA). A cell's burst probability also depends on its
      own firing (bAP-driven doublets raise P at high rates; bAP-driven dendritic
      adaptation w_d lowers it), and the sign of that dependence is set by the
      dendrite's operating point. Without feedback, r(P1, s1) = +0.84, +0.37 and
      -0.67 at -50, 150 and 300 pA (1000 cells); at 350 pA with feedback the
      intrinsic part cancels the small s1 content of B2 (r(P1, s1) = 0.07).
    - ``w_fb_dend`` 0.45 (reference 0.37): more feedback gain for P1; 0.6 and
      above makes the L1-L2 loop unstable (population bursts, E1 stops following s1).
    - ``period_2`` sqrt(5) s = 2.24 s (original 0.5 sqrt(5) = 1.12 s). Layer 1's burst
      probability also follows the *rate of change* of the feedback (a high-pass part,
      plausibly from the dendritic (w_d, 30 ms) and SOM (500 ms) adaptation): with the
      original period, P1 regressed on L2's burst rate alone gives R = 0.893 (10
      realizations; split-half reliability of P1 0.93, so not counting noise), adding
      ds2/dt raises it to 0.918, and no lag of B2 (-80..+80 ms) beats lag 0. A slower s2
      leaves less of that part: r(L1 P, L2 B) 0.879 -> 0.917 (5 realizations).
      Stronger feedback instead (w_fb_dend 0.52) reaches 0.899 but leaks s2 into L1's
      event rate (r(L1 E, s2) 0.23 > 0.2), and so does a larger s2 amplitude (250 pA: 0.886, 0.28).
    - ``bin_size`` 100 ms (the original plotted 50 ms bins): at full size with 5
      realizations r(L2 E, L1 E) is 0.887 with 50 ms bins and 0.904 with 100 ms,
      r(L1 P, L2 B) 0.840 and 0.862 (Poisson counting noise of P = B/E).

    Measured with these defaults (4000/1000/1000, 5 realizations, seed 0,
    ``mburst simulate propagation --ablations --realizations 5``): tracking
    r = 0.930 (L1 E, s1), 0.919 (L2 E, L1 E), 0.917 (L1 P, L2 B), 0.979 (L2 P, s2);
    cross r = 0.187 (L1 E, s2), 0.073 (L1 P, s1), 0.062 (L2 E, s2). Seed 5 (realizations
    5-9): 0.944, 0.916, 0.903, 0.978; cross 0.187, 0.041, 0.047. No SOM: mean P1
    0.36 -> 0.59, r(L1 P, L2 B) -0.58, r(L1 E, s1) 0.43. STP swapped: r(L2 E, L1 E) 0.48,
    r(L1 P, L2 B) 0.13, P1 range 0.066 -> 0.013.
    """

    n_pyr: int = 4000
    n_pv: int = 1000
    n_som: int = 1000
    p: float = REFERENCE_P
    keep_indegree: bool = True
    som: bool = True
    stp: str = "normal"
    w_ff_soma: float = WIRING["ff_soma"].weight
    w_ff_pv: float = WIRING["ff_pv"].weight
    w_pv_soma: float = WIRING["pv_soma"].weight
    w_fb_dend: float = 0.45  # WIRING["fb_dend"].weight is 0.37; see the deviations above
    w_fb_som: float = WIRING["fb_som"].weight
    w_som_dend: float = WIRING["som_dend"].weight
    w_within_dend: float = WIRING["within_dend"].weight
    signal: str = "sine"
    period_1: Quantity = field(default_factory=lambda: 500 * ms)
    period_2: Quantity = field(default_factory=lambda: 1000 * math.sqrt(5) * ms)
    signal_tau: Quantity = field(default_factory=lambda: 250 * ms)
    i_soma0: Quantity = field(default_factory=lambda: 0 * pA)
    i_soma_amp: Quantity = field(default_factory=lambda: 60 * pA)
    i_dend0: Quantity = field(default_factory=lambda: 100 * pA)
    i_dend_amp: Quantity = field(default_factory=lambda: 150 * pA)
    i_dend1: Quantity = field(default_factory=lambda: 350 * pA)
    i_soma2: Quantity = field(default_factory=lambda: -100 * pA)
    i_pv: Quantity = field(default_factory=lambda: 205 * pA)
    i_som: Quantity = field(default_factory=lambda: 0 * pA)
    v_init_sd: Quantity = field(default_factory=lambda: 5 * mV)
    duration: Quantity = field(default_factory=lambda: 6 * second)
    warmup: Quantity = field(default_factory=lambda: 1 * second)
    bin_size: Quantity = field(default_factory=lambda: 100 * ms)
    dt: Quantity = field(default_factory=lambda: 0.1 * ms)
    realizations: int = 1
    target: str = "auto"
    threads: int = 0

    def validate(self) -> "MicrocircuitConfig":
        o = "MicrocircuitConfig"
        for name in ("n_pyr", "n_pv", "n_som"):
            check_count(o, name, getattr(self, name))
        check_probability(o, "p", self.p)
        if self.stp not in ("normal", "swapped"):
            raise MburstError(f"{o}.stp={self.stp!r}; expected 'normal' or 'swapped'")
        if self.signal not in ("sine", "ou"):
            raise MburstError(f"{o}.signal={self.signal!r}; expected 'sine' or 'ou'")
        check_count(o, "realizations", self.realizations)
        for name in ("w_ff_soma", "w_ff_pv", "w_pv_soma", "w_fb_dend", "w_fb_som", "w_som_dend", "w_within_dend"):
            check_nonnegative(o, name, getattr(self, name))
        for name in ("i_soma0", "i_soma_amp", "i_dend0", "i_dend_amp", "i_dend1", "i_soma2", "i_pv", "i_som"):
            check_quantity(o, name, getattr(self, name), pA)
        check_quantity(o, "v_init_sd", self.v_init_sd, mV, nonnegative=True)
        for name in ("period_1", "period_2", "signal_tau", "duration", "bin_size", "dt"):
            check_quantity(o, name, getattr(self, name), second, positive=True)
        check_quantity(o, "warmup", self.warmup, second, nonnegative=True)
        if self.bin_size < self.dt or self.duration < 10 * self.bin_size:
            raise MburstError(f"{o}: need dt <= bin_size and duration >= 10 bins "
                              f"(dt={self.dt!r}, bin_size={self.bin_size!r}, duration={self.duration!r})")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise MburstError(f"{o}.threads={self.threads!r} must be an integer >= 0")
        return self

    def p_for(self, n_pre: int, n_ref: int) -> float:
        """Connection probability from ``n_pre`` cells: ``min(1, p n_ref / n_pre)`` if ``keep_indegree``, else ``p``.

        Parameters
        ----------
        n_pre, n_ref : int
            Presynaptic population size, here and in the 4000/1000/1000 reference circuit.

        Returns
        -------
        float
        """
        if not self.keep_indegree:
            return float(self.p)
        return indegree_p(n_pre, n_ref, self.p)


def drive_signals(config: MicrocircuitConfig, step: float, rng: np.random.Generator) -> np.ndarray:
    """The two input signals s1, s2 sampled every ``step`` seconds from t = 0 to warm-up + duration.

    ``'sine'``: ``sin(2 pi (t - warmup)/period_k)`` after the warm-up and 0 during it (the original
    switches the sine injectors on after its burn-in); ``'ou'``: :func:`smooth_signals` (present from t = 0).

    Parameters
    ----------
    config : MicrocircuitConfig
        Signal kind, periods, ``signal_tau``, warm-up and duration.
    step : float (s)
        Sample interval.
    rng : numpy.random.Generator
        Used by ``'ou'`` only.

    Returns
    -------
    numpy.ndarray, shape (2, round((warmup + duration)/step) + 1)
        s1 and s2, dimensionless (unit amplitude or variance).
    """
    total = float((config.warmup + config.duration) / second)
    n = int(round(total / step)) + 1
    if config.signal == "ou":
        return smooth_signals(n, step, float(config.signal_tau / second), rng)
    t = np.arange(n) * step - float(config.warmup / second)
    periods = (float(config.period_1 / second), float(config.period_2 / second))
    return np.stack([np.where(t >= 0, np.sin(2 * np.pi * t / per), 0.0) for per in periods])


def _simulate(config: MicrocircuitConfig, sig: np.ndarray, sig_step: float, seed: int, tag: str,
              progress: bool) -> dict:
    """One realization: build, run, and return both layers' spikes (indices, times in s) and run info."""
    from brian2 import Network, defaultclock, seed as brian_seed

    from neurons.bursts import BurstMonitor
    from neurons.device import last_build_timers, use_target
    from neurons.inputs import payeur_background
    from neurons.interneurons import pv_group, som_group
    from neurons.pyramidal import pyramidal_group
    from neurons.synapses import connect

    n_total = 2 * config.n_pyr + config.n_pv + (config.n_som if config.som else 0)
    total = config.warmup + config.duration
    target = use_target(config.target, threads=config.threads, tag=f"{tag}_som{int(config.som)}",
                        n_neurons=n_total, duration=total, dt=config.dt)
    defaultclock.dt = config.dt
    brian_seed(seed)

    drive_s1 = TimedArray(config.i_soma0 + config.i_soma_amp * sig[0], dt=sig_step * second)
    drive_d2 = TimedArray(config.i_dend0 + config.i_dend_amp * sig[1], dt=sig_step * second)
    L1 = pyramidal_group(config.n_pyr, name="L1")
    L2 = pyramidal_group(config.n_pyr, name="L2")
    pv = pv_group(config.n_pv, name="PV")
    L1.run_regularly("I_ext_s = drive_s1(t)", dt=sig_step * second)
    L1.namespace["drive_s1"] = drive_s1
    L2.run_regularly("I_ext_d = drive_d2(t)", dt=sig_step * second)
    L2.namespace["drive_d2"] = drive_d2
    L1.I_ext_d = config.i_dend1
    L2.I_ext_s = config.i_soma2
    pv.I_ext = config.i_pv
    groups = [L1, L2, pv]
    for g in (L1, L2):
        g.namespace["v_init_sd"] = config.v_init_sd
        g.v_s = "E_L + v_init_sd*randn()"
    n_ref = REFERENCE_SIZES["pyramidal"]
    pp = config.p_for(config.n_pyr, n_ref)
    swapped = config.stp == "swapped"

    def wire(key, pre, post, p, weight, name):
        w = WIRING[key]
        return connect(pre, post, stp_of(w, swapped), w.target, w.receptor, p, weight=weight, name=name)

    objects = [
        wire("ff_soma", L1, L2, pp, config.w_ff_soma, "L1_L2_ff"),
        wire("ff_pv", L1, pv, pp, config.w_ff_pv, "L1_PV"),
        wire("pv_soma", pv, L2, config.p_for(config.n_pv, REFERENCE_SIZES["pv"]), config.w_pv_soma, "PV_L2"),
        wire("fb_dend", L2, L1, pp, config.w_fb_dend, "L2_L1_fb"),
        wire("within_dend", L1, L1, pp, config.w_within_dend, "L1_L1_dend"),
        wire("within_dend", L2, L2, pp, config.w_within_dend, "L2_L2_dend"),
    ]
    objects += payeur_background(L1, "pyramidal") + payeur_background(L2, "pyramidal") + payeur_background(pv, "pv")
    if config.som:
        som = som_group(config.n_som, name="SOM")
        som.I_ext = config.i_som
        groups.append(som)
        objects += [wire("fb_som", L2, som, pp, config.w_fb_som, "L2_SOM"),
                    wire("som_dend", som, L1, config.p_for(config.n_som, REFERENCE_SIZES["som"]), config.w_som_dend,
                         "SOM_L1")]
        objects += payeur_background(som, "som")
    for g in groups[2:]:
        g.namespace["v_init_sd"] = config.v_init_sd
        g.v = "E_L + v_init_sd*randn()"
    mon1 = BurstMonitor(L1, name="mon_L1", online=False)
    mon2 = BurstMonitor(L2, name="mon_L2", online=False)
    net = Network(*groups, *objects, *mon1.objects, *mon2.objects)
    wall0 = time.perf_counter()
    net.run(total, report="text" if progress else None, report_period=10 * second, namespace={})
    out = {"wall_s": time.perf_counter() - wall0, "target": target, "n_neurons": n_total,
           "n_synapses": int(sum(len(o) for o in objects if o.__class__.__name__ == "Synapses")),
           "p_pyr_effective": pp,
           "L1": (np.asarray(mon1.spikes.i[:]), np.asarray(mon1.spikes.t[:] / second)),
           "L2": (np.asarray(mon2.spikes.i[:]), np.asarray(mon2.spikes.t[:] / second))}
    if target == "cpp_standalone":
        out["build_timers"] = last_build_timers()
    return out


def run_propagation(config: MicrocircuitConfig | None = None, seed: int = 0, tag: str = "propagation",
                    progress: bool = True) -> dict:
    """Build and run the microcircuit; return binned rates and the correlations.

    With ``config.realizations = K`` the network is run K times (seeds seed..seed+K-1, same signals):
    E and B are averaged over the runs and P = mean B / mean E.

    Parameters
    ----------
    config : MicrocircuitConfig, optional
        Default ``MicrocircuitConfig()``.
    seed : int, optional
        Seed of the signals and of the first realization.
    tag : str, optional
        Prefix of the standalone build folder.
    progress : bool, optional
        Print progress.

    Returns
    -------
    dict
        ``t`` (bin centres, s), ``s1``, ``s2``, ``L1``/``L2`` = ``dict(E, B, P)``, each shape (n_bins,),
        rates in Hz per neuron over bins of ``config.bin_size`` after the warm-up; ``correlations``
        (r, r_best_lag, lag_s, kind per pair), ``summary``, ``config`` and run info.

    Raises
    ------
    MburstError
        If ``config`` is invalid or its target is unavailable.
    """
    config = (config or MicrocircuitConfig()).validate()
    from neurons.bursts import burst_statistics

    rng = np.random.default_rng(seed)
    sig_step = 1e-3
    sig = drive_signals(config, sig_step, rng)
    total = float((config.warmup + config.duration) / second)
    t0, t1 = float(config.warmup / second), total
    width = float(config.bin_size / second)
    runs, rates = [], {"L1": [], "L2": []}
    for k in range(config.realizations):
        if progress and config.realizations > 1:
            print(f"[propagation] realization {k + 1}/{config.realizations} (seed {seed + k})", flush=True)
        run = _simulate(config, sig, sig_step, seed + k, tag, progress)
        for layer in ("L1", "L2"):
            st = burst_statistics(*run[layer], config.n_pyr, t0, t1, width)
            rates[layer].append((st.event_rate, st.burst_rate, int(st.spike_count.sum()), st.edges))
        runs.append(run)
    layers = {}
    for layer in ("L1", "L2"):
        E = np.mean([r[0] for r in rates[layer]], axis=0)
        B = np.mean([r[1] for r in rates[layer]], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            P = np.where(E > 0, B / np.where(E > 0, E, 1.0), np.nan)
        layers[layer] = {"E": E, "B": B, "P": P}
    edges = rates["L1"][0][3]
    centres = 0.5 * (edges[:-1] + edges[1:])
    # The drive signals averaged over each bin (1 ms samples).
    t_sig = np.arange(sig.shape[1]) * sig_step
    idx = np.digitize(t_sig, edges) - 1
    ok = (idx >= 0) & (idx < len(centres))
    counts = np.bincount(idx[ok], minlength=len(centres))
    s1 = np.bincount(idx[ok], weights=sig[0][ok], minlength=len(centres)) / counts
    s2 = np.bincount(idx[ok], weights=sig[1][ok], minlength=len(centres)) / counts
    L1, L2 = layers["L1"], layers["L2"]
    max_lag = max(1, int(round(0.05 / width)))  # responses may trail their cause by up to 50 ms
    pairs = {
        "L1_E_vs_s1": (s1, L1["E"], "track"),
        "L2_E_vs_L1_E": (L1["E"], L2["E"], "track"),
        "L1_P_vs_L2_B": (L2["B"], L1["P"], "track"),
        "L2_P_vs_s2": (s2, L2["P"], "track"),
        "L1_E_vs_s2": (s2, L1["E"], "cross"),
        "L1_P_vs_s1": (s1, L1["P"], "cross"),
        "L2_E_vs_s2": (s2, L2["E"], "cross"),
        "L1_P_vs_s2": (s2, L1["P"], "info"),
        "L2_B_vs_s1": (s1, L2["B"], "info"),
        "L2_B_vs_s2": (s2, L2["B"], "info"),
        "s1_vs_s2": (s1, s2, "info"),
    }
    correlations = {}
    for key, (cause, effect, kind) in pairs.items():
        r0 = pearson(cause, effect)
        r_best, lag = lagged_pearson(cause, effect, max_lag)
        correlations[key] = {"r": r0, "r_best_lag": r_best, "lag_s": lag * width, "kind": kind}
    p1 = L1["P"][np.isfinite(L1["P"])]
    result = {
        "config": {k: (str(v) if isinstance(v, Quantity) else v) for k, v in asdict(config).items()},
        "seed": seed, "target": runs[0]["target"], "wall_s": float(sum(r["wall_s"] for r in runs)),
        "n_neurons": runs[0]["n_neurons"], "n_synapses": runs[0]["n_synapses"],
        "p_pyr_effective": runs[0]["p_pyr_effective"], "simulated_s": total * config.realizations,
        "pyramidal_spikes": int(sum(r[2] for layer in ("L1", "L2") for r in rates[layer])),
        "t": centres, "s1": s1, "s2": s2, "L1": L1, "L2": L2,
        "correlations": correlations,
        "summary": {
            "L1_E_mean_hz": float(np.mean(L1["E"])), "L2_E_mean_hz": float(np.mean(L2["E"])),
            "L1_P_mean": float(np.mean(p1)) if p1.size else float("nan"),
            "L1_P_range_5_95": float(np.subtract(*np.percentile(p1, [95, 5]))) if p1.size else float("nan"),
            "L1_P_std": float(np.std(p1)) if p1.size else float("nan"),
            "L2_P_mean": float(np.nanmean(L2["P"])),
        },
    }
    if "build_timers" in runs[-1]:
        result["build_timers"] = runs[-1]["build_timers"]
    return result
