"""The paper's tables and figures and ``report.md`` of ``mburst reproduce`` (Passos et al., Tables I-II,
Figures 2-3), from the per-run :class:`~experiments.training.train.TrainResult` s."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neurons.common import atomic_savefig, atomic_write_text, markdown_table

from experiments.training.metrics import energy_auc
from experiments.training.train import evaluate

#: Passos et al. Table I (CHiME-3 noise) and Table II (AUC of the activation rate over 40 epochs).
PAPER_TABLE1 = {
    ("train", "f1"): (0.677, 0.802, 0.782), ("train", "accuracy"): (82.919, 91.898, 90.602),
    ("test", "f1"): (0.696, 0.790, 0.768), ("test", "accuracy"): (81.758, 90.236, 88.798),
}
PAPER_TABLE2 = {"train": (11.12, 13.70, 5.63), "test": (11.51, 14.14, 6.08)}
ORDER = ("unimodal", "multimodal", "mburst")
LABEL = {"unimodal": "Unimodal", "multimodal": "Multimodal", "mburst": "MBURST"}


def mean_std(values) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0) over runs.

    Parameters
    ----------
    values : array_like, shape (runs,)

    Returns
    -------
    (float, float)
        Mean and standard deviation, in the unit of ``values``.
    """
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=0))


def pm(values, digits: int = 3) -> str:
    """``"mean ± std"`` over runs, as text.

    Parameters
    ----------
    values : array_like, shape (runs,)
    digits : int
        Decimals shown.
    """
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table1(results: dict) -> tuple[list[str], list[list]]:
    """Table I (Passos et al.): F1 and accuracy (%) per split, mean ± std over runs, beside the paper's.

    Parameters
    ----------
    results : dict of str -> list of TrainResult
        Per model, one result per run (:func:`run_all`).

    Returns
    -------
    header : list of str
    rows : list of list of str
    """
    header = ["set", "metric"] + [LABEL[m] for m in ORDER] + [f"paper {LABEL[m]}" for m in ORDER]
    rows = []
    for split in ("train", "test", "proxy"):
        for metric, digits in (("f1", 3), ("accuracy", 2)):
            if not all(split in res.final for m in ORDER for res in results[m]):
                continue
            row = [split, "F1" if metric == "f1" else "acc %"]
            row += [pm([res.final[split][metric] for res in results[m]], digits) for m in ORDER]
            row += [str(v) for v in PAPER_TABLE1.get((split, metric), ("",) * 3)]
            rows.append(row)
    return header, rows


def curves(results: dict, model: str, split: str, quantity: str) -> np.ndarray:
    """The overall per-epoch firing statistic ``quantity`` of ``model`` on ``split``.

    Parameters
    ----------
    results : dict of str -> list of TrainResult
        Per model, one result per run (:func:`run_all`).
    model, split, quantity : str

    Returns
    -------
    numpy.ndarray, shape (runs, epochs)
    """
    return np.array([[rec[split][quantity]["overall"] for rec in res.history] for res in results[model]])


def table2(results: dict) -> tuple[list[str], list[list], dict]:
    """Table II (Passos et al.): AUC of the per-epoch firing curves (mean ± std over runs) beside the paper's.

    Parameters
    ----------
    results : dict of str -> list of TrainResult
        Per model, one result per run (:func:`run_all`).

    Returns
    -------
    header : list of str
    rows : list of list of str
    ratios : dict of str -> float
        MBURST / Multimodal mean AUC per ``'<split>/<quantity>'``.
    """
    header = ["set", "statistic"] + [LABEL[m] for m in ORDER] + ["MBURST / Multimodal"] + [f"paper {LABEL[m]}" for m in ORDER]
    rows, ratios = [], {}
    for split in ("train", "test"):
        for quantity in ("active_fraction", "mean_event_rate"):
            aucs = {m: [energy_auc(c) for c in curves(results, m, split, quantity)] for m in ORDER}
            ratio = np.mean(aucs["mburst"]) / np.mean(aucs["multimodal"]) if np.mean(aucs["multimodal"]) else float("nan")
            ratios[f"{split}/{quantity}"] = ratio
            row = [split, quantity.replace("_", " ") + " AUC"] + [pm(aucs[m], 3) for m in ORDER] + [f"{ratio:.3f}"]
            row += [str(v) for v in PAPER_TABLE2[split]] if quantity == "active_fraction" else [""] * 3
            rows.append(row)
    return header, rows, ratios


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 9,
                         "xtick.labelsize": 9, "ytick.labelsize": 9})
    return plt


def fig2_masks(corpus, results: dict, out: Path, n_frames: int = 150) -> int:
    """Figure 2, ``out/fig2_masks.png``: target IBM and each model's mask over consecutive proxy frames of run 0.

    Time in s (40 ms hop) against frequency in Hz (bin k of the 1244-sample STFT at 16 kHz is
    k x 12.86 Hz; band models spread their bands evenly over the same 12.9-6431 Hz); colour: the mask
    value (0 noise, 1 speech; models show their probabilities).

    Parameters
    ----------
    corpus : Corpus
    results : dict of str -> list of TrainResult
    out : Path
        Reproduction folder (reads ``runs/run0/<model>/checkpoint.pt``).
    n_frames : int, optional
        Consecutive frames shown (40 ms each).

    Returns
    -------
    int
        Frames actually shown (fewer than ``n_frames`` when the split is shorter).

    Raises
    ------
    MburstError
        If a checkpoint is missing or unusable (:func:`~experiments.training.checkpoints.load_checkpoint`).
    """
    from experiments.data.features import HOP, N_BINS, SAMPLE_RATE, WIN
    from experiments.training.checkpoints import load_checkpoint

    plt = _style()
    panels = []
    for model in ORDER:
        net, state = load_checkpoint(out / "runs" / "run0" / model / "checkpoint.pt")
        split = corpus.split(state["train_config"]["split_seed"])
        name = "proxy" if len(split["proxy"]) else "test"
        frames = corpus.frames(split[name], state["feature_stats"], net.config.n_bins)
        _, _, masks = evaluate(net, frames, keep_masks=slice(0, n_frames))
        if not panels:
            target = frames.batch(np.arange(min(n_frames, len(frames))))[2].numpy()
            panels.append((f"target: ideal binary mask ({name} set)", target))
        panels.append((f"{LABEL[model]}: mask probability", masks))
    shown = len(panels[0][1])
    df = SAMPLE_RATE / WIN
    extent = (0.0, shown * HOP / SAMPLE_RATE, 0.5 * df, (N_BINS + 0.5) * df)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, (title, mask) in zip(axes, panels):
        im = ax.imshow(mask.T, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=1, interpolation="nearest",
                       extent=extent)
        ax.set_title(title)
        ax.set_ylabel("frequency (Hz)")
    axes[-1].set_xlabel(f"time (s), {shown} frames of 40 ms")
    fig.colorbar(im, ax=list(axes), label="mask value (0 noise, 1 speech)", fraction=0.03, pad=0.01)
    atomic_savefig(fig, out / "fig2_masks.png")
    plt.close(fig)
    return shown


def fig3_firing(results: dict, out: Path) -> Path:
    """Figure 3, ``out/fig3_firing.png``: per-epoch firing of the hidden units (mean ± std over runs).

    The paper calls this the energy figure; it shows firing (the proxy Table II integrates), not joules:
    the fraction of hidden units with e > 0 and the mean event rate e (dimensionless, the rate model's
    unit), on the train and test splits.

    Parameters
    ----------
    results : dict of str -> list of TrainResult
    out : Path

    Returns
    -------
    Path
    """
    from matplotlib.ticker import MaxNLocator

    plt = _style()
    ylabel = {"active_fraction": "active fraction (e > 0)", "mean_event_rate": "mean event rate e"}
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for col, split in enumerate(("train", "test")):
        for row, quantity in enumerate(("active_fraction", "mean_event_rate")):
            ax = axes[row, col]
            for model in ORDER:
                c = curves(results, model, split, quantity)
                epochs = np.arange(1, c.shape[1] + 1)
                ax.plot(epochs, c.mean(0), marker="o", label=f"{LABEL[model]} (mean)")
                ax.fill_between(epochs, c.mean(0) - c.std(0), c.mean(0) + c.std(0), alpha=0.2)
            ax.set_title(f"{split} split: {ylabel[quantity]} of hidden units")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel[quantity])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
    axes[0, 0].legend(title=f"shaded: ± 1 std over {len(next(iter(results.values())))} runs")
    fig.tight_layout()
    path = atomic_savefig(fig, out / "fig3_firing.png")
    plt.close(fig)
    return path


def warnings_for(results: dict, angles: dict, fig2_frames: int, min_frames: int = 150) -> list[str]:
    """Lines that flag numbers meaning trouble in ``report.md``.

    Parameters
    ----------
    results : dict of str -> list of TrainResult
    angles : dict of str -> list of float
        MBURST's last-epoch burstprop-vs-backprop update angle per layer (degrees), one per run.
    fig2_frames : int
        Frames behind Figure 2.
    min_frames : int, optional
        Fewer frames than this behind Figure 2 are flagged.

    Returns
    -------
    list of str
        Markdown bullet lines (empty when nothing is wrong).
    """
    lines = []
    against = {k: float(np.mean(v)) for k, v in angles.items() if np.mean(v) > 90.0}
    if against:
        lines.append("- **Warning: update angle above 90°** in " + ", ".join(f"{k} ({v:.0f}°)" for k, v in against.items())
                     + ": there burstprop's update points against the loss gradient, so those layers are not learning "
                       "the task (a burst slope β of 0.1 keeps the dendrites in the linear range, where burstprop "
                       "follows backprop).")
    empty = sorted({split for m in ORDER for r in results[m] for split, rep in r.final.items()
                    if rep.get("positive_fraction", 1.0) == 0.0})
    if empty:
        lines.append(f"- **Warning: no positive (speech) unit in the {', '.join(empty)} mask(s)**: F1 is 0 by "
                     "definition there and says nothing about the model.")
    if fig2_frames < min_frames:
        lines.append(f"- **Warning: Figure 2 shows only {fig2_frames} frames** (< {min_frames}); the split is short.")
    return lines
def noise_line(noise: dict | None) -> list[str]:
    """The data section's line on which noise recordings each split heard.

    Parameters
    ----------
    noise : dict or None
        A corpus report's ``noise`` (:func:`experiments.data.build.noise_report`).

    Returns
    -------
    list of str
        One markdown bullet (none when the corpus records no noise split).
    """
    if not noise:
        return []
    parts = {k: ", ".join(f"{p['recording']} ({p['seconds']:.0f} s)" for p in v) for k, v in noise["splits"].items()}
    cut = [c for c, how in noise["categories"].items() if how != "recordings"]
    return [f"- Noise split `{noise['mode']}` over {len(noise['categories'])} categories"
            + (f" ({', '.join(cut)} cut in time with a {noise['guard_s']:g} s guard gap)" if cut else "")
            + f": training and proxy sentences hear {parts['train']}; test sentences are scored on the held-out "
              f"{parts['test']} (Table I's test rows), and on the training recordings for the generalisation gap."]


def write_report(out: Path, profile: str, settings: dict, corpus, results: dict, t1, t2, ratios, times: dict,
                 extra_sections: list[str], note: str = "", fig2_frames: int = 150) -> None:
    """Write ``out/report.md``: data, Tables I-II beside the paper's, update angles, warnings and extra sections.

    Every table is followed by a sentence on how to read it.

    Parameters
    ----------
    out : Path
    profile : str
        A key of :data:`~experiments.training.reproduce.PROFILES`.
    settings : dict
    corpus : Corpus
    results : dict of str -> list of TrainResult
    t1 : (list of str, list of list)
        :func:`table1`.
    t2 : (list of str, list of list, dict)
        :func:`table2`.
    ratios : dict of str -> float
        MBURST / Multimodal AUC ratios.
    times : dict
        ``wall_s``: real wall time of the stages as they ran (s); ``cpu_s``: CPU time summed over the
        training processes and stages (s).
    extra_sections : list of str
        Markdown sections appended.
    note : str, optional
        The profile's description.
    fig2_frames : int, optional
        Frames behind Figure 2 (fewer than 150 are flagged).
    """
    test_f1 = {m: float(np.mean([r.test_score("f1") for r in results[m]])) for m in ORDER}
    angles = {}
    for res in results["mburst"]:
        if res.history and "angles_deg" in res.history[-1]:
            for layer, deg in res.history[-1]["angles_deg"].items():
                angles.setdefault(layer, []).append(deg)
    real = corpus.meta.get("source") == "grid"
    warnings = warnings_for(results, angles, fig2_frames)
    lines = [
        "# MBURST reproduction (Passos et al., Tables I-II, Figures 2-3)",
        "",
        f"Profile `{profile}`: {note}. Real wall time {times['wall_s'] / 60:.1f} min (the stages as they ran, "
        f"across invocations); CPU time {times['cpu_s'] / 60:.1f} min (summed over the training processes and "
        "stages, so above the wall time when jobs run in parallel).",
        "",
    ]
    if warnings:
        lines += ["## Warnings", ""] + warnings + [""]
    lines += [
        "## Data",
        f"- Source: {'GRID speaker-1 subset' if real else 'the embedded synthetic audio-visual corpus'}; "
        f"{len(corpus.cleans)} clean utterances, {len(corpus.utterances)} noisy versions at SNRs "
        f"{corpus.meta.get('snrs_db')} dB, LC {corpus.meta.get('lc_db')} dB.",
        "- Noise: " + ("the shared real recordings. These REPLACE the paper's CHiME-3 backgrounds (bus, cafe, "
                       "street, pedestrian), which are not available here, so absolute numbers are not comparable "
                       "with the paper's." if real else
                       "synthetic babble, modulated coloured noise and transients; numbers are not comparable with the paper's."),
        *noise_line(getattr(corpus, "report", {}).get("noise")),
        f"- Settings: {json.dumps(settings, sort_keys=True)}",
        "",
        "## Table I: mask F1 and accuracy (mean ± std over runs)",
        "",
        markdown_table(*t1),
        "Each cell is the mean ± std over the seeded runs of the ideal-binary-mask estimate at threshold 0.5, "
        "counted over all time-frequency units of the split; the paper's columns are its CHiME-3 numbers, for scale.",
        "",
        f"MBURST − Multimodal test F1: {test_f1['mburst'] - test_f1['multimodal']:+.3f} (paper: −0.022); "
        f"Multimodal − Unimodal: {test_f1['multimodal'] - test_f1['unimodal']:+.3f} (paper: +0.094).",
        "",
        "## Table II: area under the per-epoch firing curves (hidden units)",
        "",
        "The paper does not define its activation rate exactly; both readings are given. "
        "Paper AUCs are over 40 epochs; ours are over the profile's epochs, so compare the ratios.",
        "",
        markdown_table(*t2[:2]),
        "Each cell is the trapezoid area under a model's per-epoch curve (Figure 3), mean ± std over runs; a "
        "ratio MBURST / Multimodal below 1 means MBURST fired less over training.",
        "",
        f"MBURST / Multimodal AUC (test): mean event rate {ratios['test/mean_event_rate']:.3f}, "
        f"active fraction {ratios['test/active_fraction']:.3f} (paper: {6.08 / 14.14:.2f}, of its average activation rate).",
        "",
        f"Figures: `fig2_masks.png` ({fig2_frames} consecutive proxy frames: target and each model's mask, time "
        "against frequency), `fig3_firing.png` (per-epoch firing of the hidden units, train and test).",
        "",
    ]
    if angles:
        beta = settings.get("beta")
        lines += ["## Burstprop vs backprop update angle (last epoch, degrees, mean over runs)", "",
                  markdown_table(["layer", "angle (°)"], [[k, round(float(np.mean(v)), 1)] for k, v in angles.items()]),
                  f"The angle between MBURST's burstprop update and the backprop gradient of the same weights, on one "
                  f"training batch at the end of training (burst slope β = {beta}): near 0° burstprop follows "
                  "gradient descent, 90° is unrelated, above 90° it points against the gradient.", ""]
    lines += extra_sections
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
