"""Ensemble layers built from a hand-made spec (no torch): synapses per pathway, drive -> event rate, bad specs."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from circuits.ensembles import EnsembleCells, EnsembleConfig, EnsembleLayer, run_ensembles  # noqa: E402
from neurons.common import MburstError  # noqa: E402

N_PER = 4
# quiet cells (no background): a deterministic, threshold-linear regime like the 'calibrated-quiet' fit
CELLS = EnsembleCells(e_ref_hz=10.0, i_max_pA=1500.0, i_soft_pA=60.0, i_dend_pA=100.0, offset_spread_pA=150.0,
                      quiet=True)
W = np.array([[2.0, 0.0, -1.0],
              [0.5, 1.5, 0.0]])  # dense layer: 2 units reading 3 input units; two zero weights


def _layers(drive=None, n_per: int = N_PER):
    drive = np.array([[1200.0, 200.0, 800.0], [200.0, 1200.0, 800.0]]) if drive is None else drive
    inp = EnsembleLayer("inp", "dense", (3,), n_per, np.eye(3), drive_pA=drive)
    hid = EnsembleLayer("hid", "dense", (2,), n_per, W, weight_pA=300.0, bias_pA=np.array([400.0, 400.0]),
                        sources=(("inp", 0),))
    return [inp, hid]


def _run(**kw):
    cfg = EnsembleConfig(mode="settle", t_settle_ms=100.0, t_count_ms=200.0, tau_syn_ms=10.0, target="numpy", **kw)
    return run_ensembles(_layers(), CELLS, cfg, progress=False)


@pytest.fixture(scope="module")
def full_run():
    return _run(feedback=True, interneurons=True, seed=3)


def test_synapses_per_pathway(full_run):
    syn = {}
    for s in full_run.synapses:
        syn.setdefault((s.pre, s.pathway, s.trigger), []).append(s)
    # forward: every cell of each pre unit onto the post unit's shared current, nonzero weights only (4 of 6),
    # on events, each standing for the N_PER cells of the post ensemble
    (fwd,) = syn[("inp", "forward", "event")]
    assert len(fwd.pre_index) == 4 * N_PER and fwd.copies == N_PER
    assert sorted(np.unique(fwd.pre_index // N_PER)) == [0, 1, 2]
    # feedback: one cell per unit pair, from the upper layer, AMPA for the 3 positive and GABA for the 1 negative weight
    fb = syn[("hid", "feedback", "spike")]
    assert sorted(len(s.pre_index) for s in fb) == [1, 3]
    assert all(np.all(s.pre_index % N_PER == 0) for s in fb)
    # PV and SOM of both layers, four projections each (pyr->PV, PV->pyr, pyr->SOM, SOM->pyr)
    names = [p.name for p in full_run.populations]
    assert names == ["inp", "pv_inp", "som_inp", "hid", "pv_hid", "som_hid"]
    assert [p.layer for p in full_run.populations] == ["inp"] * 3 + ["hid"] * 3
    assert {p.name: p.n for p in full_run.populations}["pv_hid"] == 2 * N_PER // 4
    inter = [k for k in syn if k[1] == "interneuron"]
    assert sorted(k[0] for k in inter) == sorted(["inp", "pv_inp", "som_inp", "hid", "pv_hid", "som_hid"])
    assert sum(len(syn[k]) for k in inter) == 8
    assert [p.pyramidal for p in full_run.populations] == [True, False, False] * 2


def test_drive_sets_event_rates_and_windows(full_run):
    r = full_run
    assert r.frames == 2 and r.window_s == pytest.approx(0.2) and r.dt_s == pytest.approx(1e-4)
    np.testing.assert_allclose(r.window_start_s, [0.1, 0.4])
    assert r.cells == {"inp": 3 * N_PER, "hid": 2 * N_PER}
    assert r.event_rate_hz["inp"].shape == (2, 3) and r.burst_prob["hid"].shape == (2, 2)
    e = r.event_rate_hz["inp"]
    # 1200 pA vs 200 pA: the strongly driven ensemble fires faster, in both frames (units 0 and 1 swap)
    assert e[0, 0] > e[0, 1] and e[1, 1] > e[1, 0], e
    # the hidden unit 0 reads +2 x unit 0 (frame 0 strong) and -1 x unit 2: its rate drops when unit 0 is weak
    h = r.event_rate_hz["hid"]
    assert h[0, 0] > h[1, 0], h


def test_without_feedback_and_interneurons_only_forward():
    r = _run()
    assert {s.pathway for s in r.synapses} == {"forward"}
    assert [p.name for p in r.populations] == ["inp", "hid"]


@pytest.mark.parametrize("bad, match", [
    (lambda ls: [ls[0], EnsembleLayer("hid", "lstm", (2,), N_PER, W, bias_pA=np.zeros(2), sources=(("inp", 0),))],
     "kind 'lstm'"),
    (lambda ls: [ls[1]], "not an earlier layer"),
    (lambda ls: [ls[0], EnsembleLayer("hid", "dense", (2,), N_PER, W, sources=(("inp", 0),))], "either drive_pA"),
    (lambda ls: [EnsembleLayer("inp", "dense", (3,), N_PER, np.eye(3), drive_pA=np.zeros((2, 4)))], r"\[frames, 3\]"),
    (lambda ls: [ls[0], EnsembleLayer("b", "dense", (3,), N_PER, np.eye(3), drive_pA=np.zeros((5, 3)))],
     "same number"),
    (lambda ls: [ls[0], EnsembleLayer("hid", "dense", (2,), 0, W, bias_pA=np.zeros(2), sources=(("inp", 0),))],
     "cells_per_unit >= 1"),
])
def test_bad_specs_are_refused_before_building(bad, match):
    with pytest.raises(MburstError, match=match):
        run_ensembles(bad(_layers()), CELLS, EnsembleConfig(target="numpy"), progress=False)


def test_bad_times_are_refused():
    with pytest.raises(MburstError, match="t_count_ms=10.0 ms is too short to count"):
        EnsembleConfig(mode="settle", t_count_ms=10.0).validate()
    with pytest.raises(MburstError, match="t_settle_ms=-1"):
        EnsembleConfig(mode="settle", t_settle_ms=-1.0).validate()
