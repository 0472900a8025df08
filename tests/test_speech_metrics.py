"""Speech metrics: hand-checked values on tiny examples, ordering, input validation, and every degenerate input
(muted/constant estimate, silent reference, NaN/inf, unequal lengths, too little speech, integer scaling)."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.speech.metrics import PESQ_WB_MAX, PESQ_WB_MIN, estoi, pesq_wb, score_all, si_sdr, stoi
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


def test_score_all_keys(clean, noise):
    scores, excluded = score_all(clean, clean + 0.5 * clean.std() * noise)
    assert set(scores) == {"stoi", "estoi", "pesq_wb", "si_sdr"} and excluded == {}
    assert scores["si_sdr"] == pytest.approx(si_sdr(clean, clean + 0.5 * clean.std() * noise))
    assert scores["pesq_wb"] == pesq_wb(clean, clean + 0.5 * clean.std() * noise)
    only, _ = score_all(clean, clean + 0.5 * clean.std() * noise, metrics=("stoi",))
    assert only["stoi"] == scores["stoi"] and all(np.isnan(only[k]) for k in ("estoi", "pesq_wb", "si_sdr"))


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
    with pytest.raises(MburstError, match=r"clean: too little speech for STOI"):
        stoi(clean[:2000], clean[:2000], FS)
    with pytest.raises(MburstError, match=r"clean: constant reference"):
        si_sdr(np.ones(100), np.ones(100))


METRICS = {"stoi": stoi, "estoi": estoi, "pesq_wb": pesq_wb, "si_sdr": lambda c, e, fs=FS: si_sdr(c, e)}
WORST = {"stoi": 0.0, "estoi": 0.0, "pesq_wb": PESQ_WB_MIN, "si_sdr": float("-inf")}


@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("estimate", ["zeros", "constant"])
def test_a_muted_or_constant_estimate_scores_the_worst_value(clean, noise, name, estimate):
    """A failed enhancer (all zeros, or a DC level) gets the metric's worst value without an exception (pesq's own
    ValueError for zeros is never reached) and ranks below every estimate that carries the speech, down to a
    -20 dB mixture."""
    metric = METRICS[name]
    failed = np.zeros_like(clean) if estimate == "zeros" else np.full_like(clean, 0.3)
    value = metric(clean, failed, FS)
    assert value == WORST[name]
    unit = clean.std() * noise
    for real in (clean + 10.0 * unit, clean + unit, 0.5 * clean + 0.01 * unit):
        assert metric(clean, real, FS) > value
    # chance level: noise alone, or the speech 0.25 s late, scores about the same as nothing on ESTOI
    assert abs(estoi(clean, unit, FS)) < 0.05 and abs(estoi(clean, np.roll(clean, 4000), FS)) < 0.05


def test_the_libraries_alone_rank_a_failure_above_a_success(clean, noise):
    """Why the degenerate estimate is handled before the libraries: pystoi rates a constant estimate above a -20 dB
    mixture, and pesq raises a bare ValueError on a muted one."""
    from pesq import pesq
    from pystoi import stoi as raw_stoi

    mixture = clean + 10.0 * clean.std() * noise
    assert raw_stoi(clean, np.full_like(clean, 0.3), FS) > raw_stoi(clean, mixture, FS) > stoi(clean, np.full_like(clean, 0.3))
    with pytest.raises(ValueError):
        pesq(FS, clean, np.zeros_like(clean), "wb")


@pytest.mark.parametrize("name", list(METRICS))
def test_a_silent_reference_is_an_error_naming_clean(clean, name):
    for ref in (np.zeros_like(clean), np.full_like(clean, -0.2)):
        with pytest.raises(MburstError, match=r"^clean: constant reference \(all samples equal: silence or DC\), "
                                              r"[A-Z-]+ is undefined$"):
            METRICS[name](ref, clean, FS)


@pytest.mark.parametrize("name", list(METRICS))
def test_nan_inf_and_unequal_lengths_are_errors(clean, name):
    for bad in (np.nan, np.inf, -np.inf):
        est = clean.copy()
        est[7] = bad
        with pytest.raises(MburstError, match=r"^est: contains NaN or inf samples$"):
            METRICS[name](clean, est, FS)
        with pytest.raises(MburstError, match=r"^clean: contains NaN or inf samples$"):
            METRICS[name](est, clean, FS)
    with pytest.raises(MburstError, match=r"^est: length 47999 differs from clean length 48000 \(trim or align"):
        METRICS[name](clean, clean[:-1], FS)


def test_too_little_speech():
    """0.2 s of speech: too little for STOI/ESTOI (30 frames) and PESQ (0.25 s); SI-SDR is still defined."""
    short = speechlike(0.2)
    _, excluded = score_all(short, short)
    assert set(excluded) == {"stoi", "estoi", "pesq_wb"}
    assert excluded["stoi"].startswith("clean: too little speech for STOI")
    assert excluded["pesq_wb"] == "clean: too little speech for PESQ (0.200 s; it needs at least 0.25 s)"
    assert si_sdr(short, short + 0.1 * np.sin(np.arange(short.size))) < 40
    # a reference of 3 s of which 0.1 s is speech: PESQ finds no utterance, STOI too few frames
    sparse = np.zeros(3 * FS)
    sparse[FS:FS + 1600] = speechlike(0.1)
    scores, excluded = score_all(sparse, sparse + 1e-4 * np.random.default_rng(0).standard_normal(sparse.size))
    assert "stoi" in excluded and np.isnan(scores["stoi"]) and np.isfinite(scores["si_sdr"])


@pytest.mark.parametrize("name", list(METRICS))
def test_integer_scaled_input_scores_as_full_scale(clean, noise, name):
    """int16 arrays (or floats in int16 units) score as the same signal in [-1, 1], also when mixed with it."""
    est = clean + 0.3 * clean.std() * noise
    c16, e16 = (np.round(a / np.max(np.abs(est)) * 32767).astype(np.int16) for a in (clean, est))
    reference = METRICS[name](c16 / 32768.0, e16 / 32768.0, FS)
    assert METRICS[name](c16, e16, FS) == pytest.approx(reference, rel=1e-9, abs=1e-9)
    assert METRICS[name](c16 / 32768.0, e16.astype(np.float64), FS) == pytest.approx(reference, rel=1e-9, abs=1e-9)
    # and a copy far below full scale (1e-30) is still a copy: no underflow inside the libraries
    assert METRICS[name](clean, 1e-30 * clean, FS) >= {"stoi": 0.999, "estoi": 0.999, "pesq_wb": 4.6, "si_sdr": 200.0}[name]


def test_score_all_never_raises_on_a_bad_pair(clean):
    scores, excluded = score_all(clean, clean[:100])
    assert set(excluded) == set(scores) and all(np.isnan(v) for v in scores.values())
    assert all("differs from clean length" in why for why in excluded.values())
    scores, excluded = score_all(clean, np.zeros_like(clean))
    assert excluded == {} and scores == {"stoi": 0.0, "estoi": 0.0, "pesq_wb": PESQ_WB_MIN, "si_sdr": float("-inf")}
