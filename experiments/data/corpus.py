"""The prepared audio-visual corpus: its cache folder (prepared once, then reused) and reading it.

A corpus is built once per settings and input files (:class:`experiments.data.spec.CorpusSpec`,
:func:`prepare_corpus`, :mod:`experiments.data.build`) into a cache folder named by the source and a
key over both. The folder holds ``log_power.npy`` [F, 500] float32 (the noisy
ln(|X + N|^2 + 1e-8) of bins 1..500), ``ibm.npy`` [F, 500] uint8, ``lips.npy``
[L, 50, 92] uint8 (once per clean utterance, shared by its SNR copies),
``clean.npy`` (16 kHz clean audio, concatenated), ``noise.npz`` (the 16 kHz
noise recordings, by ``<category>/<stem>``), ``preview.npz`` (source frame and tracked boxes of the first GRID
utterances, for ``mburst prepare``'s figure), ``utterances.json``/``cleans.json``
(records and mixing recipes), ``report.json`` and ``meta.json``. It is built in
a temporary folder and renamed into place at the end, so an interrupted run
leaves no cache. Model inputs: :mod:`experiments.data.frames`.

Every clean sentence is mixed at every SNR twice, with a train and with a test noise recording
(:mod:`experiments.data.build`). Splits (:meth:`Corpus.split`) are by sentence and stay put: a sentence's
split is a function of its id and the seed alone (:func:`sentence_splits`), so adding data never moves one.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurons.common import MburstError

from experiments.data.build import build_corpus
from experiments.data.frames import FrameSet, Stats
from experiments.data.paths import cache_root as default_cache_root, note_superseded
from experiments.data.spec import FORMAT_VERSION, CorpusSpec
from experiments.data.splits import SPLIT_FRACTIONS, sentence_splits

__all__ = ["Corpus", "Utterance", "Preview", "corpus_path", "prepare_corpus", "load_corpus"]


# ---------------------------------------------------------------- the cache

def corpus_path(spec: CorpusSpec, cache_root: Path | None = None, key: str | None = None) -> Path:
    """The cache folder ``spec`` maps to (it exists, with ``meta.json``, once prepared).

    Parameters
    ----------
    spec : CorpusSpec
    cache_root : Path, optional
        Cache folder (default ``$MBURST_CACHE`` or ``<repo>/.mburst_cache``).
    key : str, optional
        ``spec.cache_key()`` when already computed.

    Returns
    -------
    Path
        ``<cache_root>/<source>-<first 20 hex digits of the key>``.
    """
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return root / f"{spec.source}-{(key or spec.cache_key())[:20]}"


def prepare_corpus(spec: CorpusSpec, cache_root: Path | None = None, progress: bool = True) -> Path:
    """Build (or reuse) the cached corpus for ``spec``.

    A cache hit costs one stat per input file. The build runs in
    ``<cache>/.building-*`` and is renamed into place only when complete.
    Counts, skips (with reasons) and timings go to ``report.json`` (and are printed
    when ``progress``).

    Parameters
    ----------
    spec : CorpusSpec
    cache_root : Path, optional
        Cache folder (default ``$MBURST_CACHE`` or ``<repo>/.mburst_cache``).
    progress : bool
        Progress bars and a summary on stdout.

    Returns
    -------
    Path
        The corpus folder (:func:`load_corpus` opens it).

    Raises
    ------
    MburstError
        On a bad argument, a bad input file (``on_error='fail'``) or no usable utterance.
    """
    t0 = time.perf_counter()
    spec = spec.resolved()
    key = spec.cache_key()
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    final = corpus_path(spec, root, key)
    if (final / "meta.json").is_file():
        if progress:
            print(f"corpus cache hit: {final} ({time.perf_counter() - t0:.3f} s)")
            note_superseded(final)
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".building-{key[:20]}-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        report = build_corpus(spec, key, tmp, progress, t0)
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
        note_superseded(final)
    return final


# ---------------------------------------------------------------- reading the cache

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
    noise_category: str
    noise_split: str  # 'train' or 'test': the split of the noise recording it was mixed with
    noise_offset: int
    noise_gain: float
    n_frames: int
    frame_start: int
    lip_start: int


@dataclass(frozen=True)
class Preview:
    """A source video frame of a clean utterance and the tracked boxes on it (source pixels)."""

    clean_index: int
    frame: int
    image: np.ndarray  # uint8 [H, W]
    mouth: np.ndarray  # (centre x, centre y, width) of the lip crop; its height is width * 50 / 92
    face: np.ndarray  # smoothed face box (x, y, w, h)


def load_corpus(path: str | os.PathLike) -> "Corpus":
    """Open a prepared corpus folder (arrays memory-mapped), or the ``--out`` folder of ``mburst prepare``
    (its ``summary.json`` names the corpus folder).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Corpus

    Raises
    ------
    MburstError
        If the folder is not a complete corpus (nor a prepare folder naming one) or a file is corrupt.
    """
    path = Path(path)
    summary = path / "summary.json"
    if not (path / "meta.json").is_file() and summary.is_file():
        try:
            cache = Path(json.loads(summary.read_text())["cache"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise MburstError(f"{summary}: unreadable prepare summary ({type(err).__name__}: {err})") from None
        if not (cache / "meta.json").is_file():
            raise MburstError(f"{path}: the corpus its summary.json names ({cache}) is gone; prepare again")
        return Corpus(cache)
    return Corpus(path)


class Corpus:
    """A prepared corpus. See the module docstring for the arrays."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "meta.json").is_file():
            raise MburstError(f"{self.path}: not a prepared corpus (meta.json missing) nor a `mburst prepare --out` "
                              "folder (summary.json missing)")
        try:
            self.meta = json.loads((self.path / "meta.json").read_text())
            if self.meta.get("format", 0) < FORMAT_VERSION:
                raise MburstError(f"{self.path}: prepared by an older mburst (format {self.meta.get('format')}, now "
                                  f"{FORMAT_VERSION}: noise by recording, splits by sentence hash); prepare it again")
            self.report = json.loads((self.path / "report.json").read_text())
            self.utterances = [Utterance(**u) for u in json.loads((self.path / "utterances.json").read_text())]
            self.cleans = json.loads((self.path / "cleans.json").read_text())
            self.log_power = np.load(self.path / "log_power.npy", mmap_mode="r")
            self.ibm = np.load(self.path / "ibm.npy", mmap_mode="r")
            self.lips = np.load(self.path / "lips.npy", mmap_mode="r")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise MburstError(f"{self.path}: corrupt corpus cache ({type(err).__name__}: {err}); delete it and prepare again") from None
        self._noise = None
        self._clean_audio = None

    @property
    def clean_audio(self) -> np.ndarray:
        """The concatenated clean waveforms (16 kHz, float32, memory-mapped), opened on first use.

        Raises
        ------
        MburstError
            If ``clean.npy`` is missing or corrupt.
        """
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
    def split(self, seed: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, np.ndarray]:
        """Utterance indices of each split, by clean sentence (:func:`sentence_splits`) and noise recording.

        Every noisy copy of a sentence lands in the same sentence split. Train and proxy take the copies
        mixed with train recordings; test the copies mixed with held-out (test) recordings; ``test_seen``
        the test sentences mixed with train recordings (unseen speech, heard noise), so that
        F1(test_seen) - F1(test) is the generalisation gap to unheard noise.

        Parameters
        ----------
        seed : int
        fractions : (float, float, float)
            Shares of the clean sentences in train, test and proxy (summing to 1).

        Returns
        -------
        dict of str to ndarray of int64
            Keys 'train', 'test', 'proxy', 'test_seen', 'all'.

        Raises
        ------
        MburstError
            If the fractions are not three non-negative numbers summing to 1.
        """
        part = sentence_splits([c["clean_id"] for c in self.cleans], seed, fractions)
        of = part[np.array([u.clean_index for u in self.utterances], dtype=np.int64)]
        heldout = np.array([u.noise_split == "test" for u in self.utterances])
        return {"train": np.flatnonzero((of == 0) & ~heldout), "test": np.flatnonzero((of == 1) & heldout),
                "proxy": np.flatnonzero((of == 2) & ~heldout), "test_seen": np.flatnonzero((of == 1) & ~heldout),
                "all": np.arange(len(self.utterances))}

    def rows(self, utt_indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the frames of some utterances are, in utterance order.

        Parameters
        ----------
        utt_indices : array_like of int
            Utterance indices (non-empty).

        Returns
        -------
        rows : ndarray of int64, shape (frames,)
            Rows of ``log_power``/``ibm``.
        lip_rows : ndarray of int64, shape (frames,)
            Rows of ``lips``.
        positions : ndarray of int64, shape (frames,)
            Each frame's position in its utterance.

        Raises
        ------
        MburstError
            If the selection is empty or an index is out of range.
        """
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
        """Per-bin mean/std of log-power and scalar lip mean/std over the given (training) utterances.

        Parameters
        ----------
        utt_indices : array_like of int

        Returns
        -------
        Stats
            Standard deviations floored at 1e-6.
        """
        rows, lip_rows, _ = self.rows(utt_indices)
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

    def frames(self, utt_indices, stats, n_bins: int | None = None) -> FrameSet:
        """The frames of the given utterances as model inputs.

        Parameters
        ----------
        utt_indices : array_like of int
        stats : Stats or (mean, std, lip_mean, lip_std)
            Training-set statistics (:meth:`feature_stats`, a checkpoint's ``feature_stats``).
        n_bins : int, optional
            Model bands (a model's ``config.n_bins``); fewer than the corpus's bins pools them
            into equal bands. Default: the corpus's bins.

        Returns
        -------
        FrameSet

        Raises
        ------
        MburstError
            On an empty or out-of-range selection, bad statistics, or bands that do not divide the bins.
        """
        return FrameSet(self, utt_indices, Stats.coerce(stats),
                        n_bins=self.log_power.shape[1] if n_bins is None else n_bins)

    # -- audio and previews
    def noise_bank(self) -> dict[str, np.ndarray]:
        """The stored noise recordings, ``{name: float32 samples at 16 kHz}``."""
        if self._noise is None:
            with np.load(self.path / "noise.npz") as z:
                self._noise = {k: z[k] for k in z.files}
        return self._noise

    def waveforms(self, utt_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An utterance's audio, regenerated from the stored mixing recipe.

        Parameters
        ----------
        utt_index : int

        Returns
        -------
        clean, noise, noisy : ndarray of float64, shape (n_frames * 640,)
            16 kHz; noisy = clean + noise.
        """
        from experiments.data.noise import segment

        u = self.utterances[int(utt_index)]
        c = self.cleans[u.clean_index]
        clean = np.asarray(self.clean_audio[c["wave_start"]:c["wave_start"] + c["n_samples"]], dtype=np.float64)
        noise = segment(self.noise_bank()[u.noise_name], u.noise_offset, len(clean)) * u.noise_gain
        return clean, noise, clean + noise

    def previews(self) -> list[Preview]:
        """Source frames and tracked boxes stored for the first clean utterances (GRID; none for synthetic).

        Returns
        -------
        list of Preview

        Raises
        ------
        MburstError
            If ``preview.npz`` is missing or corrupt.
        """
        path = self.path / "preview.npz"
        try:
            with np.load(path) as z:
                stored = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            raise MburstError(f"{path}: missing or corrupt ({type(err).__name__}); prepare the corpus again") from None
        return [Preview(i, int(stored[f"frame{i}"]), stored[f"image{i}"], stored[f"mouth{i}"], stored[f"face{i}"])
                for i in range(len(self.cleans)) if f"frame{i}" in stored]
