"""Video input on the audio's clock: each 40 ms audio frame gets the video frame on display at its centre.

Audio frame t covers samples [640 t - 302, 640 t + 942) and is centred on c_t = origin + (t + 1/2) 40 ms
(:mod:`experiments.data.features`). Its lip frame is the video frame on display at c_t, the last one
whose presentation time (PyAV ``frame.time``: pts x time base) is <= c_t (+ 1 us for timestamps rounded
to the container's clock); before the first frame, the first. ``origin`` is the time of the first audio
sample: the first presentation time of the video's own audio track, or the first video frame's when the
audio comes from a separate wav (assumed to start with the video). The video covers audio frame t while
c_t is before the end of its last frame (its time plus the last frame interval).

At 25 fps with frames at k x 40 ms this picks frame t for audio frame t (the GRID corpus, unchanged); at
30, 50, 60 fps or a variable rate it picks, by time, the frame shown during that audio frame, so lip
frame t always shows time c_t (within one source-frame interval) instead of t source frames in. A 25 fps
video re-timed by FFmpeg (``-r``, the fps filter: each new frame shows the source frame nearest its time) to
29.97, 30, 50 or 60 fps gives back exactly the source frames at the audio frames (tests/test_inputs_video.py). Below
:data:`MIN_FPS` mean frames per second, or when a frame carries no presentation time (raw .h264
streams), a one-line :class:`MburstError` names the file and its rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from neurons.common import MburstError

from experiments.data.features import HOP, SAMPLE_RATE

MIN_FPS = 15.0
#: Frame rates a measured constant rate is reported as when its timestamps cannot tell them apart (NTSC: x/1.001).
STANDARD_RATES = (24_000 / 1001, 24.0, 25.0, 30_000 / 1001, 30.0, 48.0, 50.0, 60_000 / 1001, 60.0, 90.0, 100.0,
                  120_000 / 1001, 120.0, 240.0)
#: Presentation times are compared with this tolerance (s): containers round them to their clock.
TIME_EPS = 1e-6
FRAME_S = HOP / SAMPLE_RATE  # 0.04 s: one audio frame


def luma(frame) -> np.ndarray:
    """A decoded ``av.VideoFrame`` -> its luma as uint8 [H, W].

    The Y plane itself for 8-bit planar YUV/gray formats (no colour conversion, ~10x cheaper than
    ``to_ndarray(format='gray')``), else a conversion to gray.

    Parameters
    ----------
    frame : av.VideoFrame

    Returns
    -------
    ndarray of uint8, shape (H, W)
    """
    comp = frame.format.components[0]
    if frame.format.is_planar and comp.is_luma and comp.bits == 8 and comp.plane == 0:
        plane = frame.planes[0]
        return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:frame.height, :frame.width].copy()
    return frame.to_ndarray(format="gray")


@dataclass
class FrameRate:
    """The measured frame rate of a video, from its presentation times (grows as frames are seen).

    Attributes
    ----------
    n_frames : int
    first, last : float
        First and last presentation times in s.
    min_gap, max_gap : float
        Shortest and longest interval between consecutive frames in s.
    tick : float
        The time base of the stream in s (timestamp resolution).
    """

    n_frames: int = 0
    first: float = float("nan")
    last: float = float("nan")
    min_gap: float = float("inf")
    max_gap: float = 0.0
    tick: float = 0.0

    def add(self, time: float) -> None:
        """Count one more frame presented at ``time`` s (increasing)."""
        if self.n_frames:
            gap = time - self.last
            self.min_gap, self.max_gap = min(self.min_gap, gap), max(self.max_gap, gap)
        else:
            self.first = time
        self.last = time
        self.n_frames += 1

    @property
    def fps(self) -> float:
        """Mean frames per second, (n - 1) / (last - first); NaN below two frames.

        A constant rate within the timestamps' resolution (one tick over the clip) of a standard rate
        (:data:`STANDARD_RATES`) is that rate: 60 fps in Matroska's 1 ms ticks measures 60.006 over 3 s.
        """
        if self.n_frames < 2:
            return float("nan")
        interval = (self.last - self.first) / (self.n_frames - 1)
        if self.constant:
            off, rate = min((abs(interval - 1 / rate), rate) for rate in STANDARD_RATES)
            if off <= (self.tick + TIME_EPS) / (self.n_frames - 1):
                return rate
        return 1 / interval

    @property
    def constant(self) -> bool:
        """Whether every interval is the same, to one tick of the time base (or 0.1 %)."""
        return self.n_frames > 1 and self.max_gap - self.min_gap <= max(1.01 * self.tick, 1e-3 * self.max_gap) + TIME_EPS

    @property
    def last_interval(self) -> float:
        """How long the last frame is shown: the mean interval for a constant rate, else the longest one."""
        return 1.0 / self.fps if self.constant else self.max_gap

    @property
    def end(self) -> float:
        """When the last frame stops being shown, in s."""
        return self.last + self.last_interval

    def describe(self) -> str:
        """E.g. ``'25.00 fps'`` or ``'variable rate, mean 29.41 fps (24.0-33.3)'``."""
        if self.n_frames < 2:
            return f"{self.n_frames} frame(s), no rate"
        if self.constant:
            return f"{self.fps:.2f} fps"
        return f"variable rate, mean {self.fps:.2f} fps ({1 / self.max_gap:.1f}-{1 / self.min_gap:.1f})"

    def to_dict(self) -> dict:
        """``{"fps", "constant", "describe", "n_frames"}`` (JSON)."""
        return {"fps": float(self.fps), "constant": bool(self.constant), "describe": self.describe(),
                "n_frames": int(self.n_frames)}


def check_rate(rate: FrameRate, source: str) -> None:
    """Refuse a video too slow for one lip frame per 40 ms audio frame.

    Parameters
    ----------
    rate : FrameRate
        Of the whole video.
    source : str
        Name of the file for the message.

    Raises
    ------
    MburstError
        Below two frames or :data:`MIN_FPS` mean frames per second.
    """
    if rate.n_frames < 2:
        raise MburstError(f"{source}: {rate.n_frames} video frame(s): no frame rate (need at least {MIN_FPS:g} fps)")
    if rate.fps < MIN_FPS:
        raise MburstError(f"{source}: video at {rate.describe()} is below the {MIN_FPS:g} fps minimum for lip frames "
                          f"every {1000 * FRAME_S:.0f} ms")


def decode_frames(path: Path, rate: FrameRate | None = None, source: str | None = None) -> Iterator[tuple[float, object]]:
    """The frames of a video in presentation order with their presentation times.

    Parameters
    ----------
    path : Path
    rate : FrameRate, optional
        Updated with every frame's time.
    source : str, optional
        Start of the error messages (default: the path).

    Yields
    ------
    time : float
        Presentation time in s (pts x time base).
    frame : av.VideoFrame

    Raises
    ------
    MburstError
        When the file is missing, has no video stream or no decodable frame, cannot be decoded, has a
        frame without a presentation time, or times that do not increase.
    """
    import av

    path = Path(path)
    source = str(path) if source is None else source
    if not path.is_file():
        raise MburstError(f"{source}: video file not found")
    rate = FrameRate() if rate is None else rate
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MburstError(f"{source}: no video stream")
            stream = container.streams.video[0]
            rate.tick = float(stream.time_base) if stream.time_base else 0.0
            for frame in container.decode(video=0):
                if frame.pts is None or frame.time is None:
                    nominal = f"{float(stream.average_rate):.2f} fps" if stream.average_rate else "unknown rate"
                    raise MburstError(f"{source}: video frame {rate.n_frames} has no presentation timestamp "
                                      f"(nominal {nominal}; a raw stream such as .h264? put it in a container, "
                                      "e.g. `ffmpeg -r FPS -i in.h264 -c copy out.mp4`)")
                time = float(frame.time)
                if rate.n_frames and time <= rate.last:
                    raise MburstError(f"{source}: video frame {rate.n_frames} at {time:.4f} s does not come after "
                                      f"frame {rate.n_frames - 1} at {rate.last:.4f} s (broken timestamps)")
                rate.add(time)
                yield time, frame
    except MburstError:
        raise
    except Exception as err:  # noqa: BLE001 - FFmpeg raises many error types on corrupt input
        raise MburstError(f"{source}: cannot decode video ({type(err).__name__}: {err})") from None
    if rate.n_frames == 0:
        raise MburstError(f"{source}: video has no decodable frames")


def audio_frame_centre(t: int, origin: float) -> float:
    """Centre of audio frame ``t`` in s on the video's clock: origin + (t + 1/2) 40 ms."""
    return origin + (t + 0.5) * FRAME_S


def at_audio_clock(frames, origin: float | None = None, rate: FrameRate | None = None) -> Iterator[tuple[int, int, object]]:
    """The video frame on display at each audio frame's centre (module doc), for t = 0, 1, ... while covered.

    Parameters
    ----------
    frames : iterable of (float, frame)
        Presentation time (s, increasing) and frame, e.g. :func:`decode_frames`.
    origin : float, optional
        Time of the first audio sample (s); default: the first frame's time.
    rate : FrameRate, optional
        A :class:`FrameRate` that ``frames`` itself updates (as :func:`decode_frames` does); default:
        one updated here. Its end tells when the last frame stops being shown.

    Yields
    ------
    t : int
        Audio frame index.
    index : int
        Index of the chosen video frame.
    frame : object
        The chosen frame (the same object for consecutive audio frames it covers).
    """
    count = rate is None
    rate = FrameRate() if rate is None else rate
    t, held, index = 0, None, -1
    for time, frame in frames:
        if count:
            rate.add(time)
        if origin is None:
            origin = time
        # every audio frame centred before this frame's time shows the frame held so far (the first before it)
        while audio_frame_centre(t, origin) + TIME_EPS < time:
            yield t, max(index, 0), frame if held is None else held
            t += 1
        held, index = frame, index + 1
    if held is None or rate.n_frames < 2:
        return
    while audio_frame_centre(t, origin) < rate.end - TIME_EPS:
        yield t, index, held
        t += 1


@dataclass
class TimedVideo:
    """All frames of a video with their presentation times (:func:`read_timed`).

    Attributes
    ----------
    frames : ndarray of uint8, shape (n, H, W)
        Luma, in presentation order.
    times : ndarray of float64, shape (n,)
        Presentation times in s.
    rate : FrameRate
    """

    frames: np.ndarray
    times: np.ndarray
    rate: FrameRate

    def clock_index(self, origin: float | None = None) -> np.ndarray:
        """The frame on display at each audio frame the video covers (:func:`at_audio_clock`).

        Parameters
        ----------
        origin : float, optional
            Time of the first audio sample in s (default: the first frame's).

        Returns
        -------
        ndarray of int64, shape (covered audio frames,)
            Indices into :attr:`frames`.
        """
        pairs = zip(self.times.tolist(), range(len(self.times)))
        return np.fromiter((i for _, i, _ in at_audio_clock(pairs, origin, self.rate)), dtype=np.int64)


def read_timed(path: Path, source: str | None = None) -> TimedVideo:
    """Decode a whole video: luma frames, presentation times and rate (for short clips: all frames are held).

    Parameters
    ----------
    path : Path
    source : str, optional
        Start of the error messages (default: the path).

    Returns
    -------
    TimedVideo

    Raises
    ------
    MburstError
        As :func:`decode_frames` and :func:`check_rate`.
    """
    source = str(path) if source is None else source
    rate = FrameRate()
    frames, times = [], []
    for time, frame in decode_frames(path, rate, source):
        frames.append(luma(frame))
        times.append(time)
    check_rate(rate, source)
    return TimedVideo(np.stack(frames), np.asarray(times), rate)


def read_video(path: Path) -> np.ndarray:
    """All frames of a video as gray uint8, in presentation order (PyAV decode; luma plane).

    Parameters
    ----------
    path : Path

    Returns
    -------
    ndarray of uint8, shape (frames, H, W)

    Raises
    ------
    MburstError
        As :func:`decode_frames`.
    """
    return np.stack([luma(frame) for _, frame in decode_frames(path)])
