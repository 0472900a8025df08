"""A real GRID video re-timed to 25, 29.97, 30, 50 and 60 fps and to a variable rate (FFmpeg's fps filter, losslessly
encoded): the same lip crops at the same audio frames, enhanced outputs that agree, and `mburst prepare` on a
30 fps GRID folder. Skips without the shared GRID data."""
from __future__ import annotations

import json
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from experiments.data.audio import read_video_audio
from experiments.data.lip_stream import plan_lips
from experiments.data.lips import track_lips
from experiments.data.video import read_timed
from test_enhance import real_checkpoint
from test_inputs_video import RATES, retime, write_video


@pytest.fixture(scope="module")
def clip(grid_root, tmp_path_factory):
    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    video, audio = read_timed(mpg), read_video_audio(mpg)
    folder = tmp_path_factory.mktemp("rates")
    noisy = audio + 0.5 * audio.std() * np.random.default_rng(0).standard_normal(audio.size)
    sf.write(folder / "noisy.wav", noisy, 16_000, subtype="FLOAT")
    real_checkpoint(folder / "model.pt")
    shown = {}
    for rate in [*RATES, "vfr"]:
        shown[rate], times = retime(len(video.frames), rate)
        write_video(folder / f"{rate}.mkv", video.frames[shown[rate]], times)
    return SimpleNamespace(mpg=mpg, frames=video.frames, audio=audio, folder=folder, shown=shown)


def test_same_lip_crops_at_the_same_audio_frames(clip):
    """25/29.97/30/50/60 fps give the crops of the original (what the corpus stores); the variable rate shows a
    neighbouring source frame at some audio frames and crops of the same mouth."""
    n = clip.audio.size
    original = np.stack(list(plan_lips(clip.mpg, n).crops()))
    assert len(original) == 75 and np.array_equal(original[:74], track_lips(clip.frames[:75]).crops[:74])
    for rate in [*RATES, "vfr"]:
        path = clip.folder / f"{rate}.mkv"
        plan = plan_lips(path, n)
        crops = np.stack(list(plan.crops()))
        assert crops.shape == original.shape
        if rate != "vfr":
            assert np.array_equal(crops, original), rate
            continue
        source = clip.shown[rate][read_timed(path).clock_index()][:len(crops)]
        assert set(np.arange(len(source)) - source) <= {-1, 0, 1} and np.mean(source != np.arange(len(source))) < 0.5
        same = source == np.arange(len(source))
        assert np.abs(crops[same].astype(float) - original[same]).mean() < 1.0
        assert np.abs(crops.astype(float) - original[source]).mean() < 2.0


def test_enhanced_outputs_agree_to_30_db(clip, tmp_path, capsys):
    from experiments.cli import main

    out = {}
    for rate in [*RATES, "vfr"]:
        out[rate] = tmp_path / f"{rate}.wav"
        assert main(["enhance", "--checkpoint", str(clip.folder / "model.pt"), "--video", str(clip.folder / f"{rate}.mkv"),
                     "--audio", str(clip.folder / "noisy.wav"), "--out", str(out[rate])]) == 0
        printed = capsys.readouterr().out
        described = "variable rate, mean" if rate == "vfr" else f"video {RATES[rate]:.2f} fps"
        assert described in printed, printed
    reference = sf.read(str(out["25"]))[0]
    assert reference.shape == clip.audio.shape and np.any(reference)
    for rate, path in out.items():
        est = sf.read(str(path))[0]
        err = np.sum((est - reference) ** 2)
        snr = np.inf if err == 0 else 10 * np.log10(np.sum(reference ** 2) / err)
        assert snr >= 30.0, (rate, snr)
        if rate != "vfr":
            assert np.array_equal(est, reference), rate


def test_prepare_a_30_fps_grid_folder(clip, noise_root, tmp_path):
    """`mburst prepare` on a GRID folder where one video was converted to 30 fps MPEG-1 (lossy) beside two originals:
    it prepares, records the rates in summary.json, and stores the lip frames `mburst enhance` takes from the same
    file; the codec's loss moves the face detector by a few pixels, no more."""
    from experiments import cli
    from experiments.data.corpus import load_corpus

    root = tmp_path / "g"
    for sub in ("s1", "audio/s1", "alignments/s1"):
        (root / sub).mkdir(parents=True)
    stem = clip.mpg.stem
    shown, times = retime(len(clip.frames), "30")
    write_video(root / "s1" / f"{stem}.mpg", clip.frames[shown], times, codec="mpeg1video", fmt="mpeg", rate=Fraction(30))
    sf.write(root / "audio/s1" / f"{stem}.wav", clip.audio, 16_000, subtype="FLOAT")
    aligns = clip.mpg.parent.parent / "alignments/s1"
    (root / "alignments/s1" / f"{stem}.align").symlink_to(aligns / f"{stem}.align")
    for mpg in sorted(clip.mpg.parent.glob("*.mpg"))[1:3]:
        (root / "s1" / mpg.name).symlink_to(mpg)
        (root / "alignments/s1" / f"{mpg.stem}.align").symlink_to(aligns / f"{mpg.stem}.align")
    assert cli.main(["prepare", "--data", "grid", "--data-root", str(root), "--noise-root", str(noise_root), "--snrs", "0",
                     "--workers", "1", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["video_rates"] == {"25.00 fps": 2, "30.00 fps": 1} and summary["build"]["n_skipped"] == 0
    corpus = load_corpus(summary["cache"])
    assert corpus.cleans[0]["video_frames"] == 90 and corpus.cleans[0]["n_frames"] == 74
    assert corpus.cleans[0]["video_rate"] == "30.00 fps" and corpus.cleans[1]["video_rate"] == "25.00 fps"
    converted = plan_lips(root / "s1" / f"{stem}.mpg", 74 * 640)
    assert np.array_equal(np.asarray(corpus.lips[:74]), np.stack(list(converted.crops())))
    original = plan_lips(clip.mpg, 74 * 640)
    assert np.abs(converted.centres - original.centres).max() < 3.5  # px; the tracker's own precision is ~3 px
