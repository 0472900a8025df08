"""Causal streaming enhancement: 40 ms hops and their lip frames in, the finished enhanced samples out.

Each frame goes through the same code as offline enhancement (:mod:`experiments.speech.masking`):
:func:`experiments.data.features.analyse`, ``log_power``, the training :class:`~experiments.data.frames.Stats`,
:func:`experiments.data.features.context_windows` over the last 8 feature rows, the mask and gain of
:mod:`experiments.speech.resynthesis`, and the overlap-add terms of
:func:`experiments.data.features.synthesis_frames` normalised by the same sum of squared windows as
:func:`experiments.data.features.istft`; the output equals :func:`experiments.speech.enhance.enhance`.
Hops may come one at a time (one model call per frame, the causal hearing-aid case) or in blocks (one
model call per block, for enhancing files in bounded memory); the output is the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np

from neurons.common import MburstError

from experiments.data.features import (CONTEXT, HOP, N_BINS, PAD, SAMPLE_RATE, WIN, WINDOW, analyse, context_windows,
                                       log_power, synthesis_frames)
from experiments.data.frames import Stats
from experiments.speech.masking import LIP_SHAPE, MaskFn, align_lips, call_mask_fn
from experiments.speech.resynthesis import DEFAULT_FLOOR, check_audio, frames_for, full_band_gain, select_mask


@dataclass
class FrameTimes:
    """Compute time per analysed frame, kept as running statistics (constant memory).

    Attributes
    ----------
    count : int
        Frames analysed.
    total : float
        Their compute time in s.
    worst : float
        The longest per-frame time in s (a block's time divided by its frames).
    """

    count: int = 0
    total: float = 0.0
    worst: float = 0.0

    def add(self, seconds: float, frames: int) -> None:
        """Count ``frames`` frames computed together in ``seconds`` s."""
        self.count += frames
        self.total += seconds
        self.worst = max(self.worst, seconds / frames)

    @property
    def mean(self) -> float:
        """Mean compute time per frame in s (NaN before any frame)."""
        return self.total / self.count if self.count else float("nan")


class StreamingEnhancer:
    """Causal enhancement of a stream of hops, equal to :func:`experiments.speech.enhance.enhance` on the same input.

    Push 640-sample hops with their lip frames, one (:meth:`push`) or several (:meth:`push_hops`) at a
    time. Frame t spans input samples [640 t - 302, 640 t + 942), so it can be analysed once hop t+1
    has arrived; its model input is frames t-7..t (the last 8 standardised feature rows) and lip frame
    t. The masked frames are overlap-added and every output sample no later frame touches (those
    before 640 (t+1) - 302) is emitted. Memory does not grow with the stream's length.

    Algorithmic latency (input sample in -> enhanced sample out, compute time
    excluded, one hop at a time): at most 2 hops + 302 samples = 1582 samples = 98.9 ms (an output
    sample waits for the frame that starts 302 samples before it to be complete,
    plus one hop of input buffering); the usual bound window + hop = 1884
    samples = 117.75 ms. Blocks of k hops add k - 1 hops.

    Parameters
    ----------
    mask_fn : MaskFn
        The model (:func:`experiments.speech.masking.torch_mask_fn`).
    stats : Stats, optional
        Training-set statistics (default: none, :meth:`Stats.identity`).
    mask, threshold, upper, floor
        As :func:`experiments.speech.enhance.enhance`.

    Attributes
    ----------
    times : FrameTimes
        Compute time per frame.

    Raises
    ------
    MburstError
        On an unknown mask kind or upper-bin policy, or a floor outside [0, 1].
    """

    LATENCY_SAMPLES = 2 * HOP + PAD

    def __init__(self, mask_fn: MaskFn, stats: Stats | None = None, *, mask: str = "soft",
                 threshold: float = 0.5, upper: str = "attenuate", floor: float | str = DEFAULT_FLOOR) -> None:
        select_mask(np.zeros((1, N_BINS)), mask)
        full_band_gain(np.zeros((1, N_BINS)), upper, floor)
        self.mask_fn, self.stats = mask_fn, stats or Stats.identity()
        self.mask_kind, self.threshold, self.upper, self.floor = mask, threshold, upper, floor
        # input history in padded coordinates: padded[i] = x[i - 302]; starts with the 302 leading zeros
        self._inp = np.zeros(PAD)
        self._inp_start = 0  # padded index of self._inp[0]
        self._acc = np.zeros(WIN + HOP)  # overlap-add accumulators (padded coordinates from _acc_start)
        self._norm = np.zeros(WIN + HOP)
        self._acc_start = 0
        self._features = np.zeros((0, N_BINS), np.float32)  # the last CONTEXT - 1 standardised feature rows
        self._lips: list[np.ndarray] = []  # lip frames of the frames not yet analysed
        self._last_lip: np.ndarray | None = None
        self._next_frame = 0  # next analysis frame t
        self._received = 0  # input samples so far
        self._finished = False
        self.times = FrameTimes()

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency in ms (:attr:`LATENCY_SAMPLES` at 16 kHz)."""
        return 1000.0 * self.LATENCY_SAMPLES / SAMPLE_RATE

    def _frames(self, stop: int) -> None:
        """Analyse, mask and overlap-add frames _next_frame .. stop - 1 (one model call)."""
        begin, t0 = perf_counter(), self._next_frame
        k = stop - t0
        lo = t0 * HOP - self._inp_start
        spec = analyse(self._inp[lo:lo + (k - 1) * HOP + WIN], k)  # zeros past the input's end
        rows = np.concatenate([self._features, self.stats.audio(log_power(spec))])
        first = stop - len(rows)  # frame number of rows[0]
        audio = context_windows(rows, np.arange(len(rows) - k, len(rows)), np.arange(first, stop), CONTEXT)[:, None]
        self._features = rows[-(CONTEXT - 1):]
        lips, self._lips = self._lips[:k], self._lips[k:]
        probs = call_mask_fn(self.mask_fn, audio, self.stats.lips(np.stack(lips))[:, None])
        gain = full_band_gain(select_mask(probs, self.mask_kind, self.threshold), self.upper, self.floor)
        chunks = synthesis_frames(spec * gain)
        need = stop * HOP - HOP + WIN - self._acc_start
        if need > len(self._acc):
            self._acc, self._norm = np.pad(self._acc, (0, need - len(self._acc))), np.pad(self._norm, (0, need - len(self._norm)))
        for j in range(k):
            off = (t0 + j) * HOP - self._acc_start
            self._acc[off:off + WIN] += chunks[j]
            self._norm[off:off + WIN] += WINDOW ** 2
        self._next_frame = stop
        self.times.add(perf_counter() - begin, k)

    def _emit(self, upto_padded: int) -> np.ndarray:
        """Output samples up to padded index ``upto_padded`` (exclusive), i.e. original x[.. upto - 302]."""
        n = upto_padded - self._acc_start
        acc, norm = self._acc[:n], self._norm[:n]
        out = np.where(norm > 1e-8, acc / np.where(norm > 1e-8, norm, 1.0), 0.0)
        self._acc = np.concatenate([self._acc[n:], np.zeros(n)])
        self._norm = np.concatenate([self._norm[n:], np.zeros(n)])
        self._acc_start = upto_padded
        # padded indices < 302 are the leading pad, not output
        skip = max(0, PAD - (upto_padded - n))
        return out[skip:]

    def _check_lip(self, lip) -> np.ndarray:
        lip = np.asarray(lip)
        if lip.shape != LIP_SHAPE:
            raise MburstError(f"lip: expected shape {LIP_SHAPE}, got {lip.shape}")
        return lip

    def push(self, hop: np.ndarray, lip: np.ndarray) -> np.ndarray:
        """Feed one hop and its lip frame.

        Parameters
        ----------
        hop : ndarray, shape (640,)
            16 kHz mono samples.
        lip : ndarray, shape (50, 92)
            The lip crop of this hop's video frame.

        Returns
        -------
        ndarray of float64, shape (k,)
            The enhanced samples finished by this hop (k = 640 once the stream runs; fewer at its start).

        Raises
        ------
        MburstError
            After :meth:`finish`, or on a hop or lip frame of another shape or with NaN/inf.
        """
        hop = check_audio(hop, "hop")
        if hop.size != HOP:
            raise MburstError(f"hop: expected {HOP} samples, got {hop.size} (use finish() for the last partial hop)")
        return self.push_hops(hop, self._check_lip(lip)[None])

    def push_hops(self, hops: np.ndarray, lips: np.ndarray) -> np.ndarray:
        """Feed k whole hops and their k lip frames; the frames they complete share one model call.

        Parameters
        ----------
        hops : ndarray, shape (640 k,)
            16 kHz mono samples.
        lips : ndarray, shape (k, 50, 92)
            Lip crops, one per hop.

        Returns
        -------
        ndarray of float64
            The enhanced samples finished by these hops (640 k once the stream runs).

        Raises
        ------
        MburstError
            After :meth:`finish`, or on samples that are not whole hops, lips of another number or
            shape, or NaN/inf.
        """
        if self._finished:
            raise MburstError("hop: the stream has finished; start a new StreamingEnhancer")
        hops = check_audio(hops, "hops")
        lips = np.asarray(lips)
        if hops.size % HOP or lips.shape != (hops.size // HOP, *LIP_SHAPE):
            raise MburstError(f"hops: expected whole {HOP}-sample hops and one {LIP_SHAPE} lip frame each, "
                              f"got {hops.size} samples and lips of shape {lips.shape}")
        self._inp = np.concatenate([self._inp, hops])
        self._received += hops.size
        self._lips.extend(lips)
        self._last_lip = lips[-1]
        # frame t is complete once padded samples up to t*HOP + WIN are in
        stop = (self._inp_start + len(self._inp) - WIN) // HOP + 1
        if stop <= self._next_frame:
            return np.zeros(0)
        self._frames(stop)
        out = self._emit(stop * HOP)
        keep_from = stop * HOP - self._inp_start  # the next frame starts here
        self._inp, self._inp_start = self._inp[keep_from:], stop * HOP
        return out

    def finish(self, tail: np.ndarray | None = None, lip: np.ndarray | None = None) -> np.ndarray:
        """End of input: analyse the remaining frames and flush the output.

        Parameters
        ----------
        tail : ndarray, shape (< 640,), optional
            A last partial hop.
        lip : ndarray, shape (50, 92), optional
            Its lip frame (default: the previous one).

        Returns
        -------
        ndarray of float64
            The rest of the enhanced signal.

        Raises
        ------
        MburstError
            When called twice, on a tail of 640 samples or more, or with no lip frame for the only hop.
        """
        if self._finished:
            raise MburstError("finish: the stream has already finished")
        if tail is not None and np.asarray(tail).size:
            tail = check_audio(tail, "tail")
            if tail.size >= HOP:
                raise MburstError(f"tail: expected fewer than {HOP} samples, got {tail.size}")
            if lip is None:
                if self._last_lip is None:
                    raise MburstError("lip: no lip frame given for the only (partial) hop")
                lip = self._last_lip
            self._lips.append(self._check_lip(lip))
            self._inp = np.concatenate([self._inp, tail, np.zeros(HOP - tail.size)])
            self._received += tail.size
        frames = frames_for(self._received)
        self._inp = np.concatenate([self._inp, np.zeros(WIN)])
        if self._next_frame < frames:
            self._frames(frames)
        end = self._received + PAD
        self._finished = True
        return self._emit(end) if end > self._acc_start else np.zeros(0)

    def run(self, noisy: np.ndarray, lips: np.ndarray, block: int = 1) -> np.ndarray:
        """Stream a whole signal through, ``block`` hops at a time.

        Parameters
        ----------
        noisy : ndarray, shape (n,)
            16 kHz samples.
        lips : ndarray, shape (>= ceil(n / 640) - 1, 50, 92)
            Lip crops (:func:`experiments.speech.masking.align_lips`).
        block : int
            Hops per :meth:`push_hops` call.

        Returns
        -------
        ndarray of float64, shape (n,)

        Raises
        ------
        MburstError
            On bad audio or too few lip frames.
        """
        noisy = check_audio(noisy, "noisy")
        lips = align_lips(lips, frames_for(noisy.size))
        whole = noisy.size // HOP
        parts = [self.push_hops(noisy[k * HOP:min(k + block, whole) * HOP], lips[k:min(k + block, whole)])
                 for k in range(0, whole, block)]
        rest = noisy[whole * HOP:]
        parts.append(self.finish(rest if rest.size else None, lips[whole] if rest.size else None))
        return np.concatenate(parts)
