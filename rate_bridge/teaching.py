"""The teacher of the converted circuit: the output's event rate for the rate model's output, the dendritic teaching
current that carries eq. 3's burst probability, and how the ensembles answered it (Passos et al.; Payeur et al.
2021).

The output layer (a sigmoid in the rate model) is driven with ``I = I_mid + i_scale_out v_out``
(:mod:`rate_bridge.convert`); untaught, its dendrites sit at the calibration's ``I_half``.
"""
from __future__ import annotations

import numpy as np

from rate_bridge.burstprop.calibrated import Calibration

__all__ = ["output_rate_hz", "output_burst_offset_hz", "teaching_current", "untaught_burst_prob", "dendrite_homeostasis_pA",
           "teaching_response", "circuit_rate_update"]


def output_rate_hz(cal: Calibration, cfg, v_out) -> tuple[np.ndarray, float, float]:
    """The circuit output's event rate for the rate model's ``v_out`` (module docstring: ``E(I_mid + i_scale_out
    v_out)``).

    Parameters
    ----------
    cal : Calibration
    cfg : rate_bridge.convert.BridgeConfig
        Its ``out_current_pA``.
    v_out : numpy.ndarray, shape (F, bins)
        The rate model's output potentials (sigmoid's argument).

    Returns
    -------
    rate_hz : numpy.ndarray, shape (F, bins)
        Expected event rate (Hz).
    e0_hz : float
        The rate at the decision point ``v_out = 0`` (Hz).
    i_scale_out : float
        pA per unit of ``v_out``.
    """
    q95 = float(np.percentile(np.abs(v_out), 95)) or 1.0
    i_scale_out = min(cal.i_scale, cfg.out_current_pA / q95)
    i_mid = 0.5 * (cal.i_offset + cal.i_max)
    return cal.rate_hz_of_current(i_mid + i_scale_out * v_out), float(cal.rate_hz_of_current(i_mid)), i_scale_out


def output_burst_offset_hz(cal: Calibration, e0_hz: float, dend_pA: float, pbar: float) -> float:
    """The output's untaught burst rate at the decision point ``v_out = 0``, circuit minus burstprop (Hz): the circuit
    bursts with the fit's ``P(I_d)`` at its dendrites' operating current and fires ``E(I_mid)``, burstprop's output
    with ``pbar_L e_ref sigma(0)``. The feedback onto the embeddings subtracts it
    (:attr:`circuits.ensembles.EnsembleLayer.burst_offset_hz`), so its zero point is burstprop's ``Y bbar`` at
    ``v_out = 0``; without it the compact GRID model's output fed back 5.4x burstprop's mean burst rate and the
    embeddings' dendritic feedback sat beyond the saturation (one fit width) in 96-98 % of unit-frames.

    Parameters
    ----------
    cal : Calibration
    e0_hz : float
        The output's event rate at ``v_out = 0`` (Hz; :func:`output_rate_hz`).
    dend_pA : float
        The untaught output dendrites' current (pA; :func:`rate_bridge.regime.ensemble_cells`).
    pbar : float
        Burstprop's ``pbar_L``.

    Returns
    -------
    float
        Hz.
    """
    return float(cal.fit.burst_prob(dend_pA)) * e0_hz - pbar * cal.e_ref * 0.5


def teaching_current(p, pbar: float, cal: Calibration, scale=1.0) -> np.ndarray:
    """The output's teaching current (pA): the dendritic current that changes the circuit's burst probability by
    eq. 3's ``p_L - pbar_L`` (times ``scale``), through the calibrated fit.

    The untaught output's dendrites sit at ``I_half``, where the fit bursts with ``P0 = (p_lo + p_hi)/2``; ``P0``
    stands for burstprop's ``pbar_L``. The teacher moves them to where the fit's burst probability is
    ``P0 + p_L - pbar_L``: ``I = width logit(1/2 + (p_L - pbar_L)/(p_hi - p_lo))``, clipped to +-3 widths (the
    fit's measured dendritic range reaches 2.9 widths above ``I_half``), so the burst rate changes by
    ``(p_L - pbar_L) E`` as burstprop's ``b - bbar = (p_L - pbar_L) e`` does. (Moving the logit by
    ``logit p_L - logit pbar_L`` instead, as earlier versions did, starts from 0.2 in the rate model but from
    ``P0`` = 0.46 in the circuit: down-teaching came out 1.25x and up-teaching 0.56x burstprop's on GRID, and
    the output's learned change was mostly a uniform depression.)

    Parameters
    ----------
    p : numpy.ndarray
        Burstprop's taught output burst probability ``p_L`` (any shape).
    pbar : float
        Its untaught ``pbar_L``.
    cal : Calibration
        The fit (``p_lo``, ``p_hi``, ``width``).
    scale : float or numpy.ndarray shaped like ``p``
        Multiplies the change (``mburst learn`` passes ``e_ref e_L / E``, :mod:`rate_bridge.learning`).

    Returns
    -------
    numpy.ndarray
        pA, shaped like ``p``.
    """
    f = cal.fit
    z = np.clip(0.5 + scale * (np.asarray(p, float) - pbar) / (f.p_hi - f.p_lo), 1e-3, 1 - 1e-3)
    return np.clip(f.width * np.log(z / (1 - z)), -3 * f.width, 3 * f.width)


def untaught_burst_prob(ensembles, layer: str, frames: int, lead_in: int = 0) -> float:
    """A layer's burst probability over its untaught pass: bursts over events of all its ensembles' read-out windows.

    Parameters
    ----------
    ensembles : circuits.ensembles.EnsembleRun
        A run of ``lead_in + 2 frames`` windows (lead-in, untaught, taught).
    layer : str
    frames : int
        ``F``, frames per pass.
    lead_in : int, optional
        Windows before the untaught pass.

    Returns
    -------
    float
        In [0, 1]; NaN when the layer had no event.
    """
    e = np.asarray(ensembles.event_rate_hz[layer], float)[lead_in:lead_in + frames]
    b = np.nan_to_num(np.asarray(ensembles.burst_prob[layer], float)[lead_in:lead_in + frames]) * e
    return float(b.sum() / e.sum()) if e.sum() > 0 else float("nan")


def dendrite_homeostasis_pA(burst_prob: float, cal: Calibration, gain: float) -> float:
    """The step of the output dendrites' constant current that brings its untaught burst probability back to the
    fit's mid-point ``P0 = (p_lo + p_hi)/2`` (times ``gain``), the operating point the teacher assumes.

    The circuit's untaught output does not stay at ``P0``: on GRID it burst at 0.50 at the re-initialised start
    (10 Hz) and at 0.63 after 1,000 frames of learning had made it quiet (4.6 Hz; its SOM cells, driven by the
    layer through facilitating synapses, are the likely cause: not measured). Near ``p_hi`` bursts cannot be added
    to the events there are, so up-teaching adds events with its bursts (0.9 per burst) and the rule, which learns
    ``B - Pbar E``, kept 0.65 of it; with this step (-177 pA) the same chunk burst at 0.46, moved 0.43 events per
    burst and kept 1.17 (16 cells per unit; the note of 2026-12-01). The step through the fit's inverse is ``-gain
    width logit((P - p_lo)/(p_hi - p_lo))``, the argument clipped to [0.02, 0.98]: an intrinsic (dendritic
    excitability) homeostasis, applied between chunks as the weights' changes are.

    Parameters
    ----------
    burst_prob : float
        The output's measured untaught burst probability (:func:`untaught_burst_prob`); NaN gives 0.
    cal : Calibration
        The fit (``p_lo``, ``p_hi``, ``width``).
    gain : float
        0 (off) to 1 (the whole step at once).

    Returns
    -------
    float
        pA (negative when the output bursts above ``P0``).
    """
    if not np.isfinite(burst_prob) or gain == 0:
        return 0.0
    f = cal.fit
    z = float(np.clip((burst_prob - f.p_lo) / (f.p_hi - f.p_lo), 0.02, 0.98))
    return -gain * f.width * float(np.log(z / (1 - z)))


def teaching_response(ensembles, states, layers, frames: int, lead_in: int = 0, e_ref: float = 1.0) -> dict:
    """How a layer's ensembles answered the teaching: their change of burst rate and of event rate, taught pass minus
    untaught pass of the same frames, against burstprop's ``b - bbar`` (eq. 4; a diagnostic of ``mburst learn``).

    Burstprop's teaching moves bursts, not events. In the circuit a dendritic current also drives the soma (plateaus),
    so the events can move too; the rule learns from ``B - Pbar E`` and sees that as less (or opposite) teaching.

    Parameters
    ----------
    ensembles : circuits.ensembles.EnsembleRun
        A run of ``lead_in + 2 frames`` read-out windows: lead-in, untaught, then taught (``event_rate_hz``,
        ``burst_prob``: [lead_in + 2F, units]).
    states : dict
        Burstprop's layer states of the same frames (``d = b - bbar``, ``e``, ``bbar``).
    layers : sequence of str
    frames : int
        ``F``.
    lead_in : int, optional
        Windows before the untaught pass (:func:`rate_bridge.convert.run_frames`).
    e_ref : float, optional
        Hz per unit of burstprop's rates: the burst-rate change asked of a unit-frame is ``e_ref (b - bbar)``.

    Returns
    -------
    dict
        ``{layer: {"burst_r", "event_r", "rule_r", "event_per_burst", "pbar_untaught", "delivered_up",
        "delivered_down"}}``: Pearson r of the burst-rate change, of the event-rate change and of ``dB - Pbar dE``
        (``Pbar``: the layer's untaught burst probability, ``pbar_untaught``, :func:`untaught_burst_prob`) with
        ``b - bbar`` over frames x units; ``event_per_burst``: the regression slope of the event-rate change on ``b -
        bbar`` over that of the burst-rate change (0: bursts alone move, as in burstprop); ``delivered_up`` and
        ``delivered_down``: over the unit-frames with ``b - bbar`` above and below 0, the slope (through 0) of what the
        rule learns from, ``B - P' E`` of the taught pass with ``P'`` the unit's untaught burst probability in the same
        frame (``--baseline untaught``: :func:`circuits.ensemble_plasticity.fill_silent_windows` over the lead-in and
        untaught windows), on the asked ``e_ref (b - bbar)`` (1: as asked). NaN where undefined.
    """
    from circuits.ensemble_plasticity import fill_silent_windows

    out = {}
    for name in layers:
        e = np.asarray(ensembles.event_rate_hz[name], float)[lead_in:lead_in + 2 * frames]
        b = np.nan_to_num(np.asarray(ensembles.burst_prob[name], float)[lead_in:lead_in + 2 * frames]) * e
        d_e, d_b = (e[frames:] - e[:frames]).ravel(), (b[frames:] - b[:frames]).ravel()
        d = states[name].d.detach().double().numpy().reshape(frames, -1).ravel()
        p_u = untaught_burst_prob(ensembles, name, frames, lead_in)
        p_avg = np.nan_to_num(p_u)

        def r(x):
            return float(np.corrcoef(x, d)[0, 1]) if x.std() > 0 and d.std() > 0 else float("nan")

        # the rule's P' (--baseline untaught): each unit-frame's untaught burst probability, silent windows filled
        p_frame = fill_silent_windows(np.asarray(ensembles.burst_prob[name], float)[:lead_in + frames])[lead_in:]
        rule = (b[frames:] - p_frame * e[frames:]).ravel()
        asked = e_ref * d

        def delivered(m):
            return float(rule[m] @ asked[m] / (asked[m] @ asked[m])) if np.any(asked[m]) else float("nan")

        slope_b = float(np.cov(d_b, d)[0, 1]) if d.std() > 0 else float("nan")
        slope_e = float(np.cov(d_e, d)[0, 1]) if d.std() > 0 else float("nan")
        out[name] = {"burst_r": r(d_b), "event_r": r(d_e), "rule_r": r(d_b - p_avg * d_e),
                     "event_per_burst": slope_e / slope_b if slope_b else float("nan"), "pbar_untaught": p_u,
                     "delivered_up": delivered(d > 0), "delivered_down": delivered(d < 0)}
    return out


def circuit_rate_update(run, specs, layers) -> dict:
    """Burstprop's update written with the circuit's own burst probabilities and event rates: what the spiking rule
    would learn if it had no spike-timing noise (a diagnostic of what limits it).

    Per layer, ``sum_t ((P_t - P'_t) E_t) E_pre,t^T`` over the frames with ``P``, ``P'`` the ensembles' burst
    probability taught and untaught (bursts / events, 0 where a unit had no event) and ``E`` the event rates (Hz) of
    the untaught pass: eq. 8's ``(b - bbar) e_pre^T`` with the circuit's signals in place of burstprop's. Its cosine
    with burstprop's own update measures the teaching the circuit's feedback carries. Measured on the GRID output's
    first chunk (256 cells per unit, re-initialised), over the frames the rule learned from: cosine 0.97 with the
    spiking rule's change, which is therefore not spike-timing noise (trace averaged over each read-out window:
    cosine 1.00); before ``mburst learn``'s lead-in the rule left out the settling's 24 frames and this sum did not
    (cosine 0.28 with the rule's change, -0.18 with burstprop's where the rule had 0.77).

    Parameters
    ----------
    run : rate_bridge.convert.SpikingRun
        A taught run (``burst_prob``, ``burst_prob_teach``, ``spike_hz``: [F, units] per layer).
    specs : sequence of rate_bridge.convert.LayerSpec
        The network's layers (``name``, ``sources``, ``weight``).
    layers : sequence of str
        Dense layers.

    Returns
    -------
    dict
        ``{layer: array [units, inputs]}`` (Hz^2 per frame summed; zero where no source reads).
    """
    by_name = {s.name: s for s in specs}
    out = {}
    for name in layers:
        spec = by_name[name]
        dp = np.nan_to_num(run.burst_prob_teach[name] - run.burst_prob[name])
        post = dp * run.spike_hz[name]
        dw = np.zeros(np.shape(spec.weight))
        for src, offset in spec.sources:
            pre = run.spike_hz[src].reshape(len(post), -1)
            dw[:, offset:offset + pre.shape[1]] = post.T @ pre
        out[name] = dw
    return out
