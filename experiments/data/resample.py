"""Resampling to 16 kHz: scipy's polyphase filter on a whole signal, or the same samples chunk by chunk.

:func:`resample_to` is ``scipy.signal.resample_poly`` with its default low-pass (kaiser 5.0,
10 x max(up, down) taps each side, designed once). :class:`StreamResampler` applies the same filter chunk by
chunk with the same zero padding at both ends, so a stream gives the samples of the whole-signal
resampling (tests/test_data_audio.py) in memory that does not grow with the recording.

Sources below :data:`MIN_SOURCE_RATE` are refused: the modelled band reaches bin
:data:`~experiments.data.features.N_BINS` (N_BINS * 16000 / WIN Hz, about 6.4 kHz), which a
source sampled below twice that cannot supply.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Iterator

import numpy as np

from neurons.common import MburstError

from experiments.data.features import N_BINS, SAMPLE_RATE, WIN

MIN_SOURCE_RATE = int(np.ceil(2 * N_BINS * SAMPLE_RATE / WIN))
def check_source_rate(rate: int, source: str) -> None:
    """Refuse a sample rate below :data:`MIN_SOURCE_RATE`.

    Parameters
    ----------
    rate : int
        Sample rate in Hz.
    source : str
        Name of the file or argument for the message.

    Raises
    ------
    MburstError
        If ``rate`` is below :data:`MIN_SOURCE_RATE`.
    """
    if rate < MIN_SOURCE_RATE:
        raise MburstError(f"{source}: sample rate {rate} Hz is below the {MIN_SOURCE_RATE} Hz needed for the modelled {N_BINS} bins")


@lru_cache(maxsize=8)
def _fir(up: int, down: int) -> np.ndarray:
    """resample_poly's own default low-pass (kaiser 5.0, 10 x max(up, down) taps each side), designed once.

    The design costs more than the filtering for 44.1 -> 16 kHz (441/160).
    """
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


def _ratio(rate: int, target: int) -> tuple[int, int]:
    frac = Fraction(target, int(rate))
    return frac.numerator, frac.denominator


def resample_to(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE, *, source: str = "audio") -> np.ndarray:
    """Mono float64 ``audio`` at ``rate`` Hz -> ``target`` Hz (polyphase, scipy.signal.resample_poly).

    Parameters
    ----------
    audio : ndarray, shape (n,)
    rate, target : int
        Sample rates in Hz.
    source : str
        Name of the file for the error message.

    Returns
    -------
    ndarray of float64, shape (ceil(n * target / rate),)

    Raises
    ------
    MburstError
        Naming ``source`` when ``rate`` is below :data:`MIN_SOURCE_RATE`.
    """
    from scipy.signal import resample_poly

    check_source_rate(rate, source)
    if rate == target:
        return np.asarray(audio, dtype=np.float64)
    up, down = _ratio(rate, target)
    return resample_poly(np.asarray(audio, dtype=np.float64), up, down, window=_fir(up, down))


class StreamResampler:
    """``resample_poly(x, up, down)`` computed chunk by chunk: the same output samples, bounded memory.

    With the zero-padded filter h' of ``resample_poly`` (the kaiser low-pass times ``up``, with its
    ``pre`` leading zeros), output m is Y[m + r] where Y[k] = sum_n x[n] h'[k down - n up]. Y[k] needs
    the inputs n in ((k down - L) / up, k down / up]; :meth:`push` emits every Y[k] whose inputs have
    all arrived and keeps only the inputs later outputs need (from a multiple of ``down``, so each
    block's ``upfirdn`` phase matches the whole signal's); :meth:`finish` completes the tail with the
    zeros past the end.

    Parameters
    ----------
    rate, target : int
        Input and output sample rates in Hz.
    """

    def __init__(self, rate: int, target: int = SAMPLE_RATE) -> None:
        self.up, self.down = _ratio(rate, target)
        taps = _fir(self.up, self.down)
        half = (taps.size - 1) // 2
        pre = self.down - half % self.down
        self.skip = (half + pre) // self.down  # r: outputs removed at the start
        self.h = np.concatenate([np.zeros(pre), taps * self.up])
        self._buf = np.zeros(0)
        self._start = 0  # input index of _buf[0] (a multiple of down)
        self._next = 0  # next Y index to emit
        self._received = 0

    def _run(self, upto: int) -> np.ndarray:
        """Y[_next .. upto) from the buffered inputs (zeros outside them)."""
        from scipy.signal import upfirdn

        if upto <= self._next:
            return np.zeros(0)
        first = self._start * self.up // self.down  # Y index of the block's output 0
        block = upfirdn(self.h, self._buf, self.up, self.down)
        need = upto - first
        if block.size < need:
            block = np.pad(block, (0, need - block.size))
        out = block[self._next - first:need]
        self._next = upto
        return out

    def _trim(self) -> None:
        """Drop the inputs no output from Y[_next] on needs."""
        earliest = -(-(self._next * self.down - self.h.size + 1) // self.up)
        keep_from = max(self._start, (max(earliest, 0) // self.down) * self.down)
        self._buf = self._buf[keep_from - self._start:]
        self._start = keep_from

    def _outputs(self, y: np.ndarray) -> np.ndarray:
        """Y values -> output samples (the first ``skip`` are the filter's delay)."""
        drop = max(0, min(y.size, self.skip - (self._next - y.size)))
        return y[drop:]

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add input samples; return the output samples they complete.

        Parameters
        ----------
        chunk : ndarray, shape (k,)
            Mono samples at the input rate.

        Returns
        -------
        ndarray of float64
            The next output samples at the target rate (possibly none).
        """
        chunk = np.asarray(chunk, dtype=np.float64)
        self._buf = np.concatenate([self._buf, chunk])
        self._received += chunk.size
        # Y[k] is complete once input floor(k down / up) has arrived: k < received * up / down
        complete = -(-self._received * self.up // self.down)
        y = self._run(complete)
        out = self._outputs(y)
        self._trim()
        return out

    def finish(self) -> np.ndarray:
        """The last output samples (zeros past the end of the input).

        Returns
        -------
        ndarray of float64
            So that all outputs number ceil(n_in * up / down), as ``resample_poly``.
        """
        total = -(-self._received * self.up // self.down)
        y = self._run(total + self.skip)
        return self._outputs(y)


def output_length(n_in: int, rate: int, target: int = SAMPLE_RATE) -> int:
    """Samples after resampling ``n_in`` samples from ``rate`` to ``target`` Hz: ceil(n_in target / rate).

    Parameters
    ----------
    n_in : int
    rate, target : int
        Sample rates in Hz.

    Returns
    -------
    int
    """
    up, down = _ratio(rate, target)
    return -(-n_in * up // down)


def resampled(chunks, rate: int, target: int = SAMPLE_RATE, source: str = "audio") -> Iterator[np.ndarray]:
    """A stream of chunks at ``rate`` -> the same stream at ``target`` Hz (:class:`StreamResampler`).

    Parameters
    ----------
    chunks : iterable of ndarray
        Mono float64 chunks at ``rate`` Hz.
    rate, target : int
        Sample rates in Hz.
    source : str
        Name of the file for the error message.

    Yields
    ------
    ndarray of float64
        Mono chunks at ``target`` Hz (empty ones skipped).

    Raises
    ------
    MburstError
        When ``rate`` is below :data:`MIN_SOURCE_RATE`.
    """
    check_source_rate(rate, source)
    if rate == target:
        yield from chunks
        return
    resampler = StreamResampler(rate, target)
    for chunk in chunks:
        out = resampler.push(chunk)
        if out.size:
            yield out
    tail = resampler.finish()
    if tail.size:
        yield tail
