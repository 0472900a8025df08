"""Calibrated activation, rate -> spiking conversion, equivalence and bad input (issue 6)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurons.common import MburstError
from rate_bridge.burstprop import calibrated as C
from circuits.connectivity import conv_pairs, dense_pairs, expand_pre_cells
from circuits.ensembles import ablate
from rate_bridge.convert import BridgeConfig, SpikingMBURST
from rate_bridge.burstprop.models import ModelConfig, build_model

TINY = dict(n_bins=6, context=2, lip_hw=(4, 6), channels=1, embed=4)


def test_calibrated_activation_matches_fit_and_autograd():
    cal = C.default_calibration()
    v = torch.linspace(-3, 3, 25, dtype=torch.float64, requires_grad=True)
    e = C.event_rate(v, cal)
    # the numpy fit, in Hz, divided by e_ref
    np.testing.assert_allclose(e.detach().numpy(), cal.rate_hz(v.detach().numpy()) / cal.e_ref, rtol=1e-8)
    # inside the measured range the saturation is negligible: the numpy fit itself
    low = v.detach().numpy() < 0.8
    np.testing.assert_allclose(e.detach().numpy()[low], cal.fit.event_rate(cal.current_s(v.detach().numpy()[low])) / cal.e_ref,
                               rtol=1e-3)
    assert e[-1] <= cal.fit.event_rate(cal.i_max) / cal.e_ref  # saturates at the top of the sweep
    (g,) = torch.autograd.grad(e.sum(), v)
    np.testing.assert_allclose(g.numpy(), C.event_rate_deriv(v.detach(), cal).numpy(), rtol=1e-8)
    assert g[12] == pytest.approx(C.event_rate_deriv(torch.tensor(0.0, dtype=torch.float64), cal))
    assert 0.5 < float(C.event_rate_deriv(torch.tensor(0.3, dtype=torch.float64), cal)) < 1.0  # i_scale = e_ref/k
    assert g[-1] < 1e-3  # saturated
    act = C.calibrated_activation(cal)
    h = act.h(e.detach(), v.detach())
    np.testing.assert_allclose((h * e).detach().numpy(), g.numpy(), rtol=1e-8)  # h(e) e = f'(v)
    mid = (v.detach() > -0.3) & (v.detach() < 1.0)
    np.testing.assert_allclose(C.inverse_event_rate(e.detach()[mid], cal).numpy(), v.detach().numpy()[mid], atol=1e-6)
    p = C.burst_prob(torch.tensor([-50.0, 0.0, 50.0]), cal)
    assert p[0] == pytest.approx(cal.fit.p_lo, abs=1e-6) and p[2] == pytest.approx(cal.fit.p_hi, abs=1e-6)
    assert p[1] == pytest.approx(0.5 * (cal.fit.p_lo + cal.fit.p_hi))


def test_quiet_calibration_is_registered_with_its_regime():
    from neurons.transfer_fit import cell_offsets

    cal = C.calibration_of("calibrated-quiet")
    assert cal.quiet and not C.default_calibration().quiet
    assert cal.offset_spread == 150.0 and cal.i_max == cal.fit.meta["I_s_max"] == 1500.0
    assert cal.i_offset == cal.fit.I0 and cal.i_scale == pytest.approx(cal.e_ref / cal.fit.k)
    v = torch.linspace(-2, 4, 13, dtype=torch.float64)
    np.testing.assert_allclose(C.event_rate(v, cal).numpy(), cal.rate_hz(v.numpy()) / cal.e_ref, rtol=1e-8)
    assert float(C.event_rate(torch.tensor(-2.0), cal)) < 1e-3  # silent below the knee (no background)
    off = cell_offsets(4, 150.0)
    np.testing.assert_allclose(off, [-112.5, -37.5, 37.5, 112.5])
    assert cell_offsets(1, 150.0)[0] == 0.0 and abs(cell_offsets(32, 150.0).mean()) < 1e-9


def test_calibrated_model_trains_with_burstprop():
    torch.manual_seed(0)
    model = build_model("mburst", ModelConfig(activation="calibrated", **TINY))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    a, v = torch.randn(32, 1, 2, 6), torch.randn(32, 1, 4, 6)
    target = (a[:, 0, -1] > 0).float()  # learnable from the audio
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.binary_cross_entropy(model(a, v), target)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]


def test_conv_pairs_reproduce_torch_conv():
    rng = np.random.default_rng(0)
    for stride in (1, 2):
        w = rng.normal(size=(3, 2, 3, 3))
        x = rng.normal(size=(2, 5, 7))
        pre, post, wv = conv_pairs(x.shape, w, stride, 1)
        ref = F.conv2d(torch.tensor(x[None]), torch.tensor(w), stride=stride, padding=1)[0].numpy().ravel()
        out = np.zeros(ref.size)
        np.add.at(out, post, wv * x.ravel()[pre])
        np.testing.assert_allclose(out, ref, atol=1e-12)


def test_expand_pre_cells_preserves_summed_weight():
    pre, post, w = dense_pairs(np.array([[1.0, -2.0], [0.5, 3.0]]))
    i, j, wc = expand_pre_cells(pre, post, w, n_pre=5)
    # every cell of each pre unit reaches the post unit's shared current; total weight per unit pair = w
    m = np.zeros((2, 2))
    np.add.at(m, (j, i // 5), wc)
    np.testing.assert_allclose(m, np.array([[1.0, -2.0], [0.5, 3.0]]))
    assert len(i) == 4 * 5 and np.array_equal(np.bincount(i), np.full(10, 2))


def test_bad_input_errors():
    with pytest.raises(MburstError, match="n=0 must be an integer >= 1"):
        BridgeConfig(n=0).validate()
    with pytest.raises(MburstError, match="too short to count a spike"):
        BridgeConfig(mode="settle", t_count_ms=5.0).validate()
    relu = build_model("mburst", ModelConfig(**TINY))
    with pytest.raises(MburstError, match="no spiking calibration"):
        SpikingMBURST(relu, BridgeConfig())
    cal_model = build_model("mburst", ModelConfig(activation="calibrated-circuit", **TINY))
    with pytest.raises(MburstError, match="too short to count a spike"):
        SpikingMBURST(cal_model, BridgeConfig(n=1, n_conv=1, mode="settle", t_count_ms=20.0))
    # a checkpoint trained in another regime than the bridge is asked for
    quiet = build_model("mburst", ModelConfig(activation="calibrated-quiet", **TINY))
    with pytest.raises(MburstError, match="'calibrated-quiet' was measured in the forward-only network's regime.*"
                                          "--ablate forward-only"):
        SpikingMBURST(quiet, BridgeConfig())
    SpikingMBURST(quiet, ablate(BridgeConfig(), ["forward-only"]))
    isolated = build_model("mburst", ModelConfig(activation="calibrated", **TINY))
    with pytest.raises(MburstError, match="'calibrated' was measured on cells without PV/SOM: run it with --ablate "
                                          "interneurons"):
        SpikingMBURST(isolated, BridgeConfig())


@pytest.mark.slow
def test_conversion_reproduces_tiny_trained_network(tiny_trained):
    from rate_bridge.equivalence import layer_fidelity

    model, a, v, _ = tiny_trained
    net = SpikingMBURST(model, BridgeConfig(n=60, n_conv=20, mode="settle", t_settle_ms=150.0, t_count_ms=300.0, tau_syn_ms=40.0, seed=0))
    res = net.run(a[:24], v[:24], progress=False)
    rows = {r.layer: r for r in layer_fidelity(res)}
    assert rows["out"].r >= 0.95, rows
    assert res.counts["out"].neuron_updates == (6 * 60 + 2 * (6 * 60 // 4)) * 24 * 3000  # pyramidal, PV, SOM


@pytest.mark.slow
def test_learning_phase_matches_burstprop():
    from rate_bridge.equivalence import learning_phase_cosine

    res = learning_phase_cosine(n_pre_units=5, n_post_units=5, n=16, duration_s=4.0, baseline_s=3.0)
    assert res["cosine"] >= 0.8, res["cosine"]


def test_cuda_target_needs_brian2cuda():
    import importlib.util

    from neurons.device import choose_target

    if importlib.util.find_spec("brian2cuda") is not None:
        pytest.skip("brian2cuda is installed here")
    with pytest.raises(MburstError, match="needs brian2cuda"):
        choose_target("cuda_standalone")


def test_burst_probs_are_burstprops_without_and_with_teaching():
    from rate_bridge.rate_reference import burst_probs

    torch.manual_seed(0)
    model = build_model("mburst", ModelConfig(activation="calibrated-circuit", **TINY))
    a, v = torch.randn(5, 1, 2, 6), torch.randn(5, 1, 4, 6)
    pbar, p = burst_probs(model, a, v)
    assert p == {}
    np.testing.assert_allclose(pbar["out"], model.config.pbar)  # no teaching: the output bursts at pbar_L
    assert pbar["audio_conv1"].shape == (5, 12) and 0 < pbar["audio_dense"].min() and pbar["audio_dense"].max() < 1
    assert pbar["audio_dense"].std() > 0  # set by the feedback, unit by unit
    assert all(w.grad is None for w in model.parameters())
    ones, zeros = burst_probs(model, a, v, np.ones((5, 6)))[1], burst_probs(model, a, v, np.zeros((5, 6)))[1]
    assert (ones["out"] > model.config.pbar).all() and (zeros["out"] < model.config.pbar).all()  # eq. 3
    np.testing.assert_allclose(burst_probs(model, a, v, np.ones((5, 6)))[0]["audio_dense"], pbar["audio_dense"])
    assert np.abs(ones["audio_dense"] - zeros["audio_dense"]).max() > 1e-4  # teaching reaches the hidden layers
    assert burst_probs(build_model("multimodal", ModelConfig(activation="calibrated", **TINY)), a, v) == ({}, {})


def test_teaching_current_moves_the_fits_burst_probability_by_eq3s_change():
    """The teacher moves the output's dendrites from I_half (fit P0 = (p_lo + p_hi)/2, standing for pbar_L) so that
    the fit's burst probability changes by p_L - pbar_L, both ways, and saturates beyond the fit's reach."""
    from rate_bridge.teaching import teaching_current

    fit = C.calibration_of("calibrated-circuit").fit
    p = np.array([0.0, 0.1, 0.2, 0.35, 0.45])
    d_p = fit.burst_prob(fit.I_half + teaching_current(p, 0.2, C.calibration_of("calibrated-circuit"))) \
        - fit.burst_prob(fit.I_half)
    np.testing.assert_allclose(d_p, p - 0.2, atol=1e-9)
    top = teaching_current(np.array([1.0]), 0.2, C.calibration_of("calibrated-circuit"))
    np.testing.assert_allclose(top, 3 * fit.width)  # 0.8 above pbar is out of the fit's reach: +3 widths


def test_feedback_alone_is_sigma_of_y_bbar_through_dense_and_conv_layers():
    """Eq. 5 with h = 1: the feedback a layer gets is W^T bbar of the layers reading it (transposed convolution for
    conv layers), summed over readers, through sigma(beta u + alpha)."""
    from types import SimpleNamespace

    from rate_bridge.rate_reference import feedback_alone

    rng = np.random.default_rng(0)
    wc, wd = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=(4, 2 * 2 * 3))
    conv = SimpleNamespace(name="c", kind="conv2d", units=2 * 2 * 3, in_shape=(1, 4, 5), weight=wc, stride=2,
                           padding=1, sources=[("x", 0)])
    dense = SimpleNamespace(name="d", kind="dense", units=4, weight=wd, sources=[("c", 0)])
    e = {"c": rng.random((3, 12)), "d": rng.random((3, 4))}
    pbar = {"c": rng.random((3, 12)), "d": rng.random((3, 4))}
    fb = feedback_alone([conv, dense], e, pbar, beta=2.0, alpha=0.5)
    assert set(fb) == {"c"}  # the input 'x' is no layer
    np.testing.assert_allclose(fb["c"], 1 / (1 + np.exp(-(2.0 * ((pbar["d"] * e["d"]) @ wd) + 0.5))))
    # a conv layer reading a layer 'x' feeds it back through the transposed convolution
    x = SimpleNamespace(name="x", kind="dense", units=20, weight=None, sources=[("in", 0)])
    fb = feedback_alone([x, conv], {"c": e["c"]}, {"c": pbar["c"]}, beta=1.0)
    up = torch.nn.functional.conv_transpose2d(torch.as_tensor(pbar["c"] * e["c"]).reshape(3, 2, 2, 3),
                                              torch.as_tensor(wc), stride=2, padding=1, output_padding=(1, 0))
    np.testing.assert_allclose(fb["x"], 1 / (1 + np.exp(-up.reshape(3, -1).numpy())), atol=1e-12)


def test_output_feedback_is_zero_where_burstprops_untaught_output_is():
    """At v_out = 0 the circuit's untaught output bursts at P(I_half) E(I_mid) Hz, burstprop's at pbar_L e_ref / 2:
    the offset its feedback subtracts is their difference, so the embeddings' dendrites get burstprop's Y bbar there."""
    from rate_bridge.convert import BridgeConfig
    from rate_bridge.regime import ensemble_cells
    from rate_bridge.teaching import output_burst_offset_hz, output_rate_hz

    cal = C.calibration_of("calibrated-circuit")
    e0 = output_rate_hz(cal, BridgeConfig(), np.array([[0.0, 1.0]]))[1]
    offset = output_burst_offset_hz(cal, e0, ensemble_cells(cal).i_dend_pA, 0.2)
    assert float(cal.fit.burst_prob(cal.fit.I_half)) * e0 - offset == pytest.approx(0.2 * cal.e_ref * 0.5)
    assert 3.0 < offset < 4.0  # the compact GRID regime: 0.458 x 9.71 Hz against 1 Hz


@pytest.mark.slow
def test_feedback_run_reports_burst_probabilities():
    from rate_bridge.equivalence import layer_fidelity

    torch.manual_seed(0)
    model = build_model("mburst", ModelConfig(activation="calibrated-circuit", **TINY)).eval()
    a, v = torch.randn(6, 1, 2, 6), torch.randn(6, 1, 4, 6)
    res = SpikingMBURST(model, BridgeConfig(n=20, n_conv=10, mode="settle", t_settle_ms=50.0, t_count_ms=200.0,
                                            seed=0)).run(a, v, progress=False)
    rows = {r.layer: r for r in layer_fidelity(res)}
    assert rows["out"].p_rate == pytest.approx(model.config.pbar)
    for name in ("audio_dense", "audio_conv2"):
        assert 0 < rows[name].p_rate < 1 and 0 <= rows[name].burst_prob <= 1
        assert np.isfinite(rows[name].p_r)
    assert res.counts["audio_dense"].syn_feedback > 0  # the dense layer's bursts travel down


def test_run_frames_gives_a_typed_result_and_the_report(tmp_path):
    """A tiny converted network on the numpy target: the SpikingRun's fields line up with the model, the summary
    with the run, and the bridge report writes what it reads."""
    import json

    from experiments.spiking.stage import write_bridge_report
    from rate_bridge.convert import SpikingRun
    from rate_bridge.equivalence import BridgeSummary

    torch.manual_seed(0)
    model = build_model("multimodal", ModelConfig(activation="calibrated-circuit", **TINY)).eval()
    a, v = torch.randn(2, 1, 2, 6), torch.randn(2, 1, 4, 6)
    ibm = (torch.rand(2, 6) > 0.5).float()
    cfg = BridgeConfig(n=3, n_conv=3, mode="settle", t_settle_ms=20.0, t_count_ms=40.0, target="numpy", seed=0)
    s, res = write_bridge_report(tmp_path, model, a, v, ibm, cfg, progress=False)
    assert isinstance(res, SpikingRun) and isinstance(s, BridgeSummary)
    net = SpikingMBURST(model, cfg)
    assert res.cells == net.cells() and list(res.rate_hz) == [spec.name for spec in net.specs]
    for name, spec in zip(res.rate_hz, net.specs):
        assert res.rate_hz[name].shape == res.spike_hz[name].shape == res.burst_prob[name].shape == (2, spec.units)
    assert res.frames == s.frames == 2 and res.mask_spike.shape == res.mask_rate.shape == (2, 6)
    np.testing.assert_array_equal(res.mask_spike, res.spike_hz["out"] > res.out_threshold_hz)
    assert res.rate_burst_prob == {} and res.count_window_s == pytest.approx(0.04) and res.target == "numpy"
    spikes = sum(c.spikes for c in res.counts.values())
    assert spikes > 0 and s.spikes_per_frame == pytest.approx(spikes / 2)
    assert res.counts["out"].neuron_updates == (6 * 3 + 2 * (6 * 3 // 4)) * 2 * 400  # cells x steps of the windows
    assert s.r_out == next(r.r for r in s.layers if r.layer == "out")
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert counts["out"]["spikes"] == res.counts["out"].spikes
    report = json.loads((tmp_path / "bridge.json").read_text())
    assert report["summary"]["spike"]["f1"] == pytest.approx(s.spike.f1) and report["cells"] == res.cells
    assert (tmp_path / "equivalence.csv").read_text().count("\n") == len(net.specs) + 1
    from rate_bridge.equivalence import onset_gains

    assert json.loads((tmp_path / "metrics.json").read_text())["match_interneurons"] is False
    metrics = json.loads((tmp_path / "metrics.json").read_text())["layers"]
    for r in s.layers:  # each layer's onset split, as onset_gains gives it (None where NaN)
        got = [metrics[r.layer][k] for k in ("gain_onset", "gain_steady", "onset_share")]
        want = onset_gains(res.rate_hz[r.layer], res.spike_hz[r.layer])
        assert got == [None if np.isnan(w) else pytest.approx(w) for w in want]


def test_onset_gains_split_rises_from_steady_frames():
    from rate_bridge.equivalence import onset_gains

    # unit 0: silent, then on (onset) and on (steady); unit 1: on throughout; unit 2 under the 2 Hz floor
    rate = np.array([[0.5, 10.0, 1.0], [8.0, 10.0, 1.5], [8.0, 10.5, 1.0]])
    spk = np.array([[0.0, 10.0, 3.0], [16.0, 11.0, 3.0], [9.0, 10.0, 3.0]])
    onset, steady, share = onset_gains(rate, spk)
    assert onset == pytest.approx(16.0 / 8.0)  # the onset fires twice the steady-state rate
    assert steady == pytest.approx((11.0 + 9.0 + 10.0) / (10.0 + 8.0 + 10.5))
    assert share == pytest.approx(1 / 4)  # 4 unit-frames >= 2 Hz after the first frame, one an onset
    assert np.isnan(onset_gains(np.ones((3, 2)), np.ones((3, 2)))[0])  # nothing above the floor


def test_matched_interneurons_scale_each_layer_by_the_calibrations_mean_over_its_own():
    """--match-interneurons: each layer's EnsembleLayer carries m_cal / m, m its mean expected rate."""
    from rate_bridge.convert import ensemble_layers, network_spec
    from rate_bridge.regime import interneuron_gains

    torch.manual_seed(0)
    model = build_model("multimodal", ModelConfig(activation="calibrated-circuit", **TINY)).eval()
    specs, cal = network_spec(model)
    rates = {s.name: np.full((2, s.units), 1.0 + i) for i, s in enumerate(specs)}
    gains = interneuron_gains(cal, rates)
    inputs = {"audio": np.zeros((2, 1, 2, 6)), "visual": np.zeros((2, 1, 4, 6))}
    layers = ensemble_layers(specs, cal, BridgeConfig(), inputs, 1.0, gains=gains)
    m_cal = cal.fit.meta["layer_mean_hz"]
    assert [lay.interneuron_gain for lay in layers] == [pytest.approx(m_cal / (1.0 + i)) for i in range(len(specs))]
    assert {lay.interneuron_gain for lay in ensemble_layers(specs, cal, BridgeConfig(), inputs, 1.0)} == {1.0}


def test_counting_ceiling_is_the_poisson_limit_of_a_read_out_window():
    from rate_bridge.read_out_ceiling import counting_ceiling

    rate = np.array([[5.0, 15.0], [15.0, 5.0]])  # variance 25 Hz^2
    spk = np.full((2, 2), 10.0)  # 10 Hz, 16 cells, 40 ms: noise variance 10 / 0.64 = 15.625 Hz^2
    assert counting_ceiling(rate, spk, 16, 0.04) == pytest.approx(np.sqrt(25 / (25 + 15.625)))
    assert counting_ceiling(rate, spk, 1600, 0.04) > 0.99  # many cells: no limit
    assert np.isnan(counting_ceiling(np.ones((2, 2)), spk, 16, 0.04))
    # a Poisson ensemble measured at the rate model's rates reaches about the ceiling
    rng = np.random.default_rng(0)
    r_true = rng.uniform(2, 20, (400, 8))
    meas = rng.poisson(r_true * 16 * 0.04) / (16 * 0.04)
    from rate_bridge.equivalence import pearson
    assert pearson(r_true, meas) == pytest.approx(counting_ceiling(r_true, meas, 16, 0.04), abs=0.03)


def test_burst_counting_ceiling_is_the_binomial_limit_of_bursts_among_events():
    from rate_bridge.equivalence import pearson
    from rate_bridge.read_out_ceiling import burst_counting_ceiling

    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.8, (400, 8))  # burstprop's p; the circuit bursts with 0.1 + 0.6 p
    events = rng.poisson(5.0, p.shape)
    bursts = rng.binomial(events, 0.1 + 0.6 * p)
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = np.where(events > 0, bursts / np.maximum(events, 1), np.nan)
    seen = np.isfinite(measured)
    ceiling = burst_counting_ceiling(p, measured, events, 0.6)
    assert pearson(p[seen], measured[seen]) == pytest.approx(ceiling, abs=0.03)  # it is reached, not passed
    assert burst_counting_ceiling(p, measured, events * 100, 0.6) > 0.95  # many events: no limit
    assert burst_counting_ceiling(p, measured, events, 0.06) < ceiling / 3  # a tenth of the range: mostly noise
    assert np.isnan(burst_counting_ceiling(np.full_like(p, 0.5), measured, events, 0.6))
