"""Benchmark: GRID decode + lip detection + features, first pass vs cached second pass.

Prints utterances/s of a first ``prepare_corpus`` into an empty cache (video
decode, audio decode and resampling, Haar detection and tracking, noise mixing
of every SNR with a train and with a held-out recording, STFT features and
masks, cache write) and of a second, cached pass (cache key + ``load_corpus``),
and their ratio. Targets (issues 2 and 18): >= 5 utterances/s first pass on
2 cores (500 utterances x 4 SNRs on the ambient set), cached pass >= 20x faster. Also prints the CPU time of the
first pass (robust to other jobs sharing the cores) and a per-stage breakdown
measured serially on a few utterances.

    python bench/data_pipeline.py [--n 500] [--workers 2] [--noise-set ambient]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.data import features as F
from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.paths import data_root
from experiments.data.spec import NOISE_SETS, CorpusSpec


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its reaped children (the decode workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def stages(items, n: int) -> dict[str, float]:
    """Mean ms per utterance of each stage, run serially in this process."""
    from experiments.data.grid import read_audio, read_video
    from experiments.data.lips import track_lips

    totals = dict.fromkeys(("video decode", "audio decode+resample", "detect+track+crop", "features (9 STFTs)"), 0.0)
    for item in items[:n]:
        t0 = time.perf_counter()
        frames = read_video(item.mpg)
        t1 = time.perf_counter()
        audio = read_audio(item)
        t2 = time.perf_counter()
        track_lips(frames)
        t3 = time.perf_counter()
        x = F.stft(audio[:F.n_frames(len(audio)) * F.HOP])
        for _ in range(8):  # 4 SNRs x (train, held-out) noise: a noise STFT, the mask and the features each
            nspec = F.stft(audio[:F.n_frames(len(audio)) * F.HOP][::-1].copy())
            F.ideal_binary_mask(x, nspec)
            F.log_power(x + nspec)
        t4 = time.perf_counter()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += dt
    return {k: 1000 * v / n for k, v in totals.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="number of GRID videos (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noise-set", choices=tuple(NOISE_SETS), default="ambient", help="noise folder under MBURST_DATA")
    parser.add_argument("--stage-utts", type=int, default=8, help="utterances for the serial per-stage breakdown")
    args = parser.parse_args(argv)
    root = data_root()
    if root is None or not (root / "grid").is_dir():
        print("bench/data_pipeline.py: no GRID data (set MBURST_DATA)", file=sys.stderr)
        return 2
    spec = CorpusSpec(source="grid", data_root=root / "grid", noise_root=root / args.noise_set, n_utterances=args.n,
                      workers=args.workers)
    cache = Path(tempfile.mkdtemp(prefix="mburst-bench-"))
    try:
        cpu0 = _cpu_s()
        t0 = time.perf_counter()
        path = prepare_corpus(spec, cache_root=cache, progress=True)
        first = time.perf_counter() - t0
        cpu_first = _cpu_s() - cpu0
        corpus = load_corpus(path)
        n = len(corpus.cleans)
        t0 = time.perf_counter()
        again = load_corpus(prepare_corpus(spec, cache_root=cache, progress=False))
        _ = np.asarray(again.ibm[:10])  # touch the arrays
        second = time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    from experiments.data.grid import list_items

    breakdown = stages(list_items(root / "grid")[0], args.stage_utts)
    print(f"\nGRID data pipeline, {n} utterances ({len(corpus)} noisy, {len(corpus.log_power)} frames), "
          f"{args.noise_set} noise, {args.workers} workers, {corpus.report['n_skipped']} skipped")
    print(f"first pass : {first:8.2f} s  {n / first:9.2f} utterances/s  (target >= 5)")
    print(f"cached pass: {second:8.4f} s  {n / second:9.1f} utterances/s")
    print(f"first pass CPU: {cpu_first:.1f} s ({1000 * cpu_first / n:.0f} ms per utterance; "
          f"{args.workers * n / cpu_first:.1f} utterances/s if {args.workers} cores were free; load average now {os.getloadavg()[0]:.1f})")
    print(f"ratio cached/first speed: {first / second:.0f}x  (target >= 20x)")
    print(f"serial per-utterance stages over {args.stage_utts} utterances (ms): "
          + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
