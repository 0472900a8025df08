"""The STFT (scipy ShortTimeFFT), its least-squares inverse, band pooling and the context windower, each against
a direct formula written out here (the hand-written per-frame loops the library replaced)."""
import numpy as np
import pytest

from experiments.data import features as F


def direct_stft(x: np.ndarray) -> np.ndarray:
    """Frame t = rfft(hamming(1244) * x[640 t - 302 : 640 t + 942]), zeros outside x, t < len(x) // 640."""
    w = np.hamming(1244)
    frames = []
    for t in range(len(x) // 640):
        seg = np.zeros(1244)
        lo, hi = 640 * t - 302, 640 * t + 942
        seg[max(0, -lo):1244 - max(0, hi - len(x))] = x[max(0, lo):min(len(x), hi)]
        frames.append(np.fft.rfft(w * seg))
    return np.array(frames)


def direct_istft(spec: np.ndarray, n: int) -> np.ndarray:
    """x[k] = sum_t w y_t / sum_t w^2 over the frames present (Griffin & Lim 1984), one frame at a time."""
    w = np.hamming(1244)
    out, norm = np.zeros(len(spec) * 640 + 1244), np.zeros(len(spec) * 640 + 1244)
    for t, frame in enumerate(spec):
        out[640 * t:640 * t + 1244] += np.fft.irfft(frame, n=1244) * w
        norm[640 * t:640 * t + 1244] += w ** 2
    out, norm = out[302:302 + n], norm[302:302 + n]
    return np.where(norm > 1e-8, out / np.where(norm > 1e-8, norm, 1.0), 0.0)


@pytest.mark.parametrize("n", [640, 700, 48_000, 48_000 + 123])
def test_stft_matches_the_direct_formula_within_1e_10(n):
    x = np.random.default_rng(n).standard_normal(n)
    spec = F.stft(x)
    assert spec.shape == (n // 640, 623)
    ref = direct_stft(x)
    assert np.max(np.abs(spec - ref)) < 1e-10
    assert np.max(np.abs(F.log_power(spec) - F.log_power(ref))) < 1e-5  # float32 features
    assert np.max(np.abs(F.log_power(spec).astype(np.float64) - np.log(np.abs(ref[:, 1:501]) ** 2 + 1e-8))) < 1e-5


def test_analyse_is_one_frame_of_the_stft():
    x = np.random.default_rng(0).standard_normal(10 * 640)
    padded = np.pad(x, (302, 0))
    spec = F.stft(x)
    for t in (0, 4, 9):
        np.testing.assert_array_equal(F.analyse(padded[640 * t:640 * t + 1244], 1)[0], spec[t])


@pytest.mark.parametrize("frames", [1, 2, 75])
def test_all_ones_resynthesis_within_1e_8_and_istft_matches_the_direct_formula(frames):
    n = frames * 640
    x = np.random.default_rng(frames).standard_normal(n)
    spec = F.stft(x)
    assert np.max(np.abs(F.istft(spec, n) - x)) < 1e-8  # edges included
    masked = spec * np.random.default_rng(1).uniform(size=spec.shape)
    assert np.max(np.abs(F.istft(masked, n) - direct_istft(masked, n))) < 1e-12
    longer = F.istft(masked, n + 2000)  # samples no frame covers are 0
    np.testing.assert_allclose(longer[:n], F.istft(masked, n), atol=1e-12)
    assert np.all(longer[n + 302:] == 0)


def test_scipy_istft_gets_the_edges_wrong():
    """Why istft stays ours: ShortTimeFFT.istft's dual window assumes the absent frames -1 and T, so the
    first and last 302 samples (covered by one frame only) are off by O(1)."""
    from scipy.signal import ShortTimeFFT

    x = np.random.default_rng(0).standard_normal(48_000)
    sft = ShortTimeFFT(np.hamming(1244), 640, 16_000, mfft=1244, phase_shift=None)
    spec = sft.stft(x, p0=0, p1=75, k_offset=320)
    np.testing.assert_allclose(spec.T, F.stft(x), atol=1e-10)  # the same frames
    y = sft.istft(spec, k0=-320, k1=48_000 - 320)
    err = np.abs(y - x)
    assert err[302:-302].max() < 1e-8 and err[:302].max() > 0.1 and err[-302:].max() > 0.1


def test_context_windows_match_the_direct_formula():
    feats = np.random.default_rng(0).standard_normal((20, 5)).astype(np.float32)
    positions = np.concatenate([np.arange(12), np.arange(8)])  # two utterances of 12 and 8 frames
    frames = np.array([0, 3, 7, 11, 12, 15, 19])
    out = F.context_windows(feats, frames, positions)
    assert out.shape == (7, 8, 5) and out.dtype == np.float32
    for row, t in zip(out, frames):
        expect = np.zeros((8, 5), np.float32)
        for k in range(8):  # row k holds frame t - 7 + k of the same utterance
            if positions[t] - 7 + k >= 0:
                expect[k] = feats[t - 7 + k]
        np.testing.assert_array_equal(row, expect)


def test_pooling_and_expanding_bands():
    feats = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(F.pool_features(feats, 2), [[2, 7], [12, 17]])
    assert F.pool_features(feats, 10) is feats
    windows = np.stack([feats, feats])[:, None]  # [2, 1, 2, 10]: pooling the last axis of any rank
    np.testing.assert_array_equal(F.pool_features(windows, 5), np.stack([F.pool_features(feats, 5)] * 2)[:, None])
    ibm = np.array([[1, 1, 0, 0, 1, 0, 0, 0, 1, 1]], np.uint8)
    np.testing.assert_array_equal(F.pool_mask(ibm, 5), [[1, 0, 1, 0, 1]])  # at least half of each band's bins
    np.testing.assert_array_equal(F.pool_mask(ibm, 2), [[1, 0]])  # 3 of 5, 2 of 5
    np.testing.assert_array_equal(F.expand_bands(np.array([[0.5, 1.0]]), 4), [[0.5, 0.5, 1.0, 1.0]])
    with pytest.raises(F.MburstError, match="n_bins 3: must divide the 10 feature bins"):
        F.pool_features(feats, 3)
