"""Audio features, masks and resynthesis of the MBURST task (reference.md section 1).

Analysis: 16 kHz, hamming window of ``WIN`` = 1244 samples, hop ``HOP`` = 640
(40 ms, one video frame at 25 fps). Frame ``t`` is centred on sample
``t * HOP + HOP / 2``, the middle of video frame ``t``, so a 3 s clip (48,000
samples) gives exactly ``n // HOP`` = 75 frames, one per video frame.
The model sees bins 1..500 (the 500 lowest non-DC bins, up to 6.4 kHz).
"""
from __future__ import annotations

import numpy as np

from neurons.common import MburstError

SAMPLE_RATE = 16_000
WIN = 1244
HOP = 640
N_BINS_TOTAL = WIN // 2 + 1  # 623 rfft bins, DC included
N_BINS = 500  # bins 1..500 are modelled
CONTEXT = 8  # current frame + 7 previous
LOG_EPS = 1e-8
_PAD = (WIN - HOP) // 2  # 302: centres frame t on t*HOP + HOP/2


def band_width(n_features: int, n_bins: int) -> int:
    """Feature bins per model band when ``n_features`` bins are pooled into ``n_bins`` equal bands."""
    if not isinstance(n_bins, int) or n_bins < 1 or n_features % n_bins:
        raise MburstError(f"n_bins {n_bins!r}: must divide the {n_features} feature bins into equal bands "
                          f"(e.g. {', '.join(str(n_features // k) for k in (1, 2, 4, 5) if n_features % k == 0)})")
    return n_features // n_bins


def pool_bins(features: np.ndarray, ibm: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool [frames, bins] standardised features and their IBM into ``n_bins`` equal bands.

    A band's feature is the mean of its bins; its mask unit is positive when at least half of its
    bins are (the band's IBM at the same local criterion when its bins share a local SNR).
    """
    k = band_width(features.shape[1], n_bins)
    if k == 1:
        return features, ibm
    frames = features.shape[0]
    pooled = features.reshape(frames, n_bins, k).mean(2)
    mask = (ibm.reshape(frames, n_bins, k).mean(2) >= 0.5).astype(ibm.dtype)
    return pooled, mask


def expand_bands(mask: np.ndarray, n_features: int = N_BINS) -> np.ndarray:
    """A [frames, bands] mask back on the ``n_features`` feature bins (each band's value on its bins)."""
    return np.repeat(mask, band_width(n_features, mask.shape[1]), axis=1)


def n_frames(n_samples: int) -> int:
    """Number of analysis frames for ``n_samples`` samples: one per 40 ms hop."""
    return n_samples // HOP


def stft(signal: np.ndarray) -> np.ndarray:
    """Complex STFT, shape (frames, 623). ``signal``: 1-D float array at 16 kHz."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise MburstError(f"stft expects a mono 1-D signal, got shape {signal.shape}")
    frames = n_frames(len(signal))
    if frames < 1:
        raise MburstError(f"signal of {len(signal)} samples is shorter than one {HOP}-sample hop")
    padded = np.pad(signal, (_PAD, _PAD + WIN))
    idx = np.arange(frames)[:, None] * HOP + np.arange(WIN)[None, :]
    return np.fft.rfft(padded[idx] * np.hamming(WIN), axis=1)


def istft(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Least-squares overlap-add inverse of :func:`stft` (Griffin & Lim 1984).

    x[n] = sum_t w[n - tH] y_t[n - tH] / sum_t w[n - tH]^2, with the same hamming
    window for synthesis; exact for an unmodified spectrogram.
    """
    frames = spec.shape[0]
    window = np.hamming(WIN)
    out = np.zeros(frames * HOP + WIN + 2 * _PAD)
    norm = np.zeros_like(out)
    chunks = np.fft.irfft(spec, n=WIN, axis=1) * window
    for t in range(frames):
        out[t * HOP: t * HOP + WIN] += chunks[t]
        norm[t * HOP: t * HOP + WIN] += window ** 2
    out = out[_PAD:_PAD + n_samples]
    norm = norm[_PAD:_PAD + n_samples]
    result = np.zeros(n_samples)
    covered = norm > 1e-8
    result[covered] = out[covered] / norm[covered]
    return result


def power_bins(spec: np.ndarray) -> np.ndarray:
    """|X|^2 of the modelled bins 1..500, shape (frames, 500)."""
    return np.abs(spec[:, 1:N_BINS + 1]) ** 2


def log_power(spec: np.ndarray) -> np.ndarray:
    """Natural-log power of the modelled bins (float32), before standardisation."""
    return np.log(power_bins(spec) + LOG_EPS).astype(np.float32)


def ideal_binary_mask(clean_spec: np.ndarray, noise_spec: np.ndarray, lc_db: float = 5.0) -> np.ndarray:
    """IBM(t, f) = 1 where 10 log10(|X|^2 / |N|^2) >= LC, over the modelled bins (uint8)."""
    local_snr = 10 * np.log10(power_bins(clean_spec) + 1e-20) - 10 * np.log10(power_bins(noise_spec) + 1e-20)
    return (local_snr >= lc_db).astype(np.uint8)


def context_window(features: np.ndarray, t: int, context: int = CONTEXT) -> np.ndarray:
    """Rows t-context+1 .. t of ``features`` (oldest first), zero-padded before frame 0."""
    out = np.zeros((context,) + features.shape[1:], dtype=features.dtype)
    start = max(0, t - context + 1)
    out[context - (t + 1 - start):] = features[start:t + 1]
    return out
