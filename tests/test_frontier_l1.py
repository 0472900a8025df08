"""The activity (L1) penalty of the backprop models and the frontier's labels and equal-F1 pairs across its strength."""
from __future__ import annotations

import pytest
import torch

from experiments.training.config import TrainConfig
from experiments.training.metrics import ActivityStats
from experiments.training.train import HiddenOutputs, activity_penalty
from neurons.common import MburstError
from rate_bridge.burstprop.models import ModelConfig, build_model
from rate_bridge.scoreboard import ScoreRow

SMALL = dict(n_bins=100, channels=2, embed=8)


def test_activity_penalty_is_lambda_times_the_mean_hidden_event_rate_by_hand():
    a = torch.tensor([[0.0, 2.0], [1.0, 0.0]], requires_grad=True)
    b = torch.tensor([[3.0], [0.5]], requires_grad=True)
    pen = activity_penalty({"a": a, "b": b}, 0.3)
    assert float(pen.detach()) == pytest.approx(0.3 * (0 + 2 + 1 + 0 + 3 + 0.5) / 6)
    pen.backward()
    assert torch.allclose(a.grad, torch.tensor([[0.0, 0.05], [0.05, 0.0]]))  # lambda / 6 where e > 0
    assert torch.allclose(b.grad, torch.full((2, 1), 0.05))


def test_penalty_uses_the_forward_hidden_outputs_and_matches_the_recorded_mean_rate(one_torch_thread):
    torch.manual_seed(0)
    model = build_model("multimodal", ModelConfig(**SMALL))
    audio, visual = torch.randn(3, 1, model.config.context, 100), torch.randn(3, 1, *model.config.lip_hw)
    with HiddenOutputs(model) as hidden:
        model(audio, visual)
    recorded = model.hidden_activities()
    assert set(hidden.outputs) == set(recorded) and "out" not in hidden.outputs
    assert all(hidden.outputs[k].requires_grad and torch.equal(hidden.outputs[k].detach(), recorded[k])
               for k in recorded)
    stats = ActivityStats()
    stats.update(recorded)
    assert float(activity_penalty(hidden.outputs, 2.0).detach()) == pytest.approx(
        2.0 * stats.summary()["mean_event_rate"]["overall"], rel=1e-6)
    hidden.outputs.clear()
    model(audio, visual)  # hooks gone after the block
    assert hidden.outputs == {}
    with HiddenOutputs(model, enabled=False) as off:
        model(audio, visual)
    assert off.outputs == {}


@pytest.mark.parametrize("value, message", [
    (-1.0, "--activity-l1 must be a finite number >= 0, got -1.0"),
    (float("nan"), "--activity-l1 must be a finite number >= 0, got nan"),
])
def test_bad_strength_is_refused_in_one_line(value, message):
    with pytest.raises(MburstError, match="^" + message.replace("+", r"\+") + "$"):
        TrainConfig(model="multimodal", activity_l1=value).validate()


def test_train_command_refuses_a_negative_strength_and_mburst_in_one_line(tmp_path, capsys):
    from experiments import cli

    assert cli.main(["train", "--model", "multimodal", "--activity-l1", "-1", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mburst train: error: --activity-l1 must be a finite number >= 0, got -1.0"
    assert cli.main(["train", "--model", "mburst", "--activity-l1", "0.1", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("mburst train: error: --activity-l1 is for the backprop models")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from experiments.data.corpus import load_corpus, prepare_corpus
    from experiments.data.spec import CorpusSpec

    spec = CorpusSpec(source="synthetic", n_utterances=10, snrs_db=(0.0,), workers=1)
    return load_corpus(prepare_corpus(spec, cache_root=tmp_path_factory.mktemp("cache"), progress=False))


def test_penalty_lowers_the_hidden_event_rate_and_is_recorded(tiny_corpus, tmp_path, one_torch_thread):
    from experiments.training.checkpoints import read_checkpoint
    from experiments.training.train import train

    rates = {}
    for l1 in (0.0, 10.0):
        cfg = TrainConfig(epochs=1, batch_size=32, lr=1e-2, seed=0, activity_l1=l1)
        res = train(tiny_corpus, "multimodal", ModelConfig(**SMALL), cfg, tmp_path / str(l1), progress=False)
        rates[l1] = res.final["train"]["mean_event_rate"]["overall"]
        assert read_checkpoint(tmp_path / str(l1) / "checkpoint.pt")["train_config"]["activity_l1"] == l1
    assert rates[10.0] < 0.5 * rates[0.0], rates
    with pytest.raises(MburstError, match="was trained with --activity-l1 10; use another --out"):
        train(tiny_corpus, "multimodal", ModelConfig(**SMALL), TrainConfig(epochs=2), tmp_path / "10.0", resume=True,
              progress=False)


def test_frontier_labels_name_the_penalty_strength():
    from experiments.commands.energy import frontier_setting

    cfg = ModelConfig(**SMALL)
    assert frontier_setting("multimodal", cfg, {"activity_l1": 0.001}) == "c2/e8, l1=0.001"
    assert frontier_setting("multimodal", cfg, {"activity_l1": 0.0}) == "c2/e8"
    assert frontier_setting("unimodal", cfg, {}) == "c2/e8"  # checkpoints from before the option
    assert frontier_setting("mburst", cfg, {"activity_l1": 0.0}) == "c2/e8, beta=1, rescale on"


def test_equal_f1_pairs_are_reported_per_multimodal_strength():
    from rate_bridge.frontier import FrontierPoint, equal_f1_comparison

    def point(model, setting, f1, active, j, run="run0"):
        return FrontierPoint(model, setting, run, f1, active, active,
                             ScoreRow(model, "rate", event_ops_per_s=100 * j, j_per_s={"Loihi": j}))

    pts = [point("mburst", "beta=0.1", 0.50, 0.2, 2.0), point("mburst", "beta=0.1", 0.52, 0.2, 2.0, "run1"),
           point("multimodal", "l1=0", 0.51, 0.4, 4.0), point("multimodal", "l1=0.01", 0.49, 0.1, 1.0),
           point("multimodal", "l1=0.1", 0.30, 0.01, 0.1)]
    text = equal_f1_comparison(pts)
    lines = text.splitlines()
    # each Multimodal strength apart (never averaged across strengths); replicate MBURST runs averaged per pair
    assert ("- MBURST (beta=0.1) / Multimodal (l1=0) at equal F1 (+-0.02, 2 pairs): active fraction x0.500, "
            "mean e x0.500, event-driven ops x0.500, Loihi J/s x0.500.") in lines
    assert ("- MBURST (beta=0.1) / Multimodal (l1=0.01) at equal F1 (+-0.02, 1 pair): active fraction x2.000, "
            "mean e x2.000, event-driven ops x2.000, Loihi J/s x2.000.") in lines
    assert "l1=0.1" not in text and len(lines) == 2
