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


def test_wiring_table_is_the_one_source_of_the_microcircuits():
    from circuits.microcircuit import MicrocircuitConfig
    from circuits.wiring import WIRING, stp_of
    from neurons.params import STD, STF

    cfg = MicrocircuitConfig()
    for key, field in (("ff_soma", "w_ff_soma"), ("ff_pv", "w_ff_pv"), ("pv_soma", "w_pv_soma"),
                       ("fb_som", "w_fb_som"), ("som_dend", "w_som_dend"), ("within_dend", "w_within_dend")):
        assert getattr(cfg, field) == WIRING[key].weight
    assert WIRING["fb_dend"].weight == 0.37 and cfg.w_fb_dend == 0.45  # stated deviation
    assert stp_of(WIRING["ff_soma"]) is STD and stp_of(WIRING["fb_dend"]) is STF and stp_of(WIRING["pv_soma"]) is None
    assert stp_of(WIRING["ff_pv"], swapped=True) is STF and stp_of(WIRING["fb_som"], swapped=True) is STD
    assert {(w.pre, w.post) for w in WIRING.values() if w.receptor == "gaba"} == {
        ("pv", "upper"), ("som", "lower"), ("layer", "layer")}


@pytest.fixture(scope="module")
def stream():
    """8 frames streamed at 40 ms, read out 15 ms after each frame's onset (input 5 ms, hidden 10 ms); the
    forward-only network of quiet cells (the streaming mechanics, without the circuit's noise)."""
    cfg = EnsembleConfig(frame_period_ms=40.0, latency_ms=15.0, tau_syn_ms=10.0, target="numpy", seed=1)
    return run_ensembles(_chain(8, n_per=8), CELLS, ablate(cfg, ["forward-only"]), progress=False)


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


@pytest.mark.parametrize("kind", ["static", "STD", "STF"])
def test_shared_synapses_follow_tsodyks_markram(kind):
    """One regularly bursting cell onto two units' shared currents (no decay), one synapse group with signed weights
    +q and -q: each transmitted spike adds +-q u x / norm, with u, x from the Tsodyks-Markram recursion over the
    actual spike times (static: q per spike)."""
    from brian2 import Network, SpikeMonitor, StateMonitor, defaultclock, ms, pA

    from circuits.shared_current import burst_efficacy, shared_current, shared_synapses
    from neurons.device import use_target
    from neurons.params import STD, STF
    from neurons.pyramidal import pyramidal_group

    use_target("numpy")
    defaultclock.dt = 0.1 * ms
    stp = {"static": None, "STD": STD, "STF": STF}[kind]
    norm = {"static": 1.0, "STD": float(STD.U), "STF": burst_efficacy(STF, 6.0)}[kind]
    q = 10.0
    pre = pyramidal_group(1, name=f"pre_{kind}")
    pre.I_ext_s, pre.I_ext_d = 600 * pA, 700 * pA  # bursts
    cur = shared_current(f"u_{kind}", 2, "tau", {"tau": 1e9 * ms})
    syn = shared_synapses(pre, cur, np.array([0, 0]), np.array([0, 1]), np.array([q, -q]), stp, norm, "spike",
                          f"s_{kind}")
    assert len(syn) == 2 and ("eff" in syn.variables) == (stp is not None)
    assert shared_synapses(pre, cur, np.array([], int), np.array([], int), np.array([]), stp, norm, "spike", "x") is None
    spk = SpikeMonitor(pre, name=f"sp_{kind}")
    mon = StateMonitor(cur, "I", record=[0, 1], name=f"i_{kind}")
    Network(pre, cur, syn, spk, mon).run(300 * ms)
    got, t_sp = np.asarray(mon.I[:, -1] / pA), np.asarray(spk.t / ms)
    assert len(t_sp) >= 5 and np.min(np.diff(t_sp)) < 16  # it bursts
    if stp is None:
        np.testing.assert_allclose(got, [q * len(t_sp), -q * len(t_sp)], rtol=1e-6)
        return
    x, u, last, expected = 1.0, float(stp.U), None, 0.0
    tau_d, tau_f, big_u, f = float(stp.tau_D / ms), float(stp.tau_F / ms), float(stp.U), float(stp.f)
    for t in t_sp:
        if last is not None:
            x = 1 - (1 - x) * np.exp(-(t - last) / tau_d)
            u = big_u + (u - big_u) * np.exp(-(t - last) / tau_f)
        expected += q * u * x / norm
        x, u, last = x - u * x, u + f * (1 - u), t
    np.testing.assert_allclose(got, [expected, -expected], rtol=1e-6)


def test_a_burst_passes_far_more_through_facilitating_than_depressing_synapses():
    """STD transmits about one q per event, STF about one q per burst and little for a lone spike (Payeur Fig. 3)."""
    from circuits.shared_current import burst_efficacy
    from neurons.params import STD, STF
    from neurons.stp import tm_efficacies

    lone_std, burst_std = 1.0, float(np.sum(tm_efficacies(STD, 6e-3, 2)) / float(STD.U))
    lone_stf = float(STF.U) / burst_efficacy(STF, 6.0)
    assert burst_std < 1.4 * lone_std  # a two-spike burst is about one event forward (1.34 q)
    assert lone_stf < 0.2  # a lone spike is a small fraction of a burst backward (0.15 q)
