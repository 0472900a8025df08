"""Audio input: wav files and the audio tracks of videos, read whole or as a stream of mono chunks.

Every source is averaged to mono and brought to 16 kHz by the polyphase filter of
:mod:`experiments.data.resample` (whole, or chunk by chunk with the same samples); integer PCM is
scaled to [-1, 1) full scale (divided by 2^(bits-1)). Sources below
:data:`~experiments.data.resample.MIN_SOURCE_RATE` (12,862 Hz) are refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from neurons.common import MburstError

from experiments.data.features import SAMPLE_RATE
from experiments.data.resample import output_length, resample_to, resampled

#: Samples read from a wav file per block when streaming.
BLOCK = 1 << 16


# ---------------------------------------------------------------- wav files

def load_wav(path: Path, source: str | None = None) -> tuple[np.ndarray, int]:
    """A wav file -> (float64 samples of shape (n, channels) in [-1, 1] full scale, rate in Hz).

    Parameters
    ----------
    path : Path
    source : str, optional
        Start of the error messages (default: the path).

    Returns
    -------
    data : ndarray of float64, shape (n, channels)
    rate : int

    Raises
    ------
    MburstError
        When the file is missing, unreadable or has no samples.
    """
    import soundfile as sf

    path = Path(path)
    source = str(path) if source is None else source
    info = wav_info(path, source)
    try:
        data, _ = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as err:  # noqa: BLE001 - a header that reads but a body that does not
        raise MburstError(f"{source}: cannot read wav ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    return data, info.samplerate


def wav_info(path: Path, source: str | None = None):
    """The header of a wav file (``soundfile.info``: ``samplerate``, ``channels``, ``frames``, ``subtype``).

    Parameters
    ----------
    path : Path
    source : str, optional
        Start of the error messages (default: the path).

    Returns
    -------
    soundfile._SoundFileInfo

    Raises
    ------
    MburstError
        When the file is missing, empty, unreadable or has no samples.
    """
    import soundfile as sf

    path = Path(path)
    source = str(path) if source is None else source
    if not path.is_file():
        raise MburstError(f"{source}: wav file not found")
    if path.stat().st_size == 0:
        raise MburstError(f"{source}: empty file")
    try:
        info = sf.info(str(path))
    except Exception as err:  # noqa: BLE001 - libsndfile reports corrupt files in many ways
        raise MburstError(f"{source}: cannot read wav ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if info.frames == 0:
        raise MburstError(f"{source}: no samples in the wav file")
    return info


def wav_chunks(path: Path, source: str | None = None, block: int = BLOCK) -> Iterator[np.ndarray]:
    """The samples of a wav file, mono (channels averaged), float64 full scale, at the file's rate.

    Parameters
    ----------
    path : Path
    source : str, optional
        Start of the error messages (default: the path).
    block : int
        Samples per chunk.

    Yields
    ------
    ndarray of float64, shape (<= block,)

    Raises
    ------
    MburstError
        As :func:`wav_info`, or when a chunk holds NaN or inf samples.
    """
    import soundfile as sf

    source = str(path) if source is None else source
    wav_info(path, source)
    for data in sf.blocks(str(path), blocksize=block, dtype="float64", always_2d=True):
        mono = data.mean(axis=1)
        if not np.all(np.isfinite(mono)):
            raise MburstError(f"{source}: contains NaN or inf samples")
        yield mono


def read_wav(path: Path, target: int = SAMPLE_RATE) -> np.ndarray:
    """A wav file at any rate >= :data:`~experiments.data.resample.MIN_SOURCE_RATE` -> mono float64 at ``target`` Hz, in [-1, 1] full scale.

    Parameters
    ----------
    path : Path
    target : int
        Output rate in Hz.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    MburstError
        When the file is missing, unreadable, empty or below :data:`~experiments.data.resample.MIN_SOURCE_RATE`.
    """
    data, rate = load_wav(path)
    return resample_to(data.mean(axis=1), rate, target, source=str(path))


# ---------------------------------------------------------------- audio tracks of videos

def _to_mono(frame) -> np.ndarray:
    """An ``av.AudioFrame`` -> mono float64 samples, integer formats scaled to full scale."""
    arr = frame.to_ndarray()
    if frame.format.is_planar:
        mono = arr.mean(axis=0)
    else:  # interleaved: (1, samples * channels)
        mono = arr.reshape(-1, len(frame.layout.channels)).mean(axis=1)
    mono = mono.astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer):
        mono /= float(np.iinfo(arr.dtype).max) + 1.0
    return mono


class TrackAudio:
    """The audio track of a video file: its rate, first presentation time and a stream of its samples.

    Parameters
    ----------
    path : Path
        The video file.

    Attributes
    ----------
    rate : int
        Sample rate of the track in Hz.
    start : float
        Presentation time of its first sample in s, on the container's clock (the origin of the
        lip frames' audio clock, :mod:`experiments.data.video`).

    Raises
    ------
    MburstError
        When the file has no audio track, no samples, or cannot be decoded.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        frames = self._frames()
        first = next(frames, None)
        frames.close()
        if first is None:
            raise MburstError(f"{self.path}: audio track has no samples")
        self.rate = int(first.sample_rate)
        self.start = float(first.time) if first.time is not None else 0.0

    def _frames(self):
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.audio:
                    raise MburstError(f"{self.path}: video has no audio track and no separate wav was found")
                yield from container.decode(audio=0)
        except MburstError:
            raise
        except Exception as err:  # noqa: BLE001 - FFmpeg raises many error types on corrupt input
            raise MburstError(f"{self.path}: cannot decode audio track ({type(err).__name__}: {err})") from None

    def chunks(self, seconds: float = 1.0) -> Iterator[np.ndarray]:
        """Mono float64 samples at :attr:`rate`, about ``seconds`` per chunk.

        Parameters
        ----------
        seconds : float

        Yields
        ------
        ndarray of float64
        """
        want, parts, held = int(seconds * self.rate), [], 0
        for frame in self._frames():
            parts.append(_to_mono(frame))
            held += parts[-1].size
            if held >= want:
                yield np.concatenate(parts)
                parts, held = [], 0
        if parts:
            yield np.concatenate(parts)

    def stream(self, target: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
        """The track resampled to ``target`` Hz, chunk by chunk (:func:`resampled`).

        Parameters
        ----------
        target : int

        Yields
        ------
        ndarray of float64

        Raises
        ------
        MburstError
            When the track's rate is below :data:`~experiments.data.resample.MIN_SOURCE_RATE`.
        """
        return resampled(self.chunks(), self.rate, target, str(self.path))

    def read(self, target: int = SAMPLE_RATE) -> np.ndarray:
        """The whole track at ``target`` Hz (held in memory; :meth:`stream` for long recordings).

        Parameters
        ----------
        target : int

        Returns
        -------
        ndarray of float64, shape (n,)

        Raises
        ------
        MburstError
            When the track's rate is below :data:`~experiments.data.resample.MIN_SOURCE_RATE`.
        """
        return resample_to(np.concatenate(list(self.chunks())), self.rate, target, source=str(self.path))

    def n_samples(self, target: int = SAMPLE_RATE) -> int:
        """Samples the track gives at ``target`` Hz (decodes it once).

        Parameters
        ----------
        target : int

        Returns
        -------
        int
        """
        return output_length(sum(c.size for c in self.chunks()), self.rate, target)


def read_video_audio(path: Path, target: int = SAMPLE_RATE) -> np.ndarray:
    """The audio track of a video file -> mono float64 at ``target`` Hz.

    Parameters
    ----------
    path : Path
    target : int

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    MburstError
        As :class:`TrackAudio`, or when its rate is below :data:`~experiments.data.resample.MIN_SOURCE_RATE`.
    """
    return TrackAudio(path).read(target)
