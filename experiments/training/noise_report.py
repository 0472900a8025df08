"""Scores by noise: mask counts per (SNR, noise category, recording) in one model pass, pooled per group, and
the section of ``report.md`` with F1 per category and SNR on held-out recordings and the generalisation gap
F1(test sentences, training recordings) - F1(test sentences, held-out recordings)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurons.common import atomic_write_json, markdown_table

from experiments.speech.evaluation import system_order
from experiments.training.report import LABEL, ORDER, pm


def cell_counts(model, corpus, utt_indices, feature_stats, batch_size: int = 256, lips: str | None = None,
                seed: int = 0) -> dict:
    """Confusion counts, utterances and frames per (SNR in dB, noise category, recording), one model pass.

    Parameters
    ----------
    model : torch.nn.Module
    corpus : Corpus
    utt_indices : array_like of int
    feature_stats : Stats or dict
        The checkpoint's training statistics.
    batch_size : int
    lips : {'shuffled', 'mean'} or None
        A lip ablation (:meth:`experiments.data.frames.FrameSet.with_lips`, within each cell); None: intact.
    seed : int
        Seed of the shuffled ablation.

    Returns
    -------
    dict of (float, str, str) to dict
        ``{"tp", "fp", "fn", "tn", "utterances", "frames"}`` (counts of time-frequency units; frames of 40 ms).
    """
    from experiments.training.train import evaluate

    groups: dict[tuple, list[int]] = {}
    for i in utt_indices:
        u = corpus.utterances[int(i)]
        groups.setdefault((u.snr_db, u.noise_category, u.noise_name), []).append(int(i))
    out = {}
    for key, chosen in sorted(groups.items()):
        frames = corpus.frames(chosen, feature_stats, model.config.n_bins)
        counts, _, _ = evaluate(model, frames.with_lips(lips, seed) if lips else frames, batch_size)
        total = counts.tp + counts.fp + counts.fn + counts.tn
        out[key] = {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn, "utterances": len(chosen),
                    "frames": total // model.config.n_bins}
    return out


GROUPS = {"by_category": lambda k: k[1], "by_recording": lambda k: k[2], "by_snr": lambda k: f"{k[0]:+g} dB"}
"""How :func:`cell_counts`' keys (SNR, category, recording) pool into each reported group (``key_of`` of
:func:`grouped`)."""


def grouped(cells: dict, key_of) -> dict:
    """Cells of :func:`cell_counts` pooled by ``key_of(cell key)``: the rows partition the cells' utterances.

    Parameters
    ----------
    cells : dict
    key_of : callable
        Cell key (SNR, category, recording) -> group name.

    Returns
    -------
    dict of str to dict
        Per group: f1, accuracy (%), utterances, frames, positive_fraction (units of the target IBM that are
        speech) and predicted_fraction (units the model marks as speech).
    """
    sums: dict[str, dict] = {}
    for key, c in cells.items():
        s = sums.setdefault(key_of(key), dict.fromkeys(c, 0))
        for k, v in c.items():
            s[k] += v
    out = {}
    for name, s in sums.items():
        total = s["tp"] + s["fp"] + s["fn"] + s["tn"]
        denom = 2 * s["tp"] + s["fp"] + s["fn"]
        out[name] = {"f1": 2 * s["tp"] / denom if denom else 0.0, "accuracy": 100.0 * (s["tp"] + s["tn"]) / total,
                     "utterances": s["utterances"], "frames": s["frames"],
                     "positive_fraction": (s["tp"] + s["fn"]) / total, "predicted_fraction": (s["tp"] + s["fp"]) / total}
    return out


def summarise_by_noise(rows: list[dict]) -> dict:
    """Mean STOI and SI-SDR (over finite values) and utterances per system, by noise category and by recording.

    Parameters
    ----------
    rows : list of dict
        :func:`evaluate_enhancement` rows.

    Returns
    -------
    dict
        ``{"by_category": {category: {system: {"n", "stoi", "si_sdr"}}}, "by_recording": {...}}`` (SI-SDR in dB).
    """
    out: dict[str, dict] = {"by_category": {}, "by_recording": {}}
    for group, field in (("by_category", "noise_category"), ("by_recording", "noise")):
        cells: dict[tuple, list[dict]] = {}
        for r in rows:
            cells.setdefault((r[field], r["system"]), []).append(r)
        for (name, system), g in sorted(cells.items(), key=lambda kv: (kv[0][0], system_order(kv[0][1]))):
            means = {m: np.array([r[m] for r in g], dtype=np.float64) for m in ("stoi", "si_sdr")}
            out[group].setdefault(name, {})[system] = {"n": len(g), **{
                m: float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan") for m, v in means.items()}}
    return out


def interval95(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % Student-t interval of the mean over runs (NaN half-width for one run).

    Parameters
    ----------
    values : array_like, shape (runs,)

    Returns
    -------
    (float, float)
    """
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def score_runs(corpus, out: Path, runs: int, batch_size: int = 256) -> dict:
    """Each run's models on their test sentences: F1 by category and SNR with held-out recordings, and pooled
    F1 with held-out and with training recordings.

    Parameters
    ----------
    corpus : Corpus
    out : Path
        Reproduction folder (``runs/run<r>/<model>/checkpoint.pt``).
    runs : int
    batch_size : int

    Returns
    -------
    dict
        ``{model: [per run {"by_category", "by_snr", "by_recording": grouped(...), "heldout_f1", "seen_f1"}]}``.

    Raises
    ------
    MburstError
        If a checkpoint is missing or unusable.
    """
    from experiments.training.checkpoints import load_checkpoint
    from experiments.training.train import evaluate

    scores: dict[str, list] = {m: [] for m in ORDER}
    for r in range(runs):
        for model_name in ORDER:
            model, state = load_checkpoint(Path(out) / "runs" / f"run{r}" / model_name / "checkpoint.pt")
            split, stats = corpus.split(state["train_config"]["split_seed"]), state["feature_stats"]
            cells = cell_counts(model, corpus, split["test"], stats, batch_size)
            seen, _, _ = evaluate(model, corpus.frames(split["test_seen"], stats, model.config.n_bins), batch_size)
            scores[model_name].append({
                **{group: grouped(cells, key_of) for group, key_of in GROUPS.items()},
                "heldout_f1": grouped(cells, lambda k: "all")["all"]["f1"], "seen_f1": seen.f1})
    return scores


def noise_section(scores: dict, out: Path) -> str:
    """The markdown section (and ``out/by_noise.json``) of :func:`score_runs`'s scores.

    Parameters
    ----------
    scores : dict
        :func:`score_runs`.
    out : Path

    Returns
    -------
    str
        Markdown: the generalisation gap per model, F1 per category and per SNR (held-out recordings, mean ±
        std over runs); the vision gains are :mod:`experiments.training.vision_report`'s.
    """
    atomic_write_json(Path(out) / "by_noise.json", scores)
    runs = len(scores[ORDER[0]])
    gap_rows = []
    for m in ORDER:
        seen = [s["seen_f1"] for s in scores[m]]
        held = [s["heldout_f1"] for s in scores[m]]
        gap_rows.append([LABEL[m], pm(seen), pm(held), pm(np.subtract(seen, held))])
    lines = ["## Noise the models never heard", "",
             f"Test sentences of each run mixed with the training recordings (seen) and with held-out recordings; "
             f"mean ± std over {runs} runs.", "",
             markdown_table(["model", "F1 seen recordings", "F1 held-out recordings", "gap (seen - held-out)"], gap_rows),
             "The gap is what the test F1 loses to noise the model has not heard (issue target: at most 0.05).", ""]
    for group, title in (("by_category", "noise category"), ("by_snr", "SNR")):
        keys = sorted({k for m in ORDER for s in scores[m] for k in s[group]})
        rows = []
        for k in keys:
            f1 = {m: [s[group][k]["f1"] for s in scores[m] if k in s[group]] for m in ORDER}
            truth = np.mean([s[group][k]["positive_fraction"] for m in ORDER for s in scores[m] if k in s[group]])
            rows.append([k] + [pm(f1[m]) for m in ORDER] + [f"{100 * truth:.1f}"])
        lines += [f"### F1 by {title} (held-out recordings)", "",
                  markdown_table([title] + [LABEL[m] for m in ORDER] + ["speech units %"], rows),
                  "Each model cell is mean ± std over runs; the vision gains with their intervals are in the next "
                  "section.", ""]
    return "\n".join(lines)


def stage(corpus, out: Path, runs: int) -> tuple[str, list[str]]:
    """The ``noise`` stage of ``mburst reproduce``: :func:`score_runs` then :func:`noise_section`.

    Returns
    -------
    (str, list of str)
        The markdown section and the outputs written (``by_noise.json``).
    """
    return noise_section(score_runs(corpus, out, runs), out), ["by_noise.json"]
