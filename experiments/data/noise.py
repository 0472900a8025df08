"""Background noise: a folder of wav files at any rate, random segments, mixing at a target SNR.

Mixing (whole-utterance SNR): with clean power P_s = mean(s^2) and segment power
P_n = mean(n^2), the noise is scaled by g = sqrt(P_s / (P_n 10^(SNR/10))), so
10 log10(P_s / mean((g n)^2)) = SNR exactly (up to float rounding).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurons.common import MburstError

from experiments.data.features import SAMPLE_RATE
from experiments.data.audio import read_wav


def load_noise_folder(folder: Path, target: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Every ``*.wav`` in ``folder`` -> ``{stem: mono float32 at target Hz}`` (sorted by name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MburstError(f"--noise-root {folder}: folder not found")
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise MburstError(f"--noise-root {folder}: no .wav files (empty noise folder)")
    bank = {}
    for path in files:
        audio = read_wav(path, target)
        if not np.any(audio):
            raise MburstError(f"{path}: noise file is all zeros")
        bank[path.stem] = audio.astype(np.float32)
    return bank


def segment(noise: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``n`` samples of ``noise`` from ``offset``, wrapping around (for files shorter than ``n``)."""
    return noise[(offset + np.arange(n)) % len(noise)].astype(np.float64)


def draw_segment(rng: np.random.Generator, bank: dict[str, np.ndarray], n: int) -> tuple[str, int]:
    """A random (noise name, start offset) for an ``n``-sample segment that is not silent."""
    names = sorted(bank)
    for _ in range(20):
        name = names[rng.integers(len(names))]
        length = len(bank[name])
        offset = int(rng.integers(0, max(1, length - n + 1))) if length >= n else int(rng.integers(length))
        if np.mean(segment(bank[name], offset, n) ** 2) > 1e-12:
            return name, offset
    raise MburstError(f"noise bank ({', '.join(names)}): could not find a non-silent {n}-sample segment")


def snr_gain(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """Gain g with 10 log10(mean(clean^2) / mean((g noise)^2)) = ``snr_db``."""
    ps, pn = float(np.mean(np.square(clean))), float(np.mean(np.square(noise)))
    if ps <= 0:
        raise MburstError("clean utterance is silent: cannot mix at an SNR")
    if pn <= 0:
        raise MburstError("noise segment is silent: cannot mix at an SNR")
    return float(np.sqrt(ps / (pn * 10 ** (snr_db / 10))))


def mixture_snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """Whole-utterance SNR 10 log10(sum clean^2 / sum noise^2) in dB."""
    return float(10 * np.log10(np.sum(np.square(clean)) / np.sum(np.square(noise))))
