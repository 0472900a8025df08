"""Causal streaming enhancement: one 40 ms hop and its lip frame in, the finished enhanced samples out.

Each frame goes through the same code as offline enhancement (:mod:`experiments.speech.masking`):
:func:`experiments.data.features.analyse`, ``log_power``, the training :class:`~experiments.data.frames.Stats`,
:func:`experiments.data.features.context_windows` over the last 8 feature rows, the mask and gain of
:mod:`experiments.speech.resynthesis`, and the overlap-add terms of
:func:`experiments.data.features.synthesis_frames` normalised by the same sum of squared windows as
:func:`experiments.data.features.istft`; the output equals :func:`experiments.speech.enhance.enhance`.
"""
from __future__ import annotations

from time import perf_counter

import numpy as np

from neurons.common import MburstError

from experiments.data.features import (CONTEXT, HOP, N_BINS, PAD, SAMPLE_RATE, WIN, WINDOW, analyse, context_windows,
                                       log_power, synthesis_frames)
from experiments.data.frames import Stats
from experiments.speech.masking import LIP_SHAPE, MaskFn, align_lips, call_mask_fn
from experiments.speech.resynthesis import DEFAULT_FLOOR, check_audio, frames_for, full_band_gain, select_mask


class StreamingEnhancer:
    """Causal frame-by-frame enhancement, equal to :func:`experiments.speech.enhance.enhance` on the same input.

    Push one 640-sample hop and its lip frame at a time. Frame t spans input
    samples [640 t - 302, 640 t + 942), so it can be analysed once hop t+1 has
    arrived; its model input is frames t-7..t (the last 8 standardised feature
    rows) and lip frame t. The masked frame is overlap-added and every output
    sample no later frame touches (those before 640 (t+1) - 302) is emitted.

    Algorithmic latency (input sample in -> enhanced sample out, compute time
    excluded): at most 2 hops + 302 samples = 1582 samples = 98.9 ms (an output
    sample waits for the frame that starts 302 samples before it to be complete,
    plus one hop of input buffering); the usual bound window + hop = 1884
    samples = 117.75 ms.

    Parameters
    ----------
    mask_fn : MaskFn
        The model (:func:`experiments.speech.masking.torch_mask_fn`).
    stats : Stats, optional
        Training-set statistics (default: none, :meth:`Stats.identity`).
    mask, threshold, upper, floor
        As :func:`experiments.speech.enhance.enhance`.

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
        self._features = np.zeros((0, N_BINS), np.float32)  # the last CONTEXT standardised feature rows
        self._lips: list[np.ndarray] = []  # lip frames of the frames not yet analysed
        self._last_lip: np.ndarray | None = None
        self._next_frame = 0  # next analysis frame t
        self._received = 0  # input samples so far
        self._finished = False
        self.frame_seconds: list[float] = []  # compute time of each analysed frame

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency in ms (:attr:`LATENCY_SAMPLES` at 16 kHz)."""
        return 1000.0 * self.LATENCY_SAMPLES / SAMPLE_RATE

    def _frame(self, t: int) -> None:
        begin = perf_counter()
        lo = t * HOP - self._inp_start
        spec = analyse(self._inp[lo:lo + WIN], 1)  # zeros past the input's end
        self._features = np.concatenate([self._features, self.stats.audio(log_power(spec))])[-CONTEXT:]
        kept = len(self._features)  # rows t-kept+1..t
        audio = context_windows(self._features, [kept - 1], np.arange(t + 1 - kept, t + 1), CONTEXT)[:, None]
        lip = self.stats.lips(self._lips.pop(0)[None])[:, None]
        probs = call_mask_fn(self.mask_fn, audio, lip)
        gain = full_band_gain(select_mask(probs, self.mask_kind, self.threshold), self.upper, self.floor)
        chunk = synthesis_frames(spec * gain)[0]
        off = t * HOP - self._acc_start
        if off + WIN > len(self._acc):
            grow = off + WIN - len(self._acc)
            self._acc, self._norm = np.pad(self._acc, (0, grow)), np.pad(self._norm, (0, grow))
        self._acc[off:off + WIN] += chunk
        self._norm[off:off + WIN] += WINDOW ** 2
        self._next_frame = t + 1
        self.frame_seconds.append(perf_counter() - begin)

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
        if self._finished:
            raise MburstError("hop: the stream has finished; start a new StreamingEnhancer")
        hop = check_audio(hop, "hop")
        if hop.size != HOP:
            raise MburstError(f"hop: expected {HOP} samples, got {hop.size} (use finish() for the last partial hop)")
        lip = np.asarray(lip)
        if lip.shape != LIP_SHAPE:
            raise MburstError(f"lip: expected shape {LIP_SHAPE}, got {lip.shape}")
        self._inp = np.concatenate([self._inp, hop])
        self._received += HOP
        self._lips.append(lip)
        self._last_lip = lip
        out = []
        # frame t is complete once padded samples up to t*HOP + WIN are in
        while self._next_frame * HOP + WIN <= self._inp_start + len(self._inp):
            t = self._next_frame
            self._frame(t)
            out.append(self._emit(t * HOP + HOP))
            keep_from = (t + 1) * HOP - self._inp_start  # the next frame starts here
            self._inp, self._inp_start = self._inp[keep_from:], (t + 1) * HOP
        return np.concatenate(out) if out else np.zeros(0)

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
            lip = np.asarray(lip)
            if lip.shape != LIP_SHAPE:
                raise MburstError(f"lip: expected shape {LIP_SHAPE}, got {lip.shape}")
            self._inp = np.concatenate([self._inp, tail, np.zeros(HOP - tail.size)])
            self._lips.append(lip)
            self._received += tail.size
        frames = frames_for(self._received)
        self._inp = np.concatenate([self._inp, np.zeros(WIN)])
        while self._next_frame < frames:
            self._frame(self._next_frame)
        end = self._received + PAD
        self._finished = True
        return self._emit(end) if end > self._acc_start else np.zeros(0)

    def run(self, noisy: np.ndarray, lips: np.ndarray) -> np.ndarray:
        """Stream a whole signal through, hop by hop.

        Parameters
        ----------
        noisy : ndarray, shape (n,)
            16 kHz samples.
        lips : ndarray, shape (>= ceil(n / 640) - 1, 50, 92)
            Lip crops (:func:`experiments.speech.masking.align_lips`).

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
        parts = [self.push(noisy[k * HOP:(k + 1) * HOP], lips[k]) for k in range(whole)]
        rest = noisy[whole * HOP:]
        parts.append(self.finish(rest if rest.size else None, lips[whole] if rest.size else None))
        return np.concatenate(parts)

