"""Command-line options shared by several ``mburst`` commands: the corpus (prepare/train/evaluate/reproduce/bridge/
energy), model sizes and optimisation (train/reproduce)."""
from __future__ import annotations

import argparse
from pathlib import Path

from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.noise import GUARD_S, NOISE_SPLITS, TIME_TEST_SHARE
from experiments.data.spec import DEFAULT_SYNTHETIC_SIZE, NOISE_SETS, ON_ERROR, SOURCES, CorpusSpec
from experiments.data.synthetic import NOISES
from experiments.training.config import POS_WEIGHT_RULES, TrainConfig


def add_data_arguments(parser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                       help="a corpus already prepared by `mburst prepare`: its --out folder or the cache folder it names "
                            "(e.g. copied from another machine); used as it is, and the raw-data options below are ignored")
    group.add_argument("--data", choices=tuple(SOURCES), default="synthetic",
                       help="; ".join(f"{k}: {v}" for k, v in SOURCES.items()))
    group.add_argument("--data-root", type=Path, default=None,
                       help="GRID root (default: $MBURST_DATA/grid, else ../shared/data/grid)")
    group.add_argument("--noise-root", type=Path, default=None,
                       help="noise recordings (wav/flac, mono or multi-channel, mixed down; any sample rate from 12,862 Hz "
                            "up, resampled to 16 kHz; each at least 3 s): files directly in the folder form one category, "
                            "each subfolder another (e.g. $MBURST_DATA/ambient/cafe/*.wav); other files are counted and "
                            "ignored (default for grid: the --noise-set under $MBURST_DATA; synthetic: its own noises, "
                            f"{', '.join(NOISES)}, one category each)")
    group.add_argument("--noise-set", choices=tuple(NOISE_SETS), default="ambient",
                       help="GRID's noise when --noise-root is not given, a folder of $MBURST_DATA: "
                            + "; ".join(f"{k}: {v}" for k, v in NOISE_SETS.items()))
    group.add_argument("--noise-split", choices=tuple(NOISE_SPLITS), default="recording",
                       help="which noise each split hears: " + "; ".join(f"{k}: {v}" for k, v in NOISE_SPLITS.items())
                            + f". A time cut gives test the last {100 * TIME_TEST_SHARE:g} %% after a {GUARD_S:g} s guard "
                              "gap. Every sentence is mixed with train and with test recordings; the test split scores "
                              "the held-out ones")
    group.add_argument("--speakers", nargs="+", default=None, metavar="sN", help="GRID speakers to use (default: all found)")
    group.add_argument("--snrs", type=float, nargs="+", default=[-12.0, -6.0, 0.0, 6.0], metavar="DB",
                       help="mixture SNRs in dB; every utterance gets one noisy version per SNR")
    group.add_argument("--lc-db", type=float, default=5.0, help="local criterion LC of the ideal binary mask, in dB")
    group.add_argument("--n-utterances", type=int, default=None,
                       help=f"synthetic corpus size (default {DEFAULT_SYNTHETIC_SIZE}) or a limit on GRID utterances (default: all)")
    group.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic corpus and of noise segment/mixing draws")
    group.add_argument("--on-error", choices=tuple(ON_ERROR), default="fail",
                       help="bad input file: " + "; ".join(f"{k}: {v}" for k, v in ON_ERROR.items()))


def spec_from_args(args) -> CorpusSpec:
    return CorpusSpec(
        source=args.data, data_root=args.data_root, noise_root=args.noise_root,
        speakers=tuple(args.speakers) if args.speakers else None, snrs_db=tuple(args.snrs), lc_db=args.lc_db,
        n_utterances=args.n_utterances, seed=args.data_seed, on_error=args.on_error, noise_split=args.noise_split,
        noise_set=args.noise_set,
    )


def open_corpus(corpus_dir: Path | None, spec: CorpusSpec, progress: bool = True):
    """Open a prepared folder (--corpus DIR) as it is, or prepare (or reuse from the cache) ``spec``."""
    if corpus_dir is not None:
        return load_corpus(corpus_dir)
    return load_corpus(prepare_corpus(spec, progress=progress))


def corpus_from_args(args, progress: bool = True):
    """The corpus the data options describe (--corpus DIR wins over the raw-data options)."""
    return open_corpus(args.corpus, spec_from_args(args), progress)


def add_model_arguments(parser) -> None:
    group = parser.add_argument_group("model size (paper: 32 channels, 256 embedding, 500 bins)")
    group.add_argument("--channels", type=int, default=32, help="channels of every 3x3 convolution")
    group.add_argument("--embed", type=int, default=256, help="width of each branch's dense embedding")
    group.add_argument("--bins", type=int, default=500,
                       help="frequency bands of the mask: 500 = every feature bin; fewer pools the 500 bins into equal "
                            "bands (e.g. 100 = 5 bins of 12.9 Hz each; compact models for the spiking bridge)")
    group.add_argument("--pbar", type=float, default=0.2, help="reference output burst probability pbar_L (burstprop)")
    group.add_argument("--beta", type=float, default=1.0,
                       help="slope of the hidden burst probability p = sigma(beta u + alpha) (burstprop; reference: 1). "
                            "Smaller values keep the dendrites in the sigmoid's linear range, where burstprop follows backprop")
    group.add_argument("--rescale-updates", action=argparse.BooleanOptionalAction, default=True,
                       help="burstprop: divide each hidden layer's update by (beta sigma'(alpha))^k, k its hidden layers "
                            "to the output (a per-layer learning rate that keeps Adam's epsilon and weight decay from "
                            "damping MBURST's attenuated hidden updates; default on)")
    from rate_bridge.burstprop.activations import activation_names

    group.add_argument("--activation", choices=activation_names(), default="relu",
                       help="hidden-layer transfer function: relu, or calibrated = the spiking pyramidal population's "
                            "measured event-rate curve (neurons/transfer_fit.json; see rate_bridge.burstprop.calibrated); "
                            "calibrated-quiet = the same cells without the Poisson background, a heterogeneous "
                            "ensemble (neurons/transfer_fit_quiet.json): far less spike-count noise in the bridge")


def add_train_arguments(parser) -> None:
    group = parser.add_argument_group("optimisation (paper: Adam, lr 1e-3, weight decay 1e-6, 40 epochs)")
    group.add_argument("--epochs", type=int, default=40, help="training epochs")
    group.add_argument("--batch-size", type=int, default=64, help="frames per batch")
    group.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    group.add_argument("--weight-decay", type=float, default=1e-6, help="Adam weight decay")
    add_pos_weight_argument(group)
    group.add_argument("--split-seed", type=int, default=0, help="seed of the 80/15/5 utterance split")
    group.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")


def add_pos_weight_argument(parser) -> None:
    parser.add_argument("--pos-weight", choices=POS_WEIGHT_RULES, default="sqrt",
                        help="positive weight of the BCE from the training masks' ratio r = negatives/positives: "
                             "sqrt = sqrt(r) (default; the 0.5 threshold then sits near the F1-optimal posterior), "
                             "ratio = r (the mask then over-predicts: posterior threshold 1/(1+r))")


def model_config_from_args(args):
    from rate_bridge.burstprop.models import ModelConfig

    return ModelConfig(n_bins=args.bins, channels=args.channels, embed=args.embed, pbar=args.pbar, beta=args.beta,
                       activation=args.activation, rescale_updates=args.rescale_updates)


def train_config_from_args(args) -> TrainConfig:
    return TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       weight_decay=args.weight_decay, seed=args.seed, split_seed=args.split_seed, device=args.device,
                       pos_weight=args.pos_weight)


def add_threads_argument(parser) -> None:
    """``--threads N``: torch threads for training/evaluation (0: torch's default)."""
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default, the machine's physical cores; on a busy machine one "
                             "thread per process is often fastest)")


def use_threads(threads: int, jobs: int = 1) -> int:
    """Set torch's thread count and return the count each process uses.

    Parameters
    ----------
    threads : int
        Threads asked for (0: torch's default).
    jobs : int, optional
        Processes that will run at once; with more than one, each uses one thread.

    Returns
    -------
    int
        Threads per process.

    Raises
    ------
    MburstError
        If ``threads`` or ``jobs`` is negative or zero where a count is needed.
    """
    import torch

    from neurons.common import MburstError

    if threads < 0:
        raise MburstError(f"--threads must be >= 0, got {threads}")
    if jobs < 1:
        raise MburstError(f"--jobs must be >= 1, got {jobs}")
    if jobs > 1:
        return 1
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
