"""Speech metrics: hand-checked values on tiny examples, ordering, and input validation."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.speech.metrics import PESQ_WB_MAX, all_metrics, estoi, pesq_wb, si_sdr, stoi
from neurons.common import MburstError

FS = 16_000


def speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic complex with pauses (PESQ needs speech-like activity)."""
    t = np.arange(int(seconds * FS)) / FS
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2 * (np.sin(2 * np.pi * 0.7 * t) > -0.3)
    return 0.1 * voiced * envelope


@pytest.fixture(scope="module")
def clean():
    return speechlike()


@pytest.fixture(scope="module")
def noise(clean):
    return np.random.default_rng(1).standard_normal(clean.size)


def test_si_sdr_matches_hand_value():
    # s = sin(2 pi 5 t), n = cos(2 pi 7 t) over whole periods: zero-mean and orthogonal, ||s||^2 = ||n||^2 = N/2.
    # est = a s + b n  =>  alpha = a, SI-SDR = 10 log10(a^2 / b^2) = 20 log10(0.5 / 0.05) = 20 dB exactly.
    t = np.arange(1000) / 1000
    s, n = np.sin(2 * np.pi * 5 * t), np.cos(2 * np.pi * 7 * t)
    assert si_sdr(s, 0.5 * s + 0.05 * n) == pytest.approx(20.0, abs=1e-9)
    # scale invariance and a hand value of 0 dB (equal target and residual energy)
    assert si_sdr(s, 3.0 * (0.5 * s + 0.05 * n)) == pytest.approx(20.0, abs=1e-9)
    assert si_sdr(s, s + n) == pytest.approx(0.0, abs=1e-9)
    # a DC offset is removed before scoring (zero-mean convention)
    assert si_sdr(s, 0.5 * s + 0.05 * n + 7.0) == pytest.approx(20.0, abs=1e-9)
    assert si_sdr(s, 2 * s) == float("inf")


def test_stoi_identical_is_one_and_noise_lowers_it(clean, noise):
    assert stoi(clean, clean) == pytest.approx(1.0, abs=1e-6)
    assert estoi(clean, 0.3 * clean) == pytest.approx(1.0, abs=1e-6)  # scale does not matter
    scale = clean.std()
    mild, heavy = clean + 0.3 * scale * noise, clean + 3.0 * scale * noise
    assert 1.0 > stoi(clean, mild) > stoi(clean, heavy) > 0.0
    assert 1.0 > estoi(clean, mild) > estoi(clean, heavy)


def test_pesq_identical_is_near_max_and_noise_lowers_it(clean, noise):
    top = pesq_wb(clean, clean)
    assert top == pytest.approx(PESQ_WB_MAX, abs=0.01)
    scale = clean.std()
    mild, heavy = pesq_wb(clean, clean + 0.1 * scale * noise), pesq_wb(clean, clean + 1.0 * scale * noise)
    assert top > mild > heavy >= 1.0


def test_all_metrics_keys(clean, noise):
    scores = all_metrics(clean, clean + 0.5 * clean.std() * noise)
    assert set(scores) == {"stoi", "estoi", "pesq_wb", "si_sdr"}
    assert scores["si_sdr"] == pytest.approx(si_sdr(clean, clean + 0.5 * clean.std() * noise))


@pytest.mark.parametrize("metric", [stoi, estoi, pesq_wb, lambda c, e, fs=FS: si_sdr(c, e)])
def test_bad_inputs_name_the_argument(metric, clean):
    with pytest.raises(MburstError, match=r"est: .*mono.*stereo"):
        metric(clean, np.stack([clean, clean], axis=1), FS)
    with pytest.raises(MburstError, match=r"est: length 100 differs from clean length"):
        metric(clean, clean[:100], FS)
    with pytest.raises(MburstError, match=r"clean: empty"):
        metric(np.zeros(0), np.zeros(0), FS)
    bad = clean.copy()
    bad[10] = np.nan
    with pytest.raises(MburstError, match=r"est: contains NaN"):
        metric(clean, bad, FS)


def test_sample_rate_checks(clean):
    with pytest.raises(MburstError, match=r"fs: 8000 Hz given, but this metric needs 16000 Hz"):
        pesq_wb(clean, clean, 8000)
    with pytest.raises(MburstError, match=r"fs: sample rate must be a positive integer"):
        stoi(clean, clean, -5)
    with pytest.raises(MburstError, match=r"clean: too short for STOI"):
        stoi(clean[:2000], clean[:2000], FS)
    with pytest.raises(MburstError, match=r"clean: constant reference"):
        si_sdr(np.ones(100), np.ones(100))
