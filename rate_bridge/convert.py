"""Convert a trained rate MBURST/Multimodal/Unimodal network into a Brian2 network of pyramidal cells.

Mapping (issue 6; Nengo-style: a rate unit's calibrated transfer function is the
spiking population's measured one, :mod:`rate_bridge.burstprop.calibrated`):

* each rate unit -> an *ensemble* of ``n`` two-compartment pyramidal cells
  (:mod:`neurons.pyramidal` equations, Payeur Poisson background, the fit's fixed
  dendritic current); conv units use ``n_conv`` cells. The cell's event rate estimates
  ``e_ref * e`` (Hz);
* forward weight ``W_ba`` -> current-based somatic synapses from every cell of ensemble
  ``a`` onto every cell of ensemble ``b``, transmitting on the pre cell's online *events*
  (16 ms rule, so bursts do not double the forward signal); the jump of ``I_fwd`` per event
  is ``q = i_scale W_ba / (e_ref tau_syn n_a)``, so the mean current is
  ``sum_a i_scale W_ba E_a / e_ref = i_scale (W e)_b`` as in ``v = W e + c``
  (``dI_fwd/dt = -I_fwd/tau_syn``); the bias is a constant ``I_bias = i_offset + i_scale c``.
  All cells of ensemble ``b`` receive the same synapses, so their synaptic current is one
  variable per unit (a ``cur_<layer>`` group the cells link to): the same dynamics as
  ``n_b`` identical copies, at ``1/n_b`` of the synaptic work. The energy ledger still counts
  every one of the ``n_b`` cell synapses;
* each cell's somatic drive ``I = I_bias + I_fwd`` saturates softly at ``i_max`` as in the
  calibrated activation, ``I_ext_s = i_max - i_soft softplus((i_max - I)/i_soft)`` (synaptic
  saturation; computed once per unit in ``cur_<layer>``): without it, cells driven past the
  measured sweep keep speeding up where the rate model's units have saturated;
* convolutions -> explicit sparse connectivity (``Synapses.connect(i=..., j=...)`` over
  the kernel taps inside the image, zero padding dropped, stride honoured);
* the first layer of each branch gets its drive ``i_offset + i_scale (W * x + c)`` by current
  injection from the features (a ``TimedArray`` over frames): input features are not
  neurons;
* feedback weights Y (``feedback=True``) -> dendritic STF synapses (Tsodyks-Markram,
  :data:`neurons.params.STF`, :func:`neurons.synapses.connect`) from each layer's cells onto
  the dendrites of the layer below, AMPA for Y > 0 and GABA for Y < 0, weight
  ``fb_gain |Y| / max|Y|`` in dendritic leak units, transmitting every spike (facilitation
  makes them pass the burst rate);
* PV/SOM per layer (``interneurons=True``, as in :mod:`circuits.microcircuit`): PV cells get
  STD input from the layer's pyramidal cells and inhibit their somata; SOM cells get STF
  input and inhibit their dendrites (weights of reference.md s. 3 at p = 0.05);
* the output layer (sigmoid in the rate model) is a pyramidal ensemble driven with
  ``I = I_mid + i_scale_out v_out``: ``I_mid = (i_offset + i_max)/2`` puts the decision point
  mid-curve and ``i_scale_out`` maps the 95th percentile of |v_out| to ``out_current_pA``; the
  mask is ``E_out > E(I_mid)``, i.e. ``v_out > 0`` <=> ``sigmoid(v_out) > 0.5``;
* a model trained with ``activation='calibrated-quiet'`` (:mod:`rate_bridge.burstprop.calibrated`) runs in
  the regime it was measured in: no Poisson background, the ensemble's cells offset by
  :func:`neurons.transfer_fit.cell_offsets` and started at random potentials.

Inference is frame by frame: frame k is presented during ``[k T, (k+1) T)`` with
``T = t_settle + t_count``; events are counted in the last ``t_count``. Between frames the
state settles (default; adaptation stays near its steady state, as in the measured fit)
or is reset (``reset=True``).

Defaults off: ``feedback`` and ``interneurons`` change the cells' operating point away from
the calibration (measured without them), so the equivalence study runs without them and
reports the difference when they are switched on.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from neurons.common import MburstError

from rate_bridge.burstprop.calibrated import Calibration, calibration_of

__all__ = ["BridgeConfig", "LayerSpec", "network_spec", "conv_pairs", "dense_pairs", "SpikingMBURST", "run_frames"]


@dataclass(frozen=True)
class BridgeConfig:
    """Conversion settings (times in ms, currents in pA)."""

    n: int = 16  # cells per unit of dense and output layers
    n_conv: int = 6  # cells per unit of convolutional layers
    t_settle_ms: float = 100.0
    t_count_ms: float = 250.0
    dt_ms: float = 0.1
    tau_syn_ms: float = 80.0
    out_current_pA: float = 600.0
    background: bool = True
    reset: bool = False
    feedback: bool = False
    fb_gain: float = 0.37
    interneurons: bool = False
    target: str = "cpp_standalone"
    threads: int = 0
    seed: int = 0
    build_tag: str = "bridge"  # standalone build folder; concurrent processes need different tags

    def validate(self) -> "BridgeConfig":
        for key in ("n", "n_conv"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise MburstError(f"bridge: {key}={v!r} must be an integer >= 1 (cells per rate unit)")
        if not self.dt_ms > 0 or not self.tau_syn_ms > 0:
            raise MburstError(f"bridge: dt_ms={self.dt_ms} and tau_syn_ms={self.tau_syn_ms} must be > 0")
        if self.t_settle_ms < 0:
            raise MburstError(f"bridge: t_settle_ms={self.t_settle_ms} must be >= 0")
        if self.t_count_ms < 16.0:
            raise MburstError(f"bridge: t_count_ms={self.t_count_ms} ms is too short to count a spike as an event "
                              "(the 16 ms burst rule needs a counting window >= 16 ms)")
        if not self.out_current_pA > 0:
            raise MburstError(f"bridge: out_current_pA={self.out_current_pA} must be > 0")
        return self

    def check_countable(self, cal: Calibration) -> None:
        """Refuse windows in which even the fastest measured ensemble expects < 1 event."""
        r_max = float(cal.rate_hz_of_current(cal.i_max))
        for key, n in (("n", self.n), ("n_conv", self.n_conv)):
            expected = r_max * n * self.t_count_ms * 1e-3
            if expected < 1.0:
                raise MburstError(f"bridge: t_count_ms={self.t_count_ms} with {key}={n} expects {expected:.2f} events "
                                  f"per ensemble at the top measured rate ({r_max:.1f} Hz): too short to count a spike")

    @property
    def t_frame_ms(self) -> float:
        return self.t_settle_ms + self.t_count_ms


@dataclass
class LayerSpec:
    """One rate layer as the bridge sees it."""

    name: str
    kind: str  # 'conv2d' | 'dense'
    in_shape: tuple
    out_shape: tuple
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0
    sources: list = field(default_factory=list)  # [(layer name or input name, offset into flattened input)]
    output: bool = False

    @property
    def units(self) -> int:
        return int(np.prod(self.out_shape))


def network_spec(model) -> tuple[list[LayerSpec], Calibration]:
    """Layer list (in forward order) of an AVMaskNet, and the calibration of its hidden activation.

    Raises MburstError when the network cannot be mapped (non-calibrated hidden activation,
    recurrent Z weights, unknown structure).
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


def conv_pairs(in_shape, weight: np.ndarray, stride: int, padding: int):
    """Explicit connectivity of a 2-D convolution: ``(pre_unit, post_unit, w)`` over the taps inside the image.

    Units are flattened C x H x W (torch order). Zero-padding taps have no presynaptic unit and are dropped.
    """
    c_in, h, w_in = in_shape
    c_out, c_in2, kh, kw = weight.shape
    if c_in2 != c_in:
        raise MburstError(f"conv_pairs: weight has {c_in2} input channels, input has {c_in}")
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w_in + 2 * padding - kw) // stride + 1
    oc, oy, ox, ic, ky, kx = np.meshgrid(np.arange(c_out), np.arange(oh), np.arange(ow), np.arange(c_in),
                                         np.arange(kh), np.arange(kw), indexing="ij")
    iy = oy * stride - padding + ky
    ix = ox * stride - padding + kx
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w_in)
    pre = (ic * h + iy) * w_in + ix
    post = (oc * oh + oy) * ow + ox
    wv = weight[oc, ic, ky, kx]
    return pre[ok].astype(np.int64), post[ok].astype(np.int64), wv[ok].astype(float)


def dense_pairs(weight: np.ndarray, offset: int = 0, n_in: int | None = None):
    """All (pre, post, w) of a dense layer restricted to inputs ``[offset, offset + n_in)``."""
    n_out, n_total = weight.shape
    n_in = n_total - offset if n_in is None else n_in
    post, pre = np.meshgrid(np.arange(n_out), np.arange(n_in), indexing="ij")
    wv = weight[:, offset:offset + n_in]
    return pre.ravel().astype(np.int64), post.ravel().astype(np.int64), wv.ravel().astype(float)


def expand_pre_cells(pre, post, w, n_pre: int):
    """Unit pairs -> synapses from every cell of pre unit a onto post unit b's shared current.

    Returns (i, j, w_cell): pre cell ``i``, post *unit* ``j`` and ``w_cell = w / n_pre`` (so the
    summed drive equals ``w`` times the ensemble-mean rate).
    """
    r = np.arange(n_pre)
    i = (pre[:, None] * n_pre + r[None, :]).ravel()
    j = np.repeat(post, n_pre)
    return i, j, np.repeat(w / n_pre, n_pre)


def _input_drive(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    """v = W * x + c of a branch's first layer for frames ``x`` [F, C, H, W] -> [F, units]."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        v = F.conv2d(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(spec.weight),
                     torch.as_tensor(spec.bias), spec.stride, spec.padding)
    return v.reshape(v.shape[0], -1).numpy()


def rate_reference(model, audio, visual, feedback: bool = False) -> dict:
    """Rate model per layer on the frames: ``e`` (hidden: calibrated e; out: sigmoid), ``v_out`` and, with
    ``feedback``, burstprop's no-teaching ``pbar`` (:func:`feedback_burst_prob`)."""
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
    return {"e": acts, "v_out": v_out, "pbar": feedback_burst_prob(model, audio, visual) if feedback else {}}


def feedback_burst_prob(model, audio, visual) -> dict:
    """Burstprop's no-teaching burst probability ``pbar = bbar / e`` per layer [F, units] (empty for backprop).

    One burstprop pass with the output's teaching signal switched off (target = the model's own
    output, so ``p_L = pbar_L``): what the network's feedback alone sets in each layer, the quantity
    the spiking network's dendrites see when its feedback synapses are on. Parameter gradients of
    the pass are discarded."""
    import torch
    import torch.nn.functional as F

    if model.learning_rule != "burstprop":
        return {}
    model.eval()
    with torch.enable_grad():
        out = model(audio, visual)
        F.binary_cross_entropy(out, out.detach()).backward()
    model.zero_grad(set_to_none=True)
    return {k: s.pbar.reshape(s.pbar.shape[0], -1).double().numpy() for k, s in model.layer_states().items()}


class SpikingMBURST:
    """The converted network. ``run(audio, visual) -> result dict`` (see :func:`run_frames`)."""

    def __init__(self, model, config: BridgeConfig | None = None):
        self.config = (config or BridgeConfig()).validate()
        self.model = model
        self.specs, self.cal = network_spec(model)
        self.config.check_countable(self.cal)

    def cells(self) -> dict[str, int]:
        """Pyramidal cells per layer."""
        return {s.name: s.units * (self.config.n_conv if s.kind == "conv2d" else self.config.n) for s in self.specs}

    def run(self, audio, visual=None, progress: bool = True) -> dict:
        return run_frames(self, audio, visual, progress=progress)


def _group_equations(params, input_layer: bool) -> str:
    from neurons.pyramidal import pyramidal_equations

    eqs = pyramidal_equations(params)
    drive = "I_ext_s = " + ("i_in(t, unit)" if input_layer else "I_sat") + " + I_off : amp"
    extra = "" if input_layer else "\nI_sat : amp (linked)"
    eqs = eqs.replace("I_ext_s : amp", drive + extra + "\nI_off : amp (constant)\nunit : integer (constant)"
                      "\nin_plateau : 1")
    if drive not in eqs:  # the neurons/ equations changed shape
        raise MburstError("bridge: neurons.pyramidal equations have no 'I_ext_s : amp' line to extend")
    return eqs


_X_SAT = "(i_max - I_bias - I_fwd) / i_soft"


def _layer_group(name: str, n_cells: int, n_per: int, params, input_layer: bool, namespace: dict, dt):
    """A pyramidal NeuronGroup (neurons.pyramidal model, its reset and online events) with a forward current."""
    from brian2 import NeuronGroup, second

    from neurons.params import SYNAPSE_PARAMS
    from neurons.pyramidal import _RESET

    ns = params.namespace()
    ns.update(SYNAPSE_PARAMS.namespace())
    ns.update(namespace)
    spike = "v_s > theta"
    is_event = "t - t_spike > burst_isi - 0.5*dt"
    g = NeuronGroup(n_cells, _group_equations(params, input_layer), threshold=spike, reset=_RESET, method="euler",
                    events={"event": f"{spike} and {is_event}",
                            "burst": f"{spike} and not ({is_event}) and in_burst < 0.5",
                            "plateau": "v_d > E_d and in_plateau < 0.5",
                            "plateau_end": "v_d < E_d and in_plateau > 0.5"},
                    namespace=ns, name=f"pyr_{name}", dt=dt)
    g.run_on_event("plateau", "in_plateau = 1")
    g.run_on_event("plateau_end", "in_plateau = 0")
    g.v_s = params.E_L
    g.v_d = params.E_L
    g.theta = params.theta_0
    g.t_spike = -1 * second
    g.unit = np.arange(n_cells) // n_per
    return g


def run_frames(net: SpikingMBURST, audio, visual=None, progress: bool = True) -> dict:
    """Build the Brian2 network for these frames, run it, and decode.

    Returns ``{'rate': {layer: Hz [F, units]}, 'spike': {layer: Hz [F, units]}, 'burst_prob':
    {layer: [F, units] (nan where no event)}, 'mask_rate', 'mask_spike' [F, bins] (bool),
    'counts': {layer: LayerCounts over the counting windows}, 'frames', 'cells', 'wall_s':
    {'build_run', 'decode'}, 'i_scale_out', 'target'}``.
    """
    from brian2 import (EventMonitor, Network, NeuronGroup, SpikeMonitor, Synapses, TimedArray, defaultclock,
                        linked_var, ms, pA)
    from brian2 import seed as brian_seed

    from neurons.bursts import detect_population
    from neurons.device import use_target
    from neurons.inputs import payeur_background
    from neurons.params import PyramidalParams
    from neurons.transfer_fit import cell_offsets

    from rate_bridge.energy import SpikeLedger

    cfg, cal, specs = net.config, net.cal, net.specs
    import torch

    audio = torch.as_tensor(audio, dtype=torch.float32)
    visual = None if visual is None else torch.as_tensor(visual, dtype=torch.float32)
    n_frames = int(audio.shape[0])
    if n_frames < 1:
        raise MburstError("bridge: no frames to run")
    ref = rate_reference(net.model, audio, visual, feedback=cfg.feedback)
    q95 = float(np.percentile(np.abs(ref["v_out"]), 95)) or 1.0
    i_scale_out = min(cal.i_scale, cfg.out_current_pA / q95)
    i_out_mid = 0.5 * (cal.i_offset + cal.i_max)  # v_out = 0 (mask threshold) sits mid-curve

    t0 = time.perf_counter()
    dt = cfg.dt_ms * ms
    t_frame = cfg.t_frame_ms * ms
    chosen = use_target(cfg.target, threads=cfg.threads, tag=cfg.build_tag,
                        n_neurons=sum(net.cells().values()), duration=n_frames * t_frame)
    defaultclock.dt = dt
    brian_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = PyramidalParams()
    i_d = float(cal.fit.meta.get("I_d_fixed_for_event_rate", 100.0))
    groups, objects, ledger, deferred = {}, [], SpikeLedger(dt=cfg.dt_ms * 1e-3), []
    inputs = {"audio": audio.double().numpy(), "visual": None if visual is None else visual.double().numpy()}
    for s in specs:
        n_per = cfg.n_conv if s.kind == "conv2d" else cfg.n
        scale = i_scale_out if s.output else cal.i_scale
        input_layer = s.sources[0][0] in inputs
        ns = {"tau_syn": cfg.tau_syn_ms * ms, "i_max": cal.i_max * pA, "i_soft": cal.i_soft * pA}
        if input_layer:
            if inputs[s.sources[0][0]] is None:
                raise MburstError(f"bridge: layer '{s.name}' needs the '{s.sources[0][0]}' input")
            v_in = _input_drive(s, inputs[s.sources[0][0]])  # [F, units], bias included
            i_in = cal.effective_current(cal.current_s(v_in))  # constant within a frame: saturated here
            ns["i_in"] = TimedArray(np.vstack([i_in, np.zeros((1, s.units))]) * pA, dt=t_frame)
        g = _layer_group(s.name, s.units * n_per, n_per, params, input_layer, ns, dt)
        g.I_ext_d = i_d * pA
        g.I_off = np.tile(cell_offsets(n_per, cal.offset_spread), s.units) * pA
        if cal.quiet:  # deterministic cells: random initial potentials keep an ensemble's cells out of step
            g.v_s = params.E_L + (params.theta_0 - params.E_L) * rng.random(len(g))
        if not input_layer:  # the ensembles' shared synaptic current and its saturated drive
            unit_bias = np.repeat(s.bias, s.units // len(s.bias))  # conv: one bias per channel
            cur = NeuronGroup(s.units, "dI_fwd/dt = -I_fwd/tau_syn : amp\nI_bias : amp (constant)\nI_sat : amp",
                              method="exact", namespace=ns, name=f"cur_{s.name}", dt=dt)
            cur.I_bias = (i_out_mid + i_scale_out * unit_bias if s.output else cal.current_s(unit_bias)) * pA
            cur.run_regularly(f"I_sat = i_max - i_soft * (clip({_X_SAT}, 0, inf) + log(1 + exp(-abs({_X_SAT}))))",
                              when="after_synapses", name=f"cur_{s.name}_saturation")
            g.I_sat = linked_var(cur, "I_sat", index=np.arange(len(g)) // n_per)
            objects.append(cur)
        if cfg.reset:
            g.run_regularly("v_s = E_L\nv_d = E_L\nw_s = 0*amp\nw_d = 0*amp\ntheta = theta_0", dt=t_frame, when="start")
            if not input_layer:
                cur.run_regularly("I_fwd = 0*amp", dt=t_frame, when="start")
        mon = SpikeMonitor(g, name=f"spk_{s.name}")
        pmon = EventMonitor(g, "plateau", name=f"plat_{s.name}", record=True)
        objects += [g, mon, pmon]
        if cfg.background and not cal.quiet:
            objects += payeur_background(g, "pyramidal")
        groups[s.name] = (g, n_per, s)
        ledger.add_population(s.name, s.name, len(g), mon, pyramidal=True, plateau_monitor=pmon)
        for src, offset in s.sources:
            if src in inputs:
                continue
            pg, pn, ps = groups[src]
            if s.kind == "conv2d":
                pre, post, w = conv_pairs(ps.out_shape, s.weight, s.stride, s.padding)
            else:
                pre, post, w = dense_pairs(s.weight, offset, ps.units)
            keep = w != 0
            i, j, wc = expand_pre_cells(pre[keep], post[keep], w[keep], pn)
            q = scale * wc / (cal.e_ref * cfg.tau_syn_ms * 1e-3)  # pA * s -> jump in pA
            syn = Synapses(pg, cur, model="q_syn : amp (constant)", on_pre="I_fwd_post += q_syn",
                           on_event={"pre": "event"}, name=f"fwd_{src}_{s.name}")
            syn.connect(i=i, j=j)
            syn.q_syn = q * pA
            objects.append(syn)
            ledger.add_synapses(src, i, "forward", "event", copies=n_per)
            if cfg.feedback:
                objects += _feedback(g, pg, pre[keep], post[keep], w[keep], n_per, pn, cfg, ledger, s.name, src)
        if cfg.interneurons:
            objects += _interneurons(g, s.name, ledger, rng, deferred)
    network = Network(*objects)
    t_total = n_frames * t_frame
    if chosen.endswith("_standalone") or not progress:
        network.run(t_total, namespace={})
    else:
        from tqdm import tqdm

        for _ in tqdm(range(n_frames), desc=f"spiking frames ({chosen})", unit="frame"):
            network.run(t_frame, namespace={})
    t1 = time.perf_counter()

    # ---------------------------------------------------------------- decode
    starts = np.arange(n_frames) * cfg.t_frame_ms * 1e-3 + cfg.t_settle_ms * 1e-3
    t_count = cfg.t_count_ms * 1e-3
    rate, spike, pburst = {}, {}, {}
    for name, (g, n_per, s) in groups.items():
        mon = ledger.pops[name].monitor
        det = detect_population(np.asarray(mon.i[:]), np.asarray(mon.t[:]))
        ev = _bin(det.event_i // n_per, det.event_t, starts, t_count, s.units)
        bu = _bin(det.burst_i // n_per, det.burst_onset_t, starts, t_count, s.units)
        spike[name] = ev / (n_per * t_count)
        with np.errstate(invalid="ignore", divide="ignore"):
            pburst[name] = np.where(ev > 0, bu / np.maximum(ev, 1), np.nan)
        if s.output:
            rate[name] = cal.rate_hz_of_current(i_out_mid + i_scale_out * ref["v_out"])
        else:
            rate[name] = ref["e"][name] * cal.e_ref
    for pre_name, syn, pathway in deferred:
        ledger.add_synapses(pre_name, np.asarray(syn.i[:]), pathway, "spike")
    counts = ledger.count(starts, starts + t_count)
    e0 = float(cal.rate_hz_of_current(i_out_mid))
    t2 = time.perf_counter()
    return {
        "rate": rate, "spike": spike, "burst_prob": pburst, "rate_burst_prob": ref["pbar"],
        "mask_rate": ref["e"]["out"] > 0.5, "mask_spike": spike["out"] > e0, "out_threshold_hz": e0,
        "counts": counts, "frames": n_frames, "cells": net.cells(), "count_window_s": t_count,
        "wall_s": {"build_run": t1 - t0, "decode": t2 - t1}, "i_scale_out": i_scale_out, "target": chosen,
        "config": asdict(cfg), "calibration": {"i_scale": cal.i_scale, "e_ref": cal.e_ref},
    }


def _bin(unit, t, starts, width, n_units):
    """Counts [F, units] of (unit, t) inside each window ``[start, start + width)``."""
    out = np.zeros((len(starts), n_units))
    k = np.searchsorted(starts, t, side="right") - 1
    ok = (k >= 0) & (t < starts[np.clip(k, 0, None)] + width - 1e-12)
    np.add.at(out, (k[ok], unit[ok]), 1)
    return out


def _feedback(post_group, pre_group, pre_u, post_u, w, n_post, n_pre, cfg, ledger, name, src):
    """Feedback Y (= W, tied) from ``post_group`` (layer above) onto ``pre_group`` dendrites, STF."""
    from neurons.params import STF
    from neurons.synapses import connect

    objs = []
    w_max = float(np.max(np.abs(w))) or 1.0
    # one cell of each upper ensemble to one cell of each lower ensemble (sparse, K = 1)
    i = post_u * n_post
    j = pre_u * n_pre
    for receptor, sel in (("ampa", w > 0), ("gaba", w < 0)):
        if not sel.any():
            continue
        syn = connect(post_group, pre_group, STF, target="dendrite", receptor=receptor, weight=0.0,
                      i=i[sel], j=j[sel], name=f"fb_{name}_{src}_{receptor}")
        syn.w_syn = cfg.fb_gain * np.abs(w[sel]) / w_max * pre_group.namespace["gL_d"]
        objs.append(syn)
        ledger.add_synapses(name, i[sel], "feedback", "spike")
    return objs


def _interneurons(g, name, ledger, rng, deferred):
    """PV (soma, STD in / GABA out) and SOM (dendrite, STF in / GABA out) for one layer, p = 0.05.

    Random connectivity is known only after the run in standalone mode: synapses go to ``deferred``."""
    from brian2 import SpikeMonitor

    from neurons.inputs import payeur_background
    from neurons.interneurons import pv_group, som_group
    from neurons.params import STD, STF
    from neurons.synapses import connect

    n_i = max(1, len(g) // 4)
    pv, som = pv_group(n_i, name=f"pv_{name}"), som_group(n_i, name=f"som_{name}")
    objs = [pv, som, *payeur_background(pv, "pv"), *payeur_background(som, "som")]
    for grp in (pv, som):
        mon = SpikeMonitor(grp, name=f"spk_{grp.name}")
        objs.append(mon)
        ledger.add_population(grp.name, name, len(grp), mon)
    p = min(1.0, max(0.05, 4.0 / len(g)))
    wiring = [(g, pv, STD, "soma", "ampa", 0.05, name, "interneuron"),
              (pv, g, None, "soma", "gaba", 0.07, pv.name, "interneuron"),
              (g, som, STF, "soma", "ampa", 0.3, name, "interneuron"),
              (som, g, None, "dendrite", "gaba", 0.035, som.name, "interneuron")]
    for pre, post, stp, target, receptor, w, pre_name, pathway in wiring:
        syn = connect(pre, post, stp, target=target, receptor=receptor, p=p, weight=w,
                      seed=int(rng.integers(1 << 30)), name=f"{pre.name}_{post.name}_{receptor}")
        objs.append(syn)
        deferred.append((pre_name, syn, pathway))
    return objs
