"""Lip crops of a whole video file in memory that does not grow with its length: two passes over the file.

Pass 1 (:func:`plan_lips`) decodes the video once, takes the frame on display at each 40 ms audio frame
(:func:`experiments.data.video.at_audio_clock`) and runs the face detector on every ``every``-th of them
(:class:`experiments.data.lips.FaceDetector`), keeping only the boxes (4 numbers per audio frame); the
track (:func:`experiments.data.lips.track_faces`: outliers rejected, interpolated, smoothed) and the mouth
boxes follow from them. Pass 2 (:meth:`LipPlan.crops`) decodes the video again and yields the 92 x 50 crop
of each audio frame, one at a time. The crops equal :func:`experiments.data.lips.track_lips` on the
sampled frames, which is what the corpus preparation stores, at any length.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from neurons.common import MburstError

from experiments.data.features import HOP, SAMPLE_RATE
from experiments.data.lips import FaceDetector, crop_lips, mouth_boxes, track_faces
from experiments.data.video import FRAME_S, FrameRate, at_audio_clock, check_rate, decode_frames, luma
from experiments.progress import Bar, is_terminal


@dataclass
class LipPlan:
    """The lip track of a video on an audio recording's clock (:func:`plan_lips`).

    Attributes
    ----------
    path : Path
        The video.
    source : str
        Its name in error messages.
    origin : float or None
        Time of the first audio sample on the video's clock (s); None: the first frame's time.
    rate : FrameRate
        Of the frames decoded in pass 1.
    centres : ndarray of float64, shape (n_track, 2)
        Mouth centres in source pixels, one per tracked audio frame.
    widths : ndarray of float64, shape (n_track,)
        Crop widths in source pixels.
    n_frames : int
        Lip frames served: one per started hop of the audio (n_track or n_track + 1, the last
        crop then serving a final partial hop).
    n_detections : int
        Audio frames where the face detector's box was used.
    """

    path: Path
    source: str
    origin: float | None
    rate: FrameRate
    centres: np.ndarray
    widths: np.ndarray
    n_frames: int
    n_detections: int

    def crops(self) -> Iterator[np.ndarray]:
        """Pass 2: the lip crop of each audio frame, decoded again from the file.

        Yields
        ------
        ndarray of uint8, shape (50, 92)
            :attr:`n_frames` crops.

        Raises
        ------
        MburstError
            When the file decodes to fewer frames than in pass 1.
        """
        rate = FrameRate()
        frames = decode_frames(self.path, rate, self.source)
        n_track, held, served, image, crop = len(self.widths), -1, 0, None, None
        try:
            for t, i, frame in at_audio_clock(frames, self.origin, rate):
                if t >= n_track:
                    break
                if i != held:
                    image, held = luma(frame), i
                crop = crop_lips(image[None], self.centres[t:t + 1], self.widths[t:t + 1])[0]
                yield crop
                served = t + 1
        finally:
            frames.close()
        if served < n_track:
            raise MburstError(f"{self.source}: decoded {served} lip frames on the second pass, {n_track} on the first")
        if self.n_frames > n_track:
            yield crop


def plan_lips(path: Path, n_samples: int, origin: float | None = None, *, every: int = 10, scale: float = 0.5,
              source: str | None = None, progress: bool | None = None) -> LipPlan:
    """Pass 1: detect and track the face on the frames shown at the audio frames of ``n_samples`` samples.

    Parameters
    ----------
    path : Path
        The video.
    n_samples : int
        Length of the 16 kHz audio; it needs ceil(n / 640) lip frames, and the video must cover its
        whole hops (a final partial hop reuses the last lip frame).
    origin : float, optional
        Time of the first audio sample on the video's clock in s (default: the first frame's).
    every, scale : int, float
        Detection on every ``every``-th audio frame, downscaled by ``scale``.
    source : str, optional
        Start of the error messages (default: the path).
    progress : bool, optional
        True: a bar on a terminal, one summary line elsewhere (:class:`experiments.progress.Bar`); False: nothing;
        default: a bar on a terminal only.

    Returns
    -------
    LipPlan

    Raises
    ------
    MburstError
        As :func:`experiments.data.video.decode_frames` and :func:`~experiments.data.video.check_rate`;
        when the video is shorter than the audio, or no face is found.
    """
    source = str(path) if source is None else source
    needed, whole = -(-n_samples // HOP), n_samples // HOP
    rate, detector = FrameRate(), FaceDetector(scale)
    boxes = np.full((needed, 4), np.nan)
    covered, held, image = 0, -1, None
    frames = decode_frames(path, rate, source)
    bar = Bar(total=needed, unit="frame", desc="track lips", show=is_terminal(sys.stderr) if progress is None else progress)
    try:
        for t, i, frame in at_audio_clock(frames, origin, rate):
            if t >= needed:
                break
            if t % every == 0:
                if i != held:
                    image, held = luma(frame), i
                boxes[t] = detector(image)
            covered = t + 1
            bar.update()
    finally:
        frames.close()
        bar.close()
    check_rate(rate, source)
    if covered < whole:
        seen = rate.end - rate.first if rate.n_frames > 1 else 0.0
        raise MburstError(f"{source}: {rate.n_frames} frames ({seen:.2f} s at {rate.describe()}) but the audio lasts "
                          f"{n_samples / SAMPLE_RATE:.2f} s and needs {whole} lip frames (one per {1000 * FRAME_S:.0f} ms): "
                          "the video is shorter than the audio")
    faces, used = track_faces(boxes[:covered], source)
    centres, widths = mouth_boxes(faces)
    return LipPlan(Path(path), source, origin, rate, centres, widths, needed, used)
