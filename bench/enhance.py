"""Benchmark: real-time factor of `mburst enhance` for the rate models vs STFT + ISTFT alone.

For each model (randomly initialised, full size: ``rate_bridge.burstprop.models.build_model(name,
ModelConfig())``) it times, on one utterance (a GRID s1 video's audio track and lip
crops when the shared data is present, else noise and random lips of the same length):

* baseline: STFT + all-ones mask + ISTFT (the signal path without a model), measured in
  the same run;
* offline enhancement (features, batched model, resynthesis) -> RTF = time / duration;
* streaming enhancement (one model call per 40 ms hop) -> RTF and per-frame ms.

RTF = processing time / audio duration (median of ``--repeats``). Target (issue 7):
RTF < 0.2 on 2 cores for the rate models. Lip tracking and decoding, done once per
file by the command, are timed separately.

    python bench/enhance.py [--repeats 3] [--models mburst multimodal unimodal] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds of ``fn()`` (CPU time, summed over threads,
    is far less disturbed than wall time when other jobs share the cores)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def inputs(seed: int = 0):
    """(noisy 16 kHz audio, lip crops, source, decode+track seconds)."""
    from experiments.data.paths import data_root
    from experiments.speech.resynthesis import frames_for

    root = data_root()
    mpgs = sorted((root / "grid" / "s1").glob("*.mpg")) if root is not None else []
    if mpgs:
        from experiments.data.audio import read_video_audio
        from experiments.data.video import read_video
        from experiments.data.lips import track_lips

        t0 = time.perf_counter()
        audio = read_video_audio(mpgs[0])
        frames = read_video(mpgs[0])
        lips = track_lips(frames[:frames_for(len(audio))], source=str(mpgs[0])).crops
        prep = time.perf_counter() - t0
        rng = np.random.default_rng(seed)
        noisy = audio + 0.5 * audio.std() * rng.standard_normal(len(audio))
        return noisy, lips, str(mpgs[0]), prep
    rng = np.random.default_rng(seed)
    noisy = 0.1 * rng.standard_normal(48_000)
    return noisy, rng.integers(0, 256, (75, 50, 92), dtype=np.uint8), "synthetic noise + random lips", float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mburst", "multimodal", "unimodal"])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()

    import torch

    from experiments.data.features import N_BINS, SAMPLE_RATE
    from experiments.speech.enhance import enhance
    from experiments.speech.masking import torch_mask_fn
    from experiments.speech.resynthesis import frames_for, resynthesise
    from experiments.speech.streaming import StreamingEnhancer
    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    noisy, lips, source, prep = inputs()
    duration = len(noisy) / SAMPLE_RATE
    ones = np.ones((frames_for(len(noisy)), N_BINS))
    base, base_cpu = median_time(lambda: resynthesise(noisy, ones, "pass"), args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"input: {source}, {duration:.2f} s; torch threads {torch.get_num_threads()}; median of {args.repeats}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    if np.isfinite(prep):
        print(f"decode audio+video and track lips (once per file): {prep:.3f} s (RTF {prep / duration:.3f})")
    print(f"baseline STFT + ISTFT: {base * 1000:.1f} ms wall (RTF {base / duration:.4f}), {base_cpu * 1000:.1f} ms CPU")
    print("RTF = wall time / duration; CPU RTF = CPU seconds (all threads) / duration")
    print("| model | offline s | offline RTF | offline CPU RTF | x baseline (wall) | stream RTF | stream CPU RTF | per-frame ms (mean / max) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        fn = torch_mask_fn(build_model(name, ModelConfig()))
        enhance(noisy, lips, fn)  # warm-up (allocations, oneDNN kernels)
        off, off_cpu = median_time(lambda: enhance(noisy, lips, fn), args.repeats)
        streamer = None

        def stream():
            nonlocal streamer
            streamer = StreamingEnhancer(fn)
            streamer.run(noisy, lips)

        on, on_cpu = median_time(stream, args.repeats)
        per = 1000 * np.array([streamer.times.mean, streamer.times.worst])
        print(f"| {name} | {off:.3f} | {off / duration:.3f} | {off_cpu / duration:.3f} | {off / base:.1f} | "
              f"{on / duration:.3f} | {on_cpu / duration:.3f} | {per[0]:.2f} / {per[1]:.2f} |")
    print(f"streaming algorithmic latency: {StreamingEnhancer.LATENCY_SAMPLES / SAMPLE_RATE * 1000:.1f} ms "
          "(bound window + hop = 117.75 ms); target: offline RTF < 0.2 on 2 cores")


if __name__ == "__main__":
    main()
