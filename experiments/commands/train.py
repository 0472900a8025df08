"""Train one rate model (MBURST with burstprop; Multimodal or Unimodal with backprop).

Data is prepared (or taken from the cache) first. The run folder receives
checkpoint.pt after every epoch, history.json and metrics.json; --resume
continues an interrupted run exactly where it stopped.
"""
from __future__ import annotations

NAME = "train"
HELP = "train one model (mburst | multimodal | unimodal)"


def add_arguments(parser) -> None:
    from experiments.options import add_data_arguments, add_model_arguments, add_threads_argument, add_train_arguments
    from experiments.training.config import PRESETS
    from rate_bridge.burstprop.models import MODEL_NAMES

    parser.add_argument("--preset", choices=tuple(PRESETS), default=None,
                        help="named settings; options you give override them. spiking: "
                             + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in PRESETS["spiking"].items())
                             + " (a compact MBURST in the regime of the default mburst bridge)")
    parser.add_argument("--model", choices=MODEL_NAMES, default="mburst",
                        help="mburst: burstprop; multimodal: the same network with backprop; unimodal: audio branch, backprop")
    parser.add_argument("--resume", action="store_true", help="continue from --out DIR/checkpoint.pt if it exists")
    parser.add_argument("--activity-l1", type=float, default=0.0, metavar="LAMBDA",
                        help="activity (L1) penalty: add LAMBDA x the mean hidden event rate e over units and frames "
                             "to the BCE (e >= 0: the L1 norm of the hidden activity per unit), for multimodal and "
                             "unimodal (backprop; MBURST refuses it); 0 = off (default). Recorded in the checkpoint; "
                             "mburst energy --frontier labels the run l1=LAMBDA")
    add_train_arguments(parser)
    add_threads_argument(parser)
    add_model_arguments(parser)
    add_data_arguments(parser)
    parser.set_defaults(_parser_defaults={k: parser.get_default(k) for k in PRESETS["spiking"]})


def apply_preset(args) -> None:
    """Fill ``args`` from ``args.preset`` where an option still has its parser default (given options win)."""
    from experiments.training.config import PRESETS

    for key, value in PRESETS.get(args.preset, {}).items():
        if getattr(args, key) == args._parser_defaults[key]:
            setattr(args, key, value)


def main(args) -> int:
    import dataclasses

    from experiments.options import corpus_from_args, model_config_from_args, train_config_from_args, use_threads
    from experiments.training.train import train

    apply_preset(args)
    model_cfg = model_config_from_args(args)
    train_cfg = dataclasses.replace(train_config_from_args(args), activity_l1=args.activity_l1)
    train_cfg.validate()  # bad settings fail before the corpus is prepared, not a minute later
    print(f"train: {use_threads(args.threads)} torch thread(s)")
    corpus = corpus_from_args(args)
    result = train(corpus, args.model, model_cfg, train_cfg, args.out, resume=args.resume, progress=True)
    test = result.final["test"]
    print(f"{args.model}: test F1 {test['f1']:.4f}, accuracy {test['accuracy']:.2f} %, "
          f"active fraction {test['active_fraction'].get('overall', float('nan')):.3f} -> {args.out}")
    return 0
