"""Rate-vs-spike equivalence of a trained checkpoint (issue 6).

The checkpoint (trained with ``--activation calibrated``) is converted into a Brian2
network of pyramidal ensembles (:mod:`rate_bridge.convert` maps it, :mod:`circuits.ensembles` runs it);
``--frames`` test frames, spread evenly over the test split, go through the rate model and the spiking
network. Writes into ``--out``:
``equivalence.md/.csv`` (per layer r and relative error, mask F1/accuracy of both),
``scaling.md/.csv`` and ``scaling.png`` (F1 against spikes per frame over ``--scan-n``, ``--scan-n-conv`` and
``--scan-t``), ``counts.json`` (per-layer spikes/events/bursts/plateaus/synaptic events)
and ``bridge.json`` (everything, with wall times).
"""
from __future__ import annotations

from pathlib import Path

NAME = "bridge"
HELP = "convert a checkpoint to spiking pyramidal ensembles and compare with the rate model"


def add_arguments(parser) -> None:
    from experiments.options import add_data_arguments

    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt trained with --activation calibrated")
    parser.add_argument("--frames", type=int, default=200,
                        help="test frames to run, spread evenly over the test split (first and last included)")
    add_bridge_arguments(parser)
    parser.add_argument("--scan-n", type=int, nargs="*", default=[], help="cells per unit to scan (scaling table)")
    parser.add_argument("--scan-n-conv", type=int, nargs="*", default=[],
                        help="cells per convolutional unit to scan (scaling table)")
    parser.add_argument("--scan-t", type=float, nargs="*", default=[], help="counting windows T (ms) to scan")
    add_data_arguments(parser)


def add_bridge_arguments(parser) -> None:
    g = parser.add_argument_group("spiking conversion (defaults: the compact study's setting, 200 frames in ~11 min "
                                  "on 2 cores with --threads 2)")
    g.add_argument("--n", type=int, default=16, help="pyramidal cells per dense/output unit")
    g.add_argument("--n-conv", type=int, default=6, help="pyramidal cells per convolutional unit")
    g.add_argument("--t-count", type=float, default=250.0, help="counting window per frame (ms)")
    g.add_argument("--t-settle", type=float, default=100.0, help="settling time per frame before counting (ms)")
    g.add_argument("--tau-syn", type=float, default=80.0,
                   help="time constant of the forward synaptic current (ms): longer averages more presynaptic "
                        "events (less noise) but carries more of the previous frame")
    g.add_argument("--reset", action="store_true", help="reset the cells' state between frames instead of settling")
    g.add_argument("--feedback", action="store_true", help="add the feedback Y -> dendritic STF synapses")
    g.add_argument("--interneurons", action="store_true", help="add PV/SOM inhibition per layer")
    g.add_argument("--target", choices=("numpy", "cython", "cpp_standalone", "cuda_standalone"),
                   default="cpp_standalone",
                   help="Brian2 code generation target (cuda_standalone: an NVIDIA GPU through brian2cuda, if installed)")
    g.add_argument("--threads", type=int, default=0, help="OpenMP threads for cpp_standalone (0: none)")
    g.add_argument("--build-tag", default="bridge", help="standalone build folder name (give concurrent runs different tags)")


def bridge_config_from_args(args):
    from rate_bridge.convert import BridgeConfig

    return BridgeConfig(n=args.n, n_conv=args.n_conv, t_count_ms=args.t_count, t_settle_ms=args.t_settle,
                        tau_syn_ms=args.tau_syn,
                        reset=args.reset, feedback=args.feedback, interneurons=args.interneurons,
                        target=args.target, threads=args.threads, seed=args.seed,
                        build_tag=args.build_tag).validate()


def load_test_frames(args, state, n_frames: int):
    """(audio, visual, ibm) of ``n_frames`` test frames of the checkpoint's split, spread evenly."""
    from experiments.training.checkpoints import check_features
    from experiments.options import corpus_from_args
    from rate_bridge.equivalence import spread_frames

    corpus = corpus_from_args(args)
    check_features(state, corpus.meta, args.checkpoint)
    splits = corpus.split(state["train_config"]["split_seed"])
    frames = corpus.frames(splits["test"], state["feature_stats"], state["model_config"].get("n_bins"))
    return frames.batch(spread_frames(n_frames, len(frames)))


def main(args) -> int:
    import rate_bridge.burstprop.calibrated  # noqa: F401  registers the 'calibrated' activation
    from experiments.training.checkpoints import load_checkpoint
    from experiments.spiking.stage import write_bridge_report
    from rate_bridge.equivalence import check_frames

    cfg = bridge_config_from_args(args)
    check_frames(args.frames, 10 ** 12)
    model, state = load_checkpoint(args.checkpoint)
    audio, visual, ibm = load_test_frames(args, state, args.frames)
    summary, _ = write_bridge_report(args.out, model, audio, visual if model.visual else None, ibm, cfg,
                                     scan_n=args.scan_n, scan_t=args.scan_t, scan_n_conv=args.scan_n_conv)
    print(f"bridge: {args.frames} frames, rate F1 {summary.rate.f1:.4f}, spiking F1 {summary.spike.f1:.4f}, "
          f"output r {summary.r_out:.3f}, {summary.spikes_per_frame:.0f} spikes/frame, "
          f"{summary.wall_build_run_s:.0f} s -> {args.out}")
    return 0
