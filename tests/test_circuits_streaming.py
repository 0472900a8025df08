"""Streamed ensemble layers (circuits.streaming): schedules, a small stream on the numpy target, the wiring table,
ablations and bad settings."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from circuits.ensembles import EnsembleCells, EnsembleConfig, EnsembleLayer, ablate, run_ensembles  # noqa: E402
from circuits.streaming import frame_schedule, layer_depths  # noqa: E402
from neurons.common import MburstError  # noqa: E402

N_PER = 4
CELLS = EnsembleCells(e_ref_hz=10.0, i_max_pA=1500.0, i_soft_pA=60.0, i_dend_pA=100.0, offset_spread_pA=150.0,
                      quiet=True)


def _chain(frames: int = 2, n_per: int = N_PER):
    """inp (3 units) -> hid (2 units) -> top (1 unit): depths 1, 2, 3; input units 0 and 1 swap every frame."""
    drive = np.tile([[1200.0, 200.0, 800.0], [200.0, 1200.0, 800.0]], (frames // 2, 1))
    inp = EnsembleLayer("inp", "dense", (3,), n_per, np.eye(3), drive_pA=drive)
    hid = EnsembleLayer("hid", "dense", (2,), n_per, np.array([[2.0, 0.0, -1.0], [0.0, 2.0, -1.0]]), weight_pA=300.0,
                        bias_pA=np.array([500.0, 500.0]), sources=(("inp", 0),))
    top = EnsembleLayer("top", "dense", (1,), n_per, np.array([[1.0, -1.0]]), weight_pA=300.0,
                        bias_pA=np.array([600.0]), sources=(("hid", 0),))
    return [inp, hid, top]


def test_stream_schedule_reads_each_layer_after_its_share_of_the_latency():
    layers = _chain(4)
    assert layer_depths(layers) == {"inp": 1, "hid": 2, "top": 3}
    sch = frame_schedule(EnsembleConfig(frame_period_ms=40.0, latency_ms=60.0).validate(), layers, 4)
    assert sch.frame_ms == sch.window_ms == 40.0 and sch.hold_last
    assert sch.delay_ms == pytest.approx({"inp": 20.0, "hid": 40.0, "top": 60.0})
    assert sch.duration_ms == pytest.approx(4 * 40.0 + 60.0)  # the last output window ends there
    np.testing.assert_allclose(sch.starts_s(4), [0.06, 0.10, 0.14, 0.18])
    np.testing.assert_allclose(sch.starts_s(4, "inp"), [0.02, 0.06, 0.10, 0.14])
    # settle: every layer counted in the last t_count of its held frame; inputs fall to zero after the last frame
    st = frame_schedule(EnsembleConfig(mode="settle", t_settle_ms=100.0, t_count_ms=250.0).validate(), layers, 4)
    assert st.frame_ms == 350.0 and st.window_ms == 250.0 and not st.hold_last and st.duration_ms == 1400.0
    assert set(st.delay_ms.values()) == {100.0}
    np.testing.assert_allclose(st.starts_s(4, "inp"), [0.1, 0.45, 0.8, 1.15])


def test_config_defaults_and_resolved_time_constants():
    from circuits.streaming import FRAME_PERIOD_MS, LATENCY_MS, TAU_SYN_MS

    cfg = EnsembleConfig().validate()
    assert cfg.mode == "stream" and cfg.t_frame_ms == cfg.count_window_ms == FRAME_PERIOD_MS == 40.0
    assert cfg.readout_latency_ms == LATENCY_MS and cfg.tau_syn == TAU_SYN_MS["stream"]
    held = EnsembleConfig(mode="settle").validate()
    assert held.t_frame_ms == 350.0 and held.readout_latency_ms == 100.0 and held.tau_syn == TAU_SYN_MS["settle"] == 80
    assert EnsembleConfig(tau_syn_ms=5.0).tau_syn == 5.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(frame_period_ms=10.0), "frame_period_ms=10.0 ms is too short to count"),
    (dict(mode="batch"), "mode='batch' is unknown"),
    (dict(reset=True), "reset belongs to mode 'settle'"),
    (dict(latency_ms=-5.0), "latency_ms >= 0"),
    (dict(tau_syn_ms=0.0), "tau_syn_ms=0.0 must be > 0"),
])
def test_bad_stream_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(MburstError, match=match) as err:
        EnsembleConfig(**kwargs).validate()
    assert "\n" not in str(err.value)


def test_ablations_switch_parts_off_or_are_refused_by_name():
    full = EnsembleConfig(forward_stp=True, feedback=True, interneurons=True)
    assert not ablate(full, ["feedback"]).feedback and ablate(full, ["feedback"]).interneurons
    both = ablate(full, ["feedback", "interneurons"])
    assert not both.feedback and not both.interneurons and both.forward_stp and ablate(full, []) == full
    assert not ablate(full, ["stp"]).forward_stp and ablate(full, ["stp"]).feedback
    with pytest.raises(MburstError, match="--ablate dendrites: not yet"):
        ablate(full, ["dendrites"])
    with pytest.raises(MburstError, match="--ablate 'som' is unknown; choose from stp, interneurons, feedback"):
        ablate(full, ["som"])


def test_wiring_table_is_the_one_source_of_the_microcircuits():
    from circuits.microcircuit import MicrocircuitConfig
    from circuits.wiring import WIRING, stp_of
    from neurons.params import STD, STF

    cfg = MicrocircuitConfig()
    for key, field in (("ff_soma", "w_ff_soma"), ("ff_pv", "w_ff_pv"), ("pv_soma", "w_pv_soma"),
                       ("fb_som", "w_fb_som"), ("som_dend", "w_som_dend"), ("within_dend", "w_within_dend")):
        assert getattr(cfg, field) == WIRING[key].weight
    assert EnsembleConfig().fb_gain == WIRING["fb_dend"].weight == 0.37 and cfg.w_fb_dend == 0.45  # stated deviation
    assert stp_of(WIRING["ff_soma"]) is STD and stp_of(WIRING["fb_dend"]) is STF and stp_of(WIRING["pv_soma"]) is None
    assert stp_of(WIRING["ff_pv"], swapped=True) is STF and stp_of(WIRING["fb_som"], swapped=True) is STD
    assert {(w.pre, w.post) for w in WIRING.values() if w.receptor == "gaba"} == {
        ("pv", "upper"), ("som", "lower"), ("layer", "layer")}


@pytest.fixture(scope="module")
def stream():
    """8 frames streamed at 40 ms, read out 15 ms after each frame's onset (input 5 ms, hidden 10 ms)."""
    cfg = EnsembleConfig(frame_period_ms=40.0, latency_ms=15.0, tau_syn_ms=10.0, target="numpy", seed=1)
    return run_ensembles(_chain(8, n_per=8), CELLS, cfg, progress=False)


def test_stream_runs_frames_back_to_back_and_reads_them_after_the_latency(stream):
    r = stream
    assert r.frames == 8 and r.frame_s == pytest.approx(0.04) and r.window_s == pytest.approx(0.04)
    assert r.latency_s == pytest.approx(0.015)
    np.testing.assert_allclose(r.window_start_s, 0.015 + 0.04 * np.arange(8))
    np.testing.assert_allclose(r.layer_window_start_s["hid"], 0.01 + 0.04 * np.arange(8))
    e, h = r.event_rate_hz["inp"], r.event_rate_hz["hid"]
    # a 40 ms frame holds about one spike per cell (quiet cells fire at <= 45 Hz): the ensembles follow the swap
    # frame by frame on average, the input in most frames
    assert e[0::2, 0].mean() > e[1::2, 0].mean() and e[1::2, 1].mean() > e[0::2, 1].mean(), e
    assert np.mean(np.r_[e[0::2, 0] > e[0::2, 1], e[1::2, 1] > e[1::2, 0]]) >= 0.75, e
    # hidden unit 0 reads input unit 0 (+2), unit 1 reads input unit 1: they alternate with the frames
    assert h[0::2, 0].mean() > h[1::2, 0].mean() and h[1::2, 1].mean() > h[0::2, 1].mean(), h


def test_depressing_forward_synapses_follow_tsodyks_markram_on_events():
    """One regularly firing cell onto a unit's shared current (no decay): with STP each event adds q u x / U,
    with u, x from the Tsodyks-Markram recursion over the actual event times; without, q per event."""
    from brian2 import EventMonitor, Network, StateMonitor, defaultclock, ms, pA

    from circuits.ensemble_parts import forward_current, forward_synapses
    from neurons.device import use_target
    from neurons.params import STD
    from neurons.pyramidal import pyramidal_group

    use_target("numpy")
    defaultclock.dt = 0.1 * ms
    q = 10.0
    totals = {}
    for stp in (False, True):
        pre = pyramidal_group(1, name=f"pre_{int(stp)}")
        pre.I_ext_s = 900 * pA
        cur = forward_current(f"u{int(stp)}", 1, stp, {"tau_syn": 1e9 * ms}, defaultclock.dt)
        (syn, cells), *more = forward_synapses(pre, cur, np.array([0]), np.array([0]), np.array([q]), stp, f"f{int(stp)}")
        assert more == [] and list(cells) == [0] and ("eff" in syn.variables) == stp
        ev = EventMonitor(pre, "event", name=f"ev_{int(stp)}")
        mon = StateMonitor(cur, "I_fwd", record=0, name=f"i_{int(stp)}")
        Network(pre, cur, syn, ev, mon).run(300 * ms)
        totals[stp] = (float(mon.I_fwd[0][-1] / pA), np.asarray(ev.t / ms))
    (plain, t_plain), (dep, t_ev) = totals[False], totals[True]
    assert len(t_ev) >= 5 and plain == pytest.approx(q * len(t_plain))
    x, u, last, expected = 1.0, float(STD.U), None, 0.0
    tau_d, tau_f, big_u, f = float(STD.tau_D / ms), float(STD.tau_F / ms), float(STD.U), float(STD.f)
    for t in t_ev:
        if last is not None:
            x = 1 - (1 - x) * np.exp(-(t - last) / tau_d)
            u = big_u + (u - big_u) * np.exp(-(t - last) / tau_f)
        expected += q * u * x / big_u
        x, u, last = x - u * x, u + f * (1 - u), t
    assert dep == pytest.approx(expected, rel=1e-6)
    assert dep < plain * len(t_ev) / len(t_plain)  # closely spaced events are depressed
