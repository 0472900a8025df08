"""Layers of pyramidal ensembles standing for the units of a rate network, run frame by frame (Brian2).

Built from plain layer specifications (:class:`EnsembleLayer`: numpy arrays and currents in pA;
no torch): :mod:`rate_bridge.convert` maps a trained model onto them. Per layer:

* each unit -> an *ensemble* of ``cells_per_unit`` two-compartment pyramidal cells
  (:func:`neurons.pyramidal.pyramidal_group`; Payeur Poisson background unless the cells are
  ``quiet``; dendritic current ``i_dend_pA``; somatic offsets :func:`neurons.transfer_fit.cell_offsets`);
* input layers: somatic current ``drive_pA[k]`` during frame ``k`` (a ``TimedArray``);
* other layers: synapses from every cell of ensemble ``a`` onto the shared somatic current of unit
  ``b`` (:mod:`circuits.connectivity`, :mod:`circuits.shared_current`): every presynaptic spike,
  depressing (STD), adds ``q u x / U`` with ``q = weight_pA W_ba / (e_ref tau_syn n_a)`` and
  ``tau_syn dI/dt = -I``, so the mean current is ``weight_pA sum_a W_ba E_a / e_ref`` for ensemble event
  rates ``E_a`` (Hz; a burst adds little more than its first spike). The somatic drive
  ``I = bias_pA + I_fwd`` saturates softly, ``I_ext_s = i_max - i_soft softplus((i_max - I)/i_soft)``
  (once per unit after the synapses), plus the cell's offset;
* feedback (the ``fb_dend`` projection of :data:`circuits.wiring.WIRING`): every spike of upper unit
  ``b``'s cells, facilitating (STF), onto the shared dendritic current of lower unit ``a``, weight tied
  to the forward one (Y = W): a burst adds ``i_scale_d W_ba / (e_ref tau_syn n_b)``, so the mean
  dendritic current is ``i_scale_d sum_b W_ba (B_b - B0_b) / e_ref`` for burst rates ``B_b`` (Hz), the
  spiking counterpart of burstprop's ``Y b`` (eq. 5, without the gain h(e)); ``B0_b`` (the upper layer's
  ``burst_offset_hz``, default 0) is subtracted as a constant;
* dendrites: a constant current ``i_dend_pA`` (where the burst probability is mid-range), the
  feedback, and a per-frame current ``dend_pA`` where a layer has one (the output's teaching);
* PV/SOM per layer (as in :mod:`circuits.microcircuit`): ``n/4`` PV cells get STD input from the
  layer's cells and inhibit their somata, ``n/4`` SOM cells get STF input and inhibit their dendrites
  (:data:`circuits.wiring.WIRING`; p = max(0.05, 4/n)).

:class:`EnsembleConfig` switches parts off (:func:`ablate`, :data:`PARTS`); the forward-only network
that came before the circuit (:data:`FORWARD_ONLY`) keeps static synapses on events and no feedback or interneurons.

Frames are streamed in real time (``mode='stream'``: one every ``frame_period_ms``, no reset, each
layer read out after a fixed latency) or held (``mode='settle'``: ``t_settle + t_count`` per frame,
counted in the last ``t_count``; between frames the state settles, or is reset with ``reset=True``);
see :mod:`circuits.streaming`. :func:`ablate` switches circuit parts off by name (:data:`PARTS`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from neurons.common import MburstError

from circuits.connectivity import conv_pairs, dense_pairs, expand_pre_cells
from circuits.ensemble_parts import PopulationRecord, SynapseRecord, bin_counts, interneurons, layer_cells
from circuits.ensemble_config import FORWARD_ONLY, PARTS, EnsembleConfig, ablate
from circuits.shared_current import V_UNIT_MV, burst_efficacy, shared_current, shared_synapses
from circuits.streaming import frame_schedule
from circuits.wiring import WIRING, stp_label, stp_of

__all__ = ["EnsembleLayer", "EnsembleCells", "EnsembleConfig", "EnsembleRun", "PopulationRecord", "SynapseRecord",
           "PARTS", "FORWARD_ONLY", "ablate", "run_ensembles"]


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
    ``dend_pA`` [frames, units] (pA, optional): dendritic current added during each frame (teaching).
    ``burst_offset_hz``: the burst rate (Hz) at which this layer's feedback stands for zero; the lower layers'
    shared dendritic currents subtract it as a constant, ``i_scale_d sum_b W_ba burst_offset / e_ref`` (before
    the feedback's saturation). ``interneuron_gain``: factor on the layer's weights onto its PV and SOM
    (:func:`circuits.calibration.interneuron_gain`).
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
    dend_pA: np.ndarray | None = None
    burst_offset_hz: float = 0.0
    interneuron_gain: float = 1.0

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
    and start at random potentials between rest and threshold; ``i_scale_d_pA``: dendritic current per
    unit of ``W b`` (feedback); ``burst_isi_ms``: the cells' intra-burst interval (normalises STF);
    ``i_fb_max_pA``: the feedback current saturates softly, ``I_fb = i_fb_max tanh(I / i_fb_max)``, so the
    dendrite stays in the range where it sets the burst probability and not the event rate (above it, sustained
    plateaus drive the soma tonically); burstprop's ``sigma(beta u)`` saturates the same way.
    """

    e_ref_hz: float
    i_max_pA: float
    i_soft_pA: float
    i_dend_pA: float
    offset_spread_pA: float = 0.0
    quiet: bool = False
    i_scale_d_pA: float = 100.0
    burst_isi_ms: float = 6.0
    i_fb_max_pA: float = 300.0


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
        if s.dend_pA is not None and (np.ndim(s.dend_pA) != 2 or np.shape(s.dend_pA)[1] != s.units):
            raise MburstError(f"ensembles: layer '{s.name}' dend_pA has shape {np.shape(s.dend_pA)}; expected "
                              f"[frames, {s.units}]")
        for src, _ in s.sources:
            if src not in names:
                raise MburstError(f"ensembles: layer '{s.name}' reads '{src}', which is not an earlier layer")
        names[s.name] = s
    if len(frames) != 1 or min(frames) < 1:
        raise MburstError(f"ensembles: the input layers' drive_pA must have the same number >= 1 of frames, got "
                          f"{sorted(frames) or 'no input layer'}")
    return frames.pop()


_X_SAT = "(i_max - I_bias - I) / i_soft"


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
    from brian2 import ms, mV, pA
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
    defaultclock.dt = dt  # every group runs on it: one clock keeps the standalone code the same from build to build
    brian_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    params = PyramidalParams() if config.dendrites else dataclasses.replace(PyramidalParams(), g_d=0 * pA, c=0 * pA)
    fwd_stp, fb_stp = (stp_of(WIRING["ff_soma"]), stp_of(WIRING["fb_dend"])) if config.stp else (None, None)
    fwd_norm = float(fwd_stp.U) if fwd_stp else 1.0  # a lone event transmits q
    fb_norm = burst_efficacy(fb_stp, cells.burst_isi_ms) if fb_stp else 2.0  # a (two-spike) burst transmits q
    tau_s = config.tau_syn * 1e-3
    with_fb = {src for s in layers for src, _ in s.sources} if config.feedback else set()
    groups, dend, objects, pops, syns, deferred, fb_bias = {}, {}, [], [], [], [], {}
    for s in layers:
        n_per = s.cells_per_unit
        ns = {"tau_syn": config.tau_syn * ms, "i_max": cells.i_max_pA * pA, "i_soft": cells.i_soft_pA * pA,
              "v_unit": V_UNIT_MV * mV, "i_fb_max": cells.i_fb_max_pA * pA}  # names of the linked I_fb
        if s.is_input:  # a TimedArray holds its last row after its end
            after = s.drive_pA[-1:] if sched.hold_last else np.zeros((1, s.units))
            ns["i_in"] = TimedArray(np.vstack([s.drive_pA, after]) * pA, dt=t_frame)
        if s.dend_pA is not None:
            ns["d_in"] = TimedArray(np.vstack([s.dend_pA, s.dend_pA[-1:] if sched.hold_last else np.zeros((1, s.units))])
                                    * pA, dt=t_frame)
        g = layer_cells(s.name, s.cells, n_per, params, s.is_input, ns, s.name in with_fb, s.dend_pA is not None)
        g.I_dend = cells.i_dend_pA * pA
        g.I_off = np.tile(cell_offsets(n_per, cells.offset_spread_pA), s.units) * pA
        if cells.quiet:  # deterministic cells: random initial potentials keep an ensemble's cells out of step
            g.v_s = params.E_L + (params.theta_0 - params.E_L) * rng.random(len(g))
        reset_dt = t_frame if config.reset else None
        if s.name in with_fb:  # the shared dendritic current the upper layers' feedback drives
            dend[s.name] = shared_current(f"dcur_{s.name}", s.units, "tau_syn", {**ns, "i_fb_max": cells.i_fb_max_pA * pA},
                                          reset_dt, extra="I_bias_d : amp (constant)\n"
                                                "I_sat_d = i_fb_max*tanh((I + I_bias_d)/i_fb_max) : amp\n")
            g.I_fb = linked_var(dend[s.name], "I_sat_d", index=np.arange(len(g)) // n_per)
            objects.append(dend[s.name])
        if not s.is_input:  # the ensembles' shared somatic current and its saturated drive
            cur = shared_current(f"cur_{s.name}", s.units, "tau_syn", ns, reset_dt,
                                 extra="I_bias : amp (constant)\nI_sat : amp")
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
            pre, post, w = pre[keep], post[keep], w[keep]
            i, j, wc = expand_pre_cells(pre, post, w, pn)
            q = s.weight_pA * wc / (cells.e_ref_hz * tau_s)  # pA * s -> jump in pA per event
            syn = shared_synapses(pg, cur, i, j, q, fwd_stp, fwd_norm, config.forward_pathway, f"fwd_{src}_{s.name}")
            if syn is not None:
                objects.append(syn)
                syns.append(SynapseRecord(src, i, "forward", config.forward_pathway, n_per, stp_label(fwd_stp)))
            if src in with_fb:  # tied feedback Y = W: upper cells of unit b -> lower unit a's dendritic current
                i, j, wc = expand_pre_cells(post, pre, w, n_per)
                q = cells.i_scale_d_pA * wc / (cells.e_ref_hz * tau_s)  # per burst
                if s.burst_offset_hz:  # the upper layer's burst rate that stands for zero feedback
                    np.add.at(fb_bias.setdefault(src, np.zeros(ps.units)), pre,
                              -cells.i_scale_d_pA * s.burst_offset_hz / cells.e_ref_hz * w)
                syn = shared_synapses(g, dend[src], i, j, q, fb_stp, fb_norm, "spike", f"fb_{s.name}_{src}")
                if syn is not None:
                    objects.append(syn)
                    syns.append(SynapseRecord(s.name, i, "feedback", "spike", pn, stp_label(fb_stp)))
        if config.interneurons:
            ins, in_pops = interneurons(g, s.name, rng, deferred, gain=s.interneuron_gain)
            objects += ins
            pops += in_pops
    for name, bias in fb_bias.items():
        dend[name].I_bias_d = bias * pA
    network = Network(*objects)
    if chosen.endswith("_standalone") or not progress:
        network.run(sched.duration_ms * ms, namespace={})
    else:
        from tqdm import tqdm

        for _ in tqdm(range(n_frames), desc=f"spiking frames ({chosen})", unit="frame", disable=None):  # no TTY: silent
            network.run(t_frame, namespace={})
        if sched.duration_ms > n_frames * sched.frame_ms:  # the stream's latency tail
            network.run(sched.duration_ms * ms - n_frames * t_frame, namespace={})
    wall = time.perf_counter() - t0
    # random connectivity is known only after the run in standalone mode
    syns += [SynapseRecord(pre_name, np.asarray(syn.i[:]), pathway, "spike", stp=stp)
             for pre_name, syn, pathway, stp in deferred]
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
