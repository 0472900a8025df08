"""Energy accounting: device costs, MAC counts of rate models, spike/synaptic-event ledgers.

Counting conventions (``shared/design/reference.md`` s. 4):

* a *synaptic op* is one presynaptic spike (or online event/burst, for synapses that
  transmit on those) delivered to one target: ``synops = sum_spikes fan_out(pre)``;
* a *neuron update* is one neuron for one time step: ``updates = N x T/dt``;
* rate networks are counted as multiply-accumulates (MACs) per frame:
  conv ``out_h * out_w * C_out * C_in * k^2`` (zero-padding taps included),
  dense ``in * out``; biases and activations are not counted.

Joules of a spiking run on a device: ``J = synops * J_synop + updates * J_update +
spikes * J_spike`` (``J_spike`` is spike routing, Loihi's +3.5 pJ, or the whole
biological cost per action potential). A rate model: ``J = MACs * J_MAC`` at 45 nm
(Horowitz, ISSCC 2014), or ``MACs * J_synop + units * J_update`` when the dense rate
network is executed on a spiking device as one synaptic op per weight.

Left out everywhere: memory traffic (weights, state; ~5 pJ per 32-bit cache access,
DRAM ~100x more), spike routing between chips/cores (except where a device's per-spike
cost includes it), idle/static power, and input encoding.

Pure numpy/torch; Brian2 objects are only inspected (never imported here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurons.common import MburstError

__all__ = ["Device", "DEVICES", "register_device", "get_device", "device_names", "ARITHMETIC_J",
           "BIOLOGY_J_PER_SPIKE", "macs_from_description", "model_macs", "rate_energy_j", "synaptic_events",
           "count_spiking", "LayerCounts", "SpikeLedger", "spiking_energy_j", "activation_rate_proxy"]

PATHWAYS = ("forward", "feedback", "interneuron")


# --------------------------------------------------------------------------- devices
@dataclass(frozen=True)
class Device:
    """Energy per operation of a platform (joules).

    ``j_per_synop``: one synaptic op; ``j_per_neuron_update``: one neuron for one step;
    ``j_per_spike``: extra cost per somatic spike (routing, or biology's whole AP).
    """

    name: str
    j_per_synop: float
    j_per_neuron_update: float
    j_per_spike: float = 0.0
    source: str = "user"

    def __post_init__(self):
        for key in ("j_per_synop", "j_per_neuron_update", "j_per_spike"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise MburstError(f"device '{self.name}': {key}={value!r} must be a finite number >= 0 (joules)")
        if not isinstance(self.name, str) or not self.name.strip():
            raise MburstError(f"device name {self.name!r} must be a non-empty string")

    def joules(self, synops: float, neuron_updates: float, spikes: float = 0.0) -> float:
        """J = synops J_synop + updates J_update + spikes J_spike."""
        return synops * self.j_per_synop + neuron_updates * self.j_per_neuron_update + spikes * self.j_per_spike


#: ATP per action potential including synaptic transmission (Attwell & Laughlin 2001) x 0.9e-19 J/ATP.
BIOLOGY_J_PER_SPIKE = 7e8 * 0.9e-19

DEVICES: dict[str, Device] = {}


def register_device(name: str, j_per_synop: float, j_per_neuron_update: float, j_per_spike: float = 0.0,
                    source: str = "user", replace: bool = False) -> Device:
    """Add a platform to the table; ``replace=False`` refuses to overwrite an existing name."""
    if name in DEVICES and not replace:
        raise MburstError(f"device '{name}' is already registered (pass replace=True to overwrite)")
    dev = Device(name, float(j_per_synop), float(j_per_neuron_update), float(j_per_spike), source)
    DEVICES[name] = dev
    return dev


def device_names() -> tuple[str, ...]:
    """The registered device names (tuple of str, in registration order): ``mburst energy --device``."""
    return tuple(DEVICES)


def get_device(name: str) -> Device:
    """The device registered as ``name``; MburstError (listing the known ones) otherwise."""
    try:
        return DEVICES[name]
    except KeyError:
        raise MburstError(f"device '{name}' is unknown; known devices: {', '.join(DEVICES)}") from None


for _args in (("CPU", 8.6e-9, 8.6e-9, 0.0, "Degnan et al. 2015 (i7-4960X)"),
              ("GPU", 0.3e-9, 0.3e-9, 0.0, "Degnan et al. 2015 (GTX Titan Black)"),
              ("ARM", 0.9e-9, 0.9e-9, 0.0, "Degnan et al. 2015 (ARM Cortex-A)"),
              ("Loihi", 23.6e-12, 81e-12, 3.5e-12, "Davies et al. 2018 (+3.5 pJ per spike routed across tiles)"),
              ("SpiNNaker", 13.3e-9, 26e-9, 0.0, "Hoppner et al. 2019"),
              ("SpiNNaker2", 450e-12, 2.19e-9, 0.0, "Hoppner et al. 2019"),
              ("biology", 0.0, 0.0, BIOLOGY_J_PER_SPIKE,
               "Attwell & Laughlin 2001; Howarth et al. 2012: 7e8 ATP/AP incl. synapses x 0.9e-19 J")):
    register_device(*_args)

#: Arithmetic energy at 45 nm (Horowitz, ISSCC 2014), joules: MAC = add + multiply.
ARITHMETIC_J = {
    "fp32": {"mac": 4.6e-12, "add": 0.9e-12},
    "fp16": {"mac": 1.5e-12, "add": 0.4e-12},
    "int8": {"mac": 0.23e-12, "add": 0.03e-12},
}


# --------------------------------------------------------------------------- rate models
def macs_from_description(desc: dict) -> dict[str, int]:
    """MACs per frame (one sample) from ``AVMaskNet.describe()`` layer shapes: the one MAC counter.

    conv: out_h out_w C_out C_in k^2 (k from the weight shape); dense: in x out.
    ``desc``: a model description (``{'layers': {name: {'kind', 'in', 'out', 'weight'}}}``).

    Returns
    -------
    dict of str to int
        MACs per layer name, and their sum under 'total'.

    Raises
    ------
    MburstError
        ``desc`` has no 'layers', or a layer of unknown kind.
    """
    try:
        layers = desc["layers"]
    except (KeyError, TypeError):
        raise MburstError("macs_from_description: expected a model description with 'layers'") from None
    out = {}
    for name, layer in layers.items():
        if layer["kind"] == "conv2d":
            c_out, c_in, kh, kw = layer["weight"]
            _, oh, ow = layer["out"]
            out[name] = int(oh * ow * c_out * c_in * kh * kw)
        elif layer["kind"] == "dense":
            out[name] = int(layer["in"][0] * layer["out"][0])
        else:
            raise MburstError(f"macs_from_description: layer '{name}' has unknown kind {layer['kind']!r}")
    out["total"] = sum(out.values())
    return out


def model_macs(model) -> dict[str, int]:
    """MACs per frame of an ``AVMaskNet``, per layer and 'total' (:func:`macs_from_description`)."""
    return macs_from_description(model.describe())


def model_units(model) -> dict[str, int]:
    """Neurons (output units) per layer of an ``AVMaskNet``, and 'total'."""
    out = {name: int(np.prod(layer["out"])) for name, layer in model.describe()["layers"].items()}
    out["total"] = sum(out.values())
    return out


def rate_energy_j(macs: int, precision: str = "fp32") -> float:
    """J per frame = MACs x J_MAC(precision) (Horowitz 45 nm; memory traffic left out)."""
    if precision not in ARITHMETIC_J:
        raise MburstError(f"precision '{precision}' is unknown; expected one of {sorted(ARITHMETIC_J)}")
    return float(macs) * ARITHMETIC_J[precision]["mac"]


def activation_rate_proxy(activities: dict) -> dict:
    """The paper's activation-rate proxy from hidden event rates ``{layer: tensor [B, ...]}``.

    Returns per layer and 'overall' the fraction of units with e > 0 (``active``) and
    the mean e (``mean_e``); 'overall' weights layers by their unit counts.
    """
    out, n_all, act_all, e_all = {}, 0, 0.0, 0.0
    for name, e in activities.items():
        arr = np.asarray(e.detach().cpu().numpy() if hasattr(e, "detach") else e, dtype=float)
        active = float((arr > 0).mean())
        mean_e = float(arr.mean())
        out[name] = {"active": active, "mean_e": mean_e}
        n_all += arr.size
        act_all += active * arr.size
        e_all += mean_e * arr.size
    if n_all:
        out["overall"] = {"active": act_all / n_all, "mean_e": e_all / n_all}
    return out


# --------------------------------------------------------------------------- spiking counts
def synaptic_events(trigger_i, syn_pre_i, n_pre: int) -> int:
    """Synaptic ops: each trigger (spike/event/burst of presynaptic neuron i) x fan-out of i.

    ``trigger_i``: presynaptic indices, one per trigger; ``syn_pre_i``: presynaptic
    index of every synapse (Brian2 ``Synapses.i``).
    """
    fan_out = np.bincount(np.asarray(syn_pre_i, dtype=np.int64), minlength=int(n_pre))
    trig = np.asarray(trigger_i, dtype=np.int64)
    if trig.size and (trig.min() < 0 or trig.max() >= len(fan_out)):
        raise MburstError(f"synaptic_events: trigger index out of range [0, {len(fan_out)})")
    return int(fan_out[trig].sum())


@dataclass
class LayerCounts:
    """Totals over a counting window for one layer (or population)."""

    neurons: int = 0
    spikes: int = 0
    events: int = 0
    bursts: int = 0
    plateaus: int = 0
    syn_forward: int = 0
    syn_feedback: int = 0
    syn_interneuron: int = 0
    neuron_updates: int = 0

    @property
    def synops(self) -> int:
        return self.syn_forward + self.syn_feedback + self.syn_interneuron

    def add(self, other: "LayerCounts") -> None:
        for key in self.__dataclass_fields__:
            setattr(self, key, getattr(self, key) + getattr(other, key))

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["synops"] = self.synops
        return d


@dataclass
class _Pop:
    name: str
    layer: str
    n: int
    monitor: object  # SpikeMonitor-like: .i, .t (seconds or Quantity)
    updates: bool
    pyramidal: bool
    plateau_monitor: object = None  # EventMonitor of the 'plateau' event, or None


@dataclass
class _Syn:
    pre: str
    pre_index: np.ndarray
    pathway: str
    trigger: str  # 'spike' | 'event' | 'burst'
    copies: int = 1  # cell synapses each recorded synapse stands for (a current shared by an ensemble)


@dataclass
class SpikeLedger:
    """Registry of a network's populations and synapses, counted from monitors after a run.

    ``add_population(name, layer, n, spike_monitor, updates=True, pyramidal=False,
    plateau_monitor=None)`` and ``add_synapses(pre_name, pre_index, pathway, trigger, copies=1)``
    record what to count; :meth:`count` returns per-layer :class:`LayerCounts` inside
    ``[t_start, t_stop)`` (seconds). Synaptic ops are attributed to the layer of the
    *presynaptic* population (the sender pays, as on neuromorphic chips).
    """

    dt: float  # seconds
    pops: dict = field(default_factory=dict)
    syns: list = field(default_factory=list)

    def add_population(self, name: str, layer: str, n: int, spike_monitor, updates: bool = True,
                       pyramidal: bool = False, plateau_monitor=None) -> None:
        if name in self.pops:
            raise MburstError(f"SpikeLedger: population '{name}' added twice")
        self.pops[name] = _Pop(name, layer, int(n), spike_monitor, updates, pyramidal, plateau_monitor)

    def add_synapses(self, pre: str, pre_index, pathway: str, trigger: str = "spike", copies: int = 1) -> None:
        """``copies``: cell synapses each listed synapse stands for (a synapse onto an ensemble's shared
        current reaches every cell of that ensemble, so it counts as that many synaptic events)."""
        if pre not in self.pops:
            raise MburstError(f"SpikeLedger: synapses from unknown population '{pre}'; add it first")
        if pathway not in PATHWAYS:
            raise MburstError(f"SpikeLedger: pathway '{pathway}' is unknown; expected one of {PATHWAYS}")
        if trigger not in ("spike", "event", "burst"):
            raise MburstError(f"SpikeLedger: trigger '{trigger}' is unknown; expected spike, event or burst")
        if not isinstance(copies, int) or copies < 1:
            raise MburstError(f"SpikeLedger: copies={copies!r} must be an integer >= 1")
        self.syns.append(_Syn(pre, np.asarray(pre_index, dtype=np.int64).copy(), pathway, trigger, copies))

    def count(self, t_start: float, t_stop: float) -> dict[str, LayerCounts]:
        return count_spiking(self, t_start, t_stop)


def _in_windows(t: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Mask of times inside any window ``[start, stop)`` (windows sorted, non-overlapping)."""
    k = np.searchsorted(starts, t + 1e-12, side="right") - 1
    return (k >= 0) & (t < stops[np.clip(k, 0, None)] - 1e-12)


def count_spiking(ledger: SpikeLedger, t_start, t_stop) -> dict[str, LayerCounts]:
    """Per-layer counts inside ``[t_start, t_stop)`` (see :class:`SpikeLedger`).

    ``t_start``/``t_stop`` are scalars or equal-length arrays of sorted, non-overlapping
    windows (seconds; e.g. the counting window of every frame). Events/bursts use the
    16 ms rule on the *whole* recorded train (an event that started before a window is
    not recounted), then keep those whose first spike (events) or second spike (bursts,
    when burst-triggered synapses transmit) lies in a window.
    """
    from neurons.bursts import detect_population

    starts = np.atleast_1d(np.asarray(t_start, dtype=float))
    stops = np.atleast_1d(np.asarray(t_stop, dtype=float))
    if starts.shape != stops.shape or not np.all(stops > starts):
        raise MburstError(f"count_spiking: windows need t_stop > t_start (got {t_start!r}, {t_stop!r})")
    if len(starts) > 1 and np.any(starts[1:] < stops[:-1]):
        raise MburstError("count_spiking: windows must be sorted and must not overlap")
    steps = int(np.round((stops - starts) / ledger.dt).sum())
    layers: dict[str, LayerCounts] = {}
    triggers: dict[str, dict[str, np.ndarray]] = {}
    for pop in ledger.pops.values():
        lc = layers.setdefault(pop.layer, LayerCounts())
        all_i = np.asarray(pop.monitor.i[:], dtype=np.int64)
        all_t = np.asarray(pop.monitor.t[:], dtype=float)
        inside = _in_windows(all_t, starts, stops)
        trig = {"spike": all_i[inside]}
        lc.spikes += int(inside.sum())
        if pop.updates:
            lc.neurons += pop.n
            lc.neuron_updates += pop.n * steps
        if pop.pyramidal:
            det = detect_population(all_i, all_t)
            ev = _in_windows(det.event_t, starts, stops)
            bu = _in_windows(det.burst_t, starts, stops)
            trig["event"], trig["burst"] = det.event_i[ev], det.burst_i[bu]
            lc.events += int(ev.sum())
            lc.bursts += int(bu.sum())
            if pop.plateau_monitor is not None:
                pt = np.asarray(pop.plateau_monitor.t[:], dtype=float)
                lc.plateaus += int(_in_windows(pt, starts, stops).sum())
        triggers[pop.name] = trig
    for syn in ledger.syns:
        pop = ledger.pops[syn.pre]
        trig = triggers[syn.pre].get(syn.trigger)
        if trig is None:
            raise MburstError(f"count_spiking: population '{syn.pre}' has no online {syn.trigger}s (not pyramidal)")
        n = synaptic_events(trig, syn.pre_index, pop.n) * syn.copies
        lc = layers[pop.layer]
        setattr(lc, f"syn_{syn.pathway}", getattr(lc, f"syn_{syn.pathway}") + n)
    return layers


def total_counts(layers: dict[str, LayerCounts]) -> LayerCounts:
    tot = LayerCounts()
    for lc in layers.values():
        tot.add(lc)
    return tot


def spiking_energy_j(counts: LayerCounts, device: str | Device) -> float:
    """J = synops J_synop + neuron_updates J_update + spikes J_spike on ``device``."""
    dev = get_device(device) if isinstance(device, str) else device
    return dev.joules(counts.synops, counts.neuron_updates, counts.spikes)


def energy_rows(spiking: dict | None, rate: dict, devices=None, precision: str = "fp32") -> tuple[list, list]:
    """The energy table: one row per (model, device), per frame.

    ``spiking``: ``{'model', 'frames', 'counts' (LayerCounts total), 'f1'}`` or None;
    ``rate``: ``{model_name: {'macs', 'units', 'f1', 'active', 'mean_e'}}``.
    Rate models get a row at 45 nm (MAC energy) and one per device (MAC = one synaptic op,
    each unit one neuron update per frame); the spiking model one row per device.
    """
    devices = list(devices or DEVICES)
    for d in devices:
        get_device(d)
    header = ["model", "device", "spikes/frame", "synaptic events/frame", "neuron updates/frame", "MACs/frame",
              "active fraction", "J/frame", "F1"]
    rows = []
    for name, r in rate.items():
        rows.append([name, f"45nm {precision} MAC", "", "", "", r["macs"], round(r.get("active", float("nan")), 4),
                     f"{rate_energy_j(r['macs'], precision):.3e}", _fmt(r.get("f1"))])
        for d in devices:
            dev = get_device(d)
            if dev.j_per_synop == 0 and dev.j_per_neuron_update == 0:
                continue  # biology has no meaning for MACs
            j = dev.joules(r["macs"], r["units"], 0.0)
            rows.append([name, d, "", r["macs"], r["units"], r["macs"], round(r.get("active", float("nan")), 4),
                         f"{j:.3e}", _fmt(r.get("f1"))])
    if spiking is not None:
        c, fr = spiking["counts"], spiking["frames"]
        for d in devices:
            j = spiking_energy_j(c, d) / fr
            rows.append([spiking["model"], d, f"{c.spikes / fr:.1f}", f"{c.synops / fr:.1f}",
                         f"{c.neuron_updates / fr:.0f}", "", "", f"{j:.3e}", _fmt(spiking.get("f1"))])
    return header, rows


def _fmt(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
