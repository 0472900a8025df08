"""Command-line options that select a prepared corpus, shared by prepare/train/evaluate/reproduce."""
from __future__ import annotations

from pathlib import Path

from .corpus import DEFAULT_SYNTHETIC_SIZE, CorpusSpec, load_corpus, prepare_corpus


def add_data_arguments(parser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                       help="a corpus folder already prepared by `mburst prepare` (e.g. on another machine); "
                            "used as it is, and the raw-data options below are ignored")
    group.add_argument("--data", choices=("synthetic", "grid"), default="synthetic",
                       help="synthetic: the embedded procedural corpus; grid: a GRID-layout root (sN/*.mpg, alignments/sN/*.align, optional audio/sN/*.wav)")
    group.add_argument("--data-root", type=Path, default=None,
                       help="GRID root (default: $MBURST_DATA/grid, else ../shared/data/grid)")
    group.add_argument("--noise-root", type=Path, default=None,
                       help="folder of noise wav files at any sample rate (default for grid: $MBURST_DATA/noise; synthetic: its own synthetic noises)")
    group.add_argument("--speakers", nargs="+", default=None, metavar="sN", help="GRID speakers to use (default: all found)")
    group.add_argument("--snrs", type=float, nargs="+", default=[-12.0, -6.0, 0.0, 6.0], metavar="DB",
                       help="mixture SNRs in dB; every utterance gets one noisy version per SNR")
    group.add_argument("--lc-db", type=float, default=5.0, help="local criterion LC of the ideal binary mask, in dB")
    group.add_argument("--n-utterances", type=int, default=None,
                       help=f"synthetic corpus size (default {DEFAULT_SYNTHETIC_SIZE}) or a limit on GRID utterances (default: all)")
    group.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic corpus and of noise segment/mixing draws")
    group.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                       help="bad input file: fail with a one-line error, or skip it and report the count at the end")


def spec_from_args(args) -> CorpusSpec:
    return CorpusSpec(
        source=args.data, data_root=args.data_root, noise_root=args.noise_root,
        speakers=tuple(args.speakers) if args.speakers else None, snrs_db=tuple(args.snrs), lc_db=args.lc_db,
        n_utterances=args.n_utterances, seed=args.data_seed, on_error=args.on_error,
    )


def open_corpus(corpus_dir: Path | None, spec: CorpusSpec, progress: bool = True):
    """Open a prepared folder (--corpus DIR) as it is, or prepare (or reuse from the cache) ``spec``."""
    if corpus_dir is not None:
        return load_corpus(corpus_dir)
    return load_corpus(prepare_corpus(spec, progress=progress))


def corpus_from_args(args, progress: bool = True):
    """The corpus the data options describe (--corpus DIR wins over the raw-data options)."""
    return open_corpus(args.corpus, spec_from_args(args), progress)
