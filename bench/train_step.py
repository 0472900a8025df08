"""Time one training step (forward + backward + Adam step) of MBURST against Multimodal.

Both models have the same size and initial weights and see the same batch, in the
same process; repetitions are interleaved (the order alternates) so that machine
load affects both alike.  Prints the median wall-clock step times, the ratio
MBURST / Multimodal (target <= 1.35, issue 14; the arithmetic alone gives 1.33) and
samples per second.  On the CPU it also prints the process CPU time per step
(``time.process_time``), which is far less disturbed than wall-clock time on a
shared, overloaded machine.

    python bench/train_step.py                       # full size, batch 32, CPU
    python bench/train_step.py --device cuda --reps 20
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from experiments.training.config import TrainConfig
from experiments.training.train import make_optimizer
from neurons.common import MburstError
from rate_bridge.burstprop.models import ModelConfig, build_model
from rate_bridge.energy import model_macs

FIRST_LAYERS = ("audio_conv1", "visual_conv1")  # their input needs no gradient
TARGET = 1.35  # MBURST / Multimodal step time (issue 14)


def step_macs(model) -> dict[str, int]:
    """Multiply-accumulates per sample of one training step, from the layer shapes of ``model``
    (an MBURST or Multimodal ``AVMaskNet``: the same network).

    Backprop: forward + weight gradient (every layer) + input gradient (every layer
    above the first of each branch).  Burstprop computes the same three products and,
    for the layers that have a layer below, projects both ``b`` and ``bbar`` down
    (``Y b`` and ``Y bbar``, eqs. 5-6): one more input-side product per such layer.
    """
    fwd = model_macs(model)
    total = fwd.pop("total")
    below = sum(m for name, m in fwd.items() if name not in FIRST_LAYERS)
    return {"multimodal": 2 * total + below, "mburst": 2 * total + 2 * below}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, batch, device, lr=1e-3, weight_decay=1e-6):
    """A closure doing one training step with the training's optimiser (fused Adam)."""
    opt = make_optimizer(model, TrainConfig(lr=lr, weight_decay=weight_decay, device=device.type))
    audio, visual, target = batch

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy(model(audio, visual), target)
        loss.backward()
        opt.step()
        return loss

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="frames per batch (default 32)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per model (default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model first (default 2)")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--embed", type=int, default=256)
    ap.add_argument("--n-bins", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        if args.batch < 1 or args.reps < 1 or args.warmup < 0:
            raise MburstError("--batch and --reps must be >= 1, --warmup >= 0")
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MburstError(f"--device {args.device}: CUDA is not available here")
        if args.threads:
            torch.set_num_threads(args.threads)
        cfg = ModelConfig(channels=args.channels, embed=args.embed, n_bins=args.n_bins)
    except MburstError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    g = torch.Generator().manual_seed(args.seed)
    batch = (torch.randn(args.batch, 1, cfg.context, cfg.n_bins, generator=g),
             torch.rand(args.batch, 1, *cfg.lip_hw, generator=g),
             (torch.rand(args.batch, cfg.n_bins, generator=g) < 0.1).float())
    batch = tuple(t.to(device) for t in batch)
    steps, times, cpu = {}, {}, {}
    for name in ("mburst", "multimodal"):
        torch.manual_seed(args.seed)
        model = build_model(name, cfg).to(device).train()
        steps[name] = make_step(model, batch, device)
        times[name], cpu[name] = [], []
    macs = step_macs(model)  # the last model built: MBURST and Multimodal are the same network
    for name, step in steps.items():
        for _ in range(args.warmup):
            step()
        _sync(device)
    order = list(steps)
    for rep in range(args.reps):
        for name in (order if rep % 2 == 0 else order[::-1]):
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            steps[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["mburst"] / med["multimodal"]
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"batch {args.batch}, channels {cfg.channels}, embed {cfg.embed}, bins {cfg.n_bins}, "
          f"{args.reps} interleaved reps after {args.warmup} warm-up steps; torch {torch.__version__}")
    med_cpu = {name: statistics.median(ts) for name, ts in cpu.items()}
    print("| model | median step (ms) | min (ms) | samples/s | median process CPU time (ms) |")
    print("|---|---|---|---|---|")
    for name in steps:
        print(f"| {name} | {1e3 * med[name]:.1f} | {1e3 * min(times[name]):.1f} | {args.batch / med[name]:.1f} "
              f"| {1e3 * med_cpu[name]:.1f} |")
    print(f"ratio MBURST/Multimodal (median step time): {ratio:.3f}  "
          f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")
    print(f"arithmetic per sample (MACs): MBURST {macs['mburst'] / 1e6:.1f} M, Multimodal {macs['multimodal'] / 1e6:.1f} M, "
          f"ratio {macs['mburst'] / macs['multimodal']:.3f} (the exact equations need Y b and Y bbar at every layer with one below)")
    if device.type == "cpu":
        print(f"ratio MBURST/Multimodal (median process CPU time): {med_cpu['mburst'] / med_cpu['multimodal']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
