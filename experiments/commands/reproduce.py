"""Reproduce the MBURST paper: Tables I-II and Figures 2-3, plus report.md.

Profiles: quick (embedded synthetic corpus, small models, minutes; the
README's main job), cpu (the shared GRID speaker-1 utterances with the ambient
noise set, held-out recordings for test, reduced widths; hours on 2 cores), paper (the paper's sizes
and 40 epochs x 4 runs; pass --device cuda). Options given explicitly
override the profile. Re-running with the same --out resumes.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

NAME = "reproduce"
HELP = "train all three models over seeded splits and write the paper's tables and figures"


def add_arguments(parser) -> None:
    from experiments.options import add_pos_weight_argument
    from experiments.training.reproduce import PROFILES
    from experiments.training.stages import STAGES

    parser.add_argument("--profile", choices=tuple(PROFILES), default="quick",
                        help="; ".join(f"{k}: {v['note']}" for k, v in PROFILES.items()))
    over = parser.add_argument_group("overrides of the profile (default: the profile's value)")
    S = argparse.SUPPRESS
    over.add_argument("--runs", type=int, default=S, help="number of seeded splits/runs (paper: 4)")
    over.add_argument("--beta", type=float, default=S,
                      help="MBURST's hidden burst-probability slope, p = sigma(beta u + alpha) (reference: 1; quick and "
                           "cpu use 0.1, where burstprop's updates follow backprop's: measured on the quick profile, "
                           "beta 1 turns the first two audio convolutions' updates 104 and 97 degrees from the gradient, "
                           "beta 0.1 keeps every layer within 23 degrees, at the same test F1)")
    over.add_argument("--epochs", type=int, default=S, help="epochs per run (paper: 40)")
    over.add_argument("--channels", type=int, default=S, help="conv channels (paper: 32)")
    over.add_argument("--embed", type=int, default=S, help="branch embedding width (paper: 256)")
    over.add_argument("--batch-size", type=int, default=S, help="frames per batch")
    over.add_argument("--data", choices=("synthetic", "grid"), default=S, help="corpus source")
    over.add_argument("--n-utterances", type=int, default=S, help="synthetic size / GRID limit")
    over.add_argument("--enhance-utterances", type=int, default=S,
                      help="test utterances scored with STOI/ESTOI/PESQ/SI-SDR (0 skips the enhancement stage)")
    over.add_argument("--spiking-frames", type=int, default=S,
                      help="consecutive test frames (the stretch with the most speech) streamed through the circuit by an "
                           "MBURST trained for it (the spiking preset's sizes, at least 10 epochs), untaught then taught, "
                           "for the equivalence and energy tables (quick: 24, about 3.5 min cold on 2 cores, 151 s of it "
                           "the Brian2 build, 76 s warm; 0 skips the stage; `mburst bridge`/`mburst energy` run any size)")
    parser.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                        help="a corpus folder already prepared by `mburst prepare` (e.g. on another machine), used as it "
                             "is; --data, --n-utterances and the raw-data options are then ignored")
    parser.add_argument("--data-root", type=Path, default=None, help="GRID root (default: $MBURST_DATA/grid)")
    from experiments.data.noise import NOISE_SPLITS
    from experiments.data.spec import NOISE_SETS

    over.add_argument("--noise-set", choices=tuple(NOISE_SETS), default=S,
                      help="GRID's noise, a folder of $MBURST_DATA: " + "; ".join(f"{k}: {v}" for k, v in NOISE_SETS.items()))
    parser.add_argument("--noise-root", type=Path, default=None,
                        help="noise recordings, one category per subfolder (default for grid: the profile's --noise-set)")
    parser.add_argument("--noise-split", choices=tuple(NOISE_SPLITS), default="recording",
                        help="; ".join(f"{k}: {v}" for k, v in NOISE_SPLITS.items()))
    parser.add_argument("--snrs", type=float, nargs="+", default=[-12.0, -6.0, 0.0, 6.0], metavar="DB", help="mixture SNRs in dB")
    parser.add_argument("--lc-db", type=float, default=5.0, help="IBM local criterion in dB")
    parser.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="bad input files: fail or count and skip")
    parser.add_argument("--device", default="cpu", help="torch device for training")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train this many (run, model) pairs at once in separate processes, one torch thread each")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads when --jobs is 1 (0: torch's default, the machine's physical cores); "
                             "with --jobs > 1 every job uses one")
    parser.add_argument("--force", action="append", default=[], choices=STAGES, metavar="STAGE",
                        help="redo this stage even when its outputs exist for the same configuration (repeatable; "
                             f"stages: {', '.join(STAGES)}); without it, re-running into the same --out redoes nothing "
                             "that is up to date")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-6, help="Adam weight decay")
    add_pos_weight_argument(parser)
    parser.add_argument("--rescale-updates", action=argparse.BooleanOptionalAction, default=True,
                        help="MBURST: divide each hidden layer's burstprop update by (beta sigma'(alpha))^k (a per-layer "
                             "learning rate; --no-rescale-updates gives the unscaled rule, whose hidden layers Adam's "
                             "epsilon and weight decay damp)")


def main(args) -> int:
    from experiments.data.spec import CorpusSpec
    from experiments.options import open_corpus, use_threads
    from experiments.training.reproduce import PROFILES, enhancement_stage, reproduce
    from experiments.training.config import TrainConfig
    from rate_bridge.burstprop.models import ModelConfig

    settings = {k: v for k, v in PROFILES[args.profile].items() if k != "note"}
    settings.update({k: getattr(args, k) for k in settings if hasattr(args, k)})
    spec = CorpusSpec(source=settings["data"], data_root=args.data_root, noise_root=args.noise_root,
                      snrs_db=tuple(args.snrs), lc_db=args.lc_db, n_utterances=settings["n_utterances"],
                      seed=args.seed, on_error=args.on_error, noise_set=settings["noise_set"],
                      noise_split=args.noise_split)
    corpus = open_corpus(args.corpus, spec)
    settings["data"] = corpus.meta.get("source", settings["data"])
    model_cfg = ModelConfig(channels=settings["channels"], embed=settings["embed"], beta=settings["beta"],
                            rescale_updates=args.rescale_updates)
    settings["rescale_updates"] = args.rescale_updates
    settings["pos_weight"] = args.pos_weight
    base = TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"], lr=args.lr,
                       weight_decay=args.weight_decay, seed=args.seed, split_seed=args.seed, device=args.device,
                       pos_weight=args.pos_weight)
    threads = use_threads(args.threads, args.jobs)
    stages = []
    if settings["enhance_utterances"] > 0:
        stages.append(("enhancement", {"utterances": settings["enhance_utterances"]},
                       enhancement_stage(corpus, settings["enhance_utterances"])))
    if settings["spiking_frames"] > 0:
        from experiments.spiking.stage import spiking_section
        from experiments.training.config import PRESETS

        def spiking(out, results):
            section = spiking_section(out, results, corpus, frames=settings["spiking_frames"], train_cfg=spiking_train)
            return section, [str(f.relative_to(out)) for f in sorted((out / "spiking").rglob("*")) if f.is_file()]

        # the compact calibrated model needs more epochs than the profile's on a small corpus (quick corpus, batch 64:
        # test F1 0.00 / 0.01 / 0.08 after epochs 1-3, 0.31-0.41 from epoch 4 to 12)
        spiking_train = dataclasses.replace(base, epochs=max(base.epochs, 10))
        stages.append(("spiking", {"frames": settings["spiking_frames"], "preset": PRESETS["spiking"],
                                   "epochs": spiking_train.epochs, "batch_size": base.batch_size}, spiking))
    from experiments.training import noise_report, vision_report

    runs, utts = settings["runs"], settings["enhance_utterances"]
    stages[:0] = [("noise", {"runs": runs}, lambda out, results: noise_report.stage(corpus, out, runs)),
                  ("vision", {"runs": runs, "utterances": utts},
                   lambda out, results: vision_report.stage(corpus, out, runs, utts))]
    from experiments.commands.energy import scoreboard_stage

    stages.append(("scoreboard", {"utterances": settings["enhance_utterances"],
                                  "spiking_frames": settings["spiking_frames"]}, scoreboard_stage(corpus)))
    print(f"reproduce: {args.jobs} job(s), {threads} torch thread(s) each")
    summary = reproduce(corpus, args.profile, model_cfg, base, settings["runs"], args.out, settings, extra_stages=stages,
                        jobs=args.jobs, force=args.force)
    for name, rec in summary["stages"].items():
        print(f"  stage {name}: run {rec['runs']} time(s) in this folder, last {rec['wall_s']:.1f} s")
    for model, (mean, std) in summary["test_f1"].items():
        print(f"{model:>10}: test F1 {mean:.3f} ± {std:.3f}")
    print(f"report: {args.out / 'report.md'}")
    return 0
