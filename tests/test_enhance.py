"""Enhancement: resynthesis, upper-bin policies, oracle masks, streaming == offline, evaluation, CLI errors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from experiments.speech import enhance as E
from experiments.data.features import HOP, N_BINS, N_BINS_TOTAL, ideal_binary_mask, stft
from neurons.common import MburstError

FS = 16_000


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / FS
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.5 * t)) / FS
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    return 0.1 * voiced * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2 * (np.sin(2 * np.pi * 0.7 * t) > -0.3)


class TinyModel:
    """A small torch network with the model interface: audio [B,1,8,500] + visual [B,1,50,92] -> probs [B,500]."""

    def __new__(cls, seed: int = 0):
        import torch

        torch.manual_seed(seed)

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
                self.audio = torch.nn.Linear(2 * 8 * N_BINS, 16)
                self.visual = torch.nn.Linear(50 * 92, 16)
                self.out = torch.nn.Linear(32, N_BINS)

            def forward(self, audio, visual):
                a = torch.relu(self.audio(torch.relu(self.conv(audio)).flatten(1)))
                v = torch.relu(self.visual(visual.flatten(1)))
                return torch.sigmoid(self.out(torch.cat([a, v], 1)))

        return Net()


@pytest.fixture(scope="module")
def model_fn():
    return E.torch_mask_fn(TinyModel())


@pytest.fixture(scope="module")
def stats():
    rng = np.random.default_rng(3)
    return E.Standardiser(rng.normal(-6, 1, N_BINS), rng.uniform(1, 3, N_BINS), 110.0, 40.0)


def lips_for(n_samples: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (E.frames_for(n_samples), 50, 92), dtype=np.uint8)


# ---------------------------------------------------------------- resynthesis
@pytest.mark.parametrize("n", [48_000, 48_000 + 123, 5 * HOP + 1, 300])
def test_all_ones_mask_reconstructs_any_length(n):
    x = np.random.default_rng(n).standard_normal(n)
    y = E.resynthesise(x, np.ones((E.frames_for(n), N_BINS)), upper="pass")
    assert y.shape == x.shape
    assert snr_db(x, y) > 40.0


def test_attenuate_keeps_a_band_limited_signal():
    # a 1 kHz tone lies inside the modelled band (bin 77.8 of 623): dropping DC and bins > 500 leaves it intact
    t = np.arange(48_000) / FS
    x = np.sin(2 * np.pi * 1000 * t)
    y = E.resynthesise(x, np.ones((75, N_BINS)), upper="attenuate", floor=0.0)
    assert snr_db(x[2000:-2000], y[2000:-2000]) > 40.0
    # a 7.5 kHz tone lies above the modelled band: attenuated to (almost) nothing, passed untouched
    hi = np.sin(2 * np.pi * 7500 * t)
    assert np.std(E.resynthesise(hi, np.ones((75, N_BINS)), upper="attenuate")) < 1e-3 * np.std(hi)
    assert snr_db(hi, E.resynthesise(hi, np.zeros((75, N_BINS)), upper="pass")) > 40.0


def test_full_band_gain_policies():
    mask = np.random.default_rng(0).uniform(size=(4, N_BINS))
    for upper, floor, rest in [("attenuate", 0.0, np.zeros(4)), ("attenuate", 0.25, np.full(4, 0.25)),
                               ("attenuate", "mean", mask.mean(1)), ("pass", 0.0, np.ones(4))]:
        gain = E.full_band_gain(mask, upper, floor)
        assert gain.shape == (4, N_BINS_TOTAL)
        np.testing.assert_allclose(gain[:, 1:N_BINS + 1], mask)
        np.testing.assert_allclose(gain[:, 0], rest)
        np.testing.assert_allclose(gain[:, N_BINS + 1:], np.repeat(rest[:, None], N_BINS_TOTAL - N_BINS - 1, 1))
    with pytest.raises(MburstError, match="--upper-bins"):
        E.full_band_gain(mask, "keep")
    with pytest.raises(MburstError, match="floor"):
        E.full_band_gain(mask, "attenuate", 2.0)
    with pytest.raises(MburstError, match=r"mask: expected shape \[frames, 500\]"):
        E.full_band_gain(mask[:, :10])


def test_soft_and_binary_masks():
    probs = np.array([[0.2, 0.5, 0.7]])
    np.testing.assert_array_equal(E.select_mask(probs, "binary"), [[0, 1, 1]])
    np.testing.assert_allclose(E.select_mask(probs, "soft"), probs)
    with pytest.raises(MburstError, match="--mask"):
        E.select_mask(probs, "hard")


def test_oracle_masks():
    rng = np.random.default_rng(0)
    clean, noise = speechlike(48_000), 0.05 * rng.standard_normal(48_000)
    ibm, wiener = E.oracle_masks(clean, noise)
    np.testing.assert_array_equal(ibm, ideal_binary_mask(stft(clean), stft(noise), 5.0))
    ps, pn = np.abs(stft(clean)[:, 1:501]) ** 2, np.abs(stft(noise)[:, 1:501]) ** 2
    np.testing.assert_allclose(wiener, ps / (ps + pn), rtol=1e-5)
    assert wiener.min() >= 0 and wiener.max() <= 1
    with pytest.raises(MburstError, match="noise: length"):
        E.oracle_masks(clean, noise[:-1])


# ---------------------------------------------------------------- model masks and streaming
def test_context_stack_matches_context_window():
    from experiments.data.features import context_window

    feats = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32)
    stacked = E.context_stack(feats)
    assert stacked.shape == (12, 1, 8, 5)
    for t in (0, 3, 7, 11):
        np.testing.assert_array_equal(stacked[t, 0], context_window(feats, t))


@pytest.mark.parametrize("n,mask,upper,floor", [(48_000, "soft", "attenuate", 0.0), (48_000 + 123, "binary", "pass", 0.0),
                                               (7 * HOP + 400, "soft", "attenuate", "mean"), (500, "soft", "pass", 0.0)])
def test_streaming_equals_offline(model_fn, stats, n, mask, upper, floor):
    x = np.random.default_rng(n).standard_normal(n) * 0.1
    lips = lips_for(n)
    offline = E.enhance(x, lips, model_fn, stats, mask=mask, upper=upper, floor=floor)
    streamer = E.StreamingEnhancer(model_fn, stats, mask=mask, upper=upper, floor=floor)
    online = streamer.run(x, lips)
    assert online.shape == offline.audio.shape == x.shape
    np.testing.assert_allclose(online, offline.audio, rtol=1e-5, atol=1e-6)
    assert len(streamer.frame_seconds) == E.frames_for(n)
    assert streamer.latency_ms == pytest.approx(1000 * (2 * 640 + 302) / FS)


def test_streaming_is_causal(model_fn, stats):
    # changing the input after sample k must not change output samples emitted before it arrived
    n = 20 * HOP
    x = np.random.default_rng(0).standard_normal(n) * 0.1
    y = x.copy()
    y[12 * HOP:] = 0.0
    lips = lips_for(n)
    a, b = E.StreamingEnhancer(model_fn, stats), E.StreamingEnhancer(model_fn, stats)
    out_a = np.concatenate([a.push(x[k * HOP:(k + 1) * HOP], lips[k]) for k in range(12)])
    out_b = np.concatenate([b.push(y[k * HOP:(k + 1) * HOP], lips[k]) for k in range(12)])
    assert len(out_a) == 10 * HOP + 338  # everything before frame 11's first sample (11*640 - 302)
    np.testing.assert_array_equal(out_a, out_b)


def test_enhance_result_and_standardiser(model_fn, stats):
    x = np.random.default_rng(0).standard_normal(48_000) * 0.1
    res = E.enhance(x, lips_for(48_000), model_fn, stats, mask="binary")
    assert res.probs.shape == (75, N_BINS) and set(np.unique(res.mask)) <= {0.0, 1.0}
    assert res.rtf > 0
    # the model sees standardised inputs: identical to standardising by hand
    spec = stft(x)
    audio = ((np.log(np.abs(spec[:, 1:501]) ** 2 + 1e-8) - stats.audio_mean) / stats.audio_std).astype(np.float32)
    lips = lips_for(48_000)
    direct = model_fn(E.context_stack(audio), ((lips.astype(np.float32) - 110.0) / 40.0)[:, None])
    np.testing.assert_allclose(res.probs, direct, rtol=1e-5, atol=1e-6)


def test_standardiser_from_corpus_stats():
    from experiments.data.corpus import Stats

    st = E.standardiser_from(Stats(np.zeros(N_BINS, np.float32), np.ones(N_BINS, np.float32), 100.0, 50.0))
    assert st.lip_mean == 100.0 and st.lip_std == 50.0
    with pytest.raises(MburstError, match="audio_std: must be positive"):
        E.Standardiser(np.zeros(N_BINS), np.zeros(N_BINS))
    with pytest.raises(MburstError, match="feature_stats: missing 'lip_std'"):
        E.standardiser_from({"mean": 0, "std": 1, "lip_mean": 0})


def test_bad_inputs(model_fn):
    x = np.zeros(48_000)
    with pytest.raises(MburstError, match=r"video has 70 frames .* shorter than the audio"):
        E.enhance(x, lips_for(48_000)[:70], model_fn)
    # one lip frame short for a final partial hop: the last lip frame is reused
    n = 48_000 + 100
    assert E.enhance(np.ones(n) * 0.01, lips_for(n)[:-1], model_fn).audio.shape == (n,)
    with pytest.raises(MburstError, match=r"noisy: expected mono audio, got shape \(48000, 2\)"):
        E.enhance(np.zeros((48_000, 2)), lips_for(48_000), model_fn)
    with pytest.raises(MburstError, match="noisy: no samples"):
        E.enhance(np.zeros(0), lips_for(640), model_fn)
    with pytest.raises(MburstError, match="audio: sample rate 44100 Hz, but enhancement needs 16000 Hz"):
        E.check_audio(x, fs=44_100)
    with pytest.raises(MburstError, match=r"mask_fn: returned shape \(\d+, 3\), expected"):
        E.enhance(x, lips_for(48_000), lambda a, v: np.zeros((len(a), 3)))
    with pytest.raises(MburstError, match="hop: expected 640 samples"):
        E.StreamingEnhancer(model_fn).push(np.zeros(100), np.zeros((50, 92)))
    done = E.StreamingEnhancer(model_fn)
    done.run(np.zeros(2 * HOP), np.zeros((2, 50, 92)))
    with pytest.raises(MburstError, match="the stream has finished"):
        done.push(np.zeros(HOP), np.zeros((50, 92)))


# ---------------------------------------------------------------- evaluation and report
@dataclass
class _Utt:
    utt_id: str
    snr_db: float
    noise_name: str
    lip_start: int
    n_frames: int


class _TinyCorpus:
    """The corpus interface evaluate_enhancement uses: utterances, lips, waveforms(i)."""

    def __init__(self, snrs=(-6.0, 6.0)):
        self.clean = speechlike(48_000)
        self.noise = np.random.default_rng(5).standard_normal(48_000)
        self.utterances = [_Utt(f"syn@{s:+g}dB", s, "white", 0, 75) for s in snrs]
        self.lips = lips_for(48_000)

    def waveforms(self, i):
        from experiments.data.noise import snr_gain

        noise = self.noise * snr_gain(self.clean, self.noise, self.utterances[i].snr_db)
        return self.clean, noise, self.clean + noise


def test_evaluate_and_report(tmp_path, model_fn, stats):
    corpus = _TinyCorpus()
    rows = E.evaluate_enhancement(corpus, [0, 1], {"tiny": (model_fn, stats), "absent": None},
                                  uppers=("attenuate", "pass"), examples=1, progress=False)
    systems = {r["system"] for r in rows}
    assert systems == {"noisy", "oracle-ibm [attenuate]", "oracle-ibm [pass]", "oracle-soft [attenuate]",
                       "oracle-soft [pass]", "tiny [attenuate]", "tiny [pass]"}
    assert rows.skipped == {"absent": "no model given"}
    by = {(r["snr_db"], r["system"]): r for r in rows}
    for snr in (-6.0, 6.0):
        assert by[(snr, "oracle-soft [attenuate]")]["stoi"] > by[(snr, "noisy")]["stoi"]
        assert by[(snr, "noisy")]["si_sdr"] == pytest.approx(snr, abs=0.3)  # noisy = clean + noise at that SNR (up to their correlation)
    assert by[(6.0, "noisy")]["stoi"] > by[(-6.0, "noisy")]["stoi"]
    out = E.write_enhancement_report(rows, tmp_path)
    md = (tmp_path / "enhancement.md").read_text()
    assert "| -6 | oracle-ibm [attenuate] |" in md and "absent (no model given)" in md
    assert len((tmp_path / "enhancement.csv").read_text().splitlines()) == len(rows) + 1
    assert len(list(tmp_path.glob("spectrogram_*.png"))) == 2
    wavs = sorted((tmp_path / "audio").glob("*.wav"))
    assert len(wavs) == 2 * 8  # clean, noisy and 6 masked systems, per example
    import soundfile as sf

    data, rate = sf.read(wavs[0])
    assert rate == FS and data.shape == (48_000,)
    ibm = [e for e in out["summary"] if e["system"] == "oracle-ibm [attenuate]"]
    assert all(e["ibm_gain_fraction"] == pytest.approx(1.0) for e in ibm)


# ---------------------------------------------------------------- real data
def test_oracle_ibm_improves_stoi_on_real_grid(grid_root, noise_root):
    from experiments.data.grid import read_video_audio
    from experiments.data.noise import load_noise_folder, segment, snr_gain
    from experiments.speech.metrics import stoi

    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    clean = read_video_audio(mpg)
    bank = load_noise_folder(noise_root)
    name = sorted(bank)[0]
    raw = segment(bank[name], 0, len(clean))
    noise = raw * snr_gain(clean, raw, -6.0)
    noisy = clean + noise
    ibm, wiener = E.oracle_masks(clean, noise)
    base = stoi(clean, noisy)
    assert stoi(clean, E.resynthesise(noisy, ibm)) > base + 0.03
    assert stoi(clean, E.resynthesise(noisy, wiener)) > base + 0.1


# ---------------------------------------------------------------- the `mburst enhance` command
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
    ("good", "video", r"--video .*short\.mpg: 10 frames \(0\.40 s\) but the audio lasts 3\.00 s and needs 75 .* shorter than the audio"),
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


def test_cli_resample_and_downmix_accept(cli_files):
    from experiments.commands.enhance import read_noisy_wav

    assert read_noisy_wav(cli_files["rate"], resample=True).shape == (16_000,)
    assert read_noisy_wav(cli_files["stereo"], downmix=True).shape == (16_000,)


def _real_checkpoint(path, name: str = "mburst"):
    """A small randomly initialised rate model saved the way `mburst train` saves it."""
    import torch

    from experiments.training.checkpoints import config_dict, save_checkpoint
    from experiments.data.corpus import Stats
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

    model = _real_checkpoint(tmp_path / "c.pt", name)
    fn, stats, state = E.checkpoint_masker(tmp_path / "c.pt")
    assert state["model_name"] == name and stats.lip_mean == 100.0
    x = np.random.default_rng(0).standard_normal(10 * HOP + 7) * 0.1
    lips = lips_for(len(x))
    offline = E.enhance(x, lips, fn, stats)
    spec = E.stft_padded(x)
    audio = torch.from_numpy(E.context_stack(stats.audio(spec)))
    visual = torch.from_numpy(stats.lips(lips)[:, None])
    with torch.no_grad():
        np.testing.assert_allclose(offline.probs, model.eval()(audio, visual).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(E.StreamingEnhancer(fn, stats).run(x, lips), offline.audio, rtol=1e-5, atol=1e-6)
    with pytest.raises(MburstError, match="does not exist"):
        E.checkpoint_masker(tmp_path / "missing.pt")


def test_band_model_sees_pooled_features_and_masks_every_bin():
    import torch

    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model("mburst", ModelConfig(n_bins=100, channels=1, embed=4)).eval()
    audio = np.random.default_rng(1).standard_normal((3, 1, 8, N_BINS)).astype(np.float32)
    visual = np.random.default_rng(2).standard_normal((3, 1, 50, 92)).astype(np.float32)
    out = E.torch_mask_fn(model)(audio, visual)
    with torch.no_grad():
        bands = model(torch.from_numpy(audio.reshape(3, 1, 8, 100, 5).mean(-1)), torch.from_numpy(visual)).numpy()
    assert out.shape == (3, N_BINS)
    np.testing.assert_allclose(out, np.repeat(bands, 5, axis=1), rtol=1e-6)


@pytest.mark.parametrize("stream", [False, True])
def test_cli_end_to_end_on_grid(grid_root, tmp_path, capsys, stream):
    import soundfile as sf

    from experiments.cli import main
    from experiments.data.grid import read_video_audio

    mpg = sorted((grid_root / "s1").glob("*.mpg"))[0]
    ckpt = tmp_path / "model.pt"
    _real_checkpoint(ckpt)
    out = tmp_path / "clean.wav"
    argv = ["enhance", "--checkpoint", str(ckpt), "--video", str(mpg), "--out", str(out), "--mask", "binary"]
    assert main(argv + (["--stream"] if stream else [])) == 0
    printed = capsys.readouterr().out
    assert "real-time factor" in printed and "model mburst" in printed
    assert ("algorithmic latency 98.9 ms" in printed) == stream
    data, rate = sf.read(str(out))
    assert rate == FS and data.shape == read_video_audio(mpg).shape  # the audio came from the video
    assert np.any(data != 0)
