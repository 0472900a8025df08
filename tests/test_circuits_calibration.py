"""The in-place transfer function belongs to its layer's mean rate: PV/SOM read the whole layer.

:func:`circuits.calibration.measure_circuit_transfer` with ``context_pA``: the rest of the layer, held at one
current, sets the interneurons' drive apart from the levels swept. A quiet layer inhibits less, so a weakly
driven cell fires more in it than in a busy one (full size, ``mburst simulate neuron --what transfer --in-circuit
--layer-context -600`` / ``1200``: 1.47 against 0.50 Hz at -400 pA for layer means of 3.5 and 13.6 Hz); scaling
the layer's weights onto its PV/SOM by the ratio of the means (:func:`circuits.calibration.interneuron_gain`)
restores the other layer's inhibition.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from neurons.common import MburstError  # noqa: E402


def _sweep(context, gain=1.0):  # (2 + 2) levels + 8 context blocks, x 40 cells = 480 cells, 1 s after 0.2 s
    from circuits.calibration import measure_circuit_transfer

    return measure_circuit_transfer([-300.0, 300.0], [700.0, 800.0], I_s_fixed=300.0, I_d_fixed=800.0, n_per_level=40,
                                    duration=1.0, warmup=0.2, target="numpy", seed=3, context_pA=context,
                                    interneuron_gain=gain)


@pytest.fixture(scope="module")
def quiet_and_busy():
    return _sweep(-600.0), _sweep(1200.0)


@pytest.fixture(scope="module")
def quiet_matched(quiet_and_busy):
    """The quiet layer with its weights onto PV/SOM scaled to the busy layer's mean."""
    from circuits.calibration import interneuron_gain

    quiet, busy = quiet_and_busy
    return _sweep(-600.0, interneuron_gain(quiet.layer_mean_hz, busy.layer_mean_hz))


def test_layer_context_sets_the_interneurons_operating_point(quiet_and_busy):
    quiet, busy = quiet_and_busy
    print("layer mean (Hz):", quiet.layer_mean_hz, busy.layer_mean_hz, "E_s quiet/busy:", quiet.E_s, busy.E_s)
    for sw in quiet_and_busy:  # only the swept levels come back; the context is in the layer mean alone
        assert sw.I_s.tolist() == [-300.0, 300.0] and sw.E_s.shape == sw.P_s.shape == (2,)
        assert "rest of the layer: 320 cells" in sw.circuit
    assert busy.layer_mean_hz > quiet.layer_mean_hz + 4.0
    # The weakly driven level fires more in the quiet layer: less PV inhibition (3 SEM apart).
    diff = quiet.E_s[0] - busy.E_s[0]
    assert diff > 3 * np.hypot(quiet.E_s_sem[0], busy.E_s_sem[0]), (quiet.E_s, busy.E_s)


def test_matched_interneurons_restore_the_busy_layers_inhibition(quiet_and_busy, quiet_matched):
    """Weights onto PV/SOM x m_busy / m_quiet: the quiet layer's weakly driven cells fire as in the busy layer
    (full size, 200 cells x 3 s per level, matched to the calibration's 9.0 Hz: within 0.5 Hz of its curve up
    to 1 nA, where the unmatched quiet layer sat up to 0.7 Hz off)."""
    quiet, busy = quiet_and_busy
    print("E_s quiet / matched / busy:", quiet.E_s, quiet_matched.E_s, busy.E_s)
    assert "weights onto PV/SOM x" in quiet_matched.circuit
    sem = np.hypot(quiet.E_s_sem[0], quiet_matched.E_s_sem[0])
    assert quiet.E_s[0] - quiet_matched.E_s[0] > 3 * sem
    assert abs(quiet_matched.E_s[0] - busy.E_s[0]) < 0.5 * (quiet.E_s[0] - busy.E_s[0])


def test_layer_context_and_gain_must_be_valid():
    from circuits.calibration import measure_circuit_transfer

    with pytest.raises(MburstError, match="context_pA=nan must be finite"):
        measure_circuit_transfer([0.0, 1.0], [0.0, 1.0], I_s_fixed=0.0, I_d_fixed=0.0, context_pA=float("nan"))
    with pytest.raises(MburstError, match="interneuron_gain=-1 must be a positive factor"):
        measure_circuit_transfer([0.0, 1.0], [0.0, 1.0], I_s_fixed=0.0, I_d_fixed=0.0, interneuron_gain=-1)


@pytest.mark.parametrize("extra, expected", [
    ([], "--layer-context sets the operating point of a layer's interneurons: it needs --in-circuit"),
    (["--in-circuit", "--layer-context", "inf"], "--layer-context=inf must be a finite current (pA)"),
    (["--interneuron-gain", "2"], "--interneuron-gain scales the weights onto a layer's interneurons: it needs "
                                  "--in-circuit"),
    (["--in-circuit", "--interneuron-gain", "0"], "--interneuron-gain=0.0 must be a positive factor"),
])
def test_layer_context_options_fail_in_one_line(extra, expected, tmp_path, capsys):
    from experiments import cli

    argv = ["simulate", "neuron", "--what", "transfer", "--out", str(tmp_path)]
    code = cli.main(argv + (extra or ["--layer-context", "100"]))
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(expected)


def test_interneuron_gain_is_the_calibrations_mean_over_the_layers():
    from circuits.calibration import interneuron_gain
    from rate_bridge.regime import interneuron_gains

    assert interneuron_gain(2.5, 10.0) == pytest.approx(4.0)
    with pytest.raises(MburstError, match="layer_mean_hz=0.0 must be a positive rate"):
        interneuron_gain(0.0, 10.0)

    class Cal:  # a calibration whose fit records its layer mean, and one that does not
        class fit:
            meta = {"layer_mean_hz": 9.0}

    gains = interneuron_gains(Cal, {"a": np.array([[1.0, 5.0]]), "b": np.full((2, 3), 18.0)})
    assert gains == {"a": pytest.approx(3.0), "b": pytest.approx(0.5)}
    Cal.fit.meta = {}
    with pytest.raises(MburstError, match="--match-interneurons needs the calibration's layer mean"):
        interneuron_gains(Cal, {"a": np.ones((1, 1))})
