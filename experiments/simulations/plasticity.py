"""Burst-dependent plasticity: mean weight change against burst probability (Payeur et al. 2021).

Pre- and postsynaptic units fire Poisson events at fixed rates; the
postsynaptic burst probability P is clamped per group of cells while the
running average Pbar starts at --pbar0. The mean dW is compared with the rate
prediction eta E_post (P - Pbar) E_pre tau_pre T (burstprop's b - bbar times
e_pre). Writes dw_vs_p.png, dw_vs_p.md/.csv and metrics.json.
"""
from __future__ import annotations

import time

import numpy as np

NAME = "plasticity"
HELP = "dW against burst probability P for the spiking burst-dependent rule (writes figure + metrics)"


def add_arguments(parser) -> None:
    """Add the ``mburst simulate plasticity`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--levels", type=int, default=11, help="number of P values in [0, --p-max]")
    parser.add_argument("--p-max", type=float, default=0.5, help="largest clamped burst probability")
    parser.add_argument("--pbar0", type=float, default=0.2, help="initial running average Pbar")
    parser.add_argument("--duration", type=float, default=10.0, help="simulated seconds")
    parser.add_argument("--post-per-level", type=int, default=20, help="postsynaptic cells per P value")
    parser.add_argument("--n-pre", type=int, default=40, help="presynaptic cells (all-to-all)")
    parser.add_argument("--eta", type=float, default=3.5e-3, help="learning rate")
    parser.add_argument("--rate", type=float, default=10.0, help="pre and post event rate (Hz)")
    parser.add_argument("--target", default="numpy", choices=("numpy", "cython", "cpp_standalone"),
                        help="Brian2 code-generation target")


def main(args) -> int:
    """Run :func:`circuits.plasticity.plasticity_curve` and write dw_vs_p.png, dw_vs_p.md/.csv and metrics.json.

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
        If ``--levels < 2``, ``--p-max`` is outside (0, 1], ``--eta < 0``, ``--duration``
        or ``--rate`` is not positive, or as :func:`~circuits.plasticity.plasticity_curve`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from brian2 import Hz, second

    from circuits.plasticity import BurstPlasticityParams, plasticity_curve
    from neurons.common import MburstError, atomic_savefig, atomic_write_json, atomic_write_text, csv_table, markdown_table

    if args.levels < 2:
        raise MburstError(f"--levels={args.levels} must be >= 2")
    if not 0 < args.p_max <= 1:
        raise MburstError(f"--p-max={args.p_max} must lie in (0, 1]")
    if args.eta < 0:
        raise MburstError(f"--eta={args.eta} must not be negative")
    if args.duration <= 0 or args.rate <= 0:
        raise MburstError("--duration and --rate must be positive")
    params = BurstPlasticityParams(eta=args.eta).validate()
    p_values = np.round(np.linspace(0.0, args.p_max, args.levels), 4)
    t0 = time.perf_counter()
    r = plasticity_curve(p_values, pbar0=args.pbar0, e_post=args.rate * Hz, e_pre=args.rate * Hz,
                         n_post_per_level=args.post_per_level, n_pre=args.n_pre, duration=args.duration * second,
                         params=params, seed=args.seed, target=args.target, progress=True)
    wall = time.perf_counter() - t0
    out = args.out
    header = ["P_nominal", "P_measured", "E_post_hz", "dW_mean", "dW_sem", "dW_rate_prediction"]
    rows = [[float(a), float(b), float(c), float(d), float(e), float(f)] for a, b, c, d, e, f in
            zip(r["p_nominal"], r["p_measured"], r["e_post_measured"], r["dw_mean"], r["dw_sem"], r["dw_predicted"])]
    atomic_write_text(out / "dw_vs_p.md", markdown_table(header, rows))
    atomic_write_text(out / "dw_vs_p.csv", csv_table(header, rows))

    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(args.pbar0, color="0.7", lw=0.8, ls="--", label=r"$\bar P$ at start")
    ax.errorbar(r["p_measured"], r["dw_mean"], yerr=r["dw_sem"], fmt="o", color="C3", label="spiking rule (mean ± s.e.m.)")
    order = np.argsort(r["p_measured"])
    ax.plot(r["p_measured"][order], r["dw_predicted"][order], color="k", label=r"rate prediction $\eta T(b-\bar b)e_{pre}$")
    ax.set_xlabel("postsynaptic burst probability P")
    ax.set_ylabel(r"mean $\Delta W$")
    ax.set_title(f"burst-dependent rule: r = {r['corr']:.3f}")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    atomic_savefig(fig, out / "dw_vs_p.png")
    plt.close(fig)

    metrics = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
    metrics.update(wall_s=wall, figure=str(out / "dw_vs_p.png"), target=args.target,
                   corr_note="corr: dW vs +(b - bbar) e_pre (the applied update); corr_with_gradient: vs "
                             "burstprop's Delta W = -(b - bbar) e_pre, which the optimiser subtracts")
    atomic_write_json(out / "metrics.json", metrics)
    print(f"dW-vs-P correlation with the rate prediction: r = {r['corr']:.4f} (slope {r['slope']:.3f}); "
          f"wall {wall:.1f} s; written to {out}")
    return 0
