"""Videos at any frame rate on the audio's clock: each 40 ms audio frame gets the video frame on display at its centre
(25, 29.97, 30, 50, 60 fps and a variable rate), missing timestamps and too-slow videos refused with one line."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from experiments.data.video import FRAME_S, MIN_FPS, TIME_EPS, read_timed
from neurons.common import MburstError

RATES = {"25": 25.0, "29.97": 30_000 / 1001, "30": 30.0, "50": 50.0, "60": 60.0}


def retime(n_source: int, rate: str) -> tuple[np.ndarray, np.ndarray]:
    """A 25 fps clip of ``n_source`` frames re-timed: (which source frame each new frame shows, its time in s).

    A constant rate goes through FFmpeg's own fps filter (what ``ffmpeg -r RATE`` does: each output frame shows
    the source frame nearest its time); 'vfr' imitates a phone (25-50 ms gaps, dropped frames), each frame
    showing the source frame nearest its time.
    """
    import av

    if rate == "vfr":
        gaps = np.random.default_rng(7).choice([0.025, 0.033, 0.034, 0.042, 0.050], size=4 * n_source)
        times = np.concatenate([[0.0], np.cumsum(gaps)])
        times = times[times < n_source / 25.0]
        return np.minimum(np.round(times * 25.0).astype(int), n_source - 1), times
    graph = av.filter.Graph()
    src = graph.add_buffer(width=16, height=16, format="gray", time_base=Fraction(1, 25))
    fps = graph.add("fps", f"fps={Fraction(RATES[rate]).limit_denominator(1001)}:eof_action=pass")
    sink = graph.add("buffersink")
    src.link_to(fps)
    fps.link_to(sink)
    graph.configure()
    shown, times = [], []
    for s in [*range(n_source), None]:
        if s is not None:
            frame = av.VideoFrame.from_ndarray(np.full((16, 16), s, np.uint8), format="gray")
            frame.pts, frame.time_base, frame.duration = s, Fraction(1, 25), 1
        src.push(frame if s is not None else None)
        while True:
            try:
                out = sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            shown.append(int(out.to_ndarray()[0, 0]))
            times.append(float(out.pts * out.time_base))
    return np.asarray(shown), np.asarray(times)


def write_video(path, luma: np.ndarray, times: np.ndarray, codec: str = "ffv1", fmt: str | None = None,
                rate: Fraction | None = None) -> None:
    """Frames with exactly this luma (yuv420p, grey chroma) presented at ``times`` (s); ffv1 is lossless. MPEG-1
    needs its constant ``rate`` as the time base."""
    import av

    tb = Fraction(1, 90_000) if rate is None else 1 / rate
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate or 30)
        stream.height, stream.width = luma.shape[1:]
        stream.pix_fmt, stream.time_base, stream.codec_context.time_base = "yuv420p", tb, tb
        grey = np.full((luma.shape[1] // 2, luma.shape[2]), 128, np.uint8)
        for y, t in zip(luma, times):
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, grey]), format="yuv420p")
            frame.pts, frame.time_base = int(round(t / tb)), tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def coded_frames(codes: np.ndarray) -> np.ndarray:
    """Flat 32 x 48 frames whose luma is 20 + code (codes < 200)."""
    return np.broadcast_to((20 + codes).astype(np.uint8)[:, None, None], (len(codes), 32, 48)).copy()


@pytest.mark.parametrize("rate", [*RATES, "vfr"])
def test_each_audio_frame_shows_the_frame_on_display_at_its_centre(tmp_path, rate):
    """A 25 fps clip of 75 frames re-timed to another rate: audio frame t sees the frame presented last before its
    centre, which shows source frame t at every constant rate (FFmpeg's re-timing), and t or a neighbour at a
    variable rate: always within one source-frame interval."""
    source, times = retime(75, rate)
    write_video(tmp_path / "v.mkv", coded_frames(source), times)
    video = read_timed(tmp_path / "v.mkv")
    np.testing.assert_allclose(video.times, times, atol=5e-4)  # Matroska keeps ms
    assert np.array_equal(video.frames[:, 0, 0] - 20, source)  # lossless, presentation order
    index = video.clock_index()
    assert len(index) == 75  # the clip covers 3 s: 75 audio frames
    centres = (np.arange(75) + 0.5) * FRAME_S
    assert np.all(video.times[index] <= centres + TIME_EPS)
    later = np.minimum(index + 1, len(times) - 1)
    assert np.all((video.times[later] > centres + TIME_EPS) | (index == len(times) - 1))
    shown = source[index]
    assert np.all(centres - video.times[index] < video.rate.max_gap + TIME_EPS)  # within one source-frame interval
    if rate == "vfr":
        assert set(np.arange(75) - shown) <= {-1, 0, 1}
    else:
        assert np.array_equal(shown, np.arange(75))
    if rate == "vfr":
        assert not video.rate.constant and video.rate.describe().startswith("variable rate, mean ")
    else:
        assert video.rate.constant and video.rate.fps == pytest.approx(RATES[rate], rel=5e-4)  # 1 ms ticks over 3 s
        assert video.rate.describe() == f"{video.rate.fps:.2f} fps"


def test_audio_starting_late_moves_the_lips_with_it(tmp_path):
    write_video(tmp_path / "v.mkv", coded_frames(np.arange(75)), np.arange(75) / 25)
    video = read_timed(tmp_path / "v.mkv")
    assert np.array_equal(video.clock_index(0.2)[:3], [5, 6, 7])  # audio sample 0 is at 0.2 s: frame 5
    assert len(video.clock_index(0.2)) == 70
    assert np.array_equal(video.clock_index(-0.1)[:5], [0, 0, 0, 1, 2])  # audio before the first frame: frame 0


def test_missing_timestamps_are_refused(tmp_path):
    """A raw H.264 stream (no container) carries no presentation times: one line naming the file and its rate."""
    path = tmp_path / "phone.h264"
    write_video(path, coded_frames(np.arange(30)), np.arange(30) / 30, codec="libx264", fmt="h264")
    with pytest.raises(MburstError, match=r"^.*phone\.h264: video frame 0 has no presentation timestamp \(nominal "
                                          r"[0-9.]+ fps; a raw stream such as \.h264\? put it in a container"):
        read_timed(path)


def test_too_slow_a_video_is_refused(tmp_path):
    times = np.arange(30) / 10.0
    write_video(tmp_path / "slow.mkv", coded_frames(np.arange(30)), times)
    with pytest.raises(MburstError, match=rf"slow\.mkv: video at 10\.00 fps is below the {MIN_FPS:g} fps minimum "
                                          r"for lip frames every 40 ms"):
        read_timed(tmp_path / "slow.mkv")
    write_video(tmp_path / "one.mkv", coded_frames(np.arange(1)), times[:1])
    with pytest.raises(MburstError, match=r"one\.mkv: 1 video frame\(s\): no frame rate"):
        read_timed(tmp_path / "one.mkv")


@pytest.mark.parametrize("name,times,codec,fmt,expected", [
    ("phone.h264", np.arange(30) / 30, "libx264", "h264", r"--video .*phone\.h264: video frame 0 has no presentation timestamp"),
    ("slow.mkv", np.arange(40) / 10, "ffv1", None, r"--video .*slow\.mkv: video at 10\.00 fps is below the 15 fps minimum"),
])
def test_enhance_refuses_with_one_line_before_loading_the_model(tmp_path, capsys, name, times, codec, fmt, expected):
    import re

    import soundfile as sf

    from experiments.cli import main

    write_video(tmp_path / name, coded_frames(np.arange(len(times)) % 200), times, codec=codec, fmt=fmt)
    sf.write(tmp_path / "a.wav", np.zeros(16_000), 16_000)
    (tmp_path / "model.pt").write_bytes(b"not read: the inputs are refused first")
    rc = main(["enhance", "--checkpoint", str(tmp_path / "model.pt"), "--video", str(tmp_path / name),
               "--audio", str(tmp_path / "a.wav"), "--out", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and re.search(expected, err), err
