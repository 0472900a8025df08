"""Learning in spikes (mburst learn): the burst-dependent rule on the circuit's shared weights, beside burstprop."""
from __future__ import annotations

import numpy as np
import pytest

from neurons.bursts import Detection
from neurons.common import MburstError


def _detection(event_i, event_t, burst_i=(), burst_t=(), burst_onset_t=None) -> Detection:
    """Events and bursts as the rule reads them (sizes 1; onsets default to the bursts' own times)."""
    onset = burst_t if burst_onset_t is None else burst_onset_t
    return Detection(np.asarray(event_i, np.int64), np.asarray(event_t, float), np.ones(len(event_i), np.int64),
                     np.asarray(burst_i, np.int64),
                     np.asarray(burst_t, float), np.asarray(onset, float))


def _monitored(monitors) -> Detection:
    from brian2 import second

    ev, bu = monitors
    return _detection(ev.i[:], ev.t[:] / second, bu.i[:], bu.t[:] / second)


def test_unit_level_rule_is_the_brian2_synapses_rule_on_every_cell_pair():
    """Same event and burst trains in: the offline ensemble rule gives the mean over cell pairs of the Brian2 plastic
    synapses' weight changes (circuits.plasticity), gate, moving averages and same-step ordering included."""
    from brian2 import EventMonitor, Hz, Network, TimedArray, defaultclock, ms, second
    from brian2 import seed as brian_seed

    from circuits.burst_sources import event_source_group
    from circuits.ensemble_plasticity import unit_weight_change
    from circuits.plasticity import BurstPlasticityParams, burst_plastic_synapses
    from neurons.device import use_target

    use_target("numpy")
    defaultclock.dt = 0.1 * ms
    brian_seed(3)
    n_pre, u_pre, n_post, u_post = 3, 2, 3, 2
    pre = event_source_group(n_pre * u_pre, rate=40 * Hz, p_burst=0.3, name="learn_pre")
    post = event_source_group(n_post * u_post, rate=30 * Hz, p_burst=0.0, name="learn_post")
    post.p_burst = np.repeat([0.1, 0.7], n_post)
    gate_s, run_s = 0.2, 0.6
    params = BurstPlasticityParams(eta=1e-2, w_min=-1e9, w_max=1e9, tau_avg=0.3 * second, e0=20 * Hz, p0=0.3)
    ii, jj = np.meshgrid(np.arange(len(pre)), np.arange(len(post)), indexing="ij")
    syn = burst_plastic_synapses(pre, post, params, i=ii.ravel(), j=jj.ravel(), w_init=0.0, name="learn_syn",
                                 gate=TimedArray(np.array([0.0, 1.0]), dt=gate_s * second))
    mons = [EventMonitor(g, e) for g in (pre, post) for e in ("event", "burst")]
    Network(pre, post, syn, *mons).run(run_s * second)
    dw_pairs = np.asarray(syn.w[:]).reshape(u_pre, n_pre, u_post, n_post).mean((1, 3)).T  # [post unit, pre unit]
    up = unit_weight_change(_monitored(mons[:2]), n_pre, u_pre, _monitored(mons[2:]), n_post, u_post, params, run_s,
                            learn_from_s=gate_s, dt_s=1e-4)
    assert np.abs(dw_pairs).max() > 1e-3  # the synapses did learn
    np.testing.assert_allclose(up.dw, dw_pairs, rtol=1e-8, atol=1e-12)
    assert dw_pairs[1].mean() > dw_pairs[0].mean()  # the bursty post unit potentiates
    post_ev = _monitored(mons[2:])
    assert up.events == int(np.sum(post_ev.event_t >= gate_s)) and up.bursts == int(np.sum(post_ev.burst_t >= gate_s))
    assert up.pre_events == len(mons[0].t)


def test_rule_averages_and_pbar_by_hand():
    """One post cell: a burst raises Pbar for the next event; the averages decay from their start; the trace of a
    pre event in the same step as a post burst counts (pre before post, as in Brian2)."""
    from brian2 import Hz, ms, second

    from circuits.ensemble_plasticity import RuleAverages, unit_weight_change
    from circuits.plasticity import BurstPlasticityParams

    p = BurstPlasticityParams(eta=1.0, tau_pre=100 * ms, tau_avg=1 * second, e0=4 * Hz, p0=0.25)
    pre = _detection([0], [0.1])
    post = _detection([0, 0], [0.0, 0.2], [0], [0.1])  # event at 0, burst at 0.1 (same step as the pre event), event 0.2
    up = unit_weight_change(pre, 1, 1, post, 1, 1, p, end_s=0.5, dt_s=1e-4)
    e_at = lambda t: (4 + 1) * np.exp(-t)  # Ebar: 4 Hz at 0, +1/tau_avg by the event at 0
    b_at = lambda t: 1.0 * np.exp(-t) + np.exp(-(t - 0.1))  # Bbar: 1 Hz at 0, +1 by the burst at 0.1
    pbar_02 = b_at(0.2) / (e_at(0.2) + 1e-9)
    expected = 1.0 - pbar_02 * np.exp(-0.1 / 0.1)  # burst at 0.1 sees trace 1; event at 0.2 sees exp(-1)
    assert up.dw[0, 0] == pytest.approx(expected, rel=1e-9)
    assert up.averages.ebar_hz[0] == pytest.approx(e_at(0.5) + np.exp(-0.3), rel=1e-12)
    assert up.averages.bbar_hz[0] == pytest.approx(b_at(0.5), rel=1e-12)
    assert (up.events, up.bursts, up.pre_events) == (2, 1, 1)
    gated = unit_weight_change(pre, 1, 1, post, 1, 1, p, end_s=0.5, learn_from_s=0.15, dt_s=1e-4)
    assert gated.dw[0, 0] == pytest.approx(-pbar_02 * np.exp(-1.0), rel=1e-9) and gated.bursts == 0
    start = RuleAverages.measured(post, 1, 0.0, 0.5)
    np.testing.assert_allclose([start.ebar_hz[0], start.bbar_hz[0]], [4.0, 2.0])
    with pytest.raises(MburstError, match="post cell index lies outside 0..0"):
        unit_weight_change(pre, 1, 1, _detection([1], [0.1]), 1, 1, p, end_s=0.5)
    with pytest.raises(MburstError, match="homeostasis"):
        unit_weight_change(pre, 1, 1, post, 1, 1, BurstPlasticityParams(eta_homeo=1 * second), end_s=0.5)


def test_untaught_pbar_table_and_pbar_read_per_window_by_hand():
    """A unit silent in a window takes its mean burst probability over the windows where it had events (0 if none).
    A post event reads the Pbar of its unit's window in place of the moving averages'."""
    from brian2 import ms, second

    from circuits.ensemble_plasticity import fill_silent_windows, unit_weight_change
    from circuits.plasticity import BurstPlasticityParams

    table = fill_silent_windows(np.array([[0.5, 0.0, np.nan], [np.nan, 0.0, np.nan], [0.7, np.nan, np.nan]]))
    np.testing.assert_allclose(table, [[0.5, 0.0, 0.0], [0.6, 0.0, 0.0], [0.7, 0.0, 0.0]])
    p = BurstPlasticityParams(eta=1.0, tau_pre=100 * ms, tau_avg=1 * second)
    pre, post = _detection([0], [0.1]), _detection([0, 0], [0.1, 0.2])
    up = unit_weight_change(pre, 1, 1, post, 1, 1, p, end_s=0.5, dt_s=1e-4,
                            pbar_windows=(np.array([0.0, 0.15]), np.array([[0.2], [0.6]])))
    assert up.dw[0, 0] == pytest.approx(-0.2 - 0.6 * np.exp(-1.0), rel=1e-9)
    with pytest.raises(MburstError, match="pbar_windows holds"):
        unit_weight_change(pre, 1, 1, post, 1, 1, p, end_s=0.5, pbar_windows=(np.array([0.0]), np.zeros((1, 2))))


def test_first_learned_frame_leaves_out_the_frames_whose_untaught_windows_fall_in_the_settling():
    """Two-pass baselines learn from the frames after the settling in every learning layer (the latest of them);
    the moving averages' baseline from every taught frame."""
    from types import SimpleNamespace

    from circuits.ensemble_plasticity import first_learned_frame

    run = SimpleNamespace(layer_window_start_s={"hidden": np.array([0.03, 0.07, 0.11, 0.15, 0.19, 0.23]),
                                                "out": np.array([0.04, 0.08, 0.12, 0.16, 0.20, 0.24])})
    assert first_learned_frame(run, ["out"], 3, 0.075, "untaught") == 1  # 0.04
    assert first_learned_frame(run, ["hidden", "out"], 3, 0.075, "paired") == 2  # 0.03, 0.07
    assert first_learned_frame(run, ["out"], 3, 0.5, "untaught") == 3  # every untaught window settles
    assert first_learned_frame(run, ["hidden", "out"], 3, 0.075, "average") == 0
    assert first_learned_frame(run, ["hidden", "out"], 4, 0.1, "untaught", lead_in=1) == 1  # 0.07, 0.08
    assert first_learned_frame(run, ["hidden", "out"], 5, 0.075, "untaught", lead_in=2) == 0  # led in


def test_a_burst_whose_event_came_before_the_window_is_left_out_with_it():
    """Bbar <= Ebar, as in Brian2's rule: a cell silent in the window but for the second spike of a burst that began
    before it would otherwise get Pbar = Bbar / 1e-9 Hz (this blew up a GRID run's hidden update to 1e7)."""
    from brian2 import ms, second

    from circuits.ensemble_plasticity import RuleAverages, events_from, unit_weight_change
    from circuits.plasticity import BurstPlasticityParams

    post = _detection([0, 0], [0.995, 1.5], [0], [1.005], [0.995])  # burst onset 0.995, second spike 1.005; event 1.5
    start = RuleAverages.measured(post, 1, 1.0, 2.0)
    assert start.ebar_hz[0] == pytest.approx(1.0) and start.bbar_hz[0] == 0.0
    late = events_from(post, 1.0)
    assert len(late.burst_i) == 0 and list(late.event_t) == pytest.approx([0.5])
    p = BurstPlasticityParams(eta=1.0, tau_pre=100 * ms, tau_avg=1 * second)
    pre = _detection([0], [0.45])
    up = unit_weight_change(pre, 1, 1, late, 1, 1, p, end_s=1.0, averages=RuleAverages(np.zeros(1), np.zeros(1)))
    assert up.dw[0, 0] == 0.0  # Pbar 0 at the event: nothing to learn, not -1e9


def _two_layer_run(teach_widths: float, frames: int = 40, n: int = 30, seed: int = 0, lead: int = 25):
    """Two pre units (different rates) -> two post units of the circuit, every part on, streamed at 40 ms: ``lead``
    frames lead in (1 s: the settling), then two passes; in the second the post units' dendrites are taught
    +-``teach_widths`` widths of the burst-probability fit (from one frame late: the output's latency). Returns the
    calibration, layers, run and the rate side's ``p - pbar``, ``e_post`` and ``e_pre`` of the same currents (Hz)."""
    from circuits.ensembles import EnsembleConfig, EnsembleLayer, run_ensembles
    from rate_bridge.burstprop.calibrated import calibration_of
    from rate_bridge.regime import ensemble_cells

    cal = calibration_of("calibrated-circuit")
    fit, w = cal.fit, np.full((2, 2), 0.5)
    teach = np.array([1.0, -1.0]) * teach_widths * fit.width
    drive = np.tile(cal.effective_current([200.0, 700.0]), (lead + 2 * frames, 1))
    dend = np.zeros((lead + 2 * frames + 1, 2))
    dend[lead + frames + 1:] = teach
    layers = [EnsembleLayer("pre", "dense", (2,), n, np.zeros((2, 1)), drive_pA=drive),
              EnsembleLayer("post", "dense", (2,), n, w, weight_pA=cal.i_scale, bias_pA=cal.current_s(np.zeros(2)),
                            sources=(("pre", 0),), dend_pA=dend)]
    run = run_ensembles(layers, ensemble_cells(cal), EnsembleConfig(seed=seed, build_tag="test_learn"), progress=False)
    e_pre = fit.event_rate(drive[0])
    e_post = fit.event_rate(cal.effective_current(cal.current_s(w @ (e_pre / cal.e_ref))))
    return layers, run, fit.burst_prob(fit.I_half + teach) - fit.burst_prob(fit.I_half), e_post, e_pre


def test_two_layer_circuit_learns_in_burstprops_direction_and_rests_without_teaching():
    """The rule on the circuit's shared weights, taught a fixed pattern, moves them as burstprop's update
    (b - bbar) e_pre^T = (p - pbar) e_post e_pre^T of the same currents does (cosine >= 0.8); untaught, their mean
    change is near zero (the rule's fixed point)."""
    from circuits.ensemble_plasticity import ensemble_weight_changes, first_learned_frame
    from circuits.plasticity import BurstPlasticityParams
    from rate_bridge.learning import cosine

    params = BurstPlasticityParams(eta=1e-2)
    layers, run, dp, e_post, e_pre = _two_layer_run(2.0)
    burstprop = np.outer(dp * e_post, e_pre)
    assert first_learned_frame(run, ["post"], 65, 1.0, "untaught", lead_in=25) == 0  # the lead-in covers the settling
    taught, counts = ensemble_weight_changes(run, layers, ["post"], params, {}, 65, settle_s=1.0)["post"]
    paired, paired_counts = ensemble_weight_changes(run, layers, ["post"], params, {}, 65, 1.0, "paired", 25)["post"]
    untaught_pbar = ensemble_weight_changes(run, layers, ["post"], params, {}, 65, 1.0, "untaught", 25)["post"][0]
    for dw in (taught, paired, untaught_pbar):
        assert cosine(dw, burstprop) >= 0.8, dw
        assert dw[0].min() > 0 > dw[1].max()  # potentiated where taught up, depressed where taught down
    for c in (counts, paired_counts):  # paired: the untaught windows' signals write weights too
        assert c["weight_updates"] == (c["events"] + c["bursts"]) * 60 and c["pre_events"] > 0
    assert 1.5 < paired_counts["events"] / counts["events"] < 2.5  # both passes of 40 frames, not the lead-in
    del run  # its Brian2 objects go, so the next build of the same network is warm
    layers, run, *_ = _two_layer_run(0.0)
    untaught = ensemble_weight_changes(run, layers, ["post"], params, {}, 65, settle_s=1.0)["post"][0]
    assert abs(untaught.mean()) < 0.2 * np.abs(taught).mean(), (untaught, taught)
    untaught = ensemble_weight_changes(run, layers, ["post"], params, {}, 65, 1.0, "paired", 25)["post"][0]
    # paired: the second pass repeats the first without teaching, 0.008 of the taught change measured (0.23 before
    # the lead-in, when the untaught pass's first 24 frames fell in the settling)
    assert abs(untaught.mean()) < 0.1 * np.abs(paired).mean(), (untaught, paired)
    untaught = ensemble_weight_changes(run, layers, ["post"], params, {}, 65, 1.0, "untaught", 25)["post"][0]
    # untaught Pbar (the ensemble's, not each cell's own): 0.15 of the taught change measured (0.22 before the
    # lead-in); cosines with burstprop's 0.975 (average), 0.989 (paired), 0.996 (untaught)
    assert abs(untaught.mean()) < 0.3 * np.abs(untaught_pbar).mean(), (untaught, untaught_pbar)
    with pytest.raises(MburstError, match="baseline 'moving'"):
        ensemble_weight_changes(run, layers, ["post"], params, {}, 65, 1.0, "moving")

TINY_DATA = ["--data", "synthetic", "--n-utterances", "12"]
TINY_CIRCUIT = ["--n", "2", "--n-conv", "2", "--target", "numpy"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny Unimodal in the circuit's regime (calibrated-circuit), trained one epoch on a synthetic corpus, with the
    corpus cache in a temporary folder (``MBURST_CACHE`` stays set for the module's tests)."""
    from experiments import cli

    root = tmp_path_factory.mktemp("learn")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MBURST_CACHE", str(root / "cache"))
        assert cli.main(["train", "--model", "unimodal", "--activation", "calibrated-circuit", "--bins", "5",
                         "--channels", "1", "--embed", "2", "--epochs", "1", "--batch-size", "32", *TINY_DATA,
                         "--out", str(root / "train")]) == 0
        yield root / "train" / "checkpoint.pt"


def test_learned_checkpoint_loads_in_evaluate_and_scores_what_learn_reported(tmp_path, tiny_checkpoint, capsys):
    import json

    import torch

    from experiments import cli

    out = tmp_path / "learn"
    argv = ["learn", "--checkpoint", str(tiny_checkpoint), "--layers", "out,audio_dense", "--frames", "4", "--chunk",
            "2", "--settle", "0", "--eta", "0.05", "--baseline", "untaught", *TINY_CIRCUIT, *TINY_DATA,
            "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "metrics.json").read_text())
    assert report["baseline"] == "untaught" and "--baseline untaught" in (out / "learning.md").read_text()
    assert [r["frames"] for r in report["curve"]] == [0, 2, 4]
    assert report["curve_second_half"]["points"] == 1  # the point at 4 frames
    assert report["curve_second_half"]["spiking"] == report["curve"][-1]["f1_spiking"]
    assert set(report["layers"]) == {"out", "audio_dense"} and report["frames"] == 4
    assert np.isfinite(report["layers"]["out"]["cosine"]) and report["layers"]["out"]["weight_change_spiking"] > 0
    assert -1 <= report["layers"]["out"]["cosine_same_weights_centered"] <= 1
    assert "cosine_circuit_rates" in report["layers"]["out"]  # NaN here: 2 cells per unit seldom burst in 2 frames
    assert -1 <= report["layers"]["out"]["cosine_counting_ceiling"] <= 1
    pre_cells = {"out": 2 * 2, "audio_dense": 40 * 2}  # audio_dense: 2 units x 2 cells; audio_conv2: 40 x 2
    for name, row in report["layers"].items():  # (2 cells per unit: a hidden unit may not burst, and then not learn)
        assert row["weight_updates"] == (row["events"] + row["bursts"]) * pre_cells[name]
        assert row["weight_updates"] == pytest.approx(4 * row["weight_updates_per_frame"])
    assert report["plasticity"]["weight_updates"] == sum(r["weight_updates"] for r in report["layers"].values())
    assert report["plasticity"]["device_cost"].startswith("none")
    assert report["f1"]["start"] == report["f1"]["trained"] > 0
    source = torch.load(tiny_checkpoint, weights_only=False)["model_state"]
    learned = torch.load(out / "checkpoint.pt", weights_only=False)["model_state"]
    for name in ("audio_conv1.weight", "audio_conv2.weight", "out.bias", "audio_dense.bias"):
        assert torch.equal(learned[name], source[name]), name  # not chosen, or not a synapse: untouched
    assert not torch.equal(learned["out.weight"], source["out.weight"])
    for name in ("learning.md", "learning_curve.csv", "learning.png"):
        assert (out / name).stat().st_size > 0
    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--split", "test", *TINY_DATA,
                     "--out", str(tmp_path / "eval")]) == 0
    scored = json.loads((tmp_path / "eval" / "metrics.json").read_text())["splits"]["test"]["f1"]
    assert scored == pytest.approx(report["f1"]["spiking"], abs=1e-12)
    capsys.readouterr()
    assert cli.main(argv) == 0  # a rerun resumes: nothing left to learn, the same weights
    assert "resuming after 4 frames" in capsys.readouterr().out
    assert torch.equal(torch.load(out / "checkpoint.pt", weights_only=False)["model_state"]["out.weight"],
                       learned["out.weight"])
    i = argv.index("--frames") + 1
    capsys.readouterr()
    longer = argv[:i] + ["6"] + argv[i + 1:]
    j = longer.index("--eta") + 1
    # a longer run extends this one (the stream is a prefix), here at half the rate: a schedule by hand
    assert cli.main(longer[:j] + ["0.025"] + longer[j + 1:]) == 0
    assert "resuming after 4 frames" in capsys.readouterr().out
    report = json.loads((out / "metrics.json").read_text())
    assert [r["frames"] for r in report["curve"]] == [0, 2, 4, 6]
    assert report["eta_per_chunk"] == [0.05, 0.05, 0.025] and report["eta"] == 0.025
    assert "--eta (changed when the run was extended): 0.05 (chunks 1-2), 0.025 (chunk 3)." in (out / "learning.md").read_text()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["learning"]["eta_per_chunk"] == [0.05, 0.05, 0.025]
    assert cli.main(longer + ["--teach-gain", "5"]) != 0  # any other option changed: refused
    assert "holds a learning run with other options" in capsys.readouterr().err
    assert cli.main(argv[:i] + ["2"] + argv[i + 1:]) != 0
    assert "--frames 2: --out" in capsys.readouterr().err


def test_a_lead_in_covers_the_settling_and_burstprop_beside_learns_from_the_same_frames(tmp_path, tiny_checkpoint,
                                                                                        monkeypatch):
    """A 50 ms settling with 40 ms frames: the chunk's first 2 frames stream once before its passes (the lead-in), so
    the rule learns from every frame of the chunk, and burstprop beside it (same weights and own trajectory) from the
    same frames: all of them, not those after the settling."""
    import json

    import torch

    import rate_bridge.convert
    from experiments import cli
    from experiments.commands.learn import stream_frames
    from experiments.options import corpus_from_args
    from experiments.training.checkpoints import load_checkpoint
    from experiments.training.metrics import weighted_bce
    from rate_bridge.learning import burstprop_update

    calls, run_frames = [], rate_bridge.convert.run_frames

    def recorded(net, audio, *args, lead_in=0, **kwargs):
        run = run_frames(net, audio, *args, lead_in=lead_in, **kwargs)
        calls.append((len(audio), lead_in, len(run.ensembles.window_start_s), len(run.spike_hz["out"])))
        return run

    monkeypatch.setattr(rate_bridge.convert, "run_frames", recorded)
    out = tmp_path / "learn"
    argv = ["learn", "--checkpoint", str(tiny_checkpoint), "--layers", "out", "--frames", "2", "--chunk", "2",
            "--settle", "50", "--baseline", "untaught", *TINY_CIRCUIT, *TINY_DATA, "--out", str(out)]
    assert cli.main(argv) == 0
    assert calls == [(4, 2, 6, 2)]  # 2 lead-in frames + 2 x 2 frames streamed; the chunk's 2 frames read out
    saved = torch.load(out / "learn_state.pt", weights_only=False)["state"]
    lr = json.loads((out / "metrics.json").read_text())["lr_burstprop_per_frame"]
    model, state = load_checkpoint(tiny_checkpoint)
    args = cli.build_parser().parse_args(argv)
    audio, _, ibm = stream_frames(corpus_from_args(args), state, 2, args.seed)

    def loss_fn(prob, target):
        return args.teach_gain * weighted_bce(prob, target, float(state.get("pos_weight", 1.0)))

    every_frame = lr * burstprop_update(model, audio, None, ibm, loss_fn, ["out"])[1]["out"]
    after_settling = lr * burstprop_update(model, audio[1:], None, ibm[1:], loss_fn, ["out"])[1]["out"]
    assert np.abs(after_settling - every_frame).max() > 1e-6 * np.abs(every_frame).max()  # frame 0 counts
    for key in ("dw_burstprop_same", "dw_burstprop"):  # one chunk: both start from the checkpoint's weights
        np.testing.assert_allclose(saved[key]["out"], every_frame, rtol=1e-9, atol=1e-15)
    assert saved["counts"]["out"]["events"] > 0


@pytest.mark.parametrize("extra, match", [
    (["--layers", "out,nope"], "--layers: the model has no layer 'nope'"),
    (["--layers", "audio_conv2"], "--layers audio_conv2: a convolutional layer; mburst learn trains dense layers only"),
    (["--layers", "out,out"], "--layers: a layer is named twice"),
    (["--frames", "0"], "--frames must be a positive integer"),
    (["--frames", "3", "--chunk", "2"], "--frames 3 must be a multiple of --chunk 2"),
    (["--eval-every", "3"], "--eval-every 3 must be a positive multiple of --chunk"),
    (["--eta", "0"], "--eta must be > 0"),
    (["--w-bound", "1e-4"], "--w-bound 0.0001: layer 'out' holds weights up to"),
    (["--frames", "100000"], "--frames 100000: the training split holds only"),
    (["--reinit", "audio_dense"], "--reinit: layer 'audio_dense' does not learn (--layers out)"),
    (["--reinit", ","], "--reinit: give comma-separated layers of --layers"),
    (["--counting-ceiling", "0"], "--counting-ceiling: cells per unit must be >= 1"),
    (["--homeostasis", "2"], "--homeostasis must be in [0, 1], got 2"),
])
def test_bad_learn_options_are_one_line_errors(tmp_path, tiny_checkpoint, capsys, extra, match):
    import re

    from experiments import cli

    argv = ["learn", "--checkpoint", str(tiny_checkpoint), "--layers", "out", "--frames", "4", "--chunk", "2",
            *TINY_CIRCUIT, *TINY_DATA, "--out", str(tmp_path / "run")]
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(re.escape(match), err), err


def test_reinit_redraws_only_the_layers_it_names():
    import torch

    from experiments.commands.learn import reinit_choice
    from rate_bridge.burstprop.models import ModelConfig, build_model
    from rate_bridge.learning import reinit_layers

    model = build_model("multimodal", ModelConfig(n_bins=5, channels=1, embed=2))
    layers = ("out", "audio_dense", "visual_dense")
    assert reinit_choice(layers, None) == () and reinit_choice(layers, "all") == layers
    assert reinit_choice(layers, " out, ") == ("out",)
    fresh = reinit_layers(model, reinit_choice(layers, "out"), seed=3)
    before, after = model.state_dict(), fresh.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"out.weight", "out.bias"}
    again = reinit_layers(model, ("out",), seed=3).state_dict()
    assert all(torch.equal(after[k], again[k]) for k in after)  # seeded


def test_a_checkpoint_the_circuit_cannot_map_is_refused(tmp_path, capsys):
    import torch

    from experiments import cli
    from experiments.training.checkpoints import save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig, build_model

    relu = build_model("unimodal", ModelConfig(n_bins=5, channels=1, embed=2))
    save_checkpoint(tmp_path / "relu.pt", {"model_name": "unimodal", "model_config": relu.config.to_dict(),
                                          "model_state": relu.state_dict()})
    assert cli.main(["learn", "--checkpoint", str(tmp_path / "relu.pt"), "--layers", "out", "--frames", "2",
                     "--chunk", "2", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no spiking calibration" in err, err
    assert torch.load(tmp_path / "relu.pt", weights_only=False)["format"]  # untouched


def test_circuit_rate_update_is_eq8_with_the_circuits_signals_by_hand():
    from types import SimpleNamespace

    from rate_bridge.teaching import circuit_rate_update

    rng = np.random.default_rng(0)
    f, a, b, u = 5, 3, 2, 4  # frames, units of two sources, units of the post layer
    e = {"src_a": rng.random((f, a)) * 20, "src_b": rng.random((f, 1, b)) * 20, "post": rng.random((f, u)) * 30}
    p_un, p_t = rng.random((f, u)), rng.random((f, u))
    p_un[0, 1] = np.nan  # no event: no burst probability, no update
    run = SimpleNamespace(spike_hz=e, burst_prob={"post": p_un}, burst_prob_teach={"post": p_t})
    spec = SimpleNamespace(name="post", sources=[("src_a", 0), ("src_b", a)], weight=np.zeros((u, a + b)))
    dw = circuit_rate_update(run, [spec], ["post"])["post"]
    pre = np.hstack([e["src_a"], e["src_b"].reshape(f, b)])
    by_hand = np.zeros((u, a + b))
    for t in range(f):
        for i in range(u):
            if np.isfinite(p_un[t, i]):
                by_hand[i] += (p_t[t, i] - p_un[t, i]) * e["post"][t, i] * pre[t]
    np.testing.assert_allclose(dw, by_hand, rtol=1e-12)


def _counted_states(f: int, u: int, a: int, dp: float, seed: int = 0):
    """A post layer of ``u`` dense units reading ``a`` conv units over ``f`` frames, taught by ``+-dp``."""
    from types import SimpleNamespace

    import torch

    rng = np.random.default_rng(seed)
    pbar = 0.3 + 0.1 * rng.random((f, u))
    p = pbar + dp * np.where(rng.random((f, u)) < 0.5, 1.0, -1.0)
    e, x = 0.2 + 0.6 * rng.random((f, u)), 0.2 + 0.6 * rng.random((f, 1, a))

    def t(v):
        return torch.as_tensor(v)

    states = {"post": SimpleNamespace(e=t(e), p=t(p), pbar=t(pbar))}
    specs = [SimpleNamespace(name="pre", kind="conv2d", sources=[]),
             SimpleNamespace(name="post", kind="dense", sources=[("pre", 0)], weight=np.zeros((u, a)))]
    return states, {"pre": x}, specs, ((p - pbar) * e).T @ x.reshape(f, a)


def test_counting_ceiling_of_the_update_falls_with_fewer_cells_and_a_weaker_teaching():
    """The counted update (rate_bridge.update_ceiling) averages to eq. 8's: with many cells its cosine with
    burstprop's update nears 1; few cells or a tiny p - pbar leave mostly counting noise."""
    from rate_bridge.learning import cosine
    from rate_bridge.update_ceiling import COUNTED_DRAWS, counted_draws

    def ceiling(n, dp):
        states, rates, specs, exact = _counted_states(1000, 6, 8, dp)
        draws = counted_draws(states, rates, specs, ["post"], {"post": n, "pre": n}, 10.0, 0.04, 0.1, 0)["post"]
        assert draws.shape == (COUNTED_DRAWS, 6, 8)
        return np.mean([cosine(d, exact) for d in draws])

    many, some, few, weak = ceiling(20000, 0.2), ceiling(256, 0.2), ceiling(16, 0.2), ceiling(16, 0.002)
    assert many > 0.99 and some > 0.85  # over 8 seeds: 0.998-1.0 and 0.88-0.97
    assert weak < 0.2 and weak < few < some  # weak: -0.24 to 0.09; few: 0.25-0.74 (the trace's mean is shared)


def test_counting_ceiling_scan_writes_a_table_per_ensemble_size(tmp_path, tiny_checkpoint, capsys):
    import json

    from experiments import cli

    out = tmp_path / "ceiling"
    assert cli.main(["learn", "--checkpoint", str(tiny_checkpoint), "--layers", "out,audio_dense", "--frames", "4",
                     "--chunk", "2", "--counting-ceiling", "2", "2000", *TINY_CIRCUIT, *TINY_DATA,
                     "--out", str(out)]) == 0, capsys.readouterr().err
    table = json.loads((out / "ceiling.json").read_text())
    assert set(table["cosine"]) == {"2", "2000"} and table["frames"] == 4
    for row in table["cosine"].values():
        assert set(row) == {"out", "audio_dense"} and all(-1 <= v <= 1 for v in row.values())
    assert table["cosine"]["2000"]["out"] > 0.9  # many cells: the counted update is burstprop's
    assert "| 2000 |" in (out / "ceiling.md").read_text() and not (out / "checkpoint.pt").exists()


def test_teaching_response_separates_bursts_moved_from_events_moved():
    """Bursts moved along b - bbar with events fixed: burst r 1, no events per burst; events moved by half as much:
    0.5 events per burst, and the rule's B - Pbar E still follows b - bbar."""
    from types import SimpleNamespace

    import torch

    from rate_bridge.teaching import teaching_response

    rng = np.random.default_rng(0)
    f, u = 30, 5
    d = rng.normal(size=(f, u))
    e0, p0 = 10 + rng.random((f, u)), 0.3 + 0.1 * rng.random((f, u))
    states = {"post": SimpleNamespace(d=torch.as_tensor(d))}

    def run(events_per_burst):
        b1 = p0 * e0 + d
        e1 = e0 + events_per_burst * d
        return SimpleNamespace(event_rate_hz={"post": np.vstack([e0, e1])},
                               burst_prob={"post": np.vstack([p0, b1 / e1])})

    still = teaching_response(run(0.0), states, ["post"], f)["post"]
    assert still["pbar_untaught"] == pytest.approx((p0 * e0).sum() / e0.sum())  # bursts over events, untaught pass
    assert still["burst_r"] == pytest.approx(1.0) and np.isnan(still["event_r"])
    assert still["event_per_burst"] == pytest.approx(0.0, abs=1e-12) and still["rule_r"] == pytest.approx(1.0)
    assert still["delivered_up"] == pytest.approx(1.0) and still["delivered_down"] == pytest.approx(1.0)
    assert teaching_response(run(0.0), states, ["post"], f, e_ref=2.0)["post"]["delivered_up"] == pytest.approx(0.5)
    moved = teaching_response(run(0.5), states, ["post"], f)["post"]
    assert moved["event_per_burst"] == pytest.approx(0.5) and moved["event_r"] == pytest.approx(1.0)
    # B - P' E with P' the unit-frame's untaught burst probability keeps d (1 - 0.5 P'), up and down apart
    for key, m in (("delivered_up", d > 0), ("delivered_down", d < 0)):
        assert moved[key] == pytest.approx((d[m] ** 2 * (1 - 0.5 * p0[m])).sum() / (d[m] ** 2).sum())


def test_dendrite_homeostasis_steps_the_output_back_to_the_fits_midpoint():
    """The step is the fit's inverse: from the burst probability at I_half + x it is -x (gain 1), half of it at gain
    0.5, none at the mid-point, clipped beyond the fit's range, and 0 when the output had no event."""
    from rate_bridge.burstprop.calibrated import calibration_of
    from rate_bridge.teaching import dendrite_homeostasis_pA

    cal = calibration_of("calibrated-circuit")
    fit = cal.fit
    for x in (-200.0, 120.0):
        p = float(fit.burst_prob(fit.I_half + x))
        assert dendrite_homeostasis_pA(p, cal, 1.0) == pytest.approx(-x)
        assert dendrite_homeostasis_pA(p, cal, 0.5) == pytest.approx(-x / 2)
    assert dendrite_homeostasis_pA(0.5 * (fit.p_lo + fit.p_hi), cal, 1.0) == pytest.approx(0.0, abs=1e-9)
    top = dendrite_homeostasis_pA(0.99, cal, 1.0)
    assert top == pytest.approx(-fit.width * np.log(0.98 / 0.02))
    assert dendrite_homeostasis_pA(float("nan"), cal, 1.0) == 0.0 and dendrite_homeostasis_pA(0.7, cal, 0.0) == 0.0


def test_homeostasis_offsets_the_next_chunks_output_dendrites_by_the_step_the_last_chunk_measured(
        tmp_path, tiny_checkpoint, monkeypatch):
    """With --homeostasis 1 the first chunk runs the output's dendrites at 0 pA besides the teaching, the second at
    the step of the first chunk's untaught burst probability (every frame: lead-in, untaught and taught pass); each
    chunk's row holds what the output's rule received of the asked teaching, as teaching_response measured it."""
    import json

    import rate_bridge.convert
    import rate_bridge.teaching
    from experiments import cli
    from rate_bridge.burstprop.calibrated import calibration_of
    from rate_bridge.teaching import dendrite_homeostasis_pA

    currents, responses = [], []
    run_frames, response = rate_bridge.convert.run_frames, rate_bridge.teaching.teaching_response

    def recorded(net, audio, *args, out_dend_pA=None, **kwargs):
        currents.append(np.asarray(out_dend_pA, float))
        return run_frames(net, audio, *args, out_dend_pA=out_dend_pA, **kwargs)

    def recorded_response(*args, **kwargs):
        responses.append(response(*args, **kwargs))
        return responses[-1]

    monkeypatch.setattr(rate_bridge.convert, "run_frames", recorded)
    monkeypatch.setattr(rate_bridge.teaching, "teaching_response", recorded_response)
    out = tmp_path / "learn"
    argv = ["learn", "--checkpoint", str(tiny_checkpoint), "--layers", "out", "--frames", "4", "--chunk", "2",
            "--settle", "40", "--baseline", "untaught", "--homeostasis", "1", "--n", "8", "--n-conv", "2",
            "--target", "numpy", *TINY_DATA, "--out", str(out)]
    assert cli.main(argv) == 0
    chunks = json.loads((out / "metrics.json").read_text())["homeostasis"]["chunks"]
    assert [c["offset_pA"] for c in chunks][0] == 0.0 and len(chunks) == 2
    p1 = chunks[0]["pbar_untaught"]
    assert np.isfinite(p1)
    step = dendrite_homeostasis_pA(p1, calibration_of("calibrated-circuit"), 1.0)
    assert step != 0.0 and chunks[1]["offset_pA"] == pytest.approx(step)
    lead_untaught = 1 + 2  # 40 ms settling: one lead-in frame, then the untaught pass of 2 frames
    assert np.all(currents[0][:lead_untaught] == 0.0)
    np.testing.assert_allclose(currents[1][:lead_untaught], step)
    assert np.abs(currents[1][lead_untaught:] - step).max() > 0  # the teaching rides on the offset
    assert len(responses) == len(chunks)
    for row, measured in zip(chunks, responses):
        assert row["delivered"] == pytest.approx([measured["out"]["delivered_up"], measured["out"]["delivered_down"]],
                                                 nan_ok=True)
