"""The spiking circuit on the energy-fidelity frontier: a bridge scan's settings priced per device from their ledger
totals (scaling.csv/.json), read back by ``mburst energy --frontier``, against a hand calculation."""
from __future__ import annotations

import csv
import json

import pytest

from neurons.common import MburstError
from rate_bridge.equivalence import ScalingPoint
from rate_bridge.frontier import FrontierPoint, scaling_points, write_frontier, write_scaling
from rate_bridge.ledger import LayerCounts, StepCounts
from rate_bridge.scoreboard import ScoreRow

FRAME_S = 0.04  # audio per frame (s): 2 frames = 0.08 s of audio


def _point(window_ms=40.0, ablated="", spikes=100, idle=2500):
    counts = LayerCounts(neurons=20, spikes=spikes, syn_forward=1000, syn_feedback=200, syn_interneuron=50,
                         neuron_updates=40_000)
    counts.device[1e-3] = StepCounts(updates=1500 + idle, active=1500, idle=idle)
    return ScalingPoint("T" if not ablated else "ablate", ablated, 16, 6, window_ms, 0.3, 0.4, 0.8, spikes / 2,
                        1250 / 2, 1.0, 2, counts.as_dict())


# Hand calculation from the device constants (Loihi: 23.6 pJ/synop, 81 pJ active and 52 pJ idle update at 1 ms,
# 3.5 pJ/spike; CPU: 8.6 nJ per synop and per update at the simulation step), per second of audio (0.08 s):
LOIHI = (1250 * 23.6e-12 + 1500 * 81e-12 + 2500 * 52e-12 + 100 * 3.5e-12) / 0.08  # 3.516875e-6 J/s
CPU = (1250 + 40_000) * 8.6e-9 / 0.08  # 4.434375e-3 J/s


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_scaling_tables_price_each_setting_per_device_by_hand(tmp_path):
    write_scaling(tmp_path, [_point(), _point(80.0, spikes=60, idle=6500)], FRAME_S, "mburst")
    rows = _rows(tmp_path / "scaling.csv")
    assert float(rows[0]["J/s Loihi"]) == pytest.approx(LOIHI, rel=1e-3)
    assert float(rows[0]["J/s CPU"]) == pytest.approx(CPU, rel=1e-3)
    assert float(rows[0]["J/s biology"]) == pytest.approx(100 * 7e8 * 0.9e-19 / 0.08, rel=1e-3)
    assert float(rows[0]["power proxy M-ops/s"]) == pytest.approx((1250 + 40_000) / 0.08 / 1e6, abs=1e-3)
    assert float(rows[0]["Loihi-step M-ops/s"]) == pytest.approx((1250 + 4000) / 0.08 / 1e6, abs=1e-3)
    # twice the frame period: 4,000 more idle Loihi updates, 40 fewer spikes, over the same 0.08 s of audio
    assert float(rows[1]["J/s Loihi"]) == pytest.approx(LOIHI + (4000 * 52e-12 - 40 * 3.5e-12) / 0.08, rel=1e-3)
    assert "counts" not in rows[0] and rows[0]["window_ms"] == "40.0"
    saved = json.loads((tmp_path / "scaling.json").read_text())
    assert saved["frame_s"] == FRAME_S and saved["points"][0]["counts"]["device"]["1 ms"]["idle"] == 2500
    assert (tmp_path / "scaling.png").stat().st_size > 0 and "J/s Loihi" in (tmp_path / "scaling.md").read_text()


def test_frontier_puts_the_circuit_beside_the_rate_models(tmp_path):
    write_scaling(tmp_path / "scan", [_point(), _point(ablated="stp")], FRAME_S, "mburst")
    spiking, skipped = scaling_points(tmp_path / "scan" / "scaling.json")
    assert skipped == 0 and [p.setting for p in spiking] == ["T=40 ms, n=16/6", "T=40 ms, n=16/6, no stp"]
    rate = FrontierPoint("multimodal", "c4/e32, l1=0.001", "run0", 0.5, 0.2, 0.1,
                         ScoreRow("multimodal", "rate", ops_per_s=2e6, event_ops_per_s=1e6,
                                  j_per_s={"45nm fp32 MAC": 1e-3, "Loihi": 1e-5}))
    md = write_frontier(tmp_path / "out", [rate, *spiking])
    rows = {(r["model"], r["setting"]): r for r in _rows(tmp_path / "out" / "frontier.csv")}
    spk = rows[("spiking mburst", "T=40 ms, n=16/6")]
    assert float(spk["J/s Loihi"]) == pytest.approx(LOIHI, rel=1e-3)
    assert spk["J/s 45nm fp32 MAC"] == "" and float(spk["spikes/frame"]) == 50.0 and float(spk["F1"]) == 0.3
    assert float(spk["rate F1, same frames"]) == 0.4  # the scanned frames' rate F1, beside the circuit's
    assert rows[("multimodal", "c4/e32, l1=0.001")]["rate F1, same frames"] == ""
    assert rows[("multimodal", "c4/e32, l1=0.001")]["J/s Loihi"] == "1.000e-05"
    assert "| spiking mburst |" in md and (tmp_path / "out" / "frontier.png").stat().st_size > 0


def test_scan_settings_without_ledger_totals_are_counted_and_skipped(tmp_path):
    old = {k: v for k, v in _point().__dict__.items() if k not in ("frames", "counts")}  # scans before the totals
    path = tmp_path / "scaling.json"
    path.write_text(json.dumps({"model": "mburst", "frame_s": FRAME_S, "points": [old]}))
    assert scaling_points(path) == ([], 1)
    path.write_text("{}")
    with pytest.raises(MburstError, match="scaling.json: not a bridge scan's scaling.json"):
        scaling_points(path)


def test_energy_frontier_command_reads_a_scan_without_rate_models(tmp_path, capsys):
    from experiments import cli

    write_scaling(tmp_path / "bridge", [_point()], FRAME_S, "mburst")
    assert cli.main(["energy", "--frontier", str(tmp_path / "bridge"), "--out", str(tmp_path / "f")]) == 0
    assert "frontier of 0 models and 1 circuit settings" in capsys.readouterr().out
    row = _rows(tmp_path / "f" / "frontier.csv")[0]
    assert row["model"] == "spiking mburst" and row["run"] == "bridge"
    assert float(row["J/s Loihi"]) == pytest.approx(LOIHI, rel=1e-3)


def test_scaling_study_records_each_settings_ledger_totals(monkeypatch):
    """The scan keeps what the frontier needs from each run: its frames and the sum of its per-layer counts."""
    from types import SimpleNamespace

    import rate_bridge.convert
    from rate_bridge import equivalence
    from rate_bridge.convert import BridgeConfig

    def layer(spikes, idle):
        lc = LayerCounts(neurons=10, spikes=spikes, syn_forward=5 * spikes, neuron_updates=1000)
        lc.device[1e-3] = StepCounts(updates=100, active=100 - idle, idle=idle)
        return lc

    class Net:  # stands in for the Brian2 circuit: its run's counts depend on the frame period
        def __init__(self, model, cfg):
            self.cfg = cfg

        def run(self, audio, visual, progress=True):
            return SimpleNamespace(counts={"a": layer(3, int(self.cfg.frame_period_ms)), "out": layer(4, 1)})

    monkeypatch.setattr(rate_bridge.convert, "SpikingMBURST", Net)
    monkeypatch.setattr(equivalence, "summarise", lambda run, ibm: SimpleNamespace(
        frames=3, spike=SimpleNamespace(f1=0.2), rate=SimpleNamespace(f1=0.3), r_out=0.5, spikes_per_frame=7 / 3,
        synops_per_frame=35 / 3))
    pts = equivalence.scaling_study(None, None, None, None, BridgeConfig(), ts_ms=(20.0, 40.0), progress=False)
    assert [p.frames for p in pts] == [3, 3] and [p.window_ms for p in pts] == [20.0, 40.0]
    totals = [LayerCounts.from_dict(p.counts) for p in pts]
    assert [(t.spikes, t.synops, t.neuron_updates) for t in totals] == [(7, 35, 2000)] * 2
    assert [t.at_step(1e-3).idle for t in totals] == [21, 41]
