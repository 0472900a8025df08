"""Building a corpus cache folder: load each clean utterance (in worker processes), mix it with noise
at every SNR, compute features and masks, write the arrays (the format is in :mod:`experiments.data.corpus`).

The noise recordings are split into train and test recordings (:func:`experiments.data.noise.split_noise`).
Every clean utterance s is mixed at every target SNR twice: once with a segment of a train recording and once
with a segment of a test recording (so any utterance split can test on both, :meth:`Corpus.split`). Each
segment n is drawn at random (category, recording, offset) with a generator seeded by (seed, crc32(clean id),
SNR index, noise split) and scaled by g = sqrt(P_s / (P_n 10^(SNR/10))) (:mod:`experiments.data.noise`). With X = STFT(s) and N = g STFT(n) (the STFT is linear), the noisy
features are ln(|X + N|^2 + eps) over bins 1..500 and the target is the IBM (:mod:`experiments.data.features`).
"""
from __future__ import annotations

import contextlib
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Iterator

import numpy as np

from neurons.common import MburstError, atomic_write_json

from experiments.data import features as F
from experiments.data.lips import LIP_H, LIP_W
from experiments.data.spec import DEFAULT_SYNTHETIC_SIZE
from experiments.progress import Bar

#: Clean utterances (the first ones kept) whose source video frame and tracked boxes are stored for
#: ``mburst prepare``'s lips.png, so it never decodes a video again.
N_PREVIEW = 4


def preview_frame(n_frames: int) -> int:
    """The video frame of an utterance shown with its tracked boxes: a third of the way in.

    Parameters
    ----------
    n_frames : int
        Frames of the utterance.

    Returns
    -------
    int
        ``(n_frames - 1) // 3``.
    """
    return (n_frames - 1) // 3


# ---------------------------------------------------------------- loading clean utterances (workers)

def _load_grid(item, every: int, scale: float) -> dict:
    """One GRID utterance: audio, lip crops of the frames on display at its audio frames (any frame rate,
    :mod:`experiments.data.video`), alignment and preview."""
    from experiments.data.grid import parse_alignment, read_audio_clocked
    from experiments.data.lips import track_lips
    from experiments.data.video import read_timed

    video = read_timed(item.mpg)
    audio, origin = read_audio_clocked(item)
    index = video.clock_index(origin)
    n_a, n_v = F.n_frames(len(audio)), len(index)  # audio frames; audio frames the video covers
    if abs(n_a - n_v) > 1:
        raise MburstError(f"{item.mpg}: audio gives {n_a} frames ({n_a * F.HOP / F.SAMPLE_RATE:.2f} s) but the video "
                          f"({video.rate.describe()}, {len(video.frames)} frames) covers {n_v} "
                          "(more than one 40 ms frame apart)")
    n = min(n_a, n_v)
    if n < F.CONTEXT:
        raise MburstError(f"{item.mpg}: {n} frames, shorter than the {F.CONTEXT}-frame context")
    audio = audio[:n * F.HOP]
    if not np.any(audio):
        raise MburstError(f"{item.wav or item.mpg}: audio is silent")
    frames = video.frames[index[:n]]
    track = track_lips(frames, every=every, scale=scale, source=str(item.mpg))
    words = None
    if item.align is not None:
        words = [[w.start, w.end, w.word] for w in parse_alignment(item.align)]
    t = preview_frame(n)
    preview = {"frame": t, "image": frames[t], "mouth": np.append(track.centres[t], track.widths[t]),
               "face": track.faces[t]}
    return {"clean_id": item.clean_id, "speaker": item.speaker, "audio": audio.astype(np.float32),
            "lips": track.crops, "n_frames": n, "video_frames": len(video.frames), "covered_frames": n_v,
            "audio_frames": n_a, "video_rate": video.rate.to_dict(), "detections": track.n_detections,
            "words": words, "preview": preview}


def _load_synthetic(index: int, seed: int) -> dict:
    from experiments.data.synthetic import utterance

    audio, lips = utterance(seed, index)
    n = min(F.n_frames(len(audio)), len(lips))
    return {"clean_id": f"syn/{index:05d}", "speaker": "syn", "audio": audio[:n * F.HOP].astype(np.float32),
            "lips": lips[:n], "n_frames": n, "video_frames": len(lips), "covered_frames": len(lips), "audio_frames": n,
            "video_rate": {"fps": float(F.VIDEO_FPS), "constant": True, "describe": f"{F.VIDEO_FPS:.2f} fps (synthetic)",
                           "n_frames": len(lips)},
            "detections": None, "words": None, "preview": None}


def _load_task(task: tuple) -> dict:
    """Worker entry: one clean utterance, or ``{'error': message}`` (never raises)."""
    kind, payload, name = task[0], task[1], task[-1]
    try:
        if kind == "grid":
            return _load_grid(payload, task[2], task[3])
        return _load_synthetic(payload, task[2])
    except MburstError as err:
        return {"clean_id": name, "error": str(err)}
    except Exception as err:  # noqa: BLE001 - reported as a one-line error naming the utterance
        return {"clean_id": name, "error": f"{name}: {type(err).__name__}: {err}"}


def _worker_init() -> None:
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass


def _run_tasks(tasks: list[tuple], workers: int, progress: bool) -> Iterator[dict]:
    bar = Bar(total=len(tasks), desc="decode+detect", unit="utt", show=progress)
    try:
        if workers > 1 and len(tasks) >= 4 * workers:
            # fork: workers only decode/detect (no torch), and it works from any __main__
            method = "fork" if "fork" in get_all_start_methods() else "spawn"
            with ProcessPoolExecutor(workers, mp_context=get_context(method), initializer=_worker_init) as pool:
                try:
                    for res in pool.map(_load_task, tasks, chunksize=4):
                        bar.update()
                        yield res
                except BrokenProcessPool as err:
                    raise MburstError(f"a decode worker died ({err}); rerun with workers=1 to find the file") from None
        else:
            _worker_init()
            for task in tasks:
                res = _load_task(task)
                bar.update()
                yield res
    finally:
        bar.close()


# ---------------------------------------------------------------- the build

def _utt_rng(seed: int, clean_id: str, k: int, split: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(clean_id.encode()), k, split])


def _noise_set(spec, fail_or_skip) -> tuple[list, list, str]:
    """The noise recordings (a noise root's, or the synthetic noises, one category each), the non-audio files
    ignored and the source."""
    from experiments.data.noise import Recording, load_noise_set

    if spec.noise_root is not None:
        recordings, ignored = load_noise_set(spec.noise_root, fail_or_skip)
        return recordings, ignored, str(spec.noise_root)
    from experiments.data.synthetic import noise_bank

    return [Recording(k, k, "synthetic", v) for k, v in noise_bank(spec.seed).items()], [], "synthetic"


def noise_report(recordings, parts, how, used: dict, mode: str) -> dict:
    """What noise went where: per split, each recording's part (s) and the seconds of it mixed in.

    Parameters
    ----------
    recordings : list of Recording
    parts : dict of str to list of Part
        :func:`experiments.data.noise.split_noise`.
    how : dict of str to str
        Per category, how it was split.
    used : dict of (str, str) to int
        Samples mixed in per (split, recording).
    mode : str
        The ``--noise-split``.

    Returns
    -------
    dict
        ``mode``, ``guard_s``, ``categories`` ({category: how}), ``recordings`` ({name: duration s}) and
        ``splits``: {split: [{recording, category, start_s, stop_s, seconds, mixed_s}]}.
    """
    from experiments.data.noise import GUARD_S

    rate = F.SAMPLE_RATE
    return {"mode": mode, "guard_s": GUARD_S, "categories": how,
            "recordings": {r.name: len(r.audio) / rate for r in recordings},
            "splits": {split: [{"recording": p.recording, "category": p.category, "start_s": p.start / rate,
                                "stop_s": p.stop / rate, "seconds": (p.stop - p.start) / rate,
                                "mixed_s": used.get((split, p.recording), 0) / rate} for p in chosen]
                       for split, chosen in parts.items()}}


def _tasks(spec, fail_or_skip) -> list[tuple]:
    if spec.source == "grid":
        from experiments.data.grid import list_items

        items, missing = list_items(spec.data_root, spec.speakers)
        if spec.n_utterances is not None:
            items = items[:spec.n_utterances]
        for name, reason in missing:
            fail_or_skip(name, reason)
        return [("grid", it, spec.detect_every, spec.detect_scale, it.clean_id) for it in items]
    n = spec.n_utterances or DEFAULT_SYNTHETIC_SIZE
    return [("synthetic", i, spec.seed, f"syn/{i:05d}") for i in range(n)]


def build_corpus(spec, key: str, out: Path, progress: bool = True, t0: float | None = None) -> dict:
    """Decode, mix and featurise every clean utterance of ``spec`` into the empty folder ``out``.

    Parameters
    ----------
    spec : CorpusSpec
        A resolved :class:`experiments.data.corpus.CorpusSpec`.
    key : str
        Its cache key (stored in ``meta.json``).
    out : Path
        An existing empty folder; ``meta.json`` is written last and marks it complete.
    progress : bool
        Show progress bars.
    t0 : float, optional
        ``time.perf_counter()`` at the start of the preparation (default: now), for the timings.

    Returns
    -------
    dict
        The build report (also in ``report.json``): counts, skipped utterances with reasons, timings (s).

    Raises
    ------
    MburstError
        On a bad input file with ``spec.on_error == 'fail'``, or when no utterance is usable.
    """
    from experiments.data.noise import NOISE_SPLIT_NAMES, draw_segment, mixture_snr_db, segment, snr_gain, split_noise

    t0 = time.perf_counter() if t0 is None else t0
    skipped: list[dict] = []

    def fail_or_skip(name: str, reason: str) -> None:
        if spec.on_error == "fail":
            raise MburstError(reason)
        skipped.append({"id": name, "reason": reason})

    recordings, ignored, noise_source = _noise_set(spec, fail_or_skip)
    parts, how = split_noise(recordings, spec.noise_split, spec.seed, fail_or_skip)
    bank = {r.name: r.audio for r in recordings}
    category = {r.name: r.category for r in recordings}
    used: dict[tuple[str, str], int] = {}
    tasks = _tasks(spec, fail_or_skip)
    t_load = time.perf_counter()
    lp_chunks, ibm_chunks, lip_chunks, wave_chunks = [], [], [], []
    utts, cleans, previews = [], [], {}
    frame_pos = lip_pos = wave_pos = 0
    truncated = 0  # audio and video one frame apart, aligned by truncation
    rates: dict[str, int] = {}  # source frame rates of the clean utterances kept
    with contextlib.closing(_run_tasks(tasks, spec.workers, progress)) as results:  # the bar closes before an error
        for res in results:
            if "error" in res:
                fail_or_skip(res["clean_id"], res["error"])
                continue
            n, clean = res["n_frames"], res["audio"].astype(np.float64)
            if res["covered_frames"] != res["audio_frames"]:
                truncated += 1
            rates[res["video_rate"]["describe"]] = rates.get(res["video_rate"]["describe"], 0) + 1
            c_index = len(cleans)
            if res["preview"] is not None and c_index < N_PREVIEW:
                previews.update({f"{k}{c_index}": np.asarray(v) for k, v in res["preview"].items()})
            cleans.append({"clean_id": res["clean_id"], "speaker": res["speaker"], "n_frames": n, "lip_start": lip_pos,
                           "wave_start": wave_pos, "n_samples": len(clean), "video_frames": res["video_frames"],
                           "covered_frames": res["covered_frames"], "audio_frames": res["audio_frames"],
                           "video_fps": res["video_rate"]["fps"], "video_rate": res["video_rate"]["describe"],
                           "detections": res["detections"], "words": res["words"]})
            lip_chunks.append(res["lips"])
            wave_chunks.append(res["audio"])
            x = F.stft(clean)
            for k, snr in enumerate(spec.snrs_db):
                for j, split in enumerate(NOISE_SPLIT_NAMES):
                    name, offset = draw_segment(_utt_rng(spec.seed, res["clean_id"], k, j), bank, parts[split], len(clean))
                    used[(split, name)] = used.get((split, name), 0) + len(clean)
                    seg = segment(bank[name], offset, len(clean))
                    gain = snr_gain(clean, seg, snr)
                    nspec = F.stft(seg) * gain
                    lp_chunks.append(F.log_power(x + nspec)[:, :spec.n_bins])
                    ibm_chunks.append(F.ideal_binary_mask(x, nspec, spec.lc_db)[:, :spec.n_bins])
                    utts.append({"utt_id": f"{res['clean_id']}@{snr:+g}dB/{split}-noise", "clean_id": res["clean_id"],
                                 "clean_index": c_index, "speaker": res["speaker"], "snr_db": snr,
                                 "snr_measured_db": mixture_snr_db(clean, gain * seg), "noise_name": name,
                                 "noise_category": category[name], "noise_split": split,
                                 "noise_offset": offset, "noise_gain": gain, "n_frames": n, "frame_start": frame_pos,
                                 "lip_start": lip_pos})
                    frame_pos += n
            lip_pos += n
            wave_pos += len(clean)
    if not cleans:
        raise MburstError(f"no usable utterances ({len(skipped)} skipped; first: {skipped[0]['reason'] if skipped else 'none listed'})")
    t_write = time.perf_counter()
    with Bar(total=6, desc="write cache", unit="file", show=progress) as bar:
        for fname, chunks in (("log_power", lp_chunks), ("ibm", ibm_chunks), ("lips", lip_chunks), ("clean", wave_chunks)):
            np.save(out / f"{fname}.npy", np.concatenate(chunks))
            bar.update()
        np.savez(out / "noise.npz", **bank)
        np.savez(out / "preview.npz", **previews)
        bar.update(2)
    atomic_write_json(out / "utterances.json", utts)
    atomic_write_json(out / "cleans.json", cleans)
    elapsed = time.perf_counter() - t0
    report = {
        "n_clean": len(cleans), "n_utterances": len(utts), "n_frames": frame_pos, "n_lip_frames": lip_pos,
        "skipped": skipped, "n_skipped": len(skipped), "aligned_by_truncation": truncated,
        "video_rates": dict(sorted(rates.items())),
        "time_s": elapsed, "decode_features_s": t_write - t_load, "clean_per_s": len(cleans) / max(elapsed, 1e-9),
        "noise_source": noise_source, "noise_names": sorted(bank),
        "noise": noise_report(recordings, parts, how, used, spec.noise_split),
        "noise_ignored": [{"id": name, "reason": reason} for name, reason in ignored],
    }
    atomic_write_json(out / "report.json", report)
    meta = dict(spec.feature_config(), cache_key=key, data_root=str(spec.data_root) if spec.data_root else None,
                noise_root=noise_source, log_eps=F.LOG_EPS, bins="1..%d (non-DC)" % spec.n_bins,
                lip_shape=[LIP_H, LIP_W], created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_json(out / "meta.json", meta)  # written last: marks the folder complete
    return report
