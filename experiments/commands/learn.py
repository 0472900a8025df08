"""Learn dense layers of a checkpoint in spikes: the converted circuit learns its mask with the burst-dependent rule.

``--frames`` training frames of the checkpoint's split (whole utterances in a seeded random order, streamed one
after the other) pass through the burst-multiplexing circuit (the options of ``mburst bridge``) in chunks of
``--chunk`` frames. Each chunk streams twice in one run: untaught, then with the target mask taught at the output's
dendrites (eq. 3, the teaching of the checkpoint's training loss times ``--teach-gain``, delivered as the dendritic
current that changes the output's burst rate by burstprop's ``b - bbar``); the spiking rule
``dW/dt = eta [B_post - Pbar E_post] etilde_pre`` (Payeur et al. 2021) acts on the forward weights onto
``--layers`` during the taught pass, computed exactly for the circuit's shared weights from the recorded spikes
(:mod:`rate_bridge.learning`); ``--baseline paired`` subtracts the rule's change over the untaught pass of the
same frames (the moving average cannot follow the burst probability the untaught feedback sets frame by frame in a
hidden layer; measured on a tiny synthetic MBURST, 400 frames: the cosine with burstprop's update rose from -0.93 to
0.81 for its dense layer, 0.81 to 0.85 for the output); ``--baseline untaught`` also reads as ``Pbar`` each
ensemble's burst probability in the untaught window of the same frame (burstprop's ``pbar_t``): over a 4 s pass the
moving averages follow the teaching itself (what that did on GRID:
:func:`circuits.ensemble_plasticity.ensemble_weight_changes`). The weights change between chunks. Beside it, a rate model starting from the same
weights learns the same layers from the same frames in the same order by burstprop (plain SGD, learning rate
matched to the rule's mean field). ``--homeostasis`` moves the output's dendritic current between chunks so that
its untaught burst probability stays at the fit's mid-point, where the teacher assumes it; per chunk, that burst
probability, the offset and what the output's rule received of the asked up- and down-teaching are in
``metrics.json`` (``homeostasis.chunks``) and ``learning.md``, with or without it. ``--reinit`` re-initialises the chosen layers (or those it names) first
(seeded), so the start is poor. Resumable: rerun the same command to continue, or with a larger ``--frames`` (and,
if wanted, another ``--eta``: a schedule by hand) to extend a finished run. Measured on GRID (output layer
re-initialised, 256 cells per output unit, README "Learning in spikes on GRID"): ``--match-interneurons
--homeostasis 1`` at ``--eta 0.025`` recovered 59 % of the F1 gap in 2,000 frames (burstprop 79 %; cosine 0.83 with
burstprop's accumulated change), swinging from chunk to chunk on the way (37 % at 1,000 frames, 13 % at 1,300);
extended from 1,000 frames at ``--eta 0.01``, 54 % at 1,400 (burstprop 86 %; cosine 0.85). About 8.5 min per 100
frames on 2 cores with the Brian2 cache warm.

Writes into ``--out``: ``checkpoint.pt`` (the weights learned in spikes; ``mburst evaluate``/``mburst bridge`` take
it), ``checkpoint_burstprop.pt``, ``metrics.json`` (test F1 of the trained, start and learned models, the recovered
fraction of the F1 gap, per layer the cosine between the accumulated spiking and burstprop weight changes, and
that of burstprop's update written with the circuit's own burst probabilities and event rates (the teaching the
circuit's feedback carries, without the rule's spike-timing noise), the relative weight change and the plasticity
update counts), ``learning.md``, ``learning_curve.csv`` and
``learning.png`` (test F1 against streamed frames, both rules). ``metrics.json`` and ``learning.md`` also give each
layer's counting ceiling: the cosine burstprop's own rates would reach if counted in ensembles of ``--n`` cells
(``--n-out`` at the output; :mod:`rate_bridge.update_ceiling`); ``--counting-ceiling 16 64 256`` computes only that, for several ensemble sizes,
without the circuit (about a minute for 2,000 frames; ``ceiling.md``/``ceiling.json``).
"""
from __future__ import annotations

from pathlib import Path

NAME = "learn"
HELP = "learn dense layers of a checkpoint in spikes (burst-dependent plasticity in the circuit), beside burstprop"
STATE = "learn_state.pt"

def add_arguments(parser) -> None:
    from experiments.commands.bridge import add_bridge_arguments
    from experiments.options import add_data_arguments

    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="checkpoint.pt the circuit can run (trained with --preset spiking: calibrated-circuit)")
    parser.add_argument("--layers", default="out,audio_dense,visual_dense",
                        help="comma-separated dense layers whose forward weights learn")
    parser.add_argument("--frames", type=int, default=2000, help="training frames to stream (a multiple of --chunk); measured on GRID with the compact circuit "
                             "preset on 2 cores (16 cells per output unit, --baseline untaught with its lead-in, 12.5 %% "
                             "more simulated time): the first 100-frame chunk 8-9 min (cold Brian2 build, 3-4 min of "
                             "it), each further one 5-5.5 min (the build stays warm: only the weights change; the "
                             "binary's time is the cells' state updates and background, --threads 2 saves 15 %%); with "
                             "--n-out 256 and --match-interneurons 8.2-8.9 min per warm chunk (30-42 s of it recompiling; "
                             "2026-12-02); rerun with a larger --frames and the same --out to extend a run")
    parser.add_argument("--chunk", type=int, default=100,
                        help="frames per chunk: weights change between chunks; each chunk's run streams them twice")
    parser.add_argument("--eval-every", type=int, default=None, metavar="FRAMES",
                        help="score both models on the test frames every this many frames (a multiple of --chunk; "
                             "default: every chunk)")
    parser.add_argument("--eval-frames", type=int, default=0,
                        help="test frames of the learning curve, spread over the split (0: all); the final scores "
                             "always use the whole test split")
    parser.add_argument("--eta", type=float, default=1e-2,
                        help="learning rate of the spiking rule (per post event and unit of the presynaptic trace; "
                             "Payeur et al.'s XOR: 4e-3 to 8e-3); burstprop beside it learns at the matched rate. "
                             "It may change when a run is extended (same --out, larger --frames): the new chunks "
                             "learn at the new rate, a schedule by hand (metrics.json eta_per_chunk)")
    parser.add_argument("--teach-gain", type=float, default=10.0,
                        help="the output's teaching: eq. 3 with the checkpoint's training loss times this")
    parser.add_argument("--settle", type=float, default=1000.0, metavar="MS",
                        help="start of each chunk's run the rule does not see (the circuit settles from rest): with "
                             "--baseline paired/untaught the chunk's first frames stream this long before its passes "
                             "(a lead-in, not learned from: 25 frames at 40 ms, 12.5 %% more simulated time for a "
                             "100-frame chunk); with average it must be shorter than a pass")
    parser.add_argument("--baseline", choices=("average", "paired", "untaught"), default="average",
                        help="where the rule's Pbar comes from. average: the rule as published, the moving averages; "
                             "paired: minus the rule's change over the untaught pass of the same frames (removes what "
                             "the untaught feedback's frame-to-frame burst probability teaches a hidden layer; first "
                             "--settle of each pass left out in both); untaught: each ensemble's burst probability in "
                             "the untaught pass's window of the same frame, burstprop's pbar_t (the averages follow the "
                             "teaching itself over a pass: on GRID, paired turned a net upward teaching of the output "
                             "into a uniform depression)")
    parser.add_argument("--homeostasis", type=float, default=0.0, metavar="GAIN",
                        help="the output dendrites' homeostasis between chunks, 0 (off) to 1: a constant dendritic "
                             "current that brings the output's untaught burst probability back to the fit's mid-point, "
                             "where the teacher assumes it (as the output fell quiet on GRID it rose from 0.50 to 0.63, "
                             "and up-teaching then added events with its bursts; rate_bridge.teaching."
                             "dendrite_homeostasis_pA); each chunk's offset and burst probability are in metrics.json")
    parser.add_argument("--w-bound", type=float, default=2.0,
                        help="the learning layers' weights stay within +-this (the rule's bounds)")
    parser.add_argument("--reinit", nargs="?", const="all", default=None, metavar="LAYERS",
                        help="re-initialise layers first (seeded by --seed), so the start is poor: bare, every layer of "
                             "--layers; or a comma-separated subset of them (e.g. --reinit out: the output starts "
                             "afresh, the other learning layers from their trained weights)")
    parser.add_argument("--counting-ceiling", type=int, nargs="+", default=None, metavar="CELLS",
                        help="instead of learning: the counting-noise ceiling of each layer's update cosine for these "
                             "cells per dense/output unit (burstprop's rates and burst probabilities counted in "
                             "ensembles; rate_bridge.update_ceiling) on the --frames stream at the start weights, "
                             "summed over chunks; the rate model only, no circuit: on 2 cores 18 s for 500 frames and 4 sizes, "
                             "69 s for 2000 frames and 5 sizes (GRID, compact preset); writes ceiling.md/.json")
    add_bridge_arguments(parser)
    parser.set_defaults(teach=True, build_tag="learn")
    add_data_arguments(parser)


def check_options(args) -> None:
    """One-line errors for the numeric options.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.

    Raises
    ------
    MburstError
        Naming the option.
    """
    from neurons.common import MburstError

    for flag, value in (("--frames", args.frames), ("--chunk", args.chunk)):
        if not isinstance(value, int) or value < 1:
            raise MburstError(f"{flag} must be a positive integer, got {value!r}")
    if args.frames % args.chunk:
        raise MburstError(f"--frames {args.frames} must be a multiple of --chunk {args.chunk} (a fixed chunk keeps the "
                          "circuit's code shape, so its rebuilds are warm)")
    every = args.eval_every or args.chunk
    if every < 1 or every % args.chunk:
        raise MburstError(f"--eval-every {every} must be a positive multiple of --chunk {args.chunk}")
    for flag, value in (("--eta", args.eta), ("--teach-gain", args.teach_gain), ("--w-bound", args.w_bound)):
        if not value > 0:
            raise MburstError(f"{flag} must be > 0, got {value}")
    if args.counting_ceiling is not None and min(args.counting_ceiling) < 1:
        raise MburstError(f"--counting-ceiling: cells per unit must be >= 1, got {args.counting_ceiling}")
    if not 0 <= args.homeostasis <= 1:
        raise MburstError(f"--homeostasis must be in [0, 1], got {args.homeostasis:g}")
    if args.eval_frames < 0 or args.settle < 0:
        raise MburstError("--eval-frames and --settle must be >= 0")


def reinit_choice(layers, value) -> tuple:
    """The layers ``--reinit`` re-initialises (a tuple of str): none when ``value`` is None (not given), all of
    ``layers`` (the checked ``--layers``) when it is ``"all"`` (given bare), else the comma-separated names; raises
    MburstError for a name that does not learn (it could not recover) or an empty list."""
    from neurons.common import MburstError

    if value is None:
        return ()
    if value == "all":
        return tuple(layers)
    names = tuple(k.strip() for k in value.split(",") if k.strip())
    if not names:
        raise MburstError("--reinit: give comma-separated layers of --layers, or no value for all of them")
    for name in names:
        if name not in layers:
            raise MburstError(f"--reinit: layer '{name}' does not learn (--layers {','.join(layers)}); it could not "
                              "recover")
    return names


def stream_frames(corpus, state, n_frames: int, seed: int):
    """``(audio, visual, ibm)`` of the first ``n_frames`` frames of the training utterances in a seeded random order.

    Parameters
    ----------
    corpus : experiments.data.corpus.Corpus
    state : dict
        The checkpoint (split seed, feature statistics, bands).
    n_frames : int
        Frames to stream.
    seed : int
        Seed of the utterances' order.

    Returns
    -------
    audio, visual, ibm : torch.Tensor
        ``[n_frames, 1, context, bins]``, ``[n_frames, 1, 50, 92]`` and ``[n_frames, bins]``.

    Raises
    ------
    MburstError
        Fewer training frames than ``n_frames`` (naming ``--frames``).
    """
    import numpy as np

    from neurons.common import MburstError

    splits = corpus.split(state["train_config"]["split_seed"])
    order = np.random.default_rng(seed).permutation(splits["train"])
    per_utterance = np.bincount(np.cumsum(corpus.rows(order)[2] == 0) - 1)  # frames of each, in this order
    if per_utterance.sum() < n_frames:
        raise MburstError(f"--frames {n_frames}: the training split holds only {per_utterance.sum()} frames")
    used = int(np.searchsorted(np.cumsum(per_utterance), n_frames)) + 1  # load only the utterances streamed
    frames = corpus.frames(order[:used], state["feature_stats"], state["model_config"].get("n_bins"))
    return frames.batch(np.arange(n_frames))


def main(args) -> int:
    import copy
    import time

    import numpy as np
    import torch

    from circuits.plasticity import BurstPlasticityParams
    from experiments.commands.bridge import bridge_config_from_args
    from experiments.options import corpus_from_args
    from experiments.progress import Bar
    from experiments.spiking.learn_report import learn_report, write_ceiling, write_learning
    from experiments.training.checkpoints import check_features, load_checkpoint, save_checkpoint
    from experiments.training.metrics import weighted_bce
    from experiments.training.train import evaluate
    from neurons.common import MburstError
    from rate_bridge.convert import SpikingMBURST
    from rate_bridge.learning import (LearnSettings, LearnState, check_layers, learn_chunk, matched_learning_rate,
                                      reinit_layers)

    t0 = time.perf_counter()
    check_options(args)
    cfg = bridge_config_from_args(args)
    model, state = load_checkpoint(args.checkpoint)
    layers = check_layers(model, [k.strip() for k in args.layers.split(",") if k.strip()])
    if not cfg.feedback and set(layers) - {"out"}:
        raise MburstError("--layers: hidden layers learn from the output's bursts fed back; drop --no-feedback/"
                          "--ablate feedback, or learn only 'out'")
    net = SpikingMBURST(model, cfg)  # refuses a model the circuit cannot map
    fresh = reinit_choice(layers, args.reinit)
    start = reinit_layers(model, fresh, args.seed) if fresh else copy.deepcopy(model)
    for name in layers:
        top = float(start.burst_layers()[name].weight.detach().abs().max())
        if top > args.w_bound:
            raise MburstError(f"--w-bound {args.w_bound:g}: layer '{name}' holds weights up to |W| = {top:.3g}")
    corpus = corpus_from_args(args)
    check_features(state, corpus.meta, args.checkpoint)
    audio, visual, ibm = stream_frames(corpus, state, args.frames, args.seed)
    visual = visual if model.visual else None
    test = corpus.frames(corpus.split(state["train_config"]["split_seed"])["test"], state["feature_stats"],
                         model.config.n_bins)
    curve_idx = np.arange(len(test)) if not args.eval_frames else np.linspace(
        0, len(test) - 1, min(args.eval_frames, len(test))).round().astype(np.int64)
    curve_set = test if not args.eval_frames else _Subset(test, curve_idx)

    pos_weight, gain = float(state.get("pos_weight", 1.0)), args.teach_gain

    def loss_fn(prob, target):
        return gain * weighted_bce(prob, target, pos_weight)

    params = BurstPlasticityParams(eta=args.eta)
    if args.counting_ceiling:
        from brian2 import second

        from rate_bridge.update_ceiling import ceiling_scan

        table = ceiling_scan(start, audio, visual, ibm, loss_fn, layers, net.specs, args.counting_ceiling, cfg.n_conv,
                             net.cal.e_ref, cfg.t_frame_ms * 1e-3, float(params.tau_pre / second), args.chunk, args.seed)
        write_ceiling(args.out, table, {"frames": args.frames, "chunk": args.chunk, "n_conv": cfg.n_conv,
                                        "frame_period_ms": cfg.t_frame_ms, "reinit": list(fresh),
                                        "checkpoint": str(args.checkpoint)})
        return 0
    settings = LearnSettings(layers, params, args.w_bound, matched_learning_rate(params, net.cal, cfg.t_frame_ms * 1e-3),
                             cfg, args.settle, args.baseline, args.homeostasis)
    options = {k: str(v) for k, v in sorted(vars(args).items())
               if not k.startswith("_") and k not in ("out", "frames", "eta")}
    saved = _load_state(args.out / STATE, options)
    spk, bp = copy.deepcopy(start), copy.deepcopy(start)
    if saved is None:
        learned = LearnState()
    else:
        learned = LearnState.from_dict(saved["state"])
        if not learned.etas:  # saved before the rate was kept per chunk: one rate, kept with the options
            learned.etas = [float(saved["options"]["eta"])] * (learned.frames // args.chunk)
        if learned.frames > args.frames:
            raise MburstError(f"--frames {args.frames}: --out {args.out} has learned {learned.frames} frames already")
        spk.load_state_dict(saved["spiking"])
        bp.load_state_dict(saved["burstprop"])
        print(f"learn: resuming after {learned.frames} frames")
    every = args.eval_every or args.chunk

    def score(m, frames_set) -> float:
        return float(evaluate(m, frames_set, 256)[0].f1)

    if not learned.curve:
        learned.curve.append({"frames": 0, "f1_spiking": score(spk, curve_set), "f1_burstprop": score(bp, curve_set)})
    starts = range(learned.frames, args.frames, args.chunk)
    with Bar(starts, desc="learn (chunks)", unit="chunk", show=True) as bar:
        for s in bar:
            sl = slice(s, s + args.chunk)
            learn_chunk(spk, bp, audio[sl], None if visual is None else visual[sl], ibm[sl], loss_fn, settings,
                        learned)
            if learned.frames % every == 0 or learned.frames == args.frames:
                learned.curve.append({"frames": learned.frames, "f1_spiking": score(spk, curve_set),
                                      "f1_burstprop": score(bp, curve_set)})
                bar.set_postfix_str(f"F1 spiking {learned.curve[-1]['f1_spiking']:.3f} burstprop "
                                    f"{learned.curve[-1]['f1_burstprop']:.3f}")
            _save_state(args.out / STATE, options, learned, spk, bp)
    f1 = {"trained": score(model, test), "start": score(start, test), "spiking": score(spk, test),
          "burstprop": score(bp, test)}
    for name, m in (("checkpoint.pt", spk), ("checkpoint_burstprop.pt", bp)):
        save_checkpoint(args.out / name, {**state, "model_state": m.state_dict(),
                                          "learning": {"source": str(args.checkpoint), "rule": name, **options,
                                                       "eta_per_chunk": learned.etas}})
    report = learn_report(args, cfg, net, settings, learned, f1, start, fresh, time.perf_counter() - t0)
    write_learning(args.out, report)
    print(f"learn: {args.frames} frames of {','.join(layers)}: test F1 trained {f1['trained']:.4f}, start "
          f"{f1['start']:.4f}, spiking {f1['spiking']:.4f}, burstprop {f1['burstprop']:.4f}; cosine "
          + ", ".join(f"{k} {v['cosine']:.3f}" for k, v in report["layers"].items()) + f" -> {args.out}")
    return 0


class _Subset:
    """Some frames of a FrameSet (what :func:`experiments.training.train.evaluate` reads: ``len`` and ``batch``)."""

    def __init__(self, frames, idx):
        self.frames, self.idx = frames, idx

    def __len__(self) -> int:
        return len(self.idx)

    def batch(self, i):
        return self.frames.batch(self.idx[i])


def _load_state(path: Path, options: dict):
    """The saved progress of this run, or None; refuses progress of a run with other options (``--frames`` may
    grow: the stream's frames are a prefix of a longer stream's, so a finished run can be extended; ``--eta`` may
    change: the rate of each chunk is kept in the state)."""
    import torch

    from neurons.common import MburstError

    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if {k: v for k, v in saved.get("options", {}).items() if k != "eta"} != options:  # older states kept eta here
        raise MburstError(f"--out {path.parent} holds a learning run with other options; use another --out")
    return saved


def _save_state(path: Path, options: dict, learned, spk, bp) -> None:
    import io

    import torch

    from neurons.common import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"options": options, "state": learned.to_dict(), "spiking": spk.state_dict(),
                "burstprop": bp.state_dict()}, buf)
    atomic_write_bytes(path, buf.getvalue())
