"""The spike ledger: exact counts of spikes, synaptic events and neuron updates of a Brian2 run, from its monitors.

Conventions (reference.md s. 4): a *synaptic op* is one presynaptic spike (or online event/burst,
for synapses that transmit on those) delivered to one target, ``synops = sum_triggers fan_out(pre)``;
a *neuron update* is one neuron for one time step.

Neuron updates are counted twice:

* at the simulation step ``dt`` of the ledger, ``N x T / dt`` (:attr:`LayerCounts.neuron_updates`);
* at each device step (:class:`StepCounts` in :attr:`LayerCounts.device`), split into *active* updates
  (the neuron received a synaptic event or spiked in that step) and *idle* ones. Device steps tile
  time from t = 0: step k is ``[k step, (k + 1) step)``, and a step counts when its start lies in a
  counting window. A neuron's input is known from the synapses registered with their targets
  (``add_synapses(..., post=, post_index=)``): a synaptic event arrives in the step of its trigger's
  time (synaptic delays are not recorded, so taken as 0). Currents that are not registered synapses
  (input drive, bias, background noise) are not counted as input; a population that no registered
  synapse targets has *every* update counted active (``assumed_active``: an upper bound). The spike
  trains are the simulation's: a chip running at the device step would integrate differently; the
  count regroups the simulated events into device steps (``crowded``: neuron-steps with more than one
  spike, which a chip at that step could not emit).

Pure numpy; Brian2 monitors are only read (``.i``, ``.t``), and :mod:`neurons.bursts` is imported lazily.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from neurons.common import MburstError

__all__ = ["PATHWAYS", "LayerCounts", "StepCounts", "SpikeLedger", "synaptic_events", "count_spiking",
           "total_counts", "default_device_steps"]

PATHWAYS = ("forward", "feedback", "interneuron")
_EPS = 1e-6  # in units of a step: times within this of a step boundary belong to the later step
_CHUNK = 1 << 22  # synaptic events expanded at a time when marking active neuron-steps
_BITMAP = 1 << 28  # neuron-steps marked in a boolean array (above: sorted unique keys)


@dataclass
class StepCounts:
    """Neuron updates at one device step, totals over the counting windows.

    ``updates = active + idle`` (neurons x counted steps); ``assumed_active``: active updates of
    populations whose inputs the ledger does not know (counted active, an upper bound);
    ``crowded``: neuron-steps with more than one spike.
    """

    updates: int = 0
    active: int = 0
    idle: int = 0
    assumed_active: int = 0
    crowded: int = 0

    def add(self, other: "StepCounts") -> None:
        """Add ``other``'s counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class LayerCounts:
    """Totals over a counting window for one layer (or population); ``device``: {step_s: StepCounts}."""

    neurons: int = 0
    spikes: int = 0
    events: int = 0
    bursts: int = 0
    plateaus: int = 0
    syn_forward: int = 0
    syn_feedback: int = 0
    syn_interneuron: int = 0
    neuron_updates: int = 0
    device: dict = field(default_factory=dict)

    @property
    def synops(self) -> int:
        """Synaptic ops of all pathways."""
        return self.syn_forward + self.syn_feedback + self.syn_interneuron

    def add(self, other: "LayerCounts") -> None:
        """Add ``other``'s counts (device steps merged) to these."""
        for f in fields(self):
            if f.name != "device":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        for step, sc in other.device.items():
            self.device.setdefault(step, StepCounts()).add(sc)

    def at_step(self, step_s: float) -> StepCounts:
        """The counts at device step ``step_s`` (s); MburstError when that step was not counted."""
        try:
            return self.device[_key(step_s)]
        except KeyError:
            have = ", ".join(f"{s * 1e3:g} ms" for s in sorted(self.device)) or "none"
            raise MburstError(f"counts: no neuron updates counted at a {step_s * 1e3:g} ms step (counted: {have}); "
                              "count with device_steps including it") from None

    def as_dict(self) -> dict:
        """JSON-able counts; ``device`` keyed by the step in ms, ``synops`` added (read back by :meth:`from_dict`)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "device"}
        d["synops"] = self.synops
        d["device"] = {f"{s * 1e3:g} ms": asdict(sc) for s, sc in sorted(self.device.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LayerCounts":
        """The counts of :meth:`as_dict`."""
        lc = cls(**{f.name: int(d[f.name]) for f in fields(cls) if f.name != "device"})
        lc.device = {_key(float(k.split()[0]) / 1e3): StepCounts(**v) for k, v in d.get("device", {}).items()}
        return lc


def _key(step_s: float) -> float:
    return round(float(step_s), 12)


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
    post: str | None = None
    post_index: np.ndarray | None = None  # [n_syn] or [n_syn, copies]: target cells in population `post`


@dataclass
class SpikeLedger:
    """Registry of a network's populations and synapses, counted from monitors after a run.

    ``add_population`` and ``add_synapses`` record what to count; :meth:`count` returns per-layer
    :class:`LayerCounts` inside ``[t_start, t_stop)`` (seconds). Synaptic ops are attributed to the
    layer of the *presynaptic* population (the sender pays, as on neuromorphic chips). ``dt`` is the
    simulation step (s).
    """

    dt: float
    pops: dict = field(default_factory=dict)
    syns: list = field(default_factory=list)

    def add_population(self, name: str, layer: str, n: int, spike_monitor, updates: bool = True,
                       pyramidal: bool = False, plateau_monitor=None) -> None:
        """Register population ``name`` (``n`` cells, counted in ``layer``); ``updates``: count its neuron
        updates; ``pyramidal``: detect its online events/bursts (16 ms rule)."""
        if name in self.pops:
            raise MburstError(f"SpikeLedger: population '{name}' added twice")
        self.pops[name] = _Pop(name, layer, int(n), spike_monitor, updates, pyramidal, plateau_monitor)

    def add_synapses(self, pre: str, pre_index, pathway: str, trigger: str = "spike", copies: int = 1,
                     post: str | None = None, post_index=None) -> None:
        """Register synapses from population ``pre``.

        Parameters
        ----------
        pre : str
            Presynaptic population (added before).
        pre_index : array_like of int, shape (n_syn,)
            Presynaptic cell of every synapse (Brian2 ``Synapses.i``).
        pathway : {'forward', 'feedback', 'interneuron'}
        trigger : {'spike', 'event', 'burst'}
            What the synapses transmit on.
        copies : int
            Cell synapses each listed synapse stands for (a synapse onto an ensemble's shared current
            reaches every cell of that ensemble, so it counts as that many synaptic events).
        post : str, optional
            Target population, for the active/idle split of its updates.
        post_index : array_like of int, shape (n_syn,) or (n_syn, copies), optional
            Target cell(s) of every synapse in ``post`` (required with ``post``).

        Raises
        ------
        MburstError
            Unknown population, pathway or trigger, bad ``copies``, or targets that do not fit.
        """
        for who in (pre, post):
            if who is not None and who not in self.pops:
                raise MburstError(f"SpikeLedger: synapses from/to unknown population '{who}'; add it first")
        if pathway not in PATHWAYS:
            raise MburstError(f"SpikeLedger: pathway '{pathway}' is unknown; expected one of {PATHWAYS}")
        if trigger not in ("spike", "event", "burst"):
            raise MburstError(f"SpikeLedger: trigger '{trigger}' is unknown; expected spike, event or burst")
        if not isinstance(copies, int) or copies < 1:
            raise MburstError(f"SpikeLedger: copies={copies!r} must be an integer >= 1")
        pre_index = np.asarray(pre_index, dtype=np.int64).copy()
        targets = None
        if post is not None or post_index is not None:
            if post is None or post_index is None:
                raise MburstError("SpikeLedger: give both post and post_index (the target cells), or neither")
            targets = np.asarray(post_index, dtype=np.int64).reshape(len(pre_index), -1).copy()
            if targets.shape[1] != copies or np.size(post_index) != targets.size:
                raise MburstError(f"SpikeLedger: post_index must have shape ({len(pre_index)},) with copies=1 or "
                                  f"({len(pre_index)}, {copies}), got {np.shape(post_index)}")
            if targets.size and (targets.min() < 0 or targets.max() >= self.pops[post].n):
                raise MburstError(f"SpikeLedger: post_index out of range [0, {self.pops[post].n}) of '{post}'")
        self.syns.append(_Syn(pre, pre_index, pathway, trigger, copies, post, targets))

    def count(self, t_start, t_stop, device_steps=None) -> dict[str, LayerCounts]:
        """:func:`count_spiking` of this ledger."""
        return count_spiking(self, t_start, t_stop, device_steps)


def synaptic_events(trigger_i, syn_pre_i, n_pre: int) -> int:
    """Synaptic ops (int): each trigger (spike/event/burst of presynaptic neuron i) x fan-out of i.

    ``trigger_i``: presynaptic indices, one per trigger; ``syn_pre_i``: presynaptic index of every synapse
    (Brian2 ``Synapses.i``); ``n_pre``: presynaptic population size. MburstError for a trigger outside it.
    """
    fan_out = np.bincount(np.asarray(syn_pre_i, dtype=np.int64), minlength=int(n_pre))
    trig = np.asarray(trigger_i, dtype=np.int64)
    if trig.size and (trig.min() < 0 or trig.max() >= len(fan_out)):
        raise MburstError(f"synaptic_events: trigger index out of range [0, {len(fan_out)})")
    return int(fan_out[trig].sum())


def default_device_steps(dt: float) -> tuple[float, ...]:
    """The steps counted by default: every registered device's step, and the simulation step ``dt`` when a
    device without a step charges idle updates differently (s, ascending)."""
    from rate_bridge.devices import DEVICES

    steps = {_key(d.step_s) for d in DEVICES.values() if d.step_s is not None}
    if any(d.step_s is None and d.splits_updates for d in DEVICES.values()):
        steps.add(_key(dt))
    return tuple(sorted(steps))


def _in_windows(t: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Mask of times inside any window ``[start, stop)`` (windows sorted, non-overlapping)."""
    k = np.searchsorted(starts, t + 1e-12, side="right") - 1
    return (k >= 0) & (t < stops[np.clip(k, 0, None)] - 1e-12)


def _counted_steps(starts, stops, step: float) -> np.ndarray:
    """Boolean per device step k (from t = 0): its start k step lies in a window."""
    first = np.ceil(starts / step - _EPS).astype(np.int64)
    last = np.ceil(stops / step - _EPS).astype(np.int64)  # exclusive
    counted = np.zeros(int(last.max()), dtype=bool)
    for a, b in zip(first, last):
        counted[a:b] = True
    return counted


def _reached(syn: _Syn, pre: np.ndarray, k: np.ndarray, n_steps: int):
    """Keys ``post x n_steps + k`` of the cells synapses ``syn`` reach from (pre, step k) pairs, in chunks."""
    posts = syn.post_index[np.argsort(syn.pre_index, kind="stable")]  # [n_syn, copies], grouped by presynaptic cell
    fan = np.bincount(syn.pre_index, minlength=int(pre.max()) + 1 if pre.size else 1)
    start = np.concatenate([[0], np.cumsum(fan)])
    reach = fan[pre]
    done = np.concatenate([[0], np.cumsum(reach)])
    lo = 0
    while lo < len(pre):  # about _CHUNK synaptic events at a time
        hi = max(lo + 1, int(np.searchsorted(done, done[lo] + _CHUNK, side="right")) - 1)
        cnt = reach[lo:hi]
        rows = np.repeat(start[pre[lo:hi]] - done[lo:hi] + done[lo], cnt) + np.arange(cnt.sum())
        yield (posts[rows] * n_steps + np.repeat(k[lo:hi], cnt)[:, None]).ravel()
        lo = hi


def _step_counts(pop: _Pop, spikes_i, spikes_t, inputs: list, counted: np.ndarray, step: float) -> StepCounts:
    """Active/idle updates of ``pop`` at ``step``; ``inputs``: [(trigger_i, trigger_t, syn)] of synapses onto it."""
    n_steps = len(counted)
    n_counted = int(counted.sum())
    sc = StepCounts(updates=pop.n * n_counted if pop.updates else 0)

    def keys(i, t):
        k = np.floor(np.asarray(t, dtype=float) / step + _EPS).astype(np.int64)
        ok = (k < n_steps) & (k >= 0)
        ok[ok] = counted[k[ok]]
        return np.asarray(i, dtype=np.int64)[ok] * n_steps + k[ok]

    spiked, reps = np.unique(keys(spikes_i, spikes_t), return_counts=True)
    sc.crowded = int((reps > 1).sum())
    if not pop.updates:
        return sc
    if not inputs:
        sc.active = sc.assumed_active = sc.updates
        return sc
    mark = np.zeros(pop.n * n_steps, dtype=bool) if pop.n * n_steps <= _BITMAP else None  # active neuron-steps
    parts = [spiked]
    for trig_i, trig_t, syn in inputs:
        pk = np.unique(keys(trig_i, trig_t))  # (pre, step) pairs: one pre spiking twice in a step reaches the same cells
        for chunk in _reached(syn, pk // n_steps, pk % n_steps, n_steps):
            if mark is None:
                parts.append(np.unique(chunk))
            else:
                mark[chunk] = True
    if mark is None:
        sc.active = int(len(np.unique(np.concatenate(parts))))
    else:
        mark[spiked] = True
        sc.active = int(mark.sum())
    sc.idle = sc.updates - sc.active
    return sc


def count_spiking(ledger: SpikeLedger, t_start, t_stop, device_steps=None) -> dict[str, LayerCounts]:
    """Per-layer counts inside the counting windows (see :class:`SpikeLedger` and the module doc).

    Parameters
    ----------
    ledger : SpikeLedger
    t_start, t_stop : float or array_like of float
        Scalars or equal-length arrays of sorted, non-overlapping windows ``[t_start, t_stop)`` (s;
        e.g. the counting window of every frame).
    device_steps : sequence of float, optional
        Device steps (s) to count active/idle updates at (default :func:`default_device_steps`).

    Returns
    -------
    dict of str to LayerCounts
        Per layer. Events/bursts use the 16 ms rule on the *whole* recorded train (an event that
        started before a window is not recounted), then keep those whose first spike (events) or
        second spike (bursts) lies in a window.

    Raises
    ------
    MburstError
        Bad windows or steps, or a synapse transmitting on events of a non-pyramidal population.
    """
    from neurons.bursts import detect_population

    starts = np.atleast_1d(np.asarray(t_start, dtype=float))
    stops = np.atleast_1d(np.asarray(t_stop, dtype=float))
    if starts.shape != stops.shape or not np.all(stops > starts):
        raise MburstError(f"count_spiking: windows need t_stop > t_start (got {t_start!r}, {t_stop!r})")
    if len(starts) > 1 and np.any(starts[1:] < stops[:-1]):
        raise MburstError("count_spiking: windows must be sorted and must not overlap")
    steps_dev = default_device_steps(ledger.dt) if device_steps is None else tuple(_key(s) for s in device_steps)
    if any(not np.isfinite(s) or s <= 0 for s in steps_dev):
        raise MburstError(f"count_spiking: device steps must be positive seconds, got {device_steps!r}")
    steps = int(np.round((stops - starts) / ledger.dt).sum())
    layers: dict[str, LayerCounts] = {}
    triggers: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}  # all recorded triggers (i, t)
    for pop in ledger.pops.values():
        lc = layers.setdefault(pop.layer, LayerCounts())
        all_i = np.asarray(pop.monitor.i[:], dtype=np.int64)
        all_t = np.asarray(pop.monitor.t[:], dtype=float)
        inside = _in_windows(all_t, starts, stops)
        trig = {"spike": (all_i, all_t)}
        lc.spikes += int(inside.sum())
        if pop.updates:
            lc.neurons += pop.n
            lc.neuron_updates += pop.n * steps
        if pop.pyramidal:
            det = detect_population(all_i, all_t)
            trig["event"], trig["burst"] = (det.event_i, det.event_t), (det.burst_i, det.burst_t)
            lc.events += int(_in_windows(det.event_t, starts, stops).sum())
            lc.bursts += int(_in_windows(det.burst_t, starts, stops).sum())
            if pop.plateau_monitor is not None:
                pt = np.asarray(pop.plateau_monitor.t[:], dtype=float)
                lc.plateaus += int(_in_windows(pt, starts, stops).sum())
        triggers[pop.name] = trig
    for syn in ledger.syns:
        pop = ledger.pops[syn.pre]
        trig = triggers[syn.pre].get(syn.trigger)
        if trig is None:
            raise MburstError(f"count_spiking: population '{syn.pre}' has no online {syn.trigger}s (not pyramidal)")
        ti, tt = trig
        n = synaptic_events(ti[_in_windows(tt, starts, stops)], syn.pre_index, pop.n) * syn.copies
        lc = layers[pop.layer]
        setattr(lc, f"syn_{syn.pathway}", getattr(lc, f"syn_{syn.pathway}") + n)
    for step in steps_dev:
        counted = _counted_steps(starts, stops, step)
        for pop in ledger.pops.values():
            inputs = [(*triggers[s.pre][s.trigger], s) for s in ledger.syns if s.post == pop.name]
            sc = _step_counts(pop, *triggers[pop.name]["spike"], inputs, counted, step)
            layers[pop.layer].device.setdefault(step, StepCounts()).add(sc)
    return layers


def total_counts(layers: dict[str, LayerCounts]) -> LayerCounts:
    """The sum (LayerCounts) of per-layer counts ``{layer: LayerCounts}``, device steps merged."""
    tot = LayerCounts()
    for lc in layers.values():
        tot.add(lc)
    return tot
