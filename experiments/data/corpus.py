"""The audio-visual corpus: prepare (decode, detect, mix, features), cache, splits, frame tensors.

Per clean utterance s (GRID or synthetic) and target SNR in ``snrs_db``, a noise
segment n is drawn at random (file, offset) and scaled by
g = sqrt(P_s / (P_n 10^(SNR/10))) (:mod:`experiments.data.noise`). With X = STFT(s)
and N = g STFT(n) (the STFT is linear), the noisy features are
log(|X + N|^2 + eps) over bins 1..500 and the target is the IBM,
10 log10(|X|^2 / |N|^2) >= LC (reference.md section 1, :mod:`experiments.data.features`).

The cache folder holds ``log_power.npy`` [F, 500] float32, ``ibm.npy`` [F, 500]
uint8, ``lips.npy`` [L, 50, 92] uint8 (once per clean utterance, shared by its
SNR copies), ``clean.npy`` (16 kHz clean audio, concatenated), ``noise.npz``
(the 16 kHz noise bank), ``utterances.json``/``cleans.json`` (records and mixing
recipes), ``report.json`` and ``meta.json``. It is built in a temporary folder
and renamed into place at the end, so an interrupted run leaves no cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Iterator

import numpy as np

from neurons.common import MburstError, atomic_write_json

from experiments.data import features as F
from experiments.data.paths import cache_root as default_cache_root
from experiments.data.paths import data_root

FORMAT_VERSION = 1
SOURCES = ("grid", "synthetic")
ON_ERROR = ("fail", "skip")
DEFAULT_SYNTHETIC_SIZE = 200


@dataclass(frozen=True)
class CorpusSpec:
    """What to prepare. ``data_root``/``noise_root`` default to ``data_root()/grid`` and ``/noise``
    for GRID; a synthetic corpus uses its own synthetic noises unless ``noise_root`` is given."""

    source: str = "synthetic"
    data_root: Path | None = None
    noise_root: Path | None = None
    speakers: tuple[str, ...] | None = None
    snrs_db: tuple[float, ...] = (-12.0, -6.0, 0.0, 6.0)
    lc_db: float = 5.0
    n_bins: int = F.N_BINS
    n_utterances: int | None = None  # synthetic size (default 200) / optional GRID limit
    seed: int = 0
    on_error: str = "fail"
    detect_every: int = 10  # face detection on every k-th frame, tracked in between
    detect_scale: float = 0.5  # detection on a frame downscaled by this factor
    workers: int = 2

    def resolved(self) -> "CorpusSpec":
        """Validate and fill default roots; raises :class:`MburstError` naming the bad argument."""
        if self.source not in SOURCES:
            raise MburstError(f"--data {self.source!r}: expected one of {', '.join(SOURCES)}")
        if self.on_error not in ON_ERROR:
            raise MburstError(f"--on-error {self.on_error!r}: expected fail or skip")
        snrs = tuple(float(s) for s in self.snrs_db)
        if not snrs or not all(np.isfinite(snrs)):
            raise MburstError(f"--snrs {self.snrs_db!r}: need at least one finite SNR in dB")
        if not np.isfinite(self.lc_db):
            raise MburstError(f"--lc-db {self.lc_db!r}: must be finite")
        if not 1 <= self.n_bins <= F.N_BINS:
            raise MburstError(f"n_bins {self.n_bins}: must be in 1..{F.N_BINS}")
        if self.n_utterances is not None and self.n_utterances < 1:
            raise MburstError(f"--n-utterances {self.n_utterances}: must be >= 1")
        if self.detect_every < 1 or not 0.1 <= self.detect_scale <= 1.0:
            raise MburstError(f"detect_every {self.detect_every} / detect_scale {self.detect_scale}: need k >= 1 and 0.1 <= scale <= 1")
        droot, nroot = self.data_root, self.noise_root
        if self.source == "grid":
            base = data_root()
            if droot is None:
                if base is None or not (base / "grid").is_dir():
                    raise MburstError("--data-root: not given and no GRID data under MBURST_DATA / ../shared/data")
                droot = base / "grid"
            if nroot is None:
                if base is None or not (base / "noise").is_dir():
                    raise MburstError("--noise-root: not given and no noise folder under MBURST_DATA / ../shared/data")
                nroot = base / "noise"
        return dataclasses.replace(
            self, snrs_db=snrs, lc_db=float(self.lc_db),
            data_root=None if droot is None else Path(droot).resolve(),
            noise_root=None if nroot is None else Path(nroot).resolve(),
            speakers=None if not self.speakers else tuple(self.speakers),
        )

    def feature_config(self) -> dict:
        """Everything that changes the cached arrays (not ``on_error``/``workers``)."""
        return {
            "format": FORMAT_VERSION, "source": self.source, "sample_rate": F.SAMPLE_RATE, "win": F.WIN,
            "hop": F.HOP, "window": "hamming", "n_bins": self.n_bins, "lc_db": float(self.lc_db),
            "snrs_db": [float(s) for s in self.snrs_db], "context": F.CONTEXT, "seed": self.seed,
            "n_utterances": self.n_utterances, "speakers": list(self.speakers or []),
            "detect_every": self.detect_every, "detect_scale": self.detect_scale,
        }

    def input_files(self) -> list[Path]:
        """The files the corpus is made from (GRID videos/wavs/alignments, noise wavs)."""
        spec = self.resolved()
        files: list[Path] = []
        if spec.source == "grid":
            from experiments.data.grid import list_items

            items, _ = list_items(spec.data_root, spec.speakers)
            for it in items:
                files += [p for p in (it.mpg, it.wav, it.align) if p is not None]
        if spec.noise_root is not None and spec.noise_root.is_dir():
            files += sorted(spec.noise_root.glob("*.wav"))
        return files

    def cache_key(self) -> str:
        """SHA-256 of the feature config and the input file list (names, sizes, mtimes)."""
        spec = self.resolved()
        h = hashlib.sha256(json.dumps(spec.feature_config(), sort_keys=True).encode())
        for path in spec.input_files():
            st = path.stat()
            h.update(f"{path.name}\0{path.parent.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


# ---------------------------------------------------------------- loading clean utterances (workers)

def _load_grid(item, every: int, scale: float) -> dict:
    from experiments.data.grid import parse_alignment, read_audio, read_video
    from experiments.data.lips import track_lips

    frames = read_video(item.mpg)
    audio = read_audio(item)
    n_a, n_v = F.n_frames(len(audio)), len(frames)
    if abs(n_a - n_v) > 1:
        raise MburstError(f"{item.mpg}: audio gives {n_a} frames but the video has {n_v} (more than one frame apart)")
    n = min(n_a, n_v)
    if n < F.CONTEXT:
        raise MburstError(f"{item.mpg}: {n} frames, shorter than the {F.CONTEXT}-frame context")
    audio = audio[:n * F.HOP]
    if not np.any(audio):
        raise MburstError(f"{item.wav or item.mpg}: audio is silent")
    track = track_lips(frames[:n], every=every, scale=scale, source=str(item.mpg))
    words = None
    if item.align is not None:
        words = [[w.start, w.end, w.word] for w in parse_alignment(item.align)]
    return {"clean_id": item.clean_id, "speaker": item.speaker, "audio": audio.astype(np.float32),
            "lips": track.crops, "n_frames": n, "video_frames": n_v, "audio_frames": n_a,
            "detections": track.n_detections, "words": words}


def _load_synthetic(index: int, seed: int) -> dict:
    from experiments.data.synthetic import utterance

    audio, lips = utterance(seed, index)
    n = min(F.n_frames(len(audio)), len(lips))
    return {"clean_id": f"syn/{index:05d}", "speaker": "syn", "audio": audio[:n * F.HOP].astype(np.float32),
            "lips": lips[:n], "n_frames": n, "video_frames": len(lips), "audio_frames": n,
            "detections": None, "words": None}


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
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="decode+detect", unit="utt", disable=not progress)
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


# ---------------------------------------------------------------- prepare

def _utt_rng(seed: int, clean_id: str, k: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(clean_id.encode()), k])


def corpus_path(spec: CorpusSpec, cache_root: Path | None = None, key: str | None = None) -> Path:
    """The cache folder ``spec`` maps to (it exists, with ``meta.json``, once prepared)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return root / f"{spec.source}-{(key or spec.cache_key())[:20]}"


def prepare_corpus(spec: CorpusSpec, cache_root: Path | None = None, progress: bool = True) -> Path:
    """Build (or reuse) the cached corpus for ``spec``; returns its folder.

    A cache hit costs one stat per input file. The build runs in
    ``<cache>/.building-*`` and is renamed into place only when complete.
    Counts, skips (with reasons) and timings go to ``report.json`` (and are printed
    when ``progress``).
    """
    t0 = time.perf_counter()
    spec = spec.resolved()
    key = spec.cache_key()
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    final = corpus_path(spec, root, key)
    if (final / "meta.json").is_file():
        if progress:
            print(f"corpus cache hit: {final} ({time.perf_counter() - t0:.3f} s)")
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".building-{key[:20]}-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        report = _build(spec, key, tmp, progress, t0)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same corpus first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        print(f"corpus ready: {final}\n  {report['n_clean']} clean utterances, {report['n_utterances']} noisy, "
              f"{report['n_frames']} frames, {len(report['skipped'])} skipped, "
              f"{report['time_s']:.1f} s ({report['clean_per_s']:.2f} utterances/s)")
        for s in report["skipped"]:
            print(f"  skipped {s['id']}: {s['reason']}")
    return final


def _build(spec: CorpusSpec, key: str, out: Path, progress: bool, t0: float) -> dict:
    from tqdm import tqdm

    from experiments.data.noise import draw_segment, load_noise_folder, mixture_snr_db, segment, snr_gain

    skipped: list[dict] = []

    def fail_or_skip(name: str, reason: str) -> None:
        if spec.on_error == "fail":
            raise MburstError(reason)
        skipped.append({"id": name, "reason": reason})

    if spec.noise_root is not None:
        bank = load_noise_folder(spec.noise_root)
        noise_source = str(spec.noise_root)
    else:
        from experiments.data.synthetic import noise_bank

        bank = {k: v for k, v in noise_bank(spec.seed).items()}
        noise_source = "synthetic"

    if spec.source == "grid":
        from experiments.data.grid import list_items

        items, missing = list_items(spec.data_root, spec.speakers)
        if spec.n_utterances is not None:
            items = items[:spec.n_utterances]
        for name, reason in missing:
            fail_or_skip(name, reason)
        tasks = [("grid", it, spec.detect_every, spec.detect_scale, it.clean_id) for it in items]
    else:
        n = spec.n_utterances or DEFAULT_SYNTHETIC_SIZE
        tasks = [("synthetic", i, spec.seed, f"syn/{i:05d}") for i in range(n)]

    t_load = time.perf_counter()
    lp_chunks, ibm_chunks, lip_chunks, wave_chunks = [], [], [], []
    utts, cleans = [], []
    frame_pos = lip_pos = wave_pos = 0
    truncated = 0  # audio and video one frame apart, aligned by truncation
    for res in _run_tasks(tasks, spec.workers, progress):
        if "error" in res:
            fail_or_skip(res["clean_id"], res["error"])
            continue
        n, clean = res["n_frames"], res["audio"].astype(np.float64)
        if res["video_frames"] != res["audio_frames"]:
            truncated += 1
        c_index = len(cleans)
        cleans.append({"clean_id": res["clean_id"], "speaker": res["speaker"], "n_frames": n, "lip_start": lip_pos,
                       "wave_start": wave_pos, "n_samples": len(clean), "video_frames": res["video_frames"],
                       "audio_frames": res["audio_frames"], "detections": res["detections"], "words": res["words"]})
        lip_chunks.append(res["lips"])
        wave_chunks.append(res["audio"])
        x = F.stft(clean)
        for k, snr in enumerate(spec.snrs_db):
            name, offset = draw_segment(_utt_rng(spec.seed, res["clean_id"], k), bank, len(clean))
            seg = segment(bank[name], offset, len(clean))
            gain = snr_gain(clean, seg, snr)
            nspec = F.stft(seg) * gain
            lp_chunks.append(F.log_power(x + nspec)[:, :spec.n_bins])
            ibm_chunks.append(F.ideal_binary_mask(x, nspec, spec.lc_db)[:, :spec.n_bins])
            utts.append({"utt_id": f"{res['clean_id']}@{snr:+g}dB", "clean_id": res["clean_id"], "clean_index": c_index,
                         "speaker": res["speaker"], "snr_db": snr, "snr_measured_db": mixture_snr_db(clean, gain * seg),
                         "noise_name": name, "noise_offset": offset, "noise_gain": gain, "n_frames": n,
                         "frame_start": frame_pos, "lip_start": lip_pos})
            frame_pos += n
        lip_pos += n
        wave_pos += len(clean)
    if not cleans:
        raise MburstError(f"no usable utterances ({len(skipped)} skipped; first: {skipped[0]['reason'] if skipped else 'none listed'})")
    t_write = time.perf_counter()
    with tqdm(total=5, desc="write cache", disable=not progress) as bar:
        for fname, chunks in (("log_power", lp_chunks), ("ibm", ibm_chunks), ("lips", lip_chunks), ("clean", wave_chunks)):
            np.save(out / f"{fname}.npy", np.concatenate(chunks))
            bar.update()
        np.savez(out / "noise.npz", **bank)
        bar.update()
    atomic_write_json(out / "utterances.json", utts)
    atomic_write_json(out / "cleans.json", cleans)
    elapsed = time.perf_counter() - t0
    report = {
        "n_clean": len(cleans), "n_utterances": len(utts), "n_frames": frame_pos, "n_lip_frames": lip_pos,
        "skipped": skipped, "n_skipped": len(skipped), "aligned_by_truncation": truncated,
        "time_s": elapsed, "decode_features_s": t_write - t_load, "clean_per_s": len(cleans) / max(elapsed, 1e-9),
        "noise_source": noise_source, "noise_names": sorted(bank),
    }
    atomic_write_json(out / "report.json", report)
    meta = dict(spec.feature_config(), cache_key=key, data_root=str(spec.data_root) if spec.data_root else None,
                noise_root=noise_source, log_eps=F.LOG_EPS, bins="1..%d (non-DC)" % spec.n_bins,
                lip_shape=[50, 92], created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_json(out / "meta.json", meta)  # written last: marks the folder complete
    return report


# ---------------------------------------------------------------- loading the cache

@dataclass(frozen=True)
class Utterance:
    """One noisy utterance: a clean sentence mixed at one SNR (the stored mixing recipe)."""

    utt_id: str
    clean_id: str
    clean_index: int
    speaker: str
    snr_db: float
    snr_measured_db: float
    noise_name: str
    noise_offset: int
    noise_gain: float
    n_frames: int
    frame_start: int
    lip_start: int


@dataclass
class Stats:
    """Training-set standardisation: per-bin log-power mean/std, scalar lip-pixel mean/std."""

    mean: np.ndarray
    std: np.ndarray
    lip_mean: float
    lip_std: float

    def __iter__(self):
        return iter((self.mean, self.std, self.lip_mean, self.lip_std))


def load_corpus(path: str | os.PathLike) -> "Corpus":
    """Open a prepared corpus folder (arrays memory-mapped)."""
    return Corpus(Path(path))


class Corpus:
    """A prepared corpus. See the module docstring for the arrays."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "meta.json").is_file():
            raise MburstError(f"{self.path}: not a prepared corpus (meta.json missing)")
        try:
            self.meta = json.loads((self.path / "meta.json").read_text())
            self.report = json.loads((self.path / "report.json").read_text())
            self.utterances = [Utterance(**u) for u in json.loads((self.path / "utterances.json").read_text())]
            self.cleans = json.loads((self.path / "cleans.json").read_text())
            self.log_power = np.load(self.path / "log_power.npy", mmap_mode="r")
            self.ibm = np.load(self.path / "ibm.npy", mmap_mode="r")
            self.lips = np.load(self.path / "lips.npy", mmap_mode="r")
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise MburstError(f"{self.path}: corrupt corpus cache ({type(err).__name__}: {err}); delete it and prepare again") from None
        self._noise = None
        self._clean_audio = None

    @property
    def _clean(self) -> np.ndarray:
        """The concatenated clean waveforms, opened on first use (only enhancement needs them)."""
        if self._clean_audio is None:
            path = self.path / "clean.npy"
            try:
                self._clean_audio = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise MburstError(f"{path}: clean audio missing or corrupt ({type(err).__name__}); "
                                  "waveforms and enhancement need it") from None
        return self._clean_audio

    def __len__(self) -> int:
        return len(self.utterances)

    def __repr__(self) -> str:
        return f"Corpus({self.path}, {len(self.cleans)} clean, {len(self)} noisy, {len(self.log_power)} frames)"

    # -- splits and statistics
    def split(self, seed: int, fractions: tuple[float, float, float] = (0.8, 0.15, 0.05)) -> dict[str, np.ndarray]:
        """Utterance indices of train/test/proxy (+ 'all'), split by clean sentence with ``seed``.

        Every noisy copy of a sentence lands in the same split.
        """
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise MburstError(f"split fractions {fractions}: need three non-negative numbers summing to 1")
        n_clean = len(self.cleans)
        order = np.random.default_rng(seed).permutation(n_clean)
        n_train = int(round(fractions[0] * n_clean))
        n_test = min(n_clean - n_train, int(round(fractions[1] * n_clean)))
        part = np.empty(n_clean, dtype=np.int64)
        part[order[:n_train]], part[order[n_train:n_train + n_test]], part[order[n_train + n_test:]] = 0, 1, 2
        clean_of = np.array([u.clean_index for u in self.utterances], dtype=np.int64)
        return {name: np.flatnonzero(part[clean_of] == k) for k, name in enumerate(("train", "test", "proxy"))} | {
            "all": np.arange(len(self.utterances))}

    def _rows(self, utt_indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame rows, lip rows and in-utterance positions of the selected utterances."""
        idx = np.asarray(utt_indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise MburstError("empty utterance selection")
        if idx.min() < 0 or idx.max() >= len(self.utterances):
            raise MburstError(f"utterance index out of range 0..{len(self.utterances) - 1}")
        n = np.array([self.utterances[i].n_frames for i in idx])
        fs = np.array([self.utterances[i].frame_start for i in idx])
        ls = np.array([self.utterances[i].lip_start for i in idx])
        pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        return np.repeat(fs, n) + pos, np.repeat(ls, n) + pos, pos

    def feature_stats(self, utt_indices) -> Stats:
        """Per-bin mean/std of log-power and scalar lip mean/std over the given (training) utterances."""
        rows, lip_rows, _ = self._rows(utt_indices)
        s1 = np.zeros(self.log_power.shape[1])
        s2 = np.zeros_like(s1)
        for i in range(0, len(rows), 8192):
            block = np.asarray(self.log_power[rows[i:i + 8192]], dtype=np.float64)
            s1 += block.sum(0)
            s2 += np.square(block).sum(0)
        mean = s1 / len(rows)
        std = np.sqrt(np.maximum(s2 / len(rows) - mean ** 2, 0.0))
        lips = np.asarray(self.lips[np.unique(lip_rows)], dtype=np.float64)
        return Stats(mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32),
                     float(lips.mean()), float(max(lips.std(), 1e-6)))

    def frames(self, utt_indices, stats, n_bins: int | None = None) -> "FrameSet":
        """The frames of the given utterances as model inputs (see :class:`FrameSet`); ``n_bins`` below the
        corpus's bins pools them into that many equal bands (a model's ``config.n_bins``)."""
        stats = stats if isinstance(stats, Stats) else Stats(*stats)
        return FrameSet(self, utt_indices, stats, n_bins=self.log_power.shape[1] if n_bins is None else n_bins)

    # -- audio
    def noise_bank(self) -> dict[str, np.ndarray]:
        if self._noise is None:
            with np.load(self.path / "noise.npz") as z:
                self._noise = {k: z[k] for k in z.files}
        return self._noise

    def waveforms(self, utt_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clean, noise, noisy) at 16 kHz (float64), regenerated from the stored mixing recipe."""
        from experiments.data.noise import segment

        u = self.utterances[int(utt_index)]
        c = self.cleans[u.clean_index]
        clean = np.asarray(self._clean[c["wave_start"]:c["wave_start"] + c["n_samples"]], dtype=np.float64)
        noise = segment(self.noise_bank()[u.noise_name], u.noise_offset, len(clean)) * u.noise_gain
        return clean, noise, clean + noise


#: Visual-input ablations of :meth:`FrameSet.with_lips` (does a model use its lips?).
LIP_ABLATIONS = ("shuffled", "mean")


@dataclass
class FrameSet:
    """Frames of a set of utterances, standardised with training statistics.

    ``batch(i)`` gives ``audio`` [B, 1, 8, n_bins] (frames t-7..t of the same
    utterance, oldest first, zeros before its first frame), ``visual``
    [B, 1, 50, 92] and ``mask`` [B, n_bins], all float32 torch tensors, gathered
    with vectorised indexing. ``n_bins`` below the corpus's bins pools them
    (:func:`experiments.data.features.pool_bins`).
    """

    corpus: Corpus
    utt_indices: np.ndarray
    stats: Stats
    context: int = F.CONTEXT
    n_bins: int = F.N_BINS
    _audio: object = field(init=False, repr=False)

    def __post_init__(self):
        import torch

        rows, lip_rows, pos = self.corpus._rows(self.utt_indices)
        lp = np.asarray(self.corpus.log_power[rows], dtype=np.float32)
        audio, mask = F.pool_bins((lp - self.stats.mean) / self.stats.std, np.asarray(self.corpus.ibm[rows]), self.n_bins)
        self._audio = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        self._mask = torch.from_numpy(mask)
        uniq, local = np.unique(lip_rows, return_inverse=True)
        self._lips = torch.from_numpy(np.asarray(self.corpus.lips[uniq]))
        self._lip_row = torch.from_numpy(local.astype(np.int64))
        self._pos = torch.from_numpy(pos.astype(np.int64))
        self._offsets = torch.arange(self.context - 1, -1, -1)

    def __len__(self) -> int:
        return len(self._pos)

    def with_lips(self, mode: str, seed: int = 0) -> "FrameSet":
        """A copy whose visual input is ablated: 'shuffled' gives each frame the lip image of another
        frame of the set (a seeded permutation: same images, broken pairing), 'mean' gives every frame
        the training-mean lips (zeros after standardisation). Audio and masks are unchanged."""
        import copy

        import torch

        if mode not in LIP_ABLATIONS:
            raise MburstError(f"lip ablation must be one of {', '.join(LIP_ABLATIONS)}, got '{mode}'")
        out = copy.copy(self)
        if mode == "shuffled":
            perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
            out._lip_row = self._lip_row[perm]
        else:
            out._lips = torch.full((1, *self._lips.shape[1:]), self.stats.lip_mean, dtype=torch.float32)
            out._lip_row = torch.zeros_like(self._lip_row)
        return out

    def batch(self, frame_idx):
        import torch

        idx = torch.as_tensor(frame_idx, dtype=torch.int64).reshape(-1)
        back = idx[:, None] - self._offsets[None, :]  # [B, 8] rows t-7..t
        valid = (self._pos[idx][:, None] - self._offsets[None, :]) >= 0
        audio = self._audio[back.clamp_min(0)] * valid[:, :, None]
        visual = (self._lips[self._lip_row[idx]].float() - self.stats.lip_mean) / self.stats.lip_std
        return audio[:, None], visual[:, None], self._mask[idx].float()

    def batches(self, batch_size: int, shuffle: bool = True, generator=None):
        import torch

        if batch_size < 1:
            raise MburstError(f"batch_size {batch_size}: must be >= 1")
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i:i + batch_size])


# ---------------------------------------------------------------- audio-visual synchrony

def av_sync_profile(corpus: Corpus, max_lag: int = 6) -> dict:
    """Are the lip frames aligned with the audio frames? Correlation of mouth opening with speech energy
    at frame lags -max_lag..max_lag (see :func:`av_sync_lags`), over all clean utterances."""
    return av_sync_lags(av_sync_pairs(corpus), max_lag)


def av_sync_pairs(corpus: Corpus) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clean utterance: its lip frames [n, H, W] and the clean speech log-energy of each 40 ms frame [n]."""
    pairs = []
    for c in corpus.cleans:
        n = c["n_frames"]
        lips = np.asarray(corpus.lips[c["lip_start"]:c["lip_start"] + n], dtype=np.float32)
        wave = np.asarray(corpus._clean[c["wave_start"]:c["wave_start"] + n * F.HOP], dtype=np.float64)
        pairs.append((lips, np.log(np.mean(wave.reshape(n, F.HOP) ** 2, axis=1) + 1e-10)))
    return pairs


def av_sync_lags(pairs, max_lag: int = 6) -> dict:
    """Mean over utterances of corr(mouth opening at frame t, speech log-energy at frame t + lag).

    ``pairs``: ``(lips [n, H, W], log_energy [n])`` per utterance, frame t of both
    covering the same 40 ms. The mouth opening is measured as the darkness (minus
    the mean intensity) of the central half of the lip crop, where the open mouth
    cavity appears. A peak at lag 0 (or +-1: the mouth moves slightly before the
    sound) means aligned streams; a peak at lag k > 0 means the audio lags the
    video by k frames.
    """
    if max_lag < 0:
        raise MburstError(f"av_sync_lags: max_lag={max_lag} must be >= 0")
    lags = list(range(-max_lag, max_lag + 1))
    per_lag = {lag: [] for lag in lags}
    for lips, energy in pairs:
        n = len(energy)
        if len(lips) != n:
            raise MburstError(f"av_sync_lags: {len(lips)} lip frames but {n} audio frames")
        h, w = np.shape(lips)[1:]
        opening = -np.asarray(lips[:, h // 4:3 * h // 4, w // 4:3 * w // 4], dtype=np.float64).mean(axis=(1, 2))
        for lag in lags:
            a, b = (opening[:n - lag], energy[lag:]) if lag >= 0 else (opening[-lag:], energy[:n + lag])
            if len(a) > 2 and a.std() > 0 and b.std() > 0:
                per_lag[lag].append(float(np.corrcoef(a, b)[0, 1]))
    r = [float(np.mean(per_lag[lag])) if per_lag[lag] else float("nan") for lag in lags]
    best = int(np.nanargmax(r))
    return {"lags": lags, "r": r, "best_lag": lags[best], "best_r": r[best], "n_utterances": len(pairs)}


# ---------------------------------------------------------------- vision-only probe

def vision_mask_probe(corpus: Corpus, seed: int = 0, ridge: float = 10.0) -> dict:
    """Does vision alone predict the mask? Ridge regression from lip pixels to the IBM.

    Features: the frame's lip crop average-pooled 4x4 (12 x 23), standardised, plus
    a bias; W = (X'X + ridge I)^-1 X'Y on the training split; a global threshold
    chosen for best training F1; F1 on the test split. Chance: predicting all
    ones (F1 = 2p/(1+p), p the test prevalence) and the same probe trained on
    lips shuffled across frames.
    """
    split = corpus.split(seed)
    pooled = np.concatenate([  # each lip frame pooled once (all SNR copies share it), in chunks
        np.asarray(corpus.lips[i:i + 4096, :48, :92], dtype=np.float32).reshape(-1, 12, 4, 23, 4).mean(axis=(2, 4)).reshape(-1, 12 * 23)
        for i in range(0, len(corpus.lips), 4096)])

    def design(utts):
        rows, lip_rows, _ = corpus._rows(utts)
        return pooled[lip_rows].astype(np.float64), np.asarray(corpus.ibm[rows], dtype=np.float32)

    xtr, ytr = design(split["train"])
    xte, yte = design(split["test"] if len(split["test"]) else split["proxy"])
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6

    def fit_eval(xa, xb):
        a = np.hstack([(xa - mu) / sd, np.ones((len(xa), 1))])
        b = np.hstack([(xb - mu) / sd, np.ones((len(xb), 1))])
        w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ ytr)
        pa, pb = a @ w, b @ w
        best = max(np.linspace(0.05, 0.95, 19), key=lambda th: _f1(pa >= th, ytr))
        return _f1(pb >= best, yte), float(best)

    f1, th = fit_eval(xtr, xte)
    rng = np.random.default_rng(seed)
    f1_shuffled, _ = fit_eval(xtr[rng.permutation(len(xtr))], xte)
    p = float(yte.mean())
    return {"f1_vision": f1, "threshold": th, "f1_all_ones": 2 * p / (1 + p), "f1_shuffled_lips": f1_shuffled,
            "prevalence": p, "n_train_frames": len(xtr), "n_test_frames": len(xte)}


def _f1(pred: np.ndarray, target: np.ndarray) -> float:
    tp = float(np.sum(pred & (target > 0.5)))
    fp = float(np.sum(pred & (target < 0.5)))
    fn = float(np.sum(~pred & (target > 0.5)))
    return 2 * tp / max(2 * tp + fp + fn, 1e-9)
