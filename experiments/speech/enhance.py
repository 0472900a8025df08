"""Enhanced speech out: masks applied to the noisy STFT, resynthesis, and a causal streaming mode.

Pipeline (reference.md section 1; features from :mod:`experiments.data.features`):

1. noisy 16 kHz audio -> STFT X(t, f) (hamming 1244, hop 640, 623 bins);
2. model input per frame t: standardised log-power of bins 1..500,
   a(t, f) = (ln(|X(t, f)|^2 + 1e-8) - mu_f) / sigma_f, frames t-7..t stacked
   (zeros, i.e. the training mean, before frame 0) -> [1, 8, 500], plus the lip
   crop of video frame t standardised as (L - mu_L) / sigma_L -> [1, 50, 92];
3. ``mask_fn(audio [B,1,8,500], visual [B,1,50,92]) -> probabilities [B,500]``;
   the soft mask is the probability itself, the binary mask is prob >= 0.5;
4. gain G(t, f): the mask on bins 1..500; on DC and the 122 bins above the
   modelled band (6.4-8 kHz) an *upper-bin policy*:
   ``"attenuate"`` multiplies them by ``floor`` (a number, or ``"mean"`` = the
   frame's mean mask over bins 1..500), ``"pass"`` keeps them noisy (gain 1);
5. Y = G X, inverted by least-squares overlap-add (:func:`features.istft`).

Any length of audio works: the signal is zero-padded to whole hops
(ceil(n / 640) frames), which leaves the STFT frames of the original unchanged,
and the output is cut back to n samples. Lip frame t belongs to audio frame t
(25 fps = one frame per 40 ms hop).

Oracle masks (from the separate clean speech S and noise N):
- IBM(t, f) = 1[10 log10(|S|^2 / |N|^2) >= LC] (LC = 5 dB, :func:`features.ideal_binary_mask`);
- the oracle soft mask is the ideal Wiener gain (the power-domain ideal ratio
  mask, IRM with beta = 1; Wang, Narayanan & Wang 2014, IEEE/ACM TASLP 22(12)):
  W(t, f) = |S|^2 / (|S|^2 + |N|^2).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from neurons.common import MburstError

from experiments.data.features import (CONTEXT, HOP, LOG_EPS, N_BINS, N_BINS_TOTAL, SAMPLE_RATE, WIN, band_width, expand_bands,
                       ideal_binary_mask, istft, power_bins, stft)

MaskFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
MASK_KINDS = ("soft", "binary")
UPPER_POLICIES = ("attenuate", "pass")
DEFAULT_FLOOR = 0.0
LIP_SHAPE = (50, 92)
_PAD = (WIN - HOP) // 2  # 302 samples: frame t spans original samples [t*HOP - 302, t*HOP + 942)


# ---------------------------------------------------------------- standardisation
@dataclass(frozen=True)
class Standardiser:
    """Training-set feature statistics: a = (log-power - audio_mean) / audio_std per bin,
    v = (lip pixel - lip_mean) / lip_std. The identity (0, 1) when no statistics are known."""

    audio_mean: np.ndarray
    audio_std: np.ndarray
    lip_mean: float = 0.0
    lip_std: float = 1.0

    @classmethod
    def identity(cls) -> "Standardiser":
        return cls(np.zeros(N_BINS, np.float32), np.ones(N_BINS, np.float32))

    def __post_init__(self) -> None:
        for name in ("audio_mean", "audio_std"):
            arr = np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
            if arr.shape != (N_BINS,):
                raise MburstError(f"{name}: expected {N_BINS} per-bin values, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise MburstError(f"{name}: contains NaN or inf")
            object.__setattr__(self, name, arr)
        if np.any(self.audio_std <= 0):
            raise MburstError("audio_std: must be positive in every bin")
        if not np.isfinite(self.lip_std) or self.lip_std <= 0:
            raise MburstError(f"lip_std: must be positive, got {self.lip_std}")

    def audio(self, spec: np.ndarray) -> np.ndarray:
        """Standardised log-power of bins 1..500 of a complex STFT [frames, 623] -> float32 [frames, 500]."""
        logp = np.log(power_bins(spec) + LOG_EPS)
        return ((logp - self.audio_mean) / self.audio_std).astype(np.float32)

    def lips(self, crops: np.ndarray) -> np.ndarray:
        """Standardised lip crops [frames, 50, 92] (any numeric dtype) -> float32."""
        return ((np.asarray(crops, dtype=np.float32) - np.float32(self.lip_mean)) / np.float32(self.lip_std))


# ---------------------------------------------------------------- masks and gains
def binarise(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Binary mask 1[p >= threshold] as float32."""
    return (np.asarray(probs) >= threshold).astype(np.float32)


def select_mask(probs: np.ndarray, kind: str = "soft", threshold: float = 0.5) -> np.ndarray:
    """The soft mask (probabilities) or the binary mask (p >= threshold)."""
    if kind not in MASK_KINDS:
        raise MburstError(f"--mask: expected one of {', '.join(MASK_KINDS)}, got {kind!r}")
    return np.asarray(probs, dtype=np.float32) if kind == "soft" else binarise(probs, threshold)


def full_band_gain(mask: np.ndarray, upper: str = "attenuate", floor: float | str = DEFAULT_FLOOR) -> np.ndarray:
    """Gain over all 623 bins from a mask over bins 1..500 (the upper-bin policy in the module doc)."""
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


def _padded(signal: np.ndarray) -> np.ndarray:
    """Zero-pad to whole hops (the STFT frames of the original are unchanged)."""
    frames = -(-len(signal) // HOP)
    return np.pad(signal, (0, frames * HOP - len(signal)))


def frames_for(n_samples: int) -> int:
    """Frames (and lip frames) needed to enhance ``n_samples`` samples: ceil(n / 640)."""
    return -(-n_samples // HOP)


def check_audio(audio, name: str = "audio", fs: int = SAMPLE_RATE) -> np.ndarray:
    """A mono, finite, non-empty 16 kHz signal as float64, else a one-line MburstError naming ``name``."""
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
    """STFT of ``signal`` zero-padded to whole hops: ceil(n / 640) frames."""
    return stft(_padded(np.asarray(signal, dtype=np.float64)))


def apply_gain(noisy: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply the noisy STFT by ``gain`` [frames, 623] and invert to len(noisy) samples."""
    noisy = check_audio(noisy, "noisy")
    spec = stft_padded(noisy)
    if gain.shape != spec.shape:
        raise MburstError(f"mask: {gain.shape[0]} frames given, the audio has {spec.shape[0]} (ceil(samples / {HOP}))")
    return istft(spec * gain, len(spec) * HOP)[:len(noisy)]


def resynthesise(noisy: np.ndarray, mask: np.ndarray, upper: str = "attenuate",
                 floor: float | str = DEFAULT_FLOOR) -> np.ndarray:
    """Enhanced waveform: ``mask`` [ceil(n/640), 500] applied to the noisy STFT, inverted (16 kHz)."""
    return apply_gain(noisy, full_band_gain(mask, upper, floor))


# ---------------------------------------------------------------- oracle masks
def oracle_masks(clean: np.ndarray, noise: np.ndarray, lc_db: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """(IBM, ideal Wiener gain) over bins 1..500 from the separate clean speech and noise (float32)."""
    clean = check_audio(clean, "clean")
    noise = check_audio(noise, "noise")
    if clean.size != noise.size:
        raise MburstError(f"noise: length {noise.size} differs from clean length {clean.size}")
    cs, ns = stft_padded(clean), stft_padded(noise)
    ps, pn = power_bins(cs), power_bins(ns)
    wiener = ps / np.maximum(ps + pn, 1e-20)
    return ideal_binary_mask(cs, ns, lc_db).astype(np.float32), wiener.astype(np.float32)


# ---------------------------------------------------------------- model masks
def align_lips(lips: np.ndarray, frames: int, source: str = "video") -> np.ndarray:
    """Lip crops for ``frames`` audio frames: extra video frames are dropped; when the
    audio ends in a partial hop, the last lip frame serves it too; fewer lip frames than
    whole hops of audio is an error (the video is shorter than the audio)."""
    lips = np.asarray(lips)
    if lips.ndim != 3 or lips.shape[1:] != LIP_SHAPE:
        raise MburstError(f"{source}: expected lip crops [frames, {LIP_SHAPE[0]}, {LIP_SHAPE[1]}], got shape {lips.shape}")
    if len(lips) >= frames:
        return lips[:frames]
    if len(lips) == frames - 1 and len(lips) > 0:
        return np.concatenate([lips, lips[-1:]])
    raise MburstError(f"{source}: video has {len(lips)} frames ({len(lips) / 25:.2f} s) but the audio needs "
                      f"{frames} ({frames * HOP / SAMPLE_RATE:.2f} s): the video is shorter than the audio")


def context_stack(features: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """[frames, F] -> [frames, 1, context, F]: row t holds frames t-context+1..t, zeros before frame 0
    (the same windows as :func:`features.context_window`)."""
    padded = np.concatenate([np.zeros((context - 1, features.shape[1]), features.dtype), features])
    windows = np.lib.stride_tricks.sliding_window_view(padded, context, axis=0)  # [frames, F, context]
    return np.ascontiguousarray(windows.transpose(0, 2, 1))[:, None]


def _call_mask_fn(mask_fn: MaskFn, audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
    out = np.asarray(mask_fn(audio, visual), dtype=np.float32)
    if out.shape != (audio.shape[0], N_BINS):
        raise MburstError(f"mask_fn: returned shape {out.shape}, expected ({audio.shape[0]}, {N_BINS})")
    return out


def predict_probs(noisy: np.ndarray, lips: np.ndarray, mask_fn: MaskFn, stats: Standardiser | None = None,
                  batch_size: int = 64, source: str = "video") -> np.ndarray:
    """Mask probabilities [ceil(n/640), 500] of a model for the whole utterance (batched)."""
    stats = stats or Standardiser.identity()
    noisy = check_audio(noisy, "noisy")
    spec = stft_padded(noisy)
    audio = context_stack(stats.audio(spec))
    visual = stats.lips(align_lips(lips, len(spec), source))[:, None]
    return np.concatenate([_call_mask_fn(mask_fn, audio[i:i + batch_size], visual[i:i + batch_size])
                           for i in range(0, len(spec), batch_size)])


@dataclass
class Enhanced:
    """An enhancement result: waveform (16 kHz, len = input), probabilities and the applied mask."""

    audio: np.ndarray
    probs: np.ndarray
    mask: np.ndarray
    seconds: float  # processing time

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration."""
        return self.seconds / (len(self.audio) / SAMPLE_RATE)


def enhance(noisy: np.ndarray, lips: np.ndarray, mask_fn: MaskFn, stats: Standardiser | None = None, *,
            mask: str = "soft", threshold: float = 0.5, upper: str = "attenuate",
            floor: float | str = DEFAULT_FLOOR, batch_size: int = 64) -> Enhanced:
    """Offline enhancement of a whole utterance (any length) with a model's mask."""
    start = time.perf_counter()
    noisy = check_audio(noisy, "noisy")
    probs = predict_probs(noisy, lips, mask_fn, stats, batch_size)
    chosen = select_mask(probs, mask, threshold)
    out = resynthesise(noisy, chosen, upper, floor)
    return Enhanced(out, probs, chosen, time.perf_counter() - start)


def torch_mask_fn(model, device: str = "cpu") -> MaskFn:
    """Wrap a torch module ``model(audio, visual) -> probabilities`` as a numpy :data:`MaskFn` (eval, no grad).

    A model with fewer bands than the 500 feature bins (``config.n_bins``) sees band-pooled features
    and its band mask is spread back over the bins (:func:`features.expand_bands`)."""
    import torch

    model.eval()
    bands = getattr(getattr(model, "config", None), "n_bins", N_BINS)
    width = band_width(N_BINS, bands)

    def fn(audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            a = torch.from_numpy(np.require(audio, np.float32, ["C", "W"])).to(device)
            v = torch.from_numpy(np.require(visual, np.float32, ["C", "W"])).to(device)
            if width > 1:
                a = a.reshape(*a.shape[:-1], bands, width).mean(-1)
            out = model(a, v)
        return expand_bands(out.detach().cpu().numpy(), N_BINS)

    return fn


# ---------------------------------------------------------------- streaming
class StreamingEnhancer:
    """Causal frame-by-frame enhancement, equal to :func:`enhance` on the same input.

    Push one 640-sample hop and its lip frame at a time. Frame t spans input
    samples [640 t - 302, 640 t + 942), so it can be analysed once hop t+1 has
    arrived; its model input is frames t-7..t (kept in a ring of 8 standardised
    feature rows) and lip frame t. The masked frame is overlap-added and every
    output sample no later frame touches (those before 640 (t+1) - 302) is
    emitted, normalised by the same sum of squared windows as :func:`features.istft`.

    Algorithmic latency (input sample in -> enhanced sample out, compute time
    excluded): at most 2 hops + 302 samples = 1582 samples = 98.9 ms (an output
    sample waits for the frame that starts 302 samples before it to be complete,
    plus one hop of input buffering); the usual bound window + hop = 1884
    samples = 117.75 ms.
    """

    LATENCY_SAMPLES = 2 * HOP + _PAD

    def __init__(self, mask_fn: MaskFn, stats: Standardiser | None = None, *, mask: str = "soft",
                 threshold: float = 0.5, upper: str = "attenuate", floor: float | str = DEFAULT_FLOOR) -> None:
        select_mask(np.zeros((1, N_BINS)), mask)
        full_band_gain(np.zeros((1, N_BINS)), upper, floor)
        self.mask_fn, self.stats = mask_fn, stats or Standardiser.identity()
        self.mask_kind, self.threshold, self.upper, self.floor = mask, threshold, upper, floor
        self.window = np.hamming(WIN)
        # input history in padded coordinates: padded[i] = x[i - 302]; starts with the 302 leading zeros
        self._inp = np.zeros(_PAD)
        self._inp_start = 0  # padded index of self._inp[0]
        self._acc = np.zeros(WIN + HOP)  # overlap-add accumulators (padded coordinates from _acc_start)
        self._norm = np.zeros(WIN + HOP)
        self._acc_start = 0
        self._ctx = np.zeros((CONTEXT, N_BINS), np.float32)
        self._lips: list[np.ndarray] = []  # lip frames of the frames not yet analysed
        self._last_lip: np.ndarray | None = None
        self._next_frame = 0  # next analysis frame t
        self._received = 0  # input samples so far
        self._finished = False
        self.frame_seconds: list[float] = []  # compute time of each analysed frame

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.LATENCY_SAMPLES / SAMPLE_RATE

    def _frame(self, t: int) -> None:
        begin = time.perf_counter()
        lo = t * HOP - self._inp_start
        seg = self._inp[lo:lo + WIN]
        if len(seg) < WIN:
            seg = np.pad(seg, (0, WIN - len(seg)))
        spec = np.fft.rfft(seg * self.window)[None]
        self._ctx = np.concatenate([self._ctx[1:], self.stats.audio(spec)])
        lip = self.stats.lips(self._lips.pop(0)[None])[:, None]
        probs = _call_mask_fn(self.mask_fn, self._ctx[None, None], lip)
        gain = full_band_gain(select_mask(probs, self.mask_kind, self.threshold), self.upper, self.floor)
        chunk = np.fft.irfft(spec * gain, n=WIN, axis=1)[0] * self.window
        off = t * HOP - self._acc_start
        if off + WIN > len(self._acc):
            grow = off + WIN - len(self._acc)
            self._acc, self._norm = np.pad(self._acc, (0, grow)), np.pad(self._norm, (0, grow))
        self._acc[off:off + WIN] += chunk
        self._norm[off:off + WIN] += self.window ** 2
        self._next_frame = t + 1
        self.frame_seconds.append(time.perf_counter() - begin)

    def _emit(self, upto_padded: int) -> np.ndarray:
        """Output samples up to padded index ``upto_padded`` (exclusive), i.e. original x[.. upto - 302]."""
        n = upto_padded - self._acc_start
        acc, norm = self._acc[:n], self._norm[:n]
        out = np.where(norm > 1e-8, acc / np.where(norm > 1e-8, norm, 1.0), 0.0)
        self._acc = np.concatenate([self._acc[n:], np.zeros(n)])
        self._norm = np.concatenate([self._norm[n:], np.zeros(n)])
        self._acc_start = upto_padded
        # padded indices < 302 are the leading pad, not output
        skip = max(0, _PAD - (upto_padded - n))
        return out[skip:]

    def push(self, hop: np.ndarray, lip: np.ndarray) -> np.ndarray:
        """Feed one hop of 640 samples (16 kHz mono) and its 50 x 92 lip frame; return the finished output."""
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
        """End of input: an optional last partial hop (< 640 samples, with its lip frame, or the
        previous one when ``lip`` is None); analyse the remaining frames and flush the output."""
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
        end = self._received + _PAD
        self._finished = True
        return self._emit(end) if end > self._acc_start else np.zeros(0)

    def run(self, noisy: np.ndarray, lips: np.ndarray) -> np.ndarray:
        """Stream a whole signal through (hop by hop) and return the concatenated output."""
        noisy = check_audio(noisy, "noisy")
        lips = align_lips(lips, frames_for(noisy.size))
        whole = noisy.size // HOP
        parts = [self.push(noisy[k * HOP:(k + 1) * HOP], lips[k]) for k in range(whole)]
        rest = noisy[whole * HOP:]
        parts.append(self.finish(rest if rest.size else None, lips[whole] if rest.size else None))
        return np.concatenate(parts)


# ---------------------------------------------------------------- checkpoints
def standardiser_from(stats) -> Standardiser:
    """A :class:`Standardiser` from a corpus ``Stats`` (or any (mean, std, lip_mean, lip_std) iterable,
    or a dict with those keys), as stored under ``feature_stats`` in a checkpoint."""
    if isinstance(stats, Standardiser):
        return stats
    if isinstance(stats, dict):
        try:
            values = (stats["mean"], stats["std"], stats["lip_mean"], stats["lip_std"])
        except KeyError as err:
            raise MburstError(f"feature_stats: missing {err.args[0]!r}") from None
    else:
        try:
            values = tuple(stats)
        except TypeError:
            raise MburstError(f"feature_stats: expected (mean, std, lip_mean, lip_std), got {type(stats).__name__}") from None
        if len(values) != 4:
            raise MburstError(f"feature_stats: expected 4 values (mean, std, lip_mean, lip_std), got {len(values)}")
    return Standardiser(values[0], values[1], float(values[2]), float(values[3]))


def checkpoint_masker(path) -> tuple[MaskFn, Standardiser, dict]:
    """``(mask_fn, standardiser, state)`` of a training checkpoint (:func:`experiments.training.checkpoints.load_checkpoint`)."""
    from experiments.training.checkpoints import load_checkpoint

    model, state = load_checkpoint(path)
    if "feature_stats" not in state:
        raise MburstError(f"checkpoint '{path}' holds no feature_stats: cannot standardise its inputs")
    features = state.get("features", {})
    for key, expected in (("sample_rate", SAMPLE_RATE), ("win", WIN), ("hop", HOP), ("n_bins", N_BINS), ("context", CONTEXT)):
        if key in features and features[key] != expected:
            raise MburstError(f"checkpoint '{path}' was trained with {key}={features[key]!r}; enhancement uses {expected}")
    return torch_mask_fn(model), standardiser_from(state["feature_stats"]), state


# ---------------------------------------------------------------- batch evaluation
REFERENCES = ("noisy", "oracle-ibm", "oracle-soft")
METRIC_NAMES = ("stoi", "estoi", "pesq_wb", "si_sdr")


class EnhancementRows(list):
    """Rows of :func:`evaluate_enhancement` (one dict per utterance x system), plus ``examples``
    ({utt_id: {"snr_db", "clean", "noisy", <system>: audio}}) for listening and pictures,
    and ``skipped`` ({system: reason})."""

    def __init__(self, rows=(), examples=None, skipped=None):
        super().__init__(rows)
        self.examples = examples or {}
        self.skipped = skipped or {}


def _score(clean: np.ndarray, est: np.ndarray) -> dict[str, float]:
    from experiments.speech.metrics import all_metrics

    return all_metrics(clean, est, SAMPLE_RATE)


def evaluate_mixture(clean: np.ndarray, noise: np.ndarray, lips: np.ndarray | None, mask_fns: dict, *,
                     mask: str = "soft", uppers: tuple[str, ...] = ("attenuate",), floor: float | str = DEFAULT_FLOOR,
                     lc_db: float = 5.0, stats: Standardiser | None = None) -> dict[str, tuple[np.ndarray, dict]]:
    """Enhance one mixture clean + noise with every reference and model; ``{system: (audio, scores)}``.

    Systems: ``noisy``; ``oracle-ibm`` and ``oracle-soft`` (module doc); each model of
    ``mask_fns`` (a :data:`MaskFn`, or a ``(MaskFn, Standardiser)`` pair; ``None`` entries are
    skipped). With several upper-bin policies, masked systems are named ``"<system> [<policy>]"``.
    """
    clean, noise = check_audio(clean, "clean"), check_audio(noise, "noise")
    noisy = clean + noise
    ibm, wiener = oracle_masks(clean, noise, lc_db)
    masks = {"oracle-ibm": ibm, "oracle-soft": wiener}
    for name, entry in mask_fns.items():
        if entry is None:
            continue
        if lips is None:
            raise MburstError(f"{name}: a model needs the lip frames of the utterance")
        fn, st = entry if isinstance(entry, tuple) else (entry, stats)
        masks[name] = select_mask(predict_probs(noisy, lips, fn, st), mask)
    out = {"noisy": (noisy, _score(clean, noisy))}
    for name, m in masks.items():
        for upper in uppers:
            label = name if len(uppers) == 1 else f"{name} [{upper}]"
            audio = resynthesise(noisy, m, upper, floor)
            out[label] = (audio, _score(clean, audio))
    return out


def evaluate_enhancement(corpus, utt_indices, mask_fns: dict, *, stats: Standardiser | None = None,
                         mask: str = "soft", uppers: tuple[str, ...] | str = ("attenuate",),
                         floor: float | str = DEFAULT_FLOOR, lc_db: float = 5.0, examples: int = 2,
                         progress: bool = True) -> EnhancementRows:
    """STOI, ESTOI, PESQ-WB and SI-SDR of every system on the given utterances of a prepared corpus.

    ``corpus``: an :class:`experiments.data.corpus.Corpus` (``waveforms(i) -> (clean, noise, noisy)``,
    ``utterances[i]`` with ``snr_db``/``lip_start``/``n_frames``, ``lips``). ``mask_fns``:
    ``{model name: MaskFn | (MaskFn, Standardiser) | None}`` (``None``: not available, listed in
    ``skipped``). Each row: utt_index, utt_id, snr_db, noise, system, upper, mask, stoi, estoi,
    pesq_wb, si_sdr. The first ``examples`` utterances of each SNR keep their audio.
    """
    from tqdm import tqdm

    uppers = (uppers,) if isinstance(uppers, str) else tuple(uppers)
    for upper in uppers:
        full_band_gain(np.zeros((1, N_BINS)), upper, floor)
    select_mask(np.zeros((1, N_BINS)), mask)
    indices = [int(i) for i in np.asarray(utt_indices).reshape(-1)]
    if not indices:
        raise MburstError("utt_indices: empty selection")
    skipped = {name: "no model given" for name, fn in mask_fns.items() if fn is None}
    rows, kept, per_snr = EnhancementRows(skipped=skipped), {}, {}
    for i in tqdm(indices, desc="enhance+score", disable=not progress):
        utt = corpus.utterances[i]
        clean, noise, _ = corpus.waveforms(i)
        lips = np.asarray(corpus.lips[utt.lip_start:utt.lip_start + utt.n_frames])
        results = evaluate_mixture(clean, noise, lips, mask_fns, mask=mask, uppers=uppers, floor=floor,
                                   lc_db=lc_db, stats=stats)
        for system, (audio, scores) in results.items():
            upper = "" if system == "noisy" else (system.split("[")[-1].rstrip("]") if "[" in system else uppers[0])
            rows.append({"utt_index": i, "utt_id": utt.utt_id, "snr_db": float(utt.snr_db), "noise": utt.noise_name,
                         "system": system, "upper": upper, "mask": "" if system in ("noisy",) or system.startswith("oracle")
                         else mask, **scores})
        if per_snr.get(utt.snr_db, 0) < examples:
            per_snr[utt.snr_db] = per_snr.get(utt.snr_db, 0) + 1
            kept[utt.utt_id] = {"snr_db": float(utt.snr_db), "clean": clean,
                                **{system: audio for system, (audio, _) in results.items()}}
    rows.examples = kept
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean of each metric per (SNR, system), with ΔSTOI over noisy and the fraction of the oracle
    IBM's STOI gain (``ibm_gain_fraction``; the IBM with the same upper-bin policy)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["snr_db"], r["system"]), []).append(r)
    noisy_stoi = {snr: np.mean([r["stoi"] for r in g]) for (snr, sys_), g in groups.items() if sys_ == "noisy"}
    out = []
    for (snr, system), g in sorted(groups.items(), key=lambda kv: (kv[0][0], _system_order(kv[0][1]))):
        entry = {"snr_db": snr, "system": system, "n": len(g)}
        for m in METRIC_NAMES:
            vals = np.array([r[m] for r in g], dtype=np.float64)
            entry[m] = float(np.mean(vals[np.isfinite(vals)])) if np.isfinite(vals).any() else float("nan")
        entry["d_stoi"] = entry["stoi"] - noisy_stoi.get(snr, float("nan"))
        out.append(entry)
    ibm_gain = {}
    for e in out:
        if e["system"].startswith("oracle-ibm"):
            ibm_gain[(e["snr_db"], e["system"][len("oracle-ibm"):])] = e["d_stoi"]
    for e in out:
        suffix = e["system"][e["system"].find(" ["):] if " [" in e["system"] else ""
        gain = ibm_gain.get((e["snr_db"], suffix))
        e["ibm_gain_fraction"] = e["d_stoi"] / gain if gain and e["system"] != "noisy" else float("nan")
    return out


def _system_order(system: str) -> tuple:
    base = system.split(" [")[0]
    return (REFERENCES.index(base) if base in REFERENCES else len(REFERENCES), system)


def write_wav(path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM wav, written atomically."""
    import soundfile as sf

    from neurons.common import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def _slug(name: str) -> str:
    """A file-name-safe form of a system or utterance name ('+' -> 'p', other symbols -> '_')."""
    return "".join(c if c.isalnum() or c in "-_" else "p" if c == "+" else "_" for c in name).strip("_")


def write_enhancement_report(rows: EnhancementRows | list[dict], out_dir, title: str = "Enhanced speech") -> dict:
    """Write ``enhancement.md`` (mean per SNR x system), ``enhancement.csv`` (every row),
    ``enhancement_summary.csv``, spectrogram PNGs and wav files of the kept examples into ``out_dir``.
    Returns ``{"summary": [...], "files": [...]}``."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig, atomic_write_text, csv_table, markdown_table

    if not rows:
        raise MburstError("rows: nothing to report (no utterance was scored)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    header = ["utt_index", "utt_id", "snr_db", "noise", "system", "upper", "mask", *METRIC_NAMES]
    atomic_write_text(out / "enhancement.csv", csv_table(header, [[r.get(k, "") for k in header] for r in rows]))
    summary = summarise(rows)
    sheader = ["snr_db", "system", "n", *METRIC_NAMES, "d_stoi", "ibm_gain_fraction"]
    atomic_write_text(out / "enhancement_summary.csv", csv_table(sheader, [[e[k] for k in sheader] for e in summary]))
    md = [f"# {title}\n",
          "Mean per SNR and system. STOI/ESTOI (pystoi), wideband PESQ (P.862.2), SI-SDR in dB; "
          "ΔSTOI is over the noisy input, 'IBM gain' the fraction of the oracle IBM's ΔSTOI. "
          "oracle-soft is the ideal Wiener gain |S|²/(|S|²+|N|²).\n",
          markdown_table(["SNR dB", "system", "n", "STOI", "ESTOI", "PESQ-WB", "SI-SDR dB", "ΔSTOI", "IBM gain"],
                         [[e["snr_db"], e["system"], e["n"], e["stoi"], e["estoi"], e["pesq_wb"], e["si_sdr"],
                           e["d_stoi"], e["ibm_gain_fraction"]] for e in summary])]
    skipped = getattr(rows, "skipped", {})
    if skipped:
        md.append("\nNot evaluated: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "\n")
    examples = getattr(rows, "examples", {})
    if examples:
        md.append("\n## Examples\n")
    for utt_id, ex in examples.items():
        slug = _slug(utt_id)
        systems = [k for k in ex if k not in ("snr_db", "clean")]
        peak = max(float(np.max(np.abs(ex[k]))) for k in ["clean", *systems])
        scale = 0.9 / peak if peak > 0.9 else 1.0  # one gain for all, so loudness stays comparable
        names = []
        for key in ["clean", *systems]:
            path = out / "audio" / f"{slug}_{_slug(key)}.wav"
            write_wav(path, ex[key] * scale)
            files.append(path)
            names.append(f"[{key}](audio/{path.name})")
        panels = ["noisy", "clean"] + [k for k in systems if k != "noisy"]
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.7 * len(panels)), sharex=True, squeeze=False)
        images = {key: 10 * np.log10(np.abs(stft_padded(ex[key]).T) ** 2 + 1e-10) for key in panels}
        top = max(float(img.max()) for img in images.values())  # one colour scale for all panels
        for ax, key in zip(axes[:, 0], panels):
            img = images[key]
            ax.imshow(img, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
                      extent=(0, len(ex[key]) / SAMPLE_RATE, 0, SAMPLE_RATE / 2000))
            ax.set_ylabel("kHz")
            ax.set_title(key, fontsize=9, loc="left")
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle(f"{utt_id} at {ex['snr_db']:g} dB SNR", fontsize=10)
        fig.tight_layout()
        png = out / f"spectrogram_{slug}.png"
        atomic_savefig(fig, png)
        plt.close(fig)
        files.append(png)
        md.append(f"\n### {utt_id} ({ex['snr_db']:g} dB)\n\n![spectrograms]({png.name})\n\nListen: {', '.join(names)}\n")
    atomic_write_text(out / "enhancement.md", "".join(md))
    files += [out / "enhancement.md", out / "enhancement.csv", out / "enhancement_summary.csv"]
    return {"summary": summary, "files": files}
