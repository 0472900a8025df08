"""Convert a trained rate MBURST/Multimodal/Unimodal network into the burst-multiplexing circuit, and read it out.

Mapping (Nengo-style: a rate unit's calibrated transfer function is the spiking layer's measured one,
:mod:`rate_bridge.burstprop.calibrated`). :mod:`circuits.ensembles` builds and runs the circuit from plain
layer specifications; this module maps a trained model onto them (:func:`ensemble_layers`) and reads the
result out (:class:`SpikingRun`):

* each rate unit -> an ensemble of ``n`` cells (conv units: ``n_conv``), event rate ``e_ref e`` (Hz);
* forward weight ``W_ba`` -> depressing synapses onto unit ``b``'s shared somatic current,
  ``weight_pA = i_scale``: the mean current is ``i_scale (W e)_b`` as in ``v = W e + c``; bias
  ``I_bias = i_offset + i_scale c``; the drive saturates softly at ``i_max`` as in the calibrated activation;
* feedback Y (tied, Y = W) -> facilitating synapses onto the lower unit's shared dendritic current,
  ``i_scale_d`` pA per unit of ``Y b``; the dendrites sit at ``I_half`` (burst probability mid-range:
  burstprop's ``u = 0``, alpha = 0) and PV/SOM act on every layer;
* the first layer of each branch gets ``I_eff(i_offset + i_scale (W * x + c))`` by current injection
  (input features are not neurons);
* the output layer (sigmoid in the rate model) is driven with ``I = I_mid + i_scale_out v_out``:
  ``I_mid = (i_offset + i_max)/2`` puts the decision point mid-curve and ``i_scale_out`` maps the
  95th percentile of |v_out| to ``out_current_pA``; the mask is ``E_out > E(I_mid)``, i.e.
  ``v_out > 0`` <=> ``sigmoid(v_out) > 0.5``. Untaught, its dendrites sit at ``I_half`` (burstprop's
  ``pbar_L``) and its feedback subtracts its untaught burst rate at ``v_out = 0`` beyond burstprop's
  (:func:`rate_bridge.teaching.output_burst_offset_hz`); with ``teach`` they get :func:`rate_bridge.teaching.teaching_current` of eq. 3's ``p_L`` for the target (the
  teacher computes eq. 3 as burstprop does, from the target and the rate output).

A model runs in the regime its activation was measured in (:mod:`rate_bridge.regime`); with
``match_interneurons`` each layer's weights onto its PV/SOM are scaled to the calibration's operating point.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from neurons.common import MburstError

from circuits.ensembles import EnsembleConfig, EnsembleLayer
from rate_bridge.burstprop.calibrated import Calibration, calibration_of
from rate_bridge.regime import check_regime, ensemble_cells, interneuron_gains
from rate_bridge.teaching import output_burst_offset_hz, output_rate_hz, teaching_current

__all__ = ["BridgeConfig", "LayerSpec", "network_spec", "ensemble_layers", "SpikingMBURST", "SpikingRun", "run_frames"]


@dataclass(frozen=True)
class BridgeConfig(EnsembleConfig):
    """Conversion settings: the circuit's (:class:`circuits.ensembles.EnsembleConfig`: streamed or settle mode,
    times in ms, circuit parts), cells per unit, the output layer's current (pA) at the 95th percentile of
    ``|v_out|`` and ``teach`` (a second run with the target taught at the output)."""

    n: int = 16  # cells per unit of dense layers (and of the output without n_out)
    n_conv: int = 6  # cells per unit of convolutional layers
    n_out: int | None = None  # cells per output unit (None: n)
    out_current_pA: float = 600.0
    teach: bool = False  # also run with the output taught (burst probabilities against burstprop's p)
    match_interneurons: bool = False  # each layer's weights onto PV/SOM x m_cal / m (rate_bridge.regime.interneuron_gains)
    build_tag: str = "bridge"  # standalone build folder; concurrent processes need different tags

    def validate(self, who: str = "bridge") -> "BridgeConfig":
        """Check the settings; ``who`` prefixes the error.

        Raises
        ------
        MburstError
            ``n``, ``n_conv`` or ``n_out`` not an integer >= 1, invalid times (:meth:`EnsembleConfig.validate`),
            or ``out_current_pA`` <= 0.
        """
        for key in ("n", "n_conv", "n_out"):
            v = getattr(self, key)
            if key == "n_out" and v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise MburstError(f"{who}: {key}={v!r} must be an integer >= 1 (cells per rate unit)")
        super().validate(who)
        if not self.out_current_pA > 0:
            raise MburstError(f"{who}: out_current_pA={self.out_current_pA} must be > 0")
        return self

    def cells_per_unit(self, kind: str, output: bool = False) -> int:
        """Cells of one ensemble of a layer of ``kind`` ('conv2d' or 'dense'); ``output``: the output layer's."""
        if kind == "conv2d":
            return self.n_conv
        return self.n_out if output and self.n_out is not None else self.n

    def check_countable(self, cal: Calibration) -> None:
        """Refuse windows in which even the fastest measured ensemble expects < 1 event.

        Raises
        ------
        MburstError
            When ``r_max n T < 1`` for ``n`` or ``n_conv`` (``r_max``: rate at ``i_max``; ``T``: read-out window).
        """
        r_max = float(cal.rate_hz_of_current(cal.i_max))
        what = "frame_period_ms" if self.mode == "stream" else "t_count_ms"
        for key, n in (("n", self.n), ("n_conv", self.n_conv), ("n_out", self.cells_per_unit("dense", True))):
            expected = r_max * n * self.count_window_ms * 1e-3
            if expected < 1.0:
                raise MburstError(f"bridge: {what}={self.count_window_ms:g} with {key}={n} expects {expected:.2f} events "
                                  f"per ensemble at the top measured rate ({r_max:.1f} Hz): too short to count a spike")


@dataclass
class LayerSpec:
    """One rate layer as numpy: ``weight`` (conv [C_out, C_in, kh, kw] or dense [out, in]), ``bias``
    [C_out or out], shapes, and its ``sources``: ``(layer or input name, offset into the flattened input)``."""

    name: str
    kind: str  # 'conv2d' | 'dense'
    in_shape: tuple
    out_shape: tuple
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0
    sources: list = field(default_factory=list)
    output: bool = False

    @property
    def units(self) -> int:
        """Output units."""
        return int(np.prod(self.out_shape))


INPUTS = ("audio", "visual")


@dataclass
class SpikingRun:
    """The converted network on ``F`` frames, beside the rate model (arrays per layer: [F, units]).

    Attributes
    ----------
    rate_hz, spike_hz : dict
        Event rate (Hz) expected from the rate model (hidden: ``e_ref e``; output: ``E(I_mid +
        i_scale_out v_out)``) and measured in the ensembles (events per cell and second of counting).
    burst_prob, burst_prob_teach : dict
        Ensembles' bursts / events (NaN where no event), without and with teaching (empty without ``teach``).
    rate_burst_prob, rate_burst_prob_teach : dict
        Burstprop's ``pbar`` (no teaching) and ``p`` (the target taught; :func:`rate_bridge.rate_reference.burst_probs`);
        empty without feedback (and without ``teach``).
    mask_rate, mask_spike : numpy.ndarray of bool, shape (F, bins)
        ``sigmoid(v_out) > 0.5`` and ``E_out > out_threshold_hz``.
    out_threshold_hz : float
        Output event rate at ``v_out = 0``.
    counts : dict
        ``{layer: rate_bridge.energy.LayerCounts}`` over the counting windows (interneurons in their layer).
    cells, count_window_s : dict, float
        Pyramidal cells per layer; the counting window of each frame (s).
    wall_build_run_s, wall_decode_s, i_scale_out, target : float, float, float, str
        Wall time (s) of building and running the network and of the read-out; output pA per ``v_out``; Brian2 target.
    ensembles : circuits.ensembles.EnsembleRun
        The run itself, both passes (every population's spike monitor; read it before the next run).
    burst_span : float
        ``p_hi - p_lo`` of the calibrated fit: the circuit's burst-probability range for burstprop's 0..1.
    rate_burst_prob_fb : dict
        Burstprop's untaught burst probability without ``h(e)`` (:func:`rate_bridge.rate_reference.feedback_alone`):
        what the circuit's feedback carries; empty without feedback.
    """

    rate_hz: dict
    spike_hz: dict
    burst_prob: dict
    rate_burst_prob: dict
    mask_rate: np.ndarray
    mask_spike: np.ndarray
    out_threshold_hz: float
    counts: dict
    cells: dict
    count_window_s: float
    wall_build_run_s: float
    wall_decode_s: float
    i_scale_out: float
    target: str
    burst_prob_teach: dict = field(default_factory=dict)
    rate_burst_prob_teach: dict = field(default_factory=dict)
    ensembles: object = None
    burst_span: float = 1.0
    rate_burst_prob_fb: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        """Frames run."""
        return int(self.mask_rate.shape[0])


def network_spec(model) -> tuple[list[LayerSpec], Calibration]:
    """Layer list (forward order, float64 weights) of an AVMaskNet and the calibration of its hidden activation.

    Raises
    ------
    MburstError
        When the network cannot be mapped (not an AVMaskNet, non-calibrated hidden activation, Z weights).
    """
    from rate_bridge.burstprop.models import AVMaskNet

    if not isinstance(model, AVMaskNet):
        raise MburstError(f"bridge: can only map an AVMaskNet, got {type(model).__name__}")
    cfg = model.config
    try:
        cal = calibration_of(cfg.activation)
    except MburstError:
        raise MburstError(f"bridge: hidden activation '{cfg.activation}' has no spiking calibration; train the model "
                          "with --activation calibrated to convert it") from None
    if cfg.use_z:
        raise MburstError("bridge: recurrent Z weights (use_z) are not mapped to spiking synapses; train without them")
    desc = model.describe()["layers"]
    layers = model.burst_layers()
    specs = []
    prev = {"audio_conv1": "audio", "audio_conv2": "audio_conv1", "audio_dense": "audio_conv2",
            "visual_conv1": "visual", "visual_conv2": "visual_conv1", "visual_dense": "visual_conv2"}
    for name, layer in layers.items():
        d = desc[name]
        w = layer.weight.detach().double().numpy()
        b = layer.bias.detach().double().numpy()
        if name == "out":
            srcs = [("audio_dense", 0)]
            if model.visual:
                srcs.append(("visual_dense", cfg.embed))
        else:
            srcs = [(prev[name], 0)]
        if d["kind"] == "conv2d":
            specs.append(LayerSpec(name, "conv2d", tuple(d["in"]), tuple(d["out"]), w, b, d["stride"], d["padding"], srcs))
        else:
            specs.append(LayerSpec(name, "dense", tuple(d["in"]), tuple(d["out"]), w, b, sources=srcs, output=name == "out"))
    return specs, cal


def _input_drive(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    """v = W * x + c of a branch's first layer for frames ``x`` [F, C, H, W] -> [F, units]."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        v = F.conv2d(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(spec.weight),
                     torch.as_tensor(spec.bias), spec.stride, spec.padding)
    return v.reshape(v.shape[0], -1).numpy()


def ensemble_layers(specs, cal: Calibration, cfg: BridgeConfig, inputs: dict, i_scale_out: float,
                    out_dend_pA=None, out_burst_offset_hz: float = 0.0, gains: dict | None = None) -> list:
    """The circuit's layers for these frames.

    Parameters
    ----------
    specs : list of LayerSpec
        From :func:`network_spec`.
    cal : Calibration
        Hidden unit map (pA, Hz).
    cfg : BridgeConfig
        Cells per unit.
    inputs : dict
        ``{'audio': [F, C, H, W], 'visual': [F, C, H, W] or None}`` (numpy).
    i_scale_out : float
        Output current per unit of ``v_out`` (pA).
    out_dend_pA : numpy.ndarray, shape (F, bins), optional
        Dendritic current added to the output's cells in each frame (pA; teaching, :func:`rate_bridge.teaching.teaching_current`).
    out_burst_offset_hz : float
        The output's burst rate that its feedback treats as zero (Hz; :func:`rate_bridge.teaching.output_burst_offset_hz`).
    gains : dict, optional
        ``{layer: factor on its weights onto PV/SOM}`` (:func:`rate_bridge.regime.interneuron_gains`); default 1.

    Returns
    -------
    list of circuits.ensembles.EnsembleLayer
        Forward order; input layers with ``drive_pA`` [F, units], the others with ``bias_pA`` [units] (pA).

    Raises
    ------
    MburstError
        When a layer reads an input that is missing (e.g. no visual frames for a multimodal model).
    """
    i_out_mid = 0.5 * (cal.i_offset + cal.i_max)  # v_out = 0 (mask threshold) sits mid-curve
    layers = []
    for s in specs:
        common = dict(name=s.name, kind=s.kind, out_shape=s.out_shape, cells_per_unit=cfg.cells_per_unit(s.kind, s.output), weight=s.weight,
                      weight_pA=i_scale_out if s.output else cal.i_scale, stride=s.stride, padding=s.padding,
                      interneuron_gain=(gains or {}).get(s.name, 1.0))
        first = s.sources[0][0]
        if first in INPUTS:
            if inputs.get(first) is None:
                raise MburstError(f"bridge: layer '{s.name}' needs the '{first}' input")
            v_in = _input_drive(s, inputs[first])  # [F, units], bias included
            layers.append(EnsembleLayer(**common, drive_pA=cal.effective_current(cal.current_s(v_in))))
        else:
            unit_bias = np.repeat(s.bias, s.units // len(s.bias))  # conv: one bias per channel
            bias = i_out_mid + i_scale_out * unit_bias if s.output else cal.current_s(unit_bias)
            dend = out_dend_pA if s.output else None
            layers.append(EnsembleLayer(**common, bias_pA=bias, sources=tuple(s.sources), dend_pA=dend,
                                        burst_offset_hz=out_burst_offset_hz if s.output else 0.0))
    return layers


class SpikingMBURST:
    """The converted network of a trained model; :meth:`run` gives a :class:`SpikingRun`.

    Raises
    ------
    MburstError
        When the model cannot be mapped (:func:`network_spec`) or the settings are invalid.
    """

    def __init__(self, model, config: BridgeConfig | None = None):
        self.config = (config or BridgeConfig()).validate()
        self.model = model
        self.specs, self.cal = network_spec(model)
        check_regime(self.cal, self.config, model.config.activation)
        self.config.check_countable(self.cal)

    def cells(self) -> dict[str, int]:
        """Pyramidal cells per layer."""
        return {s.name: s.units * self.config.cells_per_unit(s.kind, s.output) for s in self.specs}

    def run(self, audio, visual=None, target=None, progress: bool = True) -> SpikingRun:
        """:func:`run_frames` of this network."""
        return run_frames(self, audio, visual, target, progress=progress)


def run_frames(net: SpikingMBURST, audio, visual=None, target=None, progress: bool = True,
               out_dend_pA=None, lead_in: int = 0) -> SpikingRun:
    """Run the converted network on these frames and read it out against the rate model.

    With ``config.teach`` the frames stream a second time, right after the first pass and in the same run, with
    the output taught ``target`` (eq. 3's ``p_L``, :func:`rate_bridge.teaching.teaching_current`); the counts and event rates are the
    first pass's. The first ``lead_in`` frames stream once before the passes (the circuit settles on them), not read
    out: the arrays returned are the other ``F`` frames' (``run.ensembles`` holds every window).

    Parameters
    ----------
    net : SpikingMBURST
        The converted network.
    audio, visual : array-like, shape (F, C, H, W)
        Features and lip frames (``visual`` None for audio-only models).
    target : array-like, shape (F, bins), optional
        The ideal binary mask of the frames; required with ``config.teach``.
    progress : bool
        Frame progress bar (runtime targets).
    out_dend_pA : array-like, shape (lead_in + 2 F + k, bins), optional
        With ``teach``: the output's dendritic current (pA) in each frame of the run, replacing the default.
    lead_in : int, optional
        Leading frames of ``audio``/``visual``/``target`` (fewer than all).

    Returns
    -------
    SpikingRun
        Both models' rates per layer, burst probabilities, masks, counts (of the run without teaching), wall times.

    Raises
    ------
    MburstError
        No frames, a missing input, ``teach`` without a target, or ``lead_in`` out of range.
    """
    import torch

    from circuits.ensembles import run_ensembles
    from rate_bridge.energy import SpikeLedger
    from rate_bridge.rate_reference import feedback_alone, rate_reference

    cfg, cal = net.config, net.cal
    audio = torch.as_tensor(audio, dtype=torch.float32)
    visual = None if visual is None else torch.as_tensor(visual, dtype=torch.float32)
    if int(audio.shape[0]) < 1:
        raise MburstError("bridge: no frames to run")
    if cfg.teach and target is None:
        raise MburstError("bridge: --teach needs the frames' target mask")
    lead, n = int(lead_in), int(audio.shape[0]) - int(lead_in)
    if not 0 <= lead < lead + n:
        raise MburstError(f"bridge: lead_in={lead_in} must lie in 0..{lead + n - 1} (frames given)")
    ref = rate_reference(net.model, audio[lead:], None if visual is None else visual[lead:],
                         target[lead:] if cfg.teach else None, bursts=cfg.feedback)
    rate_out, e0, i_scale_out = output_rate_hz(cal, cfg, ref.v_out)
    reps = 2 if cfg.teach else 1  # taught: the frames stream a second time, right after the first pass
    inputs = {k: None if x is None else np.concatenate([x[:lead]] + [x[lead:]] * reps).astype(float)
              for k, x in (("audio", audio.numpy()), ("visual", None if visual is None else visual.numpy()))}
    dend = None
    if cfg.teach:  # first pass untaught (the output's dendrites at I_half, burstprop's pbar_L), then taught
        dend = np.vstack([np.zeros((lead + n, ref.v_out.shape[1])),
                          teaching_current(ref.p["out"], net.model.config.pbar, cal)]) \
            if out_dend_pA is None else np.asarray(out_dend_pA, float)
    cells = ensemble_cells(cal, net.model.config.beta)
    offset = output_burst_offset_hz(cal, e0, cells.i_dend_pA, net.model.config.pbar)
    rate = {s.name: rate_out if s.output else ref.e[s.name] * cal.e_ref for s in net.specs}
    gains = interneuron_gains(cal, rate) if cfg.match_interneurons else None
    run = run_ensembles(ensemble_layers(net.specs, cal, cfg, inputs, i_scale_out, dend, offset, gains), cells, cfg,
                        progress=progress)
    teach_p = {k: v[lead + n:] for k, v in run.burst_prob.items()} if cfg.teach else {}
    t1 = time.perf_counter()
    ledger = SpikeLedger(dt=run.dt_s)
    for p in run.populations:
        ledger.add_population(p.name, p.layer, p.n, p.spikes, pyramidal=p.pyramidal, plateau_monitor=p.plateaus)
    for syn in run.synapses:
        ledger.add_synapses(syn.pre, syn.pre_index, syn.pathway, syn.trigger, copies=syn.copies)
    starts = run.window_start_s[lead:lead + n]
    counts = ledger.count(*np.round([starts, starts + run.window_s], 12))  # streamed windows abut
    spike_hz = {k: v[lead:lead + n] for k, v in run.event_rate_hz.items()}
    return SpikingRun(rate, spike_hz, {k: v[lead:lead + n] for k, v in run.burst_prob.items()}, ref.pbar, ref.e["out"] > 0.5,
                      spike_hz["out"] > e0,
                      e0, counts, run.cells, run.window_s, run.wall_s, time.perf_counter() - t1, i_scale_out, run.target,
                      teach_p, ref.p, run, cal.fit.p_hi - cal.fit.p_lo,
                      feedback_alone(net.specs, ref.e, ref.pbar, net.model.config.beta, net.model.config.alpha)
                      if ref.pbar else {})
