"""Offline enhancement: the model sees the training pipeline's inputs, the result and its real-time factor,
bad input, checkpoints, and the `mburst enhance` command."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.data.features import HOP, N_BINS
from experiments.data.frames import Stats
from experiments.speech import enhance as E
from experiments.speech.masking import checkpoint_masker, model_inputs, torch_mask_fn
from experiments.speech.resynthesis import stft_padded
from neurons.common import MburstError
from test_speech_helpers import FS, TinyModel, lips_for, random_stats


class Recorder:
    """A model of ``bands`` bands that records its inputs and answers 0.5 everywhere."""

    def __init__(self, bands: int = N_BINS):
        from types import SimpleNamespace

        self.config, self.seen = SimpleNamespace(n_bins=bands), []

    def eval(self):
        return self

    def __call__(self, audio, visual):
        import torch

        self.seen.append((audio.numpy().copy(), visual.numpy().copy()))
        return torch.full((audio.shape[0], self.config.n_bins), 0.5)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    from experiments.data.corpus import load_corpus, prepare_corpus
    from experiments.data.spec import CorpusSpec

    spec = CorpusSpec(source="synthetic", n_utterances=4, snrs_db=(0.0,), seed=1, workers=1)
    return load_corpus(prepare_corpus(spec, cache_root=tmp_path_factory.mktemp("cache"), progress=False))


@pytest.mark.parametrize("bands", [N_BINS, 100])
def test_model_sees_the_training_inputs(small_corpus, bands):
    """One feature pipeline: enhancing a corpus utterance feeds the model what training's FrameSet gives it."""
    corpus, i = small_corpus, 2
    stats = corpus.feature_stats([0, 1])
    u = corpus.utterances[i]
    _, _, noisy = corpus.waveforms(i)
    model = Recorder(bands)
    E.enhance(noisy, corpus.lips[u.lip_start:u.lip_start + u.n_frames], torch_mask_fn(model), stats, batch_size=1000)
    (audio, visual), = model.seen
    train_audio, train_visual, _ = corpus.frames([i], stats, bands).batch(np.arange(u.n_frames))
    assert audio.shape == tuple(train_audio.shape) == (u.n_frames, 1, 8, bands)
    np.testing.assert_array_equal(visual, train_visual.numpy())
    # the noisy STFT of the waveform vs X + gN at build time: equal up to rounding (loud bins far below 1e-3)
    np.testing.assert_allclose(audio, train_audio.numpy(), atol=2e-3)
    assert np.mean(np.abs(audio - train_audio.numpy()) < 1e-5) > 0.99


def test_enhance_result_and_real_time_factor(monkeypatch):
    stats = random_stats()
    x = np.random.default_rng(0).standard_normal(48_000) * 0.1
    lips = lips_for(48_000)
    clock = iter([100.0, 100.75])  # a fake clock: enhancement starts at 100 s and ends at 100.75 s
    monkeypatch.setattr(E, "perf_counter", lambda: next(clock))
    res = E.enhance(x, lips, torch_mask_fn(TinyModel()), stats, mask="binary")
    assert res.probs.shape == res.mask.shape == (75, N_BINS) and set(np.unique(res.mask)) <= {0.0, 1.0}
    assert np.array_equal(res.mask, (res.probs >= 0.5).astype(np.float32))
    assert res.seconds == 0.75 and res.rtf == pytest.approx(0.75 / 3.0)  # compute time / 3 s of audio
    # the inputs by hand: ((ln(|X|^2 + 1e-8) - mean) / std) of frames t-7..t, zeros before frame 0
    audio, visual = model_inputs(stft_padded(x), lips, stats)
    spec = np.fft.rfft(np.hamming(1244) * np.pad(x, (302, 942))[9 * HOP:9 * HOP + 1244])
    frame9 = (np.log(np.abs(spec[1:501]) ** 2 + 1e-8) - stats.mean) / stats.std
    np.testing.assert_allclose(audio[16, 0, 0], frame9, rtol=1e-5, atol=1e-5)  # frame 9 is the oldest of window 16
    assert np.all(audio[3, 0, :4] == 0) and not np.any(np.all(audio[3, 0, 4:] == 0, axis=1))
    np.testing.assert_allclose(visual[5, 0], (lips[5] - 110.0) / 40.0, rtol=1e-6)


def test_bad_inputs():
    fn = torch_mask_fn(TinyModel())
    x = np.zeros(48_000)
    with pytest.raises(MburstError, match=r"video has 70 frames \(2\.80 s\) .* shorter than the audio"):
        E.enhance(x, lips_for(48_000)[:70], fn)
    # one lip frame short for a final partial hop: the last lip frame is reused
    n = 48_000 + 100
    assert E.enhance(np.ones(n) * 0.01, lips_for(n)[:-1], fn).audio.shape == (n,)
    with pytest.raises(MburstError, match=r"noisy: expected mono audio, got shape \(48000, 2\)"):
        E.enhance(np.zeros((48_000, 2)), lips_for(48_000), fn)
    with pytest.raises(MburstError, match="noisy: no samples"):
        E.enhance(np.zeros(0), lips_for(640), fn)
    with pytest.raises(MburstError, match=r"mask_fn: returned shape \(\d+, 3\), expected"):
        E.enhance(x, lips_for(48_000), lambda a, v: np.zeros((len(a), 3)))
    with pytest.raises(MburstError, match=r"video: expected lip crops \[frames, 50, 92\]"):
        E.enhance(x, np.zeros((75, 50, 90)), fn)
    with pytest.raises(MburstError, match="feature_stats: 100 bins, but the features have 500"):
        E.enhance(x, lips_for(48_000), fn, Stats.identity(100))


def _write_video(path, n_frames: int, size: int = 64) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg1video", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(n_frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def cli_files(tmp_path):
    import soundfile as sf

    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"not read before the inputs are checked")
    video = tmp_path / "short.mpg"
    _write_video(video, 10)
    files = {"ckpt": ckpt, "video": video, "out": tmp_path / "clean.wav"}
    for name, rate, channels, n in [("good", 16_000, 1, 48_000), ("rate", 44_100, 1, 44_100), ("stereo", 16_000, 2, 16_000),
                                    ("nosamples", 16_000, 1, 0)]:
        data = np.zeros((n, channels)) + 0.01
        sf.write(str(tmp_path / f"{name}.wav"), data, rate)
        files[name] = tmp_path / f"{name}.wav"
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "empty.mpg").write_bytes(b"")
    files["empty"], files["empty_video"] = tmp_path / "empty.wav", tmp_path / "empty.mpg"
    return files


@pytest.mark.parametrize("audio,video,expected", [
    ("rate", "video", r"--audio .*rate\.wav: sample rate 44100 Hz, but the model needs 16000 Hz \(pass --resample"),
    ("stereo", "video", r"--audio .*stereo\.wav: 2 channels, but enhancement needs mono \(pass --downmix"),
    ("empty", "video", r"--audio .*empty\.wav: empty file"),
    ("nosamples", "video", r"--audio .*nosamples\.wav: no samples"),
    ("good", "video", r"--video .*short\.mpg: 10 frames \(0\.40 s at 25\.00 fps\) but the audio lasts 3\.00 s and needs 75 "
                      r"lip frames \(one per 40 ms\): the video is shorter than the audio"),
    ("good", "empty_video", r"--video .*empty\.mpg: empty file"),
])
def test_cli_bad_inputs(cli_files, capsys, audio, video, expected):
    import re

    from experiments.cli import main

    rc = main(["enhance", "--checkpoint", str(cli_files["ckpt"]), "--audio", str(cli_files[audio]),
               "--video", str(cli_files[video]), "--out", str(cli_files["out"])])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and re.search(expected, err), err
    assert not cli_files["out"].exists()


@pytest.mark.parametrize("audio,option", [("rate", "--resample"), ("stereo", "--downmix")])
def test_cli_resample_and_downmix_accept(cli_files, capsys, audio, option):
    """With the option, the wav is accepted: the check moves on to the video (10 frames for 1 s of audio)."""
    from experiments.cli import main

    rc = main(["enhance", "--checkpoint", str(cli_files["ckpt"]), "--audio", str(cli_files[audio]), option,
               "--video", str(cli_files["video"]), "--out", str(cli_files["out"])])
    assert rc == 2 and "needs 25 lip frames (one per 40 ms): the video is shorter than the audio" in capsys.readouterr().err


def real_checkpoint(path, name: str = "mburst"):
    """A small randomly initialised rate model saved the way `mburst train` saves it."""
    import torch

    from experiments.training.checkpoints import config_dict, save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig(channels=2, embed=8)
    model = build_model(name, cfg)
    stats = Stats(np.full(N_BINS, -8.0, np.float32), np.full(N_BINS, 2.0, np.float32), 100.0, 50.0)
    save_checkpoint(path, {"model_name": name, "model_config": config_dict(cfg), "model_state": model.state_dict(),
                           "feature_stats": stats, "features": {"sample_rate": FS, "win": 1244, "hop": HOP, "n_bins": N_BINS}})
    return model


@pytest.mark.parametrize("name", ["mburst", "unimodal"])
def test_checkpoint_masker_runs_the_real_model(tmp_path, name):
    import torch

    model = real_checkpoint(tmp_path / "c.pt", name)
    fn, stats, state = checkpoint_masker(tmp_path / "c.pt")
    assert state["model_name"] == name and stats.lip_mean == 100.0
    x = np.random.default_rng(0).standard_normal(10 * HOP + 7) * 0.1
    lips = lips_for(len(x))
    offline = E.enhance(x, lips, fn, stats)
    audio, visual = model_inputs(stft_padded(x), lips, stats)
    with torch.no_grad():
        direct = model.eval()(torch.from_numpy(audio), torch.from_numpy(visual)).numpy()
    np.testing.assert_array_equal(offline.probs, direct)
    with pytest.raises(MburstError, match="does not exist"):
        checkpoint_masker(tmp_path / "missing.pt")


def test_band_model_sees_pooled_features_and_masks_every_bin():
    import torch

    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model("mburst", ModelConfig(n_bins=100, channels=1, embed=4)).eval()
    audio = np.random.default_rng(1).standard_normal((3, 1, 8, N_BINS)).astype(np.float32)
    visual = np.random.default_rng(2).standard_normal((3, 1, 50, 92)).astype(np.float32)
    out = torch_mask_fn(model)(audio, visual)
    with torch.no_grad():
        bands = model(torch.from_numpy(audio.reshape(3, 1, 8, 100, 5).mean(-1)), torch.from_numpy(visual)).numpy()
    assert out.shape == (3, N_BINS)
    np.testing.assert_allclose(out, np.repeat(bands, 5, axis=1), rtol=1e-6)


@pytest.mark.parametrize("stream", [False, True])
def test_cli_end_to_end_on_grid(grid_root, tmp_path, capsys, stream):
    import soundfile as sf

    from experiments.cli import main
    from experiments.data.audio import read_video_audio

    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    ckpt = tmp_path / "model.pt"
    real_checkpoint(ckpt)
    out = tmp_path / "clean.wav"
    argv = ["enhance", "--checkpoint", str(ckpt), "--video", str(mpg), "--out", str(out), "--mask", "binary"]
    assert main(argv + (["--stream"] if stream else [])) == 0
    printed = capsys.readouterr().out
    assert "real-time factor" in printed and "model mburst" in printed
    assert ("algorithmic latency 98.9 ms" in printed) == stream
    note = [line for line in printed.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "GRID corpus utterance" in note[0] and "--audio NOISY.wav" in note[0]
    data, rate = sf.read(str(out))
    assert rate == FS and data.shape == read_video_audio(mpg).shape  # the audio came from the video
    assert np.any(data != 0)


def test_a_grid_utterance_is_known_by_its_alignment(tmp_path):
    """The clean-track note of `mburst enhance` is for corpus videos only: sN/ID.mpg with alignments/sN/ID.align."""
    from experiments.commands.enhance import is_grid_utterance

    (tmp_path / "s1").mkdir()
    (tmp_path / "alignments" / "s1").mkdir(parents=True)
    for name in ("bbaf2n", "other"):
        (tmp_path / "s1" / f"{name}.mpg").write_bytes(b"")
    (tmp_path / "alignments" / "s1" / "bbaf2n.align").write_text("0 100 sil\n")
    assert is_grid_utterance(tmp_path / "s1" / "bbaf2n.mpg")
    assert not is_grid_utterance(tmp_path / "s1" / "other.mpg")
    assert not is_grid_utterance(tmp_path / "bbaf2n.mpg")
