"""Prepare the audio-visual corpus: decode GRID video/audio (or synthesise), track the lips,
mix with noise at each SNR, compute log-power features and ideal binary masks, and cache
them. A second run with the same settings and input files reuses the cache.

Videos at any frame rate of at least 15 fps, constant or variable, are read on the audio's clock: each
40 ms audio frame gets the video frame on display at its centre (experiments/data/video.py).

Noise: the recordings under --noise-root by category (files directly in it: one category; each subfolder:
another), split into train and test recordings (--noise-split, experiments/data/noise.py); every sentence is
mixed at every SNR with a train and with a test recording.

Writes summary.json (counts, time, cache folder, source video frame rates, skipped utterances and files with
reasons, the noise split: per split which recordings, which part of each and how many seconds of it were mixed
in, the vision-only mask probe (``vision_probes``: one per ``--probe-context``), the audio-visual synchrony profile) and lips.png (lip crops, and for GRID the tracked mouth
box drawn on the source frame, both stored by the preparation: no video is decoded again) into --out.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neurons.common import MburstError, atomic_savefig, atomic_write_json

NAME = "prepare"
HELP = "decode, detect lips, mix noise and cache features (GRID or synthetic)"


def add_arguments(parser) -> None:
    from experiments.options import add_data_arguments

    add_data_arguments(parser)
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default $MBURST_CACHE or <repo>/.mburst_cache)")
    parser.add_argument("--prune-cache", action="store_true",
                        help="after preparing, delete the cache folders of the same settings and data folders built from "
                             "older input files (a fresh copy of the data has new modification times, so the next run "
                             "builds anew and the old folder, about 1 GiB for GRID, is never read again); listed in "
                             "summary.json as pruned_cache; not while a run started before the data changed still reads its old folder "
                             "(default: keep them; every run prints how many there are)")
    parser.add_argument("--workers", type=int, default=2, help="decode/detect worker processes")
    parser.add_argument("--detect-every", type=int, default=10, help="run face detection on every k-th video frame, track in between")
    parser.add_argument("--probe-context", type=int, nargs="+", default=[0], metavar="K",
                        help="lip frames on each side given to the vision-only mask probe (ridge regression from lips "
                             "to the ideal binary mask), one probe per K: does lip motion over several 40 ms frames "
                             "say more about the mask than one frame? (measured: the whole command with K 0 1 2 3 on the "
                             "cached GRID corpus, 1 min 39 s on 2 cores) (default: 0, one frame)")


def main(args) -> int:
    """Run ``mburst prepare``.

    Parameters
    ----------
    args : argparse.Namespace
        The data options (:func:`experiments.options.add_data_arguments`), ``cache``, ``prune_cache``, ``workers``,
        ``detect_every``, ``seed`` and ``out``.

    Returns
    -------
    int
        Exit status 0.

    Raises
    ------
    MburstError
        On a bad option or input file (one line, naming it).
    """
    import dataclasses
    import shutil

    from experiments.data.corpus import corpus_path, load_corpus, prepare_corpus
    from experiments.data.paths import superseded_corpora
    from experiments.data.probes import av_sync_profile, vision_mask_probe
    from experiments.options import spec_from_args

    if args.workers < 1:
        raise MburstError(f"--workers {args.workers}: must be >= 1")
    if min(args.probe_context) < 0:
        raise MburstError(f"--probe-context {min(args.probe_context)}: must be >= 0 lip frames")
    spec = dataclasses.replace(spec_from_args(args), detect_every=args.detect_every, workers=args.workers)
    t0 = time.perf_counter()
    cache_hit = (corpus_path(spec, args.cache) / "meta.json").is_file()
    path = prepare_corpus(spec, cache_root=args.cache, progress=True)
    elapsed = time.perf_counter() - t0
    pruned = superseded_corpora(path) if args.prune_cache else []
    for stale in pruned:
        try:
            shutil.rmtree(stale)
        except OSError as e:
            raise MburstError(f"--prune-cache: cannot delete {stale}: {e.strerror or e}") from None
        print(f"pruned older cache folder {stale}")
    corpus = load_corpus(path)
    split = corpus.split(args.seed)
    probes = [vision_mask_probe(corpus, seed=args.seed, context=k) for k in args.probe_context]
    probe = probes[0]
    sync = av_sync_profile(corpus)
    summary = {
        "cache": str(path), "cache_key": corpus.meta["cache_key"], "source": args.data,
        "video_rates": corpus.report["video_rates"],
        "time_s": elapsed, "cache_hit": cache_hit, "pruned_cache": [str(p) for p in pruned],
        "build": corpus.report, "split_sizes": {k: int(len(v)) for k, v in split.items()},
        "noise": corpus.report["noise"], "noise_ignored": corpus.report["noise_ignored"],
        "prevalence": float(np.mean(corpus.ibm)), "vision_probe": probe, "vision_probes": probes, "av_sync": sync,
        "shapes": {"log_power": list(corpus.log_power.shape), "ibm": list(corpus.ibm.shape), "lips": list(corpus.lips.shape)},
    }
    atomic_write_json(args.out / "summary.json", summary)
    _figure(corpus, args.out / "lips.png")
    print(f"{corpus.report['n_clean']} clean utterances -> {len(corpus)} noisy, {len(corpus.log_power)} frames, "
          f"{corpus.report['n_skipped']} skipped; {elapsed:.2f} s this run ({'cache hit' if cache_hit else 'built'})")
    noise = corpus.report["noise"]
    print(f"noise split '{noise['mode']}': " + ", ".join(f"{c} ({how})" for c, how in noise["categories"].items()))
    for name in ("train", "test"):
        parts = noise["splits"][name]
        print(f"  {name}: " + ", ".join(f"{p['recording']} {p['start_s']:.1f}-{p['stop_s']:.1f} s ({p['mixed_s']:.0f} s mixed)"
                                        for p in parts))
    if corpus.report["noise_ignored"]:
        print(f"  {len(corpus.report['noise_ignored'])} non-audio file(s) under the noise root ignored: "
              + ", ".join(Path(i["id"]).name for i in corpus.report["noise_ignored"]))
    print("source video: " + ", ".join(f"{k} ({v} utterances)" for k, v in corpus.report["video_rates"].items())
          + "; lips taken at the 40 ms audio frames by presentation time")
    for p in probes:
        print(f"vision-only mask probe, lips t±{p['context']} (test F1): {p['f1_vision']:.3f} vs all-ones "
              f"{p['f1_all_ones']:.3f}, shuffled lips {p['f1_shuffled_lips']:.3f}")
    print(f"audio-visual sync: mouth opening vs speech energy peaks at lag {sync['best_lag']:+d} frames "
          f"(r {sync['best_r']:.3f}; lag 0: r {sync['r'][sync['lags'].index(0)]:.3f}; > 0: audio behind video)")
    print(f"summary: {args.out / 'summary.json'}; lip crops: {args.out / 'lips.png'}")
    return 0


def _figure(corpus, path: Path, n_show: int = 4) -> None:
    """Crops of a few frames of the first clean utterances, beside (GRID) the source frame with the
    tracked mouth and face boxes stored by the preparation (:meth:`Corpus.previews`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from experiments.data.lips import LIP_H, LIP_W

    previews = {p.clean_index: p for p in corpus.previews()}
    cleans = corpus.cleans[:n_show]
    fig, axes = plt.subplots(len(cleans), 5, figsize=(13, 2.3 * len(cleans)), squeeze=False)
    for index, (row, c) in enumerate(zip(axes, cleans)):
        frames_at = np.linspace(0, c["n_frames"] - 1, 4).astype(int)
        if index in previews:
            p = previews[index]
            row[0].imshow(p.image, cmap="gray")
            (cx, cy, w), h = p.mouth, p.mouth[2] * LIP_H / LIP_W
            row[0].add_patch(Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False, color="lime", lw=1.5))
            fx, fy, fw, fh = p.face
            row[0].add_patch(Rectangle((fx, fy), fw, fh, fill=False, color="yellow", lw=1, ls="--"))
            row[0].set_title(f"{c['clean_id']} frame {p.frame}", fontsize=8)
        else:
            row[0].plot(np.asarray(corpus.lips[c["lip_start"]:c["lip_start"] + c["n_frames"]]).reshape(c["n_frames"], -1).std(1))
            row[0].set_title(f"{c['clean_id']}: lip pixel std per frame", fontsize=8)
        for ax, t in zip(row[1:], frames_at):
            ax.imshow(corpus.lips[c["lip_start"] + t], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"crop t={t}", fontsize=8)
        for ax in row if index in previews else row[1:]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
