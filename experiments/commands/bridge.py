"""Rate-vs-spike equivalence of a trained checkpoint on the burst-multiplexing circuit.

The checkpoint (trained with ``--preset spiking``: activation ``calibrated-circuit``) is converted into the
circuit of :mod:`circuits.ensembles` (:mod:`rate_bridge.convert` maps it): pyramidal ensembles with
excitable dendrites, depressing forward and facilitating feedback synapses, PV and SOM per layer.
``--frames`` consecutive test frames are streamed in real time by default (one every ``--frame-period`` ms,
read out after ``--latency`` ms; :mod:`circuits.streaming`), or held one by one with ``--mode settle``.
``--teach`` runs the frames a second time with the target mask taught at the output; ``--match-interneurons``
scales each layer's weights onto its PV/SOM to the calibration's operating point. Writes into
``--out``: ``metrics.json`` (frame period, latency, frames, both F1, per-layer event r, its events per unit of the
rate model's rate at onsets and in steady frames and, with feedback,
burst-probability r without and with teaching, wall time, cells), ``equivalence.md/.csv``,
``counts.json``, ``bridge.json`` and, with a scan (``--scan-n``, ``--scan-n-conv``, ``--scan-t``,
``--scan-ablate``), ``scaling.md/.csv/.png`` (F1 against spikes per frame, ops and J per second of audio per
device) and ``scaling.json`` (each setting's ledger totals: ``mburst energy --frontier`` puts them on the
energy-fidelity frontier; :func:`rate_bridge.frontier.write_scaling`).
"""
from __future__ import annotations

from pathlib import Path

NAME = "bridge"
HELP = "convert a checkpoint to spiking pyramidal ensembles and compare with the rate model"


def add_arguments(parser) -> None:
    from experiments.options import add_data_arguments

    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="checkpoint.pt trained with a calibrated activation: calibrated-circuit (mburst train "
                             "--preset spiking) for the circuit, calibrated-quiet for --ablate forward-only")
    parser.add_argument("--frames", type=int, default=200,
                        help="test frames to run: the stretch of consecutive test frames with the most speech (positives "
                             "of the ideal binary mask) when streaming, spread evenly over the split with --mode "
                             "settle (compact preset model on 2 cores: 1.3-1.5 s per streamed 40 ms frame on the machine of "
                             "2026-12-01, 0.84 s on an earlier one, plus a 3-4 min cold Brian2 build for each new frame "
                             "count and none warm)")
    add_bridge_arguments(parser)
    parser.add_argument("--scan-n", type=int, nargs="*", default=[],
                        help="cells per unit to scan (scaling.md/.csv/.json: F1, spikes and J per second of audio per "
                             "device of each setting; mburst energy --frontier DIR picks up scaling.json); the output "
                             "keeps --n-out when it is given, and the table's n is then the hidden layers' alone")
    parser.add_argument("--scan-n-conv", type=int, nargs="*", default=[],
                        help="cells per convolutional unit to scan (scaling table)")
    parser.add_argument("--scan-t", type=float, nargs="*", default=[],
                        help="read-out windows T (ms) to scan: the frame period when streaming (the frontier's axis), "
                             "the counting window with --mode settle")
    parser.add_argument("--scan-ablate", nargs="*", default=[], metavar="PART",
                        help="circuit parts to switch off one at a time for the frontier (stp, interneurons, feedback, "
                             "dendrites, forward-only)")
    add_data_arguments(parser)


def add_bridge_arguments(parser) -> None:
    import argparse

    from circuits.ensembles import FORWARD_ONLY, PARTS
    from circuits.streaming import FRAME_PERIOD_MS, LATENCY_MS, MODES, TAU_SYN_MS

    g = parser.add_argument_group("spiking circuit (default: the whole burst-multiplexing circuit, streamed in real "
                                  "time, one frame every 40 ms)")
    g.add_argument("--mode", choices=MODES, default="stream",
                   help="stream: frames arrive every --frame-period, no reset, no settle window, the mask read out "
                        "after a fixed --latency (the consecutive test frames with the most speech); settle: each frame "
                        "held for --t-settle + "
                        "--t-count ms and counted in the last --t-count (frames spread over the test split)")
    g.add_argument("--frame-period", type=float, default=None, metavar="MS",
                   help=f"stream: simulated time per frame, also the read-out window (default {FRAME_PERIOD_MS:g} ms, "
                        "the audio hop: real time); must hold a countable spike (>= 16 ms)")
    g.add_argument("--latency", type=float, default=None, metavar="MS",
                   help=f"stream: the output's read-out window of frame t starts this long after frame t's onset "
                        f"(default {LATENCY_MS:g} ms); hidden layers are read at depth/deepest of it")
    g.add_argument("--n", type=int, default=16, help="pyramidal cells per dense unit (and output unit, unless --n-out)")
    g.add_argument("--n-out", type=int, default=None,
                   help="pyramidal cells per output unit (default: --n): the read-out's counting noise falls as "
                        "1/n_out (compact GRID model, 100 frames at 40 ms: output r 0.55 with 16, 0.74 with 128, for "
                        "about 25 %% more run time)")
    g.add_argument("--n-conv", type=int, default=6, help="pyramidal cells per convolutional unit")
    g.add_argument("--t-count", type=float, default=None, help="settle: counting window per frame (ms; default 250)")
    g.add_argument("--t-settle", type=float, default=None,
                   help="settle: settling time per frame before counting (ms; default 100)")
    g.add_argument("--tau-syn", type=float, default=None,
                   help="time constant of the forward synaptic current (ms; default "
                        + ", ".join(f"{k} {v:g}" for k, v in TAU_SYN_MS.items())
                        + "): longer averages more presynaptic events (less noise) but carries more of the "
                          "previous frame")
    g.add_argument("--reset", action="store_true",
                   help="settle: reset the cells' state between frames instead of settling")
    g.add_argument("--feedback", action=argparse.BooleanOptionalAction, default=True,
                   help="the upper layers' spikes reach the lower layers' dendrites through facilitating synapses "
                        "(Y = W; default on; --no-feedback is --ablate feedback)")
    g.add_argument("--teach", action="store_true",
                   help="run the frames a second time with the ideal binary mask taught at the output's dendrites "
                        "(eq. 3) and compare every layer's burst probability with burstprop's p (doubles the run time)")
    g.add_argument("--ablate", action="append", default=[], metavar="PART",
                   help="switch a circuit part off (repeatable): " + ", ".join(PARTS)
                        + f"; {FORWARD_ONLY}: the forward-only network (static synapses on events, no feedback or "
                          "PV/SOM; calibrated-quiet models run only in it); default: the whole circuit")
    g.add_argument("--match-interneurons", action="store_true",
                   help="scale each layer's weights onto its PV and SOM by m_cal / m (m: the rate model's mean event "
                        "rate of the layer on the frames run; m_cal: the calibration's layer mean, "
                        "transfer_fit_circuit.json), so that they inhibit as in the layer the transfer function was "
                        "measured on: interneurons read the layer's mean, and a quieter layer inhibits less")
    g.add_argument("--target", choices=("numpy", "cython", "cpp_standalone", "cuda_standalone"),
                   default="cpp_standalone",
                   help="Brian2 code generation target (cuda_standalone: an NVIDIA GPU through brian2cuda, if installed)")
    g.add_argument("--threads", type=int, default=0,
                   help="OpenMP threads for cpp_standalone (0: none). A run repeats exactly with the same count, not "
                        "across counts (Brian2 keeps a random stream per thread). 2 on 2 cores: 1.15x on the GRID circuit")
    g.add_argument("--build-tag", default="bridge", help="standalone build folder name (give concurrent runs different tags)")


def bridge_config_from_args(args):
    """The :class:`rate_bridge.convert.BridgeConfig` of the parsed options.

    Raises
    ------
    MburstError
        An option of the other mode (``--frame-period``/``--latency`` with ``--mode settle``, ``--t-settle``/
        ``--t-count``/``--reset`` while streaming), an unknown part, ``--teach`` without feedback,
        ``--match-interneurons`` without interneurons, or invalid settings.
    """
    from circuits.ensembles import ablate
    from neurons.common import MburstError
    from rate_bridge.convert import BridgeConfig

    own = {"stream": {"--frame-period": ("frame_period_ms", args.frame_period), "--latency": ("latency_ms", args.latency)},
           "settle": {"--t-settle": ("t_settle_ms", args.t_settle), "--t-count": ("t_count_ms", args.t_count),
                      "--reset": ("reset", args.reset or None)}}
    times = {}
    for mode, options in own.items():
        for flag, (field, value) in options.items():
            if value is None:
                continue
            if mode != args.mode:
                raise MburstError(f"bridge: {flag} belongs to --mode {mode} (this run is --mode {args.mode})")
            times[field] = value
    cfg = BridgeConfig(n=args.n, n_conv=args.n_conv, n_out=args.n_out, mode=args.mode, tau_syn_ms=args.tau_syn,
                       teach=args.teach, match_interneurons=args.match_interneurons, target=args.target,
                       threads=args.threads, seed=args.seed, build_tag=args.build_tag, **times)
    cfg = ablate(cfg, [*args.ablate, *([] if args.feedback else ["feedback"])]).validate()
    if cfg.teach and not cfg.feedback:
        raise MburstError("bridge: --teach compares burst probabilities that only the feedback carries; drop "
                          "--no-feedback/--ablate feedback")
    if cfg.match_interneurons and not cfg.interneurons:
        raise MburstError("bridge: --match-interneurons scales the weights onto PV/SOM; drop --ablate interneurons")
    return cfg


def load_test_frames(args, state, n_frames: int):
    """(audio, visual, ibm) of ``n_frames`` test frames of the checkpoint's split: the consecutive stretch with the
    most speech when streaming (``args.mode``; :func:`rate_bridge.equivalence.frames_with_speech`), else spread
    evenly over it."""
    import numpy as np

    from experiments.training.checkpoints import check_features
    from experiments.options import corpus_from_args
    from rate_bridge.equivalence import frames_with_speech, spread_frames

    corpus = corpus_from_args(args)
    check_features(state, corpus.meta, args.checkpoint)
    splits = corpus.split(state["train_config"]["split_seed"])
    frames = corpus.frames(splits["test"], state["feature_stats"], state["model_config"].get("n_bins"))
    if args.mode == "stream":
        return frames.batch(frames_with_speech(frames.batch(np.arange(len(frames)))[2], n_frames))
    return frames.batch(spread_frames(n_frames, len(frames)))


def main(args) -> int:
    import rate_bridge.burstprop.calibrated  # noqa: F401  registers the 'calibrated' activation
    from experiments.data.features import HOP, SAMPLE_RATE
    from experiments.training.checkpoints import load_checkpoint
    from experiments.spiking.stage import write_bridge_report
    from rate_bridge.equivalence import check_frames, scaling_study
    from rate_bridge.frontier import write_scaling

    cfg = bridge_config_from_args(args)
    check_frames(args.frames, 10 ** 12)
    model, state = load_checkpoint(args.checkpoint)
    audio, visual, ibm = load_test_frames(args, state, args.frames)
    visual = visual if model.visual else None
    summary, _ = write_bridge_report(args.out, model, audio, visual, ibm, cfg)
    if args.scan_n or args.scan_t or args.scan_n_conv or args.scan_ablate:
        scan = scaling_study(model, audio, visual, ibm, cfg, args.scan_n, args.scan_t, args.scan_n_conv,
                             args.scan_ablate)
        write_scaling(args.out, scan, HOP / SAMPLE_RATE, state["model_name"])
    print(f"bridge ({cfg.mode}, {cfg.t_frame_ms:g} ms per frame, read-out latency {cfg.readout_latency_ms:g} ms): "
          f"{args.frames} frames, rate F1 {summary.rate.f1:.4f}, spiking F1 {summary.spike.f1:.4f}, "
          f"output r {summary.r_out:.3f}, {summary.spikes_per_frame:.0f} spikes/frame, "
          f"{summary.wall_build_run_s:.0f} s -> {args.out}")
    return 0
