"""Training throughput of the compact model (the spiking bridge's size) against today's defaults.

The compact MBURST (``--bins 100 --channels 2 --embed 32 --activation calibrated-quiet --beta 0.1``)
trains with the real training step (fused Adam, weighted BCE, the running F1 and firing statistics
of every batch). Each configuration runs the same frames, in the same process, after a warm-up; the
baseline is the default of ``mburst train`` before ``--threads`` existed: batch 64 and torch's default
thread count. Prints frames/s per configuration, the ratio to the baseline, and the time of one epoch
over the prepared corpus's training split.

    python bench/train_compact.py                          # GRID under $MBURST_DATA if present, else synthetic
    python bench/train_compact.py --steps 300 --data synthetic

Throughput depends on the machine's load far more than on the code: on a 2-core machine running
other work, two torch threads per process thrash (an earlier measurement: 0.24 s of CPU per step
against 0.016 s with one thread), so run it on an idle machine and read the ratios.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.paths import data_root
from experiments.data.spec import CorpusSpec
from experiments.training.config import TrainConfig
from experiments.training.metrics import ActivityStats, MaskCounts, weighted_bce
from experiments.training.train import make_optimizer
from rate_bridge.burstprop.models import ModelConfig, build_model

COMPACT = ModelConfig(n_bins=100, channels=2, embed=32, beta=0.1, activation="calibrated-quiet")


def throughput(frames, order: np.ndarray, batch: int, threads: int, steps: int) -> float:
    """Frames per second of ``steps`` compact training steps (after 5 warm-up steps).

    Parameters
    ----------
    frames : FrameSet
        Training frames (100 bands).
    order : numpy.ndarray of int
        Frame order (the same for every configuration).
    batch : int
        Frames per step.
    threads : int
        torch threads.
    steps : int
        Timed steps.

    Returns
    -------
    float
        Frames per second (wall clock).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model("mburst", COMPACT)
    opt = make_optimizer(model, TrainConfig(batch_size=batch))
    counts, activity = MaskCounts(), ActivityStats()
    t0 = 0.0
    for b in range(steps + 5):
        if b == 5:
            t0 = time.perf_counter()
        idx = order[(b * batch) % (len(order) - batch):][:batch]
        audio, visual, mask = frames.batch(idx)
        prob = model(audio, visual)
        loss = weighted_bce(prob, mask, 4.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        counts.update(prob.detach(), mask)
        activity.update(model.hidden_activities())
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("auto", "grid", "synthetic"), default="auto")
    parser.add_argument("--steps", type=int, default=200, help="timed steps of batch 64 (larger batches: fewer)")
    args = parser.parse_args()
    source = ("grid" if data_root() is not None else "synthetic") if args.data == "auto" else args.data
    corpus = load_corpus(prepare_corpus(CorpusSpec(source=source), progress=False))
    split = corpus.split(0)
    frames = corpus.frames(split["train"], corpus.feature_stats(split["train"]), COMPACT.n_bins)
    order = np.random.default_rng(0).permutation(len(frames))
    default_threads = torch.get_num_threads()
    configs = [(64, default_threads, "baseline: batch 64, torch default threads"), (64, 1, "batch 64, 1 thread"),
               (256, 1, "batch 256, 1 thread"), (256, default_threads, "batch 256, default threads")]
    print(f"compact MBURST on {source}: {len(frames)} training frames; torch {torch.__version__}, "
          f"default threads {default_threads}")
    print("| configuration | frames/s | ratio to baseline | one epoch (s) |\n|---|---|---|---|")
    base = None
    for batch, threads, label in configs:
        fps = throughput(frames, order, batch, threads, max(20, args.steps * 64 // batch))
        base = base or fps
        print(f"| {label} | {fps:.0f} | {fps / base:.2f} | {len(frames) / fps:.0f} |")


if __name__ == "__main__":
    main()
