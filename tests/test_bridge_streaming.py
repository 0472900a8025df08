"""The bridge streamed in real time: options and their one-line errors, metrics.json, consecutive test frames."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurons.common import MburstError
from rate_bridge.burstprop.models import ModelConfig, build_model
from rate_bridge.convert import BridgeConfig, SpikingMBURST

TINY = dict(n_bins=6, context=2, lip_hw=(4, 6), channels=1, embed=4)


def _config(*argv):
    from experiments.cli import build_parser
    from experiments.commands.bridge import bridge_config_from_args

    return bridge_config_from_args(build_parser().parse_args(["bridge", "--checkpoint", "c.pt", *argv]))


def test_default_bridge_streams_in_real_time_and_settle_stays_reachable():
    from circuits.streaming import LATENCY_MS, TAU_SYN_MS

    cfg = _config()
    assert (cfg.mode, cfg.frame_period_ms, cfg.latency_ms, cfg.tau_syn) == ("stream", 40.0, LATENCY_MS,
                                                                            TAU_SYN_MS["stream"])
    # the whole circuit by default
    assert (cfg.stp, cfg.feedback, cfg.interneurons, cfg.dendrites, cfg.forward_pathway, cfg.teach) == (
        True, True, True, True, "spike", False) and (cfg.n, cfg.n_conv) == (16, 6)
    assert [cfg.cells_per_unit(k, out) for k, out in (("conv2d", False), ("dense", False), ("dense", True))] == [6, 16, 16]
    assert _config("--n-out", "128").cells_per_unit("dense", output=True) == 128  # the read-out alone grows
    fast = _config("--frame-period", "80", "--latency", "20", "--tau-syn", "15", "--teach")
    assert (fast.t_frame_ms, fast.readout_latency_ms, fast.tau_syn, fast.feedback, fast.teach) == (
        80.0, 20.0, 15.0, True, True)
    held = _config("--mode", "settle")  # issue 6's network: 100 ms settle + 250 ms count, tau_syn 80 ms
    assert (held.t_frame_ms, held.count_window_ms, held.readout_latency_ms, held.tau_syn) == (350.0, 250.0, 100.0, 80.0)
    assert _config("--mode", "settle", "--t-count", "200", "--reset").reset
    off = _config("--ablate", "feedback", "--ablate", "interneurons", "--ablate", "dendrites")
    assert not off.feedback and not off.interneurons and not off.dendrites and off.stp
    assert not _config("--no-feedback").feedback and not _config("--ablate", "stp").stp
    fo = _config("--ablate", "forward-only")
    assert (fo.stp, fo.feedback, fo.interneurons, fo.forward_pathway) == (False, False, False, "event")


@pytest.mark.parametrize("argv, match", [
    (["--frame-period", "10"], "frame_period_ms=10.0 ms is too short to count"),
    (["--mode", "settle", "--frame-period", "40"], "--frame-period belongs to --mode stream"),
    (["--mode", "settle", "--latency", "40"], "--latency belongs to --mode stream"),
    (["--t-count", "200"], "--t-count belongs to --mode settle"),
    (["--reset"], "--reset belongs to --mode settle"),
    (["--n-out", "0"], "n_out=0 must be an integer >= 1"),
    (["--teach", "--no-feedback"], "--teach compares burst probabilities that only the feedback carries"),
    (["--match-interneurons", "--ablate", "interneurons"], "--match-interneurons scales the weights onto PV/SOM"),
    (["--ablate", "pv"], "--ablate 'pv' is unknown; choose from stp, interneurons, feedback, dendrites, "
                         "forward-only"),
])
def test_bad_bridge_options_are_one_line_errors_naming_the_option(argv, match):
    with pytest.raises(MburstError, match=match) as err:
        _config(*argv)
    assert "\n" not in str(err.value)


def test_too_short_a_frame_period_for_the_ensembles_is_refused():
    model = build_model("mburst", ModelConfig(activation="calibrated-circuit", **TINY))
    with pytest.raises(MburstError, match="frame_period_ms=16 with n_conv=1 .* too short to count a spike"):
        SpikingMBURST(model, BridgeConfig(n=64, n_conv=1, frame_period_ms=16.0))
    SpikingMBURST(model, BridgeConfig(n=64, n_conv=8, frame_period_ms=16.0))  # more cells make it countable


def test_stream_takes_the_consecutive_test_frames_with_the_most_speech():
    from rate_bridge.equivalence import frames_with_speech

    ibm = np.zeros((10, 3))
    ibm[5:8, :2] = 1  # speech in frames 5-7
    np.testing.assert_array_equal(frames_with_speech(ibm, 4), [4, 5, 6, 7])  # the first stretch with the most
    np.testing.assert_array_equal(frames_with_speech(ibm, 10), np.arange(10))
    np.testing.assert_array_equal(frames_with_speech(np.zeros((5, 2)), 2), [0, 1])  # no speech: from the start
    with pytest.raises(MburstError, match="--frames 11: only 10 test frames"):
        frames_with_speech(ibm, 11)


# without feedback (18 s): slow, as the default suite neared its 15-minute budget; the feedback run covers every key
@pytest.mark.parametrize("feedback", [pytest.param(False, marks=pytest.mark.slow), True])
def test_streamed_tiny_network_writes_metrics(tmp_path, feedback):
    """A tiny converted MBURST streamed at 40 ms on the numpy target: metrics.json holds the stable keys."""
    from experiments.spiking.stage import write_bridge_report

    torch.manual_seed(0)
    model = build_model("mburst", ModelConfig(activation="calibrated-circuit", **TINY)).eval()
    a, v = torch.randn(6, 1, 2, 6), torch.randn(6, 1, 4, 6)  # 6 frames: abutting windows, one pair off by rounding
    ibm = (torch.rand(6, 6) > 0.5).float()
    cfg = BridgeConfig(n=3, n_conv=3, n_out=5, latency_ms=40.0, feedback=feedback, teach=feedback, target="numpy",
                       seed=0)
    s, res = write_bridge_report(tmp_path, model, a, v, ibm, cfg, progress=False)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (m["mode"], m["frame_period_ms"], m["latency_ms"], m["latency_frames"], m["frames"]) == (
        "stream", 40.0, 40.0, 1.0, 6)
    assert m["f1_spiking"] == pytest.approx(s.spike.f1) and m["f1_rate"] == pytest.approx(s.rate.f1)
    assert m["cells"] == sum(res.cells.values()) and m["wall_s"] >= res.wall_build_run_s > 0
    assert set(m["layers"]) == set(res.rate_hz)
    for name, row in m["layers"].items():
        fid = next(r for r in s.layers if r.layer == name)
        assert row["event_r"] == (None if np.isnan(fid.r) else pytest.approx(fid.r))
        assert ("burst_prob_r" in row) == ("burst_prob_r_ceiling" in row) == ("burst_prob_r_teach" in row) == feedback
    # streamed: 6 frames of 40 ms, the read-out 40 ms behind; every cell updated in every read-out window
    assert res.count_window_s == pytest.approx(0.04)
    assert res.cells["out"] == 5 * 6 and res.cells["audio_dense"] == 3 * 4  # n_out for the output, n for dense
    assert res.counts["out"].neuron_updates == 6 * (5 * 6 + 2 * (5 * 6 // 4)) * 400  # pyramidal, PV and SOM cells
    text = (tmp_path / "equivalence.md").read_text()
    assert "streamed: one frame every 40 ms" in text and "n_out=5 (output)" in text


@pytest.mark.xfail(strict=True, reason="issue 15's target is not met yet: the whole circuit at 40 ms gives output r "
                                      "0.25 on this network (its frames are independent and the 120 ms synaptic currents "
                                      "mix about three; compact GRID: 0.55 with 16 output cells, 0.74 with 128); see the "
                                      "README's spiking section")
def test_tiny_trained_network_streams_at_40_ms_through_the_whole_circuit(tiny_trained):
    """A tiny trained model, converted onto the whole circuit (STP, feedback, PV/SOM, excitable dendrites) and
    streamed at 40 ms per frame: the output ensembles' event rates follow the rate model's frame by frame."""
    from rate_bridge.equivalence import layer_fidelity

    model, a, v, _ = tiny_trained
    cfg = BridgeConfig(n=40, n_conv=10, seed=0, target="numpy")
    res = SpikingMBURST(model, cfg).run(a[:16], v[:16], progress=False)
    rows = {r.layer: r for r in layer_fidelity(res)}
    assert rows["out"].r >= 0.9, {k: round(r.r, 3) for k, r in rows.items()}
