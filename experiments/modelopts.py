"""Command-line options for model sizes and optimisation, shared by train/reproduce."""
from __future__ import annotations

import argparse

from .train import POS_WEIGHT_RULES, TrainConfig


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
    group.add_argument("--activation", choices=("relu", "calibrated", "calibrated-quiet"), default="relu",
                       help="hidden-layer transfer function: relu, or calibrated = the spiking pyramidal population's "
                            "measured event-rate curve (neurons/transfer_fit.json; see rate_bridge.calibration); "
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
    from rate_bridge.models import ModelConfig

    return ModelConfig(n_bins=args.bins, channels=args.channels, embed=args.embed, pbar=args.pbar, beta=args.beta,
                       activation=args.activation, rescale_updates=args.rescale_updates)


def train_config_from_args(args) -> TrainConfig:
    return TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       weight_decay=args.weight_decay, seed=args.seed, split_seed=args.split_seed, device=args.device,
                       pos_weight=args.pos_weight)
