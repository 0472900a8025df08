"""The burst-multiplexing microcircuit of Payeur et al. (2021, Fig. 3): propagation of two signals.

Two layers of two-compartment pyramidal cells (:mod:`neurons.pyramidal`), a PV
population (feedforward inhibition of layer 2's somata) and a SOM population
(feedback inhibition of layer 1's dendrites). Connectivity and weights (in
leak-conductance units of the target) from reference.md section 3::

    L1 pyr -> L2 soma   AMPA, STD, 0.05        L1 pyr -> PV        AMPA, STD, 0.05
    PV     -> L2 soma   GABA,      0.07        L2 pyr -> L1 dend   AMPA, STF, 0.37
    L2 pyr -> SOM       AMPA, STF, 0.3         SOM    -> L1 dend   GABA,      0.035
    Lk pyr -> Lk dend   GABA, STF, 0.1   (within-layer dendritic inhibition, k = 1, 2)
    background: Poisson 500 Hz E/I per neuron (pyr soma 0.35/0.35, dend 0.05/0.05,
                SOM 0.4/0.5, PV 0.75/1.125)

all with connection probability p = 0.05. Layer 1's somata receive the slow
signal s1(t), layer 2's dendrites the independent signal s2(t) (injected
currents). The claim: L1 events follow s1, L2 events follow L1 events (STD
transmits event rates), and L1 burst probability follows L2 bursts (STF
transmits burst rates): two signals multiplexed in one spike train.

Reduced sizes keep each cell's in-degree as in the 4000/1000/1000 circuit by
raising p (``keep_indegree=True``): p_eff = min(1, p * N_ref / N_pre).

Ablations: ``som=False`` removes the SOM population; ``stp='swapped'`` uses STF
where the circuit has STD and vice versa.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from brian2 import Hz, Quantity, TimedArray, ms, pA, second

from neurons.common import MburstError
from neurons.params import check_count, check_nonnegative, check_probability, check_quantity

__all__ = ["MicrocircuitConfig", "smooth_signals", "run_propagation", "pearson", "lagged_pearson"]

REFERENCE_SIZES = {"n_pyr": 4000, "n_pv": 1000, "n_som": 1000}


@dataclass(frozen=True)
class MicrocircuitConfig:
    """Sizes, connectivity, drive and run options of the propagation experiment.

    Drive: ``I_s1(t) = i_soma0 + i_soma_amp * s1(t)`` into layer 1's somata and
    ``I_d2(t) = i_dend0 + i_dend_amp * s2(t)`` into layer 2's dendrites, where s1,
    s2 are unit-variance smooth signals (correlation time ``signal_tau``) made
    exactly orthogonal over the analysed window. ``bin_size`` bins the rates.
    """

    n_pyr: int = 4000
    n_pv: int = 1000
    n_som: int = 1000
    p: float = 0.05
    keep_indegree: bool = True
    som: bool = True
    stp: str = "normal"
    w_ff_soma: float = 0.05
    w_ff_pv: float = 0.05
    w_pv_soma: float = 0.07
    w_fb_dend: float = 0.37
    w_fb_som: float = 0.3
    w_som_dend: float = 0.035
    w_within_dend: float = 0.1
    i_soma0: Quantity = field(default_factory=lambda: 150 * pA)
    i_soma_amp: Quantity = field(default_factory=lambda: 120 * pA)
    i_dend0: Quantity = field(default_factory=lambda: 100 * pA)
    i_dend_amp: Quantity = field(default_factory=lambda: 250 * pA)
    signal_tau: Quantity = field(default_factory=lambda: 250 * ms)
    duration: Quantity = field(default_factory=lambda: 6 * second)
    warmup: Quantity = field(default_factory=lambda: 0.5 * second)
    bin_size: Quantity = field(default_factory=lambda: 50 * ms)
    dt: Quantity = field(default_factory=lambda: 0.1 * ms)
    target: str = "auto"
    threads: int = 0

    def validate(self) -> "MicrocircuitConfig":
        o = "MicrocircuitConfig"
        for name in ("n_pyr", "n_pv", "n_som"):
            check_count(o, name, getattr(self, name))
        check_probability(o, "p", self.p)
        if self.stp not in ("normal", "swapped"):
            raise MburstError(f"{o}.stp={self.stp!r}; expected 'normal' or 'swapped'")
        for name in ("w_ff_soma", "w_ff_pv", "w_pv_soma", "w_fb_dend", "w_fb_som", "w_som_dend", "w_within_dend"):
            check_nonnegative(o, name, getattr(self, name))
        for name in ("i_soma0", "i_soma_amp", "i_dend0", "i_dend_amp"):
            check_quantity(o, name, getattr(self, name), pA)
        for name in ("signal_tau", "duration", "bin_size", "dt"):
            check_quantity(o, name, getattr(self, name), second, positive=True)
        check_quantity(o, "warmup", self.warmup, second, nonnegative=True)
        if self.bin_size < self.dt or self.duration < 10 * self.bin_size:
            raise MburstError(f"{o}: need dt <= bin_size and duration >= 10 bins "
                              f"(dt={self.dt!r}, bin_size={self.bin_size!r}, duration={self.duration!r})")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise MburstError(f"{o}.threads={self.threads!r} must be an integer >= 0")
        return self

    def p_for(self, n_pre: int, n_ref: int) -> float:
        """Connection probability from a population of ``n_pre`` cells (in-degree kept if asked)."""
        if not self.keep_indegree:
            return float(self.p)
        return float(min(1.0, self.p * n_ref / n_pre))


def smooth_signals(n_steps: int, step: float, tau: float, rng: np.random.Generator, n: int = 2) -> np.ndarray:
    """``n`` smooth unit-variance signals (Ornstein-Uhlenbeck noise filtered twice with ``tau``).

    The rows are made exactly orthogonal and zero-mean (Gram-Schmidt), so their
    sample Pearson correlation is 0: any correlation measured downstream comes
    from the circuit, not from a chance overlap of finite random signals.
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
    """Pearson correlation of two 1-D arrays (NaN entries of either are dropped pairwise)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def lagged_pearson(a, b, max_lag: int) -> tuple[float, int]:
    """The Pearson r of ``a`` against ``b`` delayed by 0..max_lag bins with the largest |r|, and that lag."""
    best = (pearson(a, b), 0)
    for lag in range(1, max_lag + 1):
        r = pearson(a[:-lag], b[lag:])
        if np.isfinite(r) and abs(r) > abs(best[0]):
            best = (r, lag)
    return best


def run_propagation(config: MicrocircuitConfig | None = None, seed: int = 0, tag: str = "propagation",
                    progress: bool = True) -> dict:
    """Build and run the microcircuit; return binned rates and the correlations.

    Returns ``dict(t, s1, s2, L1=dict(E, B, P), L2=dict(E, B, P), correlations, ...)``
    with rates in Hz per neuron over bins of ``config.bin_size`` after the warm-up.
    """
    config = (config or MicrocircuitConfig()).validate()
    from brian2 import Network, defaultclock, seed as brian_seed

    from neurons.bursts import BurstMonitor, burst_statistics
    from neurons.device import last_build_timers, use_target
    from neurons.inputs import payeur_background
    from neurons.interneurons import pv_group, som_group
    from neurons.params import STD, STF
    from neurons.pyramidal import pyramidal_group
    from neurons.synapses import connect

    n_total = 2 * config.n_pyr + config.n_pv + (config.n_som if config.som else 0)
    total = config.warmup + config.duration
    target = use_target(config.target, threads=config.threads, tag=f"{tag}_som{int(config.som)}",
                        n_neurons=n_total, duration=total, dt=config.dt)
    defaultclock.dt = config.dt
    brian_seed(seed)
    rng = np.random.default_rng(seed)

    sig_step = 1e-3
    n_sig = int(round(float(total / second) / sig_step)) + 1
    sig = smooth_signals(n_sig, sig_step, float(config.signal_tau / second), rng)
    i_s1 = config.i_soma0 + config.i_soma_amp * sig[0]
    i_d2 = config.i_dend0 + config.i_dend_amp * sig[1]
    drive_s1 = TimedArray(i_s1, dt=sig_step * second)
    drive_d2 = TimedArray(i_d2, dt=sig_step * second)

    ff, fb = (STD, STF) if config.stp == "normal" else (STF, STD)
    L1 = pyramidal_group(config.n_pyr, name="L1")
    L2 = pyramidal_group(config.n_pyr, name="L2")
    pv = pv_group(config.n_pv, name="PV")
    objects = [L1, L2, pv]
    L1.run_regularly("I_ext_s = drive_s1(t)", dt=sig_step * second)
    L1.namespace["drive_s1"] = drive_s1
    L2.run_regularly("I_ext_d = drive_d2(t)", dt=sig_step * second)
    L2.namespace["drive_d2"] = drive_d2
    n_ref = REFERENCE_SIZES["n_pyr"]
    pp = config.p_for(config.n_pyr, n_ref)
    objects += [
        connect(L1, L2, ff, "soma", "ampa", pp, weight=config.w_ff_soma, name="L1_L2_ff"),
        connect(L1, pv, ff, "soma", "ampa", pp, weight=config.w_ff_pv, name="L1_PV"),
        connect(pv, L2, None, "soma", "gaba", config.p_for(config.n_pv, REFERENCE_SIZES["n_pv"]),
                weight=config.w_pv_soma, name="PV_L2"),
        connect(L2, L1, fb, "dendrite", "ampa", pp, weight=config.w_fb_dend, name="L2_L1_fb"),
        connect(L1, L1, fb, "dendrite", "gaba", pp, weight=config.w_within_dend, name="L1_L1_dend"),
        connect(L2, L2, fb, "dendrite", "gaba", pp, weight=config.w_within_dend, name="L2_L2_dend"),
    ]
    objects += payeur_background(L1, "pyramidal") + payeur_background(L2, "pyramidal") + payeur_background(pv, "pv")
    if config.som:
        som = som_group(config.n_som, name="SOM")
        objects += [som,
                    connect(L2, som, fb, "soma", "ampa", pp, weight=config.w_fb_som, name="L2_SOM"),
                    connect(som, L1, None, "dendrite", "gaba", config.p_for(config.n_som, REFERENCE_SIZES["n_som"]),
                            weight=config.w_som_dend, name="SOM_L1")]
        objects += payeur_background(som, "som")
    mon1 = BurstMonitor(L1, name="mon_L1", online=False)
    mon2 = BurstMonitor(L2, name="mon_L2", online=False)
    net = Network(*objects, *mon1.objects, *mon2.objects)
    wall0 = time.perf_counter()
    net.run(total, report="text" if progress else None, report_period=10 * second, namespace={})
    wall = time.perf_counter() - wall0
    n_syn = int(sum(len(o) for o in objects if o.__class__.__name__ == "Synapses"))

    t0, t1 = float(config.warmup / second), float(total / second)
    width = float(config.bin_size / second)
    st1 = burst_statistics(mon1.spikes.i[:], mon1.spikes.t[:], config.n_pyr, t0, t1, width)
    st2 = burst_statistics(mon2.spikes.i[:], mon2.spikes.t[:], config.n_pyr, t0, t1, width)
    centres = 0.5 * (st1.edges[:-1] + st1.edges[1:])
    # The drive signals averaged over each bin (1 ms samples).
    t_sig = np.arange(n_sig) * sig_step
    idx = np.clip(np.digitize(t_sig, st1.edges) - 1, -1, len(centres))
    ok = (idx >= 0) & (idx < len(centres))
    s1 = np.bincount(idx[ok], weights=sig[0][ok], minlength=len(centres)) / np.bincount(idx[ok], minlength=len(centres))
    s2 = np.bincount(idx[ok], weights=sig[1][ok], minlength=len(centres)) / np.bincount(idx[ok], minlength=len(centres))
    max_lag = max(1, int(round(0.05 / width)))  # responses may trail their cause by up to 50 ms
    pairs = {
        "L1_E_vs_s1": (s1, st1.event_rate, "track"),
        "L2_E_vs_L1_E": (st1.event_rate, st2.event_rate, "track"),
        "L1_P_vs_L2_B": (st2.burst_rate, st1.burst_prob, "track"),
        "L2_P_vs_s2": (s2, st2.burst_prob, "track"),
        "L1_E_vs_s2": (s2, st1.event_rate, "cross"),
        "L1_P_vs_s1": (s1, st1.burst_prob, "cross"),
        "L2_E_vs_s2": (s2, st2.event_rate, "cross"),
        "L1_P_vs_s2": (s2, st1.burst_prob, "info"),
    }
    correlations = {}
    for key, (cause, effect, kind) in pairs.items():
        r0 = pearson(cause, effect)
        r_best, lag = lagged_pearson(cause, effect, max_lag)
        correlations[key] = {"r": r0, "r_best_lag": r_best, "lag_s": lag * width, "kind": kind}
    spikes = int(mon1.spikes.num_spikes + mon2.spikes.num_spikes)
    p1 = st1.burst_prob[np.isfinite(st1.burst_prob)]
    result = {
        "config": {k: (str(v) if isinstance(v, Quantity) else v) for k, v in asdict(config).items()},
        "seed": seed, "target": target, "wall_s": wall, "n_neurons": n_total, "n_synapses": n_syn,
        "p_pyr_effective": pp, "simulated_s": float(total / second), "pyramidal_spikes": spikes,
        "t": centres, "s1": s1, "s2": s2,
        "L1": {"E": st1.event_rate, "B": st1.burst_rate, "P": st1.burst_prob},
        "L2": {"E": st2.event_rate, "B": st2.burst_rate, "P": st2.burst_prob},
        "correlations": correlations,
        "summary": {
            "L1_E_mean_hz": float(np.mean(st1.event_rate)), "L2_E_mean_hz": float(np.mean(st2.event_rate)),
            "L1_P_mean": float(np.mean(p1)) if p1.size else float("nan"),
            "L1_P_range_5_95": float(np.subtract(*np.percentile(p1, [95, 5]))) if p1.size else float("nan"),
            "L1_P_std": float(np.std(p1)) if p1.size else float("nan"),
            "L2_P_mean": float(np.nanmean(st2.burst_prob)),
        },
    }
    if target == "cpp_standalone":
        result["build_timers"] = last_build_timers()
    return result
