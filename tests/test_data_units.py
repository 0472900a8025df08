"""Data pipeline building blocks: frames, IBM, resampling, mixing, alignments, lip geometry."""
import numpy as np
import pytest
import soundfile as sf

from experiments.data import features as F
from experiments.data.audio import read_wav
from experiments.data.resample import MIN_SOURCE_RATE, resample_to
from experiments.data.grid import parse_alignment
from experiments.data.lips import LIP_H, LIP_W, crop_lips, track_faces
from experiments.data.noise import Part, draw_segment, load_noise_folder, mixture_snr_db, segment, snr_gain
from neurons.common import MburstError


def test_three_seconds_give_75_frames():
    assert F.n_frames(3 * F.SAMPLE_RATE) == 75
    assert F.stft(np.random.default_rng(0).standard_normal(48_000)).shape == (75, F.N_BINS_TOTAL)
    assert F.log_power(F.stft(np.ones(48_000))).shape == (75, 500)


def test_ibm_hand_computed():
    clean = np.zeros((2, F.N_BINS_TOTAL), complex)
    noise = np.ones((2, F.N_BINS_TOTAL), complex)
    # bin 1: |X|^2 = 10 -> 10 dB >= 5 -> 1; bin 2: |X|^2 = 3 -> 4.77 dB -> 0; bin 3: 4j -> 16 -> 12 dB -> 1
    clean[0, 1], clean[0, 2], clean[0, 3] = np.sqrt(10), np.sqrt(3), 4j
    # frame 1, bin 1: |X|^2 = 100, |N|^2 = 4 -> 13.98 dB: 1 at LC 5, 0 at LC 15
    clean[1, 1], noise[1, 1] = 10, 2
    ibm = F.ideal_binary_mask(clean, noise, lc_db=5.0)
    assert ibm.shape == (2, 500) and ibm.dtype == np.uint8
    assert ibm[0, :3].tolist() == [1, 0, 1]
    assert ibm[1, 0] == 1 and ibm.sum() == 3
    assert F.ideal_binary_mask(clean, noise, lc_db=15.0)[1, 0] == 0
    # DC (bin 0) is excluded: a huge DC component changes nothing
    clean[0, 0] = 1e6
    assert F.ideal_binary_mask(clean, noise).sum() == 3


@pytest.mark.parametrize("snr", [-12.0, -6.0, 0.0, 6.0, 13.5])
def test_mixture_snr_within_0p1_db(snr):
    rng = np.random.default_rng(1)
    clean = rng.standard_normal(48_000) * np.hanning(48_000)
    noise = 0.3 * rng.standard_normal(48_000) + np.sin(np.arange(48_000) / 5)
    g = snr_gain(clean, noise, snr)
    assert abs(mixture_snr_db(clean, g * noise) - snr) < 0.1


def test_silent_signals_cannot_be_mixed():
    with pytest.raises(MburstError, match="silent"):
        snr_gain(np.zeros(100), np.ones(100), 0.0)
    with pytest.raises(MburstError, match="silent"):
        snr_gain(np.ones(100), np.zeros(100), 0.0)


def test_resample_keeps_frequency_and_duration():
    t = np.arange(44_100) / 44_100
    y = resample_to(np.sin(2 * np.pi * 1000 * t), 44_100)
    assert abs(len(y) - 16_000) <= 1
    spectrum = np.abs(np.fft.rfft(y[1000:-1000]))
    assert abs(np.argmax(spectrum) * 16_000 / len(y[1000:-1000]) - 1000) < 2


def test_wrong_sample_rate_names_file(tmp_path):
    path = tmp_path / "low.wav"
    sf.write(path, np.zeros(8000, np.float32) + 0.1, 8000)
    with pytest.raises(MburstError, match=r"low\.wav.*8000 Hz.*below") as err:
        read_wav(path)
    assert "\n" not in str(err.value)
    assert MIN_SOURCE_RATE > 8000


def test_noise_folder_any_rate_segments_and_empty(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", 0.1 * rng.standard_normal(3 * 22_050), 22_050)
    sf.write(tmp_path / "b.wav", 0.1 * rng.standard_normal((50_000, 2)), 16_000)
    bank = load_noise_folder(tmp_path)
    cat = tmp_path.name  # files directly in the root: one category named after it
    assert sorted(bank) == [f"{cat}/a", f"{cat}/b"]
    assert abs(len(bank[f"{cat}/a"]) - 48_000) <= 1 and len(bank[f"{cat}/b"]) == 50_000
    b = bank[f"{cat}/b"]
    seg = segment(b, 49_000, 3_000)  # wraps around the end
    assert np.allclose(seg[:1000], b[49_000:]) and np.allclose(seg[1000:], b[:2000])
    parts = [Part(f"{cat}/b", cat, 10_000, 30_000)]
    for k in range(20):  # a drawn segment lies inside its part, never wrapping
        name, offset = draw_segment(np.random.default_rng(k), bank, parts, 5_000)
        assert name == f"{cat}/b" and 10_000 <= offset <= 25_000
    with pytest.raises(MburstError, match="holds a 1.56 s utterance"):
        draw_segment(np.random.default_rng(0), bank, parts, 25_000)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MburstError, match="empty noise folder"):
        load_noise_folder(empty)


def test_corrupt_wav_names_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF" + bytes(range(200)))
    with pytest.raises(MburstError, match=r"bad\.wav: cannot read wav"):
        read_wav(path)


def test_alignment_parsing(tmp_path):
    path = tmp_path / "x.align"
    path.write_text("0 17750 sil\n17750 22500 bin\n22500 27000 blue\n\n46750 74500 sil\n")
    words = parse_alignment(path)
    assert [w.word for w in words] == ["sil", "bin", "blue", "sil"]
    assert words[1].start == pytest.approx(0.71) and words[1].end == pytest.approx(0.9)
    assert words[-1].end == pytest.approx(2.98)
    path.write_text("0 17750 sil\n17750 bin\n")
    with pytest.raises(MburstError, match=r"x\.align:2: expected"):
        parse_alignment(path)
    path.write_text("100 50 sil\n")
    with pytest.raises(MburstError, match="before start"):
        parse_alignment(path)


def test_crop_shape_and_centre():
    frames = np.zeros((2, 288, 360), np.uint8)
    frames[:, 99:102, 149:152] = 255  # a bright 3x3 dot centred on (x=150, y=100)
    crops = crop_lips(frames, np.array([[150.0, 100.0], [150.0, 100.0]]), np.array([92.0, 184.0]))
    assert crops.shape == (2, LIP_H, LIP_W) and crops.dtype == np.uint8
    cy, cx = np.unravel_index(np.argmax(crops[0]), crops[0].shape)
    assert abs(cx - (LIP_W - 1) / 2) <= 1 and abs(cy - (LIP_H - 1) / 2) <= 1
    assert (crops[0] > 128).sum() >= 4  # 1:1 scale keeps the 3x3 dot
    assert (crops[1] > 0).sum() < (crops[0] > 0).sum() + 4  # 2x zoom-out shrinks it


def test_face_tracking_interpolates_and_rejects_jumps():
    boxes = np.full((11, 4), np.nan)
    boxes[0] = [100, 100, 140, 140]
    boxes[5] = [110, 100, 140, 140]
    boxes[10] = [120, 100, 140, 140]
    boxes[7] = [300, 10, 140, 140]  # a false detection far from the face
    tracked, used = track_faces(boxes)
    assert used == 3
    assert np.all(np.diff(tracked[:, 0]) >= -1e-9) and tracked[:, 0].max() <= 120
    assert np.allclose(tracked[:, 1], 100)
    with pytest.raises(MburstError, match="clip.mpg: no face found"):
        track_faces(np.full((5, 4), np.nan), source="clip.mpg")
