"""Integration on real GRID speaker-1 utterances (skips when the shared data is absent)."""
import numpy as np
import pytest

from experiments.data import features as F
from experiments.data.build import N_PREVIEW, preview_frame
from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.spec import CorpusSpec
from experiments.data.grid import list_items, parse_alignment, read_audio
from experiments.data.video import read_video
from experiments.data.lips import crop_lips, track_lips


@pytest.fixture(scope="module")
def real(grid_root, noise_root, tmp_path_factory):
    spec = CorpusSpec(source="grid", data_root=grid_root, noise_root=noise_root, n_utterances=3, workers=1)
    path = prepare_corpus(spec, cache_root=tmp_path_factory.mktemp("cache"), progress=False)
    return list_items(grid_root)[0][:3], load_corpus(path)


def test_audio_is_about_three_seconds(real):
    items, corpus = real
    for item, clean in zip(items, corpus.cleans):
        audio = read_audio(item)
        assert abs(len(audio) / F.SAMPLE_RATE - 3.0) < 0.05
        assert 0.001 < np.sqrt(np.mean(audio ** 2)) < 0.5
        assert clean["video_frames"] == clean["covered_frames"] == 75 and abs(clean["audio_frames"] - 75) <= 1
        assert clean["n_frames"] == min(clean["video_frames"], clean["audio_frames"])
        assert clean["video_fps"] == pytest.approx(25.0) and clean["video_rate"] == "25.00 fps"
        assert clean["n_samples"] == clean["n_frames"] * F.HOP


def test_alignment_of_real_utterance(real):
    items, corpus = real
    words = parse_alignment(items[0].align)
    assert words[0].word == "sil" and words[-1].word == "sil" and len(words) == 8
    assert 2.9 < words[-1].end <= 3.0
    assert corpus.cleans[0]["words"][1][2] == words[1].word


def test_lip_crop_is_on_the_mouth(real):
    items, corpus = real
    previews = corpus.previews()
    assert [p.clean_index for p in previews] == list(range(min(N_PREVIEW, len(corpus.cleans))))
    for item, clean, preview in zip(items, corpus.cleans, previews):
        frames = read_video(item.mpg)[:clean["n_frames"]]
        track = track_lips(frames)
        lips = np.asarray(corpus.lips[clean["lip_start"]:clean["lip_start"] + clean["n_frames"]], np.float64)
        assert np.array_equal(track.crops, lips)
        t = preview.frame  # the stored source frame and boxes are the preparation's own
        assert t == preview_frame(clean["n_frames"]) and np.array_equal(preview.image, frames[t])
        np.testing.assert_array_equal(preview.mouth, [*track.centres[t], track.widths[t]])
        np.testing.assert_array_equal(preview.face, track.faces[t])
        background = crop_lips(frames, np.tile([[60.0, 60.0]], (len(frames), 1)), track.widths).astype(np.float64)
        assert background.mean() - lips.mean() > 20  # skin and lips are darker than the lit wall
        darkest_row = int(np.argmin(lips.mean(axis=(0, 2))))
        assert 15 <= darkest_row <= 35, darkest_row  # the lip line runs through the middle of the crop
        motion = np.abs(np.diff(lips, axis=0)).mean()
        assert motion > 2 * np.abs(np.diff(background, axis=0)).mean()  # the mouth moves while he speaks


def test_real_mixture_snr_and_features(real):
    _, corpus = real
    assert len(corpus) == 3 * 4 * 2  # every SNR with a train and with a test recording
    noise = corpus.report["noise"]  # the shared noise/ folder: one category of three recordings, dealt 2 + 1
    assert noise["categories"] == {"noise": "recordings"}
    dealt = {k: {p["recording"] for p in v} for k, v in noise["splits"].items()}
    assert dealt["train"] | dealt["test"] == {"noise/babble", "noise/dishes", "noise/exercise_bike"}
    assert not dealt["train"] & dealt["test"] and {len(dealt["train"]), len(dealt["test"])} == {1, 2}
    for i, u in enumerate(corpus.utterances):
        clean, noise, noisy = corpus.waveforms(i)
        assert abs(10 * np.log10(np.sum(clean ** 2) / np.sum(noise ** 2)) - u.snr_db) < 0.1
        assert abs(u.snr_measured_db - u.snr_db) < 0.1
        assert u.noise_name in dealt[u.noise_split] and u.noise_category == "noise"
    rows = slice(corpus.utterances[5].frame_start, corpus.utterances[5].frame_start + corpus.utterances[5].n_frames)
    assert np.allclose(F.log_power(F.stft(corpus.waveforms(5)[2])), corpus.log_power[rows], atol=1e-3)
    prevalence = corpus.ibm.mean()
    assert 0.005 < prevalence < 0.5
    by_snr = {s: np.mean([corpus.ibm[u.frame_start:u.frame_start + u.n_frames].mean() for u in corpus.utterances if u.snr_db == s])
              for s in (-12.0, 6.0)}
    assert by_snr[6.0] > by_snr[-12.0]  # more of the clean speech survives at +6 dB


def test_prepare_decodes_each_video_once(grid_root, noise_root, tmp_path, monkeypatch):
    """`mburst prepare` draws lips.png (mouth boxes on the source frame) from what the preparation stored."""
    from experiments import cli
    from experiments.data import video

    decoded = []
    real_read = video.read_timed
    monkeypatch.setattr(video, "read_timed", lambda path: decoded.append(path.name) or real_read(path))
    rc = cli.main(["prepare", "--data", "grid", "--data-root", str(grid_root), "--noise-root", str(noise_root),
                   "--n-utterances", "4", "--snrs", "0", "--workers", "1", "--cache", str(tmp_path / "c"),
                   "--out", str(tmp_path / "run")])
    assert rc == 0
    assert sorted(decoded) == sorted(p.name for p in sorted((grid_root / "s1").glob("*.mpg"))[:4])
    assert (tmp_path / "run" / "lips.png").stat().st_size > 10_000
