"""The counting-noise ceiling of the spiking rule's update: how close to burstprop's update spike counts alone allow.

The spiking rule (:mod:`circuits.ensemble_plasticity`) learns from events and bursts counted in ensembles of ``n``
cells, so even a circuit whose rates and burst probabilities were exactly burstprop's would give an update with
counting noise. This module draws that update: per frame ``t``, post unit ``i`` and pre unit ``j`` of a dense layer,

* events ``E_ti ~ Poisson(n_i e_ref e_ti T)`` and bursts ``B_ti ~ Binomial(E_ti, p_ti)`` (``T``: the frame period),
* the presynaptic trace ``X_tj ~ Poisson(n_j e_ref x_tj tau_pre)`` (the events of unit ``j``'s cells that a trace
  of time constant ``tau_pre`` holds; the real trace has half this variance, so the ceiling is a little low),
* ``dW = sum_t (B_ti - Pbar_i E_ti) X_tj / (n_i n_j)``, with ``Pbar_i`` the unit's mean ``pbar`` over the chunk
  (a moving average), once with burstprop's taught ``p`` and once, independently, with its untaught ``pbar``; the
  draw is their difference (``--baseline paired``).

Its expectation is ``e_ref^2 T tau_pre sum_t (p - pbar) e x^T``: burstprop's update (eq. 8). The cosine between the
draws summed over chunks and burstprop's update at the same weights is the ceiling of ``cosine_same_weights``: what a
circuit with burstprop's rates and burst probabilities would reach with this many cells. Frame-level: spike timing
within a frame, the trace's memory across frames and the circuit's own deviations are left out.
"""
from __future__ import annotations

import numpy as np

__all__ = ["COUNTED_DRAWS", "counted_update", "counted_draws", "ceiling_scan"]

COUNTED_DRAWS = 4  # draws per layer and chunk (mburst learn)


def counted_update(states, rates: dict, specs, name: str, cells: dict, e_ref_hz: float, frame_s: float,
                   tau_pre_s: float, rng: np.random.Generator) -> np.ndarray:
    """One draw of a dense layer's paired update from spike counts (module docstring).

    Parameters
    ----------
    states : dict
        Burstprop's layer states of one pass over ``F`` frames (``e``, ``p``, ``pbar`` tensors; taught).
    rates : dict
        The rate model's event rates ``e`` of every layer on those frames (arrays [F, ...]; the sources').
    specs : sequence of rate_bridge.convert.LayerSpec
        The network's layers (``name``, ``kind``, ``sources``, ``weight``).
    name : str
        The dense layer.
    cells : dict
        ``{layer: cells per unit}`` for this layer and its sources.
    e_ref_hz, frame_s, tau_pre_s : float
        Hz per unit of e; the frame period and the presynaptic trace's time constant (s).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape of the layer's weight [units, inputs]
        Events x trace per cell pair (zero where no source reads).
    """
    by_name = {s.name: s for s in specs}
    spec, st = by_name[name], states[name]
    e, p, pbar = (getattr(st, k).detach().double().numpy().reshape(st.e.shape[0], -1)
                  for k in ("e", "p", "pbar"))
    n_post = cells[name]
    p_avg = pbar.mean(axis=0)
    dw = np.zeros(np.shape(spec.weight))
    for src, offset in spec.sources:
        x = np.asarray(rates[src], float).reshape(len(e), -1)
        n_pre = cells[src]
        for prob, sign in ((p, 1.0), (pbar, -1.0)):
            events = rng.poisson(n_post * e_ref_hz * np.clip(e, 0, None) * frame_s)
            bursts = rng.binomial(events, np.clip(prob, 0.0, 1.0))
            trace = rng.poisson(n_pre * e_ref_hz * np.clip(x, 0, None) * tau_pre_s)
            dw[:, offset:offset + x.shape[1]] += sign * ((bursts - p_avg * events).T @ trace) / (n_post * n_pre)
    return dw


def counted_draws(states, rates: dict, specs, layers, cells: dict, e_ref_hz: float, frame_s: float, tau_pre_s: float,
                  seed) -> dict:
    """``{layer: [COUNTED_DRAWS, units, inputs]}``: :func:`counted_update` drawn ``COUNTED_DRAWS`` times per layer.

    ``seed``: an int or a sequence of ints (e.g. the configuration's seed and the frames done), so every chunk
    draws its own noise, repeatably. Other parameters as :func:`counted_update`.
    """
    rng = np.random.default_rng(seed)
    return {k: np.stack([counted_update(states, rates, specs, k, cells, e_ref_hz, frame_s, tau_pre_s, rng)
                         for _ in range(COUNTED_DRAWS)]) for k in layers}


def ceiling_scan(model, audio, visual, target, loss_fn, layers, specs, cells_list, n_conv: int, e_ref_hz: float,
                 frame_s: float, tau_pre_s: float, chunk: int, seed: int) -> dict:
    """The counting ceiling of ``layers`` for several ensemble sizes, on these frames at ``model``'s weights.

    Burstprop's update and the draws are summed over chunks of ``chunk`` frames (no learning: the weights stay);
    cheap (the rate model only, no circuit), so it tells how many cells a learning run would need.

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
    audio, visual, target : torch.Tensor
        Frames ``[F, 1, H, W]`` (``visual`` None for audio-only models) and the ideal binary mask ``[F, bins]``.
    loss_fn : callable
        The teaching's loss (:func:`rate_bridge.learning.burstprop_update`).
    layers : sequence of str
        Dense layers.
    specs : sequence of rate_bridge.convert.LayerSpec
    cells_list : sequence of int
        Cells per dense and output unit to try (convolutional units keep ``n_conv``).
    n_conv : int
    e_ref_hz, frame_s, tau_pre_s : float
        As :func:`counted_update`.
    chunk : int
        Frames per chunk (the last may be shorter).
    seed : int

    Returns
    -------
    dict
        ``{n: {layer: mean cosine over COUNTED_DRAWS draws}}``.
    """
    from rate_bridge.learning import burstprop_update, cosine
    from rate_bridge.rate_reference import rate_reference

    exact, drawn = {}, {n: {} for n in cells_list}
    for c, s in enumerate(range(0, int(audio.shape[0]), chunk)):
        a, v, t = audio[s:s + chunk], None if visual is None else visual[s:s + chunk], target[s:s + chunk]
        _, update = burstprop_update(model, a, v, t, loss_fn, layers)
        states, rates = model.layer_states(), rate_reference(model, a, v).e
        for k in layers:
            exact[k] = exact.get(k, 0.0) + update[k]
        for n in cells_list:
            cells = {sp.name: n_conv if sp.kind == "conv2d" else n for sp in specs}
            d = counted_draws(states, rates, specs, layers, cells, e_ref_hz, frame_s, tau_pre_s, (seed, c, n))
            for k in layers:
                drawn[n][k] = drawn[n].get(k, 0.0) + d[k]
    return {n: {k: float(np.mean([cosine(x, exact[k]) for x in drawn[n][k]])) for k in layers} for n in cells_list}
