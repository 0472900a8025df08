"""Enhance a noisy utterance with a trained model: noisy audio + lip video -> clean wav.

The audio is read from --audio (a 16 kHz mono wav; other rates or several
channels are refused unless --resample / --downmix is given, because the model
was trained on 16 kHz mono features) or, when --audio is absent, from the
video's own audio track (decoded, averaged to mono and resampled to 16 kHz
with a polyphase filter). The lips are tracked in --video (Viola-Jones + tracker,
92 x 50 crops) on the audio's clock: each 40 ms audio frame gets the video frame
on display at its centre, by presentation timestamp, so any constant or variable
frame rate of at least 15 fps works; the video must cover the audio (a final
partial hop reuses the last lip frame). A GRID corpus video (its alignment file
beside it) carries the clean speech: without --audio that clean track is what gets
enhanced, and a one-line note says so. Any length works: audio, video and the
output wav are streamed, so memory does not grow with the recording's length
(two passes over the video: face tracking, then crops).

The mask (soft: the sigmoid output; binary: >= 0.5) is applied to bins 1..500
of the noisy STFT; DC and the bins above 6.4 kHz are attenuated (--floor, default
0) or passed through (--upper-bins pass); the result is inverted by overlap-add
and written as a 16-bit wav. --stream runs the causal frame-by-frame enhancer
(one model call per 40 ms hop; same output) and reports its latency and per-frame
compute time. The real-time factor printed is processing time / audio duration.
"""
from __future__ import annotations

import time
from pathlib import Path

NAME = "enhance"
HELP = "enhance noisy speech with a trained model and the speaker's lips (writes a wav)"
RUN_DIR = False  # --out is the output wav, not a run folder


def add_arguments(parser) -> None:
    from experiments.data.video import MIN_FPS
    from experiments.speech.resynthesis import MASK_KINDS, UPPER_POLICIES

    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt written by `mburst train`/`reproduce`")
    parser.add_argument("--video", type=Path, required=True,
                        help=f"video of the speaker's face (any container FFmpeg reads, >= {MIN_FPS:g} fps constant or "
                             "variable, with timestamps), e.g. a GRID .mpg")
    parser.add_argument("--audio", type=Path, default=None,
                        help="noisy 16 kHz mono wav starting with the video (default: the video's own audio track)")
    parser.add_argument("--out", type=Path, required=True, metavar="WAV", help="enhanced 16 kHz wav to write")
    parser.add_argument("--mask", choices=tuple(MASK_KINDS), default="soft",
                        help="; ".join(f"{k}: {v}" for k, v in MASK_KINDS.items()))
    parser.add_argument("--upper-bins", choices=tuple(UPPER_POLICIES), default="attenuate",
                        help="DC and the bins above the 500 modelled ones (> 6.4 kHz): "
                             + "; ".join(f"{k}: {v}" for k, v in UPPER_POLICIES.items()))
    parser.add_argument("--floor", default="0",
                        help="gain of the unmodelled bins with --upper-bins attenuate: a number in [0, 1], or 'mean' (the frame's mean mask)")
    parser.add_argument("--stream", action="store_true", help="causal frame-by-frame enhancement; reports latency and per-frame time")
    parser.add_argument("--resample", action="store_true", help="resample an --audio wav that is not at 16 kHz instead of refusing it")
    parser.add_argument("--downmix", action="store_true", help="average the channels of a multi-channel --audio wav instead of refusing it")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="frames per model call (offline mode): 16 keeps the peak memory of a full-size model under 600 MB "
                             "(measured 565-585 MB for 1 to 60 minutes, bench/enhance.py); "
                             "each frame more adds about 4 MB and saves a little time")


def main(args) -> int:
    """Run ``mburst enhance``: write the enhanced wav and print the real-time factor (and streaming latency).

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
        On a bad option, input file or checkpoint (one line, naming it).
    """
    import numpy as np

    from neurons.common import MburstError

    from experiments.data.features import N_BINS, SAMPLE_RATE
    from experiments.speech.masking import checkpoint_masker
    from experiments.speech.recording import enhance_recording, open_recording
    from experiments.speech.resynthesis import full_band_gain
    from experiments.speech.streaming import StreamingEnhancer

    t0 = time.perf_counter()
    if args.batch_size < 1:
        raise MburstError(f"--batch-size must be >= 1, got {args.batch_size}")
    floor = args.floor if args.floor == "mean" else _number(args.floor)
    full_band_gain(np.zeros((1, N_BINS)), args.upper_bins, floor)
    if args.out.suffix.lower() != ".wav":
        raise MburstError(f"--out {args.out}: the output must be a .wav file")
    if not args.checkpoint.is_file():
        raise MburstError(f"--checkpoint {args.checkpoint}: file not found")
    if args.audio is None and is_grid_utterance(args.video):
        print(f"note: {args.video} is a GRID corpus utterance, whose own audio track is the clean speech: it is what "
              "gets enhanced here; give a noisy recording of it with --audio NOISY.wav (16 kHz mono, starting with "
              "the video)", flush=True)
    rec = open_recording(args.video, args.audio, resample=args.resample, downmix=args.downmix)
    mask_fn, stats, state = checkpoint_masker(args.checkpoint)
    done = enhance_recording(rec, args.out, mask_fn, stats, block=1 if args.stream else args.batch_size,
                             mask=args.mask, upper=args.upper_bins, floor=floor)
    total, duration = time.perf_counter() - t0, rec.duration
    print(f"wrote {args.out}: {duration:.2f} s of 16 kHz audio, video {rec.lips.rate.describe()}, "
          f"model {state.get('model_name', '?')}, {args.mask} mask, upper bins {args.upper_bins}")
    print(f"enhancement {done.seconds:.3f} s -> real-time factor {done.seconds / duration:.3f} "
          f"(decoding, lip crops, model, resynthesis, writing); lip tracking {rec.seconds:.3f} s; "
          f"in all with model loading {total:.3f} s -> {total / duration:.3f}")
    if args.stream:
        print(f"streaming: algorithmic latency {1000 * StreamingEnhancer.LATENCY_SAMPLES / SAMPLE_RATE:.1f} ms "
              f"(window 77.75 ms + hop 40 ms bound: 117.75 ms); per-frame compute mean {1000 * done.times.mean:.2f} ms, "
              f"max {1000 * done.times.worst:.2f} ms for a 40 ms hop")
    if done.clipped:
        print(f"note: {done.clipped} samples above full scale were clipped in {args.out}")
    return 0


def is_grid_utterance(video: Path) -> bool:
    """Whether ``video`` is a GRID corpus utterance: ``<root>/sN/<id>.mpg`` with ``<root>/alignments/sN/<id>.align``.

    Parameters
    ----------
    video : Path

    Returns
    -------
    bool
    """
    video = Path(video)
    return (video.parent.parent / "alignments" / video.parent.name / f"{video.stem}.align").is_file()


def _number(text: str) -> float:
    from neurons.common import MburstError

    try:
        return float(text)
    except ValueError:
        raise MburstError(f"--floor {text!r}: expected a number in [0, 1] or 'mean'") from None
