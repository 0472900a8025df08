"""The in-place transfer function belongs to its layer's mean rate: PV/SOM read the whole layer.

:func:`circuits.calibration.measure_circuit_transfer` with ``context_pA``: the rest of the layer, held at one
current, sets the interneurons' drive apart from the levels swept. A quiet layer inhibits less, so a weakly
driven cell fires more in it than in a busy one (measured on the compact GRID model's circuit: 1.7 against
0.5 Hz at -400 pA for layer means of 2.6 and 12.7 Hz).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from neurons.common import MburstError  # noqa: E402


@pytest.fixture(scope="module")
def quiet_and_busy():
    from circuits.calibration import measure_circuit_transfer

    def sweep(context):  # (2 + 2) levels + 8 context blocks, x 40 cells = 480 cells, 1 s after 0.2 s
        return measure_circuit_transfer([-300.0, 300.0], [700.0, 800.0], I_s_fixed=300.0, I_d_fixed=800.0,
                                        n_per_level=40, duration=1.0, warmup=0.2, target="numpy", seed=3,
                                        context_pA=context)

    return sweep(-600.0), sweep(1200.0)


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


def test_layer_context_must_be_finite():
    from circuits.calibration import measure_circuit_transfer

    with pytest.raises(MburstError, match="context_pA=nan must be finite"):
        measure_circuit_transfer([0.0, 1.0], [0.0, 1.0], I_s_fixed=0.0, I_d_fixed=0.0, context_pA=float("nan"))


@pytest.mark.parametrize("extra, expected", [
    ([], "--layer-context sets the operating point of a layer's interneurons: it needs --in-circuit"),
    (["--in-circuit", "--layer-context", "inf"], "--layer-context=inf must be a finite current (pA)"),
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
