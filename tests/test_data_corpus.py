"""The corpus on the synthetic default: cache, atomicity, splits, frame tensors, statistics, waveforms, probes."""
import json

import numpy as np
import pytest
import torch

from experiments.data import corpus as C
from experiments.data import features as F
from experiments.data import probes as P
from experiments.data.frames import Stats
from experiments.data.spec import CorpusSpec
from experiments.data.synthetic import NOISES, noise_bank, utterance
from neurons.common import MburstError


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    spec = CorpusSpec(source="synthetic", n_utterances=40, snrs_db=(-6.0, 6.0), seed=3)
    path = C.prepare_corpus(spec, cache_root=root, progress=False)
    return spec, root, path, C.load_corpus(path)


def test_synthetic_is_deterministic_per_seed():
    a1, l1 = utterance(5, 2)
    a2, l2 = utterance(5, 2)
    a3, _ = utterance(6, 2)
    assert np.array_equal(a1, a2) and np.array_equal(l1, l2)
    assert not np.allclose(a1, a3)
    assert a1.shape == (48_000,) and l1.shape == (75, 50, 92) and l1.dtype == np.uint8
    bank = noise_bank(0, seconds=2.0)
    assert list(bank) == list(NOISES) == ["babble", "modulated", "transients"]
    assert all(v.shape == (32_000,) and abs(np.sqrt(np.mean(v.astype(np.float64) ** 2)) - 0.05) < 1e-6 for v in bank.values())


def test_shapes_and_shared_lips(syn):
    _, _, _, corpus = syn
    assert len(corpus.cleans) == 40 and len(corpus) == 160  # 2 SNRs x (train noise, test noise)
    assert corpus.log_power.shape == (40 * 2 * 2 * 75, 500) and corpus.log_power.dtype == np.float32
    assert corpus.ibm.shape == corpus.log_power.shape and corpus.ibm.dtype == np.uint8
    assert corpus.lips.shape == (40 * 75, 50, 92)  # once per clean utterance, not per SNR
    by_clean = {}
    for u in corpus.utterances:
        by_clean.setdefault(u.clean_id, set()).add(u.lip_start)
    assert all(len(v) == 1 for v in by_clean.values())
    assert corpus.meta["win"] == 1244 and corpus.meta["hop"] == 640 and corpus.meta["n_bins"] == 500
    assert corpus.meta["snrs_db"] == [-6.0, 6.0] and corpus.meta["lc_db"] == 5.0 and corpus.meta["lip_shape"] == [50, 92]
    assert corpus.previews() == []  # source frames are stored for GRID videos only (tests/test_data_grid.py)


def test_waveforms_regenerate_features_and_snr(syn):
    _, _, _, corpus = syn
    for i in (0, 7, 51):
        u = corpus.utterances[i]
        clean, noise, noisy = corpus.waveforms(i)
        assert len(clean) == u.n_frames * F.HOP
        snr = 10 * np.log10(np.sum(clean ** 2) / np.sum(noise ** 2))
        assert abs(snr - u.snr_db) < 0.1
        rows = slice(u.frame_start, u.frame_start + u.n_frames)
        assert np.allclose(F.log_power(F.stft(noisy)), corpus.log_power[rows], atol=1e-3)
        ibm = F.ideal_binary_mask(F.stft(clean), F.stft(noise), corpus.meta["lc_db"])
        assert np.mean(ibm != corpus.ibm[rows]) < 1e-3  # ties at the LC boundary only


def test_split_disjoint_by_clean_utterance(syn):
    _, _, _, corpus = syn
    split = corpus.split(seed=1)
    assert len(split["all"]) == len(corpus)
    cleans = {k: {corpus.utterances[i].clean_id for i in split[k]} for k in ("train", "test", "proxy", "test_seen")}
    assert not (cleans["train"] & cleans["test"]) and not (cleans["train"] & cleans["proxy"]) and not (cleans["test"] & cleans["proxy"])
    assert cleans["test_seen"] == cleans["test"] and len(cleans["test"]) >= 1
    assert len(cleans["train"]) + len(cleans["test"]) + len(cleans["proxy"]) == 40
    assert abs(len(cleans["train"]) - 32) <= 8  # hashed: 80 % on average
    everything = np.concatenate([split[k] for k in ("train", "test", "proxy", "test_seen")])
    held = {i for i in range(len(corpus)) if corpus.utterances[i].noise_split == "test"
            and corpus.utterances[i].clean_id not in cleans["test"]}  # held-out noise of train/proxy sentences: unused
    assert sorted(everything.tolist() + sorted(held)) == list(range(len(corpus)))
    for k in ("train", "proxy", "test_seen"):  # every SNR copy goes with its sentence; train noise only
        assert len(split[k]) == 2 * len(cleans[k]) and {corpus.utterances[i].noise_split for i in split[k]} == {"train"}
    assert {corpus.utterances[i].noise_split for i in split["test"]} == {"test"}
    assert not np.array_equal(split["train"], corpus.split(seed=2)["train"])
    assert np.array_equal(split["train"], corpus.split(seed=1)["train"])
    with pytest.raises(MburstError, match="fractions"):
        corpus.split(0, (0.5, 0.5, 0.5))


def test_frames_context_visual_and_mask(syn):
    _, _, _, corpus = syn
    split = corpus.split(0)
    stats = corpus.feature_stats(split["train"])
    rows = np.concatenate([np.arange(corpus.utterances[i].frame_start, corpus.utterances[i].frame_start + 75) for i in split["train"]])
    assert np.allclose(stats.mean, corpus.log_power[rows].mean(0), atol=1e-3)
    assert np.allclose(stats.std, corpus.log_power[rows].std(0), rtol=1e-3)
    fs = corpus.frames(split["test"], stats)
    assert len(fs) == 75 * len(split["test"])
    u = corpus.utterances[split["test"][1]]  # frames 75..149 of the set belong to this utterance
    audio, visual, mask = fs.batch(np.array([75, 75 + 3, 75 + 20]))
    assert audio.shape == (3, 1, 8, 500) and visual.shape == (3, 1, 50, 92) and mask.shape == (3, 500)
    assert audio.dtype == visual.dtype == mask.dtype == torch.float32
    std = (np.asarray(corpus.log_power[u.frame_start:u.frame_start + 75]) - stats.mean) / stats.std
    assert torch.all(audio[0, 0, :7] == 0) and np.allclose(audio[0, 0, 7], std[0], atol=1e-5)
    assert torch.all(audio[1, 0, :4] == 0) and np.allclose(audio[1, 0, 4:], std[0:4], atol=1e-5)
    assert np.allclose(audio[2, 0], std[13:21], atol=1e-5)  # oldest first, no leak from the previous utterance
    lip = (np.asarray(corpus.lips[u.lip_start + 20], np.float32) - stats.lip_mean) / stats.lip_std
    assert np.allclose(visual[2, 0], lip, atol=1e-5)
    assert np.array_equal(mask[2].numpy(), corpus.ibm[u.frame_start + 20].astype(np.float32))
    seen = sum(b[0].shape[0] for b in fs.batches(64, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert seen == len(fs)


def test_lip_ablations_keep_audio_and_masks(syn):
    _, _, _, corpus = syn
    split = corpus.split(0)
    stats = corpus.feature_stats(split["train"])
    fs = corpus.frames(split["test"], stats)
    idx = np.arange(len(fs))
    audio, visual, mask = fs.batch(idx)
    shuffled = fs.with_lips("shuffled", seed=3).batch(idx)
    mean = fs.with_lips("mean").batch(idx)
    for ablated in (shuffled, mean):
        assert torch.equal(ablated[0], audio) and torch.equal(ablated[2], mask)
    # shuffled: the same lip images, most of them paired with another frame
    flat, sflat = visual.reshape(len(idx), -1), shuffled[1].reshape(len(idx), -1)
    assert torch.equal(torch.sort(flat.sum(1)).values, torch.sort(sflat.sum(1)).values)
    assert (flat != sflat).any(1).float().mean() > 0.9
    assert torch.equal(fs.with_lips("shuffled", seed=3).batch(idx)[1], shuffled[1])  # seeded
    assert torch.all(mean[1] == 0)  # the training-mean lips, standardised
    assert torch.equal(fs.batch(idx)[1], visual)  # the original is untouched
    with pytest.raises(MburstError, match="lip ablation must be one of shuffled, mean"):
        fs.with_lips("blank")


def test_band_pooling_of_features_and_mask(syn):
    _, _, _, corpus = syn
    split = corpus.split(0)
    stats = corpus.feature_stats(split["train"])
    full, pooled = corpus.frames(split["test"], stats), corpus.frames(split["test"], stats, n_bins=100)
    idx = np.array([75 + 20, 75 + 40])
    a_full, v_full, m_full = full.batch(idx)
    a_pool, v_pool, m_pool = pooled.batch(idx)
    assert a_pool.shape == (2, 1, 8, 100) and m_pool.shape == (2, 100) and torch.equal(v_pool, v_full)
    assert np.allclose(a_pool.numpy(), a_full.numpy().reshape(2, 1, 8, 100, 5).mean(-1), atol=1e-6)
    votes = m_full.numpy().reshape(2, 100, 5).sum(-1)
    assert np.array_equal(m_pool.numpy(), (votes >= 3).astype(np.float32))  # a band is positive with >= 3 of its 5 bins
    assert 0 < m_pool.sum() < m_pool.numel()
    assert np.array_equal(F.expand_bands(m_pool.numpy()), np.repeat(m_pool.numpy(), 5, axis=1))
    with pytest.raises(MburstError, match="n_bins 7: must divide the 500 feature bins"):
        corpus.frames(split["test"], stats, n_bins=7)


def test_cache_reuse_and_key(syn, monkeypatch):
    spec, root, path, _ = syn
    monkeypatch.setattr(C, "build_corpus", lambda *a, **k: pytest.fail("cache was rebuilt"))
    assert C.prepare_corpus(spec, cache_root=root, progress=False) == path
    assert CorpusSpec(source="synthetic", n_utterances=40, snrs_db=(-6.0, 6.0), seed=3, on_error="skip").cache_key() == spec.cache_key()
    assert CorpusSpec(source="synthetic", n_utterances=40, snrs_db=(-6.0, 6.0), seed=3, lc_db=0.0).cache_key() != spec.cache_key()


def test_noise_file_change_changes_key(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "n.wav", np.random.default_rng(0).standard_normal(16_000) * 0.1, 16_000)
    spec = CorpusSpec(source="synthetic", noise_root=tmp_path, n_utterances=2)
    key = spec.cache_key()
    sf.write(tmp_path / "n.wav", np.random.default_rng(0).standard_normal(17_000) * 0.1, 16_000)
    assert spec.cache_key() != key


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    spec = CorpusSpec(source="synthetic", n_utterances=6, snrs_db=(0.0,), workers=1)
    stale = tmp_path / ".building-stale-123"  # a crashed earlier run (kill -9) leaves only this
    stale.mkdir(parents=True)
    (stale / "log_power.npy").write_bytes(b"partial")
    calls = {"n": 0}
    real = F.ideal_binary_mask

    def interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(F, "ideal_binary_mask", interrupt)
    with pytest.raises(KeyboardInterrupt):
        C.prepare_corpus(spec, cache_root=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [stale.name]
    monkeypatch.setattr(F, "ideal_binary_mask", real)
    path = C.prepare_corpus(spec, cache_root=tmp_path, progress=False)
    assert C.load_corpus(path).log_power.shape == (6 * 2 * 75, 500)
    with pytest.raises(MburstError, match="not a prepared corpus"):
        C.load_corpus(stale)


def test_report_counts(syn):
    _, _, path, corpus = syn
    report = json.loads((path / "report.json").read_text())
    assert report["n_clean"] == 40 and report["n_utterances"] == 160 and report["n_frames"] == 12000
    assert report["n_skipped"] == 0 and report["noise_names"] == ["babble", "modulated", "transients"]


def test_vision_alone_beats_chance(syn):
    _, _, _, corpus = syn
    probe = P.vision_mask_probe(corpus, seed=0)
    # tested on held-out noise recordings, whose mask prevalence differs from training's: the shuffled-lips
    # probe (the same fit without the lip-mask pairing) is the chance level for what the lips carry
    assert probe["f1_vision"] > probe["f1_shuffled_lips"] + 0.05, probe
    assert probe["f1_vision"] > max(probe["f1_all_ones"], probe["prevalence"]), probe
    assert probe["f1_vision"] < 0.9, probe  # vision alone must not solve the audio task


def test_av_sync_finds_aligned_streams_and_a_known_shift(syn):
    """The synthetic mouth follows the speech envelope frame by frame: the profile peaks within one
    frame of lag 0; delaying the lips by 3 frames moves the peak by 3 frames (to -3: video behind audio)."""
    _, _, _, corpus = syn
    profile = P.av_sync_profile(corpus)
    assert abs(profile["best_lag"]) <= 1 and profile["best_r"] > 0.3, profile
    assert profile["n_utterances"] == 40
    pairs = P.av_sync_pairs(corpus)
    delayed = [(np.concatenate([np.repeat(lips[:1], 3, axis=0), lips[:-3]]), energy) for lips, energy in pairs]
    shifted = P.av_sync_lags(delayed)
    assert shifted["best_lag"] == profile["best_lag"] - 3, shifted
    lips, energy = pairs[0]
    with pytest.raises(MburstError, match="lip frames"):
        P.av_sync_lags([(lips[:-1], energy)])


def test_stats_validate_and_coerce_checkpoint_forms():
    stats = Stats(np.zeros(500), np.ones(500), 100, 50)
    assert stats.mean.dtype == np.float32 and stats.lip_mean == 100.0
    as_dict = {"mean": stats.mean, "std": stats.std, "lip_mean": 100.0, "lip_std": 50.0}
    for form in (stats, tuple(stats), as_dict):
        assert Stats.coerce(form).lip_std == 50.0 and np.array_equal(Stats.coerce(form).std, stats.std)
    np.testing.assert_array_equal(stats.lips(np.array([[150, 50]], np.uint8)), [[1.0, -1.0]])
    with pytest.raises(MburstError, match="std: must be positive in every bin"):
        Stats(np.zeros(500), np.zeros(500), 0.0, 1.0)
    with pytest.raises(MburstError, match="mean has 500 bins but std 499"):
        Stats(np.zeros(500), np.ones(499), 0.0, 1.0)
    with pytest.raises(MburstError, match="feature_stats: missing 'lip_std'"):
        Stats.coerce({"mean": 0, "std": 1, "lip_mean": 0})
    with pytest.raises(MburstError, match="expected 4 values"):
        Stats.coerce((np.zeros(500), np.ones(500)))
    with pytest.raises(MburstError, match="500 bins, but the features have 100"):
        stats.audio(np.zeros((3, 100), np.float32))


def test_vision_probe_context_recovers_delayed_lips(syn):
    """Lips delayed by 2 frames within each utterance: one frame of lips (context 0) then shows the mouth of
    80 ms earlier, and a probe that also sees 2 frames on each side gets the right one back."""
    import copy

    _, _, _, corpus = syn
    delayed = copy.copy(corpus)
    lips = np.asarray(corpus.lips).copy()
    for c in corpus.cleans:
        a, n = c["lip_start"], c["n_frames"]
        lips[a + 2:a + n] = np.asarray(corpus.lips[a:a + n - 2])
        lips[a:a + 2] = corpus.lips[a]
    delayed.lips = lips
    one, wide = P.vision_mask_probe(delayed, seed=0), P.vision_mask_probe(delayed, seed=0, context=2)
    assert wide["context"] == 2 and wide["n_train_frames"] == one["n_train_frames"]
    assert wide["f1_vision"] > one["f1_vision"] + 0.02, (one, wide)
    with pytest.raises(MburstError, match="context -1"):
        P.vision_mask_probe(corpus, context=-1)


def test_superseded_cache_folders_are_reported_and_pruned(tmp_path, capsys):
    """A folder of the same settings built from older input files is named on every run and pruned on request."""
    from experiments import cli
    from experiments.data.paths import superseded_corpora

    cache = tmp_path / "c"
    args = ["prepare", "--data", "synthetic", "--n-utterances", "3", "--snrs", "0", "--cache", str(cache), "--workers", "1"]
    assert cli.main(args + ["--out", str(tmp_path / "r1")]) == 0
    (path,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    meta = json.loads((path / "meta.json").read_text())
    for name, change in (("synthetic-older", {"cache_key": "0" * 64, "created": "2020"}), ("synthetic-other", {"lc_db": 0.0})):
        (cache / name).mkdir()
        (cache / name / "meta.json").write_text(json.dumps({**meta, **change}))
    (cache / ".building-x").mkdir()
    assert superseded_corpora(path) == [cache / "synthetic-older"]
    capsys.readouterr()
    assert cli.main(args + ["--out", str(tmp_path / "r2")]) == 0
    assert "1 older cache folder(s) of these settings and data folders" in capsys.readouterr().out
    assert (cache / "synthetic-older").is_dir()
    assert cli.main(args + ["--out", str(tmp_path / "r3"), "--prune-cache"]) == 0
    assert f"pruned older cache folder {cache / 'synthetic-older'}" in capsys.readouterr().out
    assert sorted(p.name for p in cache.iterdir()) == [".building-x", path.name, "synthetic-other"]
    assert json.loads((tmp_path / "r3/summary.json").read_text())["pruned_cache"] == [str(cache / "synthetic-older")]
