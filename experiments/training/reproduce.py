"""Reproduce the MBURST paper's Tables I-II and Figures 2-3 (Passos et al.).

Each profile trains Unimodal, Multimodal and MBURST on ``runs`` seeded
utterance splits and writes, into one folder: table1.md/.csv, table2.md/.csv,
fig2_masks.png, fig3_firing.png, metrics.json and report.md. Every (run,
model) trains in its own sub-folder with checkpoints, so an interrupted
reproduction resumes where it stopped, and every later stage is skipped when
its outputs exist for the same configuration (``stages.json``).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np

from neurons.common import MburstError, atomic_write_json, atomic_write_text, csv_table, markdown_table

from experiments.training.report import LABEL, ORDER, fig2_masks, fig3_firing, mean_std, table1, table2, write_report
from experiments.training.stages import StageLog, files_fingerprint
from experiments.training.config import TrainConfig, TrainResult
from experiments.training.train import train

#: Settings per profile; command-line options override them.
PROFILES = {
    "quick": dict(data="synthetic", n_utterances=40, noise_set="ambient", channels=8, embed=32, epochs=3, runs=2,
                  batch_size=64, beta=0.1, enhance_utterances=8, spiking_frames=24,
                  note="embedded synthetic corpus, small models; a smoke test of the whole pipeline (< 10 min on 2 cores)"),
    "cpu": dict(data="grid", n_utterances=None, noise_set="ambient", channels=8, embed=128, epochs=4, runs=4,
                batch_size=64, beta=0.1, enhance_utterances=80, spiking_frames=0,
                note="the shared GRID speaker-1 utterances (all 500 under $MBURST_DATA/grid) with the ambient noise set "
                     "(8 recordings in 4 categories, CHiME-3 stand-ins; test sentences scored on held-out recordings; "
                     "--noise-set noise for the earlier 3-recording set), reduced widths, on CPU"),
    "paper": dict(data="grid", n_utterances=None, noise_set="ambient", channels=32, embed=256, epochs=40, runs=4,
                  batch_size=64, beta=1.0, enhance_utterances=152, spiking_frames=0,
                  note="the paper's sizes and schedule (40 epochs x 4 runs) on the ambient noise set; use --device cuda"),
}

def _train_one(task: tuple) -> TrainResult:
    """Train one (run, model) pair; a process-pool worker when --jobs > 1."""
    corpus_path, model, model_cfg, cfg, run_dir, progress, threads, resume = task
    import torch

    from experiments.data.corpus import load_corpus

    if threads:
        torch.set_num_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(load_corpus(corpus_path), model, model_cfg, cfg, run_dir, resume=resume, progress=progress)
    result.wall_s = time.perf_counter() - t0
    result.cpu_s = time.process_time() - c0
    atomic_write_json(Path(run_dir) / "metrics.json", result.to_dict())
    return result


def _epochs_done(run_dir: str) -> int:
    path = Path(run_dir) / "history.json"
    try:
        return len(json.loads(path.read_text())) if path.exists() else 0
    except ValueError:  # being replaced right now: count it on the next poll
        return 0


def run_all(corpus, model_cfg, base: TrainConfig, runs: int, out: Path, progress: bool = True, jobs: int = 1,
            force: bool = False) -> dict:
    """Train every model on every split (``jobs`` at a time, one torch thread each when > 1).

    Finished pairs (their metrics.json exists) are skipped; unfinished ones resume from their checkpoint;
    ``force`` retrains every pair from scratch. With ``jobs > 1`` the progress bar counts epochs over all
    pairs (read from each pair's ``history.json``).

    Parameters
    ----------
    corpus : Corpus
    model_cfg : ModelConfig
    base : TrainConfig
        Run r uses seeds ``seed + r`` and ``split_seed + r``.
    runs : int
    out : Path
        Reproduction folder (pairs in ``runs/run<r>/<model>/``).
    progress : bool, optional
    jobs : int, optional
    force : bool, optional

    Returns
    -------
    dict of str -> list of TrainResult
        {model: [result per run]}.
    """
    tasks = []
    for r in range(runs):
        for model in ORDER:
            run_dir = out / "runs" / f"run{r}" / model
            if force or not (run_dir / "metrics.json").exists():
                cfg = dataclasses.replace(base, model=model, seed=base.seed + r, split_seed=base.split_seed + r)
                tasks.append((str(corpus.path), model, model_cfg, cfg, str(run_dir), progress and jobs == 1,
                              1 if jobs > 1 else 0, not force))
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from experiments.progress import Bar

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_train_one, task) for task in tasks]
            with Bar(total=len(tasks) * base.epochs, desc=f"training ({jobs} jobs, epochs of {len(tasks)} models)",
                     unit="epoch", show=progress) as bar:
                while not all(f.done() for f in futures):
                    bar.update(sum(_epochs_done(t[4]) for t in tasks) - bar.n)
                    time.sleep(1.0)
                bar.update(sum(_epochs_done(t[4]) for t in tasks) - bar.n)
            for f in futures:
                f.result()
    else:
        for task in tasks:
            _train_one(task)
    return {m: [TrainResult.load(out / "runs" / f"run{r}" / m / "metrics.json") for r in range(runs)] for m in ORDER}


def enhancement_stage(corpus, max_utterances: int, progress: bool = True):
    """A stage scoring STOI/ESTOI/PESQ-WB/SI-SDR of every model and oracle on run 0's test utterances.

    Parameters
    ----------
    corpus : Corpus
    max_utterances : int
        Test utterances scored (:func:`spread_utterances`).
    progress : bool, optional

    Returns
    -------
    callable
        ``stage(out, results) -> (markdown section, output paths)``; writes ``out/enhancement/``.
    """

    def stage(out: Path, results: dict) -> str:
        from experiments.training.checkpoints import read_checkpoint
        from experiments.speech.evaluation import (evaluate_enhancement, exclusion_note, summarise, summary_table,
                                                   write_enhancement_report)
        from experiments.speech.masking import checkpoint_masker

        paths = {m: out / "runs" / "run0" / m / "checkpoint.pt" for m in ORDER}
        split = corpus.split(read_checkpoint(paths["mburst"])["train_config"]["split_seed"])
        chosen = spread_utterances(split["test"], max_utterances, corpus)
        rows = evaluate_enhancement(corpus, chosen, {LABEL[m]: checkpoint_masker(p)[:2] for m, p in paths.items()},
                                    lc_db=corpus.meta.get("lc_db", 5.0), progress=progress)
        write_enhancement_report(rows, out / "enhancement", title="Enhanced speech (run 0, test utterances)")
        summary = summarise(rows)
        section = "\n".join([
            "## Enhanced speech: STOI, ESTOI, PESQ-WB, SI-SDR", "",
            f"{len(chosen)} test utterances of run 0 (spread over the SNRs), soft masks, bins above the 500 modelled "
            "ones attenuated to 0. Oracle IBM and oracle soft (ideal Wiener) masks use the true clean and noise. "
            "Listenable wavs and spectrograms: `enhancement/`.", "",
            markdown_table(*summary_table(summary, excluded=False)), exclusion_note(summary),
            "Each row averages the utterances at one SNR (n of them). Higher is better in every column; ΔSTOI is "
            "the gain over the noisy input, and its share of the oracle IBM's gain says how much of the "
            "achievable binary-mask improvement a model reaches (1 = as good as the ideal binary mask).", ""])
        outputs = [str(f.relative_to(out)) for f in sorted((out / "enhancement").rglob("*")) if f.is_file()]
        return section, outputs

    return stage


def spread_utterances(utt_indices, limit: int, corpus, over_recordings: bool = False) -> np.ndarray:
    """Up to ``limit`` utterances, taking clean sentences in order with all their SNR versions; with
    ``over_recordings``, taken in turn from each noise recording (in that order within each).

    Parameters
    ----------
    utt_indices : array_like of int, shape (n,)
    limit : int
    corpus : Corpus
    over_recordings : bool
        Round-robin over the noise recordings, so that every recording is scored.

    Returns
    -------
    numpy.ndarray of int, shape (min(n, limit),)
    """
    utt_indices = np.asarray(utt_indices)
    if len(utt_indices) <= limit and not over_recordings:
        return utt_indices
    order = sorted((int(i) for i in utt_indices.reshape(-1)),
                   key=lambda i: (corpus.utterances[i].clean_index, corpus.utterances[i].snr_db))
    if over_recordings:
        queues: dict[str, list[int]] = {}
        for i in order:
            queues.setdefault(corpus.utterances[i].noise_name, []).append(i)
        rounds = itertools.zip_longest(*(queues[k] for k in sorted(queues)))
        order = [i for turn in rounds for i in turn if i is not None]
    return np.asarray(order[:limit], dtype=np.int64)


def reproduce(corpus, profile: str, model_cfg, base: TrainConfig, runs: int, out: Path, settings: dict,
              progress: bool = True, extra_stages=(), jobs: int = 1, force=()) -> dict:
    """Train, tabulate, plot and report, each as a resumable stage (:mod:`experiments.training.stages`).

    Parameters
    ----------
    corpus : Corpus
    profile : str
        A key of :data:`PROFILES`.
    model_cfg : ModelConfig
    base : TrainConfig
    runs : int
        Seeded splits per model.
    out : Path
        Output folder (tables, figures, metrics.json, report.md, stages.json).
    settings : dict
        Recorded in the report and metrics.
    progress : bool, optional
    extra_stages : sequence of (str, dict, callable), optional
        ``(name, config, stage)`` with ``stage(out, results) -> (markdown section, output paths)``; the
        stage reruns when ``config`` or the trained models change.
    jobs : int, optional
        Trainings at a time.
    force : iterable of str, optional
        Stages to redo even when up to date.

    Returns
    -------
    dict
        The summary written to ``metrics.json`` (test F1 mean/std per model, AUC ratios, stage times in s).

    Raises
    ------
    MburstError
        If ``runs < 1`` or ``force`` names an unknown stage.
    """
    if runs < 1:
        raise MburstError(f"--runs must be >= 1, got {runs}")
    log = StageLog(out, force)
    pairs = [Path("runs") / f"run{r}" / m / "metrics.json" for r in range(runs) for m in ORDER]
    train_config = {"corpus": corpus.meta.get("cache_key", str(corpus.path)), "model": dataclasses.asdict(model_cfg),
                    "train": dataclasses.asdict(base), "runs": runs}

    def training():
        run_all(corpus, model_cfg, base, runs, out, progress, jobs, force="training" in log.force)
        return "", [str(p) for p in pairs]

    log.run("training", train_config, training)
    results = {m: [TrainResult.load(out / "runs" / f"run{r}" / m / "metrics.json") for r in range(runs)] for m in ORDER}
    trained = files_fingerprint(out / p for p in pairs)
    t1, t2 = table1(results), table2(results)

    def tables():
        atomic_write_text(out / "table1.md", markdown_table(*t1))
        atomic_write_text(out / "table1.csv", csv_table(*t1))
        atomic_write_text(out / "table2.md", markdown_table(*t2[:2]))
        atomic_write_text(out / "table2.csv", csv_table(*t2[:2]))
        shown = fig2_masks(corpus, results, out)
        fig3_firing(results, out)
        return json.dumps({"fig2_frames": shown}), ["table1.md", "table1.csv", "table2.md", "table2.csv",
                                                    "fig2_masks.png", "fig3_firing.png"]

    fig2_frames = json.loads(log.run("tables", {"trained": trained}, tables).section)["fig2_frames"]
    sections = [log.run(name, {"trained": trained, **config}, lambda stage=stage: stage(out, results)).section
                for name, config, stage in extra_stages]
    summary = {
        "profile": profile, "settings": settings, "runs": runs,
        "test_f1": {m: mean_std([r.test_score("f1") for r in results[m]]) for m in ORDER},
        "energy_auc_ratio_mburst_over_multimodal": t2[2],
        "per_run": {m: [r.final for r in results[m]] for m in ORDER},
        "stages": {name: {"runs": rec.runs, "wall_s": rec.wall_s, "cpu_s": rec.cpu_s} for name, rec in log.records.items()},
        "training_cpu_s": sum(r.cpu_s or 0.0 for m in ORDER for r in results[m]),
    }

    def report():
        atomic_write_json(out / "metrics.json", summary)
        times = {"wall_s": sum(rec.wall_s for rec in log.records.values()),
                 "cpu_s": summary["training_cpu_s"] + sum(rec.cpu_s for k, rec in log.records.items() if k != "training")}
        write_report(out, profile, settings, corpus, results, t1, t2, t2[2], times, sections,
                     note=PROFILES[profile]["note"], fig2_frames=fig2_frames)
        return "", ["metrics.json", "report.md"]

    log.run("report", {"summary": {k: v for k, v in summary.items() if k != "stages"}, "sections": sections}, report)
    return summary
