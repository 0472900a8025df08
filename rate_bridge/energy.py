"""Energy accounting: MAC counts of rate models, their event-driven accumulates, parameters and memory traffic,
and joules of rate and spiking runs on the devices of :mod:`rate_bridge.devices`.

Counting conventions (``shared/design/reference.md`` s. 4):

* rate networks are counted as multiply-accumulates (MACs) per frame: conv
  ``out_h * out_w * C_out * C_in * k^2`` (zero-padding taps included), dense ``in * out``; biases and
  activations are not counted;
* an *event-driven* execution of a rate network costs one accumulate per non-zero input value and
  target it reaches (:func:`event_driven_ops`; zero-padding taps excluded), per frame on its own (no
  delta coding between frames), plus one neuron update per unit and frame;
* spiking runs: synaptic ops, spikes and neuron updates from :mod:`rate_bridge.ledger`, neuron
  updates at the device's step, split into active and idle ones where the device prices them apart.

Joules of a spiking run on a device: ``J = synops J_synop + active J_update + idle J_idle +
spikes J_spike`` (:func:`spiking_energy_j`). A rate model: ``J = MACs x J_MAC`` at 45 nm (Horowitz,
ISSCC 2014), or ``MACs x J_synop + units x J_update`` when the dense rate network is executed on a
spiking device as one synaptic op per weight. Memory traffic (:func:`memory_traffic`) is reported
beside the compute terms at :data:`rate_bridge.devices.CACHE_J_PER_BYTE`, not added to them.

Left out everywhere: spike routing between chips/cores (except where a device's per-spike cost
includes it), idle/static power, input encoding, and DRAM (no figure in the sources available).

The device table, ledger and counters live in :mod:`rate_bridge.devices` and
:mod:`rate_bridge.ledger`; their names are re-exported here. Torch and Brian2 are imported lazily.
"""
from __future__ import annotations

import math

import numpy as np

from neurons.common import MburstError

from rate_bridge.devices import (ARITHMETIC_J, BIOLOGY_J_PER_SPIKE, CACHE_J_PER_BYTE, DEVICES, Device, device_names,
                                 get_device, register_device)
from rate_bridge.ledger import (PATHWAYS, LayerCounts, SpikeLedger, StepCounts, count_spiking, synaptic_events,
                                total_counts)

__all__ = ["Device", "DEVICES", "register_device", "get_device", "device_names", "ARITHMETIC_J",
           "BIOLOGY_J_PER_SPIKE", "macs_from_description", "model_macs", "model_units", "model_params",
           "event_driven_ops", "memory_traffic", "rate_energy_j", "synaptic_events", "count_spiking", "LayerCounts",
           "StepCounts", "SpikeLedger", "total_counts", "spiking_energy_j", "device_updates", "activation_rate_proxy",
           "energy_rows", "PATHWAYS"]

BYTES_FP32 = 4


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


def model_params(model) -> dict[str, int]:
    """Parameters used at inference (forward weights and biases; not the feedback Y or recurrent Z weights).

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet

    Returns
    -------
    dict of str to int
        Per layer and 'total'.
    """
    out = {name: int(layer.weight.numel() + (layer.bias.numel() if layer.bias is not None else 0))
           for name, layer in model.burst_layers().items()}
    out["total"] = sum(out.values())
    return out


def event_driven_ops(model, audio, visual=None) -> dict[str, float]:
    """Accumulates per frame of an event-driven execution: one per non-zero input value and target reached.

    conv: for every output position, the non-zero input taps under its kernel (zero padding is no
    tap) x C_out; dense: non-zero inputs x outputs. Each frame is counted on its own (no delta coding
    between frames).

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
    audio, visual : torch.Tensor, shape (F, 1, H, W)
        Frames (``visual`` None for audio-only models).

    Returns
    -------
    dict of str to float
        Mean accumulates per frame, per layer and 'total' (<= :func:`model_macs`).
    """
    import torch
    import torch.nn.functional as F

    desc = model.describe()["layers"]
    seen, hooks = {}, []
    for name, layer in model.burst_layers().items():
        hooks.append(layer.register_forward_pre_hook(lambda mod, args, name=name: seen.__setitem__(name, args[0])))
    try:
        with torch.no_grad():
            model.eval()
            model(audio, visual if model.visual else None)
    finally:
        for h in hooks:
            h.remove()
    frames = int(audio.shape[0])
    out = {}
    for name, x in seen.items():
        nz = (x != 0).to(torch.float64)
        layer = desc[name]
        if layer["kind"] == "conv2d":
            c_out, c_in, kh, kw = layer["weight"]
            taps = F.conv2d(nz, torch.ones(1, c_in, kh, kw, dtype=torch.float64), stride=layer["stride"],
                            padding=layer["padding"])
            out[name] = float(taps.sum()) * c_out / frames
        else:
            out[name] = float(nz.sum()) * layer["out"][0] / frames
    out["total"] = sum(out.values())
    return out


def memory_traffic(model, bytes_per_value: int = BYTES_FP32) -> dict[str, float]:
    """Bytes moved per frame by a rate model when nothing stays on chip between frames.

    Read: every weight and bias once, every layer's input once; written: every layer's output once
    (``bytes_per_value`` each; fp32 = 4). Weight reuse inside a frame (a convolution's kernel) is
    assumed to hit registers; no state is carried between frames except the context window, whose
    reading is the first layer's input.

    Parameters
    ----------
    model : rate_bridge.burstprop.models.AVMaskNet
    bytes_per_value : int

    Returns
    -------
    dict of str to float
        ``read``, ``written`` and ``total`` bytes per frame, ``j`` at :data:`CACHE_J_PER_BYTE`.
    """
    layers = model.describe()["layers"]
    params = model_params(model)["total"]
    read = (params + sum(int(np.prod(l["in"])) for l in layers.values())) * bytes_per_value
    written = sum(int(np.prod(l["out"])) for l in layers.values()) * bytes_per_value
    return {"read": float(read), "written": float(written), "total": float(read + written),
            "j": (read + written) * CACHE_J_PER_BYTE}


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


def spiking_energy_j(counts: LayerCounts, device: str | Device) -> float:
    """Joules of spiking counts on ``device``, neuron updates at the device's step.

    ``J = synops J_synop + active J_update + idle J_idle + spikes J_spike`` with active/idle updates
    from ``counts.device`` at the device's step; a device without a step is counted at the simulation
    step (every update at J_update unless it prices idle updates apart).

    Parameters
    ----------
    counts : LayerCounts
        Totals (:func:`total_counts`).
    device : str or Device

    Returns
    -------
    float
        Joules.

    Raises
    ------
    MburstError
        An unknown device, or counts without the device's step.
    """
    dev = get_device(device) if isinstance(device, str) else device
    active, idle = device_updates(counts, dev)
    return dev.joules(counts.synops, active, counts.spikes, idle)


def device_updates(counts: LayerCounts, device: Device) -> tuple[int, int]:
    """(active, idle) neuron updates of ``counts`` as ``device`` counts them (see :func:`spiking_energy_j`).

    Parameters
    ----------
    counts : LayerCounts
    device : Device

    Returns
    -------
    tuple of int
    """
    if device.step_s is None and not device.splits_updates:
        return counts.neuron_updates, 0
    if device.step_s is None:
        raise MburstError(f"device '{device.name}' prices idle updates apart but has no step: give it step_s")
    sc = counts.at_step(device.step_s)
    return sc.active, sc.idle


def energy_rows(spiking: dict | None, rate: dict, devices=None, precision: str = "fp32") -> tuple[list, list]:
    """The energy table: one row per (model, device), per frame.

    Parameters
    ----------
    spiking : dict or None
        ``{'model', 'frames', 'counts' (LayerCounts total), 'f1'}``.
    rate : dict
        ``{model_name: {'macs', 'units', 'f1', 'active', 'mean_e'}}``.
    devices : sequence of str, optional
        Default: every registered device.
    precision : str
        Arithmetic of the 45 nm MAC rows.

    Returns
    -------
    header : list of str
    rows : list of list
        Rate models: a row at 45 nm (MAC energy) and one per device (MAC = one synaptic op, each unit
        one neuron update per frame); the spiking model one row per device, neuron updates at the
        device's step (active + idle).
    """
    devices = list(devices or DEVICES)
    for d in devices:
        get_device(d)
    header = ["model", "device", "device step", "spikes/frame", "synaptic events/frame", "neuron updates/frame",
              "idle updates/frame", "MACs/frame", "active fraction", "J/frame", "F1"]
    rows = []
    for name, r in rate.items():
        act = round(r.get("active", float("nan")), 4)
        rows.append([name, f"45nm {precision} MAC", "frame", "", "", "", "", r["macs"], act,
                     f"{rate_energy_j(r['macs'], precision):.3e}", _fmt(r.get("f1"))])
        for d in devices:
            dev = get_device(d)
            if dev.j_per_synop == 0 and dev.j_per_neuron_update == 0:
                continue  # biology has no meaning for MACs
            rows.append([name, d, "frame", "", r["macs"], r["units"], 0, r["macs"], act,
                         f"{dev.joules(r['macs'], r['units'], 0.0):.3e}", _fmt(r.get("f1"))])
    if spiking is not None:
        c, fr = spiking["counts"], spiking["frames"]
        for d in devices:
            dev = get_device(d)
            active, idle = device_updates(c, dev)
            rows.append([spiking["model"], d, dev.step_label(), f"{c.spikes / fr:.1f}", f"{c.synops / fr:.1f}",
                         f"{(active + idle) / fr:.0f}", f"{idle / fr:.0f}", "", "",
                         f"{spiking_energy_j(c, dev) / fr:.3e}", _fmt(spiking.get("f1"))])
    return header, rows


def _fmt(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
