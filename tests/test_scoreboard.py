"""The N-DNS-style scoreboard: power proxy of the three rate models by hand, event-driven accumulates by hand,
SI-SNR by hand, the metricsboard's PDP convention, and the written tables."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rate_bridge import energy
from rate_bridge.burstprop.models import ModelConfig, build_model
from rate_bridge.ledger import LayerCounts, StepCounts
from rate_bridge.scoreboard import (PUBLISHED, ScoreRow, goal_lines, quality_from_rows, rate_row, scoreboard_table,
                                    spiking_row, write_scoreboard)

FPS = 16_000 / 640  # frames per second of audio: one frame per 640-sample hop


def _frames(model, n=1):
    cfg = model.config
    return torch.zeros(n, 1, cfg.context, cfg.n_bins), torch.zeros(n, 1, *cfg.lip_hw)


@pytest.mark.parametrize("name, macs", [
    # paper size by hand: audio conv1 8*500*32*9 = 1,152,000; conv2 8*500*32*32*9 = 36,864,000;
    # dense 32*8*500*256 = 32,768,000; visual conv1 25*46*32*9 = 331,200; conv2 13*23*32*32*9 = 2,755,584;
    # dense 32*13*23*256 = 2,449,408; out (256 or 512) * 500
    ("unimodal", 1_152_000 + 36_864_000 + 32_768_000 + 256 * 500),
    ("multimodal", 1_152_000 + 36_864_000 + 32_768_000 + 331_200 + 2_755_584 + 2_449_408 + 512 * 500),
    ("mburst", 1_152_000 + 36_864_000 + 32_768_000 + 331_200 + 2_755_584 + 2_449_408 + 512 * 500),
], ids=["unimodal", "multimodal", "mburst"])
def test_power_proxy_of_the_three_rate_models_matches_hand_count(name, macs, one_torch_thread):
    model = build_model(name, ModelConfig())
    audio, visual = _frames(model)
    row = rate_row(name, model, audio, visual, FPS, None, None, 98.875, 1.0, devices=("Loihi",))
    assert row.ops_per_s == macs * 25
    assert {"unimodal": 1772.8, "multimodal": 1914.4048, "mburst": 1914.4048}[name] == pytest.approx(row.ops_per_s / 1e6)
    assert row.j_per_s["45nm fp32 MAC"] == pytest.approx(macs * 4.6e-12 * 25)
    params = sum(p.numel() for n, p in model.named_parameters() if n.endswith(("weight", "bias")))
    assert row.params == params and row.size_kib == pytest.approx(params * 4 / 1024)
    assert row.pdp_ops == pytest.approx(macs * 25 * 99.875e-3)


def test_event_driven_accumulates_by_hand(one_torch_thread):
    """ReLU, zero biases, weights 0.1: one non-zero audio value in a corner, black lips."""
    cfg = ModelConfig(n_bins=10, context=4, lip_hw=(6, 8), channels=2, embed=3)
    model = build_model("multimodal", cfg)
    with torch.no_grad():
        for layer in model.burst_layers().values():
            layer.weight.fill_(0.1)
            layer.bias.zero_()
    audio, visual = _frames(model)
    audio[0, 0, 0, 0] = 1.0
    ops = energy.event_driven_ops(model, audio, visual)
    # conv1: the corner reaches 4 outputs x 2 channels; conv2: inputs at (0,0) (0,1) (1,0) (1,1) reach 4 + 6 + 6 + 9
    # outputs, x 2 input x 2 output channels; dense: 3x3 positions x 2 channels non-zero, x 3; visual: nothing;
    # out: 3 non-zero audio embeddings x 10
    assert ops == {"audio_conv1": 8, "audio_conv2": 100, "audio_dense": 54, "visual_conv1": 0, "visual_conv2": 0,
                   "visual_dense": 0, "out": 30, "total": 192}
    row = rate_row("m", model, audio, visual, FPS, None, None, 98.875, None)
    assert row.event_ops_per_s == (192 + energy.model_units(model)["total"]) * 25
    assert row.latency_ms is None and row.pdp_ops is None
    loihi = energy.get_device("Loihi")
    assert row.j_per_s["Loihi"] == pytest.approx((192 * 23.6e-12 + energy.model_units(model)["total"] * 81e-12) * 25)
    # dense inputs: every tap that is not padding
    mt = energy.memory_traffic(model)
    values = sum(int(np.prod(l["in"])) + int(np.prod(l["out"])) for l in model.describe()["layers"].values())
    assert mt["total"] == 4 * (energy.model_params(model)["total"] + values) and loihi.step_s == 1e-3


def test_si_snr_matches_the_ndns_definition_by_hand():
    from experiments.speech.metrics import si_sdr

    s = np.array([1.0, -1.0, 1.0, -1.0])
    e = 0.5 * np.array([1.0, 1.0, -1.0, -1.0])  # zero mean, orthogonal to s
    assert si_sdr(s, s + e) == pytest.approx(10 * math.log10(4 / 1))  # 6.0206 dB
    assert si_sdr(s, 3 * (s + e) + 2) == pytest.approx(6.0206, abs=1e-4)  # scale and offset invariant
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=400), rng.normal(size=400)
    xs, ys = x - x.mean(), y - y.mean()
    target = (ys @ xs) / (xs @ xs) * xs  # N-DNS README: s_target = <s', s> s / ||s||^2
    assert si_sdr(x, y) == pytest.approx(10 * math.log10((target @ target) / ((ys - target) @ (ys - target))))


def test_quality_pairs_utterances_and_skips_undefined_values():
    rows = [{"utt_index": 0, "system": "noisy", "si_sdr": 1.0, "stoi": 0.5, "pesq_wb": 1.5},
            {"utt_index": 1, "system": "noisy", "si_sdr": -3.0, "stoi": 0.4, "pesq_wb": 1.2},
            {"utt_index": 0, "system": "M", "si_sdr": 5.0, "stoi": 0.7, "pesq_wb": 2.0},
            {"utt_index": 1, "system": "M", "si_sdr": float("nan"), "stoi": 0.6, "pesq_wb": float("nan")}]
    q = quality_from_rows(rows, "M")
    assert q == {"si_snr_db": 5.0, "si_snri_db": 4.0, "stoi": pytest.approx(0.65), "pesq_wb": 2.0, "n": 2}


def test_pdp_follows_the_metricsboard():
    # metricsboard rows (track1_val_metricsboard.md): Clairaudience model_L 74.10 M-Ops/s, 8.04 ms -> 0.60 M-Ops;
    # NECOTIS PSNN-K3 56.00 M-Ops/s, 32.06 ms -> 1.80 M-Ops
    for ops, alg, comp, pdp in ((74.10e6, 8.0, 0.04, 0.60e6), (56.00e6, 32.0, 0.06, 1.80e6)):
        assert round(ScoreRow("x", "published", alg_latency_ms=alg, compute_ms=comp, ops_per_s=ops).pdp_ops, -4) == pdp
    sdnn = PUBLISHED[0]
    assert (sdnn.ops_per_s, sdnn.latency_ms) == (14.54e6, pytest.approx(32.030))


def test_spiking_row_and_written_scoreboard(tmp_path):
    counts = LayerCounts(spikes=100, syn_forward=4000, neuron_updates=20_000)
    counts.device[1e-3] = StepCounts(updates=2000, active=500, idle=1500)
    row = spiking_row("spiking mburst", counts, frames=2, frame_s=0.04, f1=0.5, alg_latency_ms=120.0, compute_ms=None)
    assert row.ops_per_s == (4000 + 20_000) / 0.08 and row.event_ops_per_s == (4000 + 2000) / 0.08
    assert row.j_per_s["Loihi"] == pytest.approx((4000 * 23.6 + 500 * 81 + 1500 * 52 + 100 * 3.5) * 1e-12 / 0.08)
    rate = ScoreRow("MBURST", "rate", j_per_s={"Loihi": row.j_per_s["Loihi"] / 20}, ops_per_s=1e9)
    assert "20.0x the rate MBURST" in goal_lines([rate, row]) and "not met" in goal_lines([rate, row])
    md = write_scoreboard(tmp_path, [rate, row], "notes here")
    assert "N-DNS baseline SDNN (published)" in md and "14.54" in md and "notes here" in md
    header, table = scoreboard_table([rate, row, *PUBLISHED], full=True)
    assert "J/s Loihi" in header and len(table) == 4
    csv = (tmp_path / "scoreboard.csv").read_text()
    assert csv.count("\n") >= 5 and "Microsoft NsNet2 (published)" in csv


def test_frontier_compares_mburst_and_multimodal_at_equal_f1(tmp_path):
    from rate_bridge.frontier import FrontierPoint, equal_f1_comparison, write_frontier

    def point(model, setting, f1, active, ops, j):
        return FrontierPoint(model, setting, "run0", f1, active, active / 2,
                             ScoreRow(model, "rate", ops_per_s=2 * ops, event_ops_per_s=ops, j_per_s={"Loihi": j}))

    pts = [point("mburst", "beta=0.1", 0.50, 0.2, 50.0, 2.0), point("multimodal", "", 0.51, 0.4, 100.0, 5.0),
           point("multimodal", "", 0.60, 0.1, 10.0, 1.0), point("mburst", "beta=1", 0.30, 0.3, 60.0, 3.0)]
    text = equal_f1_comparison(pts)
    assert "MBURST (beta=0.1) / Multimodal at equal F1 (+-0.02, 1 pair): active fraction x0.500, mean e x0.500, " \
           "event-driven ops x0.500, Loihi J/s x0.400." in text
    assert "MBURST (beta=1): no Multimodal point within 0.02 F1." in text
    md = write_frontier(tmp_path, pts + [pts[1]])  # a duplicate point counts once
    assert md.count("| multimodal |") == 2 and (tmp_path / "frontier.png").stat().st_size > 0


def test_energy_command_needs_a_checkpoint_or_a_frontier(tmp_path, capsys):
    from experiments import cli

    assert cli.main(["energy", "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.strip() == "mburst energy: error: --checkpoint is required (or --frontier DIR ...)"
    assert cli.main(["energy", "--frontier", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "--frontier: no checkpoint.pt with a metrics.json under" in capsys.readouterr().err


def test_spiking_row_says_when_updates_are_assumed_active():
    counts = LayerCounts(syn_forward=10, neuron_updates=100)
    counts.device[1e-3] = StepCounts(updates=10, active=10, idle=0, assumed_active=4)
    row = spiking_row("s", counts, frames=1, frame_s=0.04, f1=None, alg_latency_ms=None, compute_ms=None, note="n")
    assert row.note == ("n; 40% of the Loihi-step updates counted active because the ledger was not given those "
                        "cells' synaptic inputs (an upper bound)")


def test_energy_json_of_a_spiking_run_becomes_its_scoreboard_row(tmp_path):
    import json

    from experiments.commands.energy import spiking_rows
    from experiments.spiking.stage import write_energy_report

    tot = LayerCounts(spikes=50, syn_forward=1000, neuron_updates=8000)
    tot.device[1e-3] = StepCounts(updates=800, active=300, idle=500)
    rec = {"model": "spiking mburst", "frames": 2, "counts": tot, "layers": {"out": tot}, "f1": 0.5, "units": 10,
           "r0_hz": 1.0, "readout_latency_ms": 40.0, "wall_s": 3.0}
    write_energy_report(tmp_path, rec, {}, ["Loihi"])
    (row,) = spiking_rows(json.loads((tmp_path / "energy.json").read_text()))
    assert row.ops_per_s == 9000 / 0.08 and row.alg_latency_ms == pytest.approx(98.875 + 40.0)
    assert row.compute_ms == 1500.0 and row.f1 == 0.5
    assert row.j_per_s["Loihi"] == pytest.approx((1000 * 23.6 + 300 * 81 + 500 * 52 + 50 * 3.5) * 1e-12 / 0.08)
    assert spiking_rows(None) == []
