"""Each bad input gives a one-line error naming the file, or (--on-error skip) a counted, reported skip."""
import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from experiments import cli
from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.spec import CorpusSpec
from neurons.common import MburstError


def write_mpg(path, n_frames, audio_s=None, size=(96, 80)):
    """A small MPEG-1 file of flat gray frames (no face), with an MP2 track of ``audio_s`` seconds if given."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mpeg") as out:
        vs = out.add_stream("mpeg1video", rate=25)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        astream = out.add_stream("mp2", rate=44_100) if audio_s else None
        for _ in range(n_frames):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.full(size[::-1], 120, np.uint8), format="gray")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if astream is not None:
            tone = (3000 * np.sin(np.arange(int(audio_s * 44_100)) * 0.07)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
            frame.sample_rate = 44_100
            for pkt in astream.encode(frame):
                out.mux(pkt)
            for pkt in astream.encode():
                out.mux(pkt)


def tone_wav(path, seconds, rate=16_000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * rate)) * 0.3), rate)


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("noise")
    sf.write(d / "hum.wav", 0.05 * np.random.default_rng(0).standard_normal(15 * 16_000), 16_000)  # cut in time
    return d


def grid_spec(root, noise, **kw):
    return CorpusSpec(source="grid", data_root=root, noise_root=noise, workers=1, **kw)


def expect_error(root, noise, pattern, cache, built: bool = True):
    """The error matches ``pattern`` on one line and leaves no corpus and no partial build behind: a failed build
    (``built``) leaves its cache root empty; a spec refused before building creates no cache root at all."""
    with pytest.raises(MburstError, match=pattern) as err:
        prepare_corpus(grid_spec(root, noise), cache_root=cache, progress=False)
    assert "\n" not in str(err.value)
    left = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else None
    assert left == ([] if built else None), left
    return str(err.value)


def test_missing_mpg(tmp_path, noise_dir):
    (tmp_path / "g/s1").mkdir(parents=True)
    (tmp_path / "g/alignments/s1").mkdir(parents=True)
    (tmp_path / "g/alignments/s1/abc.align").write_text("0 75000 sil\n")
    expect_error(tmp_path / "g", noise_dir, r"s1/abc\.mpg: video file not found", tmp_path / "c")


def test_missing_data_root(tmp_path, noise_dir):
    expect_error(tmp_path / "nowhere", noise_dir, r"--data-root .*nowhere: folder not found", tmp_path / "c", built=False)


def test_corrupt_mpg(tmp_path, noise_dir):
    (tmp_path / "g/s1").mkdir(parents=True)
    (tmp_path / "g/s1/bad.mpg").write_bytes(os.urandom(4000))
    expect_error(tmp_path / "g", noise_dir, r"bad\.mpg: (cannot decode video|video has no decodable frames|no video stream)", tmp_path / "c")


def test_corrupt_wav(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/x.mpg", 20)
    (tmp_path / "g/audio/s1").mkdir(parents=True)
    (tmp_path / "g/audio/s1/x.wav").write_bytes(b"RIFF\x00\x00" + os.urandom(300))
    expect_error(tmp_path / "g", noise_dir, r"x\.wav: cannot read wav", tmp_path / "c")


def test_video_without_audio(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/mute.mpg", 20)
    expect_error(tmp_path / "g", noise_dir, r"mute\.mpg: video has no audio track", tmp_path / "c")


def test_no_face(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/blank.mpg", 30)
    tone_wav(tmp_path / "g/audio/s1/blank.wav", 30 * 0.04)
    expect_error(tmp_path / "g", noise_dir, r"blank\.mpg: no face found in any frame", tmp_path / "c")


def test_wrong_sample_rate(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/lo.mpg", 30)
    tone_wav(tmp_path / "g/audio/s1/lo.wav", 30 * 0.04, rate=8_000)
    expect_error(tmp_path / "g", noise_dir, r"lo\.wav: sample rate 8000 Hz is below", tmp_path / "c")


def test_shorter_than_context(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/short.mpg", 5)
    tone_wav(tmp_path / "g/audio/s1/short.wav", 5 * 0.04)
    expect_error(tmp_path / "g", noise_dir, r"short\.mpg: 5 frames, shorter than the 8-frame context", tmp_path / "c")


def test_audio_video_length_mismatch(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/mis.mpg", 30)
    tone_wav(tmp_path / "g/audio/s1/mis.wav", 20 * 0.04)
    expect_error(tmp_path / "g", noise_dir, r"mis\.mpg: audio gives 20 frames \(0\.80 s\) but the video \(25\.00 fps, "
                                          r"30 frames\) covers 30 \(more than one 40 ms frame apart\)", tmp_path / "c")


def test_empty_noise_folder(tmp_path):
    (tmp_path / "noise").mkdir()
    with pytest.raises(MburstError, match="empty noise folder"):
        prepare_corpus(CorpusSpec(source="synthetic", noise_root=tmp_path / "noise", n_utterances=2), cache_root=tmp_path / "c", progress=False)


def test_all_bad_with_skip_reports_each(tmp_path, noise_dir):
    write_mpg(tmp_path / "g/s1/mute.mpg", 20)
    write_mpg(tmp_path / "g/s1/short.mpg", 5)
    tone_wav(tmp_path / "g/audio/s1/short.wav", 5 * 0.04)
    with pytest.raises(MburstError, match=r"no usable utterances \(2 skipped"):
        prepare_corpus(grid_spec(tmp_path / "g", noise_dir, on_error="skip"), cache_root=tmp_path / "c", progress=False)


def test_skip_counts_bad_files_beside_real_ones(tmp_path, noise_dir, grid_root):
    root = tmp_path / "g"
    (root / "s1").mkdir(parents=True)
    for mpg in sorted((grid_root / "s1").glob("*.mpg"))[:2]:
        (root / "s1" / mpg.name).symlink_to(mpg)
    write_mpg(root / "s1/mute.mpg", 20)
    (root / "s1/zzbad.mpg").write_bytes(os.urandom(3000))
    path = prepare_corpus(grid_spec(root, noise_dir, on_error="skip", snrs_db=(0.0,)), cache_root=tmp_path / "c", progress=False)
    corpus = load_corpus(path)
    assert len(corpus.cleans) == 2
    assert {s["id"] for s in corpus.report["skipped"]} == {"s1/mute", "s1/zzbad"}
    assert corpus.report["n_skipped"] == 2


def test_cli_one_line_error_and_skip_summary(tmp_path, noise_dir, capsys):
    write_mpg(tmp_path / "g/s1/mute.mpg", 20)
    rc = cli.main(["prepare", "--data", "grid", "--data-root", str(tmp_path / "g"), "--noise-root", str(noise_dir),
                   "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "run"), "--workers", "1"])
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\n")[-1]  # progress bars go to stderr too
    assert rc == 2 and "Traceback" not in err
    assert last.startswith("mburst prepare: error: ") and "mute.mpg: video has no audio track" in last
    rc = cli.main(["prepare", "--data", "synthetic", "--n-utterances", "3", "--snrs", "0", "--cache", str(tmp_path / "c"),
                   "--out", str(tmp_path / "run2"), "--workers", "1"])
    assert rc == 0
    err = capsys.readouterr().err  # not a terminal: no bar updates, one summary line per bar
    assert "\r" not in err and "%|" not in err
    assert re.search(r"^decode\+detect: 3 utt in \d+\.\d s$", err, re.M), err
    assert re.search(r"^write cache: 6 file in \d+\.\d s$", err, re.M), err
    summary = json.loads((tmp_path / "run2/summary.json").read_text())
    assert summary["build"]["n_clean"] == 3 and summary["shapes"]["lips"] == [225, 50, 92]
    assert (tmp_path / "run2/lips.png").stat().st_size > 1000 and (tmp_path / "run2/config.json").is_file()
