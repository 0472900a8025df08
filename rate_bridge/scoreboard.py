"""The scoreboard: every model in the terms of the Intel N-DNS Challenge metricsboard, with its baselines for scale.

One :class:`ScoreRow` per model: SI-SNR of the enhanced audio and SI-SNRi over the noisy input (dB),
STOI, PESQ-WB, mask F1; algorithmic latency and, separately, measured compute per frame; the power
proxy in M-ops/s and the power-delay product; parameters, model size and memory traffic; joules per
second of audio per device.

* SI-SNR is the N-DNS definition (zero-mean target s and estimate s', s_t = <s', s> s / ||s||^2,
  10 log10 ||s_t||^2 / ||s' - s_t||^2), which is SI-SDR (Le Roux et al. 2019) as
  :func:`experiments.speech.metrics.si_sdr` computes it; SI-SNRi is the mean over utterances of
  SI-SNR(enhanced) - SI-SNR(noisy) (the metricsboard's "SI-SNRi data").
* Power proxy: rate models, MACs per second of audio (dense execution; as the metricsboard counts
  Microsoft NsNet2), with the ops of an event-driven execution beside it (non-zero inputs x targets +
  one update per unit and frame); spiking models, synaptic ops + neuron updates per second of audio,
  updates at the simulation step, with the same at the chip's step beside it.
* Latency (ms) = algorithmic (buffering, plus a spiking read-out's delay) + compute per frame; PDP
  (M-ops) = power proxy x latency, as the metricsboard computes it (its SDNN row: 14.54 M-ops/s x
  32.030 ms = 0.4657, published 0.46).
* Published rows are quoted, not re-measured, on the N-DNS validation set (DNS Challenge speech, not
  this corpus): :data:`PUBLISHED`.

Pure numpy (torch lazily, to time a forward pass); the audio metrics come in as rows of scores.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from neurons.common import atomic_write_text, csv_table, markdown_table

from rate_bridge.devices import ARITHMETIC_J, get_device
from rate_bridge.energy import (device_updates, event_driven_ops, memory_traffic, model_macs, model_params, model_units,
                                spiking_energy_j)

__all__ = ["ScoreRow", "PUBLISHED", "NDNS_SOURCE", "quality_from_rows", "rate_row", "spiking_row",
           "time_per_frame_ms", "scoreboard_table", "write_scoreboard", "goal_lines", "COUNTS_NOTE"]

NDNS_SOURCE = ("Intel N-DNS Challenge metricsboard, Track 1 validation set (github.com/IntelLabs/"
               "IntelNeuromorphicDNSChallenge, track1_val_metricsboard.md and README; Timcheck et al. 2023, "
               "Neuromorph. Comput. Eng. 3:034005)")
#: Goals of issue 16 for the spiking MBURST at 40 ms per frame.
GOAL_OPS_PER_S = 15e6
GOAL_LOIHI_RATIO = 10.0
CHIP = "Loihi"  # the device of the 'chip step' and J/s columns of the markdown table

COUNTS_NOTE = (
    "What the counts include: rate models, every multiply-accumulate of the forward pass (conv taps over zero "
    "padding included, biases and activations not); event-driven, one accumulate per non-zero input value and "
    "target (padding excluded) plus one update per unit and frame, each frame on its own. Spiking models, every "
    "synaptic event (a presynaptic spike, online event or burst delivered to one target, shared ensemble currents "
    "counted once per cell), every spike, and one update per cell and step, at the simulation step and at the "
    "chip's step (active: the cell received a registered synaptic event or spiked in the step; idle: neither). "
    "Left out: spike routing beyond the chip's per-spike cost, static/idle power of the chip, the encoder "
    "(STFT, lip crops) and decoder (overlap-add), DRAM traffic; memory traffic is reported beside the compute, "
    "at 1.25 pJ/byte (32-bit cache access ~5 pJ at 45 nm, Horowitz 2014), not added to it. Against the N-DNS "
    "power proxy: the same quantities (synaptic ops + neuron ops per second of audio; MACs for a conventional "
    "network), but the N-DNS SDNN counts sigma-delta messages, i.e. changes between its 8 ms steps, where our "
    "event-driven rate count takes every non-zero value of every 40 ms frame; our spiking updates are counted at "
    "the simulation step (0.1 ms) unless the chip-step column says otherwise; and the N-DNS numbers are on its "
    "DNS validation set, ours on this corpus's test utterances.")


@dataclass
class ScoreRow:
    """One model's row; ``None`` where a value is not available (shown blank, with the reason in ``note``).

    Units: dB, ms, ops/s (not M-ops), bytes per frame, J per second of audio (``j_per_s``: {device: J/s}).
    """

    model: str
    kind: str  # 'rate' | 'spiking' | 'published'
    si_snr_db: float | None = None
    si_snri_db: float | None = None
    stoi: float | None = None
    pesq_wb: float | None = None
    f1: float | None = None
    alg_latency_ms: float | None = None
    compute_ms: float | None = None
    ops_per_s: float | None = None
    event_ops_per_s: float | None = None
    params: int | None = None
    size_kib: float | None = None
    mem_bytes_per_frame: float | None = None
    j_per_s: dict = field(default_factory=dict)
    note: str = ""

    @property
    def latency_ms(self) -> float | None:
        """Algorithmic + compute latency (ms)."""
        return None if self.alg_latency_ms is None or self.compute_ms is None else self.alg_latency_ms + self.compute_ms

    @property
    def pdp_ops(self) -> float | None:
        """Power-delay product: power proxy (ops/s) x latency (s)."""
        lat = self.latency_ms
        return None if lat is None or self.ops_per_s is None else self.ops_per_s * lat / 1e3


#: The metricsboard's baseline rows (latency: enc+dec compute and total; algorithmic = total - enc+dec).
PUBLISHED = (
    ScoreRow("N-DNS baseline SDNN (published)", "published", si_snr_db=12.50, si_snri_db=4.88, alg_latency_ms=32.0,
             compute_ms=0.030, ops_per_s=14.54e6, params=525_000, size_kib=465.0,
             note="quoted: N-DNS validation set; MOS 2.71/3.21/3.46 (ovrl/sig/bak) instead of STOI/PESQ"),
    ScoreRow("Microsoft NsNet2 (published)", "published", si_snr_db=11.89, si_snri_db=4.26, alg_latency_ms=20.0,
             compute_ms=0.024, ops_per_s=136.13e6, params=2_681_000, size_kib=10_500.0,
             note="quoted: N-DNS validation set; MOS 2.95/3.27/3.94 (ovrl/sig/bak) instead of STOI/PESQ"),
)


def _mean(values) -> float | None:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


def quality_from_rows(rows: list[dict], system: str, reference: str = "noisy") -> dict:
    """Audio scores of one system from per-utterance rows (:func:`experiments.speech.evaluation.evaluate_enhancement`).

    Parameters
    ----------
    rows : list of dict
        Each with ``utt_index``, ``system``, ``si_sdr`` (dB), ``stoi``, ``pesq_wb``.
    system : str
        The system to score.
    reference : str
        The input system SI-SNRi is measured over.

    Returns
    -------
    dict
        ``si_snr_db`` (mean over utterances with a finite value), ``si_snri_db`` (mean of the paired
        differences where both are finite), ``stoi``, ``pesq_wb``, ``n`` (utterances of ``system``);
        None where nothing is finite.
    """
    mine = {r["utt_index"]: r for r in rows if r["system"] == system}
    ref = {r["utt_index"]: r for r in rows if r["system"] == reference}
    diffs = [float(r["si_sdr"]) - float(ref[i]["si_sdr"]) for i, r in mine.items() if i in ref]
    return {"si_snr_db": _mean(float(r["si_sdr"]) for r in mine.values()), "si_snri_db": _mean(diffs),
            "stoi": _mean(float(r["stoi"]) for r in mine.values()),
            "pesq_wb": _mean(float(r["pesq_wb"]) for r in mine.values()), "n": len(mine)}


def time_per_frame_ms(model, audio, visual=None, repeats: int = 30) -> float:
    """Median wall time (ms) of one frame's forward pass (batch 1, no gradients) on this machine.

    Parameters
    ----------
    model : torch.nn.Module
    audio, visual : torch.Tensor, shape (F, 1, H, W)
        Frames; the first is timed (``visual`` None for audio-only models).
    repeats : int
        Timed calls after two warm-up calls.

    Returns
    -------
    float
    """
    import torch

    a, v = audio[:1], None if visual is None or not model.visual else visual[:1]
    times = []
    with torch.no_grad():
        model.eval()
        for k in range(repeats + 2):
            t0 = time.perf_counter()
            model(a, v)
            if k >= 2:
                times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def rate_row(name: str, model, audio, visual, frames_per_s: float, quality: dict | None, f1: float | None,
             alg_latency_ms: float, compute_ms: float | None, devices=(CHIP,), note: str = "") -> ScoreRow:
    """A rate model's row: counts from the model's shapes and from these frames' non-zero inputs.

    Parameters
    ----------
    name : str
    model : rate_bridge.burstprop.models.AVMaskNet
    audio, visual : torch.Tensor, shape (F, 1, H, W)
        Frames for the event-driven count.
    frames_per_s : float
        Frames per second of audio (25 at a 640-sample hop and 16 kHz).
    quality : dict or None
        :func:`quality_from_rows` of the model.
    f1 : float or None
        Mask F1 at 0.5.
    alg_latency_ms, compute_ms : float
        Algorithmic latency and measured compute per frame.
    devices : sequence of str
        Devices priced in ``j_per_s`` besides '45nm fp32 MAC' (dense MACs x 4.6 pJ): the model executed
        event-driven there, one synaptic op per accumulate and one active update per unit and frame.
    note : str

    Returns
    -------
    ScoreRow
    """
    macs, units, params = model_macs(model)["total"], model_units(model)["total"], model_params(model)["total"]
    acs = event_driven_ops(model, audio, visual)["total"]
    j = {"45nm fp32 MAC": macs * ARITHMETIC_J["fp32"]["mac"] * frames_per_s}
    j.update({d: get_device(d).joules(acs, units) * frames_per_s for d in devices})
    q = quality or {}
    return ScoreRow(name, "rate", q.get("si_snr_db"), q.get("si_snri_db"), q.get("stoi"), q.get("pesq_wb"), f1,
                    alg_latency_ms, compute_ms, macs * frames_per_s, (acs + units) * frames_per_s, params,
                    params * 4 / 1024, memory_traffic(model)["total"], j, note)


def spiking_row(name: str, counts, frames: int, frame_s: float, f1: float | None, alg_latency_ms: float | None,
                compute_ms: float | None, devices=(CHIP,), note: str = "") -> ScoreRow:
    """A spiking model's row from its ledger totals over ``frames`` frames of ``frame_s`` seconds of audio each.

    Parameters
    ----------
    name : str
    counts : rate_bridge.ledger.LayerCounts
        Totals over the frames' counting windows.
    frames : int
    frame_s : float
        Audio per frame (s).
    f1 : float or None
    alg_latency_ms, compute_ms : float or None
        Buffering + read-out delay; simulated wall time per frame.
    devices : sequence of str
        Devices priced in ``j_per_s``; the first also gives the chip-step ops column.
    note : str

    Returns
    -------
    ScoreRow
    """
    audio_s = frames * frame_s
    chip_ops = None
    if devices:
        chip = get_device(devices[0])
        active, idle = device_updates(counts, chip)
        chip_ops = (counts.synops + active + idle) / audio_s
        assumed = counts.at_step(chip.step_s).assumed_active if chip.step_s is not None else 0
        if assumed:
            note += (f"{'; ' if note else ''}{100 * assumed / (active + idle):.0f}% of the {chip.name}-step updates "
                     "counted active because the ledger was not given those cells' synaptic inputs (an upper bound)")
    return ScoreRow(name, "spiking", f1=f1, alg_latency_ms=alg_latency_ms, compute_ms=compute_ms,
                    ops_per_s=(counts.synops + counts.neuron_updates) / audio_s, event_ops_per_s=chip_ops,
                    j_per_s={d: spiking_energy_j(counts, d) / audio_s for d in devices}, note=note)


def _cell(v, digits: int = 2):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return round(v, digits) if isinstance(v, float) else v


def scoreboard_table(rows: list[ScoreRow], chip: str = CHIP, full: bool = False) -> tuple[list, list]:
    """Header and rows of the scoreboard (``full``: every column, for the CSV).

    Parameters
    ----------
    rows : list of ScoreRow
    chip : str
        The device of the J/s column (markdown).
    full : bool
        All devices of ``j_per_s`` and the notes as columns.

    Returns
    -------
    header : list of str
    table : list of list
    """
    header = ["model", "SI-SNR dB", "SI-SNRi dB", "STOI", "PESQ-WB", "mask F1", "alg. latency ms",
              "compute ms/frame", "latency total ms", "power proxy M-ops/s", "event-driven / chip-step M-ops/s",
              "PDP M-ops", "params x1e3", "size KiB", "memory KB/frame"]
    devices = sorted({d for r in rows for d in r.j_per_s}) if full else [chip]
    header += [f"J/s {d}" for d in devices] + (["note"] if full else [])
    table = []
    for r in rows:
        mega = (lambda v: None if v is None else v / 1e6)
        line = [r.model, _cell(r.si_snr_db), _cell(r.si_snri_db), _cell(r.stoi, 3), _cell(r.pesq_wb), _cell(r.f1, 4),
                _cell(r.alg_latency_ms, 3), _cell(r.compute_ms, 3), _cell(r.latency_ms, 3), _cell(mega(r.ops_per_s)),
                _cell(mega(r.event_ops_per_s)), _cell(mega(r.pdp_ops), 3),
                _cell(None if r.params is None else r.params / 1e3, 1), _cell(r.size_kib, 1),
                _cell(None if r.mem_bytes_per_frame is None else r.mem_bytes_per_frame / 1e3, 1)]
        line += [f"{r.j_per_s[d]:.3e}" if d in r.j_per_s else "" for d in devices] + ([r.note] if full else [])
        table.append(line)
    return header, table


def goal_lines(rows: list[ScoreRow], chip: str = CHIP) -> str:
    """Where the spiking MBURST stands against issue 16's goals (power proxy <= 15 M-ops/s; J/s on the chip
    within 10x of the rate MBURST on the same chip)."""
    spk = [r for r in rows if r.kind == "spiking"]
    rate = next((r for r in rows if r.kind == "rate" and r.model.lower().startswith("mburst")), None)
    if not spk:
        return ("Goals for the spiking MBURST (power proxy <= 15 M-ops/s, the N-DNS SDNN's level; J/s on Loihi within "
                "10x of the rate MBURST on Loihi): no spiking row in this scoreboard.")
    out = []
    for r in spk:
        line = (f"{r.model}: power proxy {r.ops_per_s / 1e6:.1f} M-ops/s at the simulation step "
                f"({r.ops_per_s / GOAL_OPS_PER_S:.1f}x the 15 M-ops/s goal)")
        if r.event_ops_per_s is not None:
            line += f", {r.event_ops_per_s / 1e6:.1f} M-ops/s at {chip}'s step"
        if rate is not None and chip in r.j_per_s and rate.j_per_s.get(chip):
            ratio = r.j_per_s[chip] / rate.j_per_s[chip]
            line += (f"; {r.j_per_s[chip]:.3e} J/s on {chip}, {ratio:.1f}x the rate {rate.model} executed there "
                     f"(goal <= {GOAL_LOIHI_RATIO:g}x: {'met' if ratio <= GOAL_LOIHI_RATIO else 'not met'})")
        out.append(line + ".")
    return " ".join(out)


def write_scoreboard(out, rows: list[ScoreRow], notes: str = "", chip: str = CHIP) -> str:
    """Write ``scoreboard.md`` and ``scoreboard.csv`` into ``out``; returns the markdown section.

    Parameters
    ----------
    out : str or Path
        Folder (created).
    rows : list of ScoreRow
        Measured rows; the published rows are appended.
    notes : str
        Run-specific notes (utterances, latency numbers, machine).
    chip : str

    Returns
    -------
    str
        The markdown section (a ``## Scoreboard`` heading, table, notes, goals).
    """
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    every = list(rows) + list(PUBLISHED)
    row_notes = "".join(f"- {r.model}: {r.note}\n" for r in every if r.note)
    md = ("## Scoreboard (N-DNS metricsboard conventions)\n\n" + markdown_table(*scoreboard_table(every, chip))
          + "\n" + row_notes + "\n" + (notes + "\n\n" if notes else "") + goal_lines(every, chip) + "\n\n" + COUNTS_NOTE
          + f"\n\nPublished rows: {NDNS_SOURCE}; their latency is 'enc+dec' compute plus buffering, their SI-SNR on "
            "their own data.\n")
    atomic_write_text(out / "scoreboard.md", "# Scoreboard\n\n" + md)
    atomic_write_text(out / "scoreboard.csv", csv_table(*scoreboard_table(every, chip, full=True)))
    return md
