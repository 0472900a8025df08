"""`mburst score`: STOI, ESTOI, PESQ-WB and SI-SDR of any enhancer's wav against the clean one, on a hand example
(SI-SDR 20 dB, improvement 20 dB), as a table and as JSON; degenerate and bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from experiments.cli import main
from experiments.speech.metrics import PESQ_WB_MIN, estoi, pesq_wb, stoi
from test_speech_helpers import FS, speechlike


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """clean s; noise n zero-mean, orthogonal to s and as strong; estimate s + 0.1 n (SI-SDR 20 log10(10) = 20 dB);
    noisy s + n (0 dB). Float wavs keep the samples."""
    d = tmp_path_factory.mktemp("score")
    s = speechlike(3 * FS)
    s -= s.mean()
    n = np.random.default_rng(0).standard_normal(s.size)
    n -= n.mean()
    n -= (n @ s) / (s @ s) * s
    n *= np.sqrt((s @ s) / (n @ n))
    files = {"clean": s, "estimate": s + 0.1 * n, "noisy": s + n, "muted": np.zeros_like(s),
             "short": s[:-10], "stereo": np.stack([s, s], axis=1)}
    for name, x in files.items():
        sf.write(d / f"{name}.wav", x, FS, subtype="DOUBLE")
    sf.write(d / "clean8k.wav", s[::2], 8_000, subtype="DOUBLE")
    sf.write(d / "est8k.wav", (s + 0.1 * n)[::2], 8_000, subtype="DOUBLE")
    return d, files


def run(capsys, *argv):
    rc = main(["score", *[str(a) for a in argv]])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err.strip()


def test_hand_example_table_and_json(wavs, capsys):
    d, x = wavs
    rc, out, _ = run(capsys, "--clean", d / "clean.wav", "--estimate", d / "estimate.wav", "--noisy", d / "noisy.wav", "--json")
    assert rc == 0
    got = json.loads(out)
    assert set(got) == {"stoi", "estoi", "pesq_wb", "si_sdr", "stoi_improvement", "estoi_improvement",
                        "pesq_wb_improvement", "si_sdr_improvement", "excluded"} and got["excluded"] == {}
    assert got["si_sdr"] == pytest.approx(20.0, abs=1e-6) and got["si_sdr_improvement"] == pytest.approx(20.0, abs=1e-6)
    assert got["stoi"] == pytest.approx(stoi(x["clean"], x["estimate"]), abs=1e-12)
    assert got["estoi"] == pytest.approx(estoi(x["clean"], x["estimate"]), abs=1e-12)
    assert got["pesq_wb"] == pytest.approx(pesq_wb(x["clean"], x["estimate"]), abs=1e-6)
    assert got["stoi_improvement"] == pytest.approx(got["stoi"] - stoi(x["clean"], x["noisy"]), abs=1e-12)
    assert 1.0 > got["stoi"] > got["stoi"] - got["stoi_improvement"] > 0.0 and got["pesq_wb_improvement"] > 0
    rc, out, _ = run(capsys, "--clean", d / "clean.wav", "--estimate", d / "estimate.wav", "--noisy", d / "noisy.wav")
    lines = out.splitlines()
    assert rc == 0 and "3.00 s at 16000 Hz" in lines[0] and lines[1].split() == ["metric", "estimate", "noisy", "improvement"]
    assert lines[5].split() == ["SI-SDR", "20.000", "dB", "0.000", "dB", "+20.000", "dB"]
    rc, out, _ = run(capsys, "--clean", d / "clean.wav", "--estimate", d / "estimate.wav", "--json")
    assert set(json.loads(out)) == {"stoi", "estoi", "pesq_wb", "si_sdr", "excluded"}


def test_a_muted_estimate_scores_the_bottom_and_says_why(wavs, capsys):
    d, _ = wavs
    rc, out, _ = run(capsys, "--clean", d / "clean.wav", "--estimate", d / "muted.wav", "--noisy", d / "noisy.wav", "--json")
    got = json.loads(out)
    assert rc == 0 and (got["stoi"], got["estoi"], got["pesq_wb"], got["si_sdr"]) == (0.0, 0.0, PESQ_WB_MIN, None)
    assert got["excluded"]["si_sdr"] == "-inf: estimate without signal" and got["stoi_improvement"] < 0
    assert got["si_sdr_improvement"] is None and "si_sdr_improvement" in got["excluded"]
    rc, out, _ = run(capsys, "--clean", d / "muted.wav", "--estimate", d / "estimate.wav")
    assert rc == 0 and out.count("n/a") == 4 and "stoi: clean: constant reference" in out


def test_other_rates_and_bad_files(wavs, capsys):
    d, _ = wavs
    rc, out, _ = run(capsys, "--clean", d / "clean8k.wav", "--estimate", d / "est8k.wav", "--json")
    got = json.loads(out)
    assert rc == 0 and got["pesq_wb"] is None and 0.9 < got["stoi"] <= 1.0
    assert got["excluded"] == {"pesq_wb": "PESQ-WB needs wideband audio at 16000 Hz; the files are at 8000 Hz"}
    for argv, expected in [
        (["--estimate", d / "short.wav"], r"--estimate .*short\.wav: 47990 samples, but --clean has 48000 \(trim or align"),
        (["--estimate", d / "stereo.wav"], r"--estimate .*stereo\.wav: 2 channels, but scoring needs mono \(pass --downmix"),
        (["--estimate", d / "est8k.wav"], r"--estimate .*est8k\.wav: sample rate 8000 Hz, but --clean is at 16000 Hz"),
        (["--estimate", d / "missing.wav"], r"--estimate .*missing\.wav: wav file not found"),
    ]:
        rc, _, err = run(capsys, "--clean", d / "clean.wav", *argv)
        assert rc == 2 and len(err.splitlines()) == 1, err
        import re

        assert re.search(expected, err), err
    rc, out, _ = run(capsys, "--clean", d / "clean.wav", "--estimate", d / "stereo.wav", "--downmix", "--json")
    assert rc == 0 and json.loads(out)["si_sdr"] is None and "+inf" in json.loads(out)["excluded"]["si_sdr"]
