"""Payeur et al. (2021) Fig. 3: two signals multiplexed through a two-layer burst microcircuit.

Layer 1's somata get slow signal s1, layer 2's dendrites an independent signal
s2. Reports Pearson r for the tracking pairs (L1 E vs s1, L2 E vs L1 E,
L1 P vs L2 burst rate; target >= 0.9) and the cross pairs (target |r| <= 0.2).
--no-som and --stp swapped are the ablations; --ablations runs the normal
circuit and both ablations with the same seed and tabulates the effects.
Writes propagation.png (per run), metrics.json, correlations.md/.csv.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

NAME = "propagation"
HELP = "two-layer burst-multiplexing microcircuit (Payeur Fig. 3) with SOM/STP ablations"


def add_arguments(parser) -> None:
    """Add the ``mburst simulate propagation`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    import argparse

    parser.add_argument("--som", action=argparse.BooleanOptionalAction, default=True,
                        help="include the SOM population (--no-som: ablation)")
    parser.add_argument("--stp", choices=("normal", "swapped"), default="normal",
                        help="short-term plasticity assignment (swapped: STF feedforward, STD feedback)")
    parser.add_argument("--ablations", action="store_true",
                        help="run normal, --no-som and --stp swapped with the same seed and compare")
    parser.add_argument("--n-pyr", type=int, default=4000, help="pyramidal cells per layer")
    parser.add_argument("--n-pv", type=int, default=1000, help="PV cells")
    parser.add_argument("--n-som", type=int, default=1000, help="SOM cells")
    parser.add_argument("--p", type=float, default=0.05, help="connection probability (at the published sizes)")
    parser.add_argument("--duration", type=float, default=6.0, help="analysed seconds (after the 1 s warm-up)")
    parser.add_argument("--realizations", type=int, default=1,
                        help="noise realizations (seeds seed, seed+1, ...) averaged before P = B/E (the original: 5)")
    parser.add_argument("--signal", choices=("sine", "ou"), default="sine",
                        help="input signals: sines of periods 0.5 s and sqrt(5) s, or smooth random (OU)")
    parser.add_argument("--target", default="auto", choices=("auto", "numpy", "cython", "cpp_standalone"),
                        help="Brian2 code-generation target")
    parser.add_argument("--threads", type=int, default=0, help="OpenMP threads for cpp_standalone")


def _figure(res: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig

    t = res["t"]
    c = res["correlations"]

    def z(x):
        x = np.asarray(x, float)
        return (x - np.nanmean(x)) / (np.nanstd(x) or 1.0)

    fig, axes = plt.subplots(4, 1, figsize=(7, 7.5), sharex=True)
    panels = [
        (res["L1"]["E"], "L1 event rate (Hz)", res["s1"], "somatic input s1", "L1_E_vs_s1", "C0"),
        (res["L1"]["P"], "L1 burst probability", res["L2"]["B"], "L2 burst rate", "L1_P_vs_L2_B", "C3"),
        (res["L2"]["E"], "L2 event rate (Hz)", res["L1"]["E"], "L1 event rate", "L2_E_vs_L1_E", "C0"),
        (res["L2"]["P"], "L2 burst probability", res["s2"], "dendritic input s2", "L2_P_vs_s2", "C3"),
    ]
    for ax, (y, ylabel, ref, ref_label, key, color) in zip(axes, panels):
        ax.plot(t, y, color=color, lw=1.2)
        ax.set_ylabel(ylabel, fontsize=8)
        ax2 = ax.twinx()
        ax2.plot(t, z(ref), color="0.5", lw=0.8, ls="--")
        ax2.set_yticks([])
        ax.set_title(f"{ylabel} vs {ref_label} (dashed, z-scored): r = {c[key]['r']:.3f}", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def _strip(res: dict) -> dict:
    """metrics.json content of one run (time series as lists)."""
    out = {k: v for k, v in res.items() if k not in ("t", "s1", "s2", "L1", "L2")}
    out["series"] = {"t": res["t"].tolist(), "s1": res["s1"].tolist(), "s2": res["s2"].tolist(),
                     **{f"{layer}_{q}": np.asarray(res[layer][q]).tolist() for layer in ("L1", "L2") for q in ("E", "B", "P")}}
    return out


def main(args) -> int:
    """Run the microcircuit (and, with ``--ablations``, both ablations); write figures, tables and metrics.json.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options, with ``out`` (the run folder) and ``seed``.

    Returns
    -------
    int
        Exit status 0.

    Raises
    ------
    MburstError
        If ``--duration <= 0`` or the :class:`~circuits.microcircuit.MicrocircuitConfig` is invalid.
    """
    from brian2 import second

    from circuits.microcircuit import MicrocircuitConfig, run_propagation
    from neurons.common import MburstError, atomic_write_json, atomic_write_text, csv_table, markdown_table

    if args.duration <= 0:
        raise MburstError(f"--duration={args.duration} must be positive")
    variants = [("normal", args.som, args.stp)]
    if args.ablations:
        variants = [("normal", True, "normal"), ("no_som", False, "normal"), ("stp_swapped", True, "swapped")]
    configs = []
    for label, som, stp in variants:
        cfg = MicrocircuitConfig(n_pyr=args.n_pyr, n_pv=args.n_pv, n_som=args.n_som, p=args.p, som=som, stp=stp,
                                 duration=args.duration * second, realizations=args.realizations,
                                 signal=args.signal, target=args.target, threads=args.threads)
        configs.append((label if args.ablations else f"som{int(som)}_stp-{stp}", cfg.validate()))
    runs = {}
    for label, cfg in configs:
        print(f"[propagation] {label}: {cfg.n_pyr}/{cfg.n_pv}/{cfg.n_som} cells, som={cfg.som}, stp={cfg.stp}", flush=True)
        res = run_propagation(cfg, seed=args.seed, progress=True)
        _figure(res, args.out / f"propagation_{label}.png",
                f"{label}: {cfg.n_pyr} pyr/layer, {cfg.n_pv} PV, {cfg.n_som if cfg.som else 0} SOM, STP {cfg.stp}")
        runs[label] = _strip(res)
        atomic_write_json(args.out / "metrics.json", {"runs": runs})  # partial results survive an interruption
    keys = list(next(iter(runs.values()))["correlations"].keys())
    header = ["pair", "kind", *runs.keys()]
    rows = [[k, runs[next(iter(runs))]["correlations"][k]["kind"], *[runs[lab]["correlations"][k]["r"] for lab in runs]]
            for k in keys]
    rows += [["L1_P_range_5_95", "range", *[runs[lab]["summary"]["L1_P_range_5_95"] for lab in runs]],
             ["L1_P_mean", "level", *[runs[lab]["summary"]["L1_P_mean"] for lab in runs]]]
    atomic_write_text(args.out / "correlations.md", markdown_table(header, rows))
    atomic_write_text(args.out / "correlations.csv", csv_table(header, rows))
    summary = {}
    for lab, run in runs.items():
        c = run["correlations"]
        track = [c[k]["r"] for k in ("L1_E_vs_s1", "L2_E_vs_L1_E", "L1_P_vs_L2_B")]
        cross = [abs(c[k]["r"]) for k in c if c[k]["kind"] == "cross"]
        summary[lab] = {"tracking_min_r": float(np.nanmin(track)), "cross_max_abs_r": float(np.nanmax(cross)),
                        "targets_met": bool(np.nanmin(track) >= 0.9 and np.nanmax(cross) <= 0.2)}
    atomic_write_json(args.out / "metrics.json", {"runs": runs, "summary": summary,
                                                  "figures": sorted(str(p) for p in args.out.glob("propagation_*.png"))})
    print(markdown_table(header, rows))
    print(f"written to {args.out}")
    return 0
