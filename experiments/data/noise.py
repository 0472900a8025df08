"""Background noise: noise sets of recordings by category, their split into train and test recordings,
random segments, and mixing at a target SNR.

A noise root holds audio files directly (one category, named after the root) and/or in subfolders
(one category each, named after the subfolder, its files found recursively), e.g. ``ambient/cafe/*.wav``.
Every recording belongs to exactly one split (:func:`split_noise`):

- ``recording`` (default): within each category the recordings, shuffled with the seed, are dealt to
  train and test in turn (two per category: one each); a category with a single recording is cut in time;
- ``time``: every recording is cut in time.

A cut in time gives the first part of a recording to train and its last :data:`TIME_TEST_SHARE` to test,
with :data:`GUARD_S` seconds between them that no segment touches.

Mixing (whole-utterance SNR): with clean power P_s = mean(s^2) and segment power
P_n = mean(n^2), the noise is scaled by g = sqrt(P_s / (P_n 10^(SNR/10))), so
10 log10(P_s / mean((g n)^2)) = SNR exactly (up to float rounding).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neurons.common import MburstError

from experiments.data.features import SAMPLE_RATE
from experiments.data.audio import read_wav

#: File suffixes read as noise recordings; other files under a noise root are counted and skipped.
AUDIO_SUFFIXES = (".wav", ".flac")
#: Shortest usable recording (and part of a recording cut in time), in s: one GRID utterance.
MIN_RECORDING_S = 3.0
#: Gap between the train and test parts of a recording cut in time, in s.
GUARD_S = 2.0
#: Share of a recording cut in time (after the guard gap) given to test.
TIME_TEST_SHARE = 0.3
#: ``--noise-split`` choices and what each does.
NOISE_SPLITS = {
    "recording": "whole recordings dealt to train and test within each category with the seed "
                 "(a category with one recording is cut in time)",
    "time": "every recording cut in time: its start to train, its end to test, with a guard gap",
}
#: The two noise splits every clean utterance is mixed with.
NOISE_SPLIT_NAMES = ("train", "test")


@dataclass(frozen=True)
class Recording:
    """One noise recording: ``name`` is ``<category>/<file stem>`` (unique in its set); audio is 16 kHz float32."""

    name: str
    category: str
    path: str
    audio: np.ndarray


@dataclass(frozen=True)
class Part:
    """The samples ``start:stop`` of a recording assigned to one split."""

    recording: str
    category: str
    start: int
    stop: int


def _audio_files(folder: Path, recursive: bool) -> tuple[list[Path], list[Path]]:
    """(audio files, other files) in ``folder``, sorted; hidden files are ignored."""
    found = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return ([p for p in found if p.suffix.lower() in AUDIO_SUFFIXES],
            [p for p in found if p.suffix.lower() not in AUDIO_SUFFIXES])


def noise_files(root: Path) -> tuple[dict[str, list[Path]], list[tuple[str, str]]]:
    """The audio files of a noise root by category, and the problems found while listing it.

    Parameters
    ----------
    root : Path
        Audio files directly (category ``root.name``) and/or category subfolders (searched recursively).

    Returns
    -------
    categories : dict of str to list of Path
        Non-empty categories, sorted by name.
    ignored : list of (str, str)
        ``(path, reason)`` for each file that is not audio (README, notes ...).
    empty : list of (str, str)
        ``(path, reason)`` for each category folder without audio.

    Raises
    ------
    MburstError
        If ``root`` is not a folder or holds no audio file at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise MburstError(f"--noise-root {root}: folder not found")
    direct, other = _audio_files(root, recursive=False)
    categories = {root.name: direct} if direct else {}
    empty = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files, more = _audio_files(sub, recursive=True)
        other += more
        if files:
            categories[sub.name] = files
        else:
            empty.append((str(sub), f"{sub}: category folder holds no audio recording ({'/'.join(AUDIO_SUFFIXES)})"))
    if not categories:
        raise MburstError(f"--noise-root {root}: no {'/'.join(AUDIO_SUFFIXES)} files (empty noise folder)")
    ignored = [(str(p), f"{p}: not an audio file ({'/'.join(AUDIO_SUFFIXES)}), ignored") for p in sorted(other)]
    return dict(sorted(categories.items())), ignored, empty


def load_noise_set(root: Path, fail_or_skip: Callable[[str, str], None],
                   target: int = SAMPLE_RATE) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Read every recording of a noise root (:func:`noise_files`) at ``target`` Hz.

    Parameters
    ----------
    root : Path
    fail_or_skip : callable
        ``fail_or_skip(name, reason)`` raises or records a skip (an empty category folder, an unreadable,
        silent or too short recording).
    target : int
        Sample rate in Hz.

    Returns
    -------
    recordings : list of Recording
        Sorted by category, then name.
    ignored : list of (str, str)
        ``(path, reason)`` of the files that are not audio (never an error; for the caller to count).

    Raises
    ------
    MburstError
        As :func:`noise_files`, from ``fail_or_skip``, or when no recording is usable.
    """
    categories, ignored, empty = noise_files(root)
    for name, reason in empty:
        fail_or_skip(name, reason)
    recordings = []
    for category, files in categories.items():
        for path in files:
            try:
                audio = read_wav(path, target).astype(np.float32)
            except MburstError as err:
                fail_or_skip(str(path), str(err))
                continue
            if not np.any(audio):
                fail_or_skip(str(path), f"{path}: noise recording is all zeros")
            elif len(audio) < MIN_RECORDING_S * target:
                fail_or_skip(str(path), f"{path}: noise recording of {len(audio) / target:.2f} s is shorter than one "
                                        f"utterance ({MIN_RECORDING_S:g} s)")
            else:
                recordings.append(Recording(f"{category}/{path.stem}", category, str(path), audio))
    if not recordings:
        raise MburstError(f"--noise-root {root}: no usable noise recording")
    return recordings, ignored


def load_noise_folder(folder: Path, target: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Every recording of a noise root -> ``{'<category>/<stem>': mono float32 at target Hz}`` (any problem but a
    non-audio file fails).

    Parameters
    ----------
    folder : Path
    target : int

    Returns
    -------
    dict of str to ndarray of float32

    Raises
    ------
    MburstError
        As :func:`load_noise_set`, on the first problem.
    """
    def fail(name: str, reason: str) -> None:
        raise MburstError(reason)

    return {r.name: r.audio for r in load_noise_set(folder, fail, target)[0]}


def _time_cut(rec: Recording, fail_or_skip: Callable[[str, str], None]) -> list[tuple[str, Part]]:
    """A recording cut in time: [(train, start part), (test, end part)] with the guard gap between, or []."""
    n, guard, least = len(rec.audio), int(GUARD_S * SAMPLE_RATE), int(MIN_RECORDING_S * SAMPLE_RATE)
    test_len = int(round(TIME_TEST_SHARE * (n - guard)))
    train_stop = n - guard - test_len
    if min(test_len, train_stop) < least:
        fail_or_skip(rec.name, f"{rec.path}: {n / SAMPLE_RATE:.1f} s is too short to cut in time into train and test "
                               f"parts of at least {MIN_RECORDING_S:g} s with a {GUARD_S:g} s guard gap")
        return []
    return [("train", Part(rec.name, rec.category, 0, train_stop)), ("test", Part(rec.name, rec.category, n - test_len, n))]


def split_noise(recordings: list[Recording], mode: str, seed: int,
                fail_or_skip: Callable[[str, str], None]) -> tuple[dict[str, list[Part]], dict[str, str]]:
    """Assign every recording (or part of one) to the train or test split (see the module docstring).

    Parameters
    ----------
    recordings : list of Recording
    mode : {'recording', 'time'}
    seed : int
        Seeds the deal within each category (with crc32 of the category name).
    fail_or_skip : callable
        Called for a recording too short to cut in time.

    Returns
    -------
    parts : dict of str to list of Part
        ``{'train': [...], 'test': [...]}``.
    how : dict of str to str
        Per category: ``'recordings'`` (whole recordings dealt), ``'time (single recording)'`` or ``'time'``.

    Raises
    ------
    MburstError
        On an unknown mode, or when a split gets no recording.
    """
    if mode not in NOISE_SPLITS:
        raise MburstError(f"--noise-split {mode!r}: expected one of {', '.join(NOISE_SPLITS)}")
    by_cat: dict[str, list[Recording]] = {}
    for rec in recordings:
        by_cat.setdefault(rec.category, []).append(rec)
    parts: dict[str, list[Part]] = {name: [] for name in NOISE_SPLIT_NAMES}
    how = {}
    for category, recs in sorted(by_cat.items()):
        recs = sorted(recs, key=lambda r: r.name)
        if mode == "recording" and len(recs) > 1:
            order = np.random.default_rng([seed, zlib.crc32(category.encode())]).permutation(len(recs))
            for k, i in enumerate(order):
                parts[NOISE_SPLIT_NAMES[k % 2]].append(Part(recs[i].name, category, 0, len(recs[i].audio)))
            how[category] = "recordings"
        else:
            for rec in recs:
                for split, part in _time_cut(rec, fail_or_skip):
                    parts[split].append(part)
            how[category] = "time" if mode == "time" else "time (single recording)"
    for split, chosen in parts.items():
        if not chosen:
            raise MburstError(f"noise split '{mode}': no recording left for the {split} split")
    return parts, how


def segment(noise: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``n`` samples of ``noise`` from ``offset``, wrapping around (for files shorter than ``n``).

    Parameters
    ----------
    noise : ndarray, shape (m,)
    offset : int
    n : int

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    return noise[(offset + np.arange(n)) % len(noise)].astype(np.float64)


def draw_segment(rng: np.random.Generator, bank: dict[str, np.ndarray], parts: list[Part], n: int) -> tuple[str, int]:
    """A random, non-silent ``n``-sample segment inside one of ``parts``: a category uniformly, then one of its
    parts that can hold ``n`` samples uniformly, then an offset uniformly.

    Parameters
    ----------
    rng : numpy.random.Generator
    bank : dict of str to ndarray
        Recording name -> samples.
    parts : list of Part
        The split's parts.
    n : int
        Segment length in samples.

    Returns
    -------
    (str, int)
        Recording name and start offset (the segment lies within its part, never wrapping).

    Raises
    ------
    MburstError
        If no part holds ``n`` samples, or 20 draws found only silence.
    """
    fits: dict[str, list[Part]] = {}
    for p in parts:
        if p.stop - p.start >= n:
            fits.setdefault(p.category, []).append(p)
    if not fits:
        raise MburstError(f"no noise recording of this split holds a {n / SAMPLE_RATE:.2f} s utterance")
    categories = sorted(fits)
    for _ in range(20):
        options = fits[categories[rng.integers(len(categories))]]
        part = options[rng.integers(len(options))]
        offset = int(rng.integers(part.start, part.stop - n + 1))
        if np.mean(segment(bank[part.recording], offset, n) ** 2) > 1e-12:
            return part.recording, offset
    raise MburstError(f"noise ({', '.join(sorted(p.recording for p in parts))}): could not find a non-silent "
                      f"{n}-sample segment")


def snr_gain(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """Gain g with 10 log10(mean(clean^2) / mean((g noise)^2)) = ``snr_db``."""
    ps, pn = float(np.mean(np.square(clean))), float(np.mean(np.square(noise)))
    if ps <= 0:
        raise MburstError("clean utterance is silent: cannot mix at an SNR")
    if pn <= 0:
        raise MburstError("noise segment is silent: cannot mix at an SNR")
    return float(np.sqrt(ps / (pn * 10 ** (snr_db / 10))))


def mixture_snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """Whole-utterance SNR 10 log10(sum clean^2 / sum noise^2) in dB."""
    return float(10 * np.log10(np.sum(np.square(clean)) / np.sum(np.square(noise))))
