"""The regime a converted model's cells run in: the cell set-up of its calibration, and the circuit parts it allows.

A rate model trains with the transfer functions of cells measured in one regime
(:mod:`rate_bridge.burstprop.calibrated`); the circuit must run its cells in that regime:

* ``'circuit'`` (``calibrated-circuit``: a layer with its PV/SOM microcircuit in place and the background,
  :mod:`circuits.calibration`): the whole circuit and any ablation of it; dendrites at ``I_half``;
* ``'quiet'`` (``calibrated-quiet``: no background, heterogeneous offsets): only the forward-only network;
* ``'payeur'`` (``calibrated``: isolated cells with background): no interneurons.
"""
from __future__ import annotations

from neurons.common import MburstError

from circuits.ensembles import EnsembleCells
from rate_bridge.burstprop.calibrated import Calibration

__all__ = ["ensemble_cells", "check_regime", "interneuron_gains"]


def ensemble_cells(cal: Calibration, beta: float = 1.0) -> EnsembleCells:
    """The ensembles' cell set-up of a calibration: ``e_ref``, the saturation ``i_max``/``i_soft`` (pA), the
    dendrites' operating current (pA: ``I_half`` in the circuit's regime, else the measurement's fixed
    dendritic current), the feedback's dendritic current per unit of ``Y b`` (``beta x width`` pA, so that the
    cells' ``P(I_half + beta width u)`` has the slope of burstprop's ``sigma(beta u)``), the burst interval (ms),
    the feedback's saturation (``I_fb = width tanh(I / width)``: at most one ``width`` either side of ``I_half``,
    burst probabilities from 27 % to 73 % of the fit's range), the cells' offset spread (pA) and whether they are quiet."""
    meta = cal.fit.meta
    i_dend = cal.fit.I_half if cal.regime == "circuit" else float(meta.get("I_d_fixed_for_event_rate", 100.0))
    return EnsembleCells(e_ref_hz=cal.e_ref, i_max_pA=cal.i_max, i_soft_pA=cal.i_soft, i_dend_pA=float(i_dend),
                         offset_spread_pA=cal.offset_spread, quiet=cal.quiet, i_scale_d_pA=beta * cal.fit.width,
                         i_fb_max_pA=cal.fit.width,
                         burst_isi_ms=float(meta.get("burst_isi_ms") or 6.0))


def check_regime(cal: Calibration, cfg, activation: str) -> None:
    """Refuse circuit parts the model's activation was not measured with (see the module docstring).

    Raises
    ------
    MburstError
        A ``calibrated-quiet`` model with any part of the circuit on (STP, feedback, interneurons, forward
        synapses on every spike), or a model measured on isolated cells with interneurons on.
    """
    parts = [k for k in ("stp", "feedback", "interneurons") if getattr(cfg, k)]
    if cal.quiet and (parts or cfg.forward_pathway != "event"):
        raise MburstError(f"bridge: the checkpoint's activation '{activation}' was measured in the forward-only "
                          "network's regime (no background, no bursts): run it with --ablate forward-only, or train "
                          "a model for the circuit with mburst train --preset spiking")
    if cal.regime == "payeur" and cfg.interneurons:
        raise MburstError(f"bridge: the checkpoint's activation '{activation}' was measured on cells without "
                          "PV/SOM: run it with --ablate interneurons, or train with --preset spiking "
                          "(activation calibrated-circuit, measured in place)")


def interneuron_gains(cal: Calibration, rates_hz: dict) -> dict:
    """Each layer's factor on its weights onto PV and SOM (:func:`circuits.calibration.interneuron_gain`).

    Parameters
    ----------
    cal : Calibration
        A calibration measured in place (its fit records the layer mean, ``meta['layer_mean_hz']``).
    rates_hz : dict
        ``{layer: array}`` of the rate model's expected event rates (Hz) on the frames run.

    Returns
    -------
    dict
        ``{layer: m_cal / m}``, ``m`` the layer's mean expected rate.

    Raises
    ------
    MburstError
        A calibration without a recorded layer mean, or a layer whose expected mean rate is not positive.
    """
    from circuits.calibration import interneuron_gain

    m_cal = cal.fit.meta.get("layer_mean_hz")
    if m_cal is None:
        raise MburstError("bridge: --match-interneurons needs the calibration's layer mean (meta 'layer_mean_hz'); "
                          "re-measure it with mburst simulate neuron --what transfer --in-circuit")
    return {k: interneuron_gain(float(r.mean()), float(m_cal)) for k, r in rates_hz.items()}
