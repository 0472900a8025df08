"""Offline enhancement of a whole utterance: the model's mask (:mod:`experiments.speech.masking`) applied to the
noisy STFT and inverted (:mod:`experiments.speech.resynthesis`). The causal version is
:class:`experiments.speech.streaming.StreamingEnhancer`; batch scoring is :mod:`experiments.speech.evaluation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np

from experiments.data.features import SAMPLE_RATE
from experiments.data.frames import Stats
from experiments.speech.masking import MaskFn, predict_probs
from experiments.speech.resynthesis import DEFAULT_FLOOR, check_audio, resynthesise, select_mask

__all__ = ["Enhanced", "enhance"]


@dataclass
class Enhanced:
    """An enhancement result.

    Attributes
    ----------
    audio : ndarray of float64, shape (n,)
        Enhanced 16 kHz samples, as long as the input.
    probs : ndarray of float32, shape (ceil(n / 640), 500)
        The model's mask probabilities.
    mask : ndarray of float32, shape (ceil(n / 640), 500)
        The applied mask.
    seconds : float
        Processing time in s.
    """

    audio: np.ndarray
    probs: np.ndarray
    mask: np.ndarray
    seconds: float

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration."""
        return self.seconds / (len(self.audio) / SAMPLE_RATE)


def enhance(noisy: np.ndarray, lips: np.ndarray, mask_fn: MaskFn, stats: Stats | None = None, *,
            mask: str = "soft", threshold: float = 0.5, upper: str = "attenuate",
            floor: float | str = DEFAULT_FLOOR, batch_size: int = 64) -> Enhanced:
    """Offline enhancement of a whole utterance (any length) with a model's mask.

    Parameters
    ----------
    noisy : ndarray, shape (n,)
        16 kHz mono samples.
    lips : ndarray, shape (>= ceil(n / 640) - 1, 50, 92)
        Lip crops, one per 40 ms video frame (:func:`experiments.speech.masking.align_lips`).
    mask_fn : MaskFn
        The model (:func:`experiments.speech.masking.torch_mask_fn`).
    stats : Stats, optional
        The model's training statistics (default: none).
    mask : {'soft', 'binary'}
        :data:`experiments.speech.resynthesis.MASK_KINDS`.
    threshold : float
        Threshold of the binary mask.
    upper, floor
        The upper-bin policy (:func:`experiments.speech.resynthesis.full_band_gain`).
    batch_size : int
        Frames per model call.

    Returns
    -------
    Enhanced

    Raises
    ------
    MburstError
        On bad audio, too few lip frames, bad statistics, options or model output.
    """
    start = perf_counter()
    noisy = check_audio(noisy, "noisy")
    probs = predict_probs(noisy, lips, mask_fn, stats, batch_size)
    chosen = select_mask(probs, mask, threshold)
    out = resynthesise(noisy, chosen, upper, floor)
    return Enhanced(out, probs, chosen, perf_counter() - start)
