"""The rate model on the frames a converted network runs: event rates, the output drive and burstprop's burst
probabilities without and with teaching (the reference :mod:`rate_bridge.convert` reads the circuit against)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RateReference", "rate_reference", "burst_probs", "feedback_alone"]


@dataclass
class RateReference:
    """The rate model on ``F`` frames.

    ``e`` ``{layer: [F, units]}`` (hidden: calibrated e; ``'out'``: the sigmoid); ``v_out`` [F, bins] (the
    output's drive); ``pbar`` and ``p`` ``{layer: [F, units]}``: burstprop's burst probability without
    teaching (eq. 4, 7) and with the target as teaching (eq. 3, 7); empty unless asked for.
    """

    e: dict
    v_out: np.ndarray
    pbar: dict
    p: dict


def rate_reference(model, audio, visual, target=None, bursts: bool = False) -> RateReference:
    """The rate model on frames ``audio``, ``visual`` [F, C, H, W] (torch; ``visual`` None for audio-only
    models), float64; with ``bursts``, burstprop's ``pbar`` and, given ``target`` [F, bins], ``p``
    (:func:`burst_probs`)."""
    import torch

    with torch.no_grad():
        model.eval()
        out = model(audio, visual)
        acts = {k: v.reshape(v.shape[0], -1).double().numpy() for k, v in model.hidden_activities().items()}
        h = acts["audio_dense"]
        if model.visual:
            h = np.concatenate([h, acts["visual_dense"]], 1)
        v_out = h @ model.out.weight.detach().double().numpy().T + model.out.bias.detach().double().numpy()
    acts["out"] = out.double().numpy()
    pbar, p = burst_probs(model, audio, visual, target) if bursts else ({}, {})
    return RateReference(acts, v_out, pbar, p)


def burst_probs(model, audio, visual, target=None) -> tuple[dict, dict]:
    """Burstprop's burst probabilities per layer: ``pbar = bbar / e`` (no teaching) and ``p = b / e`` (teaching).

    One burstprop pass (Payeur et al. 2021; reference.md s. 2) with the binary cross-entropy against
    ``target`` as the output's teaching signal (eq. 3); without ``target`` the teaching is switched off
    (target = the model's own output, so ``p = pbar``). ``pbar`` is what the network's feedback alone sets
    in each layer, ``p`` what it sets when the output is taught. Parameter gradients are discarded.

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
        The model.
    audio, visual : torch.Tensor, shape (F, C, H, W)
        Frames (``visual`` None for audio-only models).
    target : array-like, shape (F, bins), optional
        The teaching target (the ideal binary mask).

    Returns
    -------
    pbar, p : dict
        ``{layer: [F, units]}`` (float64, 0..1); both empty when the model does not learn with burstprop,
        ``p`` empty without ``target``.
    """
    import torch
    import torch.nn.functional as F

    if model.learning_rule != "burstprop":
        return {}, {}
    model.eval()
    with torch.enable_grad():
        out = model(audio, visual)
        goal = out.detach() if target is None else torch.as_tensor(np.asarray(target), dtype=out.dtype).reshape(out.shape)
        F.binary_cross_entropy(out, goal).backward()
    model.zero_grad(set_to_none=True)
    states = model.layer_states()
    flat = {k: (s.pbar.reshape(s.pbar.shape[0], -1).double().numpy(), s.p.reshape(s.p.shape[0], -1).double().numpy())
            for k, s in states.items()}
    return {k: v[0] for k, v in flat.items()}, ({k: v[1] for k, v in flat.items()} if target is not None else {})


def feedback_alone(specs, e: dict, pbar: dict, beta: float, alpha: float = 0.0) -> dict:
    """Burstprop's untaught burst probability without the gain ``h(e)``: ``sigma(beta Y bbar + alpha)`` (eqs. 5 and 7
    with ``h = 1``), per layer that gets feedback. The circuit's tied feedback carries ``Y b`` and no ``h(e)``
    (:mod:`circuits.ensembles`), so this is what a perfect circuit's burst probability would follow; its correlation
    with burstprop's ``pbar`` is what the missing gain alone allows.

    Parameters
    ----------
    specs : sequence of rate_bridge.convert.LayerSpec
        The network (``name``, ``kind``, ``weight``, ``sources``, ``in_shape``, ``stride``, ``padding``).
    e, pbar : dict
        ``{layer: [F, units]}``: the rate model's event rates and burstprop's ``pbar`` (:func:`rate_reference`,
        :func:`burst_probs`); ``bbar = pbar e``.
    beta, alpha : float
        The burst probability's slope and offset (eq. 7).

    Returns
    -------
    dict
        ``{layer: [F, units]}`` (float64, 0..1), for every layer an upper layer reads.
    """
    import torch
    import torch.nn.functional as F

    units = {s.name: s.units for s in specs}
    fb = {}
    for s in specs:
        if s.name not in pbar:
            continue
        b = np.asarray(pbar[s.name], float) * np.asarray(e[s.name], float)
        for src, offset in s.sources:
            if src not in units:  # an input: no feedback
                continue
            if s.kind == "dense":
                y = b @ s.weight[:, offset:offset + units[src]]
            else:  # Y acts as the transposed convolution: the vector-Jacobian product of the forward one
                x = torch.zeros((len(b), *s.in_shape), dtype=torch.float64, requires_grad=True)
                out = F.conv2d(x, torch.as_tensor(s.weight), stride=s.stride, padding=s.padding)
                y = torch.autograd.grad(out, x, torch.as_tensor(b).reshape(out.shape))[0].reshape(len(b), -1).numpy()
            fb[src] = fb.get(src, 0.0) + y
    return {k: 1.0 / (1.0 + np.exp(-(beta * v + alpha))) for k, v in fb.items()}
