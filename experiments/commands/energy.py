"""Energy per frame and the N-DNS-style scoreboard: the spiking MBURST counted spike by spike vs the rate models.

``--checkpoint`` is the MBURST checkpoint to convert, trained with a calibrated activation
(``--activation calibrated-quiet``, as in the README, or ``calibrated``); a ReLU checkpoint is
mapped through its calibrated twin and the report says so. ``--rate-checkpoints`` adds rate
models (Unimodal, Multimodal, ...) to the tables; the MBURST checkpoint itself is always
included. Writes ``energy.md/.csv``, ``energy.png``, ``energy.json``, the equivalence tables of
the frames run and ``counts.json`` (unless ``--no-spiking``), and ``scoreboard.md/.csv``
(:mod:`rate_bridge.scoreboard`) into ``--out``.

:func:`scoreboard_stage` is the same scoreboard as a stage of ``mburst reproduce``.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

NAME = "energy"
HELP = "energy table and N-DNS-style scoreboard: spiking MBURST (counted events/updates) vs rate models, per device"
#: Test frames (spread over the split) whose non-zero inputs give the event-driven counts of a rate model.
EVENT_FRAMES = 64


def add_arguments(parser) -> None:
    from experiments.commands.bridge import add_bridge_arguments
    from experiments.options import add_data_arguments
    from rate_bridge.energy import device_names

    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="MBURST checkpoint.pt to run as spiking network (required unless --frontier)")
    parser.add_argument("--rate-checkpoints", type=Path, nargs="*", default=[],
                        help="more rate-model checkpoints for the MAC rows (e.g. unimodal and multimodal)")
    parser.add_argument("--frames", type=int, default=20, help="test frames to run")
    parser.add_argument("--device", dest="devices", nargs="+", default=None,
                        help=f"devices of the table (default: all registered: {' '.join(device_names())})")
    parser.add_argument("--utterances", type=int, default=8,
                        help="test utterances enhanced and scored (SI-SNR, STOI, PESQ-WB) for the scoreboard (0: none)")
    parser.add_argument("--spiking", action=argparse.BooleanOptionalAction, default=True,
                        help="run the spiking network (--no-spiking: the rate models' energy rows and scoreboard only)")
    parser.add_argument("--frontier", type=Path, nargs="+", default=None, metavar="DIR",
                        help="instead: the energy-fidelity frontier of every trained rate model (checkpoint.pt with its "
                             "metrics.json) and every spiking-circuit setting of a bridge scan (scaling.json of mburst "
                             "bridge --scan-t/--scan-n/--scan-ablate) under these folders, e.g. mburst train runs at "
                             "several --beta or --activity-l1; a rate model's setting names its sizes, beta and l1; "
                             "writes frontier.md/.csv/.png (F1 against J per second of audio, 45 nm and Loihi)")
    add_bridge_arguments(parser)
    add_data_arguments(parser)


def latency_note() -> tuple[float, float, str]:
    """(frames per second of audio, algorithmic latency in ms, the sentence stating both)."""
    from experiments.data.features import HOP, SAMPLE_RATE, WIN
    from experiments.speech.streaming import StreamingEnhancer

    fps = SAMPLE_RATE / HOP
    alg = 1e3 * StreamingEnhancer.LATENCY_SAMPLES / SAMPLE_RATE
    text = (f"Frames: a {WIN}-sample window every {HOP} samples at {SAMPLE_RATE / 1e3:g} kHz "
            f"({1e3 * WIN / SAMPLE_RATE:g} ms window, {1e3 * HOP / SAMPLE_RATE:g} ms hop, {fps:g} frames per second "
            f"of audio). Algorithmic latency: the streaming enhancer emits every sample at most "
            f"{StreamingEnhancer.LATENCY_SAMPLES} samples = {alg:g} ms after it arrives (2 hops of buffering + the "
            f"{(WIN - HOP) // 2}-sample lead of a frame's window; the usual window + hop bound is "
            f"{1e3 * (WIN + HOP) / SAMPLE_RATE:g} ms); a spiking model adds its read-out delay. Compute: the median "
            "of 30 single-frame forward passes on this machine (spiking: simulated wall time per frame, build "
            "included).")
    return fps, alg, text


def rate_rows(models: dict, audio, visual, quality_rows: list | None, f1s: dict) -> list:
    """Scoreboard rows of rate models.

    Parameters
    ----------
    models : dict
        ``{label: AVMaskNet}``; ``label`` is the system's name in ``quality_rows``.
    audio, visual : torch.Tensor, shape (F, 1, H, W)
        Test frames for the event-driven counts and the timing.
    quality_rows : list of dict or None
        Enhancement rows (:func:`experiments.speech.evaluation.evaluate_enhancement`).
    f1s : dict
        ``{label: mask F1}``.

    Returns
    -------
    list of rate_bridge.scoreboard.ScoreRow
    """
    from rate_bridge.scoreboard import quality_from_rows, rate_row, time_per_frame_ms

    fps, alg, _ = latency_note()
    rows = []
    for label, model in models.items():
        q = quality_from_rows(quality_rows, label) if quality_rows else None
        note = f"audio scores over {q['n']} test utterances" if q and q["n"] else "no audio scores"
        rows.append(rate_row(label, model, audio, visual, fps, q, f1s.get(label), alg,
                             time_per_frame_ms(model, audio, visual), note=note))
    return rows


def spiking_rows(entry: dict | None) -> list:
    """The scoreboard row of a spiking run's ``energy.json`` entry (none when ``entry`` is None).

    Parameters
    ----------
    entry : dict or None
        ``model``, ``frames``, ``counts`` (:meth:`LayerCounts.as_dict`), ``f1``, ``readout_latency_ms``,
        ``wall_s`` (:func:`experiments.spiking.stage.write_energy_report`).

    Returns
    -------
    list of rate_bridge.scoreboard.ScoreRow
    """
    from experiments.data.features import HOP, SAMPLE_RATE
    from rate_bridge.ledger import LayerCounts
    from rate_bridge.scoreboard import spiking_row

    if entry is None:
        return []
    _, alg, _ = latency_note()
    readout = entry.get("readout_latency_ms")
    wall = entry.get("wall_s")
    return [spiking_row(entry["model"], LayerCounts.from_dict(entry["counts"]), entry["frames"], HOP / SAMPLE_RATE,
                        entry.get("f1"), None if readout is None else alg + readout,
                        None if wall is None else 1e3 * wall / entry["frames"],
                        note=f"{entry['frames']} test frames; mask F1 of those frames; no enhanced audio"
                             + ("" if readout is not None else "; read-out latency not recorded"))]


def read_enhancement_rows(path: Path) -> list | None:
    """Per-utterance rows of an ``enhancement.csv`` (None when absent), scores as floats."""
    if not path.exists():
        return None
    with open(path, newline="") as f:
        return [{**r, "utt_index": int(r["utt_index"]), **{k: float(r[k]) for k in ("stoi", "pesq_wb", "si_sdr")}}
                for r in csv.DictReader(f)]


def scoreboard_stage(corpus, progress: bool = False):
    """The ``scoreboard`` stage of ``mburst reproduce``: run 0's three models, the enhancement stage's audio
    scores (``enhancement/enhancement.csv``) and, when the spiking stage ran, its ``spiking/energy.json``.

    Parameters
    ----------
    corpus : Corpus
    progress : bool

    Returns
    -------
    callable
        ``stage(out, results) -> (markdown section, output paths)``; writes ``out/scoreboard/``.
    """

    def stage(out: Path, results: dict):
        from experiments.training.checkpoints import load_checkpoint
        from experiments.training.report import LABEL, ORDER
        from rate_bridge.equivalence import spread_frames
        from rate_bridge.scoreboard import write_scoreboard

        models, state = {}, None
        for m in ORDER:
            models[LABEL[m]], st = load_checkpoint(out / "runs" / "run0" / m / "checkpoint.pt")
            state = state or st
        split = corpus.split(state["train_config"]["split_seed"])
        frames = corpus.frames(split["test"], state["feature_stats"], state["model_config"].get("n_bins"))
        audio, visual, _ = frames.batch(spread_frames(min(EVENT_FRAMES, len(frames)), len(frames)))
        quality = read_enhancement_rows(out / "enhancement" / "enhancement.csv")
        f1s = {LABEL[m]: results[m][0].test_score("f1") for m in ORDER}
        spk = out / "spiking" / "energy.json"
        rows = rate_rows(models, audio, visual, quality, f1s)
        rows += spiking_rows(json.loads(spk.read_text()) if spk.exists() else None)
        notes = (latency_note()[2] + " Run 0's checkpoints; mask F1 on run 0's test split; audio scores from the "
                 "enhancement stage" + (" (soft masks)." if quality else ": not run (--enhance-utterances 0)."))
        section = write_scoreboard(out / "scoreboard", rows, notes)
        return section, ["scoreboard/scoreboard.md", "scoreboard/scoreboard.csv"]

    return stage


def main(args) -> int:
    import torch

    from experiments.commands.bridge import bridge_config_from_args, load_test_frames
    from experiments.spiking.stage import (calibrated_twin, rate_entry, spiking_record, write_bridge_report,
                                           write_energy_report)
    from experiments.training.checkpoints import load_checkpoint
    from rate_bridge.burstprop.calibrated import calibration_of
    from rate_bridge.energy import get_device
    from rate_bridge.equivalence import check_frames, mask_scores
    from rate_bridge.scoreboard import write_scoreboard

    from neurons.common import MburstError

    for d in args.devices or []:
        get_device(d)  # unknown device -> one-line error before any work
    if args.utterances < 0:
        raise MburstError(f"--utterances must be >= 0, got {args.utterances}")
    if args.frontier:
        return frontier(args)
    if args.checkpoint is None:
        raise MburstError("--checkpoint is required (or --frontier DIR ...)")
    cfg = bridge_config_from_args(args)
    check_frames(args.frames, 10 ** 12)
    model, state = load_checkpoint(args.checkpoint)
    audio, visual, ibm = load_test_frames(args, state, args.frames)
    rec, approx = None, False
    if args.spiking:
        twin, approx = calibrated_twin(model)
        summary, result = write_bridge_report(args.out, twin, audio, visual if model.visual else None, ibm, cfg)
        rec = spiking_record(summary, result, state["model_name"], float(calibration_of(twin.config.activation).fit.r0),
                             readout_latency_ms=getattr(cfg, "readout_latency_ms", None))
    rate, models, paths = {}, {}, {}
    for path in [args.checkpoint, *args.rate_checkpoints]:
        rm, st = load_checkpoint(path)
        with torch.no_grad():
            f1 = mask_scores(rm(audio, visual if rm.visual else None).numpy() >= 0.5, ibm.numpy()).f1
        key = st["model_name"] if st["model_name"] not in rate else f"{st['model_name']} ({path.parent.name})"
        rate[key] = rate_entry(rm, audio, visual, f1)
        models[key], paths[key] = rm, path
    write_energy_report(args.out, rec, rate, args.devices)
    rows = scoreboard_rows(args, state, models, paths) + spiking_rows(
        None if rec is None else json.loads((Path(args.out) / "energy.json").read_text()))
    write_scoreboard(args.out, rows, latency_note()[2])
    if approx:
        print("energy: the checkpoint uses ReLU; the spiking network runs its calibrated twin (same weights)")
    if rec is not None:
        print(f"energy: {args.frames} frames, {rec['counts'].spikes / rec['frames']:.0f} spikes/frame, "
              f"{rec['counts'].synops / rec['frames']:.0f} synaptic events/frame -> {args.out}/energy.md")
    print(f"energy: scoreboard of {len(rows)} model(s) -> {args.out}/scoreboard.md")
    return 0


def scoreboard_rows(args, state: dict, models: dict, paths: dict) -> list:
    """Rate rows of ``mburst energy``: mask F1 on the whole test split, audio scores on ``--utterances`` of it."""
    from experiments.options import corpus_from_args
    from experiments.speech.evaluation import evaluate_enhancement
    from experiments.speech.masking import checkpoint_masker
    from experiments.training.reproduce import spread_utterances
    from experiments.training.train import evaluate
    from rate_bridge.equivalence import spread_frames

    corpus = corpus_from_args(args, progress=False)
    split = corpus.split(state["train_config"]["split_seed"])
    frames = corpus.frames(split["test"], state["feature_stats"], state["model_config"].get("n_bins"))
    f1s = {k: evaluate(m, frames)[0].f1 for k, m in models.items()}
    quality = None
    if args.utterances:
        chosen = spread_utterances(split["test"], args.utterances, corpus)
        quality = evaluate_enhancement(corpus, chosen, {k: checkpoint_masker(p)[:2] for k, p in paths.items()},
                                       lc_db=corpus.meta.get("lc_db", 5.0), progress=False)
    audio, visual, _ = frames.batch(spread_frames(min(EVENT_FRAMES, len(frames)), len(frames)))
    return rate_rows(models, audio, visual, quality, f1s)


def frontier(args) -> int:
    """``mburst energy --frontier DIR ...``: every trained rate model and every bridge scan setting under the folders
    on the frontier (frontier.md/.csv/.png in ``args.out``).

    Raises
    ------
    MburstError
        No checkpoint.pt with a metrics.json and no scaling.json under the folders; a checkpoint whose features
        differ from the data options'; a file that is not a scan's scaling.json.
    """
    from experiments.data.features import HOP, SAMPLE_RATE
    from experiments.options import corpus_from_args
    from experiments.training.checkpoints import check_features, load_checkpoint
    from experiments.training.config import TrainResult
    from experiments.training.report import LABEL
    from neurons.common import MburstError
    from rate_bridge.equivalence import spread_frames
    from rate_bridge.frontier import FrontierPoint, scaling_points, write_frontier
    from rate_bridge.scoreboard import quality_from_rows

    dirs = ", ".join(map(str, args.frontier))
    ckpts = sorted((p, Path(d)) for d in args.frontier for p in Path(d).rglob("checkpoint.pt")
                   if (p.parent / "metrics.json").exists())
    scans = sorted((p, Path(d)) for d in args.frontier for p in Path(d).rglob("scaling.json"))
    if not ckpts and not scans:
        raise MburstError(f"--frontier: no checkpoint.pt with a metrics.json under {dirs} (nor a bridge scan's "
                          "scaling.json)")
    points, skipped = [], 0
    for path, root in scans:
        pts, skip = scaling_points(path, str(path.parent.relative_to(root.parent)))
        points += pts
        skipped += skip
    corpus = corpus_from_args(args, progress=False) if ckpts else None
    for path, root in ckpts:
        model, state = load_checkpoint(path)
        check_features(state, corpus.meta, path)
        cfg, res = model.config, TrainResult.load(path.parent / "metrics.json")
        frames = corpus.frames(corpus.split(state["train_config"]["split_seed"])["test"], state["feature_stats"],
                               cfg.n_bins)
        audio, visual, _ = frames.batch(spread_frames(min(EVENT_FRAMES, len(frames)), len(frames)))
        enh = next((read_enhancement_rows(a / "enhancement" / "enhancement.csv") for a in path.parents
                    if (a / "enhancement" / "enhancement.csv").exists()), None) if path.parent.parent.name == "run0" else None
        quality = quality_from_rows(enh, LABEL.get(model.name, model.name)) if enh else None
        row = rate_rows({model.name: model}, audio, visual, [], {})[0]
        if quality:
            row.si_snri_db = quality["si_snri_db"]
        act = res.final["test"]
        points.append(FrontierPoint(model.name, frontier_setting(model.name, cfg, state["train_config"]),
                                    str(path.parent.relative_to(root.parent)), res.test_score("f1"),
                                    act["active_fraction"].get("overall"), act["mean_event_rate"].get("overall"), row))
    n_spk = sum(p.row.kind == "spiking" for p in points)
    notes = (f"{len(points) - n_spk} trained models and {n_spk} spiking-circuit settings under {dirs}. Rate models: "
             "test F1 and hidden activity as training recorded them (test split); ops and J per second of audio from "
             f"the layer shapes and {EVENT_FRAMES} test frames' non-zero inputs (rate_bridge.scoreboard.rate_row); "
             "SI-SNRi where the folder's enhancement stage scored run 0. Spiking circuit (stars; mburst bridge "
             "--scan-t/--scan-n/--scan-n-conv/--scan-ablate, scaling.json): mask F1 of the scanned test frames (not "
             "the whole split), ops and J per second of audio from each setting's ledger totals "
             "(rate_bridge.scoreboard.spiking_row: synaptic ops and spikes, neuron updates at the device's step, "
             f"active and idle apart; a frame is {1e3 * HOP / SAMPLE_RATE:g} ms of audio whatever its simulated period T)."
             + (f" Skipped {skipped} scan setting(s) recorded without ledger totals (scans written before they "
                "were recorded: re-run them)." if skipped else ""))
    write_frontier(args.out, points, notes)
    print(f"energy: frontier of {len(points) - n_spk} models and {n_spk} circuit settings"
          + (f" ({skipped} scan settings skipped: no ledger totals)" if skipped else "") + f" -> {args.out}/frontier.md")
    return 0


def frontier_setting(model_name: str, cfg, train_config: dict) -> str:
    """A rate model's setting on the frontier: sizes, MBURST's beta and update rescaling, the activity penalty.

    Parameters
    ----------
    model_name : str
    cfg : rate_bridge.burstprop.models.ModelConfig
    train_config : dict
        The checkpoint's ``train_config`` (``activity_l1`` absent in checkpoints before the option: 0).

    Returns
    -------
    str
        E.g. 'c4/e32', 'c4/e32, beta=0.1, rescale on', 'c4/e32, l1=0.001'.
    """
    l1 = float(train_config.get("activity_l1", 0.0))
    return (f"c{cfg.channels}/e{cfg.embed}"
            + (f", beta={cfg.beta:g}, rescale {'on' if cfg.rescale_updates else 'off'}" if model_name == "mburst" else "")
            + (f", l1={l1:g}" if l1 else ""))
