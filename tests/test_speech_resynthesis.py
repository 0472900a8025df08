"""Resynthesis: any-length reconstruction, upper-bin policies, soft/binary masks, oracle masks."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.data.features import HOP, N_BINS, N_BINS_TOTAL, ideal_binary_mask, stft
from experiments.speech import resynthesis as R
from neurons.common import MburstError
from test_speech_helpers import FS, snr_db, speechlike


@pytest.mark.parametrize("n", [48_000, 48_000 + 123, 5 * HOP + 1, 300])
def test_all_ones_mask_reconstructs_any_length(n):
    x = np.random.default_rng(n).standard_normal(n)
    y = R.resynthesise(x, np.ones((R.frames_for(n), N_BINS)), upper="pass")
    assert y.shape == x.shape
    assert np.max(np.abs(y - x)) < 1e-8


def test_attenuate_keeps_a_band_limited_signal():
    # a 1 kHz tone lies inside the modelled band (bin 77.8 of 623): dropping DC and bins > 500 leaves it intact
    t = np.arange(48_000) / FS
    x = np.sin(2 * np.pi * 1000 * t)
    y = R.resynthesise(x, np.ones((75, N_BINS)), upper="attenuate", floor=0.0)
    assert snr_db(x[2000:-2000], y[2000:-2000]) > 40.0
    # a 7.5 kHz tone lies above the modelled band: attenuated to (almost) nothing, passed untouched
    hi = np.sin(2 * np.pi * 7500 * t)
    assert np.std(R.resynthesise(hi, np.ones((75, N_BINS)), upper="attenuate")) < 1e-3 * np.std(hi)
    assert snr_db(hi, R.resynthesise(hi, np.zeros((75, N_BINS)), upper="pass")) > 40.0


def test_full_band_gain_policies():
    mask = np.random.default_rng(0).uniform(size=(4, N_BINS))
    for upper, floor, rest in [("attenuate", 0.0, np.zeros(4)), ("attenuate", 0.25, np.full(4, 0.25)),
                               ("attenuate", "mean", mask.mean(1)), ("pass", 0.0, np.ones(4))]:
        gain = R.full_band_gain(mask, upper, floor)
        assert gain.shape == (4, N_BINS_TOTAL)
        np.testing.assert_allclose(gain[:, 1:N_BINS + 1], mask)
        np.testing.assert_allclose(gain[:, 0], rest)
        np.testing.assert_allclose(gain[:, N_BINS + 1:], np.repeat(rest[:, None], N_BINS_TOTAL - N_BINS - 1, 1))
    assert set(R.UPPER_POLICIES) == {"attenuate", "pass"}
    with pytest.raises(MburstError, match="--upper-bins: expected one of attenuate, pass"):
        R.full_band_gain(mask, "keep")
    with pytest.raises(MburstError, match="floor"):
        R.full_band_gain(mask, "attenuate", 2.0)
    with pytest.raises(MburstError, match=r"mask: expected shape \[frames, 500\]"):
        R.full_band_gain(mask[:, :10])


def test_soft_and_binary_masks():
    probs = np.array([[0.2, 0.5, 0.7]])
    np.testing.assert_array_equal(R.select_mask(probs, "binary"), [[0, 1, 1]])
    np.testing.assert_allclose(R.select_mask(probs, "soft"), probs)
    with pytest.raises(MburstError, match="--mask: expected one of soft, binary"):
        R.select_mask(probs, "hard")


def test_oracle_masks():
    rng = np.random.default_rng(0)
    clean, noise = speechlike(48_000), 0.05 * rng.standard_normal(48_000)
    ibm, wiener = R.oracle_masks(clean, noise)
    np.testing.assert_array_equal(ibm, ideal_binary_mask(stft(clean), stft(noise), 5.0))
    ps, pn = np.abs(stft(clean)[:, 1:501]) ** 2, np.abs(stft(noise)[:, 1:501]) ** 2
    np.testing.assert_allclose(wiener, ps / (ps + pn), rtol=1e-5)
    assert wiener.min() >= 0 and wiener.max() <= 1
    with pytest.raises(MburstError, match="noise: length"):
        R.oracle_masks(clean, noise[:-1])


def test_audio_checks():
    with pytest.raises(MburstError, match="audio: sample rate 44100 Hz, but enhancement needs 16000 Hz"):
        R.check_audio(np.zeros(10), fs=44_100)
    with pytest.raises(MburstError, match=r"noisy: expected mono audio, got shape \(10, 2\)"):
        R.check_audio(np.zeros((10, 2)), "noisy")
    assert R.check_audio(np.zeros((1, 10))).shape == (10,)
    with pytest.raises(MburstError, match="mask: 3 frames given, the audio has 2"):
        R.apply_gain(np.zeros(2 * HOP), np.ones((3, N_BINS_TOTAL)))


def test_oracle_ibm_improves_stoi_on_real_grid(grid_root, noise_root):
    from experiments.data.audio import read_video_audio
    from experiments.data.noise import load_noise_folder, segment, snr_gain
    from experiments.speech.metrics import stoi

    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    clean = read_video_audio(mpg)
    bank = load_noise_folder(noise_root)
    name = sorted(bank)[0]
    raw = segment(bank[name], 0, len(clean))
    noise = raw * snr_gain(clean, raw, -6.0)
    noisy = clean + noise
    ibm, wiener = R.oracle_masks(clean, noise)
    base = stoi(clean, noisy)
    assert stoi(clean, R.resynthesise(noisy, ibm)) > base + 0.03
    assert stoi(clean, R.resynthesise(noisy, wiener)) > base + 0.1
