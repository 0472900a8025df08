"""Procedural audio-visual speech corpus: the embedded default when no real data is given.

Audio (source-filter model, Fant 1960): a voiced source (band-limited harmonic
series with amplitudes 1/k at a declining, jittered F0) passes through three
cascaded time-varying formant resonators
    y[n] = (1 - r) x[n] + 2 r cos(2 pi F / fs) y[n-1] - r^2 y[n-2],  r = exp(-pi B / fs),
updated every 10 ms, with formant targets (F1, F2, F3) of five vowels
(Peterson & Barney 1952) interpolated between syllable centres. Syllables last
180-320 ms (about 4 per second) under a raised-sine envelope, some open with a
fricative (high-passed noise, narrow mouth) or a plosive (40 ms closure, then a
burst); pauses and leading/trailing silence separate them.

Video (25 fps, 92 x 50 gray): a mouth drawn as nested ellipses (lips, dark
opening) on shaded skin. Its opening follows envelope x vowel openness (from F1)
and its width follows lip spreading (from F2), so the image carries real
information about the audio; the frame for video frame t averages the audio
frame's 40 ms span.

Noise: babble of other synthetic talkers, amplitude-modulated coloured noise
with a drifting spectral tilt, and impulsive transients over a low rumble.
Everything is deterministic given the seed.
"""
from __future__ import annotations

import numpy as np

from experiments.data.features import HOP, SAMPLE_RATE
from experiments.data.lips import LIP_H, LIP_W

DURATION_S = 3.0
N_SAMPLES = int(DURATION_S * SAMPLE_RATE)  # 75 hops: 75 video frames at 25 fps
BLOCK = 160  # formant update period, 10 ms
RMS = 0.05

# vowel: (F1, F2, F3) Hz, Peterson & Barney (1952) adult male means
VOWELS = {
    "a": (730.0, 1090.0, 2440.0),
    "i": (270.0, 2290.0, 3010.0),
    "u": (300.0, 870.0, 2240.0),
    "e": (530.0, 1840.0, 2480.0),
    "o": (570.0, 840.0, 2410.0),
}
BANDWIDTHS = (80.0, 110.0, 160.0)
NOISE_SECONDS = 20.0


def _openness(f1: np.ndarray) -> np.ndarray:
    """Jaw/lip opening from F1 (open vowels have high F1), in [0, 1]."""
    return np.clip((f1 - 200.0) / 550.0, 0.0, 1.0)


def _spread(f2: np.ndarray) -> np.ndarray:
    """Lip spreading from F2 (front vowels spread, back vowels round), in [0, 1]."""
    return np.clip((f2 - 800.0) / 1500.0, 0.0, 1.0)


def _plan(rng: np.random.Generator, n: int):
    """Syllable plan -> per-sample envelope, formant tracks, frication and closure masks."""
    fs = SAMPLE_RATE
    env = np.zeros(n)
    fric = np.zeros(n)
    closure = np.zeros(n, dtype=bool)
    burst = np.zeros(n)
    centres, targets = [], []
    t = rng.uniform(0.12, 0.45)
    vowel_names = list(VOWELS)
    while t < n / fs - 0.3:
        dur = rng.uniform(0.18, 0.32)
        onset = rng.choice(3, p=[0.45, 0.3, 0.25])  # none / fricative / plosive
        start = t
        if onset == 1:
            f0, f1 = int(t * fs), int((t + rng.uniform(0.06, 0.11)) * fs)
            fric[f0:f1] = np.sin(np.linspace(0, np.pi, f1 - f0)) ** 0.5
            start = f1 / fs
        elif onset == 2:
            c1 = int((t + 0.04) * fs)
            closure[int(t * fs):c1] = True
            burst[c1:c1 + 240] = np.exp(-np.arange(len(burst[c1:c1 + 240])) / 60.0)
            start = (c1 + 80) / fs
        s0, s1 = int(start * fs), min(n, int((start + dur) * fs))
        if s1 <= s0 + 10:
            break
        env[s0:s1] = np.sin(np.linspace(0, np.pi, s1 - s0)) ** 0.7
        centres.append((s0 + s1) / 2)
        targets.append(VOWELS[vowel_names[rng.integers(len(vowel_names))]])
        t = s1 / fs + (rng.uniform(0.1, 0.3) if rng.random() < 0.18 else rng.uniform(0.0, 0.04))
    if not centres:  # a degenerate plan: one syllable in the middle
        s0, s1 = n // 3, 2 * n // 3
        env[s0:s1] = np.sin(np.linspace(0, np.pi, s1 - s0)) ** 0.7
        centres, targets = [(s0 + s1) / 2], [VOWELS["a"]]
    targets = np.asarray(targets) * rng.uniform(0.92, 1.08, size=(len(targets), 3))
    idx = np.arange(n)
    formants = np.stack([np.interp(idx, centres, targets[:, j]) for j in range(3)], axis=1)
    return env, formants, fric, closure, burst


def _voiced(rng: np.random.Generator, n: int, f0_base: float) -> np.ndarray:
    """Band-limited harmonic source (amplitudes 1/k, k f0 < 5 kHz), declining jittered F0."""
    fs = SAMPLE_RATE
    slow = np.interp(np.arange(n), np.linspace(0, n, 12), rng.normal(0, 0.04, 12))
    f0 = f0_base * (1.0 - 0.15 * np.arange(n) / n) * (1.0 + slow)
    phase = 2 * np.pi * np.cumsum(f0) / fs
    out = np.zeros(n)
    for k in range(1, int(5000 // f0.max()) + 1):
        out += np.sin(k * phase) / k
    return out


def _formant_filter(x: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Cascade of three 2-pole resonators, coefficients updated every BLOCK samples."""
    from scipy.signal import sosfilt

    fs = SAMPLE_RATE
    y = np.empty_like(x)
    zi = np.zeros((3, 2))
    r = np.exp(-np.pi * np.asarray(BANDWIDTHS) / fs)
    for b0 in range(0, len(x), BLOCK):
        f = formants[b0]
        sos = np.zeros((3, 6))
        sos[:, 0] = 1 - r
        sos[:, 3] = 1.0
        sos[:, 4] = -2 * r * np.cos(2 * np.pi * f / fs)
        sos[:, 5] = r ** 2
        y[b0:b0 + BLOCK], zi = sosfilt(sos, x[b0:b0 + BLOCK], zi=zi)
    return y


_HP = None


def _highpass(x: np.ndarray) -> np.ndarray:
    global _HP
    from scipy.signal import butter, sosfilt

    if _HP is None:
        _HP = butter(4, 3000, btype="high", fs=SAMPLE_RATE, output="sos")
    return sosfilt(_HP, x)


def talker(rng: np.random.Generator, n: int = N_SAMPLES, f0_range=(95.0, 140.0)):
    """One synthetic utterance: (audio float64 [n] at RMS 0.05, per-sample envelope, openness, spread)."""
    env, formants, fric, closure, burst = _plan(rng, n)
    src = _voiced(rng, n, rng.uniform(*f0_range)) + 0.05 * rng.standard_normal(n)
    voiced = _formant_filter(src, formants) * env
    voiced /= np.sqrt(np.mean(voiced[env > 0.1] ** 2)) + 1e-12
    noise = rng.standard_normal(n)
    audio = voiced + 0.35 * _highpass(noise) * fric * 3.0 + 0.8 * noise * burst
    audio[closure] = 0.0
    audio *= RMS / np.sqrt(np.mean(audio ** 2))
    openness = env * _openness(formants[:, 0])
    openness = np.maximum(openness, 0.12 * fric)
    openness[closure] = 0.0
    return audio, env, openness, _spread(formants[:, 1])


def render_mouth(rng: np.random.Generator, openness: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Mouth images uint8 [n_video, 50, 92] from per-sample opening/spread (frame t = mean over its hop)."""
    n_video = len(openness) // HOP
    op = openness[:n_video * HOP].reshape(n_video, HOP).mean(axis=1)
    sp = spread[:n_video * HOP].reshape(n_video, HOP).mean(axis=1)
    v, u = np.mgrid[0:LIP_H, 0:LIP_W].astype(np.float64)
    cx = LIP_W / 2 + rng.uniform(-3, 3) + rng.normal(0, 0.6, n_video)[:, None, None]
    cy = LIP_H / 2 + rng.uniform(-2, 2) + rng.normal(0, 0.4, n_video)[:, None, None]
    skin = rng.uniform(150, 185)
    shade = skin - 18 * (v / LIP_H) + rng.uniform(-6, 6) * (u / LIP_W - 0.5)
    a_out = (24 + 12 * sp - 6 * op)[:, None, None]  # spreading widens, opening narrows a little
    b_out = (6 + 13 * op)[:, None, None]
    a_in = 0.82 * a_out
    b_in = np.maximum((12 * op)[:, None, None], 0.3)
    r_out = ((u - cx) / a_out) ** 2 + ((v - cy) / b_out) ** 2
    r_in = ((u - cx) / a_in) ** 2 + ((v - cy) / b_in) ** 2
    img = np.broadcast_to(shade, r_out.shape).copy()
    lip = rng.uniform(95, 120)
    img = np.where(r_out <= 1, lip, img)
    img = np.where(r_in <= 1, 30 + 20 * (v / LIP_H), img)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def utterance(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Clean utterance ``index`` of the corpus with ``seed``: (audio float64 [48000], lips uint8 [75, 50, 92])."""
    rng = np.random.default_rng([seed, index, 1])
    audio, _, openness, spread = talker(rng)
    return audio, render_mouth(rng, openness, spread)


def _coloured(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise with a spectral tilt 1/f^alpha whose alpha drifts in [0, 2] over time (STFT-domain shaping)."""
    from experiments.data.features import N_BINS_TOTAL, WIN, istft, stft

    spec = stft(rng.standard_normal(n))
    frames = spec.shape[0]
    alpha = np.interp(np.arange(frames), np.linspace(0, frames, 8), rng.uniform(0, 2, 8))
    f = np.maximum(np.arange(N_BINS_TOTAL) * SAMPLE_RATE / WIN, 50.0)
    spec *= (f[None, :] / 50.0) ** (-alpha[:, None] / 2)
    return istft(spec, n)


def _babble(rng: np.random.Generator, n: int) -> np.ndarray:
    """Five other talkers (wider F0 range than the target), each a chain of utterances at a random shift."""
    babble = np.zeros(n)
    for _ in range(5):
        track = np.concatenate([talker(rng, f0_range=(90.0, 230.0))[0] for _ in range(int(np.ceil(n / N_SAMPLES)))])
        babble += np.roll(track[:n], int(rng.integers(n)))
    return babble


def _modulated(rng: np.random.Generator, n: int) -> np.ndarray:
    """Drifting-tilt coloured noise under a product of two slow sinusoidal amplitude modulations (0.5-4 Hz)."""
    t = np.arange(n) / SAMPLE_RATE
    modulated = _coloured(rng, n)
    rate = rng.uniform(0.5, 4.0, 3)
    modulated *= 1 + 0.8 * np.sin(2 * np.pi * rate[0] * t + rng.uniform(0, 6.3)) * np.sin(2 * np.pi * rate[1] * t / 3)
    return modulated


def _transients(rng: np.random.Generator, n: int) -> np.ndarray:
    """Decaying noise bursts (25-250 ms, 3 per second) over a low coloured rumble 14 dB below them."""
    rumble = 0.1 * _coloured(rng, n)
    events = np.zeros(n)
    for start in np.sort(rng.integers(0, n - 4000, int(3 * n / SAMPLE_RATE))):
        length = int(rng.integers(400, 4000))
        decay = np.exp(-np.arange(length) / (length / 5))
        events[start:start + length] += rng.uniform(0.3, 3.0) * rng.standard_normal(length) * decay
    return rumble / np.sqrt(np.mean(rumble ** 2)) * 0.2 + events / np.sqrt(np.mean(events ** 2))


#: The synthetic noises, in generation order (they share one random stream): name -> generator(rng, n).
NOISES = {"babble": _babble, "modulated": _modulated, "transients": _transients}


def noise_bank(seed: int, seconds: float = NOISE_SECONDS) -> dict[str, np.ndarray]:
    """The synthetic noises of :data:`NOISES`.

    Parameters
    ----------
    seed : int
    seconds : float
        Length of each noise.

    Returns
    -------
    dict of str to ndarray of float32, shape (seconds * 16000,)
        ``{name: noise at 16 kHz}``, RMS 0.05 each.
    """
    n = int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng([seed, 7_000_001])
    bank = {name: make(rng, n) for name, make in NOISES.items()}
    return {k: (RMS * v / np.sqrt(np.mean(v ** 2))).astype(np.float32) for k, v in bank.items()}
