"""Audio features, masks, band pooling and context windows of the MBURST task (reference.md section 1).

Analysis: 16 kHz, hamming window of ``WIN`` = 1244 samples, hop ``HOP`` = 640
(40 ms, one video frame at ``VIDEO_FPS`` = 25 fps). Frame ``t`` covers samples
``[t HOP - PAD, t HOP - PAD + WIN)`` with ``PAD`` = 302, so it is centred on
``t HOP + HOP / 2``, the middle of video frame ``t``, and a 3 s clip (48,000
samples) gives exactly ``n // HOP`` = 75 frames, one per video frame.
The model sees bins 1..500 (the 500 lowest non-DC bins, up to 6.4 kHz).

This module is the one feature pipeline: the corpus build, training frames
(:class:`experiments.data.frames.FrameSet`), offline and streaming enhancement
(:mod:`experiments.speech`) all use :func:`stft`/:func:`analyse`, :func:`log_power`,
:func:`pool_features` and :func:`context_windows`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from neurons.common import MburstError

SAMPLE_RATE = 16_000
VIDEO_FPS = 25  # lip frames per second: one per hop
HOP = SAMPLE_RATE // VIDEO_FPS  # 640 samples = 40 ms
WIN = 1244
PAD = (WIN - HOP) // 2  # 302: centres frame t on t*HOP + HOP/2
N_BINS_TOTAL = WIN // 2 + 1  # 623 rfft bins, DC included
N_BINS = 500  # bins 1..500 are modelled
CONTEXT = 8  # current frame + 7 previous
LOG_EPS = 1e-8
#: The analysis and synthesis window (symmetric hamming, read-only).
WINDOW = np.hamming(WIN)
WINDOW.flags.writeable = False


def n_frames(n_samples: int) -> int:
    """Number of analysis frames of a signal: one per whole 40 ms hop.

    Parameters
    ----------
    n_samples : int
        Signal length in samples (16 kHz).

    Returns
    -------
    int
        ``n_samples // HOP``.
    """
    return n_samples // HOP


@lru_cache(maxsize=1)
def _sft():
    from scipy.signal import ShortTimeFFT

    # phase_shift=None: each frame's FFT starts at its first sample (no shift to the window centre)
    return ShortTimeFFT(WINDOW.copy(), HOP, SAMPLE_RATE, fft_mode="onesided", mfft=WIN, phase_shift=None)


def analyse(padded: np.ndarray, frames: int) -> np.ndarray:
    """Spectra of the first ``frames`` frames of an already padded signal, frame ``j`` = rfft(w * padded[j HOP : j HOP + WIN]).

    ``scipy.signal.ShortTimeFFT`` does the framing, windowing and FFT (zeros past the end of
    ``padded``); it reproduces the former hand-written loop exactly (tests/test_data_stft.py).

    Parameters
    ----------
    padded : ndarray, shape (n,)
        Real samples at 16 kHz; sample 0 is the first sample of frame 0.
    frames : int
        Number of frames, >= 1.

    Returns
    -------
    ndarray of complex128, shape (frames, 623)
        One-sided spectra, bins 0..622 (DC to 8 kHz in 12.86 Hz steps).
    """
    return _sft().stft(np.asarray(padded, dtype=np.float64), p0=0, p1=frames, k_offset=WIN // 2).T


def stft(signal: np.ndarray) -> np.ndarray:
    """Complex STFT with the framing of the module docstring.

    Parameters
    ----------
    signal : ndarray, shape (n,)
        Mono signal at 16 kHz, n >= HOP.

    Returns
    -------
    ndarray of complex128, shape (n // 640, 623)
        Frame t = rfft(hamming * x[t HOP - 302 : t HOP + 942]), zeros outside the signal.

    Raises
    ------
    MburstError
        If the signal is not 1-D or shorter than one hop.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise MburstError(f"stft expects a mono 1-D signal, got shape {signal.shape}")
    frames = n_frames(len(signal))
    if frames < 1:
        raise MburstError(f"signal of {len(signal)} samples is shorter than one {HOP}-sample hop")
    return analyse(np.pad(signal, (PAD, 0)), frames)


def synthesis_frames(spec: np.ndarray) -> np.ndarray:
    """Windowed inverse FFT of each frame, irfft(Y_t) * w: the overlap-add terms of :func:`istft`.

    Parameters
    ----------
    spec : ndarray of complex, shape (frames, 623)

    Returns
    -------
    ndarray of float64, shape (frames, 1244)
    """
    return np.fft.irfft(spec, n=WIN, axis=1) * WINDOW


def istft(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Least-squares overlap-add inverse of :func:`stft` (Griffin & Lim 1984).

    x[n] = sum_t w[n - tH] y_t[n - tH] / sum_t w[n - tH]^2 over the frames present, with the same
    hamming window for synthesis; exact for an unmodified spectrogram, edges included.

    Not ``scipy.signal.ShortTimeFFT.istft``: its canonical dual window divides by the sum of squared
    windows of *all* frame positions, also the absent frames -1 and T, so the first and last 302
    samples (covered by one frame only) come out wrong by O(1) (tests/test_data_stft.py). The
    overlap-add is vectorised: a frame (1244 samples) spans at most two hops (1280).

    Parameters
    ----------
    spec : ndarray of complex, shape (frames, 623)
    n_samples : int
        Output length; samples no frame covers are 0.

    Returns
    -------
    ndarray of float64, shape (n_samples,)
    """
    frames = spec.shape[0]
    chunks = synthesis_frames(spec)
    tail = WIN - HOP  # 604 samples of each frame run into the next hop
    out = np.zeros((frames + 2, HOP))
    norm = np.zeros_like(out)
    out[:frames] = chunks[:, :HOP]
    out[1:frames + 1, :tail] += chunks[:, HOP:]
    norm[:frames] = WINDOW[:HOP] ** 2
    norm[1:frames + 1, :tail] += WINDOW[HOP:] ** 2
    out, norm = out.reshape(-1)[PAD:PAD + n_samples], norm.reshape(-1)[PAD:PAD + n_samples]
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(norm > 1e-8, out / norm, 0.0)
    return np.pad(result, (0, n_samples - len(result)))


def power_bins(spec: np.ndarray) -> np.ndarray:
    """|X|^2 of the modelled bins 1..500.

    Parameters
    ----------
    spec : ndarray of complex, shape (frames, 623)

    Returns
    -------
    ndarray of float64, shape (frames, 500)
    """
    return np.abs(spec[:, 1:N_BINS + 1]) ** 2


def log_power(spec: np.ndarray) -> np.ndarray:
    """Natural-log power ln(|X|^2 + 1e-8) of the modelled bins, before standardisation.

    Parameters
    ----------
    spec : ndarray of complex, shape (frames, 623)

    Returns
    -------
    ndarray of float32, shape (frames, 500)
    """
    return np.log(power_bins(spec) + LOG_EPS).astype(np.float32)


def ideal_binary_mask(clean_spec: np.ndarray, noise_spec: np.ndarray, lc_db: float = 5.0) -> np.ndarray:
    """IBM(t, f) = 1 where 10 log10(|X|^2 / |N|^2) >= LC over the modelled bins.

    Parameters
    ----------
    clean_spec, noise_spec : ndarray of complex, shape (frames, 623)
        STFTs of the clean speech X and of the (scaled) noise N.
    lc_db : float
        Local criterion LC in dB.

    Returns
    -------
    ndarray of uint8, shape (frames, 500)
    """
    local_snr = 10 * np.log10(power_bins(clean_spec) + 1e-20) - 10 * np.log10(power_bins(noise_spec) + 1e-20)
    return (local_snr >= lc_db).astype(np.uint8)


def band_width(n_features: int, n_bins: int) -> int:
    """Feature bins per model band when ``n_features`` bins are pooled into ``n_bins`` equal bands.

    Parameters
    ----------
    n_features : int
        Feature bins (500).
    n_bins : int
        Model bands; must divide ``n_features``.

    Returns
    -------
    int
        ``n_features // n_bins``.

    Raises
    ------
    MburstError
        If ``n_bins`` does not divide ``n_features`` into equal bands.
    """
    if not isinstance(n_bins, int) or n_bins < 1 or n_features % n_bins:
        raise MburstError(f"n_bins {n_bins!r}: must divide the {n_features} feature bins into equal bands "
                          f"(e.g. {', '.join(str(n_features // k) for k in (1, 2, 4, 5) if n_features % k == 0)})")
    return n_features // n_bins


def pool_features(features: np.ndarray, n_bins: int) -> np.ndarray:
    """Standardised features pooled into ``n_bins`` equal bands: a band's feature is the mean of its bins.

    Parameters
    ----------
    features : ndarray of float32, shape (..., n_features)
        Last axis: feature bins (e.g. [frames, 500] or context windows [B, 1, 8, 500]).
    n_bins : int
        Bands; must divide n_features (n_bins = n_features returns ``features`` itself).

    Returns
    -------
    ndarray, shape (..., n_bins)

    Raises
    ------
    MburstError
        If ``n_bins`` does not divide the feature bins (:func:`band_width`).
    """
    k = band_width(features.shape[-1], n_bins)
    return features if k == 1 else features.reshape(*features.shape[:-1], n_bins, k).mean(-1)


def pool_mask(ibm: np.ndarray, n_bins: int) -> np.ndarray:
    """An IBM pooled into ``n_bins`` equal bands: a band is positive when at least half of its bins are.

    (The band's IBM at the same local criterion when its bins share a local SNR.)

    Parameters
    ----------
    ibm : ndarray of uint8, shape (frames, n_features)
    n_bins : int
        Bands; must divide n_features.

    Returns
    -------
    ndarray of uint8, shape (frames, n_bins)

    Raises
    ------
    MburstError
        If ``n_bins`` does not divide the feature bins (:func:`band_width`).
    """
    k = band_width(ibm.shape[-1], n_bins)
    if k == 1:
        return ibm
    return (ibm.reshape(*ibm.shape[:-1], n_bins, k).mean(-1) >= 0.5).astype(ibm.dtype)


def expand_bands(mask: np.ndarray, n_features: int = N_BINS) -> np.ndarray:
    """A band mask back on the feature bins: each band's value on each of its bins.

    Parameters
    ----------
    mask : ndarray, shape (frames, bands)
    n_features : int
        Feature bins; ``bands`` must divide it.

    Returns
    -------
    ndarray, shape (frames, n_features)

    Raises
    ------
    MburstError
        If the bands do not divide ``n_features``.
    """
    return np.repeat(mask, band_width(n_features, mask.shape[1]), axis=1)


def context_windows(features: np.ndarray, frames, positions: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """Model input windows: for each frame t, rows t-context+1..t of its own utterance, oldest first,
    zeros before the utterance's first frame (the training mean after standardisation).

    The one windower of the task: training frames, offline and streaming enhancement use it.

    Parameters
    ----------
    features : ndarray, shape (N, F)
        Feature rows of one or several utterances laid end to end.
    frames : array_like of int, shape (B,)
        Rows t to build a window for.
    positions : ndarray of int, shape (N,)
        Each row's position in its utterance (0 at its first frame).
    context : int
        Window length in frames.

    Returns
    -------
    ndarray, shape (B, context, F), the dtype of ``features``
    """
    idx = np.asarray(frames, dtype=np.int64).reshape(-1)
    offsets = np.arange(context - 1, -1, -1)
    valid = (np.asarray(positions)[idx][:, None] - offsets) >= 0
    return features[np.maximum(idx[:, None] - offsets, 0)] * valid[:, :, None]
