"""The energy-fidelity frontier: mask F1 (and SI-SNRi) against energy per second of audio, rate models and circuit.

One :class:`FrontierPoint` per trained rate model (every run of every setting: sizes, MBURST's beta and
update rescaling, Multimodal's activity (L1) penalty): its test F1, its hidden activity on the test
split (fraction of units with e > 0 and mean e, as training records them) and its
:class:`rate_bridge.scoreboard.ScoreRow` (ops and J per second of audio per device: dense MACs at
45 nm, and the event-driven execution on a spiking device). The spiking circuit's points are the
settings of a bridge scan (:class:`rate_bridge.equivalence.ScalingPoint`: frame period, cells per
unit, circuit parts), priced from the ledger totals each one recorded, by
:func:`rate_bridge.scoreboard.spiking_row` (the scoreboard's path: updates at each device's step).
:func:`equal_f1_comparison` answers the paper's claim where it can be answered: at equal F1 (within
``tol``), MBURST's firing and energy relative to Multimodal's.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurons.common import MburstError, atomic_savefig, atomic_write_json, atomic_write_text, csv_table, markdown_table

__all__ = ["FrontierPoint", "frontier_table", "equal_f1_comparison", "plot_frontier", "write_frontier",
           "scaling_setting", "scaling_row", "write_scaling", "scaling_points"]

DEVICES = ("45nm fp32 MAC", "Loihi")  # the dense execution at 45 nm and the event-driven one on Loihi


@dataclass
class FrontierPoint:
    """One trained model (or one setting of the spiking circuit) on the frontier.

    Attributes
    ----------
    model : str
        'mburst', 'multimodal', 'unimodal', or 'spiking <model>' (a bridge scan's setting).
    setting : str
        What was varied, e.g. 'c4/e32, beta=0.1, rescale on', 'c4/e32, l1=0.001', 'T=40 ms, n=16/6'.
    run : str
    f1 : float
        Mask F1 at 0.5: the test split for rate models, the scanned test frames for the circuit.
    active, mean_e : float or None
        Hidden activity on the test split: fraction of units with e > 0, mean e (None for the circuit).
    row : rate_bridge.scoreboard.ScoreRow
        Ops and J per second of audio (``si_snri_db`` when scored).
    spikes_per_frame : float or None
        The circuit's spikes per frame (pyramidal cells and interneurons).
    f1_rate_same_frames : float or None
        The circuit's points: the converted rate model's F1 on the same scanned frames (its F1 is not the
        split's, so compare with this).
    """

    model: str
    setting: str
    run: str
    f1: float
    active: float | None
    mean_e: float | None
    row: object
    spikes_per_frame: float | None = None
    f1_rate_same_frames: float | None = None

    @property
    def label(self) -> str:
        """'model (setting)'."""
        return f"{self.model} ({self.setting})"


def frontier_table(points: list[FrontierPoint]) -> tuple[list, list]:
    """Header and rows: one per point, with F1, activity, M-ops/s and J/s per device of :data:`DEVICES`.

    The ops columns are the scoreboard's power proxy (rate: dense MACs; circuit: synaptic ops + updates at
    the simulation step) and its event-driven / chip-step ops (rate: non-zero inputs x targets + updates;
    circuit: synaptic ops + updates at Loihi's step). A circuit has no dense 45 nm execution (blank).
    """
    header = ["model", "setting", "run", "F1", "rate F1, same frames", "SI-SNRi dB", "active fraction", "mean e",
              "spikes/frame",
              "power proxy M-ops/s", "event-driven / chip-step M-ops/s"] + [f"J/s {d}" for d in DEVICES]
    rows = []
    for p in sorted(points, key=lambda p: (p.model, p.setting, p.run)):
        r = p.row
        rows.append([p.model, p.setting, p.run, round(p.f1, 4), _r(p.f1_rate_same_frames),
                     "" if r.si_snri_db is None else round(r.si_snri_db, 2),
                     _r(p.active), _r(p.mean_e), _r(p.spikes_per_frame, 1), _r(_mega(r.ops_per_s), 2),
                     _r(_mega(r.event_ops_per_s), 2)]
                    + [f"{r.j_per_s[d]:.3e}" if d in r.j_per_s else "" for d in DEVICES])
    return header, rows


def _mega(v):
    return None if v is None else v / 1e6


def _r(v, digits: int = 4):
    return "" if v is None or not math.isfinite(v) else round(v, digits)


def equal_f1_comparison(points: list[FrontierPoint], tol: float = 0.02) -> str:
    """MBURST against Multimodal at equal F1: every pair of points whose test F1 differ by <= ``tol``.

    Pairs are grouped by (MBURST setting, Multimodal setting): runs of the same two settings are replicates
    and their ratios are averaged; different Multimodal settings (sizes, L1 strengths) are reported apart, so
    the claim is tested against each, the sparsest Multimodal that reaches the same F1 included.

    Parameters
    ----------
    points : list of FrontierPoint
    tol : float
        F1 tolerance.

    Returns
    -------
    str
        A markdown list: per MBURST setting, one line per Multimodal setting with a matching pair: the ratios
        MBURST / Multimodal (mean over the pairs) of the active fraction, mean e, event-driven ops and Loihi
        J/s; or one line saying that no Multimodal point matches.
    """
    out = []
    base = [p for p in points if p.model == "multimodal"]
    for setting in sorted({p.setting for p in points if p.model == "mburst"}):
        mine = [p for p in points if p.model == "mburst" and p.setting == setting]
        matched = sorted({b.setting for m in mine for b in base if abs(b.f1 - m.f1) <= tol})
        if not matched:
            out.append(f"- MBURST ({setting}): no Multimodal point within {tol:g} F1.")
        for other in matched:
            ratios = {"active fraction": [], "mean e": [], "event-driven ops": [], "Loihi J/s": []}
            for m in mine:
                for b in (p for p in base if p.setting == other and abs(p.f1 - m.f1) <= tol):
                    for key, (x, y) in {"active fraction": (m.active, b.active), "mean e": (m.mean_e, b.mean_e),
                                        "event-driven ops": (m.row.event_ops_per_s, b.row.event_ops_per_s),
                                        "Loihi J/s": (m.row.j_per_s.get("Loihi"), b.row.j_per_s.get("Loihi"))}.items():
                        if x is not None and y:
                            ratios[key].append(x / y)
            n = len(ratios["event-driven ops"])
            who = "Multimodal" + (f" ({other})" if other else "")
            out.append(f"- MBURST ({setting}) / {who} at equal F1 (+-{tol:g}, {n} pair{'s' if n > 1 else ''}): "
                       + ", ".join(f"{k} x{np.mean(v):.3f}" for k, v in ratios.items() if v) + ".")
    return "\n".join(out)


def plot_frontier(points: list[FrontierPoint], path) -> None:
    """F1 against J per second of audio, one panel per device of :data:`DEVICES` (log x); rate models as dots
    (one colour per setting), the spiking circuit as stars labelled with their setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DEVICES), figsize=(5 * len(DEVICES), 3.8), squeeze=False)
    key = {id(p): p.model if p.row.kind == "spiking" else p.label for p in points}  # the circuit: one colour
    star = {key[id(p)]: p.row.kind == "spiking" for p in points}
    colors = {lab: f"C{i % 10}" for i, lab in enumerate(sorted(star))}
    for ax, dev in zip(axes[0], DEVICES):
        for lab in sorted(star):
            pts = [p for p in points if key[id(p)] == lab and dev in p.row.j_per_s]
            ax.scatter([p.row.j_per_s[dev] for p in pts], [p.f1 for p in pts], color=colors[lab], label=lab,
                       marker="*" if star[lab] else "o", s=80 if star[lab] else 25)
            for p in pts if star[lab] else ():
                ax.annotate(p.setting, (p.row.j_per_s[dev], p.f1), fontsize=6)
                if p.f1_rate_same_frames is not None:  # the rate model on the same frames: the F1 to compare with
                    ax.scatter([p.row.j_per_s[dev]], [p.f1_rate_same_frames], color=colors[lab], marker="x", s=30)
        xs = [p.row.j_per_s[dev] for p in points if dev in p.row.j_per_s]
        if xs and max(xs) > 10 * min(xs):
            ax.set_xscale("log")
        else:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.set_xlabel(f"J per second of audio ({dev})")
        ax.set_ylabel("mask F1 (circuit: scanned frames, x = rate model on them)", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Energy-fidelity frontier (memory traffic and routing left out)", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def write_frontier(out, points: list[FrontierPoint], notes: str = "", tol: float = 0.02) -> str:
    """Write ``frontier.md/.csv/.png`` into ``out``; returns the markdown section.

    Parameters
    ----------
    out : str or Path
    points : list of FrontierPoint
    notes : str
    tol : float
        F1 tolerance of :func:`equal_f1_comparison`.

    Returns
    -------
    str
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen, unique = set(), []
    for p in points:  # the same model trained twice with the same seeds (e.g. in two folders) is one point
        key = (p.model, p.setting, p.f1, p.active, p.mean_e, p.spikes_per_frame)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    points = unique
    header, rows = frontier_table(points)
    md = ("## Energy-fidelity frontier\n\n" + markdown_table(header, rows) + "\n"
          + (notes + "\n\n" if notes else "") + equal_f1_comparison(points, tol) + "\n\n![frontier](frontier.png)\n")
    atomic_write_text(out / "frontier.md", "# Frontier\n\n" + md)
    atomic_write_text(out / "frontier.csv", csv_table(header, rows))
    plot_frontier(points, out / "frontier.png")
    return md


def scaling_setting(point) -> str:
    """The circuit setting of a :class:`rate_bridge.equivalence.ScalingPoint`, e.g. 'T=40 ms, n=16/6, no stp'."""
    return (f"T={point.window_ms:g} ms, n={point.n}/{point.n_conv}"
            + (f", no {point.ablated}" if point.ablated else ""))


def scaling_row(point, frame_s: float, devices) -> object:
    """The :class:`rate_bridge.scoreboard.ScoreRow` of one scan setting: :func:`rate_bridge.scoreboard.spiking_row`
    of its ledger totals (``point.counts``) over ``point.frames`` frames of ``frame_s`` s of audio each.

    Parameters
    ----------
    point : rate_bridge.equivalence.ScalingPoint
    frame_s : float
        Audio per frame (s): J/s is per second of audio, whatever the simulated frame period.
    devices : sequence of str
        Registered devices to price (the first also gives the chip-step ops).

    Returns
    -------
    rate_bridge.scoreboard.ScoreRow

    Raises
    ------
    MburstError
        Counts without a device's step (:meth:`rate_bridge.ledger.LayerCounts.at_step`).
    """
    from rate_bridge.ledger import LayerCounts
    from rate_bridge.scoreboard import spiking_row

    return spiking_row(scaling_setting(point), LayerCounts.from_dict(point.counts), point.frames, frame_s,
                       point.f1_spike, None, None, devices=devices)


def _devices(devices=None) -> tuple:
    from rate_bridge.devices import device_names

    names = tuple(devices or device_names())
    return tuple(sorted(names, key=lambda d: d != "Loihi"))  # Loihi first: its step gives the chip-step ops


def write_scaling(out, points: list, frame_s: float, model: str, devices=None) -> list:
    """Write a bridge scan's ``scaling.md/.csv`` (each setting's F1, counts per frame, M-ops/s at the simulation and
    Loihi's step, J per second of audio per device), ``scaling.json`` (the points with their ledger totals, read by
    :func:`scaling_points`) and ``scaling.png`` into ``out``.

    Parameters
    ----------
    out : str or Path
    points : list of rate_bridge.equivalence.ScalingPoint
    frame_s : float
        Audio per frame (s).
    model : str
        The converted model's name.
    devices : sequence of str, optional
        Default: every registered device.

    Returns
    -------
    list of rate_bridge.scoreboard.ScoreRow
        One per point.
    """
    from rate_bridge.equivalence import plot_scaling

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    devices = _devices(devices)
    scored = [scaling_row(p, frame_s, devices) for p in points]
    names = [f.name for f in dataclasses.fields(points[0]) if f.name != "counts"]
    header = names + ["power proxy M-ops/s", f"{devices[0]}-step M-ops/s"] + [f"J/s {d}" for d in devices]
    rows = [[round(v, 4) if isinstance(v, float) else v for v in (getattr(p, k) for k in names)]
            + [round(r.ops_per_s / 1e6, 3), round(r.event_ops_per_s / 1e6, 3)] + [f"{r.j_per_s[d]:.3e}" for d in devices]
            for p, r in zip(points, scored)]
    atomic_write_text(out / "scaling.md", markdown_table(header, rows) + "\n" + "".join(
        f"- {r.model}: {r.note}\n" for r in scored if r.note))
    atomic_write_text(out / "scaling.csv", csv_table(header, rows))
    atomic_write_json(out / "scaling.json", {"model": model, "frame_s": frame_s,
                                             "points": [dataclasses.asdict(p) for p in points]})
    plot_scaling(points, out / "scaling.png")
    return scored


def scaling_points(path, run: str | None = None, devices=DEVICES) -> tuple[list[FrontierPoint], int]:
    """The frontier points of a bridge scan's ``scaling.json`` at ``path``.

    Parameters
    ----------
    path : str or Path
    run : str, optional
        The points' run label (default: the scan's folder name).
    devices : sequence of str
        Devices to price; those not registered (the dense 45 nm MAC) are left out.

    Returns
    -------
    points : list of FrontierPoint
    skipped : int
        Settings without ledger totals (scans written before they were recorded: re-run the scan).

    Raises
    ------
    MburstError
        Naming the file, if it is not a scan's ``scaling.json``.
    """
    from rate_bridge.devices import device_names
    from rate_bridge.equivalence import ScalingPoint

    path = Path(path)
    try:
        data = json.loads(path.read_text())
        frame_s, model, raw = float(data["frame_s"]), data["model"], list(data["points"])
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise MburstError(f"{path}: not a bridge scan's scaling.json ({err})") from None
    names = {f.name for f in dataclasses.fields(ScalingPoint)}
    priced = _devices([d for d in devices if d in device_names()])
    points, skipped = [], 0
    for d in raw:
        if not isinstance(d, dict) or not d.get("counts") or not names <= set(d):
            skipped += 1
            continue
        p = ScalingPoint(**{k: d[k] for k in names})
        points.append(FrontierPoint(f"spiking {model}", scaling_setting(p), run or path.parent.name, p.f1_spike, None, None,
                                    scaling_row(p, frame_s, priced), p.spikes_per_frame, p.f1_rate))
    return points, skipped
