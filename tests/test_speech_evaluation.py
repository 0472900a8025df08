"""Batch evaluation of enhancement: every system scored on corpus utterances, summaries, the report."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from experiments.speech.evaluation import evaluate_enhancement, summarise, write_enhancement_report
from experiments.training.noise_report import summarise_by_noise
from experiments.speech.masking import torch_mask_fn
from neurons.common import MburstError
from test_speech_helpers import FS, TinyModel, lips_for, random_stats, speechlike


@dataclass
class _Utt:
    utt_id: str
    snr_db: float
    noise_name: str
    noise_category: str
    lip_start: int
    n_frames: int


class _TinyCorpus:
    """The corpus interface evaluate_enhancement uses: utterances, lips, waveforms(i)."""

    def __init__(self, snrs=(-6.0, 6.0)):
        self.clean = speechlike(48_000)
        self.noise = np.random.default_rng(5).standard_normal(48_000)
        self.utterances = [_Utt(f"syn@{s:+g}dB", s, "white", "hiss", 0, 75) for s in snrs]
        self.lips = lips_for(48_000)

    def waveforms(self, i):
        from experiments.data.noise import snr_gain

        noise = self.noise * snr_gain(self.clean, self.noise, self.utterances[i].snr_db)
        return self.clean, noise, self.clean + noise


def test_evaluate_and_report(tmp_path):
    model_fn, stats = torch_mask_fn(TinyModel()), random_stats()
    corpus = _TinyCorpus()
    rows = evaluate_enhancement(corpus, [0, 1], {"tiny": (model_fn, stats), "absent": None},
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
    out = write_enhancement_report(rows, tmp_path)
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
    assert all(e["share_of_ibm_d_stoi"] == pytest.approx(1.0) for e in ibm)
    assert "share of IBM ΔSTOI" in md and "share_of_ibm_d_stoi" in (tmp_path / "enhancement_summary.csv").read_text()


def test_summary_by_noise_category_and_recording():
    rows = [{"snr_db": snr, "system": system, "noise": rec, "noise_category": rec.split("/")[0], "stoi": stoi,
             "si_sdr": sdr} for snr, system, rec, stoi, sdr in (
        (0.0, "noisy", "cafe/a", 0.5, 1.0), (6.0, "noisy", "cafe/b", 0.7, float("inf")),
        (0.0, "tiny", "cafe/a", 0.6, 3.0), (0.0, "noisy", "street/c", 0.4, -2.0))]
    by = summarise_by_noise(rows)
    assert by["by_category"]["cafe"]["noisy"] == {"n": 2, "stoi": pytest.approx(0.6), "si_sdr": 1.0}  # +inf left out
    assert by["by_category"]["cafe"]["tiny"]["si_sdr"] == 3.0 and list(by["by_category"]) == ["cafe", "street"]
    assert set(by["by_recording"]) == {"cafe/a", "cafe/b", "street/c"}
    assert sum(e["n"] for r in by["by_recording"].values() for e in r.values()) == len(rows)  # a partition


def test_summary_means_and_errors():
    rows = [{"snr_db": 0.0, "system": s, "stoi": v, "estoi": v, "pesq_wb": float("nan"), "si_sdr": 1.0}
            for s, v in (("noisy", 0.5), ("noisy", 0.7), ("oracle-ibm", 0.9), ("tiny", 0.7))]
    by = {e["system"]: e for e in summarise(rows)}
    assert list(by) == ["noisy", "oracle-ibm", "tiny"]  # references first
    assert by["noisy"]["stoi"] == pytest.approx(0.6) and by["noisy"]["n"] == 2 and np.isnan(by["noisy"]["pesq_wb"])
    assert by["tiny"]["d_stoi"] == pytest.approx(0.1) and by["tiny"]["share_of_ibm_d_stoi"] == pytest.approx(1 / 3)
    with pytest.raises(MburstError, match="utt_indices: empty selection"):
        evaluate_enhancement(_TinyCorpus(), [], {}, progress=False)
    with pytest.raises(MburstError, match="rows: nothing to report"):
        write_enhancement_report([], "unused")


class _Muted:
    """A model that masks everything: its enhanced audio is all zeros."""

    def __call__(self, audio, visual):
        return np.zeros((len(audio), 500), np.float32)


def test_exclusions_are_counted_and_explained(tmp_path):
    """A muted system scores the bottom of every scale (counted in the means, SI-SDR -inf left out and said why);
    an utterance too short for STOI and PESQ leaves those out of its means, with the reason."""
    from experiments.speech.evaluation import exclusion_note
    from experiments.speech.metrics import PESQ_WB_MIN

    corpus = _TinyCorpus(snrs=(0.0,))
    rows = evaluate_enhancement(corpus, [0], {"muted": (_Muted(), random_stats())}, examples=0, progress=False)
    muted = next(r for r in rows if r["system"] == "muted")
    assert (muted["stoi"], muted["estoi"], muted["pesq_wb"], muted["si_sdr"]) == (0.0, 0.0, PESQ_WB_MIN, float("-inf"))
    short = _TinyCorpus(snrs=(0.0,))
    short.clean, short.noise, short.lips = short.clean[:3200], short.noise[:3200], short.lips[:5]
    short.utterances[0].n_frames = 5
    rows += evaluate_enhancement(short, [0], {}, examples=0, progress=False)
    for r in rows[-3:]:
        r["snr_db"] = 6.0  # its own table row
    summary = summarise(rows)
    by = {(e["snr_db"], e["system"]): e for e in summary}
    assert by[(0.0, "muted")]["excluded"] == {"si_sdr": {"-inf: estimate without signal": 1}}
    assert np.isnan(by[(0.0, "muted")]["si_sdr"]) and by[(0.0, "muted")]["stoi"] == 0.0
    assert by[(6.0, "noisy")]["excluded"] == {m: {f"clean: too little speech for {label}": 1}
                                             for m, label in (("stoi", "STOI"), ("estoi", "ESTOI"), ("pesq_wb", "PESQ"))}
    assert by[(0.0, "noisy")]["excluded"] == {}
    note = exclusion_note(summary)
    assert "- 0 dB, muted: SI-SDR of 1 utterance (-inf: estimate without signal)" in note
    assert "- 6 dB, noisy: STOI of 1 utterance (clean: too little speech for STOI)" in note
    write_enhancement_report(rows, tmp_path)
    md = (tmp_path / "enhancement.md").read_text()
    assert "| excluded |" in md and "| 1 (SI-SDR 1) |" in md and "Left out of the means" in md
    assert "si_sdr" in (tmp_path / "enhancement_summary.csv").read_text().splitlines()[0]
