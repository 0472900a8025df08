"""Tests 3 and 4 on a population with Poisson background (Naud & Sprekeler 2018; Payeur et al. 2021).

3. Multiplexing: a somatic current sweep moves the event rate E strongly and
   the burst probability P little; a dendritic sweep moves P strongly and E little.
4. Transfer curves E(I_s) and P(I_d) are fitted by a softplus and a sigmoid
   with RMS residual under 5% of each curve's range; the committed default fit
   agrees with a fresh measurement.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from neurons.transfer import fit_transfer, measure_sweeps, plot_transfer, save_sweeps, sensitivities  # noqa: E402
from neurons.transfer_fit import TransferFit, load_default_fit  # noqa: E402

I_S = np.linspace(-400.0, 600.0, 11)   # pA, 100 pA steps
I_D = np.linspace(-300.0, 500.0, 9)    # pA; above ~550 pA sustained plateaus drive the soma tonically


@pytest.fixture(scope="module")
def sweeps():
    # (11 + 9) levels x 52 cells = 1040 cells, 1 s measured after 0.2 s.
    return measure_sweeps(I_S, I_D, n_per_level=52, duration=1.0, warmup=0.2, target="cython", seed=1)


def check_multiplexing(sw):
    s = sensitivities(sw)
    print("multiplexing sensitivities:", {k: round(v, 3) for k, v in s.items()})
    # Somatic input: E covers most of its range, far more than under the dendritic sweep.
    assert s["span_E_soma"] > 0.8
    assert s["span_E_soma"] > 3 * s["span_E_dend"], s
    assert s["fold_E_soma"] > np.log(2.0), s                     # E at least doubles
    # Dendritic input: P covers most of its range, far more than under the somatic sweep.
    assert s["span_P_dend"] > 0.8
    assert s["span_P_dend"] > 2 * s["span_P_soma"], s
    assert np.nanmax(sw.P_d) - np.nanmin(sw.P_d) > 0.4, sw.P_d   # P moves by > 0.4 in absolute terms
    return s


def check_fit(sw, fit: TransferFit):
    res = fit.meta["residual"]
    print("fit:", {k: round(v, 4) for k, v in fit.to_dict().items() if k != "meta"}, "residuals:", res)
    assert res["event_rate"]["rms_rel"] < 0.05, res
    assert res["burst_prob"]["rms_rel"] < 0.05, res
    # Residuals recomputed independently from the fitted functions.
    for I, y, f in ((sw.I_s, sw.E_s, fit.event_rate), (sw.I_d, sw.P_d, fit.burst_prob)):
        rms = np.sqrt(np.mean((y - f(I)) ** 2)) / np.ptp(y)
        assert rms < 0.05
    assert fit.k > 0 and fit.p_hi > fit.p_lo
    assert np.all(np.diff(fit.event_rate(np.linspace(-300, 700, 50))) > 0)


def test_multiplexing(sweeps):
    check_multiplexing(sweeps)


def test_transfer_fit(sweeps, tmp_path):
    fit = fit_transfer(sweeps, command="pytest")
    check_fit(sweeps, fit)
    fit.save(tmp_path / "fit.json")
    again = TransferFit.load(tmp_path / "fit.json")
    np.testing.assert_allclose(again.event_rate(I_S), fit.event_rate(I_S))
    np.testing.assert_allclose(again.burst_prob(I_D), fit.burst_prob(I_D))
    save_sweeps(sweeps, tmp_path / "sweeps.npz")
    assert np.load(tmp_path / "sweeps.npz")["E_s"].shape == (len(I_S),)
    check_transfer_plot(sweeps, fit, tmp_path / "transfer.png")


def check_transfer_plot(sw, fit: TransferFit, path):
    """The figure shows what it says: E and P against each sweep (the measured points), the fits on their panels."""
    import matplotlib.pyplot as plt

    from neurons import common

    seen = []

    def capture(fig, p, **kwargs):
        seen.append(fig)
        return save(fig, p, **kwargs)

    save = common.atomic_savefig
    common.atomic_savefig = capture
    try:
        png = plot_transfer(sw, fit, path)
    finally:
        common.atomic_savefig = save
    assert png == path and path.stat().st_size > 0 and plt.imread(path).ndim == 3
    (fig,) = seen
    axes = {(a.get_xlabel() or a.get_title(), a.get_ylabel()): a for a in fig.axes}
    panels = [("somatic current I_s (pA)", "burst probability P", sw.I_s, sw.P_s),
              ("dendritic current I_d (pA)", "burst probability P", sw.I_d, sw.P_d),
              (f"somatic sweep (I_d = {sw.I_d_fixed:g} pA)", "event rate E (Hz)", sw.I_s, sw.E_s),
              (f"dendritic sweep (I_s = {sw.I_s_fixed:g} pA)", "event rate E (Hz)", sw.I_d, sw.E_d)]
    assert len(fig.axes) == 4 and len(axes) == 4, list(axes)
    for x_label, y_label, x, y in panels:
        points = [c.lines[0] for c in axes[x_label, y_label].containers if c.get_label() == "simulation"]
        assert len(points) == 1, (x_label, y_label)  # the errorbar's data line
        np.testing.assert_allclose(points[0].get_xdata(), x)
        np.testing.assert_allclose(points[0].get_ydata(), y)
    fits = {ln.get_label(): ln for a in fig.axes for ln in a.lines if "fit" in ln.get_label()}
    assert sorted(fits) == ["sigmoid fit", "softplus fit"]
    xs, ys = fits["softplus fit"].get_data()
    np.testing.assert_allclose(ys, fit.event_rate(xs))
    assert xs.min() == sw.I_s.min() and xs.max() == sw.I_s.max()
    xd, yd = fits["sigmoid fit"].get_data()
    np.testing.assert_allclose(yd, fit.burst_prob(xd))
    assert fits["softplus fit"] in axes[f"somatic sweep (I_d = {sw.I_d_fixed:g} pA)", "event rate E (Hz)"].lines
    assert fits["sigmoid fit"] in axes["dendritic current I_d (pA)", "burst probability P"].lines


def test_default_fit_matches_fresh_measurement(sweeps):
    """The committed neurons/data/transfer_fit.json describes the model as it is now."""
    fit = load_default_fit()
    assert fit.meta["I_d_fixed_for_event_rate"] == sweeps.I_d_fixed
    assert fit.meta["I_s_fixed_for_burst_prob"] == sweeps.I_s_fixed
    E_err = np.abs(fit.event_rate(sweeps.I_s) - sweeps.E_s) / np.ptp(sweeps.E_s)
    P_err = np.abs(fit.burst_prob(sweeps.I_d) - sweeps.P_d) / np.ptp(sweeps.P_d)
    # The fresh run has 64 cells/level for 1 s: allow its statistical error (about 3-5% of the range).
    assert np.sqrt(np.mean(E_err ** 2)) < 0.08, E_err
    assert np.sqrt(np.mean(P_err ** 2)) < 0.08, P_err


def test_default_fit_numpy_api():
    fit = load_default_fit()
    E, B, P = fit.rates(np.array([0.0, 200.0]), np.array([-200.0, 500.0]))
    assert np.all(E > 0) and np.all((P >= 0) & (P <= 1))
    np.testing.assert_allclose(B, P * E)
    assert P[1] > P[0] and E[1] > E[0]


@pytest.mark.slow
def test_multiplexing_and_fit_large():
    sw = measure_sweeps(np.linspace(-500.0, 600.0, 23), np.linspace(-300.0, 500.0, 17), n_per_level=150,
                        duration=3.0, warmup=0.2, target="cython", seed=2)
    check_multiplexing(sw)
    check_fit(sw, fit_transfer(sw))
