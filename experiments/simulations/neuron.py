"""Single-cell and population behaviour of the Brian2 models in ``neurons/``.

``--what stp``: Tsodyks-Markram efficacies of STD and STF synapses at 5, 20
and 50 Hz against the closed-form recursion (figure, arrays, table).
``--what transfer``: population transfer curves E(I_s) and P(I_d) with the
softplus/sigmoid fits (``transfer_fit.json``; ``--write-default-fit`` also
refreshes ``neurons/data/transfer_fit.json``, the rate model's default).
``--what multiplexing``: the sweep sensitivities (somatic input moves E,
dendritic input moves P) and a time-varying demo of both signals in one
population (Naud & Sprekeler 2018; Payeur et al. 2021).
"""
from __future__ import annotations

import numpy as np

from neurons.common import MburstError, atomic_write_json, atomic_write_text, csv_table, markdown_table

from experiments.progress import phase

NAME = "neuron"
HELP = "pyramidal/STP behaviour: --what transfer|multiplexing|stp"


def add_arguments(parser) -> None:
    """Add the ``mburst simulate neuron`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--what", required=True, choices=["transfer", "multiplexing", "stp"],
                        help="which experiment to run")
    parser.add_argument("--target", default="cython", choices=["auto", "numpy", "cython", "cpp_standalone"],
                        help="Brian2 code-generation target")
    parser.add_argument("--cells-per-level", type=int, default=200,
                        help="cells per current level (transfer, multiplexing sweeps)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="measured seconds per sweep (after a 0.2 s warm-up)")
    parser.add_argument("--levels", type=int, default=0,
                        help="current levels per sweep (0: 50 pA steps over the default ranges)")
    parser.add_argument("--i-s-range", type=float, nargs=2, default=(-500.0, 600.0), metavar=("LO", "HI"),
                        help="somatic sweep range in pA")
    parser.add_argument("--i-d-range", type=float, nargs=2, default=(-300.0, 500.0), metavar=("LO", "HI"),
                        help="dendritic sweep range in pA (above ~550 pA sustained plateaus drive the soma tonically: E rises, P falls)")
    parser.add_argument("--fixed", type=float, nargs=2, default=(100.0, 100.0), metavar=("I_S", "I_D"),
                        help="somatic current held during the dendritic sweep, dendritic during the somatic (pA)")
    parser.add_argument("--demo-cells", type=int, default=2000, help="population size of the multiplexing demo")
    parser.add_argument("--demo-duration", type=float, default=4.0, help="seconds of the multiplexing demo")
    parser.add_argument("--no-background", action="store_true",
                        help="transfer: the quiet regime, without the Payeur Poisson background (deterministic cells)")
    parser.add_argument("--offset-spread", type=float, default=0.0,
                        help="transfer: somatic offsets of the cells of a level, evenly spaced over +-this many pA "
                             "(a heterogeneous ensemble; smooths the quiet regime's threshold)")
    parser.add_argument("--in-circuit", action="store_true",
                        help="transfer: measure a layer in place, with its PV/SOM microcircuit (STP inputs, inhibition "
                             "of soma and dendrite) and the background (circuits.calibration): the calibrated-circuit "
                             "activation")
    parser.add_argument("--layer-context", type=float, default=None, metavar="PA",
                        help="transfer, --in-circuit: hold the rest of the layer (twice the sweeps' cells) at this "
                             "somatic current, so that the interneurons see a layer mean set apart from the levels "
                             "swept (their inhibition follows the layer's mean event rate; the run reports it)")
    parser.add_argument("--interneuron-gain", type=float, default=1.0, metavar="X",
                        help="transfer, --in-circuit: factor on the layer's weights onto its PV and SOM (mburst bridge "
                             "--match-interneurons sets it to m_cal / m for each layer)")
    parser.add_argument("--write-default-fit", action="store_true",
                        help="also write neurons/data/transfer_fit.json (transfer_fit_quiet.json with --no-background, "
                             "transfer_fit_circuit.json with --in-circuit; transfer only)")


def _levels(lo: float, hi: float, n: int) -> np.ndarray:
    if hi <= lo:
        raise MburstError(f"current range ({lo}, {hi}) must have HI > LO")
    if n:
        if n < 3:
            raise MburstError(f"--levels={n} must be >= 3")
        return np.linspace(lo, hi, n)
    return np.arange(lo, hi + 1e-9, 50.0)


def _sweeps(args):
    from circuits.calibration import measure_circuit_transfer
    from neurons.transfer import measure_sweeps

    if args.cells_per_level < 2:
        raise MburstError(f"--cells-per-level={args.cells_per_level} must be >= 2")
    if args.duration <= 0:
        raise MburstError(f"--duration={args.duration} must be positive")
    if args.layer_context is not None and not args.in_circuit:
        raise MburstError("--layer-context sets the operating point of a layer's interneurons: it needs --in-circuit")
    if args.layer_context is not None and not np.isfinite(args.layer_context):
        raise MburstError(f"--layer-context={args.layer_context} must be a finite current (pA)")
    if args.interneuron_gain != 1.0 and not args.in_circuit:
        raise MburstError("--interneuron-gain scales the weights onto a layer's interneurons: it needs --in-circuit")
    if not (np.isfinite(args.interneuron_gain) and args.interneuron_gain > 0):
        raise MburstError(f"--interneuron-gain={args.interneuron_gain} must be a positive factor")
    if args.in_circuit:
        if args.no_background or args.offset_spread:
            raise MburstError("--in-circuit measures the circuit's regime (background, no offsets); drop "
                              "--no-background/--offset-spread")
        return measure_circuit_transfer(_levels(*args.i_s_range, args.levels), _levels(*args.i_d_range, args.levels),
                                        I_s_fixed=args.fixed[0], I_d_fixed=args.fixed[1],
                                        n_per_level=args.cells_per_level, duration=args.duration, warmup=0.2,
                                        target=args.target, seed=args.seed, progress=True,
                                        context_pA=args.layer_context, interneuron_gain=args.interneuron_gain)
    return measure_sweeps(_levels(*args.i_s_range, args.levels), _levels(*args.i_d_range, args.levels),
                          I_s_fixed=args.fixed[0], I_d_fixed=args.fixed[1], n_per_level=args.cells_per_level,
                          duration=args.duration, warmup=0.2, target=args.target, seed=args.seed, progress=True,
                          background=not args.no_background, offset_spread=args.offset_spread)


def _write_table(out, stem: str, header, rows) -> None:
    atomic_write_text(out / f"{stem}.md", markdown_table(header, rows))
    atomic_write_text(out / f"{stem}.csv", csv_table(header, rows))


def _sweep_tables(out, sw) -> None:
    _write_table(out, "somatic_sweep", ["I_s (pA)", "E (Hz)", "E sem", "P", "P sem"],
                 [[float(a), float(b), float(c), float(d), float(e)]
                  for a, b, c, d, e in zip(sw.I_s, sw.E_s, sw.E_s_sem, sw.P_s, sw.P_s_sem)])
    _write_table(out, "dendritic_sweep", ["I_d (pA)", "E (Hz)", "E sem", "P", "P sem"],
                 [[float(a), float(b), float(c), float(d), float(e)]
                  for a, b, c, d, e in zip(sw.I_d, sw.E_d, sw.E_d_sem, sw.P_d, sw.P_d_sem)])


def run_transfer(args) -> int:
    """``--what transfer``: measure both sweeps, fit E(I_s) and P(I_d), write sweeps, fit, figure and tables.

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
        If a current range has HI <= LO, ``--levels`` is 1 or 2, ``--cells-per-level < 2``,
        ``--duration <= 0``, ``--layer-context`` or ``--interneuron-gain`` without ``--in-circuit``, either not
        finite (the gain not positive), or as
        :func:`neurons.transfer.measure_sweeps` / :func:`~neurons.transfer.fit_transfer`.
    """
    from neurons.transfer import fit_transfer, plot_transfer, save_sweeps
    from neurons.transfer_fit import CIRCUIT_FIT_PATH, DEFAULT_FIT_PATH, QUIET_FIT_PATH

    out = args.out
    sw = _sweeps(args)
    command = (f"PYTHONHASHSEED=0 mburst simulate neuron --what transfer --target {args.target} "
               f"--cells-per-level {args.cells_per_level} --duration {args.duration:g} --levels {args.levels} "
               f"--i-s-range {args.i_s_range[0]:g} {args.i_s_range[1]:g} "
               f"--i-d-range {args.i_d_range[0]:g} {args.i_d_range[1]:g} "
               f"--fixed {args.fixed[0]:g} {args.fixed[1]:g} --seed {args.seed}"
               + (" --no-background" if args.no_background else "") + (" --in-circuit" if args.in_circuit else "")
               + (f" --offset-spread {args.offset_spread:g}" if args.offset_spread else "")
               + (f" --layer-context {args.layer_context:g}" if args.layer_context is not None else "")
               + (f" --interneuron-gain {args.interneuron_gain:g}" if args.interneuron_gain != 1.0 else ""))
    default_path = (CIRCUIT_FIT_PATH if args.in_circuit else QUIET_FIT_PATH if args.no_background
                    else DEFAULT_FIT_PATH)
    fit = fit_transfer(sw, command=command)
    save_sweeps(sw, out / "sweeps.npz")
    fit.save(out / "transfer_fit.json")
    plot_transfer(sw, fit, out / "transfer.png")
    _sweep_tables(out, sw)
    params = {k: v for k, v in fit.to_dict().items() if k != "meta"}
    res = fit.meta["residual"]
    _write_table(out, "fit_parameters", ["parameter", "value"], [[k, v] for k, v in params.items()]
                 + [["E residual RMS / range", res["event_rate"]["rms_rel"]],
                    ["P residual RMS / range", res["burst_prob"]["rms_rel"]]]
                 + ([["layer mean event rate (Hz)", sw.layer_mean_hz]] if args.in_circuit else []))
    if args.write_default_fit:
        fit.save(default_path)
    print(f"event rate fit: E(I_s) = {fit.r0:.3g} + {fit.k:.4g}*{fit.s:.4g}*softplus((I_s - {fit.I0:.4g})/{fit.s:.4g}) Hz"
          f"  (RMS residual {100 * res['event_rate']['rms_rel']:.2f}% of range)")
    print(f"burst prob fit: P(I_d) = {fit.p_lo:.3g} + ({fit.p_hi:.3g} - {fit.p_lo:.3g})*sigmoid((I_d - {fit.I_half:.4g})/{fit.width:.4g})"
          f"  (RMS residual {100 * res['burst_prob']['rms_rel']:.2f}% of range)")
    if args.in_circuit:
        print(f"layer mean event rate (the interneurons' operating point): {sw.layer_mean_hz:.2f} Hz")
    print(f"wrote {out}/transfer.png, transfer_fit.json, sweeps.npz"
          + (f" and {default_path}" if args.write_default_fit else ""))
    return 0


def run_multiplexing(args) -> int:
    """``--what multiplexing``: sweep sensitivities and the time-varying demo (Naud & Sprekeler 2018).

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
        On invalid sweep options (as :func:`run_transfer`), ``--demo-cells < 10`` or
        ``--demo-duration <= 0``.
    """
    from neurons.common import atomic_savez
    from neurons.multiplexing import multiplexing_demo, plot_multiplexing
    from neurons.transfer import plot_transfer, save_sweeps, sensitivities

    out = args.out
    sw = _sweeps(args)
    sens = sensitivities(sw)
    save_sweeps(sw, out / "sweeps.npz")
    plot_transfer(sw, None, out / "multiplexing_sweeps.png")
    _sweep_tables(out, sw)
    _write_table(out, "sensitivities", ["measure", "somatic sweep", "dendritic sweep"],
                 [["span of E (share of its range)", sens["span_E_soma"], sens["span_E_dend"]],
                  ["span of P (share of its range)", sens["span_P_soma"], sens["span_P_dend"]],
                  ["abs(ln fold change) of E", sens["fold_E_soma"], sens["fold_E_dend"]],
                  ["abs(ln fold change) of P", sens["fold_P_soma"], sens["fold_P_dend"]]])
    if args.demo_cells < 10 or args.demo_duration <= 0:
        raise MburstError("--demo-cells must be >= 10 and --demo-duration positive")
    with phase(f"multiplexing demo: Brian2 build + run ({args.target})"):
        demo = multiplexing_demo(n=args.demo_cells, duration=args.demo_duration, target=args.target, seed=args.seed)
    plot_multiplexing(demo, out / "multiplexing_demo.png")
    atomic_savez(out / "multiplexing_demo.npz", t=demo.t, I_s=demo.I_s, I_d=demo.I_d, E=demo.E, B=demo.B, P=demo.P)
    atomic_write_json(out / "multiplexing.json", {"sensitivities": sens, "demo_correlations": demo.corr})
    print("sensitivities:", ", ".join(f"{k}={v:.3f}" for k, v in sens.items()))
    print("demo correlations:", ", ".join(f"{k}={v:.3f}" for k, v in demo.corr.items()))
    print(f"wrote {out}/multiplexing_sweeps.png, multiplexing_demo.png, sensitivities.md")
    return 0


def run_stp(args) -> int:
    """``--what stp``: Brian2 STD/STF efficacies at 5, 20, 50 Hz against the closed form (Tsodyks & Markram 1997).

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
        If the Brian2 target is unavailable (see :func:`neurons.stp.simulate_efficacies`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurons.common import atomic_savefig, atomic_savez
    from neurons.params import STD, STF
    from neurons.stp import paired_pulse_ratio, simulate_efficacies, tm_efficacies

    out = args.out
    rates, n_spikes = (5, 20, 50), 10
    target = "numpy" if args.target == "auto" else args.target
    arrays, rows = {}, []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    for ax, stp in zip(axes, (STD, STF)):
        with phase(f"STP {stp.name}: Brian2 build + run ({target}; a first cython "
                   "build compiles for minutes, later ones reuse the cache)"):
            sim = simulate_efficacies(stp, rates, n_spikes, target=target)
        for k, rate in enumerate(rates):
            times, eff = sim[rate]
            ref = tm_efficacies(stp, 1.0 / rate, n_spikes)
            err = float(np.max(np.abs(eff - ref) / ref))
            arrays[f"{stp.name}_{rate}Hz_sim"] = eff
            arrays[f"{stp.name}_{rate}Hz_closed_form"] = ref
            rows.append([stp.name, rate, float(eff[0]), float(eff[1]), paired_pulse_ratio(eff), float(eff[-1]), err])
            ax.plot(np.arange(1, n_spikes + 1), eff, "o", color=f"C{k}", label=f"{rate} Hz (Brian2)")
            ax.plot(np.arange(1, n_spikes + 1), ref, "-", color=f"C{k}", lw=1)
        ax.set_title(f"{stp.name}: tau_D={stp.tau_D}, tau_F={stp.tau_F}, U={stp.U}, f={stp.f}", fontsize=8)
        ax.set_xlabel("spike number")
        ax.set_ylabel("efficacy u x")
        ax.legend(fontsize=7)
    fig.suptitle("Tsodyks-Markram efficacies: simulation (dots) vs closed-form recursion (lines)", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, out / "stp.png")
    plt.close(fig)
    atomic_savez(out / "stp.npz", **arrays)
    _write_table(out, "stp", ["type", "rate (Hz)", "eff 1", "eff 2", "PPR", f"eff {n_spikes}", "max rel. error"], rows)
    for row in rows:
        print(f"{row[0]} {row[1]:>2} Hz: PPR {row[4]:.3f}, max relative error vs closed form {row[6]:.2e}")
    print(f"wrote {out}/stp.png, stp.npz, stp.md")
    return 0


def main(args) -> int:
    """Run the experiment chosen by ``args.what`` ('transfer', 'multiplexing' or 'stp').

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
        As :func:`run_transfer`, :func:`run_multiplexing` or :func:`run_stp`.
    """
    return {"transfer": run_transfer, "multiplexing": run_multiplexing, "stp": run_stp}[args.what](args)
