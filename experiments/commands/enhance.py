"""Enhance a noisy utterance with a trained model: noisy audio + lip video -> clean wav.

The audio is read from --audio (a 16 kHz mono wav; other rates or several
channels are refused unless --resample / --downmix is given, because the model
was trained on 16 kHz mono features) or, when --audio is absent, from the
video's own audio track (decoded, averaged to mono and resampled to 16 kHz
with a polyphase filter). The lips are tracked in --video (Viola-Jones + tracker,
92 x 50 crops), one frame per 40 ms hop; the video must cover the audio (one
frame short is accepted for a final partial hop). Any length works.

The mask (soft: the sigmoid output; binary: >= 0.5) is applied to bins 1..500
of the noisy STFT; DC and the bins above 6.4 kHz are attenuated (--floor, default
0) or passed through (--upper-bins pass); the result is inverted by overlap-add
and written as a 16-bit wav. --stream runs the causal frame-by-frame enhancer
(same output) and reports its latency and per-frame compute time. The real-time
factor printed is processing time / audio duration.
"""
from __future__ import annotations

import time
from pathlib import Path

NAME = "enhance"
HELP = "enhance noisy speech with a trained model and the speaker's lips (writes a wav)"
RUN_DIR = False  # --out is the output wav, not a run folder


def add_arguments(parser) -> None:
    from experiments.data.features import VIDEO_FPS
    from experiments.speech.resynthesis import MASK_KINDS, UPPER_POLICIES

    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt written by `mburst train`/`reproduce`")
    parser.add_argument("--video", type=Path, required=True, help=f"video of the speaker's face ({VIDEO_FPS} fps), e.g. a GRID .mpg")
    parser.add_argument("--audio", type=Path, default=None,
                        help="noisy 16 kHz mono wav (default: the video's own audio track)")
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
    parser.add_argument("--batch-size", type=int, default=64, help="frames per model call (offline mode)")


def read_noisy_wav(path: Path, resample: bool = False, downmix: bool = False):
    """A noisy wav for enhancement.

    Parameters
    ----------
    path : Path
    resample : bool
        Resample another rate to 16 kHz instead of refusing it.
    downmix : bool
        Average several channels instead of refusing them.

    Returns
    -------
    ndarray of float64, shape (n,)
        Mono samples at 16 kHz.

    Raises
    ------
    MburstError
        One line naming --audio: empty or unreadable file, other rate or several channels (without the
        option that accepts them), NaN or inf samples.
    """
    import numpy as np

    from neurons.common import MburstError

    from experiments.data.features import SAMPLE_RATE
    from experiments.data.grid import load_wav, resample_to

    if path.is_file() and path.stat().st_size == 0:
        raise MburstError(f"--audio {path}: empty file")
    data, rate = load_wav(path, source=f"--audio {path}")
    if data.shape[1] > 1:
        if not downmix:
            raise MburstError(f"--audio {path}: {data.shape[1]} channels, but enhancement needs mono (pass --downmix to average them)")
        data = data.mean(axis=1, keepdims=True)
    audio = data[:, 0]
    if rate != SAMPLE_RATE:
        if not resample:
            raise MburstError(f"--audio {path}: sample rate {rate} Hz, but the model needs {SAMPLE_RATE} Hz (pass --resample to convert)")
        audio = resample_to(audio, rate, SAMPLE_RATE, source=f"--audio {path}")
    if not np.all(np.isfinite(audio)):
        raise MburstError(f"--audio {path}: contains NaN or inf samples")
    return audio


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

    from experiments.data.features import HOP, N_BINS, SAMPLE_RATE, VIDEO_FPS
    from experiments.data.grid import read_video, read_video_audio
    from experiments.data.lips import track_lips
    from experiments.speech.enhance import enhance
    from experiments.speech.evaluation import write_wav
    from experiments.speech.masking import checkpoint_masker
    from experiments.speech.resynthesis import frames_for, full_band_gain
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
    if not args.video.is_file():
        raise MburstError(f"--video {args.video}: file not found")
    if args.video.stat().st_size == 0:
        raise MburstError(f"--video {args.video}: empty file")

    if args.audio is not None:
        noisy = read_noisy_wav(args.audio, args.resample, args.downmix)
    else:
        noisy = read_video_audio(args.video)
    duration = len(noisy) / SAMPLE_RATE
    frames = read_video(args.video)
    needed = frames_for(len(noisy))
    if len(frames) < len(noisy) // HOP:  # one lip frame per whole 40 ms hop; a final partial hop reuses the last
        raise MburstError(f"--video {args.video}: {len(frames)} frames ({len(frames) / VIDEO_FPS:.2f} s) but the audio lasts "
                          f"{duration:.2f} s and needs {len(noisy) // HOP} (one per 40 ms): the video is shorter than the audio")
    frames = frames[:needed]
    mask_fn, stats, state = checkpoint_masker(args.checkpoint)
    track = track_lips(frames, source=str(args.video))
    t_ready = time.perf_counter()

    if args.stream:
        streamer = StreamingEnhancer(mask_fn, stats, mask=args.mask, upper=args.upper_bins, floor=floor)
        audio = streamer.run(noisy, track.crops)
        per_frame = np.asarray(streamer.frame_seconds) * 1000
    else:
        audio = enhance(noisy, track.crops, mask_fn, stats, mask=args.mask, upper=args.upper_bins,
                          floor=floor, batch_size=args.batch_size).audio
    t_done = time.perf_counter()
    clipped = int(np.sum(np.abs(audio) > 1.0))
    write_wav(args.out, audio)
    total = time.perf_counter() - t0
    enh = t_done - t_ready
    print(f"wrote {args.out}: {duration:.2f} s of 16 kHz audio, model {state.get('model_name', '?')}, "
          f"{args.mask} mask, upper bins {args.upper_bins}")
    print(f"enhancement {enh:.3f} s -> real-time factor {enh / duration:.3f}; "
          f"with decoding, lip tracking and model loading {total:.3f} s -> {total / duration:.3f}")
    if args.stream:
        print(f"streaming: algorithmic latency {streamer.latency_ms:.1f} ms (window 77.75 ms + hop 40 ms bound: 117.75 ms); "
              f"per-frame compute mean {per_frame.mean():.2f} ms, max {per_frame.max():.2f} ms for a 40 ms hop")
    if clipped:
        print(f"note: {clipped} samples above full scale were clipped in {args.out}")
    return 0


def _number(text: str) -> float:
    from neurons.common import MburstError

    try:
        return float(text)
    except ValueError:
        raise MburstError(f"--floor {text!r}: expected a number in [0, 1] or 'mean'") from None
