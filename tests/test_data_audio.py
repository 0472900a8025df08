"""Audio input as streams: chunked resampling gives resample_poly's samples, wav blocks, a video's audio track and
its start time."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from experiments.data.audio import TrackAudio, read_video_audio, wav_chunks
from experiments.data.resample import StreamResampler, output_length, resample_to, resampled
from neurons.common import MburstError


@pytest.mark.parametrize("rate,chunk", [(r, c) for r in (44_100, 48_000, 22_050, 32_000, 50_000, 13_000)
                                         for c in (441, 4096, 100_000)] + [(44_100, 1), (13_000, 1)])
def test_stream_resampler_gives_resample_poly_samples(rate, chunk):
    x = np.random.default_rng(rate).standard_normal(rate * 3 // 10 + 7)
    whole = resample_to(x, rate)
    parts = resampled((x[i:i + chunk] for i in range(0, x.size, chunk)), rate)
    got = np.concatenate(list(parts))
    assert got.size == whole.size == output_length(x.size, rate)
    np.testing.assert_allclose(got, whole, rtol=0, atol=1e-12)


def test_stream_resampler_keeps_bounded_input():
    """After each push only the filter's span of input is kept, whatever has gone before."""
    r = StreamResampler(44_100)
    kept = []
    for _ in range(50):
        r.push(np.ones(4410))
        kept.append(r._buf.size)
    assert max(kept[5:]) == max(kept[-5:]) < 4410 + 441 + r.h.size // r.up + 1


def test_16k_passes_through_and_low_rates_are_refused():
    x = np.arange(10.0)
    assert np.array_equal(np.concatenate(list(resampled([x[:4], x[4:]], 16_000))), x)
    with pytest.raises(MburstError, match=r"in\.wav: sample rate 8000 Hz is below the 12862 Hz"):
        list(resampled([x], 8_000, source="in.wav"))


def test_wav_chunks_mono_and_checked(tmp_path):
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (70_000, 2))
    sf.write(tmp_path / "s.wav", data, 22_050, subtype="FLOAT")
    chunks = list(wav_chunks(tmp_path / "s.wav", block=30_000))
    assert [c.size for c in chunks] == [30_000, 30_000, 10_000]
    np.testing.assert_allclose(np.concatenate(chunks), data.astype(np.float32).mean(axis=1), rtol=1e-6)
    data[40_000, 1] = np.nan
    sf.write(tmp_path / "nan.wav", data, 22_050, subtype="FLOAT")
    with pytest.raises(MburstError, match=r"--audio x: contains NaN or inf samples"):
        list(wav_chunks(tmp_path / "nan.wav", "--audio x"))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MburstError, match=r"empty\.wav: empty file"):
        list(wav_chunks(tmp_path / "empty.wav"))


def test_track_audio_start_and_stream(tmp_path):
    """A video whose audio starts 0.2 s after its first frame: the track reports that start, and streams what
    read_video_audio reads."""
    import av

    path = tmp_path / "late.mkv"
    tone = (0.3 * np.sin(np.arange(44_100) * 0.05) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        video = out.add_stream("ffv1", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=44_100)
        audio.layout = "mono"
        for k in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((48, 32), 16 + 4 * k, np.uint8), format="yuv420p")
            frame.pts, frame.time_base = k, Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for i in range(0, tone.size, 4410):
            frame = av.AudioFrame.from_ndarray(tone[None, i:i + 4410], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 44_100, 8820 + i, Fraction(1, 44_100)
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    track = TrackAudio(path)
    assert track.rate == 44_100 and track.start == pytest.approx(0.2, abs=1e-3)
    whole = read_video_audio(path)
    np.testing.assert_allclose(np.concatenate(list(track.stream())), whole, atol=1e-12)
    assert track.n_samples() == whole.size == 16_000
    np.testing.assert_allclose(whole[2000:-2000], resample_to(tone / 32768.0, 44_100)[2000:-2000], atol=1e-12)
