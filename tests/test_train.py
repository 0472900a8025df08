"""Training, evaluation and checkpoints of the rate models (issue 3)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.training.metrics import ActivityStats, MaskCounts, energy_auc, weighted_bce
from neurons.common import MburstError

TINY = ["--data", "synthetic", "--n-utterances", "12", "--channels", "4", "--embed", "16", "--batch-size", "32"]


def test_mask_counts_hand_example():
    prob = torch.tensor([[0.9, 0.2, 0.6, 0.1]])
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    counts = MaskCounts()
    counts.update(prob, target)
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (1, 1, 1, 1)
    assert counts.f1 == pytest.approx(0.5)
    assert counts.accuracy == pytest.approx(50.0)


def test_weighted_bce_hand_example():
    prob = torch.tensor([0.8, 0.4])
    target = torch.tensor([1.0, 0.0])
    expected = -(3.0 * np.log(0.8) + np.log(0.6)) / 2
    assert float(weighted_bce(prob, target, pos_weight=3.0)) == pytest.approx(expected, rel=1e-6)


def test_activity_and_auc():
    stats = ActivityStats()
    stats.update({"a": torch.tensor([0.0, 2.0]), "b": torch.tensor([1.0, 1.0, 0.0, 0.0])})
    summary = stats.summary()
    assert summary["active_fraction"] == {"a": 0.5, "b": 0.5, "overall": 0.5}
    assert summary["mean_event_rate"]["a"] == pytest.approx(1.0)
    assert summary["mean_event_rate"]["overall"] == pytest.approx(4.0 / 6)
    assert energy_auc([1.0, 0.5, 0.0]) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    # One thread: float reductions then run in one fixed order whatever the machine's load.
    env = dict(os.environ, MBURST_CACHE=str(tmp_path_factory.mktemp("cache")), PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _mburst(args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["model_state"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, cache_env):
    out = tmp_path_factory.mktemp("ref")
    done = _mburst(["train", "--model", "mburst", "--epochs", "3", *TINY, "--out", str(out)], cache_env)
    assert done.returncode == 0, done.stderr
    return out


def test_train_writes_history_and_metrics(reference_run):
    history = json.loads((reference_run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    metrics = json.loads((reference_run / "metrics.json").read_text())
    for split in ("train", "test"):
        assert 0.0 <= metrics["final"][split]["f1"] <= 1.0
        assert 0.0 <= metrics["final"][split]["active_fraction"]["overall"] <= 1.0
    assert "angles_deg" in history[-1]
    assert json.loads((reference_run / "config.json").read_text())["options"]["model"] == "mburst"


def test_killed_training_resumes_exactly(tmp_path, cache_env, reference_run):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "train", "--model", "mburst", "--epochs", "3",
                             *TINY, "--out", str(out)], env=cache_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    history = out / "history.json"
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(json.loads(history.read_text())) >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    finished = len(json.loads(history.read_text()))
    assert 1 <= finished < 3
    resumed = _mburst(["train", "--model", "mburst", "--epochs", "3", *TINY, "--resume", "--out", str(out)], cache_env)
    assert resumed.returncode == 0, resumed.stderr
    assert [h["epoch"] for h in json.loads(history.read_text())] == [1, 2, 3]
    ref, got = _weights(reference_run), _weights(out)
    for name in ref:
        assert torch.equal(ref[name], got[name]), name


def test_ctrl_c_saves_and_resumes(tmp_path, cache_env, reference_run):
    out = tmp_path / "interrupted"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "train", "--model", "mburst", "--epochs", "3",
                                 *TINY, "--out", str(out)], env=cache_env, stdout=subprocess.DEVNULL, stderr=err_file)
    deadline = time.time() + 300
    history = out / "history.json"
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(json.loads(history.read_text())) >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    err = log.read_text()
    if proc.returncode == 0:
        pytest.skip("training finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert (out / "checkpoint.pt").exists()
    resumed = _mburst(["train", "--model", "mburst", "--epochs", "3", *TINY, "--resume", "--out", str(out)], cache_env)
    assert resumed.returncode == 0, resumed.stderr
    ref, got = _weights(reference_run), _weights(out)
    for name in ref:
        assert torch.equal(ref[name], got[name]), name


def test_evaluate_scores_checkpoint(tmp_path, cache_env, reference_run):
    out = tmp_path / "eval"
    done = _mburst(["evaluate", "--checkpoint", str(reference_run / "checkpoint.pt"), *TINY[:4], "--by-snr",
                    "--out", str(out)], cache_env)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["splits"]) == {"train", "test", "proxy"}
    test = report["splits"]["test"]
    trained = json.loads((reference_run / "metrics.json").read_text())["final"]["test"]
    assert test["f1"] == pytest.approx(trained["f1"], abs=1e-9)
    for key in ("f1", "accuracy", "active_fraction", "mean_event_rate"):
        assert key in test
    # per SNR: the rows partition the split, and the pooled F1 (a mediant of theirs) lies between them
    rows = test["by_snr"]
    assert len(rows) >= 2 and sum(r["frames"] for r in rows.values()) == test["frames"]
    f1s = [r["f1"] for r in rows.values()]
    assert min(f1s) - 1e-12 <= test["f1"] <= max(f1s) + 1e-12


def test_evaluate_bad_inputs(tmp_path, cache_env, reference_run):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    done = _mburst(["evaluate", "--checkpoint", str(corrupt), *TINY[:4], "--out", str(tmp_path / "e1")], cache_env)
    assert done.returncode == 2 and "corrupt" in done.stderr and str(corrupt) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

    missing = _mburst(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), *TINY[:4], "--out", str(tmp_path / "e2")], cache_env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr

    state = torch.load(reference_run / "checkpoint.pt", map_location="cpu", weights_only=False)
    state["model_config"]["embed"] = 24  # weights no longer fit the declared shape
    wrong = tmp_path / "wrong.pt"
    torch.save(state, wrong)
    done = _mburst(["evaluate", "--checkpoint", str(wrong), *TINY[:4], "--out", str(tmp_path / "e3")], cache_env)
    assert done.returncode == 2 and "does not fit" in done.stderr

    state = torch.load(reference_run / "checkpoint.pt", map_location="cpu", weights_only=False)
    state["features"]["hop"] = 512
    other = tmp_path / "other.pt"
    torch.save(state, other)
    done = _mburst(["evaluate", "--checkpoint", str(other), *TINY[:4], "--out", str(tmp_path / "e4")], cache_env)
    assert done.returncode == 2 and "hop" in done.stderr


def test_nan_input_is_refused(reference_run):
    from experiments.training.checkpoints import load_checkpoint
    from experiments.training.train import evaluate

    model, state = load_checkpoint(reference_run / "checkpoint.pt")

    class NanFrames:
        def __len__(self):
            return 2

        def batch(self, idx):
            audio = torch.zeros(len(idx), 1, 8, 500)
            audio[0, 0, 0, 0] = float("nan")
            return audio, torch.zeros(len(idx), 1, 50, 92), torch.zeros(len(idx), 500)

    with pytest.raises(MburstError, match="NaN"):
        evaluate(model, NanFrames())


def test_evaluate_on_a_copied_corpus_folder(tmp_path, cache_env, reference_run):
    """--corpus DIR opens a prepared folder as it is (e.g. copied to another machine, without the clean audio)."""
    import shutil

    from experiments.data.corpus import load_corpus
    from neurons.common import MburstError

    prepared = [p.parent for p in Path(cache_env["MBURST_CACHE"]).glob("*/meta.json")]
    assert len(prepared) == 1
    copy = tmp_path / "copied"
    shutil.copytree(prepared[0], copy)
    (copy / "clean.npy").unlink()
    env = dict(cache_env, MBURST_CACHE=str(tmp_path / "empty_cache"))  # nothing to reuse: the folder must be used
    out = tmp_path / "eval"
    done = _mburst(["evaluate", "--checkpoint", str(reference_run / "checkpoint.pt"), "--corpus", str(copy),
                    "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    trained = json.loads((reference_run / "metrics.json").read_text())["final"]["test"]
    assert json.loads((out / "metrics.json").read_text())["splits"]["test"]["f1"] == pytest.approx(trained["f1"], abs=1e-9)
    assert not (tmp_path / "empty_cache").exists()
    with pytest.raises(MburstError, match="clean.npy"):
        load_corpus(copy).waveforms(0)


def test_beta_option_reaches_the_model():
    import argparse

    from experiments.options import add_model_arguments, model_config_from_args

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert model_config_from_args(parser.parse_args(["--beta", "0.1"])).burst_params().beta == 0.1
    assert model_config_from_args(parser.parse_args([])).beta == 1.0
    assert model_config_from_args(parser.parse_args([])).rescale_updates is True
    assert model_config_from_args(parser.parse_args(["--no-rescale-updates"])).rescale_updates is False


def test_resume_refuses_another_model_configuration(tmp_path, cache_env, reference_run):
    import shutil

    out = tmp_path / "other_beta"
    shutil.copytree(reference_run, out)
    done = _mburst(["train", "--model", "mburst", "--epochs", "4", *TINY, "--beta", "0.1", "--resume", "--out", str(out)],
                   cache_env)
    assert done.returncode == 2
    assert "another model configuration (beta=1.0)" in done.stderr and "Traceback" not in done.stderr


class _Masks:
    """A FrameSet stand-in: ``batch(idx)`` -> (audio, visual, mask) rows of a fixed mask."""

    def __init__(self, mask):
        self.mask = torch.as_tensor(mask, dtype=torch.float32)

    def __len__(self):
        return len(self.mask)

    def batch(self, idx):
        return None, None, self.mask[idx]


def test_positive_weight_rules_from_the_masks():
    from experiments.training.train import positive_weight

    mask = np.zeros((10, 20))
    mask[:2, :10] = 1  # 20 positives, 180 negatives: r = 9
    assert positive_weight(_Masks(mask), "ratio", chunk=3) == pytest.approx(9.0)
    assert positive_weight(_Masks(mask), "sqrt", chunk=3) == pytest.approx(3.0)
    with pytest.raises(MburstError, match="no positive unit"):
        positive_weight(_Masks(np.zeros((4, 5))), "sqrt")


def test_weighted_bce_minimiser_puts_the_half_threshold_at_posterior_one_over_one_plus_w():
    """For a unit that is positive with probability q, the weighted BCE is minimised at
    e = w q / (w q + 1 - q): e crosses 0.5 where q = 1 / (1 + w)."""
    w = 3.0
    for q in (0.1, 0.25, 0.4):
        logit = torch.zeros((), requires_grad=True)
        opt = torch.optim.LBFGS([logit], lr=1, max_iter=100)
        target = torch.tensor([1.0, 0.0])

        def closure():
            opt.zero_grad()
            prob = torch.sigmoid(logit).expand(2)
            loss = q * weighted_bce(prob[:1], target[:1], w) + (1 - q) * weighted_bce(prob[1:], target[1:], w)
            loss.backward()
            return loss

        opt.step(closure)
        e = float(torch.sigmoid(logit))
        assert e == pytest.approx(w * q / (w * q + 1 - q), abs=1e-4)
        assert (e > 0.5) == (q > 1 / (1 + w))


def test_pos_weight_option_and_its_resume_check(tmp_path, cache_env, reference_run):
    import argparse
    import shutil

    from experiments.options import add_train_arguments, train_config_from_args
    from experiments.training.config import TrainConfig

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    parser.add_argument("--model", default="mburst")
    parser.add_argument("--seed", type=int, default=0)
    assert train_config_from_args(parser.parse_args([])).pos_weight == "sqrt"
    assert train_config_from_args(parser.parse_args(["--pos-weight", "ratio"])).pos_weight == "ratio"
    with pytest.raises(MburstError, match="--pos-weight must be one of sqrt, ratio"):
        TrainConfig(pos_weight="half").validate()

    out = tmp_path / "other_weight"
    shutil.copytree(reference_run, out)
    done = _mburst(["train", "--model", "mburst", "--epochs", "4", *TINY, "--pos-weight", "ratio", "--resume",
                    "--out", str(out)], cache_env)
    assert done.returncode == 2
    assert "trained with --pos-weight sqrt" in done.stderr and "Traceback" not in done.stderr


def test_evaluate_ablates_the_lips(tmp_path, cache_env, reference_run):
    out = tmp_path / "ablate"
    done = _mburst(["evaluate", "--checkpoint", str(reference_run / "checkpoint.pt"), *TINY[:4], "--split", "test",
                    "--ablate-lips", "--out", str(out)], cache_env)
    assert done.returncode == 0, done.stderr
    test = json.loads((out / "metrics.json").read_text())["splits"]["test"]
    assert set(test["lips_ablated"]) == {"shuffled", "mean"}
    for row in test["lips_ablated"].values():
        assert 0.0 <= row["f1"] <= 1.0 and 0.0 <= row["accuracy"] <= 100.0
    assert "lips shuffled: F1" in done.stdout


def test_ablate_lips_refuses_a_model_without_vision(tmp_path, cache_env):
    from experiments.training.checkpoints import save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig, build_model

    path = tmp_path / "uni.pt"
    save_checkpoint(path, {"model_name": "unimodal", "model_config": ModelConfig(channels=2, embed=4).to_dict(),
                           "model_state": build_model("unimodal", ModelConfig(channels=2, embed=4)).state_dict()})
    done = _mburst(["evaluate", "--checkpoint", str(path), *TINY[:4], "--ablate-lips", "--out", str(tmp_path / "e")],
                   cache_env)
    assert done.returncode == 2 and "without a visual branch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_resume_refuses_a_checkpoint_from_before_update_rescaling(tmp_path, cache_env, reference_run):
    """A model config saved before ``rescale_updates`` existed was trained without it."""
    import shutil

    from experiments.training.checkpoints import read_checkpoint, save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig

    out = tmp_path / "legacy"
    shutil.copytree(reference_run, out)
    state = read_checkpoint(out / "checkpoint.pt")
    del state["model_config"]["rescale_updates"]
    assert ModelConfig.from_dict(state["model_config"]).rescale_updates is False
    save_checkpoint(out / "checkpoint.pt", state)
    done = _mburst(["train", "--model", "mburst", "--epochs", "4", *TINY, "--resume", "--out", str(out)], cache_env)
    assert done.returncode == 2
    assert "another model configuration (rescale_updates=False)" in done.stderr and "Traceback" not in done.stderr


def test_checkpoints_of_the_old_layout_still_load(tmp_path):
    """Checkpoints pickled Stats as experiments.corpus.Stats before the package layout changed; new ones store
    plain arrays."""
    import types

    from experiments.data.frames import Stats
    from experiments.training.checkpoints import FORMAT, read_checkpoint

    stats = Stats(np.zeros(3, np.float32), np.ones(3, np.float32), 0.5, 2.0)
    old = types.ModuleType("experiments.corpus")
    old.Stats = Stats
    real = Stats.__module__
    try:
        sys.modules["experiments.corpus"] = old
        Stats.__module__ = "experiments.corpus"
        torch.save({"format": FORMAT, "feature_stats": stats}, tmp_path / "old.pt")
    finally:
        Stats.__module__ = real
        del sys.modules["experiments.corpus"]
    assert b"experiments.corpus" in (tmp_path / "old.pt").read_bytes()
    loaded = read_checkpoint(tmp_path / "old.pt")["feature_stats"]
    assert isinstance(loaded, Stats) and loaded.lip_std == 2.0


def test_new_checkpoints_store_plain_statistics(reference_run):
    from experiments.training.checkpoints import read_checkpoint

    stats = read_checkpoint(reference_run / "checkpoint.pt")["feature_stats"]
    assert isinstance(stats, dict) and set(stats) == {"mean", "std", "lip_mean", "lip_std"}
