"""Rate-vs-spike equivalence: per-layer fidelity, mask scores, scaling over n and T, learning phase.

* per layer: Pearson r and relative error ``sum|E_spk - E_rate| / sum E_rate`` between the
  rate model's expected event rate (``e_ref e`` for hidden layers, ``E(i_scale_out v_out)``
  at the output) and the ensembles' measured event rates, over frames x units; and their ratio at onsets
  and in steady frames (:func:`onset_gains`: the transfer functions are steady states, a cell that was
  silent the frame before has no adaptation yet);
* masks: F1 and accuracy (%) of the rate mask (``sigmoid(v_out) >= 0.5``) and of the spiking
  mask (``E_out > E(0)``) against the ideal binary mask, on the same frames;
* scaling: the same frames for several ``n`` (cells per unit) and read-out windows ``T`` (the frame
  period when streaming, the counting window in settle mode);
* learning phase (:func:`learning_phase_cosine`): a small dense layer of pyramidal
  ensembles; the spiking burst-dependent rule (:mod:`circuits.plasticity`) against the
  rate burstprop update ``Delta W = (b - bbar) e_pre^T`` with ``b - bbar = (p - pbar) e``,
  on the same inputs and teaching currents; their cosine similarity.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from neurons.common import MburstError

from rate_bridge.read_out_ceiling import burst_counting_ceiling, counting_ceiling

__all__ = ["pearson", "onset_gains", "LayerFidelity", "layer_fidelity", "MaskScores", "mask_scores", "BridgeSummary", "summarise",
           "ScalingPoint", "scaling_study", "learning_phase_cosine", "plot_scaling", "check_frames", "spread_frames",
           "frames_with_speech"]


def pearson(a, b) -> float:
    """Pearson correlation of two arrays (flattened); NaN when either is constant or has < 2 entries."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def onset_gains(rate, spk, floor_hz: float = 2.0) -> tuple[float, float, float]:
    """How much the ensembles fire per unit of the rate model's rate, at onsets and in steady frames.

    Over unit-frames ``t >= 1`` (frames in run order) where the rate model's rate is at least ``floor_hz``:
    *onsets*, where its rate the frame before was below a quarter of it, and *steady* frames, where it moved
    by less than 30 %. The calibrated transfer functions are steady states (:mod:`neurons.transfer`), so a
    cell driven after a silent frame, without its adaptation yet, fires above them.

    Parameters
    ----------
    rate, spk : array_like, shape (F, units)
        The rate model's and the ensembles' event rates (Hz).
    floor_hz : float
        Rates below it count as neither.

    Returns
    -------
    (float, float, float)
        ``sum spk / sum rate`` at onsets and in steady frames (NaN where there are none), and the share of
        onsets among the unit-frames above ``floor_hz``.
    """
    rate, spk = np.asarray(rate, float), np.asarray(spk, float)
    now, before, seen = rate[1:], rate[:-1], spk[1:]
    above = now >= floor_hz
    onset = above & (before < 0.25 * now)
    steady = above & (np.abs(now - before) < 0.3 * now)

    def gain(m):
        return float(seen[m].sum() / now[m].sum()) if m.any() else float("nan")

    return gain(onset), gain(steady), float(onset.sum() / above.sum()) if above.any() else float("nan")


@dataclass(frozen=True)
class LayerFidelity:
    """One layer, rate vs spike, over frames x units: ``r`` (Pearson) and ``rel_err``
    (``sum|E_spk - E_rate| / sum E_rate``) of the event rates, their means ``rate_hz`` and
    ``spike_hz`` (Hz), the ensembles' mean ``burst_prob``, burstprop's mean no-teaching ``p_rate`` and
    ``p_r``, its Pearson r with the ensembles' burst probability (where they had events; both NaN
    without feedback); the same with the output taught the target (``burst_prob_teach``, burstprop's
    ``p_rate_teach`` and ``p_r_teach``; NaN without teaching); ``units`` and pyramidal ``cells``;
    ``r_ceiling``: the event r that counting noise alone allows (:func:`rate_bridge.read_out_ceiling.counting_ceiling`); ``p_r_ceiling``:
    the burst-probability r that it allows (:func:`rate_bridge.read_out_ceiling.burst_counting_ceiling`, untaught; NaN without feedback);
    ``p_r_fb``: the ensembles' untaught burst probability against burstprop's without ``h(e)``, the feedback the
    circuit carries (:func:`rate_bridge.rate_reference.feedback_alone`), and ``pbar_r_fb``: burstprop's ``pbar``
    against it (what the missing gain ``h(e)`` alone allows); ``gain_onset``, ``gain_steady`` and ``onset_share``:
    :func:`onset_gains`."""

    layer: str
    units: int
    cells: int
    r: float
    rel_err: float
    rate_hz: float
    spike_hz: float
    burst_prob: float
    p_rate: float
    p_r: float
    burst_prob_teach: float = float("nan")
    p_rate_teach: float = float("nan")
    p_r_teach: float = float("nan")
    r_ceiling: float = float("nan")
    p_r_ceiling: float = float("nan")
    p_r_fb: float = float("nan")
    pbar_r_fb: float = float("nan")
    gain_onset: float = float("nan")
    gain_steady: float = float("nan")
    onset_share: float = float("nan")


def _burst_fidelity(p_spk, p_rate) -> tuple[float, float, float]:
    """(mean spiking burst probability, mean burstprop's, their Pearson r where the ensembles had events)."""
    if p_spk is None or p_rate is None:
        return float("nan"), float("nan"), float("nan")
    seen = np.isfinite(p_spk)
    return (float(np.nanmean(p_spk)) if seen.any() else float("nan"), float(p_rate.mean()),
            pearson(p_rate[seen], p_spk[seen]))


def layer_fidelity(result) -> list[LayerFidelity]:
    """Per-layer fidelity (:class:`LayerFidelity`, forward order) of a :class:`rate_bridge.convert.SpikingRun`."""
    rows = []
    for name, rate in result.rate_hz.items():
        spk = result.spike_hz[name]
        pb = result.burst_prob[name]
        n_per = result.cells[name] / rate.shape[1]
        fb = result.rate_burst_prob_fb.get(name)
        _, p_rate, p_r = _burst_fidelity(pb, result.rate_burst_prob.get(name))
        teach = _burst_fidelity(result.burst_prob_teach.get(name), result.rate_burst_prob_teach.get(name))
        rows.append(LayerFidelity(
            layer=name, units=int(rate.shape[1]), cells=int(result.cells[name]), r=pearson(rate, spk),
            rel_err=float(np.abs(spk - rate).sum() / max(np.abs(rate).sum(), 1e-12)),
            rate_hz=float(rate.mean()), spike_hz=float(spk.mean()),
            burst_prob=float(np.nanmean(pb)) if np.isfinite(pb).any() else float("nan"),
            p_rate=p_rate, p_r=p_r, burst_prob_teach=teach[0], p_rate_teach=teach[1], p_r_teach=teach[2],
            r_ceiling=counting_ceiling(rate, spk, n_per, result.count_window_s),
            p_r_ceiling=burst_counting_ceiling(result.rate_burst_prob[name], pb, spk * n_per * result.count_window_s,
                                               result.burst_span) if name in result.rate_burst_prob else float("nan"),
            p_r_fb=_burst_fidelity(pb, fb)[2] if fb is not None else float("nan"),
            pbar_r_fb=pearson(result.rate_burst_prob[name], fb) if fb is not None else float("nan"),
            **dict(zip(("gain_onset", "gain_steady", "onset_share"), onset_gains(rate, spk)))))
    return rows


@dataclass(frozen=True)
class MaskScores:
    """A binary mask against the ideal binary mask: ``f1`` (0..1) and ``accuracy`` (%)."""

    f1: float
    accuracy: float


def mask_scores(pred, truth) -> MaskScores:
    """F1 and accuracy of mask ``pred`` (bool) against the IBM ``truth`` (>= 0.5 is 1), any equal shapes."""
    p = np.asarray(pred, bool)
    t = np.asarray(truth, float) >= 0.5
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    tn = int(p.size - tp - fp - fn)
    denom = 2 * tp + fp + fn
    return MaskScores(f1=2 * tp / denom if denom else 0.0, accuracy=100.0 * (tp + tn) / max(p.size, 1))


@dataclass(frozen=True)
class BridgeSummary:
    """One run's equivalence: per-layer ``layers``, the ``rate`` and ``spike`` masks' scores, ``frames``, spikes,
    events and synaptic events per frame (counting windows, interneurons included) and wall times (s)."""

    layers: list
    rate: MaskScores
    spike: MaskScores
    frames: int
    spikes_per_frame: float
    events_per_frame: float
    synops_per_frame: float
    wall_build_run_s: float
    wall_decode_s: float

    @property
    def r_out(self) -> float:
        """Pearson r of the output layer's event rates."""
        return next(r.r for r in self.layers if r.layer == "out")


def summarise(result, ibm) -> BridgeSummary:
    """Fidelity rows, both masks' scores against ``ibm`` [F, bins] and per-frame counts of a
    :class:`rate_bridge.convert.SpikingRun`."""
    from rate_bridge.energy import total_counts

    tot = total_counts(result.counts)
    fr = result.frames
    return BridgeSummary(layer_fidelity(result), mask_scores(result.mask_rate, ibm), mask_scores(result.mask_spike, ibm),
                         fr, tot.spikes / fr, tot.events / fr, tot.synops / fr, result.wall_build_run_s,
                         result.wall_decode_s)


@dataclass(frozen=True)
class ScalingPoint:
    """One setting of a scaling study (the frontier): what varied (``vary``: 'n', 'n_conv', 'T' or 'ablate'),
    the setting (``ablated``: the circuit part switched off, '' for none; ``window_ms``: the read-out window, i.e.
    the frame period when streaming), F1 of both models, output r, spikes and synaptic events per frame, wall
    time (s), the ``frames`` run and ``counts``: the ledger's totals over their counting windows
    (:meth:`rate_bridge.ledger.LayerCounts.as_dict`, device steps included), which price the setting on every
    device (:func:`rate_bridge.frontier.scaling_row`)."""

    vary: str
    ablated: str
    n: int
    n_conv: int
    window_ms: float
    f1_spike: float
    f1_rate: float
    r_out: float
    spikes_per_frame: float
    synops_per_frame: float
    wall_s: float
    frames: int
    counts: dict


def scaling_study(model, audio, visual, ibm, base, ns=(), ts_ms=(), n_convs=(), ablates=(),
                  progress: bool = True) -> list:
    """Run the same frames for each n in ``ns``, each n_conv in ``n_convs``, each read-out window in
    ``ts_ms`` (ms; the frame period when ``base`` streams, the counting window in settle mode) and each
    circuit part in ``ablates`` switched off (:func:`circuits.ensembles.ablate`), the other settings at
    ``base``.

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
    audio, visual : torch.Tensor, shape (F, 1, H, W)
        The frames (``visual`` None for audio-only models).
    ibm : array_like, shape (F, bins)
        Their ideal binary mask.
    base : rate_bridge.convert.BridgeConfig
    ns, ts_ms, n_convs, ablates : sequence
        Settings to scan, one at a time.
    progress : bool

    Returns
    -------
    list of ScalingPoint
        One per setting, with its ledger totals (run without teaching).
    """
    from circuits.ensembles import ablate
    from rate_bridge.convert import SpikingMBURST
    from rate_bridge.energy import total_counts

    rows = []
    window = "frame_period_ms" if base.mode == "stream" else "t_count_ms"
    settings = [("n", n, dataclasses.replace(base, n=int(n))) for n in ns]
    settings += [("n_conv", n, dataclasses.replace(base, n_conv=int(n))) for n in n_convs]
    settings += [("T", t, dataclasses.replace(base, **{window: float(t)})) for t in ts_ms]
    settings += [("ablate", part, dataclasses.replace(ablate(base, [part]), teach=False)) for part in ablates]
    for what, value, cfg in settings:
        t0 = time.perf_counter()
        run = SpikingMBURST(model, dataclasses.replace(cfg, teach=False)).run(audio, visual, progress=progress)
        s = summarise(run, ibm)
        rows.append(ScalingPoint(what, value if what == "ablate" else "", cfg.n, cfg.n_conv, cfg.count_window_ms,
                                 s.spike.f1, s.rate.f1, s.r_out, s.spikes_per_frame, s.synops_per_frame,
                                 time.perf_counter() - t0, s.frames, total_counts(run.counts).as_dict()))
    return rows


def learning_phase_cosine(n_pre_units: int = 6, n_post_units: int = 6, n: int = 20, duration_s: float = 4.0,
                          baseline_s: float = 3.0, eta: float = 1e-3, seed: int = 0, target: str = "cpp_standalone",
                          cal=None) -> dict:
    """Spiking burst-dependent updates vs rate burstprop updates for one dense layer.

    Pre units: ensembles of ``n`` pyramidal cells with somatic currents spread over the
    calibrated range; post units: ensembles with their own somatic currents and a teaching
    current into the dendrites (positive or negative per unit), switched on after
    ``baseline_s`` (plasticity gated off then, so ``Pbar`` settles on the no-teaching burst
    probability). Silent plastic synapses (all cell pairs) accumulate ``Delta w`` during the
    teaching window of ``duration_s``.

    Rate side (same currents, calibrated transfer functions): ``e_pre = E(I_pre)``,
    ``e_post = E(I_post)``, ``p = P(I_d + I_teach)``, ``pbar = P(I_d)``;
    ``Delta W_rate = (p - pbar) e_post e_pre^T`` (the burstprop ``(b - bbar) e_pre^T``).
    Spiking: ``Delta W_spk[b, a]`` = mean over the cell pairs of units (b, a).
    Returns the cosine similarity and both matrices.
    """
    from brian2 import Network, TimedArray, defaultclock, ms, pA, second
    from brian2 import seed as brian_seed

    from circuits.plasticity import BurstPlasticityParams, burst_plastic_synapses
    from neurons.device import use_target
    from neurons.inputs import payeur_background
    from neurons.pyramidal import pyramidal_group

    from rate_bridge.burstprop.calibrated import default_calibration

    cal = cal or default_calibration()
    rng = np.random.default_rng(seed)
    use_target(target, tag="bridge_learning")
    defaultclock.dt = 0.1 * ms
    brian_seed(seed)
    i_d = float(cal.fit.meta.get("I_d_fixed_for_event_rate", 100.0))
    I_pre = rng.uniform(-100.0, 600.0, n_pre_units)
    I_post = rng.uniform(0.0, 600.0, n_post_units)
    I_teach = rng.uniform(-300.0, 300.0, n_post_units)
    pre = pyramidal_group(n_pre_units * n, name="learn_pre")
    post = pyramidal_group(n_post_units * n, name="learn_post")
    pre.I_ext_s = np.repeat(I_pre, n) * pA
    pre.I_ext_d = i_d * pA
    post.I_ext_s = np.repeat(I_post, n) * pA
    teach = TimedArray(np.vstack([np.full((1, n_post_units), i_d), i_d + I_teach[None, :]]) * pA,
                       dt=baseline_s * second)
    post.run_regularly("I_ext_d = teach(t, i // n_cells)", dt=1 * ms)
    post.namespace.update({"teach": teach, "n_cells": n})
    gate = TimedArray(np.array([0.0, 1.0]), dt=baseline_s * second)
    params = BurstPlasticityParams(eta=eta, w_min=-1e9, w_max=1e9, tau_avg=2 * second)
    ii, jj = np.meshgrid(np.arange(len(pre)), np.arange(len(post)), indexing="ij")
    syn = burst_plastic_synapses(pre, post, params, i=ii.ravel(), j=jj.ravel(), w_init=0.0, gate=gate,
                                 name="learn_syn")
    syn.w = 0.0
    net = Network(pre, post, syn, *payeur_background(pre, "pyramidal"), *payeur_background(post, "pyramidal"))
    net.run((baseline_s + duration_s) * second)
    w = np.asarray(syn.w[:]).reshape(len(pre), len(post))
    dw_spk = w.reshape(n_pre_units, n, n_post_units, n).mean((1, 3)).T  # [post, pre]
    e_pre = cal.fit.event_rate(I_pre)
    e_post = cal.fit.event_rate(I_post)
    p = cal.fit.burst_prob(i_d + I_teach)
    pbar = cal.fit.burst_prob(np.full(n_post_units, i_d))
    dw_rate = ((p - pbar) * e_post)[:, None] * e_pre[None, :]
    cos = float((dw_spk * dw_rate).sum() / (np.linalg.norm(dw_spk) * np.linalg.norm(dw_rate) + 1e-300))
    return {"cosine": cos, "dw_spike": dw_spk, "dw_rate": dw_rate, "n": n, "duration_s": duration_s,
            "I_pre_pA": I_pre, "I_post_pA": I_post, "I_teach_pA": I_teach}


def plot_scaling(rows: list, path) -> None:
    """F1 (spiking, and the rate model's) against spikes per frame for :class:`ScalingPoint` rows; a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for what, marker in (("n", "o"), ("n_conv", "^"), ("T", "s"), ("ablate", "x")):
        sel = [r for r in rows if r.vary == what]
        if not sel:
            continue
        x = [r.spikes_per_frame for r in sel]
        ax.plot(x, [r.f1_spike for r in sel], marker=marker, ls="-" if what != "ablate" else "none",
                label=f"spiking, varying {what}" if what != "ablate" else "spiking, one part off")
        for r in sel:
            lab = {"n": f"n={r.n}", "n_conv": f"n_conv={r.n_conv}", "T": f"T={r.window_ms:g} ms",
                   "ablate": f"no {r.ablated}"}[what]
            ax.annotate(lab, (r.spikes_per_frame, r.f1_spike), fontsize=9)
    if rows:
        ax.axhline(rows[0].f1_rate, color="k", ls="--", label="rate model")
    ax.set_xscale("log")
    ax.set_xlabel("spikes per frame (pyramidal and interneurons, read-out windows)")
    ax.set_ylabel("mask F1 against the ideal binary mask")
    ax.set_title("Fidelity against cost of the spiking circuit", fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def check_frames(n_frames: int, available: int, arg: str = "--frames") -> int:
    """``n_frames``, checked: a positive integer no larger than ``available``.

    Raises
    ------
    MburstError
        Otherwise, naming ``arg``.
    """
    if not isinstance(n_frames, int) or n_frames < 1:
        raise MburstError(f"{arg} must be a positive integer, got {n_frames!r}")
    if n_frames > available:
        raise MburstError(f"{arg} {n_frames}: only {available} test frames available")
    return n_frames


def spread_frames(n_frames: int, available: int, arg: str = "--frames") -> np.ndarray:
    """``n_frames`` indices spread evenly over ``available`` test frames (first and last included), so a
    short study samples every utterance and SNR instead of the silent lead-in of the first utterance."""
    check_frames(n_frames, available, arg)
    return np.linspace(0, available - 1, n_frames).round().astype(np.int64)


def frames_with_speech(ibm, n_frames: int, arg: str = "--frames") -> np.ndarray:
    """``n_frames`` consecutive frame indices where the ideal binary mask ``ibm`` [F, bins] holds the most speech
    (positives): a stream in time order whose F1 means something; the first such stretch.

    Raises
    ------
    MburstError
        More frames asked for than there are (:func:`check_frames`, naming ``arg``).
    """
    check_frames(n_frames, len(ibm), arg)
    per_frame = np.asarray(ibm, float).reshape(len(ibm), -1).sum(1)
    start = int(np.argmax(np.convolve(per_frame, np.ones(n_frames), mode="valid")))
    return np.arange(start, start + n_frames)

