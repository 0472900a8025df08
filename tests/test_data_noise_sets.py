"""Noise the model has never heard (issue 18): noise roots by category, recording and time splits of the noise,
sentence splits that stay put, evaluate's refusal of overlapping splits, and --by-noise rows."""
import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from experiments import cli
from experiments.data.corpus import load_corpus, prepare_corpus
from experiments.data.noise import GUARD_S, load_noise_set, noise_files
from experiments.data.spec import CorpusSpec
from experiments.data.splits import sentence_splits
from neurons.common import MburstError

RATE = 16_000


def noise_wav(path, seconds, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.05 * np.random.default_rng(seed).standard_normal(int(seconds * RATE)), RATE)


@pytest.fixture(scope="module")
def ambient(tmp_path_factory):
    """Two categories of two recordings (one nested a level down), a single-recording category, a README."""
    root = tmp_path_factory.mktemp("ambient")
    noise_wav(root / "cafe/a.wav", 14, 1)  # >= 12 s: a time cut's test part, 30 % of (n - 2 s), holds 3 s
    noise_wav(root / "cafe/more/b.wav", 12.5, 2)
    noise_wav(root / "street/c.wav", 13, 3)
    noise_wav(root / "street/d.wav", 15, 4)
    noise_wav(root / "hum/only.wav", 20, 5)
    (root / "README.md").write_text("what these are")
    return root


@pytest.fixture(scope="module")
def corpora(ambient, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    spec = CorpusSpec(source="synthetic", n_utterances=10, snrs_db=(0.0,), noise_root=ambient, workers=1, seed=2)
    small = load_corpus(prepare_corpus(spec, cache_root=cache, progress=False))
    grown = load_corpus(prepare_corpus(dataclasses.replace(spec, n_utterances=24), cache_root=cache, progress=False))
    timed = load_corpus(prepare_corpus(dataclasses.replace(spec, noise_split="time"), cache_root=cache, progress=False))
    return small, grown, timed


def test_noise_root_categories(ambient, tmp_path):
    categories, ignored, empty = noise_files(ambient)
    assert {k: [p.name for p in v] for k, v in categories.items()} == {
        "cafe": ["a.wav", "b.wav"], "hum": ["only.wav"], "street": ["c.wav", "d.wav"]}
    assert [i[0].rsplit("/", 1)[-1] for i in ignored] == ["README.md"] and empty == []
    flat = tmp_path / "noise"  # files directly in the root: one category named after the folder
    noise_wav(flat / "x.wav", 4)
    noise_wav(flat / "y.wav", 4)
    assert {k: len(v) for k, v in noise_files(flat)[0].items()} == {"noise": 2}


def test_bad_noise_inputs_error_or_skip(tmp_path):
    root = tmp_path / "n"
    noise_wav(root / "good/a.wav", 4)
    (root / "empty").mkdir(parents=True)
    noise_wav(root / "short/s.wav", 1.5)
    (root / "good/notes.txt").write_text("not audio")
    skipped = []
    recordings, ignored = load_noise_set(root, lambda name, reason: skipped.append(reason))
    assert [r.name for r in recordings] == ["good/a"]
    assert len(ignored) == 1 and "notes.txt: not an audio file" in ignored[0][1]  # never an error
    assert len(skipped) == 2 and "empty: category folder holds no audio recording" in skipped[0]
    assert "s.wav: noise recording of 1.50 s is shorter than one utterance" in skipped[1]

    def fail(name, reason):
        raise MburstError(reason)

    with pytest.raises(MburstError, match="category folder holds no audio") as err:
        load_noise_set(root, fail)
    assert "\n" not in str(err.value)
    (root / "empty").rmdir()
    with pytest.raises(MburstError, match=r"s\.wav: noise recording of 1\.50 s is shorter than one utterance"):
        load_noise_set(root, fail)
    (root / "short/s.wav").write_bytes(b"RIFF" + bytes(100))  # audio by name, not by content
    with pytest.raises(MburstError, match=r"s\.wav: cannot read wav"):
        load_noise_set(root, fail)


def test_recording_split_keeps_each_recording_in_one_split(corpora):
    small, grown, _ = corpora
    noise = small.report["noise"]
    assert noise["mode"] == "recording"
    assert noise["categories"] == {"cafe": "recordings", "hum": "time (single recording)", "street": "recordings"}
    dealt = {k: [p["recording"] for p in v] for k, v in noise["splits"].items()}
    for category in ("cafe", "street"):  # two recordings: one each
        assert sum(r.startswith(category) for r in dealt["train"]) == sum(r.startswith(category) for r in dealt["test"]) == 1
    whole = {r for k in dealt for r in dealt[k] if not r.startswith("hum")}
    assert not set(dealt["train"]) & set(dealt["test"]) - {"hum/only"} and len(whole) == 4
    for u in small.utterances:  # every mixture uses a recording of its noise split
        assert u.noise_name in dealt[u.noise_split]
    used = {k: {p["recording"]: p["mixed_s"] for p in v} for k, v in noise["splits"].items()}
    assert sum(sum(v.values()) for v in used.values()) == pytest.approx(len(small) * 3.0)
    for k in ("train", "test"):
        assert {u.noise_name for u in small.utterances if u.noise_split == k} == {r for r, s in used[k].items() if s > 0}


def test_time_split_leaves_its_guard_gap(corpora):
    _, _, timed = corpora
    noise = timed.report["noise"]
    assert set(noise["categories"].values()) == {"time"}
    parts = {k: {p["recording"]: (p["start_s"], p["stop_s"]) for p in v} for k, v in noise["splits"].items()}
    for rec, (start, stop) in parts["train"].items():
        assert start == 0 and parts["test"][rec][0] - stop == pytest.approx(GUARD_S)
        assert parts["test"][rec][1] == pytest.approx(noise["recordings"][rec])
    for u in timed.utterances:  # every segment inside its part: none touches the gap
        lo, hi = parts[u.noise_split][u.noise_name]
        assert lo * RATE <= u.noise_offset and u.noise_offset + u.n_frames * 640 <= hi * RATE + 1e-6


def test_growing_a_corpus_keeps_every_sentence_in_its_split(corpora):
    ids = [f"s1/{i:04d}" for i in range(400)]
    for seed in (0, 3):
        before, after = sentence_splits(ids[:200], seed), sentence_splits(ids, seed)
        assert np.array_equal(before, after[:200])
        assert 0.7 < np.mean(after == 0) < 0.9 and 0.1 < np.mean(after == 1) < 0.2
    for seed in range(20):  # a corpus of a few sentences still gets a train and a test sentence
        assert set(sentence_splits(["a", "b"], seed)) == {0, 1} and {0, 1} <= set(sentence_splits(list("cdef"), seed))
    small, grown, _ = corpora
    small_ids = [c["clean_id"] for c in small.cleans]
    checked = 0
    for seed in range(4):
        old = {k: {small.utterances[i].utt_id for i in v} for k, v in small.split(seed).items() if k != "all"}
        new = {k: {grown.utterances[i].utt_id for i in v} for k, v in grown.split(seed).items() if k != "all"}
        raw = sentence_splits(small_ids + [c["clean_id"] for c in grown.cleans[len(small_ids):]], seed)[:len(small_ids)]
        if np.array_equal(raw, sentence_splits(small_ids, seed)):  # the 10 sentences needed no fill-in of an empty split
            checked += 1
            assert all(old[k] <= new[k] for k in old), {k: old[k] - new[k] for k in old}
    assert checked >= 2


def _checkpoint(corpus, path, split_seed=0):
    """An untrained compact Unimodal checkpoint "trained" on ``corpus`` with ``split_seed``."""
    from experiments.training.checkpoints import save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig, build_model

    cfg = ModelConfig(n_bins=100, channels=2, embed=8)
    model = build_model("unimodal", cfg)
    stats = corpus.feature_stats(corpus.split(split_seed)["train"])
    save_checkpoint(path, {
        "model_name": "unimodal", "model_config": dataclasses.asdict(cfg), "model_state": model.state_dict(),
        "train_config": {"split_seed": split_seed}, "features": {k: corpus.meta[k] for k in ("sample_rate", "hop")},
        "corpus": {"source": corpus.meta["source"], "cache_key": corpus.meta["cache_key"]},
        "feature_stats": dataclasses.asdict(stats)})
    return path


def test_evaluate_refuses_overlap_and_scores_by_noise(corpora, tmp_path, capsys, one_torch_thread):
    small, grown, _ = corpora
    ckpt = _checkpoint(small, tmp_path / "c.pt")
    rc = cli.main(["evaluate", "--checkpoint", str(ckpt), "--corpus", str(grown.path), "--split", "all",
                   "--out", str(tmp_path / "e1")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "--split all:" in err[-1] and "training sentences of the checkpoint" in err[-1]
    assert "--allow-overlap" in err[-1]
    rc = cli.main(["evaluate", "--checkpoint", str(ckpt), "--corpus", str(grown.path), "--split", "all",
                   "--allow-overlap", "--out", str(tmp_path / "e2")])
    assert rc == 0
    report = json.loads((tmp_path / "e2/metrics.json").read_text())
    assert report["training_sentences_in_split"]["all"] == len({grown.utterances[i].clean_id for i in grown.split(0)["train"]})
    # the grown corpus's test split holds none of the small corpus's training sentences: scored, with --by-noise
    rc = cli.main(["evaluate", "--checkpoint", str(ckpt), "--corpus", str(grown.path), "--split", "test", "train",
                   "--by-noise", "--by-snr", "--enhance", "3", "--out", str(tmp_path / "e3")])
    assert rc == 0
    report = json.loads((tmp_path / "e3/metrics.json").read_text())
    test = report["splits"]["test"]
    for group in ("by_category", "by_recording", "by_snr"):  # the rows partition the split
        rows = test[group]
        assert sum(r["frames"] for r in rows.values()) == test["frames"]
        assert sum(r["utterances"] for r in rows.values()) == len(grown.split(0)["test"])
        f1s = [r["f1"] for r in rows.values()]
        assert min(f1s) - 1e-12 <= test["f1"] <= max(f1s) + 1e-12
    assert set(test["by_category"]) <= {"cafe", "street", "hum"}
    assert set(report["generalisation"]) == {"test_seen_f1", "test_f1", "gap"}
    by_rec = report["enhancement_by_noise"]["by_recording"]  # STOI and SI-SDR per recording, spread over them
    assert len(by_rec) == min(3, len(test["by_recording"])) and all("unimodal" in v and "stoi" in v["unimodal"] for v in by_rec.values())


def test_corpus_accepts_the_prepare_out_folder(tmp_path, capsys):
    out = tmp_path / "prep"
    rc = cli.main(["prepare", "--data", "synthetic", "--n-utterances", "3", "--snrs", "0", "--cache", str(tmp_path / "c"),
                   "--out", str(out), "--workers", "1", "--probe-context", "0", "1"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["noise"]["splits"]) == {"train", "test"}
    assert [p["context"] for p in summary["vision_probes"]] == [0, 1] and summary["vision_probe"]["context"] == 0
    assert "lips t±1 (test F1)" in capsys.readouterr().out
    assert load_corpus(out).path == load_corpus(summary["cache"]).path
    with pytest.raises(MburstError, match="nor a `mburst prepare --out` folder"):
        load_corpus(tmp_path)


def test_noise_set_names_a_folder_of_the_shared_data(tmp_path, monkeypatch):
    for sub in ("grid/s1", "noise"):
        (tmp_path / sub).mkdir(parents=True)
    monkeypatch.setenv("MBURST_DATA", str(tmp_path))
    with pytest.raises(MburstError, match=r"no ambient/ folder under MBURST_DATA .*--noise-set noise picks another"):
        CorpusSpec(source="grid").resolved()
    assert CorpusSpec(source="grid", noise_set="noise").resolved().noise_root == (tmp_path / "noise").resolve()
    with pytest.raises(MburstError, match="--noise-set 'bus'"):
        CorpusSpec(source="grid", noise_set="bus").resolved()
