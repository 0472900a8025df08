"""Enhancing a recording (a video of the speaker and its audio, or a separate wav) file to file, in memory
that does not grow with its length.

:func:`open_recording` checks the inputs and makes the lip track (pass 1 over the video,
:func:`experiments.data.lip_stream.plan_lips`: lips on the audio's clock at any frame rate);
:func:`enhance_recording` then decodes the audio (:mod:`experiments.data.audio`: wav blocks or the video's
own track, resampled chunk by chunk) and the lip crops (pass 2) as streams, feeds them to a
:class:`~experiments.speech.streaming.StreamingEnhancer` one hop (causal streaming) or ``block`` hops
(offline, one model call per block) at a time, and writes the enhanced samples to the wav as they come
(16-bit PCM, replaced atomically at the end). The output equals :func:`experiments.speech.enhance.enhance`
on the whole signal (up to float rounding).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Iterator

import numpy as np

from neurons.common import MburstError

from experiments.data.features import HOP, SAMPLE_RATE
from experiments.data.lip_stream import LipPlan
from experiments.data.frames import Stats
from experiments.speech.masking import MaskFn
from experiments.speech.resynthesis import DEFAULT_FLOOR
from experiments.speech.streaming import FrameTimes, StreamingEnhancer


@dataclass
class Recording:
    """Checked inputs of :func:`enhance_recording` and their lip track (:func:`open_recording`).

    Attributes
    ----------
    video : Path
    audio : Path or None
        A separate wav; None: the video's own audio track.
    audio_rate : int
        Sample rate of the audio source in Hz (resampled to 16 kHz as it streams).
    n_samples : int
        Length of the 16 kHz audio.
    lips : LipPlan
    seconds : float
        Time taken by the checks and pass 1 (decoding and face detection) in s.
    """

    video: Path
    audio: Path | None
    audio_rate: int
    n_samples: int
    lips: LipPlan
    seconds: float

    @property
    def duration(self) -> float:
        """Length of the audio in s."""
        return self.n_samples / SAMPLE_RATE

    def audio_chunks(self) -> Iterator[np.ndarray]:
        """The 16 kHz mono audio as a stream of chunks (:mod:`experiments.data.audio`).

        Yields
        ------
        ndarray of float64

        Raises
        ------
        MburstError
            On NaN or inf samples in a wav.
        """
        from experiments.data.audio import TrackAudio, wav_chunks
        from experiments.data.resample import resampled

        if self.audio is None:
            return TrackAudio(self.video).stream()
        return resampled(wav_chunks(self.audio, f"--audio {self.audio}"), self.audio_rate, SAMPLE_RATE,
                         f"--audio {self.audio}")


def open_recording(video: Path, audio: Path | None = None, *, resample: bool = False, downmix: bool = False,
                   every: int = 10, scale: float = 0.5, progress: bool | None = None) -> Recording:
    """Check the inputs of an enhancement and track the lips (pass 1).

    Parameters
    ----------
    video : Path
        The speaker's face, any container and frame rate FFmpeg reads (at least
        :data:`experiments.data.video.MIN_FPS`, with presentation timestamps).
    audio : Path, optional
        A noisy wav, starting with the video; default: the video's own audio track (averaged to mono,
        resampled to 16 kHz).
    resample : bool
        Resample a wav that is not at 16 kHz instead of refusing it.
    downmix : bool
        Average the channels of a multi-channel wav instead of refusing it.
    every, scale
        Face detection settings (:func:`experiments.data.lip_stream.plan_lips`).
    progress : bool, optional
        A progress bar for the lip tracking (default: on a terminal only).

    Returns
    -------
    Recording

    Raises
    ------
    MburstError
        One line naming --audio or --video: a missing, empty or unreadable file; a wav at another
        rate or with several channels (without the option that accepts them), or below
        :data:`experiments.data.audio.MIN_SOURCE_RATE`; a video without frame timestamps, below
        the minimum frame rate, shorter than the audio, or without a face.
    """
    from experiments.data.audio import TrackAudio, wav_info
    from experiments.data.resample import check_source_rate, output_length
    from experiments.data.lip_stream import plan_lips

    start = perf_counter()
    video = Path(video)
    if not video.is_file():
        raise MburstError(f"--video {video}: file not found")
    if video.stat().st_size == 0:
        raise MburstError(f"--video {video}: empty file")
    if audio is not None:
        audio = Path(audio)
        name = f"--audio {audio}"
        info = wav_info(audio, name)
        if info.channels > 1 and not downmix:
            raise MburstError(f"{name}: {info.channels} channels, but enhancement needs mono (pass --downmix to average them)")
        if info.samplerate != SAMPLE_RATE and not resample:
            raise MburstError(f"{name}: sample rate {info.samplerate} Hz, but the model needs {SAMPLE_RATE} Hz "
                              "(pass --resample to convert)")
        check_source_rate(info.samplerate, name)
        rate, n_samples, origin = info.samplerate, output_length(info.frames, info.samplerate), None
    else:
        track = TrackAudio(video)
        check_source_rate(track.rate, f"--video {video}")
        rate, n_samples, origin = track.rate, track.n_samples(), track.start
    lips = plan_lips(video, n_samples, origin, every=every, scale=scale, source=f"--video {video}", progress=progress)
    return Recording(video, audio, rate, n_samples, lips, perf_counter() - start)


@dataclass
class EnhancedRecording:
    """What :func:`enhance_recording` did.

    Attributes
    ----------
    samples : int
        Enhanced samples written (16 kHz).
    clipped : int
        Samples above full scale, clipped in the wav.
    seconds : float
        Time of pass 2 (decoding, crops, model, resynthesis, writing) in s.
    times : FrameTimes
        Compute time per frame of the enhancer.
    """

    samples: int
    clipped: int
    seconds: float
    times: FrameTimes


def _take(crops: Iterator[np.ndarray], k: int, source: str) -> np.ndarray:
    out = [crop for _, crop in zip(range(k), crops)]
    if len(out) < k:
        raise MburstError(f"{source}: ran out of lip frames on the second pass")
    return np.stack(out)


def enhance_recording(rec: Recording, out: Path, mask_fn: MaskFn, stats: Stats | None = None, *, block: int = 64,
                      mask: str = "soft", upper: str = "attenuate", floor: float | str = DEFAULT_FLOOR,
                      progress: bool = True) -> EnhancedRecording:
    """Enhance a recording into a 16-bit 16 kHz wav, streaming every input and the output (module doc).

    Parameters
    ----------
    rec : Recording
        From :func:`open_recording`.
    out : Path
        The wav to write (replaced atomically when complete).
    mask_fn : MaskFn
    stats : Stats, optional
        The model's training statistics.
    block : int
        Hops per model call: 1 for causal streaming, more for offline enhancement.
    mask, upper, floor
        As :func:`experiments.speech.enhance.enhance`.
    progress : bool
        A progress bar on a terminal, one summary line elsewhere (:class:`experiments.progress.Bar`); False: neither.

    Returns
    -------
    EnhancedRecording

    Raises
    ------
    MburstError
        On bad options or a bad sample in the inputs (the wav is then not written).
    """
    import soundfile as sf

    from neurons.common import atomic_path

    from experiments.progress import Bar

    if block < 1:
        raise MburstError(f"block: must be >= 1, got {block}")
    start = perf_counter()
    enhancer = StreamingEnhancer(mask_fn, stats, mask=mask, upper=upper, floor=floor)
    crops = rec.lips.crops()
    written = clipped = 0
    pending = np.zeros(0)
    size = block * HOP
    with atomic_path(out) as tmp, sf.SoundFile(str(tmp), "w", SAMPLE_RATE, 1, "PCM_16", format="WAV") as wav, \
            Bar(total=rec.n_samples, unit="sample", unit_scale=True, desc="enhance", show=progress) as bar:
        def write(samples: np.ndarray) -> None:
            nonlocal written, clipped
            clipped += int(np.count_nonzero(np.abs(samples) > 1.0))
            wav.write(np.clip(samples, -1.0, 1.0))
            written += samples.size
            bar.update(samples.size)

        for chunk in rec.audio_chunks():
            pending = np.concatenate([pending, chunk])
            while pending.size >= size:
                write(enhancer.push_hops(pending[:size], _take(crops, block, rec.lips.source)))
                pending = pending[size:]
        whole = pending.size // HOP
        if whole:
            write(enhancer.push_hops(pending[:whole * HOP], _take(crops, whole, rec.lips.source)))
        tail = pending[whole * HOP:]
        write(enhancer.finish(tail, _take(crops, 1, rec.lips.source)[0]) if tail.size else enhancer.finish())
        crops.close()
        if written != rec.n_samples:
            raise MburstError(f"{rec.audio or rec.video}: the audio gave {written} samples on the second pass, "
                              f"{rec.n_samples} on the first")
    return EnhancedRecording(written, clipped, perf_counter() - start, enhancer.times)
