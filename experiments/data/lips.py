"""Lip region tracking: Viola-Jones face detection, geometric mouth location, 92 x 50 crops.

Viola & Jones (2001) Haar cascade (OpenCV ``haarcascade_frontalface_default``)
runs on every ``every``-th frame, downscaled by ``scale`` (a full-size detection
costs ~10-18 ms), searching near the previous face once one is found. The largest face per frame is kept; detections whose centre
jumps by more than ``MAX_JUMP`` face widths from the median are rejected. The
face box is linearly interpolated between detections and smoothed with a
centred moving average of ``SMOOTH`` frames (the tracker). The mouth centre is
placed geometrically in the face box, at (x + 0.5 w, y + MOUTH_Y h); the crop
spans ``MOUTH_W`` face widths with the 92:50 aspect ratio and is resampled to
92 x 50 pixels (bilinear, border replicated).

The tracker runs on the frames shown at the 40 ms audio frames (:mod:`experiments.data.video`), 25 per
second whatever the source rate, so ``every`` (10 frames = 400 ms) and ``SMOOTH`` (5 frames = 200 ms)
mean the same time at every rate.

Default ``every=10``: on 10 GRID s1 videos the tracked mouth centre stays within
3.0 px (mean of per-video maxima 2.2 px) of the one from detecting every frame,
the same as ``every=5`` (2.6 / 2.1 px), at 0.16 s instead of 0.28 s per video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurons.common import MburstError

LIP_W, LIP_H = 92, 50
MOUTH_Y = 0.80  # mouth centre, fraction of the face box height below its top
MOUTH_W = 0.66  # crop width, fraction of the face box width (~92 px for GRID's ~140 px faces)
MAX_JUMP = 0.25
SMOOTH = 5

_CASCADE = None


def _cascade():
    global _CASCADE
    if _CASCADE is None:
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        _CASCADE = cv2.CascadeClassifier(path)
        if _CASCADE.empty():
            raise MburstError(f"{path}: cannot load the OpenCV face cascade")
    return _CASCADE


@dataclass
class LipTrack:
    """Per-frame lip crops and the source-frame geometry they came from."""

    crops: np.ndarray  # uint8 [n, 50, 92]
    centres: np.ndarray  # float32 [n, 2]: mouth centre (x, y) in source pixels
    widths: np.ndarray  # float32 [n]: crop width in source pixels (height = width * 50/92)
    faces: np.ndarray  # float32 [n, 4]: smoothed face box (x, y, w, h)
    n_detections: int  # frames where the cascade found a face


class FaceDetector:
    """The cascade with its tracker state: call it on successive detection frames.

    After a hit, the next search is confined to the previous box grown by half its width on each
    side, at 0.8-1.25 times its size (a cheap tracker); a miss returns to a full-frame search.

    Parameters
    ----------
    scale : float
        Detection on the frame downscaled by this factor.
    """

    def __init__(self, scale: float = 0.5) -> None:
        self.scale = scale
        self.floor = max(20, int(round(60 * scale)))
        self.prev = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """The largest face box (x, y, w, h) in source pixels of a gray frame [H, W]; NaN where none."""
        import cv2

        height, width = frame.shape
        x0 = y0 = 0
        img, s = frame, self.scale
        min_size, max_size = (self.floor, self.floor), (0, 0)
        if self.prev is not None:
            px, py, pw, ph = self.prev
            x0, y0 = max(0, int(px - pw / 2)), max(0, int(py - ph / 2))
            img = img[y0:min(height, int(py + 1.5 * ph)), x0:min(width, int(px + 1.5 * pw))]
            min_size, max_size = (int(0.8 * pw * s),) * 2, (int(np.ceil(1.25 * pw * s)),) * 2
        if s != 1.0:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        found = _cascade().detectMultiScale(img, scaleFactor=1.1, minNeighbors=5, minSize=min_size, maxSize=max_size)
        if not len(found):
            self.prev = None
            return np.full(4, np.nan)
        best = np.asarray(found[np.argmax(found[:, 2] * found[:, 3])], dtype=np.float64) / s
        self.prev = best + np.array([x0, y0, 0, 0])
        return self.prev


def detect_faces(frames: np.ndarray, every: int = 10, scale: float = 0.5) -> np.ndarray:
    """Largest face box (x, y, w, h) in source pixels for every ``every``-th frame; NaN where none.

    Parameters
    ----------
    frames : ndarray of uint8, shape (n, H, W)
    every : int
        Detect on frames 0, every, 2 every, ...
    scale : float
        Detection on frames downscaled by this factor (:class:`FaceDetector`).

    Returns
    -------
    ndarray of float64, shape (n, 4)
    """
    detector = FaceDetector(scale)
    boxes = np.full((len(frames), 4), np.nan, dtype=np.float64)
    for t in range(0, len(frames), every):
        boxes[t] = detector(frames[t])
    return boxes


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average along axis 0 with edge replication."""
    if k <= 1 or len(x) < 2:
        return x
    pad = k // 2
    xp = np.pad(x, ((pad, k - 1 - pad), (0, 0)), mode="edge")
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), xp]), axis=0)
    return (c[k:] - c[:-k]) / k


def track_faces(boxes: np.ndarray, source: str = "video") -> tuple[np.ndarray, int]:
    """Fill the NaN rows of ``boxes`` by interpolation, reject jumps, smooth. Returns (boxes, n_used)."""
    found = ~np.isnan(boxes[:, 0])
    if not found.any():
        raise MburstError(f"{source}: no face found in any frame")
    centres = boxes[found, :2] + boxes[found, 2:] / 2
    med_c, med_w = np.median(centres, axis=0), np.median(boxes[found, 2])
    ok = np.flatnonzero(found)[np.linalg.norm(centres - med_c, axis=1) <= MAX_JUMP * med_w + 1e-9]
    t = np.arange(len(boxes))
    filled = np.stack([np.interp(t, ok, boxes[ok, j]) for j in range(4)], axis=1)
    return _smooth(filled, SMOOTH), len(ok)


def crop_lips(frames: np.ndarray, centres: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Bilinear 92 x 50 crops of ``frames`` around ``centres`` spanning ``widths`` pixels (uint8)."""
    import cv2

    out = np.empty((len(frames), LIP_H, LIP_W), dtype=np.uint8)
    for t in range(len(frames)):
        s = widths[t] / LIP_W  # source pixels per crop pixel
        # crop pixel (u, v) -> source (cx + (u - (W-1)/2) s, cy + (v - (H-1)/2) s)
        m = np.array([[s, 0, centres[t, 0] - (LIP_W - 1) / 2 * s],
                      [0, s, centres[t, 1] - (LIP_H - 1) / 2 * s]], dtype=np.float64)
        out[t] = cv2.warpAffine(frames[t], m, (LIP_W, LIP_H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def track_lips(frames: np.ndarray, every: int = 10, scale: float = 0.5, source: str = "video") -> LipTrack:
    """Detect, track and crop the mouth in gray ``frames`` [n, H, W] -> :class:`LipTrack`."""
    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise MburstError(f"{source}: expected gray uint8 frames [n, H, W], got {frames.dtype} {frames.shape}")
    faces, n_used = track_faces(detect_faces(frames, every=every, scale=scale), source)
    centres, widths = mouth_boxes(faces)
    return LipTrack(crop_lips(frames, centres, widths), centres.astype(np.float32), widths.astype(np.float32),
                    faces.astype(np.float32), n_used)


def mouth_boxes(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mouth crop of each tracked face box: centre (x + 0.5 w, y + MOUTH_Y h), width MOUTH_W w.

    Parameters
    ----------
    faces : ndarray, shape (n, 4)
        Face boxes (x, y, w, h) in source pixels.

    Returns
    -------
    centres : ndarray of float64, shape (n, 2)
    widths : ndarray of float64, shape (n,)
        Crop widths in source pixels (heights: width * 50 / 92).
    """
    centres = np.stack([faces[:, 0] + 0.5 * faces[:, 2], faces[:, 1] + MOUTH_Y * faces[:, 3]], axis=1)
    return centres, MOUTH_W * faces[:, 2]
