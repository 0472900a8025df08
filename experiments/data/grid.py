"""GRID corpus reader: video frames, 16 kHz mono audio and word alignments.

Layout (Cooke et al. 2006, JASA 120(5)): ``<root>/sN/<stem>.mpg`` (video at
:data:`experiments.data.features.VIDEO_FPS` = 25 fps,
the "normal quality" release carries MP2 audio inline), optional
``<root>/audio/sN/<stem>.wav`` (the separate 50 kHz release, preferred when
present) and ``<root>/alignments/sN/<stem>.align`` (lines ``start end word`` in
units of 1/25000 s). Audio is resampled to 16 kHz with a polyphase filter
(``scipy.signal.resample_poly``); stereo is averaged to mono.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from neurons.common import MburstError

from experiments.data.features import N_BINS, SAMPLE_RATE, WIN

ALIGN_UNITS_PER_S = 25_000
# The modelled band reaches bin N_BINS (N_BINS * 16000 / WIN Hz, about 6.4 kHz);
# a source sampled below twice that cannot supply it.
MIN_SOURCE_RATE = int(np.ceil(2 * N_BINS * SAMPLE_RATE / WIN))


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


def resample_to(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE, *, source: str = "audio") -> np.ndarray:
    """Mono float64 ``audio`` at ``rate`` Hz -> ``target`` Hz (polyphase, scipy.signal.resample_poly).

    Raises :class:`MburstError` naming ``source`` when ``rate`` is below
    :data:`MIN_SOURCE_RATE` (the modelled 500 bins would be empty above its Nyquist).
    """
    from scipy.signal import resample_poly

    if rate < MIN_SOURCE_RATE:
        raise MburstError(f"{source}: sample rate {rate} Hz is below the {MIN_SOURCE_RATE} Hz needed for the modelled {N_BINS} bins")
    if rate == target:
        return np.asarray(audio, dtype=np.float64)
    frac = Fraction(target, int(rate))
    up, down = frac.numerator, frac.denominator
    return resample_poly(np.asarray(audio, dtype=np.float64), up, down, window=_fir(up, down))


@lru_cache(maxsize=8)
def _fir(up: int, down: int) -> np.ndarray:
    """resample_poly's own default low-pass (kaiser 5.0, 10 x max(up, down) taps each side), designed once.

    The design costs more than the filtering for 44.1 -> 16 kHz (441/160).
    """
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


def load_wav(path: Path, source: str | None = None) -> tuple[np.ndarray, int]:
    """A wav file -> (float64 samples of shape (n, channels) in [-1, 1] full scale, rate in Hz).

    A one-line :class:`MburstError` starting with ``source`` (default: the path) when the
    file is missing, unreadable or has no samples.
    """
    import soundfile as sf

    path = Path(path)
    source = str(path) if source is None else source
    if not path.is_file():
        raise MburstError(f"{source}: wav file not found")
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as err:  # noqa: BLE001 - libsndfile reports corrupt files in many ways
        raise MburstError(f"{source}: cannot read wav ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if data.shape[0] == 0:
        raise MburstError(f"{source}: no samples in the wav file")
    return data, rate


def read_wav(path: Path, target: int = SAMPLE_RATE) -> np.ndarray:
    """A wav file at any rate -> mono float64 at ``target`` Hz, in [-1, 1] full scale."""
    data, rate = load_wav(path)
    return resample_to(data.mean(axis=1), rate, target, source=str(path))


def _luma(frame) -> np.ndarray:
    """The frame's luma as uint8 [H, W]: the Y plane itself for YUV/gray formats (no colour
    conversion, ~10x cheaper than ``to_ndarray(format='gray')``), else a conversion to gray."""
    luma = frame.format.components[0]
    if frame.format.is_planar and luma.is_luma and luma.bits == 8 and luma.plane == 0:
        plane = frame.planes[0]
        return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:frame.height, :frame.width].copy()
    return frame.to_ndarray(format="gray")


def read_video(path: Path) -> np.ndarray:
    """All frames of a video as gray uint8, shape (frames, H, W) (PyAV decode; luma plane)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MburstError(f"{path}: video file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MburstError(f"{path}: no video stream")
            frames = [_luma(f) for f in container.decode(video=0)]
    except MburstError:
        raise
    except Exception as err:  # noqa: BLE001 - FFmpeg raises many error types on corrupt input
        raise MburstError(f"{path}: cannot decode video ({type(err).__name__}: {err})") from None
    if not frames:
        raise MburstError(f"{path}: video has no decodable frames")
    return np.stack(frames)


def read_video_audio(path: Path, target: int = SAMPLE_RATE) -> np.ndarray:
    """The audio track of a video file -> mono float64 at ``target`` Hz."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MburstError(f"{path}: video has no audio track and no separate wav was found")
            stream = container.streams.audio[0]
            rate = stream.rate
            chunks = []
            for frame in container.decode(audio=0):
                arr = frame.to_ndarray()
                if frame.format.is_planar:
                    mono = arr.mean(axis=0)
                else:  # interleaved: (1, samples * channels)
                    mono = arr.reshape(-1, len(frame.layout.channels)).mean(axis=1)
                chunks.append(mono)
    except MburstError:
        raise
    except Exception as err:  # noqa: BLE001
        raise MburstError(f"{path}: cannot decode audio track ({type(err).__name__}: {err})") from None
    if not chunks:
        raise MburstError(f"{path}: audio track has no samples")
    audio = np.concatenate(chunks).astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer):
        audio /= float(np.iinfo(arr.dtype).max) + 1.0
    return resample_to(audio, rate, target, source=str(path))


def read_audio(item: GridItem, target: int = SAMPLE_RATE) -> np.ndarray:
    """The utterance's audio: the separate wav when present, else the mpg's own track."""
    return read_wav(item.wav, target) if item.wav is not None else read_video_audio(item.mpg, target)


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
