"""The spiking burst-dependent rule on the shared synapses of ensembles, computed exactly from recorded spikes.

The rule (Payeur et al. 2021, eq. 1; :mod:`circuits.plasticity`, reference.md section 3), per synapse from
presynaptic cell ``a`` to postsynaptic cell ``b``::

    dw_ab/dt = eta [B_b(t) - Pbar_b(t) E_b(t)] etilde_a(t)

with ``etilde_a`` the presynaptic event trace (``tau_pre``, +1 per event) and ``Pbar_b = Bbar_b / Ebar_b`` from
the moving averages (``tau_avg``, +1/tau_avg per post event or burst). In the circuit of
:mod:`circuits.ensembles` every cell of pre unit ``j`` reaches every cell of post unit ``i`` through one shared
weight ``W_ij`` (:mod:`circuits.shared_current`), so a synapse per cell pair cannot learn on its own. The
shared weight's change is the mean of the per-pair rule over the ``n_i n_j`` cell pairs; the rule is linear
in the trace, so the mean commutes with it::

    dW_ij = eta / (n_i n_j) sum_{b in i} [ sum_{bursts of b} etilde_j(t) - sum_{events of b} Pbar_b(t) etilde_j(t) ]

with ``etilde_j = sum_{a in j} etilde_a``. :func:`unit_weight_change` computes it from the recorded events and
bursts, exactly as Brian2's event-driven synapses of :func:`circuits.plasticity.burst_plastic_synapses` with all
cell pairs would (tested against them): within one time step presynaptic pathways run before postsynaptic ones,
so a post event sees the trace of a pre event in the same step; ``Pbar`` is read before the post event's own
increment. Weight bounds and homeostasis are not applied here: a caller that changes weights between runs
(:mod:`rate_bridge.learning`) applies the bounds when it adds ``dW``.

Computation: per post unit, the backward trace ``G(t) = sum_{s: t_s >= t} c_s exp(-(t_s - t)/tau_pre)`` of its
signals (``c = +1`` per burst, ``-Pbar`` per event, where learning is on) is read at every presynaptic event,
and summed per pre unit: ``O(units_post x pre events)``, no cell-pair matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brian2 import Hz, second

from neurons.common import MburstError

__all__ = ["RuleAverages", "UnitUpdate", "unit_weight_change", "decayed_prefix_sums", "events_from",
           "fill_silent_windows", "first_learned_frame", "ensemble_weight_changes"]

_BLOCK_TAUS = 50.0  # exponent range of one block of the exponential sums (e^50 ~ 5e21: no overflow, no cancellation)
_EPS_HZ = 1e-9  # Pbar = Bbar / (Ebar + 1e-9 Hz), as in circuits.plasticity


@dataclass(frozen=True)
class RuleAverages:
    """The rule's moving averages of each postsynaptic cell: ``ebar_hz``, ``bbar_hz`` [cells] (Hz)."""

    ebar_hz: np.ndarray
    bbar_hz: np.ndarray

    @classmethod
    def measured(cls, post, cells: int, start_s: float, stop_s: float) -> "RuleAverages":
        """Each cell's event and burst rate in ``[start_s, stop_s)`` (s): averages that start from the cell's history.

        Parameters
        ----------
        post : neurons.bursts.Detection
            Events and bursts (``event_i``, ``event_t``, ``burst_i``, ``burst_t``; s).
        cells : int
            Cells of the population.
        start_s, stop_s : float
            The window (s), ``stop_s > start_s``.

        Returns
        -------
        RuleAverages
        """
        span = float(stop_s - start_s)
        if not span > 0:
            raise MburstError(f"RuleAverages.measured: empty window [{start_s}, {stop_s})")

        def rate(i, t):
            inside = (t >= start_s) & (t < stop_s)
            return np.bincount(np.asarray(i)[inside], minlength=cells).astype(float) / span

        # a burst counts with its event (its first spike), so that Bbar <= Ebar: by its onset
        return cls(rate(post.event_i, post.event_t), rate(post.burst_i, post.burst_onset_t))


@dataclass(frozen=True)
class UnitUpdate:
    """What :func:`unit_weight_change` gives: ``dw`` [post units, pre units] (weight units), the ``averages`` at the
    end of the run, and the counts of the gated post ``events`` and ``bursts`` (each writes every weight onto its
    cell) and of all ``pre_events`` (each advances a trace)."""

    dw: np.ndarray
    averages: RuleAverages
    events: int
    bursts: int
    pre_events: int


def decayed_prefix_sums(t, c, tau: float) -> np.ndarray:
    """``S_k = sum_{m <= k} c_m exp(-(t_k - t_m)/tau)`` for sorted times ``t`` (an exponential trace read at its own
    increments), in blocks of ``50 tau`` so the exponentials neither overflow nor cancel.

    Parameters
    ----------
    t : numpy.ndarray, shape (K,)
        Non-decreasing times (s).
    c : numpy.ndarray, shape (K,)
        Increments.
    tau : float
        Time constant (s), > 0.

    Returns
    -------
    numpy.ndarray, shape (K,)
    """
    t, c = np.asarray(t, float), np.asarray(c, float)
    out = np.empty(len(t))
    start, carry, t_carry = 0, 0.0, None
    while start < len(t):
        stop = max(start + 1, int(np.searchsorted(t, t[start] + _BLOCK_TAUS * tau, side="left")))
        x = (t[start:stop] - t[start]) / tau
        s = np.cumsum(c[start:stop] * np.exp(x)) * np.exp(-x)
        if t_carry is not None:
            s += carry * np.exp(-(t[start:stop] - t_carry) / tau)
        out[start:stop] = s
        carry, t_carry, start = s[-1], t[stop - 1], stop
    return out


def _pbar_at_events(post, n_cells: int, averages: RuleAverages, tau_avg: float, steps):
    """``Pbar`` of each post event before its own increment, and the averages at the end (``steps`` gives times)."""
    ev_i, bu_i = np.asarray(post.event_i, np.int64), np.asarray(post.burst_i, np.int64)
    cell = np.concatenate([ev_i, bu_i])
    t = np.concatenate([steps(post.event_t), steps(post.burst_t)])
    is_event = np.concatenate([np.ones(len(ev_i), bool), np.zeros(len(bu_i), bool)])
    order = np.lexsort((~is_event, t, cell))  # per cell in time; an event before a burst of the same step
    cell, t, is_event = cell[order], t[order], is_event[order]
    pbar = np.empty(len(t))
    bounds = np.searchsorted(cell, np.arange(n_cells + 1))
    for b in range(n_cells):
        lo, hi = bounds[b], bounds[b + 1]
        if lo == hi:
            continue
        tt = np.concatenate([[0.0], t[lo:hi]])  # the averages at t = 0 start the sums
        ev = is_event[lo:hi]
        e_sum = decayed_prefix_sums(tt, np.concatenate([[averages.ebar_hz[b]], ev / tau_avg]), tau_avg)[1:]
        b_sum = decayed_prefix_sums(tt, np.concatenate([[averages.bbar_hz[b]], ~ev / tau_avg]), tau_avg)[1:]
        e_before = e_sum - ev / tau_avg  # read before this signal's own increment
        b_before = b_sum - ~ev / tau_avg
        pbar[lo:hi] = b_before / (e_before + _EPS_HZ)
    return cell, t, is_event, pbar


def unit_weight_change(pre, pre_cells_per_unit: int, pre_units: int, post, post_cells_per_unit: int, post_units: int,
                       params, end_s: float, averages: RuleAverages | None = None, learn_from_s: float = 0.0,
                       learn_until_s: float = np.inf, dt_s: float | None = None,
                       pbar_windows: tuple | None = None) -> UnitUpdate:
    """The shared weights' change under the burst-dependent rule, from recorded events and bursts (module docstring).

    Parameters
    ----------
    pre, post : neurons.bursts.Detection
        Events and bursts of the pre and post populations (``event_i``/``event_t``, ``burst_i``/``burst_t``; cell
        indices, times in s from the run's start); cell ``u n + r`` belongs to unit ``u``.
    pre_cells_per_unit, pre_units, post_cells_per_unit, post_units : int
        Cells per unit and units of each population.
    params : circuits.plasticity.BurstPlasticityParams
        ``eta``, ``tau_pre``, ``tau_avg`` (and ``e0``, ``p0`` for averages not given); ``eta_homeo`` must be 0.
    end_s : float
        End of the run (s): where the returned averages are read.
    averages : RuleAverages, optional
        The post cells' ``Ebar``, ``Bbar`` at ``t = 0`` (default: ``e0`` and ``p0 e0``).
    learn_from_s, learn_until_s : float, optional
        Weights change for post signals in ``[learn_from_s, learn_until_s)`` (s), the learning gate; the
        averages and traces run all the time.
    dt_s : float, optional
        The simulation step (s): times are rounded to it, so that same-step pre and post events are ordered as in
        Brian2 (pre first).
    pbar_windows : tuple (starts, pbar), optional
        Window starts (s, increasing, shape (K,)) and a ``Pbar`` per window and post unit (shape (K, post_units)):
        each post event reads the ``Pbar`` of its unit in the last window starting at or before it (the first window
        before the first start) instead of the moving averages' (which still run, for the returned averages).

    Returns
    -------
    UnitUpdate
        ``dw`` [post_units, pre_units] (weight units), the averages at ``end_s`` and the update counts.

    Raises
    ------
    MburstError
        A cell index out of range, ``eta_homeo`` > 0 (homeostasis acts per synapse, not here), or averages of the
        wrong size.
    """
    if float(params.eta_homeo / second) > 0:
        raise MburstError("unit_weight_change: homeostasis (eta_homeo > 0) is not computed at the unit level")
    n_pre, n_post = pre_units * pre_cells_per_unit, post_units * post_cells_per_unit
    for what, det, n in (("pre", pre, n_pre), ("post", post, n_post)):
        for idx in (det.event_i, det.burst_i):
            if len(idx) and (np.min(idx) < 0 or np.max(idx) >= n):
                raise MburstError(f"unit_weight_change: a {what} cell index lies outside 0..{n - 1}")
    if averages is None:
        e0 = float(params.e0 / Hz)
        averages = RuleAverages(np.full(n_post, e0), np.full(n_post, params.p0 * e0))
    if len(averages.ebar_hz) != n_post or len(averages.bbar_hz) != n_post:
        raise MburstError(f"unit_weight_change: averages hold {len(averages.ebar_hz)} cells, the post population "
                          f"{n_post}")
    tau_pre, tau_avg = float(params.tau_pre / second), float(params.tau_avg / second)

    def steps(t):
        t = np.asarray(t, float)
        return t if dt_s is None else np.round(t / dt_s) * dt_s

    cell, t_sig, is_event, pbar = _pbar_at_events(post, n_post, averages, tau_avg, steps)
    if pbar_windows is not None:
        starts, table = np.asarray(pbar_windows[0], float), np.asarray(pbar_windows[1], float)
        if table.shape != (len(starts), post_units):
            raise MburstError(f"unit_weight_change: pbar_windows holds {table.shape}, need ({len(starts)}, "
                              f"{post_units}) (windows, post units)")
        k = np.clip(np.searchsorted(starts, t_sig, side="right") - 1, 0, len(starts) - 1)
        pbar = table[k, cell // post_cells_per_unit]
    gate = (t_sig >= learn_from_s) & (t_sig < learn_until_s)
    coef = np.where(is_event, -pbar, 1.0)[gate]
    unit_sig, t_sig = cell[gate] // post_cells_per_unit, t_sig[gate]
    t_pre = steps(pre.event_t)
    unit_pre = np.asarray(pre.event_i, np.int64) // pre_cells_per_unit
    dw = np.zeros((post_units, pre_units))
    for i in range(post_units):
        mine = np.flatnonzero(unit_sig == i)
        if not len(mine):
            continue
        ts = t_sig[mine]
        order = np.argsort(ts, kind="stable")
        ts, cs = ts[order], coef[mine][order]
        back = decayed_prefix_sums(-ts[::-1], cs[::-1], tau_pre)[::-1]  # G at each signal: signals at or after it
        first = np.searchsorted(ts, t_pre, side="left")  # the first signal at or after each pre event
        ok = first < len(ts)
        g = np.zeros(len(t_pre))
        g[ok] = back[first[ok]] * np.exp(-(ts[first[ok]] - t_pre[ok]) / tau_pre)
        dw[i] = np.bincount(unit_pre, weights=g, minlength=pre_units)
    dw *= float(params.eta) / (pre_cells_per_unit * post_cells_per_unit)

    def end_value(start, i, t):  # an average at end_s: its start value decayed, plus every increment decayed
        return start * np.exp(-end_s / tau_avg) + np.bincount(
            np.asarray(i, np.int64), np.exp(-(end_s - steps(t)) / tau_avg) / tau_avg, n_post)

    final = RuleAverages(end_value(averages.ebar_hz, post.event_i, post.event_t),
                         end_value(averages.bbar_hz, post.burst_i, post.burst_t))
    return UnitUpdate(dw, final, int(np.sum(gate & is_event)), int(np.sum(gate & ~is_event)), int(len(t_pre)))


def events_from(det, t0: float):
    """Events at or after ``t0`` (s) and the bursts of those events, timed from ``t0``. A burst whose first spike (its
    event) came before ``t0`` is left out with its event: the rule's averages see a burst only after its event
    (``Bbar <= Ebar``); an orphan burst of a silent cell would give ``Pbar = Bbar / 1e-9 Hz``."""
    from neurons.bursts import Detection

    ev, bu = det.event_t >= t0 - 1e-9, det.burst_onset_t >= t0 - 1e-9
    return Detection(det.event_i[ev], det.event_t[ev] - t0, det.event_size[ev], det.burst_i[bu], det.burst_t[bu] - t0,
                     det.burst_onset_t[bu] - t0)


def fill_silent_windows(burst_prob) -> np.ndarray:
    """Each unit's burst probability per window (:attr:`circuits.ensembles.EnsembleRun.burst_prob`), with the windows
    where it had no event (NaN) given its mean over the windows where it had one, and 0 where it never had one.

    Parameters
    ----------
    burst_prob : numpy.ndarray, shape (K, units)
        Bursts / events per window; NaN where no event.

    Returns
    -------
    numpy.ndarray, shape (K, units)
    """
    p = np.asarray(burst_prob, float)
    seen = np.isfinite(p)
    mean = np.where(seen.any(0), np.where(seen, p, 0.0).sum(0) / np.maximum(seen.sum(0), 1), 0.0)
    return np.where(seen, p, mean)


def first_learned_frame(run, layers, first_taught: int, settle_s: float, baseline: str, lead_in: int = 0) -> int:
    """The first frame of a pass (``first_taught - lead_in`` frames, after ``lead_in`` lead-in frames) that the rule
    learns from in every layer of ``layers`` (names; ``run.layer_window_start_s`` is read): with a two-pass
    ``baseline`` (``paired``, ``untaught``) the frames whose untaught windows start before ``settle_s`` (s) are left
    out of both passes (GRID, no lead-in: 24-25 of a 100-frame chunk at 1 s settling and 40 ms frames); with
    ``average`` none. Returns an int in ``0 .. first_taught - lead_in``."""
    if baseline == "average":
        return 0
    return max(int(np.sum(np.asarray(run.layer_window_start_s[k])[lead_in:first_taught] - settle_s < -1e-9))
               for k in layers)


def ensemble_weight_changes(run, layers, learn, params, averages: dict, first_taught: int, settle_s: float,
                            baseline: str = "average", lead_in: int = 0) -> dict:
    """The rule on the forward weights onto the layers ``learn`` of a run of :func:`circuits.ensembles.run_ensembles`.

    The rule starts ``settle_s`` into the run (signals before are not seen: a network that starts from rest settles
    first, its PV/SOM over about a second); weights change for the post signals in the read-out windows of frames
    ``first_taught`` onwards (the learning gate), the averages and traces run from ``settle_s`` on. With a two-pass
    ``baseline`` both passes learn from the same frames, :func:`first_learned_frame` onwards (one gate for all
    ``learn`` layers).

    ``baseline`` says where ``Pbar`` comes from:

    * ``"average"``: the rule as published, ``Pbar = Bbar / Ebar`` of the moving averages;
    * ``"paired"``: the run streams the same frames untaught (``lead_in .. first_taught - 1``, after ``lead_in``
      frames that lead in) and then taught; the change
      is the rule's over the taught windows minus the rule's over the untaught windows of the same frames (those
      after ``settle_s``, in both passes). The moving average ``Pbar`` cannot follow a burst probability that the
      untaught feedback moves from frame to frame (burstprop's ``pbar_t``); the rule then also learns the covariance
      of that movement with ``E_post etilde_pre``, a bias that teaching does not cause, and the difference removes
      it. Not what the teaching does to the averages: over a taught pass longer than ``tau_avg`` they follow the
      taught burst probability, and its net change becomes ``-dPbar E_post etilde_pre``, a uniform change (GRID
      output, 2 s averages, 4 s passes: a rate-level replay of the averages reproduced it at cosine 0.67);
    * ``"untaught"``: paired, but every post event, of either pass, reads as ``Pbar`` its ensemble's burst
      probability in the untaught window of its frame (the run's ``burst_prob``), burstprop's ``pbar_t`` (its
      no-teaching pass): teaching cannot move its own baseline. The untaught pass's change, subtracted, is what
      spike timing within a window leaves without teaching (on the GRID output 2 % of the taught pass's). ``Pbar``
      is then the ensemble's, not the cell's own history. Measured on the GRID output's collapse chunk (256 cells per
      unit, frames 300-400 of ``runs/learn_out_nout256``; no lead-in, burstprop over all 100 frames): cosine with
      burstprop's update at the same weights 0.26 (average), 0.04 (paired), 0.52 (untaught); one-signed part (mean
      over mean |dW|) -0.02, -0.95, -0.55.

    Parameters
    ----------
    run : circuits.ensembles.EnsembleRun
        The run (its pyramidal populations' spike monitors, windows and step).
    layers : sequence of circuits.ensembles.EnsembleLayer
        The run's layers (``name``, ``units``, ``cells_per_unit``, ``sources`` and ``weight`` are read).
    learn : sequence of str
        Dense layers whose incoming weights learn.
    params : circuits.plasticity.BurstPlasticityParams
        The rule.
    averages : dict
        ``{layer: RuleAverages}`` at ``settle_s``; a layer missing starts at its cells' rates from ``settle_s`` to
        the first taught frame. Updated in place to the run's end.
    first_taught : int
        Index of the first frame whose window learns (>= 1).
    settle_s : float
        When the rule starts (s), before frame ``first_taught``.
    baseline : {"average", "paired", "untaught"}, optional
        Where ``Pbar`` comes from (see above).
    lead_in : int, optional
        Windows before the untaught pass (two-pass baselines; :func:`rate_bridge.convert.run_frames`).

    Returns
    -------
    dict
        ``{layer: (dW [units, inputs], counts)}``: ``dW`` over the layer's whole input (zero where no source reads);
        counts of the gated post ``events`` and ``bursts``, ``weight_updates`` (each gated post event or burst
        writes every cell synapse onto its cell) and ``pre_events``.

    Raises
    ------
    MburstError
        An unknown ``baseline``; ``paired``/``untaught`` with no untaught window after ``settle_s``.
    """
    from neurons.bursts import detect_population

    if baseline not in ("average", "paired", "untaught"):
        raise MburstError(f"ensemble_weight_changes: baseline '{baseline}' is not average, paired or untaught")
    two_pass = baseline != "average"
    specs = {s.name: s for s in layers}
    needed = set(learn) | {src for k in learn for src, _ in specs[k].sources}
    trains = {p.layer: events_from(detect_population(np.asarray(p.spikes.i[:]), np.asarray(p.spikes.t[:])), settle_s)
              for p in run.populations if p.pyramidal and p.layer in needed}
    end_s = float(run.window_start_s[-1] + run.window_s) - settle_s
    lead = int(lead_in) if two_pass else 0
    skip = first_learned_frame(run, learn, first_taught, settle_s, baseline, lead)  # untaught frames in the settling
    out = {}
    for name in learn:
        spec = specs[name]
        starts = np.asarray(run.layer_window_start_s[name]) - settle_s
        if name not in averages:
            averages[name] = RuleAverages.measured(trains[name], spec.cells, 0.0, float(first_taught * run.frame_s
                                                                                        - settle_s))
        if skip >= first_taught - lead:
            raise MburstError(f"ensemble_weight_changes: layer '{name}' has no untaught window after the settling")
        gates = [(+1.0, starts[first_taught + skip], starts[-1] + run.window_s)]
        if two_pass:
            gates.append((-1.0, starts[lead + skip], starts[first_taught]))
        table = None
        if baseline == "untaught":  # window k and taught window k + first_taught - lead read untaught window k
            p_u = fill_silent_windows(np.asarray(run.burst_prob[name])[:first_taught])
            k = np.arange(len(starts))
            table = (starts, p_u[np.where(k < first_taught, k, k - (first_taught - lead))])
        dw = np.zeros(np.shape(spec.weight))
        counts = dict(events=0, bursts=0, weight_updates=0, pre_events=0)
        for k, (src, offset) in enumerate(spec.sources):
            pre = specs[src]
            for sign, lo, hi in gates:
                up = unit_weight_change(trains[src], pre.cells_per_unit, pre.units, trains[name], spec.cells_per_unit,
                                        spec.units, params, end_s, averages[name], float(lo), float(hi), run.dt_s,
                                        table)
                dw[:, offset:offset + pre.units] += sign * up.dw
                counts["weight_updates"] += (up.events + up.bursts) * pre.cells
                if k == 0:  # the post signals are the same for every source
                    counts["events"] += up.events
                    counts["bursts"] += up.bursts
                if sign > 0:
                    counts["pre_events"] += up.pre_events
        averages[name] = up.averages
        out[name] = (dw, counts)
    return out
