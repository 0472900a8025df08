"""The energy-fidelity frontier of the rate models: mask F1 (and SI-SNRi) against energy per second of audio.

One :class:`FrontierPoint` per trained model (every run of every setting): its test F1, its hidden
activity on the test split (fraction of units with e > 0 and mean e, as training records them) and
its :class:`rate_bridge.scoreboard.ScoreRow` (ops and J per second of audio per device: dense MACs
at 45 nm, and the event-driven execution on a spiking device). :func:`equal_f1_comparison` answers
the paper's claim where it can be answered: at equal F1 (within ``tol``), MBURST's firing and energy
relative to Multimodal's. The spiking circuit's points (across frame period and cells per unit) need
the rebuilt circuit and are not drawn here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurons.common import atomic_savefig, atomic_write_text, csv_table, markdown_table

__all__ = ["FrontierPoint", "frontier_table", "equal_f1_comparison", "plot_frontier", "write_frontier"]

DEVICES = ("45nm fp32 MAC", "Loihi")  # the dense execution at 45 nm and the event-driven one on Loihi


@dataclass
class FrontierPoint:
    """One trained model on the frontier.

    Attributes
    ----------
    model : str
        'mburst', 'multimodal' or 'unimodal'.
    setting : str
        What was varied, e.g. 'beta=0.1, rescale on'.
    run : str
    f1 : float
        Test mask F1 at 0.5.
    active, mean_e : float or None
        Hidden activity on the test split: fraction of units with e > 0, mean e.
    row : rate_bridge.scoreboard.ScoreRow
        Ops and J per second of audio (``si_snri_db`` when scored).
    """

    model: str
    setting: str
    run: str
    f1: float
    active: float | None
    mean_e: float | None
    row: object

    @property
    def label(self) -> str:
        """'model (setting)'."""
        return f"{self.model} ({self.setting})"


def frontier_table(points: list[FrontierPoint]) -> tuple[list, list]:
    """Header and rows: one per point, with F1, activity, M-ops/s and J/s per device of :data:`DEVICES`."""
    header = ["model", "setting", "run", "test F1", "SI-SNRi dB", "active fraction", "mean e", "dense M-ops/s",
              "event-driven M-ops/s"] + [f"J/s {d}" for d in DEVICES]
    rows = []
    for p in sorted(points, key=lambda p: (p.model, p.setting, p.run)):
        r = p.row
        rows.append([p.model, p.setting, p.run, round(p.f1, 4), "" if r.si_snri_db is None else round(r.si_snri_db, 2),
                     _r(p.active), _r(p.mean_e), round(r.ops_per_s / 1e6, 2), round(r.event_ops_per_s / 1e6, 2)]
                    + [f"{r.j_per_s[d]:.3e}" if d in r.j_per_s else "" for d in DEVICES])
    return header, rows


def _r(v):
    return "" if v is None or not math.isfinite(v) else round(v, 4)


def equal_f1_comparison(points: list[FrontierPoint], tol: float = 0.02) -> str:
    """MBURST against Multimodal at equal F1: every pair of points whose test F1 differ by <= ``tol``.

    Parameters
    ----------
    points : list of FrontierPoint
    tol : float
        F1 tolerance.

    Returns
    -------
    str
        One sentence per MBURST setting: the ratios MBURST / Multimodal (mean over the matching pairs)
        of the active fraction, mean e, event-driven ops and Loihi J/s, or that no pair matches.
    """
    out = []
    for setting in sorted({p.setting for p in points if p.model == "mburst"}):
        ratios = {"active fraction": [], "mean e": [], "event-driven ops": [], "Loihi J/s": []}
        for m in (p for p in points if p.model == "mburst" and p.setting == setting):
            for b in (p for p in points if p.model == "multimodal" and abs(p.f1 - m.f1) <= tol):
                for key, (x, y) in {"active fraction": (m.active, b.active), "mean e": (m.mean_e, b.mean_e),
                                    "event-driven ops": (m.row.event_ops_per_s, b.row.event_ops_per_s),
                                    "Loihi J/s": (m.row.j_per_s.get("Loihi"), b.row.j_per_s.get("Loihi"))}.items():
                    if x is not None and y:
                        ratios[key].append(x / y)
        n = len(ratios["event-driven ops"])
        if not n:
            out.append(f"MBURST ({setting}): no Multimodal point within {tol:g} F1.")
            continue
        out.append(f"MBURST ({setting}) / Multimodal at equal F1 (+-{tol:g}, {n} pair{'s' if n > 1 else ''}): "
                   + ", ".join(f"{k} x{np.mean(v):.3f}" for k, v in ratios.items() if v) + ".")
    return " ".join(out)


def plot_frontier(points: list[FrontierPoint], path) -> None:
    """Test F1 against J per second of audio, one panel per device of :data:`DEVICES` (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DEVICES), figsize=(5 * len(DEVICES), 3.8), squeeze=False)
    labels = sorted({p.label for p in points})
    colors = {lab: f"C{i}" for i, lab in enumerate(labels)}
    for ax, dev in zip(axes[0], DEVICES):
        for lab in labels:
            pts = [p for p in points if p.label == lab and dev in p.row.j_per_s]
            ax.scatter([p.row.j_per_s[dev] for p in pts], [p.f1 for p in pts], color=colors[lab], label=lab, s=25)
        xs = [p.row.j_per_s[dev] for p in points if dev in p.row.j_per_s]
        if xs and max(xs) > 10 * min(xs):
            ax.set_xscale("log")
        else:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.set_xlabel(f"J per second of audio ({dev})")
        ax.set_ylabel("test mask F1")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Energy-fidelity frontier, rate models (memory traffic and routing left out)", fontsize=9)
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
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen, unique = set(), []
    for p in points:  # the same model trained twice with the same seeds (e.g. in two folders) is one point
        key = (p.model, p.setting, p.f1, p.active, p.mean_e)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    points = unique
    header, rows = frontier_table(points)
    md = ("## Energy-fidelity frontier (rate models)\n\n" + markdown_table(header, rows) + "\n"
          + (notes + "\n\n" if notes else "") + equal_f1_comparison(points, tol) + "\n\n![frontier](frontier.png)\n")
    atomic_write_text(out / "frontier.md", "# Frontier\n\n" + md)
    atomic_write_text(out / "frontier.csv", csv_table(header, rows))
    plot_frontier(points, out / "frontier.png")
    return md
