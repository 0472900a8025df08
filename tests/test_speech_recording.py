"""Enhancing a recording file to file: the same output as in-memory enhancement, offline and streaming, and peak
memory that does not grow with the recording's length (a ratio of two lengths, not a timing)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from experiments.data.audio import read_video_audio
from experiments.data.lips import track_lips
from experiments.data.video import read_video
from experiments.speech.enhance import enhance
from experiments.speech.masking import checkpoint_masker
from experiments.speech.recording import enhance_recording, open_recording
from experiments.speech.resynthesis import frames_for
from test_enhance import real_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def bench_module():
    """bench/enhance.py: its looped-recording maker and child-process memory meter."""
    spec = importlib.util.spec_from_file_location("bench_enhance", ROOT / "bench" / "enhance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("block", [64, 7, 1])
def test_recording_equals_in_memory_enhancement(grid_root, tmp_path, block):
    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    real_checkpoint(tmp_path / "model.pt")
    fn, stats, state = checkpoint_masker(tmp_path / "model.pt")
    assert "model_state" not in state and state["model_name"] == "mburst"
    noisy = read_video_audio(mpg)
    expected = enhance(noisy, track_lips(read_video(mpg)[:frames_for(noisy.size)]).crops, fn, stats).audio
    rec = open_recording(mpg)
    assert rec.n_samples == noisy.size and rec.lips.origin == 0.0 and rec.lips.rate.describe() == "25.00 fps"
    done = enhance_recording(rec, tmp_path / "out.wav", fn, stats, block=block)
    got, rate = sf.read(str(tmp_path / "out.wav"))
    assert rate == 16_000 and got.shape == noisy.shape and done.samples == noisy.size and done.times.count == 75
    assert np.max(np.abs(got - np.clip(expected, -1, 1))) <= 1.01 / 32768  # 16-bit rounding


def test_a_failed_enhancement_writes_no_wav(grid_root, tmp_path):
    """NaN in the middle of a float wav: a one-line error naming --audio, and no partial output left behind."""
    from neurons.common import MburstError

    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    audio = read_video_audio(mpg)
    audio[30_000] = np.nan
    sf.write(tmp_path / "nan.wav", audio, 16_000, subtype="FLOAT")
    real_checkpoint(tmp_path / "model.pt")
    fn, stats, _ = checkpoint_masker(tmp_path / "model.pt")
    rec = open_recording(mpg, tmp_path / "nan.wav")
    with pytest.raises(MburstError, match=r"^--audio .*nan\.wav: contains NaN or inf samples$"):
        enhance_recording(rec, tmp_path / "out.wav", fn, stats)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "nan.wav"]


def test_peak_memory_does_not_grow_with_length(grid_root, tmp_path):
    """`mburst enhance` on a GRID video (with its audio) looped to 15 s and to 60 s, each in its own process: the
    peak resident memory of the long one is within 5 % of the short one's (holding the frames, as before, added
    about 120 MB: a ratio near 1.3)."""
    bench = bench_module()
    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    real_checkpoint(tmp_path / "model.pt")
    peaks = {}
    for seconds in (15, 60):
        video = tmp_path / f"loop{seconds}.mpg"
        bench.looped_recording(mpg, seconds / 60, video)
        peaks[seconds], _, _ = bench.peak_memory(["-m", "experiments.cli", "enhance", "--checkpoint", str(tmp_path / "model.pt"),
                                                  "--video", str(video), "--out", str(tmp_path / f"out{seconds}.wav")])
        assert abs(sf.info(str(tmp_path / f"out{seconds}.wav")).duration - seconds) < 0.5
    assert peaks[60] / peaks[15] < 1.05, peaks
