"""What ``mburst learn`` writes: metrics.json, learning.md, learning_curve.csv, learning.png (and, for
``--counting-ceiling``, ceiling.md/.json)."""
from __future__ import annotations

from pathlib import Path

DEVICE_COST = ("none: no device of rate_bridge/devices.py states an energy per synaptic weight update; the counts are "
               "given without joules")


def learn_report(args, cfg, net, settings, learned, f1: dict, start, reinit, wall_s: float) -> dict:
    """metrics.json's content (``args``: the parsed options; ``reinit``: the layers re-initialised; ``start``: the
    model learning started from; ``learned``: the :class:`rate_bridge.learning.LearnState`)."""
    import numpy as np

    from rate_bridge.learning import cosine

    gap = f1["trained"] - f1["start"]
    layers = {}
    for name in settings.layers:
        w0 = start.burst_layers()[name].weight.detach().double().numpy()
        ds, db, dbs = learned.dw_spiking[name], learned.dw_burstprop[name], learned.dw_burstprop_same[name]
        c = learned.counts[name]
        layers[name] = {
            "cosine": cosine(ds, db), "cosine_same_weights": cosine(ds, learned.dw_burstprop_same[name]),
            "cosine_same_weights_centered": cosine(ds - ds.mean(), learned.dw_burstprop_same[name]
                                                   - learned.dw_burstprop_same[name].mean()),
            "cosine_circuit_rates": cosine(learned.dw_circuit_rates[name], learned.dw_burstprop_same[name]),
            "cosine_counting_ceiling": float(np.mean([cosine(d, learned.dw_burstprop_same[name])
                                                      for d in learned.dw_counted[name]])),
            **{f"teaching_{k}": float(np.nanmean([row[k] for row in learned.teaching.get(name, [])] or [np.nan]))
               for k in ("burst_r", "event_r", "rule_r", "event_per_burst")},
            "norm_ratio": float(np.linalg.norm(ds) / max(np.linalg.norm(db), 1e-300)),
            "step_ratio_same_weights": float(np.sum(ds * dbs) / max(np.sum(dbs * dbs), 1e-300)),
            "weight_change_spiking": float(np.linalg.norm(ds) / np.linalg.norm(w0)),
            "weight_change_burstprop": float(np.linalg.norm(db) / np.linalg.norm(w0)),
            "mean_dw_spiking": float(ds.mean()), "mean_abs_dw_spiking": float(np.abs(ds).mean()),
            **c, "weight_updates_per_frame": c["weight_updates"] / max(learned.frames, 1)}
    updates = sum(v["weight_updates"] for v in layers.values())
    return {
        "checkpoint": str(args.checkpoint), "layers_learned": list(settings.layers), "frames": learned.frames,
        "chunk": args.chunk, "reinit": list(reinit), "baseline": args.baseline,
        "eta": settings.params.eta, "eta_per_chunk": learned.etas,
        "teach_gain": args.teach_gain,
        "homeostasis": {"gain": settings.homeostasis, "offset_pA": learned.dend_offset_pA,
                        "chunks": learned.homeostasis},
        "lr_burstprop_per_frame": settings.lr, "settle_ms": settings.settle_ms, "w_bound": settings.w_bound,
        "frame_period_ms": cfg.t_frame_ms, "latency_ms": cfg.readout_latency_ms, "cells": net.cells(),
        "f1": f1, "recovery": {k: (f1[k] - f1["start"]) / gap if gap > 0 else float("nan")
                               for k in ("spiking", "burstprop")},
        "curve": learned.curve, "curve_second_half": second_half(learned.curve), "layers": layers,
        "plasticity": {"weight_updates": updates, "weight_updates_per_frame": updates / max(learned.frames, 1),
                       "device_cost": DEVICE_COST},
        "wall_s": wall_s, "circuit_wall_s": learned.wall_s}


def _eta_text(report: dict) -> str:
    """The learning rate: one, or per chunk where an extended run changed it."""
    import itertools

    etas = report["eta_per_chunk"]
    if len(set(etas)) <= 1:
        return f"Learning rate --eta {report['eta']:g}."
    runs, first = [], 1
    for eta, group in itertools.groupby(etas):
        n = len(list(group))
        runs.append(f"{eta:g} (chunk{'s' if n > 1 else ''} {first}{f'-{first + n - 1}' if n > 1 else ''})")
        first += n
    return "Learning rate --eta (changed when the run was extended): " + ", ".join(runs) + "."


def second_half(curve: list) -> dict:
    """Mean test F1 of each rule over the learning curve's points after half the frames (the curve's own test frames):
    online steps make single points swing, so this is steadier than the last."""
    import numpy as np

    late = [r for r in curve if r["frames"] > curve[-1]["frames"] / 2]
    return {"points": len(late), **{k: float(np.mean([r[f"f1_{k}"] for r in late])) if late else float("nan")
                                    for k in ("spiking", "burstprop")}}


def write_learning(out: Path, report: dict) -> None:
    """metrics.json, learning.md, learning_curve.csv and learning.png in ``out`` (atomic writes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig, atomic_write_json, atomic_write_text
    from rate_bridge.update_ceiling import COUNTED_DRAWS

    atomic_write_json(out / "metrics.json", report)
    rows = ["frames,f1_spiking,f1_burstprop"] + [f"{r['frames']},{r['f1_spiking']:.6f},{r['f1_burstprop']:.6f}"
                                                   for r in report["curve"]]
    atomic_write_text(out / "learning_curve.csv", "\n".join(rows) + "\n")
    f1 = report["f1"]
    fresh = ", ".join(report["reinit"]) + " re-initialised" if report["reinit"] else "the checkpoint's weights"
    md = [f"# Learning in spikes: {report['frames']} frames, layers {', '.join(report['layers_learned'])}", "",
          f"Start: {fresh}. The rule's Pbar: --baseline {report['baseline']}. {_eta_text(report)} Mean dW of the spiking rule "
          + ", ".join(f"{k} {r['mean_dw_spiking']:+.3g} (mean |dW| {r['mean_abs_dw_spiking']:.3g})"
                      for k, r in report["layers"].items())
          + "; cosine at the same weights with each change's mean removed (a shared uniform change does not count): "
          + ", ".join(f"{k} {r['cosine_same_weights_centered']:.3f}" for k, r in report["layers"].items()) + ".", "",
          f"Test F1: trained {f1['trained']:.4f}, start {f1['start']:.4f}, spiking rule {f1['spiking']:.4f}, "
          f"burstprop {f1['burstprop']:.4f} (recovered fraction of the gap: spiking "
          f"{report['recovery']['spiking']:.3f}, burstprop {report['recovery']['burstprop']:.3f}).", "",
          f"Learning curve, mean over its second half ({report['curve_second_half']['points']} points, the curve's "
          f"test frames; start {report['curve'][0]['f1_spiking']:.4f}): spiking "
          f"{report['curve_second_half']['spiking']:.4f}, burstprop {report['curve_second_half']['burstprop']:.4f}.", "",
          "The output's untaught burst probability per chunk (the teacher assumes the fit's mid-point): "
          + ", ".join(f"{h['pbar_untaught']:.3f}" for h in report["homeostasis"]["chunks"])
          + (f"; its dendrites' homeostasis (--homeostasis {report['homeostasis']['gain']:g}) ran them at "
             + ", ".join(f"{h['offset_pA']:+.0f}" for h in report["homeostasis"]["chunks"]) + " pA"
             if report["homeostasis"]["gain"] else "") + ". What its rule received of the asked change, up / down: "
          + ", ".join("{:.2f} / {:.2f}".format(*h.get("delivered", [float("nan")] * 2))
                      for h in report["homeostasis"]["chunks"]) + ".", "",
          "| layer | cosine (trajectories) | cosine (same weights) | cosine, circuit's rates | counting ceiling | "
          "norm ratio | step along burstprop's | rel. change spiking | rel. change burstprop | weight updates per "
          "frame | teaching r: bursts / events / B - Pbar E | events moved per burst |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["layers"].items():
        md.append(f"| {name} | {r['cosine']:.3f} | {r['cosine_same_weights']:.3f} | {r['cosine_circuit_rates']:.3f} | "
                  f"{r['cosine_counting_ceiling']:.3f} | "
                  f"{r['norm_ratio']:.3g} | {r['step_ratio_same_weights']:.3g} | "
                  f"{r['weight_change_spiking']:.3g} | {r['weight_change_burstprop']:.3g} | "
                  f"{r['weight_updates_per_frame']:.4g} | {r['teaching_burst_r']:.3f} / {r['teaching_event_r']:.3f} / "
                  f"{r['teaching_rule_r']:.3f} | {r['teaching_event_per_burst']:.3g} |")
    md += ["", "Cosine, circuit's rates: burstprop's update written with the circuit's burst probabilities (taught "
           "minus untaught) and event rates, against burstprop's at the same weights: the teaching the circuit's "
           "feedback carries, without the rule's spike-timing noise. Step along burstprop's: the spiking change "
           "projected on burstprop's at the same weights, in units of it (1: the rule moves as far along burstprop's "
           "direction as burstprop at the matched rate). Counting ceiling: the same-weights cosine that "
           "burstprop's own rates and burst probabilities would reach if counted in ensembles of this many cells "
           f"(mean of {COUNTED_DRAWS} draws; rate_bridge.update_ceiling). Teaching r: Pearson r of the ensembles' "
           "change (taught minus untaught, frames x units) of burst rate, of event rate and of B - Pbar E (what the "
           "rule learns from) with burstprop's b - bbar, mean over chunks; events moved per burst: the event rate's "
           "change per unit of burst-rate change along b - bbar (burstprop: 0; rate_bridge.teaching).", "", f"Plasticity: {report['plasticity']['weight_updates_per_frame']:.4g} weight updates per frame; device "
           f"cost {report['plasticity']['device_cost']}."]
    atomic_write_text(out / "learning.md", "\n".join(md) + "\n")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = [r["frames"] for r in report["curve"]]
    ax.plot(x, [r["f1_spiking"] for r in report["curve"]], "o-", label="spiking rule (circuit)")
    ax.plot(x, [r["f1_burstprop"] for r in report["curve"]], "s--", label="burstprop (rate model, SGD)")
    ax.axhline(f1["trained"], color="k", ls=":", label="trained checkpoint")
    ax.set_xlabel("training frames streamed")
    ax.set_ylabel("test mask F1 (rate model with the learned weights)")
    ax.set_title(f"Learning {', '.join(report['layers_learned'])}", fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, out / "learning.png")
    plt.close(fig)


def write_ceiling(out: Path, table: dict, meta: dict) -> None:
    """ceiling.json and ceiling.md in ``out``: ``table`` ``{cells: {layer: cosine}}`` of
    :func:`rate_bridge.update_ceiling.ceiling_scan` and what it was measured on (``meta``)."""
    from neurons.common import atomic_write_json, atomic_write_text
    from rate_bridge.update_ceiling import COUNTED_DRAWS

    layers = list(next(iter(table.values())))
    atomic_write_json(out / "ceiling.json", {**meta, "draws": COUNTED_DRAWS,
                                             "cosine": {str(n): row for n, row in table.items()}})
    md = [f"# Counting-noise ceiling of the spiking rule's update ({meta['frames']} frames, chunks of {meta['chunk']})",
          "", "Cosine between burstprop's update and the same update counted in ensembles (events Poisson, bursts "
          "binomial, presynaptic traces Poisson; paired untaught pass subtracted; rate_bridge.update_ceiling), summed "
          f"over chunks at the start weights, mean of {COUNTED_DRAWS} draws; convolutional units keep "
          f"{meta['n_conv']} cells; frame period {meta['frame_period_ms']:g} ms.", "",
          "| cells per dense/output unit | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    md += [f"| {n} | " + " | ".join(f"{row[k]:.3f}" for k in layers) + " |" for n, row in table.items()]
    atomic_write_text(out / "ceiling.md", "\n".join(md) + "\n")
    print("\n".join(md[4:]))
