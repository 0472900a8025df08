"""Intelligibility and quality scores of enhanced speech: STOI, ESTOI, wideband PESQ, SI-SDR, on every input.

- STOI (Taal et al. 2011, IEEE TASLP 19(7)) and extended STOI (Jensen & Taal
  2016, IEEE/ACM TASLP 24(11)) through ``pystoi``: signals resampled to 10 kHz,
  silent frames (40 dB below the loudest) removed, 15 one-third-octave bands
  from 150 Hz, 384 ms segments; the score lies in [0, 1] for STOI (ESTOI can be
  slightly negative).
- Wideband PESQ (ITU-T P.862.2) through ``pesq``; only defined at 16 kHz, MOS-LQO
  scale from :data:`PESQ_WB_MIN` (0.999) to :data:`PESQ_WB_MAX` (4.64).
- SI-SDR (Le Roux, Wisdom, Erdogan & Hershey 2019, ICASSP): with s the clean and s' the estimate,
  alpha = <s', s> / ||s||^2, SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s'||^2) dB.

Every metric scores the zero-mean signals (a DC offset is inaudible and not speech), each scaled to
a peak of 1 (all four are scale-invariant, so this only keeps the libraries clear of underflow: a
copy at 1e-30 of full scale scores as the copy). What each input gives (STOI, ESTOI / PESQ-WB / SI-SDR):

- an all-zero or constant estimate (no signal: a muted enhancer): 0.0, 0.0 (no correlation: no
  intelligibility) / :data:`PESQ_WB_MIN` = 0.999, the bottom of the scale / -inf dB. Every estimate that
  carries the speech, down to a -20 dB mixture, scores above these; chance-level estimates (noise, or the
  speech 0.25 s late) score about 0 on ESTOI (within +-0.05) and about 0.4 on STOI;
- an exact scaled copy: 1.0, 1.0 / about 4.64 / +inf dB;
- an all-zero or constant reference: an error for every metric;
- too little speech in the reference: an error for STOI/ESTOI (fewer than 30 non-silent 25.6 ms
  frames, about 0.4 s) and PESQ-WB (shorter than 0.25 s, or no utterance detected); SI-SDR is defined;
- a NaN or inf sample, unequal lengths, a signal that is not 1-D or empty, a bad rate (PESQ-WB:
  16 kHz only): an error;
- integer-scaled input (e.g. int16 values, or one signal in int16 units and the other in [-1, 1]):
  the score of the same signals in [-1, 1].

An error is a one-line :class:`MburstError` naming the argument (``clean``/``est``) and why; a failed
estimate is never an error, and its score is the bottom of the metric's scale, so no failure ranks above
an estimate that carries the speech (pystoi alone rates a constant estimate 0.58, above a -20 dB mixture,
and pesq raises a bare ValueError on a muted one). :func:`score_all` scores a pair with every metric and returns each
error as the reason that metric is excluded, for tables that average over utterances
(:func:`experiments.speech.evaluation.summarise` counts the exclusions and says why).
"""
from __future__ import annotations

import warnings

import numpy as np

from neurons.common import MburstError

PESQ_RATE = 16_000
PESQ_WB_MAX = 4.644  # the top of the P.862.2 MOS-LQO mapping
#: The bottom of the P.862.2 scale: the limit of its MOS-LQO mapping 0.999 + 4 / (1 + exp(-1.3669 x + 3.8224))
#: as the raw score x falls (the library returns values down to about 1.02, never below this).
PESQ_WB_MIN = 0.999
METRIC_NAMES = ("stoi", "estoi", "pesq_wb", "si_sdr")
LABELS = {"stoi": "STOI", "estoi": "ESTOI", "pesq_wb": "PESQ-WB", "si_sdr": "SI-SDR"}


def validate_pair(clean, est, fs: int | None = None, *, require_fs: int | None = None,
                  names: tuple[str, str] = ("clean", "est")) -> tuple[np.ndarray, np.ndarray]:
    """Check a (reference, estimate) pair and return both as float64 1-D arrays.

    Parameters
    ----------
    clean, est : array_like, shape (n,)
        Any real numeric dtype (integers are converted, not rescaled).
    fs : int, optional
        Sample rate in Hz.
    require_fs : int, optional
        The rate the metric needs.
    names : (str, str)
        Argument names for the messages.

    Returns
    -------
    clean, est : ndarray of float64, shape (n,)

    Raises
    ------
    MburstError
        One line naming the argument: not 1-D (a stereo/multi-channel array where mono is needed),
        empty, different lengths, non-finite samples, a sample rate that is not a positive integer,
        or not ``require_fs`` when one is needed.
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
        raise MburstError(f"{names[1]}: length {arrays[1].size} differs from {names[0]} length {arrays[0].size} "
                          "(trim or align them first)")
    if fs is not None or require_fs is not None:
        if fs is None or isinstance(fs, bool) or not float(fs).is_integer() or fs <= 0:
            raise MburstError(f"fs: sample rate must be a positive integer in Hz, got {fs!r}")
        if require_fs is not None and int(fs) != require_fs:
            raise MburstError(f"fs: {fs} Hz given, but this metric needs {require_fs} Hz (resample first)")
    return arrays[0], arrays[1]


def _prepared(clean, est, metric: str, fs: int | None = None, require_fs: int | None = None):
    """Validated, zero-mean, peak-normalised signals; ``est`` is None when it carries no signal.

    Raises MburstError when the reference carries none (all samples equal).
    """
    x, y = validate_pair(clean, est, fs, require_fs=require_fs)
    if x.min() == x.max():
        raise MburstError(f"clean: constant reference (all samples equal: silence or DC), {metric} is undefined")
    x = x - x.mean()
    x /= np.max(np.abs(x))
    if y.min() == y.max():
        return x, None
    y = y - y.mean()
    return x, y / np.max(np.abs(y))


def _stoi(clean, est, fs: int, extended: bool) -> float:
    from pystoi import stoi as _pystoi

    name = "ESTOI" if extended else "STOI"
    x, y = _prepared(clean, est, name, fs)
    if y is None:
        return 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            score = _pystoi(x, y, int(fs), extended=extended)
        except Exception as err:  # noqa: BLE001 - a library failure becomes one line
            raise MburstError(f"est: {name} failed ({type(err).__name__}: {err})") from None
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise MburstError(f"clean: too little speech for {name} ({x.size} samples at {fs} Hz leave fewer than 30 "
                          "non-silent frames; it needs about 0.4 s of speech)")
    return float(score)


def stoi(clean, est, fs: int = 16_000) -> float:
    """Short-time objective intelligibility (Taal et al. 2011); inputs and values as in the module doc.

    Parameters
    ----------
    clean, est : array_like, shape (n,)
        Reference and estimate, any scale.
    fs : int
        Sample rate in Hz.

    Returns
    -------
    float
        In [0, 1] in practice; 0 for an estimate without signal.

    Raises
    ------
    MburstError
        On a bad input, a reference without signal or with too little speech (module doc).
    """
    return _stoi(clean, est, fs, extended=False)


def estoi(clean, est, fs: int = 16_000) -> float:
    """Extended STOI (Jensen & Taal 2016); inputs and values as in the module doc.

    Parameters
    ----------
    clean, est : array_like, shape (n,)
    fs : int
        Sample rate in Hz.

    Returns
    -------
    float
        In [-1, 1], about 0 for noise; 0 for an estimate without signal.

    Raises
    ------
    MburstError
        On a bad input, a reference without signal or with too little speech (module doc).
    """
    return _stoi(clean, est, fs, extended=True)


def pesq_wb(clean, est, fs: int = PESQ_RATE) -> float:
    """Wideband PESQ MOS-LQO (ITU-T P.862.2), 16 kHz only; inputs and values as in the module doc.

    Parameters
    ----------
    clean, est : array_like, shape (n,)
    fs : int
        Must be 16000.

    Returns
    -------
    float
        :data:`PESQ_WB_MIN` (bad, and any estimate without signal) .. :data:`PESQ_WB_MAX` (identical).

    Raises
    ------
    MburstError
        On a bad input or rate, a reference without signal, shorter than 0.25 s or without a
        detectable utterance, or any other failure of the library (one line).
    """
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    x, y = _prepared(clean, est, "PESQ", fs, PESQ_RATE)
    if y is None:
        return PESQ_WB_MIN
    try:
        return float(pesq(PESQ_RATE, x, y, "wb"))
    except BufferTooShortError:
        raise MburstError(f"clean: too little speech for PESQ ({x.size / PESQ_RATE:.3f} s; it needs at least 0.25 s)") from None
    except NoUtterancesError:
        raise MburstError("clean: too little speech for PESQ (no utterance detected in the reference)") from None
    except Exception as err:  # noqa: BLE001 - the library raises ValueError and others on odd input
        raise MburstError(f"est: PESQ failed ({type(err).__name__}: {err})") from None


def si_sdr(clean, est) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals zero-meaned first.

    Parameters
    ----------
    clean, est : array_like, shape (n,)

    Returns
    -------
    float
        dB; +inf for an exact scaled copy, -inf for an estimate without signal (or orthogonal to the
        reference).

    Raises
    ------
    MburstError
        On a bad input or a reference without signal.
    """
    x, y = _prepared(clean, est, "SI-SDR")
    if y is None:
        return float("-inf")
    target = (np.dot(y, x) / np.dot(x, x)) * x
    residual = y - target
    err, energy = float(np.dot(residual, residual)), float(np.dot(target, target))
    if err == 0.0:
        return float("inf")
    if energy == 0.0:
        return float("-inf")
    return float(10 * np.log10(energy / err))


METRICS = {"stoi": stoi, "estoi": estoi, "pesq_wb": pesq_wb, "si_sdr": lambda c, e, fs=16_000: si_sdr(c, e)}


def score_all(clean, est, fs: int = 16_000, metrics=METRIC_NAMES) -> tuple[dict[str, float], dict[str, str]]:
    """Every metric of ``est`` against ``clean``; a metric that is undefined on this pair is excluded, not raised.

    Parameters
    ----------
    clean, est : array_like, shape (n,)
    fs : int
        Sample rate in Hz (PESQ-WB is excluded at any rate but 16 kHz).
    metrics : sequence of str
        The metrics computed, names of :data:`METRIC_NAMES` (default: all); the others are NaN.

    Returns
    -------
    scores : dict of str to float
        Keys :data:`METRIC_NAMES`; NaN where excluded or not computed.
    excluded : dict of str to str
        The reason (the metric's one-line error) for each excluded metric.
    """
    scores, excluded = dict.fromkeys(METRIC_NAMES, float("nan")), {}
    for name in metrics:
        fn = METRICS[name]
        try:
            scores[name] = fn(clean, est, fs)
        except MburstError as err:
            scores[name], excluded[name] = float("nan"), str(err)
    return scores, excluded
