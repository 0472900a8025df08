"""Score a trained checkpoint on prepared data.

The inputs are standardised with the checkpoint's own training statistics.
On the corpus it was trained on, the default splits are the checkpoint's
train/test/proxy; on any other corpus (another GRID root, another noise
folder) the default is --split all. Writes metrics.json with, per split:
f1, accuracy, active_fraction and mean_event_rate (per hidden layer and overall);
with --by-snr also f1, accuracy and the positive (speech-dominated) fraction of
the mask for each mixture SNR, which shows where a model (or the visual branch)
helps; with --ablate-lips also f1 and accuracy with the lips shuffled across
frames and with the mean lips, which shows how much the model uses vision.
"""
from __future__ import annotations

from pathlib import Path

NAME = "evaluate"
HELP = "score a checkpoint on any prepared data (metrics.json)"


def add_arguments(parser) -> None:
    from experiments.options import add_data_arguments, add_threads_argument

    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt written by `mburst train`/`reproduce`")
    parser.add_argument("--split", nargs="+", choices=("train", "test", "proxy", "all"), default=None,
                        help="splits to score (default: train test proxy on the training corpus, else all)")
    parser.add_argument("--batch-size", type=int, default=256, help="frames per evaluation batch")
    parser.add_argument("--by-snr", action="store_true",
                        help="also score each mixture SNR of every split separately (f1, accuracy, positive fraction)")
    parser.add_argument("--ablate-lips", action="store_true",
                        help="also score every split with the lip images shuffled across frames (same images, pairing "
                             "broken; seeded by --seed) and with the training-mean lips: how much the model uses vision")
    parser.add_argument("--enhance", type=int, default=0, metavar="N",
                        help="also resynthesise N utterances of the first split and score STOI/ESTOI/PESQ-WB/SI-SDR "
                             "against the noisy input and the oracle masks (enhancement/ in the run folder; 0: off)")
    add_threads_argument(parser)
    add_data_arguments(parser)


def main(args) -> int:
    from neurons.common import MburstError, atomic_write_json

    from experiments.training.checkpoints import check_features, load_checkpoint
    from experiments.data.frames import LIP_ABLATIONS
    from experiments.options import corpus_from_args, use_threads
    from experiments.training.train import evaluate

    if args.batch_size < 1:
        raise MburstError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.enhance < 0:
        raise MburstError(f"--enhance must be >= 0, got {args.enhance}")
    print(f"evaluate: {use_threads(args.threads)} torch thread(s)")
    model, state = load_checkpoint(args.checkpoint)
    if args.ablate_lips and not model.visual:
        raise MburstError(f"--ablate-lips: '{args.checkpoint}' is a {state['model_name']} model without a visual branch")
    corpus = corpus_from_args(args)
    check_features(state, corpus.meta, args.checkpoint)
    same_corpus = corpus.meta.get("cache_key") == state.get("corpus", {}).get("cache_key")
    splits = corpus.split(state["train_config"]["split_seed"])
    names = args.split or ([n for n in ("train", "test", "proxy") if len(splits[n])] if same_corpus else ["all"])
    report = {"checkpoint": str(args.checkpoint), "model": state["model_name"], "corpus": str(corpus.path),
              "same_corpus_as_training": same_corpus, "splits": {}}
    for name in names:
        if len(splits[name]) == 0:
            raise MburstError(f"--split {name}: the corpus has no utterance in that split")
        frames = corpus.frames(splits[name], state["feature_stats"], model.config.n_bins)
        counts, activity, _ = evaluate(model, frames, args.batch_size, progress=True)
        report["splits"][name] = {"f1": counts.f1, "accuracy": counts.accuracy, "frames": int(
            counts.tp + counts.fp + counts.fn + counts.tn) // model.config.n_bins, **activity}
        print(f"{name}: F1 {counts.f1:.4f}  accuracy {counts.accuracy:.2f} %  "
              f"active fraction {activity['active_fraction'].get('overall', float('nan')):.3f}")
        if args.ablate_lips:
            ablated = {}
            for mode in LIP_ABLATIONS:
                a_counts, _, _ = evaluate(model, frames.with_lips(mode, args.seed), args.batch_size)
                ablated[mode] = {"f1": a_counts.f1, "accuracy": a_counts.accuracy}
            report["splits"][name]["lips_ablated"] = ablated
            print("  lips " + "  ".join(f"{mode}: F1 {row['f1']:.4f} ({row['f1'] - counts.f1:+.4f})"
                                        for mode, row in ablated.items()))
        if args.by_snr:
            report["splits"][name]["by_snr"] = _by_snr(model, corpus, splits[name], state["feature_stats"], args.batch_size)
            print("  " + "  ".join(f"{snr}: F1 {row['f1']:.4f} ({100 * row['positive_fraction']:.1f} % positive)"
                                   for snr, row in report["splits"][name]["by_snr"].items()))
    if args.enhance > 0:
        from experiments.speech.evaluation import evaluate_enhancement, exclusion_note, summarise, write_enhancement_report
        from experiments.speech.masking import checkpoint_masker
        from experiments.training.reproduce import spread_utterances

        chosen = spread_utterances(splits[names[0]], args.enhance, corpus)
        rows = evaluate_enhancement(corpus, chosen, {state["model_name"]: checkpoint_masker(args.checkpoint)[:2]},
                                    lc_db=corpus.meta.get("lc_db", 5.0))
        write_enhancement_report(rows, args.out / "enhancement")
        report["enhancement"] = summarise(rows)
        print(f"enhancement: {len(chosen)} utterances scored -> {args.out / 'enhancement' / 'enhancement.md'}")
        print(exclusion_note(report["enhancement"]) or "enhancement: no score left out of the means", end="")
    atomic_write_json(args.out / "metrics.json", report)
    return 0


def _by_snr(model, corpus, utt_indices, feature_stats, batch_size: int) -> dict:
    """F1, accuracy, utterances, frames and positive mask fraction per mixture SNR (keys like '-6 dB')."""
    import numpy as np

    from experiments.training.train import evaluate

    snrs = np.array([corpus.utterances[i].snr_db for i in utt_indices])
    out = {}
    for snr in sorted(set(snrs.tolist())):
        chosen = np.asarray(utt_indices)[snrs == snr]
        counts, _, _ = evaluate(model, corpus.frames(chosen, feature_stats, model.config.n_bins), batch_size)
        total = counts.tp + counts.fp + counts.fn + counts.tn
        out[f"{snr:+g} dB"] = {"f1": counts.f1, "accuracy": counts.accuracy, "utterances": int(len(chosen)),
                               "frames": int(total) // model.config.n_bins, "positive_fraction": (counts.tp + counts.fn) / total}
    return out
