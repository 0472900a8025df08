"""Transfer functions of a layer measured in place: with its PV/SOM microcircuit, their STP and the background.

The rate model trains with the cells' measured transfer functions (:mod:`rate_bridge.burstprop.calibrated`):
event rate against somatic current, ``E(I_s)``, and burst probability against dendritic current,
``P(I_d)`` (the forms of :mod:`neurons.transfer`). Measured on isolated cells they leave out what the
circuit does to a layer: its PV cells (depressing input from the layer, somatic inhibition) take rate
away as the layer fires more, its SOM cells (facilitating input, dendritic inhibition) take burst
probability away as it bursts more. Here the same measurement (:func:`neurons.transfer.measure_sweeps`,
one block of cells per current level, the Payeur Poisson background) runs on a layer that has its
PV and SOM in place, wired as every layer of the converted network is
(:func:`circuits.ensemble_parts.interneurons`, :data:`circuits.wiring.WIRING`), so the fit is the
transfer function of a layer of the circuit. The interneurons read the whole layer, so their
inhibition is the layer's average, as in the network.

The forward and feedback inputs reach a layer of the converted network as shared synaptic currents
(:mod:`circuits.shared_current`) whose means are ``I_s`` and ``I_d``; here they are injected as those
means, so their fluctuations are not part of the measured curve.

The interneurons' inhibition follows the layer's mean event rate (recorded as ``Sweeps.layer_mean_hz`` and the
fit's ``meta['layer_mean_hz']``), so the measured curve belongs to that operating point: with ``context_pA`` the
rest of the layer (twice as many cells as the sweeps, held at that somatic current, not read out) sets it apart
from the levels swept.

The committed ``neurons/data/transfer_fit_circuit.json`` (activation ``calibrated-circuit``) records the
``mburst calibrate`` command that made it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurons.common import MburstError

__all__ = ["measure_circuit_transfer", "interneuron_gain", "CIRCUIT_DESCRIPTION"]

CIRCUIT_DESCRIPTION = ("layer in place: PV (STD in, somatic GABA) and SOM (STF in, dendritic GABA), n/4 each, "
                       "p = max(0.05, 4/n), Payeur background on every cell (circuits.calibration)")


def measure_circuit_transfer(I_s_levels, I_d_levels, *, I_s_fixed: float, I_d_fixed: float, n_per_level: int = 100,
                             duration: float = 2.0, warmup: float = 0.3, target: str = "cpp_standalone",
                             seed: int = 0, interneurons: bool = True, progress: bool = False,
                             context_pA: float | None = None, interneuron_gain: float = 1.0):
    """Both transfer sweeps of a layer with its microcircuit in place.

    Parameters
    ----------
    I_s_levels, I_d_levels : array_like of float (pA), shape (n,), n >= 2
        Somatic and dendritic current levels.
    I_s_fixed, I_d_fixed : float (pA)
        Somatic current during the dendritic sweep, dendritic during the somatic one (the circuit's
        operating point: hidden units near their event rate unit ``e_ref``, dendrites mid-range).
    n_per_level : int, optional
        Cells per level (>= 2).
    duration, warmup : float (s), optional
        Measured window and discarded start.
    target : str, optional
        Brian2 target.
    seed : int, optional
        Seed of Brian2, the background and the interneurons' connections.
    interneurons : bool, optional
        PV and SOM in place (False: the isolated-cell measurement with background, for comparison).
    progress : bool, optional
        Progress bar (runtime targets).
    context_pA : float (pA), optional
        Somatic current of the rest of the layer: ``2 (n_s + n_d) n_per_level`` more cells (dendrites at
        ``I_d_fixed``) in the same group and microcircuit, not read out, so the layer's mean event rate (the
        interneurons' drive) is set by them. None: the layer is the sweeps' cells alone.
    interneuron_gain : float, optional
        Factor on the layer's weights onto its PV and SOM (:func:`circuits.ensemble_parts.interneurons`).

    Returns
    -------
    neurons.transfer.Sweeps
        E (Hz), P per level, the intra-burst interval (ms), ``circuit`` describing the set-up and
        ``layer_mean_hz``, the mean event rate of every cell of the layer (context included).

    Raises
    ------
    MburstError
        Invalid levels or times (:func:`neurons.transfer.measure_sweeps`), a ``context_pA`` that is not finite, or
        an ``interneuron_gain`` that is not a positive number.
    """
    from neurons.transfer import measure_sweeps

    from circuits.ensemble_parts import interneurons as layer_interneurons

    rng = np.random.default_rng(seed)

    def attach(group):
        objects, _ = layer_interneurons(group, "calibration", rng, [], gain=interneuron_gain)
        return objects

    I_s_levels, I_d_levels = np.asarray(I_s_levels, float), np.asarray(I_d_levels, float)
    n_s, circuit = len(I_s_levels), CIRCUIT_DESCRIPTION if interneurons else ""
    context = np.zeros(0)
    if context_pA is not None:
        if not np.isfinite(context_pA):
            raise MburstError(f"measure_circuit_transfer: context_pA={context_pA} must be finite (pA)")
        context = np.full(2 * (n_s + len(I_d_levels)), float(context_pA))
        circuit += f"; rest of the layer: {len(context) * n_per_level} cells at {context_pA:g} pA"
    if not (np.isfinite(interneuron_gain) and interneuron_gain > 0):
        raise MburstError(f"measure_circuit_transfer: interneuron_gain={interneuron_gain} must be a positive factor")
    if interneuron_gain != 1.0:
        circuit += f"; weights onto PV/SOM x{interneuron_gain:g}"
    sw = measure_sweeps(np.concatenate([I_s_levels, context]), I_d_levels, I_s_fixed=I_s_fixed, I_d_fixed=I_d_fixed,
                        n_per_level=n_per_level, duration=duration, warmup=warmup, target=target, seed=seed,
                        progress=progress, attach=attach if interneurons else None, circuit=circuit)
    return dataclasses.replace(sw, **{k: getattr(sw, k)[:n_s] for k in ("I_s", "E_s", "P_s", "E_s_sem", "P_s_sem")})


def interneuron_gain(layer_mean_hz: float, calibration_mean_hz: float) -> float:
    """Factor on a layer's weights onto its PV and SOM that gives them the calibration's drive.

    The interneurons' input is the layer's mean event rate through fixed weights, so a layer that fires at
    ``m`` Hz drives them ``m / m_cal`` times as strongly as the layer the transfer function was measured on
    (``m_cal``, the fit's ``meta['layer_mean_hz']``), and inhibits less: its weakly driven cells fire above
    the measured curve. ``m_cal / m`` restores the calibration's operating point.

    Parameters
    ----------
    layer_mean_hz, calibration_mean_hz : float (Hz)
        The layer's expected mean event rate and the calibration's.

    Returns
    -------
    float
        ``calibration_mean_hz / layer_mean_hz``.

    Raises
    ------
    MburstError
        Either rate not a positive finite number.
    """
    for key, v in (("layer_mean_hz", layer_mean_hz), ("calibration_mean_hz", calibration_mean_hz)):
        if not (np.isfinite(v) and v > 0):
            raise MburstError(f"interneuron_gain: {key}={v} must be a positive rate (Hz)")
    return float(calibration_mean_hz / layer_mean_hz)
