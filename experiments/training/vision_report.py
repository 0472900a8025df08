"""Does vision help where audio is ambiguous? The section of ``report.md`` that answers it over runs.

Per noise category and per SNR, on every run's test sentences mixed with held-out recordings:
- the vision gain, Multimodal - Unimodal, in mask F1 and in STOI of the resynthesised speech;
- how much each visual model uses its lips: its F1 with the lips shuffled across frames (same images,
  pairing broken) and with the training-mean lips, minus its F1 with the true lips;
- the paper's two comparisons at the low SNRs where audio is most ambiguous (-12 and -6 dB pooled):
  Multimodal - Unimodal F1 and MBURST - Multimodal F1.
Every difference is paired by run, with a 95 % Student-t interval over runs
(:func:`experiments.training.noise_report.interval95`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurons.common import atomic_write_json, markdown_table

from experiments.data.frames import LIP_ABLATIONS
from experiments.training.noise_report import GROUPS, cell_counts, grouped, interval95
from experiments.training.reproduce import spread_utterances
from experiments.training.report import LABEL, ORDER

VISUAL = ("multimodal", "mburst")
LOW_SNRS_DB = (-12.0, -6.0)


def _pooled_f1(cells: dict, snrs) -> float:
    """F1 of the cells at the given SNRs, counts pooled."""
    row = grouped({k: c for k, c in cells.items() if k[0] in snrs}, lambda k: "all").get("all")
    return row["f1"] if row else float("nan")


def score_vision(corpus, out: Path, runs: int, utterances: int, batch_size: int = 256, progress: bool = False) -> dict:
    """Each run's models on their test sentences with held-out recordings: F1 per cell with intact and ablated
    lips, and STOI of Unimodal and Multimodal on ``utterances`` of them spread over the recordings.

    Parameters
    ----------
    corpus : Corpus
    out : Path
        Reproduction folder (``runs/run<r>/<model>/checkpoint.pt``).
    runs : int
    utterances : int
        Test utterances per run resynthesised and scored with STOI (0: no STOI).
    batch_size : int
    progress : bool

    Returns
    -------
    dict
        ``{"runs": [per run {"f1": {model: {lips: {"by_category", "by_snr": {name: f1}, "low_snr": f1}}},
        "stoi": {system: {"by_category", "by_snr": {name: mean STOI}}}}]}``, lips in ('intact',
        *LIP_ABLATIONS) (ablations for the visual models only).

    Raises
    ------
    MburstError
        If a checkpoint is missing or unusable.
    """
    from experiments.speech.evaluation import evaluate_enhancement
    from experiments.speech.masking import checkpoint_masker
    from experiments.training.checkpoints import load_checkpoint

    per_run = []
    for r in range(runs):
        paths = {m: Path(out) / "runs" / f"run{r}" / m / "checkpoint.pt" for m in ORDER}
        f1, tests = {}, {}
        for m, path in paths.items():
            model, state = load_checkpoint(path)
            test = tests[m] = corpus.split(state["train_config"]["split_seed"])["test"]
            for lips in ("intact", *(LIP_ABLATIONS if m in VISUAL else ())):
                cells = cell_counts(model, corpus, test, state["feature_stats"], batch_size,
                                    lips=None if lips == "intact" else lips, seed=r)
                f1.setdefault(m, {})[lips] = {
                    **{g: {k: v["f1"] for k, v in grouped(cells, GROUPS[g]).items()} for g in ("by_category", "by_snr")},
                    "low_snr": _pooled_f1(cells, LOW_SNRS_DB)}
        stoi: dict = {}
        if utterances > 0:
            chosen = spread_utterances(tests["multimodal"], utterances, corpus, over_recordings=True)
            rows = evaluate_enhancement(corpus, chosen, {LABEL[m]: checkpoint_masker(paths[m])[:2]
                                                          for m in ("unimodal", "multimodal")},
                                        lc_db=corpus.meta.get("lc_db", 5.0), examples=0, progress=progress,
                                        metrics=("stoi",))
            for r_ in rows:
                for group, key in (("by_category", r_["noise_category"]), ("by_snr", f"{r_['snr_db']:+g} dB")):
                    stoi.setdefault(r_["system"], {}).setdefault(group, {}).setdefault(key, []).append(r_["stoi"])
            stoi = {s: {g: {k: float(np.nanmean(v)) for k, v in d.items()} for g, d in groups.items()}
                    for s, groups in stoi.items()}
        per_run.append({"f1": f1, "stoi": stoi})
    return {"runs": per_run}


def _ci(values) -> str:
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return "n/a"
    mean, half = interval95(values)
    return f"{mean:+.3f} ± {half:.3f}" if np.isfinite(half) else f"{mean:+.3f}"


def _gain_rows(scores: dict, group: str) -> list[list]:
    runs = scores["runs"]
    keys = sorted({k for s in runs for k in s["f1"]["unimodal"]["intact"][group]},
                  key=lambda k: (k.endswith("dB"), float(k.split()[0]) if k.endswith("dB") else 0, k))
    rows = []
    for k in keys:
        def f1(m, lips="intact"):
            return [s["f1"][m][lips][group].get(k, np.nan) for s in runs]

        def stoi(system):
            return [s["stoi"].get(system, {}).get(group, {}).get(k, np.nan) for s in runs]

        row = [k, _ci(np.subtract(f1("multimodal"), f1("unimodal"))),
               _ci(np.subtract(stoi(LABEL["multimodal"]), stoi(LABEL["unimodal"])))]
        row += [_ci(np.subtract(f1(m, lips), f1(m))) for m in VISUAL for lips in LIP_ABLATIONS]
        rows.append(row)
    return rows


def vision_section(scores: dict, out: Path) -> str:
    """The markdown section (and ``out/vision.json``) of :func:`score_vision`'s scores.

    Parameters
    ----------
    scores : dict
        :func:`score_vision`.
    out : Path

    Returns
    -------
    str
        Markdown: the low-SNR comparisons, and per category and per SNR the vision gain in F1 and STOI and
        the lip ablations' F1 changes, each as mean ± 95 % half-interval over runs.
    """
    atomic_write_json(Path(out) / "vision.json", scores)
    runs = scores["runs"]
    low = {m: [s["f1"][m]["intact"]["low_snr"] for s in runs] for m in ORDER}
    header = ["", "Multimodal − Unimodal F1", "Multimodal − Unimodal STOI"] + [
        f"{LABEL[m]} F1, {lips} lips − true lips" for m in VISUAL for lips in LIP_ABLATIONS]
    lines = [
        "## Does vision help where audio is ambiguous?", "",
        f"Test sentences with held-out recordings, {len(runs)} runs; every cell is the mean over runs of a "
        "difference paired by run, ± the half-width of its 95 % Student-t interval (none for one run). "
        "Shuffled lips: each frame gets another frame's lip image; mean lips: the training-mean image. A negative "
        "ablation change says the model uses its lips; STOI comes from the resynthesised test utterances spread "
        "over the recordings.", "",
        f"- Pooled over {' and '.join(f'{s:g}' for s in LOW_SNRS_DB)} dB: Multimodal − Unimodal F1 "
        f"{_ci(np.subtract(low['multimodal'], low['unimodal']))} (the paper's Table I: +0.094 overall); "
        f"MBURST − Multimodal F1 {_ci(np.subtract(low['mburst'], low['multimodal']))}.", ""]
    for group, title in (("by_category", "noise category"), ("by_snr", "SNR")):
        lines += [f"### Vision by {title}", "", markdown_table([title] + header[1:], _gain_rows(scores, group)), ""]
    return "\n".join(lines)


def stage(corpus, out: Path, runs: int, utterances: int) -> tuple[str, list[str]]:
    """The ``vision`` stage of ``mburst reproduce``: :func:`score_vision` then :func:`vision_section`.

    Returns
    -------
    (str, list of str)
        The markdown section and the outputs written (``vision.json``).
    """
    return vision_section(score_vision(corpus, out, runs, utterances), out), ["vision.json"]
