"""Intelligibility and quality scores of enhanced speech: STOI, ESTOI, wideband PESQ, SI-SDR.

- STOI (Taal et al. 2011, IEEE TASLP 19(7)) and extended STOI (Jensen & Taal
  2016, IEEE/ACM TASLP 24(11)) through ``pystoi``: signals resampled to 10 kHz,
  silent frames (40 dB below the loudest) removed, 15 one-third-octave bands
  from 150 Hz, 384 ms segments; the score lies in [0, 1] for STOI (ESTOI can be
  slightly negative).
- Wideband PESQ (ITU-T P.862.2) through ``pesq``; only defined at 16 kHz, MOS-LQO
  scale from about 1.04 to 4.64.
- SI-SDR (Le Roux, Wisdom, Erdogan & Hershey 2019, ICASSP), both signals made
  zero-mean first: with s the clean and s' the estimate,
  alpha = <s', s> / ||s||^2, SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s'||^2) dB
  (+inf when the estimate is an exact scaled copy).

Every function validates its inputs first (1-D mono, non-empty, equal length,
finite, the sample rate it needs) and raises a one-line :class:`MburstError`
naming the offending argument.
"""
from __future__ import annotations

import warnings

import numpy as np

from neurons.common import MburstError

PESQ_RATE = 16_000
PESQ_WB_MAX = 4.644  # the top of the P.862.2 MOS-LQO mapping


def validate_pair(clean, est, fs: int | None = None, *, require_fs: int | None = None,
                  names: tuple[str, str] = ("clean", "est")) -> tuple[np.ndarray, np.ndarray]:
    """Check a (reference, estimate) pair and return both as float64 1-D arrays.

    Errors (one line, naming the argument): not 1-D (a stereo/multi-channel array
    where mono is needed), empty, different lengths, non-finite samples, a sample
    rate that is not a positive integer, or not ``require_fs`` when one is needed.
    """
    arrays = []
    for name, value in zip(names, (clean, est)):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise MburstError(f"{name}: expected a numeric 1-D signal, got {type(value).__name__}") from None
        if arr.ndim != 1:
            hint = " (stereo? mix the channels down to mono first)" if arr.ndim == 2 and min(arr.shape) <= 8 else ""
            raise MburstError(f"{name}: expected a mono 1-D signal, got shape {arr.shape}{hint}")
        if arr.size == 0:
            raise MburstError(f"{name}: empty signal")
        if not np.all(np.isfinite(arr)):
            raise MburstError(f"{name}: contains NaN or inf samples")
        arrays.append(arr)
    if arrays[0].size != arrays[1].size:
        raise MburstError(f"{names[1]}: length {arrays[1].size} differs from {names[0]} length {arrays[0].size}")
    if fs is not None or require_fs is not None:
        if fs is None or isinstance(fs, bool) or not float(fs).is_integer() or fs <= 0:
            raise MburstError(f"fs: sample rate must be a positive integer in Hz, got {fs!r}")
        if require_fs is not None and int(fs) != require_fs:
            raise MburstError(f"fs: {fs} Hz given, but this metric needs {require_fs} Hz (resample first)")
    return arrays[0], arrays[1]


def _stoi(clean, est, fs: int, extended: bool) -> float:
    from pystoi import stoi as _pystoi

    x, y = validate_pair(clean, est, fs)
    if not np.any(x):
        raise MburstError("clean: all-zero reference, STOI is undefined")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = _pystoi(x, y, int(fs), extended=extended)
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise MburstError(f"clean: too short for STOI ({x.size} samples at {fs} Hz leave fewer than 30 "
                          "non-silent frames; it needs about 0.4 s of speech)")
    return float(score)


def stoi(clean, est, fs: int = 16_000) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), in [0, 1]."""
    return _stoi(clean, est, fs, extended=False)


def estoi(clean, est, fs: int = 16_000) -> float:
    """Extended STOI (Jensen & Taal 2016)."""
    return _stoi(clean, est, fs, extended=True)


def pesq_wb(clean, est, fs: int = PESQ_RATE) -> float:
    """Wideband PESQ MOS-LQO (ITU-T P.862.2), 16 kHz only; ~1.04 (bad) .. 4.64 (identical)."""
    from pesq import PesqError, pesq

    x, y = validate_pair(clean, est, fs, require_fs=PESQ_RATE)
    if not np.any(x):
        raise MburstError("clean: all-zero reference, PESQ is undefined")
    try:
        return float(pesq(PESQ_RATE, x, y, "wb"))
    except PesqError as err:
        raise MburstError(f"est: PESQ failed ({type(err).__name__}: {err})") from None


def si_sdr(clean, est) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals zero-meaned first."""
    x, y = validate_pair(clean, est)
    x = x - x.mean()
    y = y - y.mean()
    energy = float(np.dot(x, x))
    if energy == 0.0:
        raise MburstError("clean: constant reference, SI-SDR is undefined")
    target = (np.dot(y, x) / energy) * x
    residual = y - target
    err = float(np.dot(residual, residual))
    if err == 0.0:
        return float("inf")
    return float(10 * np.log10(np.dot(target, target) / err))


METRICS = {"stoi": stoi, "estoi": estoi, "pesq_wb": pesq_wb, "si_sdr": lambda c, e, fs=16_000: si_sdr(c, e)}


def all_metrics(clean, est, fs: int = 16_000) -> dict[str, float]:
    """``{"stoi", "estoi", "pesq_wb", "si_sdr"}`` of ``est`` against ``clean``."""
    return {name: fn(clean, est, fs) for name, fn in METRICS.items()}
