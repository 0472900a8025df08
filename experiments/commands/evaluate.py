"""Score a trained checkpoint on prepared data.

The inputs are standardised with the checkpoint's own training statistics. Splits are by sentence and stay
put (a sentence's split is a hash of its id and the checkpoint's split seed, experiments/data/splits.py), and
every sentence is mixed with train and with held-out (test) noise recordings: test scores the test sentences
with held-out recordings. On data sharing sentences with the checkpoint's training corpus (the same source)
the default splits are the checkpoint's train/test/proxy, else --split all; a split other than train that
holds any of the checkpoint's training sentences is refused (--allow-overlap scores it anyway).

Writes metrics.json with, per split: f1, accuracy, active_fraction and mean_event_rate (per hidden layer and
overall); for test also the same test sentences with the recordings heard in training (test_seen), and the
generalisation gap F1(test_seen) - F1(test); with --by-snr f1, accuracy and the positive (speech-dominated)
fraction of the target and of the predicted mask for each mixture SNR; with --by-noise the same per noise
category and per recording (and STOI/SI-SDR per category and recording of the --enhance utterances); with
--ablate-lips f1 and accuracy with the lips shuffled across frames and with the mean lips.
"""
from __future__ import annotations

from pathlib import Path

NAME = "evaluate"
HELP = "score a checkpoint on any prepared data (metrics.json)"
SPLIT_NAMES = ("train", "test", "proxy", "test_seen", "all")


def add_arguments(parser) -> None:
    from experiments.options import add_data_arguments, add_threads_argument

    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt written by `mburst train`/`reproduce`")
    parser.add_argument("--split", nargs="+", choices=SPLIT_NAMES, default=None,
                        help="splits to score (test: test sentences with held-out noise recordings; test_seen: the same "
                             "sentences with the training recordings; default: train test proxy on data sharing "
                             "sentences with the training corpus, else all)")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="score a split other than train even when it holds training sentences of the checkpoint "
                             "(refused by default: such a score is not a test score)")
    parser.add_argument("--batch-size", type=int, default=256, help="frames per evaluation batch")
    parser.add_argument("--by-snr", action="store_true",
                        help="also score each mixture SNR of every split separately (f1, accuracy, positive fractions)")
    parser.add_argument("--by-noise", action="store_true",
                        help="also score each noise category and recording of every split separately (f1, accuracy, "
                             "positive fractions; STOI and SI-SDR of the --enhance utterances, spread over recordings)")
    parser.add_argument("--ablate-lips", action="store_true",
                        help="also score every split with the lip images shuffled across frames (same images, pairing "
                             "broken; seeded by --seed) and with the training-mean lips: how much the model uses vision")
    parser.add_argument("--enhance", type=int, default=0, metavar="N",
                        help="also resynthesise N utterances of the first split and score STOI/ESTOI/PESQ-WB/SI-SDR "
                             "against the noisy input and the oracle masks (enhancement/ in the run folder; 0: off)")
    add_threads_argument(parser)
    add_data_arguments(parser)


def training_sentences(corpus, state) -> set[str]:
    """The clean ids of ``corpus`` that the checkpoint trained on.

    Same source as the training corpus: the ids its split seed puts in train (the split is a function of the id
    and the seed, :func:`experiments.data.splits.sentence_splits`); another source shares no sentence.

    Parameters
    ----------
    corpus : Corpus
    state : dict
        The checkpoint.

    Returns
    -------
    set of str
    """
    from experiments.data.splits import sentence_splits

    if corpus.meta.get("source") != state.get("corpus", {}).get("source"):
        return set()
    ids = [c["clean_id"] for c in corpus.cleans]
    part = sentence_splits(ids, state["train_config"]["split_seed"])
    return {i for i, k in zip(ids, part) if k == 0}


def check_overlap(corpus, splits: dict, names: list[str], trained: set[str], allow: bool) -> dict[str, int]:
    """Training sentences in each split to score; refuses a split other than train that holds any.

    Parameters
    ----------
    corpus : Corpus
    splits : dict of str to ndarray of int
        :meth:`Corpus.split`.
    names : list of str
        Splits to score.
    trained : set of str
        :func:`training_sentences`.
    allow : bool
        ``--allow-overlap``: count, do not refuse.

    Returns
    -------
    dict of str to int
        Training sentences per split name.

    Raises
    ------
    MburstError
        One line naming the split and the count, unless ``allow``.
    """
    from neurons.common import MburstError

    counts = {}
    for name in names:
        ids = {corpus.utterances[i].clean_id for i in splits[name]}
        counts[name] = len(ids & trained)
        if name != "train" and counts[name] and not allow:
            raise MburstError(f"--split {name}: {counts[name]} of its {len(ids)} sentences are training sentences of the "
                              "checkpoint, so its score would not be a test score (--allow-overlap to score it anyway)")
    return counts


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
    trained = training_sentences(corpus, state)
    names = args.split or ([n for n in ("train", "test", "proxy") if len(splits[n])] if trained else ["all"])
    for name in names:
        if len(splits[name]) == 0:
            raise MburstError(f"--split {name}: the corpus has no utterance in that split")
    overlap = check_overlap(corpus, splits, names, trained, args.allow_overlap)
    report = {"checkpoint": str(args.checkpoint), "model": state["model_name"], "corpus": str(corpus.path),
              "same_corpus_as_training": same_corpus, "training_sentences_in_split": overlap,
              "noise": {"mode": corpus.report["noise"]["mode"], "categories": corpus.report["noise"]["categories"]},
              "splits": {}}
    stats, batch = state["feature_stats"], args.batch_size
    for name in names:
        frames = corpus.frames(splits[name], stats, model.config.n_bins)
        counts, activity, _ = evaluate(model, frames, batch, progress=True)
        entry = report["splits"][name] = {"f1": counts.f1, "accuracy": counts.accuracy, "frames": int(
            counts.tp + counts.fp + counts.fn + counts.tn) // model.config.n_bins, **activity}
        print(f"{name}: F1 {counts.f1:.4f}  accuracy {counts.accuracy:.2f} %  "
              f"active fraction {activity['active_fraction'].get('overall', float('nan')):.3f}")
        if name == "test" and len(splits["test_seen"]):
            seen, _, _ = evaluate(model, corpus.frames(splits["test_seen"], stats, model.config.n_bins), batch)
            report["generalisation"] = {"test_seen_f1": seen.f1, "test_f1": counts.f1, "gap": seen.f1 - counts.f1}
            print(f"  same sentences with the training recordings (test_seen): F1 {seen.f1:.4f}; generalisation gap "
                  f"to held-out recordings {seen.f1 - counts.f1:+.4f}")
        if args.ablate_lips:
            ablated = {}
            for mode in LIP_ABLATIONS:
                a_counts, _, _ = evaluate(model, frames.with_lips(mode, args.seed), batch)
                ablated[mode] = {"f1": a_counts.f1, "accuracy": a_counts.accuracy}
            entry["lips_ablated"] = ablated
            print("  lips " + "  ".join(f"{mode}: F1 {row['f1']:.4f} ({row['f1'] - counts.f1:+.4f})"
                                        for mode, row in ablated.items()))
        if args.by_snr or args.by_noise:
            from experiments.training.noise_report import GROUPS, cell_counts, grouped

            cells = cell_counts(model, corpus, splits[name], stats, batch)
            if args.by_snr:
                entry["by_snr"] = grouped(cells, GROUPS["by_snr"])
                print("  " + "  ".join(f"{snr}: F1 {row['f1']:.4f} ({100 * row['positive_fraction']:.1f} % positive)"
                                       for snr, row in entry["by_snr"].items()))
            if args.by_noise:
                entry["by_category"] = grouped(cells, GROUPS["by_category"])
                entry["by_recording"] = grouped(cells, GROUPS["by_recording"])
                for group in ("by_category", "by_recording"):
                    print(f"  {group.replace('_', ' ')}: " + "  ".join(
                        f"{k}: F1 {row['f1']:.3f} ({100 * row['predicted_fraction']:.1f} % marked vs "
                        f"{100 * row['positive_fraction']:.1f} % true)" for k, row in entry[group].items()))
    if args.enhance > 0:
        _enhance(args, corpus, splits[names[0]], state, report)
    elif args.by_noise:
        print("--by-noise: STOI and SI-SDR per noise need --enhance N (utterances resynthesised and scored)")
    atomic_write_json(args.out / "metrics.json", report)
    return 0


def _enhance(args, corpus, utt_indices, state, report: dict) -> None:
    """Resynthesise and score ``--enhance`` utterances (spread over the recordings with --by-noise)."""
    from experiments.speech.evaluation import evaluate_enhancement, exclusion_note, summarise, write_enhancement_report
    from experiments.training.noise_report import summarise_by_noise
    from experiments.speech.masking import checkpoint_masker
    from experiments.training.reproduce import spread_utterances

    chosen = spread_utterances(utt_indices, args.enhance, corpus, over_recordings=args.by_noise)
    rows = evaluate_enhancement(corpus, chosen, {state["model_name"]: checkpoint_masker(args.checkpoint)[:2]},
                                lc_db=corpus.meta.get("lc_db", 5.0))
    write_enhancement_report(rows, args.out / "enhancement")
    report["enhancement"] = summarise(rows)
    print(f"enhancement: {len(chosen)} utterances scored -> {args.out / 'enhancement' / 'enhancement.md'}")
    if args.by_noise:
        report["enhancement_by_noise"] = by_noise = summarise_by_noise(rows)
        model = state["model_name"]
        for category, systems in by_noise["by_category"].items():
            print(f"  {category} ({systems[model]['n']} utterances): STOI noisy {systems['noisy']['stoi']:.3f} -> "
                  f"{model} {systems[model]['stoi']:.3f}; SI-SDR noisy {systems['noisy']['si_sdr']:.1f} -> "
                  f"{systems[model]['si_sdr']:.1f} dB")
    print(exclusion_note(report["enhancement"]) or "enhancement: no score left out of the means\n", end="")
