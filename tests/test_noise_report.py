"""report.md's noise section: per-category and per-SNR F1 on held-out recordings, the vision gain with its
interval, and the generalisation gap, from each run's checkpoints."""
import dataclasses

import numpy as np
import pytest
import soundfile as sf

from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.spec import CorpusSpec
from experiments.training.noise_report import interval95, noise_section, score_runs
from experiments.training.report import ORDER, noise_line


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ambient")
    for i, name in enumerate(("cafe/a", "cafe/b", "street/c", "street/d")):
        (root / name).parent.mkdir(exist_ok=True)
        sf.write(root / f"{name}.wav", 0.05 * np.random.default_rng(i).standard_normal(5 * 16_000), 16_000)
    spec = CorpusSpec(source="synthetic", n_utterances=12, snrs_db=(-6.0, 6.0), noise_root=root, workers=1)
    return load_corpus(prepare_corpus(spec, cache_root=tmp_path_factory.mktemp("cache"), progress=False))


def _runs(corpus, out, runs):
    """Untrained compact checkpoints laid out as `mburst reproduce` writes them."""
    import torch

    from experiments.training.checkpoints import save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig, build_model

    cfg = ModelConfig(n_bins=100, channels=2, embed=8)
    for r in range(runs):
        stats = corpus.feature_stats(corpus.split(r)["train"])
        for m in ORDER:
            torch.manual_seed(r)
            save_checkpoint(out / "runs" / f"run{r}" / m / "checkpoint.pt", {
                "model_name": m, "model_config": dataclasses.asdict(cfg), "model_state": build_model(m, cfg).state_dict(),
                "train_config": {"split_seed": r}, "feature_stats": dataclasses.asdict(stats),
                "corpus": {"source": "synthetic", "cache_key": corpus.meta["cache_key"]}})


def test_noise_section(corpus, tmp_path, one_torch_thread):
    _runs(corpus, tmp_path, 2)
    scores = score_runs(corpus, tmp_path, 2)
    for m in ORDER:
        for r, s in enumerate(scores[m]):
            test = corpus.split(r)["test"]
            assert sum(row["utterances"] for row in s["by_category"].values()) == len(test)  # a partition
            assert set(s["by_category"]) <= {"cafe", "street"} and set(s["by_snr"]) == {"-6 dB", "+6 dB"}
            f1s = [row["f1"] for row in s["by_recording"].values()]
            assert min(f1s) - 1e-12 <= s["heldout_f1"] <= max(f1s) + 1e-12
    md = noise_section(scores, tmp_path)
    assert "F1 by noise category (held-out recordings)" in md and "| cafe |" in md and "| +6 dB |" in md
    assert "gap (seen - held-out)" in md and (tmp_path / "by_noise.json").is_file()
    line, = noise_line(corpus.report["noise"])
    assert line.startswith("- Noise split `recording` over 2 categories:") and "street/" in line
    assert noise_line(None) == []


def test_interval95():
    mean, half = interval95([0.1, 0.2, 0.3, 0.2])
    assert mean == pytest.approx(0.2) and half == pytest.approx(3.182446 * np.std([0.1, 0.2, 0.3, 0.2], ddof=1) / 2, rel=1e-5)
    assert np.isnan(interval95([0.4])[1])


def test_vision_section_scores_every_run_and_pairs_differences(corpus, tmp_path, one_torch_thread):
    from experiments.training.vision_report import score_vision, vision_section

    _runs(corpus, tmp_path, 2)
    scores = score_vision(corpus, tmp_path, 2, utterances=4)
    for s in scores["runs"]:
        assert set(s["f1"]["unimodal"]) == {"intact"} and set(s["f1"]["multimodal"]) == {"intact", "shuffled", "mean"}
        assert set(s["stoi"]) == {"noisy", "oracle-ibm", "oracle-soft", "Unimodal", "Multimodal"}
        assert set(s["f1"]["mburst"]["mean"]["by_snr"]) == {"-6 dB", "+6 dB"}
        assert np.isnan(s["f1"]["mburst"]["intact"]["low_snr"]) or 0 <= s["f1"]["mburst"]["intact"]["low_snr"] <= 1
    md = vision_section(scores, tmp_path)
    assert "### Vision by noise category" in md and "| +6 dB |" in md and (tmp_path / "vision.json").is_file()


def test_vision_gains_are_paired_by_run_with_a_t_interval(tmp_path):
    from experiments.training.vision_report import vision_section

    def run(uni, multi, shuffled):
        f1 = {"by_category": {"cafe": 0.0}, "by_snr": {"-6 dB": 0.0}, "low_snr": 0.0}
        return {"f1": {"unimodal": {"intact": {**f1, "by_category": {"cafe": uni}, "low_snr": uni}},
                       **{m: {"intact": {**f1, "by_category": {"cafe": multi}, "low_snr": multi},
                              "shuffled": {**f1, "by_category": {"cafe": shuffled}}, "mean": f1}
                          for m in ("multimodal", "mburst")}},
                "stoi": {"Unimodal": {"by_category": {"cafe": 0.5}}, "Multimodal": {"by_category": {"cafe": 0.6}}}}

    md = vision_section({"runs": [run(0.5, 0.6, 0.55), run(0.5, 0.7, 0.6), run(0.4, 0.6, 0.5)]}, tmp_path)
    half = 4.302653 * np.std([0.1, 0.2, 0.2], ddof=1) / np.sqrt(3)
    assert f"Multimodal − Unimodal F1 +{np.mean([0.1, 0.2, 0.2]):.3f} ± {half:.3f}" in md
    cafe = next(line for line in md.splitlines() if line.startswith("| cafe |"))
    cells = [c.strip() for c in cafe.strip("|").split("|")]
    assert cells[1] == f"+0.167 ± {half:.3f}" and cells[2] == "+0.100 ± 0.000"
    assert cells[3] == f"-0.083 ± {4.302653 * np.std([0.05, 0.1, 0.1], ddof=1) / np.sqrt(3):.3f}"
    assert "MBURST − Multimodal F1 +0.000" in md


def test_spread_over_recordings_takes_each_recording_in_turn(corpus):
    from experiments.training.reproduce import spread_utterances

    test = corpus.split(0)["test"]
    names = sorted({corpus.utterances[i].noise_name for i in test})
    chosen = spread_utterances(test, len(names) + 1, corpus, over_recordings=True)
    assert [corpus.utterances[i].noise_name for i in chosen[:len(names)]] == names  # one from each, in name order
    plain = spread_utterances(test, 3, corpus)
    keys = [(corpus.utterances[i].clean_index, corpus.utterances[i].snr_db) for i in plain]
    assert keys == sorted(keys) and len(plain) == 3
