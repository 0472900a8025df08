"""The spiking stage: rate-vs-spike equivalence and the spike-level energy table of a model run as the circuit.

Used by ``mburst bridge``, ``mburst energy`` and, through :func:`spiking_section`, by
``mburst reproduce`` (quick profile: a few test frames). Outputs (atomic): ``metrics.json``,
``equivalence.md/.csv``, ``counts.json``, ``bridge.json``,
``energy.md/.csv``, ``energy.png``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from neurons.common import (atomic_savefig, atomic_write_json, atomic_write_text, csv_table,
                            markdown_table)

ENERGY_NOTE = ("Left out of every figure: memory traffic (weights and state; ~5 pJ per 32-bit cache access at 45 nm, "
               "DRAM far more; the scoreboard reports the rate models' bytes per frame beside the compute), spike "
               "routing between cores/chips (except Loihi's 3.5 pJ per spike, one tile hop), static/idle power and "
               "input encoding. Rate models: MACs counted exactly from the layer shapes (zero-padding taps "
               "included) x 4.6 pJ (fp32 MAC, Horowitz 2014), or on a device one synaptic op per MAC plus one neuron "
               "update per unit and frame. Spiking: synaptic events (each presynaptic spike/event x its fan-out) x J "
               "per synaptic op + neuron updates x J per update (+ spikes x J per spike), counted in the frames' "
               "counting windows; neuron updates are counted at the device's step (Loihi 1 ms: 81 pJ when the cell "
               "received a synaptic event or spiked in the step, 52 pJ otherwise; cells whose inputs the ledger does "
               "not know count as active), at the simulation step for devices without one.")


def write_bridge_report(out, model, audio, visual, ibm, cfg, progress: bool = True):
    """Run the equivalence and write the bridge tables (scans: :func:`rate_bridge.frontier.write_scaling`).

    Parameters
    ----------
    out : path
        Output folder (created).
    model : rate_bridge.burstprop.models.AVMaskNet
        Calibrated model to convert.
    audio, visual : torch.Tensor, shape (F, C, H, W)
        Test frames (``visual`` None for audio-only models).
    ibm : array-like, shape (F, bins)
        Ideal binary mask of the frames.
    cfg : rate_bridge.convert.BridgeConfig
        Conversion settings.
    progress : bool
        Frame progress bars.

    Returns
    -------
    summary : rate_bridge.equivalence.BridgeSummary
        Fidelity, mask scores and counts per frame.
    result : rate_bridge.convert.SpikingRun
        The run itself.

    Raises
    ------
    MburstError
        When the model cannot be converted or the settings are invalid.
    """
    from rate_bridge.convert import SpikingMBURST
    from rate_bridge.equivalence import summarise

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    net = SpikingMBURST(model, cfg)
    result = net.run(audio, visual, ibm, progress=progress)
    s = summarise(result, ibm.numpy() if hasattr(ibm, "numpy") else ibm)
    wall = time.perf_counter() - t0
    header = ["layer", "units", "cells", "event r", "r ceiling (counting)", "event rel. error", "rate model Hz", "spiking Hz",
              "burst prob (spiking)", "pbar (burstprop)", "burst prob r", "burst prob r ceiling (counting)",
              "burst prob r vs feedback alone", "pbar r vs feedback alone",
              "burst prob taught (spiking)",
              "p taught (burstprop)", "burst prob r taught", "spiking / rate at onsets", "spiking / rate steady",
              "onset share"]
    rows = [[r.layer, r.units, r.cells, round(r.r, 4), round(r.r_ceiling, 3), round(r.rel_err, 4), round(r.rate_hz, 3),
             round(r.spike_hz, 3), round(r.burst_prob, 3), round(r.p_rate, 3), round(r.p_r, 4), round(r.p_r_ceiling, 3),
             round(r.p_r_fb, 3), round(r.pbar_r_fb, 3),
             round(r.burst_prob_teach, 3), round(r.p_rate_teach, 3), round(r.p_r_teach, 4), round(r.gain_onset, 3),
             round(r.gain_steady, 3), round(r.onset_share, 3)]
            for r in s.layers]
    mh = ["system", "F1", "accuracy %", "frames"]
    mrows = [["rate model", round(s.rate.f1, 4), round(s.rate.accuracy, 2), s.frames],
             ["spiking network", round(s.spike.f1, 4), round(s.spike.accuracy, 2), s.frames]]
    timing = (f"streamed: one frame every {cfg.frame_period_ms:g} ms, output read out {cfg.latency_ms:g} ms after "
              f"each frame's onset ({cfg.latency_ms / cfg.frame_period_ms:g} frames) for {cfg.frame_period_ms:g} ms"
              if cfg.mode == "stream" else f"settle mode: T = {cfg.t_settle_ms:g} ms settle + {cfg.t_count_ms:g} ms count")
    text = (f"# Rate vs spike equivalence\n\n{s.frames} test frames; {sum(result.cells.values())} pyramidal cells; "
            f"{cells_text(cfg)}; {timing}; tau_syn {cfg.tau_syn:g} ms; "
            f"{circuit_parts(cfg)}; target {result.target}; build+run {result.wall_build_run_s:.1f} s.\n\n"
            + markdown_table(header, rows) + "\n" + markdown_table(mh, mrows)
            + f"\nSpiking F1 − rate F1: {s.spike.f1 - s.rate.f1:+.4f}. "
              f"Spikes/frame {s.spikes_per_frame:.0f}, synaptic events/frame {s.synops_per_frame:.0f}.\n\n"
            + "Event r and relative error compare each layer's ensemble event rates with the rate model's "
              "(e_ref e) over frames x units; the r ceiling is what the counting noise of n cells in one read-out "
              "window alone would allow (Poisson-like counts; rate_bridge.read_out_ceiling.counting_ceiling); burst prob r compares the ensembles' bursts/events with burstprop's "
              "burst probability (pbar: no teaching; p: the output taught the ideal binary mask, eq. 3), where "
              "the ensembles had events in the frame's read-out window; its ceiling is what the binomial noise of "
              "counting bursts among those events alone would allow (rate_bridge.read_out_ceiling.burst_counting_ceiling). "
              "Feedback alone is burstprop's untaught burst probability without the gain h(e) (eq. 5 with h = 1): "
              "the feedback the circuit carries (rate_bridge.rate_reference.feedback_alone); the ensembles' r "
              "against it says whether they follow their feedback, burstprop's pbar r against it what the missing "
              "h(e) alone allows. Spiking / rate at onsets and steady: the ensembles' events per unit of the rate "
              "model's rate (>= 2 Hz) where that rate rose from below a quarter of it in the frame before, and where "
              "it moved by less than 30 % (rate_bridge.equivalence.onset_gains); onset share: the onsets among "
              "those unit-frames. The transfer functions are steady states: a cell that was silent has no "
              "adaptation yet."
              "\n")
    atomic_write_text(out / "equivalence.md", text)
    atomic_write_text(out / "equivalence.csv", csv_table(header, rows))
    atomic_write_json(out / "counts.json", {k: v.as_dict() for k, v in result.counts.items()})
    atomic_write_json(out / "metrics.json", bridge_metrics(s, result, cfg, wall))
    atomic_write_json(out / "bridge.json", {"summary": dataclasses.asdict(s) | {"r_out": s.r_out},
                                            "config": dataclasses.asdict(cfg), "i_scale_out": result.i_scale_out,
                                            "cells": result.cells})
    return s, result


def cells_text(cfg) -> str:
    """Cells per unit of a :class:`rate_bridge.convert.BridgeConfig`, in words."""
    out = cfg.cells_per_unit("dense", output=True)
    return (f"n={cfg.n} (dense/output), n_conv={cfg.n_conv}" if out == cfg.n
            else f"n={cfg.n} (dense), n_out={out} (output), n_conv={cfg.n_conv}")


def circuit_parts(cfg) -> str:
    """One line naming the circuit parts on and off in ``cfg``."""
    parts = {"STP": cfg.stp, "feedback": cfg.feedback, "PV/SOM": cfg.interneurons, "excitable dendrites": cfg.dendrites}
    on = [k for k, v in parts.items() if v]
    off = [k for k, v in parts.items() if not v]
    matched = "; weights onto PV/SOM x m_cal/m (--match-interneurons)" if cfg.match_interneurons else ""
    return (f"circuit parts on: {', '.join(on) or 'none'}; off: {', '.join(off) or 'none'}; forward synapses on "
            f"every {cfg.forward_pathway}{matched}")


def bridge_metrics(summary, result, cfg, wall_s: float) -> dict:
    """The bridge's ``metrics.json``: the stable, scripted-against record of one run (NaN written as null).

    Parameters
    ----------
    summary : rate_bridge.equivalence.BridgeSummary
        The run's equivalence.
    result : rate_bridge.convert.SpikingRun
        The run.
    cfg : rate_bridge.convert.BridgeConfig
        Its settings.
    wall_s : float
        Wall time of conversion, build, run and read-out (s).

    Returns
    -------
    dict
        ``mode``, ``frame_period_ms`` (simulated time per frame: settle + count in settle mode),
        ``latency_ms`` (output window start after a frame's onset) and ``latency_frames``, ``window_ms``,
        ``tau_syn_ms``, ``frames``, ``f1_spiking``, ``f1_rate``, ``accuracy_spiking``/``accuracy_rate`` (%),
        ``layers.<name>`` with ``event_r``, ``event_r_ceiling``, ``event_rel_err``, ``gain_onset``, ``gain_steady``
        and ``onset_share`` (:func:`rate_bridge.equivalence.onset_gains`) and, with feedback,
        ``burst_prob_r`` (against burstprop's no-teaching pbar), ``burst_prob_r_ceiling`` (counting noise),
        ``burst_prob_r_feedback_alone`` and ``pbar_r_feedback_alone`` (the ensembles' and burstprop's burst
        probability against burstprop's without h(e)) and with ``teach`` ``burst_prob_r_teach`` (against its p with
        the target taught), ``feedback``, ``interneurons``,
        ``match_interneurons``, ``stp``, ``dendrites``, ``forward_pathway``, ``teach``,
        ``spikes_per_frame``, ``wall_s``, ``cells`` (pyramidal cells).
    """
    def num(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

    layers = {}
    for r in summary.layers:
        layers[r.layer] = {"event_r": num(r.r), "event_r_ceiling": num(r.r_ceiling), "event_rel_err": num(r.rel_err),
                           "gain_onset": num(r.gain_onset), "gain_steady": num(r.gain_steady),
                           "onset_share": num(r.onset_share)}
        if cfg.feedback:
            layers[r.layer] |= {"burst_prob_r": num(r.p_r), "burst_prob_r_ceiling": num(r.p_r_ceiling),
                                "burst_prob_r_feedback_alone": num(r.p_r_fb), "pbar_r_feedback_alone": num(r.pbar_r_fb),
                                "burst_prob": num(r.burst_prob), "pbar": num(r.p_rate)}
        if cfg.feedback and cfg.teach:
            layers[r.layer] |= {"burst_prob_r_teach": num(r.p_r_teach), "burst_prob_teach": num(r.burst_prob_teach),
                                "p_teach": num(r.p_rate_teach)}
    return {"mode": cfg.mode, "frame_period_ms": cfg.t_frame_ms, "latency_ms": cfg.readout_latency_ms,
            "latency_frames": cfg.readout_latency_ms / cfg.t_frame_ms, "window_ms": cfg.count_window_ms,
            "tau_syn_ms": cfg.tau_syn, "frames": summary.frames, "f1_spiking": summary.spike.f1,
            "f1_rate": summary.rate.f1, "accuracy_spiking": summary.spike.accuracy,
            "accuracy_rate": summary.rate.accuracy, "layers": layers, "feedback": cfg.feedback,
            "interneurons": cfg.interneurons, "match_interneurons": cfg.match_interneurons, "stp": cfg.stp,
            "dendrites": cfg.dendrites, "forward_pathway": cfg.forward_pathway, "teach": cfg.teach,
            "spikes_per_frame": summary.spikes_per_frame, "wall_s": wall_s,
            "cells": int(sum(result.cells.values()))}


def rate_entry(model, audio, visual, f1: float | None = None) -> dict:
    """MACs/units per frame and the activation-rate proxy of a rate model on these frames."""
    import torch

    from rate_bridge.energy import activation_rate_proxy, model_macs, model_units

    with torch.no_grad():
        model.eval()
        model(audio, visual if model.visual else None)
    proxy = activation_rate_proxy(model.hidden_activities())
    return {"macs": model_macs(model)["total"], "units": model_units(model)["total"], "f1": f1,
            "active": proxy["overall"]["active"], "mean_e": proxy["overall"]["mean_e"]}


def write_energy_report(out, spiking: dict | None, rate: dict, devices=None) -> str:
    """energy.md/.csv and energy.png (J/frame per model and device), and energy.json (the spiking totals, for
    the scoreboard) when there is a spiking run; returns the markdown section."""
    from rate_bridge.energy import energy_rows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header, rows = energy_rows(spiking, rate, devices)
    cross = cross_check(spiking, rate)
    md = ("## Energy per frame\n\n" + markdown_table(header, rows) + "\n" + ENERGY_NOTE + "\n\n" + cross + "\n")
    if spiking is not None:
        per_layer = [[k, v.spikes, v.events, v.bursts, v.plateaus, v.syn_forward, v.syn_feedback, v.syn_interneuron,
                      v.neuron_updates] for k, v in spiking["layers"].items()]
        lh = ["layer", "spikes", "events", "bursts", "plateaus", "syn forward", "syn feedback", "syn interneuron",
              "neuron updates"]
        md += (f"\nSpiking counts per layer over {spiking['frames']} frames (counting windows only):\n\n"
               + markdown_table(lh, per_layer))
    atomic_write_text(out / "energy.md", "# Energy\n\n" + md)
    atomic_write_text(out / "energy.csv", csv_table(header, rows))
    if spiking is not None:  # the spiking row of the scoreboard (experiments.commands.energy.spiking_rows)
        atomic_write_json(out / "energy.json", {k: spiking.get(k) for k in ("model", "frames", "f1",
                                                                            "readout_latency_ms", "wall_s")}
                          | {"counts": spiking["counts"].as_dict()})
    _plot_energy(header, rows, out / "energy.png")
    return md


def cross_check(spiking: dict | None, rate: dict) -> str:
    """Does the activation-rate ordering of the rate models agree in direction with the spike counts?"""
    names = [m for m in ("unimodal", "multimodal", "mburst") if m in rate]
    order = sorted(names, key=lambda m: rate[m]["active"])
    line = ("Activation-rate proxy (fraction of hidden units with e > 0) on these frames: "
            + ", ".join(f"{m} {rate[m]['active']:.3f}" for m in names) + f" (ascending: {' < '.join(order)}). ")
    if spiking is None:
        return line + "No spiking counts: the cross-check with spike counts is not available."
    sp = spiking["counts"].spikes / spiking["frames"]
    units = spiking.get("units") or 1
    per_unit = sp / units
    line += (f"{spiking['model']}: {sp:.0f} spikes/frame over {units} rate units "
             f"({per_unit:.3f} spikes per unit and frame). ")
    if "mburst" in rate and "multimodal" in rate:
        lower = rate["mburst"]["active"] < rate["multimodal"]["active"]
        line += ("The proxy puts MBURST " + ("below" if lower else "above") + " Multimodal, as Table II does"
                 + ("" if lower else " NOT") + ". ")
        line += ("A calibrated unit's rate is a softplus, positive everywhere (floor r0 = {:.2g} Hz), so the proxy "
                 "(e > 0) counts every calibrated unit as active whether its ensemble fires or not: spike counts track "
                 "the mean event rate, not the fraction of active units, and the proxy cannot rank a calibrated "
                 "MBURST against ReLU models.".format(spiking.get("r0_hz", float("nan"))))
    return line


def _plot_energy(header, rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r[0]}\n{r[1]}" for r in rows]
    vals = [float(r[header.index("J/frame")]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows)), 4))
    ax.bar(range(len(rows)), vals, color=["C3" if "spiking" in r[0] else "C0" for r in rows])
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_ylabel("J per frame")
    ax.set_title("Energy per frame (memory traffic and routing left out)", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def calibrated_twin(model):
    """The same weights with the circuit's calibrated activation (for ReLU checkpoints: an approximate mapping)."""
    from rate_bridge.burstprop.calibrated import CALIBRATED_CIRCUIT, calibrated_names
    from rate_bridge.burstprop.models import build_model

    if model.config.activation in calibrated_names():
        return model, False
    twin = build_model(model.name, dataclasses.replace(model.config, activation=CALIBRATED_CIRCUIT))
    twin.load_state_dict(model.state_dict())
    twin.eval()
    return twin, True


def spiking_record(summary, result, model_name: str, r0_hz: float, readout_latency_ms: float | None = None) -> dict:
    """The spiking row of the energy table (the dict :func:`rate_bridge.energy.energy_rows` reads).

    Parameters
    ----------
    summary : rate_bridge.equivalence.BridgeSummary
        The run's equivalence.
    result : rate_bridge.convert.SpikingRun
        The run.
    model_name : str
        Name of the converted model.
    r0_hz : float
        Event-rate floor of the calibration (Hz).
    readout_latency_ms : float, optional
        Delay of the output read-out after a frame's onset (ms), when known.

    Returns
    -------
    dict
        ``model``, ``frames``, ``counts`` (totals), ``layers`` (per layer), ``f1``, ``units``, ``r0_hz``,
        ``readout_latency_ms``, ``wall_s`` (build and run, s).
    """
    from rate_bridge.energy import total_counts

    return {"model": f"spiking {model_name}", "frames": summary.frames, "counts": total_counts(result.counts),
            "layers": result.counts, "f1": summary.spike.f1, "units": sum(v.shape[1] for v in result.rate_hz.values()),
            "r0_hz": r0_hz, "readout_latency_ms": readout_latency_ms, "wall_s": result.wall_build_run_s}


def spiking_model(corpus, run_dir, train_cfg=None, progress: bool = True):
    """The MBURST the spiking stage converts: the ``spiking`` preset's model (the circuit's regime: activation,
    beta, sizes; :data:`experiments.training.config.PRESETS`), trained (or resumed) in ``run_dir`` with
    ``train_cfg`` (the profile's optimisation; default the preset's epochs and batch size); returns
    ``(model, checkpoint state)``."""
    from experiments.training.checkpoints import load_checkpoint
    from experiments.training.config import PRESETS, TrainConfig
    from experiments.training.train import train
    from rate_bridge.burstprop.models import ModelConfig

    p = PRESETS["spiking"]
    model_cfg = ModelConfig(n_bins=p["bins"], channels=p["channels"], embed=p["embed"], beta=p["beta"],
                            activation=p["activation"])
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").exists():
        cfg = train_cfg or TrainConfig(epochs=p["epochs"], batch_size=p["batch_size"])
        train(corpus, p["model"], model_cfg, cfg, run_dir, resume=True, progress=progress)
    return load_checkpoint(run_dir / "checkpoint.pt")


def spiking_section(out_dir, results, corpus, frames: int = 24, cfg=None, train_cfg=None,
                    progress: bool = True) -> str:
    """Markdown for ``mburst reproduce``: an MBURST trained in the circuit's regime (:func:`spiking_model`) streams
    ``frames`` consecutive test frames through the whole circuit (taught a second time), the equivalence table, and
    the energy table beside the rate models of run 0 (``out_dir/runs/run0/<model>/checkpoint.pt``)."""
    from experiments.training.checkpoints import load_checkpoint
    from rate_bridge.burstprop.calibrated import calibration_of
    from rate_bridge.convert import BridgeConfig
    from rate_bridge.equivalence import frames_with_speech

    out_dir = Path(out_dir)
    spk_dir = out_dir / "spiking"
    model, state = spiking_model(corpus, spk_dir / "model", train_cfg, progress=progress)
    splits = corpus.split(state["train_config"]["split_seed"])
    fs = corpus.frames(splits["test"], state["feature_stats"], model.config.n_bins)
    picked = frames_with_speech(fs.batch(np.arange(len(fs)))[2], frames)
    audio, visual, ibm = fs.batch(picked)
    cfg = cfg or BridgeConfig(teach=True, build_tag="reproduce_spiking")
    summary, result = write_bridge_report(spk_dir, model, audio, visual, ibm, cfg, progress=progress)
    rate = {}
    for m in ("unimodal", "multimodal", "mburst"):
        path = out_dir / "runs" / "run0" / m / "checkpoint.pt"
        if path.exists():  # the rate models' own bands and standardisation, on the same frames
            rm, st = load_checkpoint(path)
            ra, rv, _ = corpus.frames(splits["test"], st["feature_stats"], rm.config.n_bins).batch(picked)
            f1 = float(np.mean([r.test_score("f1") for r in results[m]])) if m in results else None
            rate[m] = rate_entry(rm, ra, rv, f1)
    rec = spiking_record(summary, result, "mburst", float(calibration_of(model.config.activation).fit.r0),
                        cfg.readout_latency_ms)
    md = write_energy_report(spk_dir, rec, rate)
    note = (f"The MBURST the circuit runs is trained for it (the spiking preset's regime, the profile's optimisation: activation "
            f"{model.config.activation}, {model.config.n_bins} bands, {model.config.channels} channels, embedding "
            f"{model.config.embed}, beta {model.config.beta:g}; `spiking/model/`), so the spiking and rate models share "
            f"their transfer functions; {frames} consecutive test frames (the stretch with the most speech) stream "
            "through the circuit, then again with the ideal binary mask taught at the output.\n\n")
    eq = (spk_dir / "equivalence.md").read_text().split("\n", 2)[2]
    return ("## Spiking stage (the burst-multiplexing circuit)\n\n" + note + eq + "\n" + md
            + "\nFiles: `spiking/equivalence.md`, `spiking/metrics.json`, `spiking/energy.md/.csv/.png`, "
              "`spiking/counts.json`.\n")
