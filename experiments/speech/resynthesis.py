"""Resynthesis: a mask over the modelled bins applied to the noisy STFT, and the oracle masks.

1. noisy 16 kHz audio -> STFT X(t, f) (hamming 1244, hop 640, 623 bins;
   :mod:`experiments.data.features`);
2. gain G(t, f): the mask on bins 1..500; on DC and the 122 bins above the
   modelled band (6.4-8 kHz) an *upper-bin policy* (:data:`UPPER_POLICIES`):
   ``"attenuate"`` multiplies them by ``floor`` (a number, or ``"mean"`` = the
   frame's mean mask over bins 1..500), ``"pass"`` keeps them noisy (gain 1);
3. Y = G X, inverted by least-squares overlap-add (:func:`experiments.data.features.istft`).

Any length of audio works: the signal is zero-padded to whole hops
(ceil(n / 640) frames), which leaves the STFT frames of the original unchanged,
and the output is cut back to n samples.

Oracle masks (from the separate clean speech S and noise N):
- IBM(t, f) = 1[10 log10(|S|^2 / |N|^2) >= LC] (LC = 5 dB, :func:`experiments.data.features.ideal_binary_mask`);
- the oracle soft mask is the ideal Wiener gain (the power-domain ideal ratio
  mask, IRM with beta = 1; Wang, Narayanan & Wang 2014, IEEE/ACM TASLP 22(12)):
  W(t, f) = |S|^2 / (|S|^2 + |N|^2).
"""
from __future__ import annotations

import numpy as np

from neurons.common import MburstError

from experiments.data.features import HOP, N_BINS, N_BINS_TOTAL, SAMPLE_RATE, ideal_binary_mask, istft, power_bins, stft

#: Masks applied (``--mask`` choices) and what each is.
MASK_KINDS = {"soft": "the model's probabilities", "binary": "probability >= 0.5"}
#: Policies for DC and the bins above the modelled ones (``--upper-bins`` choices) and what each does.
UPPER_POLICIES = {"attenuate": "multiply them by the floor gain (--floor)", "pass": "keep them noisy (gain 1)"}
DEFAULT_FLOOR = 0.0


def frames_for(n_samples: int) -> int:
    """Frames (and lip frames) needed to enhance a signal: one per started hop.

    Parameters
    ----------
    n_samples : int

    Returns
    -------
    int
        ceil(n_samples / 640).
    """
    return -(-n_samples // HOP)


def check_audio(audio, name: str = "audio", fs: int = SAMPLE_RATE) -> np.ndarray:
    """A mono, finite, non-empty 16 kHz signal.

    Parameters
    ----------
    audio : array_like, shape (n,) or (n, 1) or (1, n)
    name : str
        Argument name for the error message.
    fs : int
        Its sample rate in Hz.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    MburstError
        One line naming ``name``: wrong rate, several channels, no samples, NaN or inf.
    """
    if fs != SAMPLE_RATE:
        raise MburstError(f"{name}: sample rate {fs} Hz, but enhancement needs {SAMPLE_RATE} Hz")
    arr = np.asarray(audio, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise MburstError(f"{name}: expected mono audio, got shape {arr.shape} (stereo? mix it down to one channel)")
    if arr.size == 0:
        raise MburstError(f"{name}: no samples")
    if not np.all(np.isfinite(arr)):
        raise MburstError(f"{name}: contains NaN or inf samples")
    return arr


def stft_padded(signal: np.ndarray) -> np.ndarray:
    """STFT of a signal zero-padded to whole hops (the frames of the original are unchanged).

    Parameters
    ----------
    signal : ndarray, shape (n,)
        16 kHz samples.

    Returns
    -------
    ndarray of complex128, shape (ceil(n / 640), 623)
    """
    signal = np.asarray(signal, dtype=np.float64)
    return stft(np.pad(signal, (0, frames_for(len(signal)) * HOP - len(signal))))


def binarise(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Binary mask 1[p >= threshold].

    Parameters
    ----------
    probs : ndarray
    threshold : float

    Returns
    -------
    ndarray of float32, shape of ``probs``
    """
    return (np.asarray(probs) >= threshold).astype(np.float32)


def select_mask(probs: np.ndarray, kind: str = "soft", threshold: float = 0.5) -> np.ndarray:
    """The applied mask: the soft mask (the probabilities) or the binary mask (p >= threshold).

    Parameters
    ----------
    probs : ndarray, shape (frames, bins)
    kind : {'soft', 'binary'}
        A key of :data:`MASK_KINDS`.
    threshold : float

    Returns
    -------
    ndarray of float32, shape (frames, bins)

    Raises
    ------
    MburstError
        If ``kind`` is not a key of :data:`MASK_KINDS`.
    """
    if kind not in MASK_KINDS:
        raise MburstError(f"--mask: expected one of {', '.join(MASK_KINDS)}, got {kind!r}")
    return np.asarray(probs, dtype=np.float32) if kind == "soft" else binarise(probs, threshold)


def full_band_gain(mask: np.ndarray, upper: str = "attenuate", floor: float | str = DEFAULT_FLOOR) -> np.ndarray:
    """Gain over all 623 bins from a mask over bins 1..500 (the upper-bin policy in the module doc).

    Parameters
    ----------
    mask : ndarray, shape (frames, 500)
        Gain of bins 1..500, in [0, 1].
    upper : {'attenuate', 'pass'}
        A key of :data:`UPPER_POLICIES`.
    floor : float in [0, 1] or 'mean'
        Gain of DC and bins 501..622 with ``upper='attenuate'``; 'mean' = the frame's mean mask.

    Returns
    -------
    ndarray of float64, shape (frames, 623)

    Raises
    ------
    MburstError
        On a mask of another shape, an unknown policy or a floor outside [0, 1].
    """
    mask = np.asarray(mask, dtype=np.float64)
    if mask.ndim != 2 or mask.shape[1] != N_BINS:
        raise MburstError(f"mask: expected shape [frames, {N_BINS}], got {mask.shape}")
    if upper not in UPPER_POLICIES:
        raise MburstError(f"--upper-bins: expected one of {', '.join(UPPER_POLICIES)}, got {upper!r}")
    if upper == "pass":
        rest = np.ones((mask.shape[0], 1))
    elif floor == "mean":
        rest = mask.mean(axis=1, keepdims=True)
    else:
        if isinstance(floor, str) or not 0.0 <= float(floor) <= 1.0:
            raise MburstError(f"floor: expected 'mean' or a number in [0, 1], got {floor!r}")
        rest = np.full((mask.shape[0], 1), float(floor))
    gain = np.repeat(rest, N_BINS_TOTAL, axis=1)
    gain[:, 1:N_BINS + 1] = mask
    return gain


def apply_gain(noisy: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply the noisy STFT by a gain and invert it.

    Parameters
    ----------
    noisy : ndarray, shape (n,)
        16 kHz samples.
    gain : ndarray, shape (ceil(n / 640), 623)

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    MburstError
        On bad audio (:func:`check_audio`) or a gain with another number of frames.
    """
    noisy = check_audio(noisy, "noisy")
    spec = stft_padded(noisy)
    if gain.shape != spec.shape:
        raise MburstError(f"mask: {gain.shape[0]} frames given, the audio has {spec.shape[0]} (ceil(samples / {HOP}))")
    return istft(spec * gain, len(spec) * HOP)[:len(noisy)]


def resynthesise(noisy: np.ndarray, mask: np.ndarray, upper: str = "attenuate",
                 floor: float | str = DEFAULT_FLOOR) -> np.ndarray:
    """Enhanced waveform: a mask over bins 1..500 applied to the noisy STFT, inverted.

    Parameters
    ----------
    noisy : ndarray, shape (n,)
        16 kHz samples.
    mask : ndarray, shape (ceil(n / 640), 500)
    upper, floor
        The upper-bin policy (:func:`full_band_gain`).

    Returns
    -------
    ndarray of float64, shape (n,)
        16 kHz samples.

    Raises
    ------
    MburstError
        As :func:`full_band_gain` and :func:`apply_gain`.
    """
    return apply_gain(noisy, full_band_gain(mask, upper, floor))


def oracle_masks(clean: np.ndarray, noise: np.ndarray, lc_db: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """The oracle masks over bins 1..500 from the separate clean speech and noise (module doc).

    Parameters
    ----------
    clean, noise : ndarray, shape (n,)
        16 kHz samples; the mixture is clean + noise.
    lc_db : float
        Local criterion of the IBM in dB.

    Returns
    -------
    ibm : ndarray of float32, shape (ceil(n / 640), 500)
        0 or 1.
    wiener : ndarray of float32, shape (ceil(n / 640), 500)
        |S|^2 / (|S|^2 + |N|^2), in [0, 1].

    Raises
    ------
    MburstError
        On bad audio or different lengths.
    """
    clean = check_audio(clean, "clean")
    noise = check_audio(noise, "noise")
    if clean.size != noise.size:
        raise MburstError(f"noise: length {noise.size} differs from clean length {clean.size}")
    cs, ns = stft_padded(clean), stft_padded(noise)
    ps, pn = power_bins(cs), power_bins(ns)
    wiener = ps / np.maximum(ps + pn, 1e-20)
    return ideal_binary_mask(cs, ns, lc_db).astype(np.float32), wiener.astype(np.float32)
