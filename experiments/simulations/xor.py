"""Payeur et al. (2021) Fig. 4: a spiking network learns XOR with burst-dependent plasticity.

One training run per seed (cpp_standalone by default); each finished seed is
saved to seed_<k>/result.json, so an interrupted run resumes with the next
seed. Writes xor_accuracy.png (accuracy per epoch, all seeds),
xor_rates_seed<k>.png (output rate per pattern over training), xor.md/.csv
and metrics.json (per seed: solved, final rates, simulated s, wall s, spikes).
"""
from __future__ import annotations

import json

import numpy as np

NAME = "xor"
HELP = "spiking XOR with burst-dependent plasticity (Payeur Fig. 4), resumable per seed"

PATTERN_LABELS = ["(0,0)", "(0,1)", "(1,0)", "(1,1)"]


def add_arguments(parser) -> None:
    """Add the ``mburst simulate xor`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (seed, seed+1, ...)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs (each shows the 4 patterns once)")
    parser.add_argument("--n", type=int, default=100, help="cells per input and output population")
    parser.add_argument("--n-hidden", type=int, default=200, help="hidden cells")
    parser.add_argument("--t-present", type=float, default=2.0, help="seconds per presentation")
    parser.add_argument("--target", default="cpp_standalone", choices=("numpy", "cython", "cpp_standalone"),
                        help="Brian2 code-generation target")
    parser.add_argument("--threads", type=int, default=0, help="OpenMP threads for cpp_standalone")


def _to_json(res: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in res.items()}


def _rates_figure(res: dict, path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig

    order = np.asarray(res["order"])
    out = np.asarray(res["out_rate"])
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for k in range(4):
        idx = np.flatnonzero(order == k)
        ax.plot(idx // 4 + 1, out[idx], marker=".", lw=1, label=PATTERN_LABELS[k],
                color=["C0", "C3", "C1", "C2"][k], ls="-" if k in (1, 2) else "--")
    ax.axhline(res["threshold_hz"], color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("output event rate (Hz)")
    ax.set_title(f"XOR seed {seed}: solved={res['solved']}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def main(args) -> int:
    """Train XOR for each seed (resuming finished seeds); write figures, xor.md/.csv and metrics.json.

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
        If ``--seeds < 1``, ``--t-present <= 0``, the :class:`~circuits.xor.XORConfig` is invalid,
        or a saved seed was made with a different configuration.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from brian2 import second

    from circuits.xor import XORConfig, run_xor
    from neurons.common import MburstError, atomic_savefig, atomic_write_json, atomic_write_text, csv_table, markdown_table

    if args.seeds < 1:
        raise MburstError(f"--seeds={args.seeds} must be >= 1")
    if args.t_present <= 0:
        raise MburstError(f"--t-present={args.t_present} must be positive")
    config = XORConfig(n=args.n, n_hidden=args.n_hidden, epochs=args.epochs, t_present=args.t_present * second,
                       target=args.target, threads=args.threads).validate()
    from dataclasses import asdict

    from brian2 import Quantity

    wanted = {k: (str(v) if isinstance(v, Quantity) else v) for k, v in asdict(config).items()}
    results = {}
    from experiments.progress import Bar

    for seed in Bar(range(args.seed, args.seed + args.seeds), desc="xor seeds", unit="seed"):
        path = args.out / f"seed_{seed}" / "result.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("config") != wanted:
                raise MburstError(f"{path} was made with a different configuration; use another --out")
            results[seed] = saved
            print(f"[xor] seed {seed}: resumed from {path}", flush=True)
            continue
        res = _to_json(run_xor(config, seed=seed, tag="xor", progress=True))
        atomic_write_json(path, res)
        results[seed] = res
        _rates_figure(res, args.out / f"xor_rates_seed{seed}.png", seed)
        print(f"[xor] seed {seed}: solved={res['solved']} final rates {np.round(res['final_rates'], 1)} Hz, "
              f"wall {res['wall_s']:.1f} s", flush=True)

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for seed, res in results.items():
        acc = np.asarray(res["epoch_accuracy"])
        ax.plot(np.arange(1, len(acc) + 1), acc, lw=1, label=f"seed {seed}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("epoch")
    ax.set_ylabel("fraction of patterns correct")
    ax.set_title("spiking XOR: accuracy over training", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    atomic_savefig(fig, args.out / "xor_accuracy.png")
    plt.close(fig)

    header = ["seed", "solved", *[f"rate {p} (Hz)" for p in PATTERN_LABELS], "last-5-epoch acc", "simulated s",
              "wall s", "binary run s", "spikes"]
    rows = []
    for seed, res in results.items():
        acc = np.asarray(res["epoch_accuracy"])
        timers = res.get("build_timers") or {}
        rows.append([seed, res["solved"], *[float(x) for x in res["final_rates"]], float(acc[-5:].mean()),
                     res["simulated_s"], res["wall_s"], timers.get("run_binary", float("nan")), res["spikes"]])
    atomic_write_text(args.out / "xor.md", markdown_table(header, rows))
    atomic_write_text(args.out / "xor.csv", csv_table(header, rows))
    n_solved = int(sum(bool(r["solved"]) for r in results.values()))
    atomic_write_json(args.out / "metrics.json", {
        "seeds": list(results), "solved": n_solved, "n_seeds": len(results), "target_met": n_solved >= 0.8 * len(results),
        "per_seed": {str(s): {k: r[k] for k in ("solved", "final_rates", "final_correct", "simulated_s", "wall_s",
                                                 "spikes", "events", "bursts", "epoch_accuracy", "build_timers")
                              if k in r} for s, r in results.items()},
        "config": next(iter(results.values()))["config"],
        "figures": [str(args.out / "xor_accuracy.png")] + [str(args.out / f"xor_rates_seed{s}.png") for s in results],
    })
    print(markdown_table(header, rows))
    print(f"XOR solved in {n_solved}/{len(results)} seeds; written to {args.out}")
    return 0
