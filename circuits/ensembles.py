"""Layers of pyramidal ensembles standing for the units of a rate network, run frame by frame (Brian2).

Built from plain layer specifications (:class:`EnsembleLayer`: numpy arrays and currents in pA;
no torch): :mod:`rate_bridge.convert` maps a trained model onto them. Per layer:

* each unit -> an *ensemble* of ``cells_per_unit`` two-compartment pyramidal cells
  (:func:`neurons.pyramidal.pyramidal_group`; Payeur Poisson background unless the cells are
  ``quiet``; dendritic current ``i_dend_pA``; somatic offsets :func:`neurons.transfer_fit.cell_offsets`);
* input layers: somatic current ``drive_pA[k]`` during frame ``k`` (a ``TimedArray``);
* other layers: current-based somatic synapses from every cell of ensemble ``a`` onto the shared
  current of unit ``b`` (:mod:`circuits.connectivity`), transmitting on the pre cell's online
  *events* (16 ms rule, so bursts do not double the forward signal). The jump per event is
  ``q = weight_pA W_ba / (e_ref tau_syn n_a)`` with ``dI_fwd/dt = -I_fwd/tau_syn``, so the mean
  current is ``weight_pA sum_a W_ba E_a / e_ref`` for ensemble event rates ``E_a`` (Hz). All cells of
  an ensemble receive the same synapses, so their synaptic current is one variable per unit
  (group ``cur_<layer>``): the dynamics of ``n_b`` identical copies at ``1/n_b`` of the synaptic
  work (the census counts every cell synapse). The somatic drive ``I = bias_pA + I_fwd``
  saturates softly, ``I_ext_s = i_max - i_soft softplus((i_max - I)/i_soft)`` (computed once per
  unit after the synapses), plus the cell's offset. With ``forward_stp=True`` the synapses depress
  (Tsodyks-Markram STD on events, jump ``q u x / U``; :func:`circuits.ensemble_parts.forward_synapses`);
* feedback (``feedback=True``): dendritic STF synapses (Tsodyks-Markram, :data:`neurons.params.STF`)
  from one cell of each upper ensemble onto one cell of each lower one, AMPA for W > 0, GABA for
  W < 0, weight ``fb_gain |W| / max|W|`` in dendritic leak units, every spike transmitted;
* PV/SOM per layer (``interneurons=True``, as in :mod:`circuits.microcircuit`): ``n/4`` PV cells
  get STD input from the layer's cells and inhibit their somata, ``n/4`` SOM cells get STF input
  and inhibit their dendrites (:data:`circuits.wiring.WIRING`; p = max(0.05, 4/n)).

Frames are streamed in real time (``mode='stream'``: one every ``frame_period_ms``, no reset, each
layer read out after a fixed latency) or held (``mode='settle'``: ``t_settle + t_count`` per frame,
counted in the last ``t_count``; between frames the state settles, or is reset with ``reset=True``);
see :mod:`circuits.streaming`. :func:`ablate` switches circuit parts off by name (:data:`PARTS`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from neurons.common import MburstError

from circuits.connectivity import conv_pairs, dense_pairs, expand_pre_cells
from circuits.ensemble_parts import (PopulationRecord, SynapseRecord, bin_counts, feedback_synapses,
                                     forward_current, forward_synapses, interneurons, layer_cells)
from circuits.ensemble_config import PARTS, EnsembleConfig, ablate
from circuits.streaming import frame_schedule

__all__ = ["EnsembleLayer", "EnsembleCells", "EnsembleConfig", "EnsembleRun", "PopulationRecord", "SynapseRecord",
           "PARTS", "ablate", "run_ensembles"]


@dataclass(frozen=True)
class EnsembleLayer:
    """One layer of ensembles, in plain numbers.

    ``name``: Brian2 names derive from it (``pyr_<name>``, ``cur_<name>``, ...). ``kind``:
    ``'conv2d'`` (``weight`` [C_out, C_in, kh, kw], ``stride``, ``padding``) or ``'dense'``
    (``weight`` [units, inputs]). ``out_shape``: the unit grid. ``cells_per_unit``: cells of each
    ensemble. ``weight_pA``: somatic current (pA) per unit of ``W e`` (e = E / e_ref).
    Input layers give ``drive_pA`` [frames, units] (pA, saturation included) and no sources;
    the others ``bias_pA`` [units] and ``sources``: ``(layer, offset)`` pairs, the earlier layers
    they read and where each starts in the flattened input (dense layers over concatenated inputs).
    """

    name: str
    kind: str
    out_shape: tuple
    cells_per_unit: int
    weight: np.ndarray
    weight_pA: float = 0.0
    bias_pA: np.ndarray | None = None
    drive_pA: np.ndarray | None = None
    sources: tuple = ()
    stride: int = 1
    padding: int = 0

    @property
    def units(self) -> int:
        """Units (ensembles) of the layer."""
        return int(np.prod(self.out_shape))

    @property
    def cells(self) -> int:
        """Pyramidal cells of the layer."""
        return self.units * self.cells_per_unit

    @property
    def is_input(self) -> bool:
        """Driven by currents from outside the network (``drive_pA``)."""
        return self.drive_pA is not None


@dataclass(frozen=True)
class EnsembleCells:
    """How every ensemble's cells are set up, from a measured transfer function (pA, Hz).

    ``e_ref_hz``: the event rate a presynaptic rate of 1 stands for; ``i_max_pA``, ``i_soft_pA``:
    top and softness of the somatic drive's saturation; ``i_dend_pA``: constant dendritic
    current; ``offset_spread_pA``: somatic offsets of an ensemble's cells (+-);
    ``quiet``: the cells were measured without background (deterministic), so they run without it
    and start at random potentials between rest and threshold.
    """

    e_ref_hz: float
    i_max_pA: float
    i_soft_pA: float
    i_dend_pA: float
    offset_spread_pA: float = 0.0
    quiet: bool = False


@dataclass
class EnsembleRun:
    """What a run of the ensembles gives (``F`` frames).

    ``event_rate_hz[layer]``: [F, units], events per cell and second in each read-out window;
    ``burst_prob[layer]``: [F, units], bursts / events (NaN where no event); ``cells[layer]``:
    pyramidal cells; ``window_start_s`` [F] and ``window_s``: the read-out (deepest layer's) windows (s);
    ``layer_window_start_s[layer]`` [F]: each layer's window starts (s; streamed, shallower layers are
    read earlier); ``frame_s``: simulated time per frame (s); ``latency_s``: the read-out's delay after
    each frame's onset (s);
    ``dt_s``: the time step (s); ``populations``, ``synapses``: every spiking population (with its
    monitors) and synapse group, for spike and synaptic-event accounting; ``target``: the Brian2
    target used; ``wall_s``: build + run wall time (s).
    """

    event_rate_hz: dict
    burst_prob: dict
    cells: dict
    window_start_s: np.ndarray
    window_s: float
    layer_window_start_s: dict
    frame_s: float
    latency_s: float
    dt_s: float
    populations: list
    synapses: list
    target: str
    wall_s: float

    @property
    def frames(self) -> int:
        """Frames run."""
        return len(self.window_start_s)


def _check_layers(layers) -> int:
    """Frames of the input drive; raises MburstError on an inconsistent specification."""
    names, frames = {}, set()
    for s in layers:
        if s.kind not in ("conv2d", "dense"):
            raise MburstError(f"ensembles: layer '{s.name}' has kind {s.kind!r}; expected 'conv2d' or 'dense'")
        if not isinstance(s.cells_per_unit, int) or s.cells_per_unit < 1:
            raise MburstError(f"ensembles: layer '{s.name}' needs cells_per_unit >= 1, got {s.cells_per_unit!r}")
        if s.is_input == bool(s.sources) or (s.bias_pA is None) == (not s.is_input):
            raise MburstError(f"ensembles: layer '{s.name}' needs either drive_pA (an input layer, no sources) or "
                              "bias_pA and sources")
        if s.is_input:
            if np.ndim(s.drive_pA) != 2 or np.shape(s.drive_pA)[1] != s.units:
                raise MburstError(f"ensembles: layer '{s.name}' drive_pA has shape {np.shape(s.drive_pA)}; expected "
                                  f"[frames, {s.units}]")
            frames.add(np.shape(s.drive_pA)[0])
        for src, _ in s.sources:
            if src not in names:
                raise MburstError(f"ensembles: layer '{s.name}' reads '{src}', which is not an earlier layer")
        names[s.name] = s
    if len(frames) != 1 or min(frames) < 1:
        raise MburstError(f"ensembles: the input layers' drive_pA must have the same number >= 1 of frames, got "
                          f"{sorted(frames) or 'no input layer'}")
    return frames.pop()


_X_SAT = "(i_max - I_bias - I_fwd) / i_soft"


def run_ensembles(layers, cells: EnsembleCells, config: EnsembleConfig, progress: bool = True) -> EnsembleRun:
    """Build the Brian2 network of ``layers`` (in forward order), run every frame, and count events.

    Parameters
    ----------
    layers : sequence of EnsembleLayer
        The layers; each reads only earlier ones.
    cells : EnsembleCells
        Cell set-up shared by all ensembles.
    config : EnsembleConfig
        Times, circuit parts and Brian2 target.
    progress : bool
        Show a frame progress bar (runtime targets).

    Returns
    -------
    EnsembleRun
        Event rates (Hz) and burst probabilities per layer [frames, units], the counting windows and
        the populations and synapses to count spikes and synaptic events on.

    Raises
    ------
    MburstError
        For an inconsistent layer specification or invalid times.
    """
    from brian2 import EventMonitor, Network, SpikeMonitor, TimedArray, defaultclock, linked_var
    from brian2 import ms, pA
    from brian2 import seed as brian_seed

    from neurons.device import use_target
    from neurons.inputs import payeur_background
    from neurons.params import PyramidalParams
    from neurons.transfer_fit import cell_offsets

    config.validate()
    n_frames = _check_layers(layers)
    sched = frame_schedule(config, layers, n_frames)
    t0 = time.perf_counter()
    dt = config.dt_ms * ms
    t_frame = sched.frame_ms * ms
    chosen = use_target(config.target, threads=config.threads, tag=config.build_tag,
                        n_neurons=sum(s.cells for s in layers), duration=sched.duration_ms * ms)
    defaultclock.dt = dt
    brian_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    params = PyramidalParams()
    groups, objects, pops, syns, deferred = {}, [], [], [], []
    for s in layers:
        n_per = s.cells_per_unit
        ns = {"tau_syn": config.tau_syn * ms, "i_max": cells.i_max_pA * pA, "i_soft": cells.i_soft_pA * pA}
        if s.is_input:  # a TimedArray holds its last row after its end
            after = s.drive_pA[-1:] if sched.hold_last else np.zeros((1, s.units))
            ns["i_in"] = TimedArray(np.vstack([s.drive_pA, after]) * pA, dt=t_frame)
        g = layer_cells(s.name, s.cells, n_per, params, s.is_input, ns, dt)
        g.I_ext_d = cells.i_dend_pA * pA
        g.I_off = np.tile(cell_offsets(n_per, cells.offset_spread_pA), s.units) * pA
        if cells.quiet:  # deterministic cells: random initial potentials keep an ensemble's cells out of step
            g.v_s = params.E_L + (params.theta_0 - params.E_L) * rng.random(len(g))
        if not s.is_input:  # the ensembles' shared synaptic current and its saturated drive
            cur = forward_current(s.name, s.units, config.forward_stp, ns, dt, t_frame if config.reset else None)
            cur.I_bias = s.bias_pA * pA
            cur.run_regularly(f"I_sat = i_max - i_soft * (clip({_X_SAT}, 0, inf) + log(1 + exp(-abs({_X_SAT}))))",
                              when="after_synapses", name=f"cur_{s.name}_saturation")
            g.I_sat = linked_var(cur, "I_sat", index=np.arange(len(g)) // n_per)
            objects.append(cur)
        if config.reset:
            g.run_regularly("v_s = E_L\nv_d = E_L\nw_s = 0*amp\nw_d = 0*amp\ntheta = theta_0", dt=t_frame, when="start")
        mon = SpikeMonitor(g, name=f"spk_{s.name}")
        pmon = EventMonitor(g, "plateau", name=f"plat_{s.name}", record=True)
        objects += [g, mon, pmon]
        if config.background and not cells.quiet:
            objects += payeur_background(g, "pyramidal")
        groups[s.name] = (g, s, mon)
        pops.append(PopulationRecord(s.name, s.name, len(g), mon, pyramidal=True, plateaus=pmon))
        for src, offset in s.sources:
            pg, ps, _ = groups[src]
            pn = ps.cells_per_unit
            if s.kind == "conv2d":
                pre, post, w = conv_pairs(ps.out_shape, s.weight, s.stride, s.padding)
            else:
                pre, post, w = dense_pairs(s.weight, offset, ps.units)
            keep = w != 0
            i, j, wc = expand_pre_cells(pre[keep], post[keep], w[keep], pn)
            q = s.weight_pA * wc / (cells.e_ref_hz * config.tau_syn * 1e-3)  # pA * s -> jump in pA
            for syn, pre_cells in forward_synapses(pg, cur, i, j, q, config.forward_stp, f"fwd_{src}_{s.name}"):
                objects.append(syn)
                syns.append(SynapseRecord(src, pre_cells, "forward", "event", copies=n_per))
            if config.feedback:
                fb, fb_syns = feedback_synapses(g, pg, pre[keep], post[keep], w[keep], n_per, pn, config.fb_gain,
                                                s.name, src)
                objects += fb
                syns += fb_syns
        if config.interneurons:
            ins, in_pops = interneurons(g, s.name, rng, deferred)
            objects += ins
            pops += in_pops
    network = Network(*objects)
    if chosen.endswith("_standalone") or not progress:
        network.run(sched.duration_ms * ms, namespace={})
    else:
        from tqdm import tqdm

        for _ in tqdm(range(n_frames), desc=f"spiking frames ({chosen})", unit="frame"):
            network.run(t_frame, namespace={})
        if sched.duration_ms > n_frames * sched.frame_ms:  # the stream's latency tail
            network.run(sched.duration_ms * ms - n_frames * t_frame, namespace={})
    wall = time.perf_counter() - t0
    # random connectivity is known only after the run in standalone mode
    syns += [SynapseRecord(pre_name, np.asarray(syn.i[:]), pathway, "spike") for pre_name, syn, pathway in deferred]
    width = sched.window_ms * 1e-3
    rate, pburst, starts = {}, {}, {}
    for s in layers:
        starts[s.name] = sched.starts_s(n_frames, s.name)
        ev, bu = bin_counts(groups[s.name][2], s.cells_per_unit, starts[s.name], width, s.units)
        rate[s.name] = ev / (s.cells_per_unit * width)
        with np.errstate(invalid="ignore", divide="ignore"):
            pburst[s.name] = np.where(ev > 0, bu / np.maximum(ev, 1), np.nan)
    return EnsembleRun(rate, pburst, {s.name: s.cells for s in layers}, sched.starts_s(n_frames), width, starts,
                       sched.frame_ms * 1e-3, sched.output_delay_ms * 1e-3, config.dt_ms * 1e-3, pops, syns, chosen,
                       wall)
