"""Scoring enhancement: every system (noisy, oracle masks, models) on utterances of a prepared corpus with
STOI, ESTOI, PESQ-WB and SI-SDR (:mod:`experiments.speech.metrics`), summaries per SNR, and the report
(markdown and CSV tables, spectrograms, wav files).

Oracle masks (:func:`experiments.speech.resynthesis.oracle_masks`): the IBM and the ideal Wiener gain
|S|^2 / (|S|^2 + |N|^2) from the separate clean speech S and noise N.
"""
from __future__ import annotations

import numpy as np

from neurons.common import MburstError

from experiments.data.features import N_BINS, SAMPLE_RATE
from experiments.data.frames import Stats
from experiments.speech.masking import predict_probs
from experiments.speech.metrics import LABELS, METRIC_NAMES, score_all
from experiments.speech.resynthesis import (DEFAULT_FLOOR, check_audio, full_band_gain, oracle_masks, resynthesise,
                                            select_mask, stft_padded)

#: The reference systems scored beside the models.
REFERENCES = ("noisy", "oracle-ibm", "oracle-soft")


class EnhancementRows(list):
    """Rows of :func:`evaluate_enhancement` (one dict per utterance x system), plus ``examples``
    ({utt_id: {"snr_db", "clean", "noisy", <system>: audio}}) for listening and pictures,
    and ``skipped`` ({system: reason})."""

    def __init__(self, rows=(), examples=None, skipped=None):
        super().__init__(rows)
        self.examples = examples or {}
        self.skipped = skipped or {}


def _score(clean: np.ndarray, est: np.ndarray, metrics=METRIC_NAMES) -> dict:
    """The metrics of one estimate, NaN where undefined, with ``excluded``: {metric: reason}."""
    scores, excluded = score_all(clean, est, SAMPLE_RATE, metrics)
    return {**scores, "excluded": excluded}


def evaluate_mixture(clean: np.ndarray, noise: np.ndarray, lips: np.ndarray | None, mask_fns: dict, *,
                     mask: str = "soft", uppers: tuple[str, ...] = ("attenuate",), floor: float | str = DEFAULT_FLOOR,
                     lc_db: float = 5.0, stats: Stats | None = None, metrics=METRIC_NAMES) -> dict[str, tuple]:
    """Enhance one mixture clean + noise with every reference and model, and score each.

    Parameters
    ----------
    clean, noise : ndarray, shape (n,)
        16 kHz samples; the mixture is clean + noise.
    lips : ndarray, shape (ceil(n / 640), 50, 92), or None
        Lip crops (needed when there is a model).
    mask_fns : dict
        ``{model name: MaskFn | (MaskFn, Stats) | None}``; ``None`` entries are skipped.
    mask : {'soft', 'binary'}
        The models' applied mask.
    uppers : tuple of str
        Upper-bin policies; with several, masked systems are named ``"<system> [<policy>]"``.
    floor : float or 'mean'
    lc_db : float
        Local criterion of the oracle IBM in dB.
    stats : Stats, optional
        Statistics of models given without their own.
    metrics : sequence of str
        Metrics computed (names of :data:`experiments.speech.metrics.METRIC_NAMES`); the others are NaN.

    Returns
    -------
    dict of str to (ndarray of float64, shape (n,); dict)
        ``{system: (enhanced audio, scores)}`` for ``noisy``, ``oracle-ibm``, ``oracle-soft`` and each model;
        scores: the metrics (:func:`experiments.speech.metrics.score_all`; NaN where undefined) and
        ``excluded``, {metric: reason}.

    Raises
    ------
    MburstError
        On bad audio, a model without lips, or bad options.
    """
    clean, noise = check_audio(clean, "clean"), check_audio(noise, "noise")
    noisy = clean + noise
    ibm, wiener = oracle_masks(clean, noise, lc_db)
    masks = {"oracle-ibm": ibm, "oracle-soft": wiener}
    for name, entry in mask_fns.items():
        if entry is None:
            continue
        if lips is None:
            raise MburstError(f"{name}: a model needs the lip frames of the utterance")
        fn, st = entry if isinstance(entry, tuple) else (entry, stats)
        masks[name] = select_mask(predict_probs(noisy, lips, fn, st), mask)
    out = {"noisy": (noisy, _score(clean, noisy, metrics))}
    for name, m in masks.items():
        for upper in uppers:
            label = name if len(uppers) == 1 else f"{name} [{upper}]"
            audio = resynthesise(noisy, m, upper, floor)
            out[label] = (audio, _score(clean, audio, metrics))
    return out


def evaluate_enhancement(corpus, utt_indices, mask_fns: dict, *, stats: Stats | None = None,
                         mask: str = "soft", uppers: tuple[str, ...] | str = ("attenuate",),
                         floor: float | str = DEFAULT_FLOOR, lc_db: float = 5.0, examples: int = 2,
                         progress: bool = True, metrics=METRIC_NAMES) -> EnhancementRows:
    """STOI, ESTOI, PESQ-WB and SI-SDR of every system on the given utterances of a prepared corpus.

    Parameters
    ----------
    corpus : Corpus
        An :class:`experiments.data.corpus.Corpus` (or anything with its ``waveforms(i)``,
        ``utterances[i]`` with ``utt_id``/``snr_db``/``noise_name``/``noise_category``/``lip_start``/``n_frames``,
        and ``lips``).
    utt_indices : array_like of int
        Utterances to score (non-empty).
    mask_fns : dict
        ``{model name: MaskFn | (MaskFn, Stats) | None}``; ``None``: not available, listed in ``skipped``.
    stats, mask, uppers, floor, lc_db
        As :func:`evaluate_mixture` (``uppers`` may be one policy name).
    examples : int
        The first ``examples`` utterances of each SNR keep their audio (for listening and pictures).
    progress : bool
        A progress bar on a terminal, one summary line elsewhere (:class:`experiments.progress.Bar`); False: neither.
    metrics : sequence of str
        Metrics computed (default all; e.g. ``("stoi",)`` skips PESQ's cost); the others are NaN.

    Returns
    -------
    EnhancementRows
        One dict per utterance x system: utt_index, utt_id, snr_db, noise (recording), noise_category, system,
        upper, mask,
        stoi, estoi, pesq_wb, si_sdr (dB; NaN where undefined) and excluded ({metric: reason}).

    Raises
    ------
    MburstError
        On an empty selection or bad options.
    """
    from experiments.progress import Bar

    uppers = (uppers,) if isinstance(uppers, str) else tuple(uppers)
    for upper in uppers:
        full_band_gain(np.zeros((1, N_BINS)), upper, floor)
    select_mask(np.zeros((1, N_BINS)), mask)
    indices = [int(i) for i in np.asarray(utt_indices).reshape(-1)]
    if not indices:
        raise MburstError("utt_indices: empty selection")
    skipped = {name: "no model given" for name, fn in mask_fns.items() if fn is None}
    rows, kept, per_snr = EnhancementRows(skipped=skipped), {}, {}
    for i in Bar(indices, desc="enhance+score", unit="utt", show=progress):
        utt = corpus.utterances[i]
        clean, noise, _ = corpus.waveforms(i)
        lips = np.asarray(corpus.lips[utt.lip_start:utt.lip_start + utt.n_frames])
        results = evaluate_mixture(clean, noise, lips, mask_fns, mask=mask, uppers=uppers, floor=floor,
                                   lc_db=lc_db, stats=stats, metrics=metrics)
        for system, (audio, scores) in results.items():
            upper = "" if system == "noisy" else (system.split("[")[-1].rstrip("]") if "[" in system else uppers[0])
            rows.append({"utt_index": i, "utt_id": utt.utt_id, "snr_db": float(utt.snr_db), "noise": utt.noise_name,
                         "noise_category": utt.noise_category, "system": system, "upper": upper,
                         "mask": "" if system in ("noisy",) or system.startswith("oracle") else mask, **scores})
        if per_snr.get(utt.snr_db, 0) < examples:
            per_snr[utt.snr_db] = per_snr.get(utt.snr_db, 0) + 1
            kept[utt.utt_id] = {"snr_db": float(utt.snr_db), "clean": clean,
                                **{system: audio for system, (audio, _) in results.items()}}
    rows.examples = kept
    return rows


def _reason(row: dict, metric: str) -> str:
    """Why a row's metric is not a finite number (the error's first clause, so utterances group)."""
    value = row[metric]
    if value == float("inf"):
        return "+inf: exact copy of the reference"
    if value == float("-inf"):
        return "-inf: estimate without signal"
    return row.get("excluded", {}).get(metric, "not scored").split(" (")[0]


def summarise(rows: list[dict]) -> list[dict]:
    """Mean of each metric per (SNR, system) over the utterances where it is a finite number, what was
    excluded and why, ΔSTOI over noisy and its share of the oracle IBM's ΔSTOI (``share_of_ibm_d_stoi``, shown as
    "share of IBM ΔSTOI"; the IBM with the same upper-bin policy).

    Parameters
    ----------
    rows : list of dict
        :func:`evaluate_enhancement` rows.

    Returns
    -------
    list of dict
        Per (SNR, system), by SNR then noisy, oracles, models: snr_db, system, n (utterances), the metric
        means (NaN when no value is finite), excluded ({metric: {reason: count}} of the values left out
        of the means: undefined metrics, SI-SDR of +-inf), d_stoi, share_of_ibm_d_stoi.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["snr_db"], r["system"]), []).append(r)
    out = []
    for (snr, system), g in sorted(groups.items(), key=lambda kv: (kv[0][0], system_order(kv[0][1]))):
        entry, excluded = {"snr_db": snr, "system": system, "n": len(g)}, {}
        for m in METRIC_NAMES:
            vals = np.array([r[m] for r in g], dtype=np.float64)
            ok = np.isfinite(vals)
            entry[m] = float(np.mean(vals[ok])) if ok.any() else float("nan")
            for r in (r for r, fine in zip(g, ok) if not fine):
                reasons = excluded.setdefault(m, {})
                reasons[_reason(r, m)] = reasons.get(_reason(r, m), 0) + 1
        entry["excluded"] = excluded
        out.append(entry)
    noisy_stoi = {e["snr_db"]: e["stoi"] for e in out if e["system"] == "noisy"}
    ibm_d_stoi = {}
    for e in out:
        e["d_stoi"] = e["stoi"] - noisy_stoi.get(e["snr_db"], float("nan"))
        if e["system"].startswith("oracle-ibm"):
            ibm_d_stoi[(e["snr_db"], e["system"][len("oracle-ibm"):])] = e["d_stoi"]
    for e in out:
        suffix = e["system"][e["system"].find(" ["):] if " [" in e["system"] else ""
        gain = ibm_d_stoi.get((e["snr_db"], suffix))
        e["share_of_ibm_d_stoi"] = e["d_stoi"] / gain if gain and e["system"] != "noisy" else float("nan")
    return out


def summary_table(summary: list[dict], excluded: bool = True) -> tuple[list[str], list[list]]:
    """The enhancement table of ``enhancement.md`` and ``report.md``: header and rows of :func:`summarise`'s entries.

    Parameters
    ----------
    summary : list of dict
    excluded : bool
        Add the column of values left out of the means.

    Returns
    -------
    header : list of str
        SNR dB, system, n, STOI, ESTOI, PESQ-WB, SI-SDR dB, ΔSTOI, share of IBM ΔSTOI (, excluded).
    rows : list of list
    """
    header = ["SNR dB", "system", "n", "STOI", "ESTOI", "PESQ-WB", "SI-SDR dB", "ΔSTOI", "share of IBM ΔSTOI"]
    rows = [[e["snr_db"], e["system"], e["n"], e["stoi"], e["estoi"], e["pesq_wb"], e["si_sdr"], e["d_stoi"],
             e["share_of_ibm_d_stoi"]] + ([excluded_count(e)] if excluded else []) for e in summary]
    return header + (["excluded"] if excluded else []), rows


def excluded_count(entry: dict) -> str:
    """A summary entry's exclusions in a few characters, e.g. ``'2 (SI-SDR 2)'``, or ``'0'``.

    Parameters
    ----------
    entry : dict
        A :func:`summarise` entry.

    Returns
    -------
    str
    """
    per = {m: sum(reasons.values()) for m, reasons in entry.get("excluded", {}).items()}
    if not per:
        return "0"
    return f"{sum(per.values())} (" + ", ".join(f"{LABELS[m]} {k}" for m, k in per.items()) + ")"


def exclusion_note(summary: list[dict]) -> str:
    """A paragraph saying which values each table row's means leave out and why ('' when none).

    Parameters
    ----------
    summary : list of dict
        :func:`summarise` entries.

    Returns
    -------
    str
    """
    lines = [f"- {e['snr_db']:g} dB, {e['system']}: " + "; ".join(
        f"{LABELS[m]} of {k} utterance{'s' if k > 1 else ''} ({reason})"
        for m, reasons in e["excluded"].items() for reason, k in reasons.items())
        for e in summary if e.get("excluded")]
    if not lines:
        return ""
    return ("Left out of the means (each mean is over the utterances where the metric is a finite number; "
            "metrics are defined in experiments/speech/metrics.py):\n" + "\n".join(lines) + "\n")


def system_order(system: str) -> tuple:
    """Sort key of a system name: noisy, the oracles, then models (any ``" [<policy>]"`` suffix ignored first)."""
    base = system.split(" [")[0]
    return (REFERENCES.index(base) if base in REFERENCES else len(REFERENCES), system)


def write_wav(path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write a 16-bit PCM wav atomically (samples clipped to [-1, 1]).

    Parameters
    ----------
    path : str or Path
    audio : ndarray, shape (n,)
    rate : int
        Sample rate in Hz.
    """
    import soundfile as sf

    from neurons.common import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def _slug(name: str) -> str:
    """A file-name-safe form of a system or utterance name ('+' -> 'p', other symbols -> '_')."""
    return "".join(c if c.isalnum() or c in "-_" else "p" if c == "+" else "_" for c in name).strip("_")


def write_enhancement_report(rows: EnhancementRows | list[dict], out_dir, title: str = "Enhanced speech") -> dict:
    """Write ``enhancement.md`` (mean per SNR x system), ``enhancement.csv`` (every row),
    ``enhancement_summary.csv``, spectrogram PNGs and wav files of the kept examples into ``out_dir``.

    Parameters
    ----------
    rows : EnhancementRows or list of dict
        :func:`evaluate_enhancement` rows (their ``examples`` and ``skipped`` when present).
    out_dir : str or Path
    title : str
        Heading of the markdown.

    Returns
    -------
    dict
        ``{"summary": summarise(rows), "files": [written paths]}``.

    Raises
    ------
    MburstError
        If there are no rows.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig, atomic_write_text, csv_table, markdown_table

    if not rows:
        raise MburstError("rows: nothing to report (no utterance was scored)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    header = ["utt_index", "utt_id", "snr_db", "noise", "system", "upper", "mask", *METRIC_NAMES]
    atomic_write_text(out / "enhancement.csv", csv_table(header + ["excluded"], [
        [r.get(k, "") for k in header] + ["; ".join(f"{m}: {why}" for m, why in r.get("excluded", {}).items())]
        for r in rows]))
    summary = summarise(rows)
    sheader = ["snr_db", "system", "n", *METRIC_NAMES, "d_stoi", "share_of_ibm_d_stoi"]
    atomic_write_text(out / "enhancement_summary.csv", csv_table(sheader + ["excluded"], [
        [e[k] for k in sheader] + [excluded_count(e)] for e in summary]))
    md = [f"# {title}\n",
          "Mean per SNR and system. STOI/ESTOI (pystoi), wideband PESQ (P.862.2), SI-SDR in dB; "
          "ΔSTOI is over the noisy input, 'share of IBM ΔSTOI' its fraction of the oracle IBM's ΔSTOI. "
          "oracle-soft is the ideal Wiener gain |S|²/(|S|²+|N|²).\n",
          markdown_table(*summary_table(summary))]
    note = exclusion_note(summary)
    if note:
        md.append("\n" + note)
    skipped = getattr(rows, "skipped", {})
    if skipped:
        md.append("\nNot evaluated: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "\n")
    examples = getattr(rows, "examples", {})
    if examples:
        md.append("\n## Examples\n")
    for utt_id, ex in examples.items():
        slug = _slug(utt_id)
        systems = [k for k in ex if k not in ("snr_db", "clean")]
        peak = max(float(np.max(np.abs(ex[k]))) for k in ["clean", *systems])
        scale = 0.9 / peak if peak > 0.9 else 1.0  # one gain for all, so loudness stays comparable
        names = []
        for key in ["clean", *systems]:
            path = out / "audio" / f"{slug}_{_slug(key)}.wav"
            write_wav(path, ex[key] * scale)
            files.append(path)
            names.append(f"[{key}](audio/{path.name})")
        panels = ["noisy", "clean"] + [k for k in systems if k != "noisy"]
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.7 * len(panels)), sharex=True, squeeze=False)
        images = {key: 10 * np.log10(np.abs(stft_padded(ex[key]).T) ** 2 + 1e-10) for key in panels}
        top = max(float(img.max()) for img in images.values())  # one colour scale for all panels
        for ax, key in zip(axes[:, 0], panels):
            img = images[key]
            ax.imshow(img, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
                      extent=(0, len(ex[key]) / SAMPLE_RATE, 0, SAMPLE_RATE / 2000))
            ax.set_ylabel("kHz")
            ax.set_title(key, fontsize=9, loc="left")
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle(f"{utt_id} at {ex['snr_db']:g} dB SNR", fontsize=10)
        fig.tight_layout()
        png = out / f"spectrogram_{slug}.png"
        atomic_savefig(fig, png)
        plt.close(fig)
        files.append(png)
        md.append(f"\n### {utt_id} ({ex['snr_db']:g} dB)\n\n![spectrograms]({png.name})\n\nListen: {', '.join(names)}\n")
    atomic_write_text(out / "enhancement.md", "".join(md))
    files += [out / "enhancement.md", out / "enhancement.csv", out / "enhancement_summary.csv"]
    return {"summary": summary, "files": files}
