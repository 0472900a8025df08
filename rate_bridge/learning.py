"""Learning in spikes: the converted circuit learns with the burst-dependent rule, chunk by chunk, beside burstprop.

Each chunk of ``K`` frames streams through the circuit of :mod:`rate_bridge.convert` twice in one run, as
``mburst bridge --teach`` does: untaught (the rule's moving averages settle on the no-teaching burst probability;
weights do not change), then taught: the output's dendrites get the current that changes its burst rate by
burstprop's ``b - bbar = (p_L - pbar_L) e_L`` (eq. 3's ``p_L``, :func:`burstprop_update`; ``e_ref`` Hz per unit):
its burst probability changes by ``(p_L - pbar_L) e_ref e_L / E`` (:mod:`rate_bridge.teaching`), as its cells fire
at ``E``, not ``e_ref e_L``; shifted by the output's read-out latency in whole frames so that the teaching of frame
``k`` meets the output's response to it. The rule starts ``settle_ms`` into the run (each chunk's network starts
from rest; its PV/SOM take about a second to settle); with the two-pass baselines the chunk's first frames stream
once before the untaught pass for that long (the lead-in), so the rule learns from every frame. During the taught
pass's read-out windows the spiking rule of :mod:`circuits.plasticity` acts on the forward synapses of the chosen
dense layers; :func:`circuits.ensemble_plasticity.ensemble_weight_changes` gives each shared weight's change exactly,
from the recorded events and bursts. The rule's moving averages carry from chunk to chunk. With ``paired``, the
rule's change over the untaught pass of the same frames is subtracted; with ``untaught``, both passes read each
ensemble's burst probability in the untaught window of the same frame as ``Pbar`` (burstprop's ``pbar_t``).

Weights change between chunks, not within one: the circuit's forward synapses are shared currents
(:mod:`circuits.shared_current`), one weight per pair of units standing for every cell pair, which Brian2 cannot
update per unit pair while it runs; and a fixed ``K`` keeps the standalone code's shape, so the rebuild of each
chunk is warm. The rule's weight is the rate model's ``W``: a synapse transmits ``weight_pA W / (e_ref tau_syn n_pre)``
pA per event (:mod:`circuits.ensembles`), so ``dW`` in rule units is ``dW`` of the rate model; bounds
``|W| <= w_bound`` are applied when a chunk's change is added. Every chunk's run uses the configuration's seed: the
same PV/SOM wiring (and background realisation) each time. Biases are cells' constant currents, not synapses:
they do not learn, on either side. ``homeostasis``: :func:`rate_bridge.teaching.dendrite_homeostasis_pA`.

Beside burstprop: a rate model starting from the same weights learns the same layers on the same frames in the same
order by plain SGD, one step per chunk (every frame of it), with ``lr`` per frame matched to the rule's mean field
(:func:`matched_learning_rate`): ``eta E_post (P - Pbar) E_pre tau_pre T`` (:func:`circuits.plasticity.rate_prediction`)
with ``E = e_ref e`` and ``P - Pbar = p - pbar`` over one frame period ``T`` is ``lr (p - pbar) e_post e_pre``.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from neurons.common import MburstError

__all__ = ["check_layers", "matched_learning_rate", "burstprop_update", "teaching_schedule", "circuit_layers",
           "LearnSettings", "LearnState", "learn_chunk", "cosine", "reinit_layers"]


def check_layers(model, layers) -> tuple[str, ...]:
    """The layers to learn, checked: dense layers of ``model``, each once.

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
    layers : iterable of str
        Layer names (``--layers``).

    Returns
    -------
    tuple of str

    Raises
    ------
    MburstError
        None given, a name the model lacks, a repeated name, or a convolutional layer (one line, naming ``--layers``).
    """
    layers = tuple(layers)
    known = model.burst_layers()
    if not layers:
        raise MburstError("--layers: give at least one layer")
    for name in layers:
        if name not in known:
            raise MburstError(f"--layers: the model has no layer '{name}' (it has {', '.join(known)})")
        if known[name].weight.dim() != 2:
            raise MburstError(f"--layers {name}: a convolutional layer; mburst learn trains dense layers only, for now")
    if len(set(layers)) != len(layers):
        raise MburstError(f"--layers: a layer is named twice ({','.join(layers)})")
    return layers


def matched_learning_rate(params, cal, frame_s: float) -> float:
    """The rate model's SGD learning rate per frame matched to the spiking rule (module docstring).

    Parameters
    ----------
    params : circuits.plasticity.BurstPlasticityParams
        ``eta``, ``tau_pre``.
    cal : rate_bridge.burstprop.calibrated.Calibration
        Its ``e_ref`` (Hz per unit of e).
    frame_s : float
        Frame period (s).

    Returns
    -------
    float
        ``eta tau_pre e_ref^2 frame_s``.
    """
    from brian2 import second

    from circuits.plasticity import rate_prediction

    return float(rate_prediction(1.0, 0.0, cal.e_ref, cal.e_ref, float(params.tau_pre / second), params.eta, frame_s))


def burstprop_update(model, audio, visual, target, loss_fn, layers) -> tuple[np.ndarray, dict]:
    """Burstprop's output teaching and its update of ``layers`` on these frames (one burstprop pass of the model).

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
        Any learning rule (switched to burstprop for the pass, then back); weights and ``.grad`` unchanged.
    audio, visual : torch.Tensor, shape (F, 1, H, W)
        Frames (``visual`` None for audio-only models).
    target : torch.Tensor, shape (F, bins)
        Ideal binary mask.
    loss_fn : callable
        ``(e_out, target) -> loss``, a mean over the batch (eq. 3's ``L``).
    layers : sequence of str
        Layers whose update to return.

    Returns
    -------
    p_out : numpy.ndarray, shape (F, bins)
        The output's taught burst probability ``p_L`` (eq. 3).
    updates : dict
        ``{layer: sum over frames of (b - bbar) e_pre^T}`` [out, in] (float64; eq. 8 without the learning rate).
    """
    import torch

    rule, training = model.learning_rule, model.training
    known = model.burst_layers()
    try:
        model.set_learning_rule("burstprop")
        model.eval()
        with torch.enable_grad():
            out = model(audio, visual)
            grads = torch.autograd.grad(loss_fn(out, target), [known[k].weight for k in layers])
        p_out = model.layer_states()["out"].p.double().numpy()
    finally:
        model.set_learning_rule(rule)
        model.train(training)
    n = int(audio.shape[0])  # .grad = -(update_scale / n) sum (b - bbar) e_pre^T (rate_bridge.burstprop.autograd)
    return p_out, {k: -g.double().numpy() * n / known[k].update_scale for k, g in zip(layers, grads)}


def teaching_schedule(p_out, pbar: float, cal, shift: int, scale=1.0, lead_in: int = 0) -> np.ndarray:
    """The output's dendritic current over a chunk's run: zero in the ``lead_in`` frames and the untaught pass, then
    eq. 3's teaching, ``shift`` frames late (pA).

    Parameters
    ----------
    p_out : numpy.ndarray, shape (F, bins)
        ``p_L`` of each frame.
    pbar : float
        ``pbar_L``.
    cal : Calibration
        The fit (:func:`rate_bridge.teaching.teaching_current`).
    shift : int
        The output's read-out latency in frames (>= 0).
    scale : float or numpy.ndarray, shape (F, bins)
        Multiplies the taught change of burst probability (:func:`rate_bridge.teaching.teaching_current`).
    lead_in : int, optional
        Frames before the untaught pass (:func:`rate_bridge.convert.run_frames`).

    Returns
    -------
    numpy.ndarray, shape (lead_in + 2 F + shift, bins)
    """
    from rate_bridge.teaching import teaching_current

    p_out = np.asarray(p_out, float)
    return np.vstack([np.zeros((lead_in + len(p_out) + shift, p_out.shape[1])),
                      teaching_current(p_out, pbar, cal, scale)])


def circuit_layers(net) -> list:
    """The circuit's layers of a converted network, as :mod:`circuits.ensemble_plasticity` reads them (names, shapes,
    cells per unit, sources and weights; no currents).

    Parameters
    ----------
    net : rate_bridge.convert.SpikingMBURST

    Returns
    -------
    list of circuits.ensembles.EnsembleLayer
        Forward order.
    """
    from circuits.ensembles import EnsembleLayer

    cfg = net.config
    return [EnsembleLayer(s.name, s.kind, s.out_shape, cfg.cells_per_unit(s.kind, s.output), s.weight,
                          sources=tuple(s.sources)) for s in net.specs]


@dataclass(frozen=True)
class LearnSettings:
    """What learns and how: ``layers`` (dense), ``params`` (the rule: ``eta``, ``tau_pre``, ``tau_avg``),
    ``w_bound`` (``|W|`` bound), ``lr`` (burstprop's SGD rate per frame, :func:`matched_learning_rate`), the
    circuit's ``bridge`` configuration (:class:`rate_bridge.convert.BridgeConfig`; taught), ``settle_ms``, the
    start of each chunk's run that the rule does not see, and ``baseline``, where the rule's ``Pbar`` comes from:
    ``average``, ``paired`` or ``untaught`` (module docstring); ``homeostasis``, the gain (0: off) of the output
    dendrites' homeostasis between chunks (:func:`rate_bridge.teaching.dendrite_homeostasis_pA`)."""

    layers: tuple
    params: object
    w_bound: float
    lr: float
    bridge: object
    settle_ms: float = 1000.0
    baseline: str = "average"
    homeostasis: float = 0.0


@dataclass
class LearnState:
    """Where learning stands (resumable: plain arrays): ``frames`` done; per layer the accumulated weight change of
    the spiking rule (``dw_spiking``), of burstprop on its own trajectory (``dw_burstprop``) and of burstprop at the
    spiking model's weights (``dw_burstprop_same``, each chunk), draws of it from spike counts
    (``dw_counted`` [draws, units, inputs], :mod:`rate_bridge.update_ceiling`), per chunk how the ensembles answered
    the teaching (``teaching``, :func:`rate_bridge.teaching.teaching_response`); the rule's ``averages``; update ``counts``; the
    ``curve`` of test F1 ``{frames, f1_spiking, f1_burstprop}``; ``wall_s`` of the circuit's runs; the output dendrites'
    homeostatic current ``dend_offset_pA`` (pA, added to every frame of a chunk's run) and per chunk the offset it ran
    with, the output's untaught burst probability and what its rule received of the asked up- and down-teaching
    (``homeostasis``: ``offset_pA``, ``pbar_untaught``, ``delivered``, :func:`rate_bridge.teaching.teaching_response`);
    the rule's ``eta`` of each chunk (``etas``: a run extended with another ``--eta`` learns on at that rate)."""

    frames: int = 0
    dw_spiking: dict = field(default_factory=dict)
    dw_burstprop: dict = field(default_factory=dict)
    dw_burstprop_same: dict = field(default_factory=dict)
    dw_circuit_rates: dict = field(default_factory=dict)
    dw_counted: dict = field(default_factory=dict)
    teaching: dict = field(default_factory=dict)
    averages: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    curve: list = field(default_factory=list)
    wall_s: float = 0.0
    dend_offset_pA: float = 0.0
    homeostasis: list = field(default_factory=list)
    etas: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain dict (averages as ``{layer: (ebar_hz, bbar_hz)}``) for saving."""
        d = dataclasses.asdict(self)
        d["averages"] = {k: (v.ebar_hz, v.bbar_hz) for k, v in self.averages.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LearnState":
        """The state saved by :meth:`to_dict`."""
        from circuits.ensemble_plasticity import RuleAverages

        return cls(**{**d, "averages": {k: RuleAverages(*v) for k, v in d["averages"].items()}})


def _add(acc: dict, name: str, value: np.ndarray) -> None:
    acc[name] = acc.get(name, 0.0) + value


def _apply(model, updates: dict, bound: float) -> None:
    import torch

    layers = model.burst_layers()
    with torch.no_grad():
        for name, dw in updates.items():
            w = layers[name].weight
            w.copy_((w.double() + torch.as_tensor(dw)).clamp(-bound, bound).to(w.dtype))


def learn_chunk(model_spk, model_bp, audio, visual, target, loss_fn, settings: LearnSettings, state: LearnState,
                progress: bool = False) -> LearnState:
    """One chunk of learning (module docstring): the circuit of ``model_spk`` learns by the spiking rule, ``model_bp``
    by burstprop; both models' chosen weights change in place; ``state`` is updated and returned.

    Parameters
    ----------
    model_spk, model_bp : rate_bridge.burstprop.models.AVMaskNet
        The models learning in spikes and by burstprop (the same architecture).
    audio, visual, target : torch.Tensor
        The chunk's frames ``[K, 1, H, W]`` (``visual`` None for audio-only models) and ideal binary mask ``[K, bins]``.
    loss_fn : callable
        ``(e_out, target) -> loss`` (mean over the batch): the teaching of eq. 3.
    settings : LearnSettings
    state : LearnState
    progress : bool
        The circuit's frame bar.

    Returns
    -------
    LearnState

    Raises
    ------
    MburstError
        When the model cannot be mapped onto the circuit (:class:`rate_bridge.convert.SpikingMBURST`), or (baseline
        ``average``) the untaught pass is no longer than ``settle_ms``.
    """
    from circuits.ensemble_plasticity import ensemble_weight_changes
    from brian2 import second

    from rate_bridge.convert import SpikingMBURST, run_frames
    from rate_bridge.rate_reference import rate_reference
    from rate_bridge.teaching import circuit_rate_update, dendrite_homeostasis_pA, output_rate_hz, teaching_response
    from rate_bridge.update_ceiling import counted_draws

    cfg, frames = settings.bridge, int(audio.shape[0])
    if settings.baseline == "average" and not 0 <= settings.settle_ms < frames * cfg.t_frame_ms:
        raise MburstError(f"--chunk {frames}: the untaught pass ({frames} x {cfg.t_frame_ms:g} ms) must outlast the "
                          f"circuit's settling (--settle {settings.settle_ms:g} ms)")
    net = SpikingMBURST(model_spk, cfg)
    p_out, same = burstprop_update(model_spk, audio, visual, target, loss_fn, settings.layers)
    states = model_spk.layer_states()
    shift = int(round(cfg.readout_latency_ms / cfg.t_frame_ms))
    ref = rate_reference(model_spk, audio, visual)
    counted = counted_draws(states, ref.e, net.specs, settings.layers,
                            {s.name: cfg.cells_per_unit(s.kind, s.output) for s in net.specs},
                            net.cal.e_ref, cfg.t_frame_ms * 1e-3, float(settings.params.tau_pre / second),
                            (cfg.seed, state.frames))
    rate_hz = output_rate_hz(net.cal, cfg, ref.v_out)[0]  # the output's cells fire at E: teach b - bbar in Hz
    # two-pass baselines: the chunk's first frames lead in for the settling (windows of frame k start at k T or
    # later), so the rule learns from every frame, as burstprop beside it does
    lead = int(np.ceil(settings.settle_ms / cfg.t_frame_ms - 1e-9)) if settings.baseline != "average" else 0
    teach = teaching_schedule(p_out, model_spk.config.pbar, net.cal, shift, net.cal.e_ref * ref.e["out"] / rate_hz,
                              lead) + state.dend_offset_pA
    idx = np.r_[np.arange(lead) % frames, np.arange(frames)]
    run = run_frames(net, audio[idx], None if visual is None else visual[idx], target[idx], progress=progress,
                     out_dend_pA=teach, lead_in=lead)
    spk = ensemble_weight_changes(run.ensembles, circuit_layers(net), settings.layers, settings.params, state.averages,
                                  lead + frames, settings.settle_ms * 1e-3, settings.baseline, lead)
    resp = teaching_response(run.ensembles, states, {*settings.layers, "out"}, frames, lead, net.cal.e_ref)
    for name in settings.layers:
        state.teaching.setdefault(name, []).append(resp[name])
    p_out_u, reach = resp["out"]["pbar_untaught"], 3 * net.cal.fit.width  # the fit's reach
    state.homeostasis.append({"offset_pA": state.dend_offset_pA, "pbar_untaught": p_out_u,
                              "delivered": [resp["out"]["delivered_up"], resp["out"]["delivered_down"]]})
    step = dendrite_homeostasis_pA(p_out_u, net.cal, settings.homeostasis)
    state.dend_offset_pA = float(np.clip(state.dend_offset_pA + step, -reach, reach))
    rates = circuit_rate_update(run, net.specs, settings.layers)
    _, own = burstprop_update(model_bp, audio, visual, target, loss_fn, settings.layers)
    _apply(model_spk, {k: v[0] for k, v in spk.items()}, settings.w_bound)
    _apply(model_bp, {k: settings.lr * v for k, v in own.items()}, settings.w_bound)
    for name in settings.layers:
        _add(state.dw_spiking, name, spk[name][0])
        _add(state.dw_burstprop, name, settings.lr * own[name])
        _add(state.dw_burstprop_same, name, settings.lr * same[name])
        _add(state.dw_circuit_rates, name, rates[name])
        _add(state.dw_counted, name, counted[name])
        tally = state.counts.setdefault(name, {})
        for key, value in spk[name][1].items():
            tally[key] = tally.get(key, 0) + value
    state.etas.append(float(settings.params.eta))
    state.frames += frames
    state.wall_s += float(run.wall_build_run_s)
    return state


def cosine(a, b) -> float:
    """Cosine similarity of two arrays.

    Parameters
    ----------
    a, b : array_like
        Any shapes with the same number of elements (flattened).

    Returns
    -------
    float
        In [-1, 1]; NaN when either is zero.
    """
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def reinit_layers(model, layers, seed: int):
    """A copy of ``model`` with ``layers`` re-initialised (their own initialisation, seeded): a poor start.

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
    layers : iterable of str
        Layer names.
    seed : int
        Torch seed of the initialisation.

    Returns
    -------
    rate_bridge.burstprop.models.AVMaskNet
        The copy (weights and biases of ``layers`` redrawn).
    """
    import torch

    model = copy.deepcopy(model)
    torch.manual_seed(seed)
    for name in layers:
        model.burst_layers()[name].reset_parameters()
    return model
