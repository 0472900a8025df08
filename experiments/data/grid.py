"""GRID corpus reader: video frames, 16 kHz mono audio and word alignments.

Layout (Cooke et al. 2006, JASA 120(5)): ``<root>/sN/<stem>.mpg`` (GRID's video is
25 fps; any rate of at least :data:`experiments.data.video.MIN_FPS` is read on the audio's clock,
:mod:`experiments.data.video`; the "normal quality" release carries MP2 audio inline), optional
``<root>/audio/sN/<stem>.wav`` (the separate 50 kHz release, preferred when
present) and ``<root>/alignments/sN/<stem>.align`` (lines ``start end word`` in
units of 1/25000 s). Audio is resampled to 16 kHz with a polyphase filter
(:mod:`experiments.data.audio`); stereo is averaged to mono.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurons.common import MburstError

from experiments.data.audio import TrackAudio, read_wav
from experiments.data.features import SAMPLE_RATE
# read_video is defined in experiments.data.video; importable here for bench/data_pipeline.py
from experiments.data.video import read_video  # noqa: F401

ALIGN_UNITS_PER_S = 25_000


@dataclass(frozen=True)
class Word:
    """One alignment entry; times in seconds."""

    start: float
    end: float
    word: str


@dataclass(frozen=True)
class GridItem:
    """The files of one GRID utterance (``wav``/``align`` are ``None`` when absent)."""

    speaker: str
    stem: str
    mpg: Path
    wav: Path | None
    align: Path | None

    @property
    def clean_id(self) -> str:
        return f"{self.speaker}/{self.stem}"


def read_audio_clocked(item: GridItem, target: int = SAMPLE_RATE) -> tuple[np.ndarray, float | None]:
    """The utterance's audio and the time of its first sample on the video's clock.

    Parameters
    ----------
    item : GridItem
    target : int
        Output rate in Hz.

    Returns
    -------
    audio : ndarray of float64, shape (n,)
        Mono at ``target`` Hz: the separate wav when present, else the mpg's own track.
    origin : float or None
        The first presentation time of the mpg's audio track in s; None for a separate wav (taken
        to start with the video, :mod:`experiments.data.video`).

    Raises
    ------
    MburstError
        On a missing or unreadable source, or one sampled below ``MIN_SOURCE_RATE``.
    """
    if item.wav is not None:
        return read_wav(item.wav, target), None
    track = TrackAudio(item.mpg)
    return track.read(target), track.start


def read_audio(item: GridItem, target: int = SAMPLE_RATE) -> np.ndarray:
    """The utterance's audio: the separate wav when present, else the mpg's own track (mono, ``target`` Hz).

    Parameters
    ----------
    item : GridItem
    target : int

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    MburstError
        As :func:`read_audio_clocked`.
    """
    return read_audio_clocked(item, target)[0]


def parse_alignment(path: Path) -> list[Word]:
    """Parse a GRID ``.align`` file (``start end word`` per line, 1/25000 s units)."""
    path = Path(path)
    if not path.is_file():
        raise MburstError(f"{path}: alignment file not found")
    words = []
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 3:
                raise ValueError
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise MburstError(f"{path}:{lineno}: expected 'start end word', got {line.strip()!r}") from None
        if end < start:
            raise MburstError(f"{path}:{lineno}: end {end} before start {start}")
        words.append(Word(start / ALIGN_UNITS_PER_S, end / ALIGN_UNITS_PER_S, parts[2]))
    if not words:
        raise MburstError(f"{path}: empty alignment")
    return words


def list_items(root: Path, speakers: tuple[str, ...] | None = None) -> tuple[list[GridItem], list[tuple[str, str]]]:
    """The utterances under a GRID root, sorted by speaker then stem.

    Returns ``(items, missing)``: ``missing`` lists ``(name, reason)`` for an
    alignment or wav without its mpg (a missing video), for the caller to fail
    on or skip.
    """
    root = Path(root)
    if not root.is_dir():
        raise MburstError(f"--data-root {root}: folder not found")
    if speakers:
        for spk in speakers:
            if not (root / spk).is_dir() and not (root / "alignments" / spk).is_dir():
                raise MburstError(f"{root / spk}: speaker folder not found")
        spk_list = list(speakers)
    else:
        spk_list = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[:1] == "s" and p.name[1:].isdigit())
    if not spk_list:
        raise MburstError(f"--data-root {root}: no speaker folders sN/ (GRID layout: sN/*.mpg, alignments/sN/*.align)")
    items, missing = [], []
    for spk in spk_list:
        mpgs = {p.stem: p for p in (root / spk).glob("*.mpg")}
        aligns = {p.stem: p for p in (root / "alignments" / spk).glob("*.align")}
        wavs = {p.stem: p for p in (root / "audio" / spk).glob("*.wav")}
        for stem in sorted((set(aligns) | set(wavs)) - set(mpgs)):
            missing.append((f"{spk}/{stem}", f"{root / spk / (stem + '.mpg')}: video file not found"))
        for stem in sorted(mpgs):
            items.append(GridItem(spk, stem, mpgs[stem], wavs.get(stem), aligns.get(stem)))
    if not items and not missing:
        raise MburstError(f"--data-root {root}: no .mpg files under {', '.join(spk_list)}")
    return items, missing
