"""Energy per frame: the spiking MBURST counted spike by spike vs the rate models' MACs (issue 6).

``--checkpoint`` is the MBURST checkpoint to convert (trained with ``--activation
calibrated``; a ReLU checkpoint is mapped through its calibrated twin and the report says
so). ``--rate-checkpoints`` adds rate models (Unimodal, Multimodal, ...) to the table; the
MBURST checkpoint itself is always included. Writes ``energy.md/.csv``, ``energy.png``,
the equivalence tables of the frames run, and ``counts.json`` into ``--out``.
"""
from __future__ import annotations

from pathlib import Path

NAME = "energy"
HELP = "energy table: spiking MBURST (counted synaptic events/updates) vs rate models (MACs), per device"


def add_arguments(parser) -> None:
    from experiments.commands.bridge import add_bridge_arguments
    from experiments.options import add_data_arguments
    from rate_bridge.energy import device_names

    parser.add_argument("--checkpoint", type=Path, required=True, help="MBURST checkpoint.pt to run as spiking network")
    parser.add_argument("--rate-checkpoints", type=Path, nargs="*", default=[],
                        help="more rate-model checkpoints for the MAC rows (e.g. unimodal and multimodal)")
    parser.add_argument("--frames", type=int, default=20, help="test frames to run")
    parser.add_argument("--device", dest="devices", nargs="+", default=None,
                        help=f"devices of the table (default: all registered: {' '.join(device_names())})")
    add_bridge_arguments(parser)
    add_data_arguments(parser)


def main(args) -> int:
    import torch

    from experiments.training.checkpoints import load_checkpoint
    from experiments.commands.bridge import bridge_config_from_args, load_test_frames
    from experiments.spiking.stage import (calibrated_twin, rate_entry, spiking_record, write_bridge_report,
                                           write_energy_report)
    from rate_bridge.burstprop.calibrated import calibration_of
    from rate_bridge.energy import get_device
    from rate_bridge.equivalence import check_frames, mask_scores

    for d in args.devices or []:
        get_device(d)  # unknown device -> one-line error before any work
    cfg = bridge_config_from_args(args)
    check_frames(args.frames, 10 ** 12)
    model, state = load_checkpoint(args.checkpoint)
    audio, visual, ibm = load_test_frames(args, state, args.frames)
    twin, approx = calibrated_twin(model)
    summary, result = write_bridge_report(args.out, twin, audio, visual if model.visual else None, ibm, cfg)
    rate = {}
    for path in [args.checkpoint, *args.rate_checkpoints]:
        rm, st = load_checkpoint(path)
        with torch.no_grad():
            f1 = mask_scores(rm(audio, visual if rm.visual else None).numpy() >= 0.5, ibm.numpy()).f1
        key = st["model_name"] if st["model_name"] not in rate else f"{st['model_name']} ({path.parent.name})"
        rate[key] = rate_entry(rm, audio, visual, f1)
    rec = spiking_record(summary, result, state["model_name"], float(calibration_of(twin.config.activation).fit.r0))
    write_energy_report(args.out, rec, rate, args.devices)
    if approx:
        print("energy: the checkpoint uses ReLU; the spiking network runs its calibrated twin (same weights)")
    print(f"energy: {args.frames} frames, {rec['counts'].spikes / rec['frames']:.0f} spikes/frame, "
          f"{rec['counts'].synops / rec['frames']:.0f} synaptic events/frame -> {args.out}/energy.md")
    return 0
