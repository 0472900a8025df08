"""Score any enhancer's output against the clean speech: STOI, ESTOI, wideband PESQ and SI-SDR.

--clean and --estimate (and --noisy, the enhancer's input, for the improvements) are wav files of the
same length and sample rate, mono (several channels are refused unless --downmix averages them).
STOI, ESTOI and SI-SDR are computed at the files' rate; PESQ-WB (ITU-T P.862.2) needs 16 kHz, so files
above 16 kHz are resampled to it (polyphase) and below it PESQ-WB is left out. What every metric gives
on degenerate input (a muted or constant estimate, a silent reference, too little speech, integer
scaling) is listed in experiments/speech/metrics.py: a failed estimate scores the metric's worst value,
and a metric undefined on these files is reported as left out, with the reason, instead of a number.
--json prints one JSON object: stoi, estoi, pesq_wb, si_sdr (null where left out or infinite), with
--noisy also <metric>_improvement (estimate minus noisy), and excluded ({key: reason}).
"""
from __future__ import annotations

from pathlib import Path

NAME = "score"
HELP = "score an enhanced wav against the clean one (STOI, ESTOI, PESQ-WB, SI-SDR; --json)"
RUN_DIR = False  # prints; writes nothing


def add_arguments(parser) -> None:
    parser.add_argument("--clean", type=Path, required=True, metavar="WAV", help="the clean reference speech")
    parser.add_argument("--estimate", type=Path, required=True, metavar="WAV", help="the enhanced speech to score")
    parser.add_argument("--noisy", type=Path, default=None, metavar="WAV",
                        help="the noisy input of the enhancer: also score it and print the improvements")
    parser.add_argument("--downmix", action="store_true", help="average the channels of multi-channel files instead of refusing them")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _read(option: str, path: Path, downmix: bool):
    from neurons.common import MburstError

    from experiments.data.audio import load_wav

    data, rate = load_wav(path, source=f"{option} {path}")
    if data.shape[1] > 1 and not downmix:
        raise MburstError(f"{option} {path}: {data.shape[1]} channels, but scoring needs mono (pass --downmix to average them)")
    return data.mean(axis=1), rate


def score_files(clean: Path, estimate: Path, noisy: Path | None = None, downmix: bool = False) -> dict:
    """The metrics of an estimate (and of the noisy input) against the clean speech.

    Parameters
    ----------
    clean, estimate : Path
        Wav files.
    noisy : Path, optional
        The enhancer's input.
    downmix : bool
        Average several channels instead of refusing them.

    Returns
    -------
    dict
        ``rate`` (Hz), ``seconds``, ``estimate`` and ``noisy`` ({metric: value}, NaN where left out;
        ``noisy`` None without --noisy) and ``excluded`` ({"<metric>" or "noisy <metric>": reason}).

    Raises
    ------
    MburstError
        One line naming the option: a missing or unreadable file, several channels without
        ``downmix``, different sample rates or lengths.
    """
    from neurons.common import MburstError

    from experiments.data.resample import resample_to
    from experiments.speech.metrics import PESQ_RATE, pesq_wb, score_all

    files = {"--clean": clean, "--estimate": estimate, **({"--noisy": noisy} if noisy is not None else {})}
    signals = {opt: _read(opt, path, downmix) for opt, path in files.items()}
    (x, rate), n = signals["--clean"], signals["--clean"][0].size
    for opt, (sig, r) in signals.items():
        if r != rate:
            raise MburstError(f"{opt} {files[opt]}: sample rate {r} Hz, but --clean is at {rate} Hz (resample it first)")
        if sig.size != n:
            raise MburstError(f"{opt} {files[opt]}: {sig.size} samples, but --clean has {n} (trim or align them first)")
    out = {"rate": rate, "seconds": n / rate, "noisy": None, "excluded": {}}
    for key, opt in (("estimate", "--estimate"), ("noisy", "--noisy")):
        if opt not in signals:
            continue
        y = signals[opt][0]
        scores, excluded = score_all(x, y, rate)
        if rate > PESQ_RATE:  # PESQ-WB on both resampled to 16 kHz
            try:
                scores["pesq_wb"] = pesq_wb(resample_to(x, rate, PESQ_RATE), resample_to(y, rate, PESQ_RATE))
                excluded.pop("pesq_wb", None)
            except MburstError as err:
                scores["pesq_wb"], excluded["pesq_wb"] = float("nan"), str(err)
        elif rate < PESQ_RATE:
            excluded["pesq_wb"] = f"PESQ-WB needs wideband audio at {PESQ_RATE} Hz; the files are at {rate} Hz"
        out[key] = scores
        prefix = "" if key == "estimate" else "noisy "
        out["excluded"].update({prefix + m: why for m, why in excluded.items()})
    return out


def _json_number(value):
    import math

    return value if isinstance(value, float) and math.isfinite(value) else None


def main(args) -> int:
    """Run ``mburst score``: print the scores (a table, or one JSON object with --json).

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`add_arguments`.

    Returns
    -------
    int
        Exit status 0.

    Raises
    ------
    MburstError
        As :func:`score_files`.
    """
    import json
    import math

    from experiments.speech.metrics import LABELS, METRIC_NAMES

    res = score_files(args.clean, args.estimate, args.noisy, args.downmix)
    est, noisy, excluded = res["estimate"], res["noisy"], dict(res["excluded"])
    gains = {}
    if noisy is not None:
        for m in METRIC_NAMES:
            gain = est[m] - noisy[m]
            gains[m] = gain
            if not math.isfinite(gain) and m not in excluded and f"noisy {m}" not in excluded:
                excluded[f"{m}_improvement"] = f"estimate {est[m]} and noisy {noisy[m]}: no finite difference"
    for m in METRIC_NAMES:
        if math.isinf(est[m]):
            excluded.setdefault(m, f"{est[m]:+}: " + ("exact copy of the reference" if est[m] > 0 else "estimate without signal"))
    if args.json:
        obj = {m: _json_number(est[m]) for m in METRIC_NAMES}
        obj.update({f"{m}_improvement": _json_number(g) for m, g in gains.items()})
        obj["excluded"] = excluded
        print(json.dumps(obj))
        return 0
    unit = {"si_sdr": " dB"}
    print(f"{args.estimate} against {args.clean}: {res['seconds']:.2f} s at {res['rate']} Hz")
    header = f"{'metric':<8} {'estimate':>12}" + (f" {'noisy':>12} {'improvement':>12}" if noisy is not None else "")
    print(header)
    for m in METRIC_NAMES:
        row = f"{LABELS[m]:<8} {_fmt(est[m], unit.get(m, '')):>12}"
        if noisy is not None:
            row += f" {_fmt(noisy[m], unit.get(m, '')):>12} {_fmt(gains[m], unit.get(m, ''), sign=True):>12}"
        print(row)
    for key, why in excluded.items():
        print(f"  {key}: {why}")
    return 0


def _fmt(value: float, unit: str, sign: bool = False) -> str:
    import math

    if math.isnan(value):
        return "n/a"
    value = round(value, 3) + 0.0  # no "-0.000"
    return f"{value:+.3f}{unit}" if sign else f"{value:.3f}{unit}"
