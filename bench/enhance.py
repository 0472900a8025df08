"""Benchmark: real-time factor of `mburst enhance` for the rate models vs STFT + ISTFT alone.

For each model (randomly initialised, full size: ``rate_bridge.burstprop.models.build_model(name,
ModelConfig())``) it times, on one utterance (a GRID s1 video's audio track and lip
crops when the shared data is present, else noise and random lips of the same length):

* baseline: STFT + all-ones mask + ISTFT (the signal path without a model), measured in
  the same run;
* offline enhancement (features, batched model, resynthesis) -> RTF = time / duration;
* streaming enhancement (one model call per 40 ms hop) -> RTF and per-frame ms.

RTF = processing time / audio duration (median of ``--repeats``). Target (issue 7):
RTF < 0.2 on 2 cores for the rate models. Lip tracking and decoding, done once per
file by the command, are timed separately.

Memory against length (issue 19): ``mburst enhance`` (offline, the full-size mburst model) on recordings of
``--minutes`` (default 1, 10, 60), each a GRID s1 video with its own MP2 audio looped to that length
(:func:`looped_recording`: its packets copied with shifted timestamps, no re-encoding), run as a child
process; its peak resident memory (``VmHWM`` of its own address space, :func:`peak_memory`) against length, as a
ratio to the shortest, and its whole-command RTF (wall and CPU). Target: below 600 MB at 60 minutes, RTF < 0.2 on 2 cores. Needs the GRID data.

Frame rates (issue 19, ``--rates N``): N GRID s1 videos re-timed by FFmpeg's fps filter to 25, 29.97, 30, 50 and
60 fps and to a variable rate (lossless FFV1 .mkv; the helpers of tests/test_inputs_video.py, so pytest must be
installed), each enhanced (full-size random mburst, noisy audio at 0 dB white noise) against its 25 fps original:
the share of audio frames whose lip frame shows the original's source frame, the largest offset, the mean crop
difference, the output's SNR against the 25 fps output, and how far behind the former rule (video frame t for
audio frame t) left the lips at the last audio frame.

    python bench/enhance.py [--repeats 3] [--models mburst multimodal unimodal] [--threads 2] [--minutes 1 10 60]
    python bench/enhance.py --models --minutes --rates 3         # the frame-rate table only
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds of ``fn()`` (CPU time, summed over threads,
    is far less disturbed than wall time when other jobs share the cores)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def inputs(seed: int = 0):
    """(noisy 16 kHz audio, lip crops, source, decode+track seconds)."""
    from experiments.data.paths import data_root
    from experiments.speech.resynthesis import frames_for

    root = data_root()
    mpgs = sorted((root / "grid" / "s1").glob("*.mpg")) if root is not None else []
    if mpgs:
        from experiments.data.audio import read_video_audio
        from experiments.data.video import read_video
        from experiments.data.lips import track_lips

        t0 = time.perf_counter()
        audio = read_video_audio(mpgs[0])
        frames = read_video(mpgs[0])
        lips = track_lips(frames[:frames_for(len(audio))], source=str(mpgs[0])).crops
        prep = time.perf_counter() - t0
        rng = np.random.default_rng(seed)
        noisy = audio + 0.5 * audio.std() * rng.standard_normal(len(audio))
        return noisy, lips, str(mpgs[0]), prep
    rng = np.random.default_rng(seed)
    noisy = 0.1 * rng.standard_normal(48_000)
    return noisy, rng.integers(0, 256, (75, 50, 92), dtype=np.uint8), "synthetic noise + random lips", float("nan")


def looped_recording(source, minutes: float, out) -> None:
    """``source`` (a video with audio, e.g. a GRID mpg) looped to ``minutes`` minutes into ``out`` (same container).

    Its packets are copied (no re-encoding) with timestamps shifted by one source length per loop: the
    video by its frames' duration, the audio by its samples' (so the audio, a little shorter per loop in
    GRID, ends before the video and the lips cover it). Decoding timestamps are kept increasing (GRID's
    first two video packets share dts 0).

    Parameters
    ----------
    source, out : Path
    minutes : float
    """
    import av

    with av.open(str(source)) as inp:
        streams = [inp.streams.video[0], inp.streams.audio[0]]
        packets = [(p.stream.index, p.pts, p.dts, p.duration, bytes(p), p.is_keyframe) for p in inp.demux(streams) if p.size]
        bases = {s.index: s.time_base for s in streams}
        with av.open(str(out), "w", format=inp.format.name) as dst:
            outs = {s.index: dst.add_stream_from_template(s) for s in streams}
            span = {i: sum(p[3] for p in packets if p[0] == i) for i in outs}  # ticks per loop, per stream
            loops = int(np.ceil(minutes * 60 / float(span[streams[0].index] * bases[streams[0].index])))
            last = {i: None for i in outs}
            for k in range(loops):
                for index, pts, dts, duration, data, key in packets:
                    packet = av.Packet(data)
                    packet.stream, packet.time_base, packet.duration = outs[index], bases[index], duration
                    packet.pts = None if pts is None else pts + k * span[index]
                    if dts is not None:
                        dts += k * span[index]
                        packet.dts = last[index] = dts if last[index] is None else max(dts, last[index] + 1)
                    packet.is_keyframe = key
                    dst.mux(packet)


def full_checkpoint(path) -> None:
    """A randomly initialised full-size mburst model saved as `mburst train` saves it."""
    import torch

    from experiments.data.features import HOP, N_BINS, SAMPLE_RATE, WIN
    from experiments.data.frames import Stats
    from experiments.training.checkpoints import config_dict, save_checkpoint
    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig()
    stats = Stats(np.full(N_BINS, -8.0, np.float32), np.full(N_BINS, 2.0, np.float32), 100.0, 50.0)
    save_checkpoint(path, {"model_name": "mburst", "model_config": config_dict(cfg),
                           "model_state": build_model("mburst", cfg).state_dict(), "feature_stats": stats,
                           "features": {"sample_rate": SAMPLE_RATE, "win": WIN, "hop": HOP, "n_bins": N_BINS}})


#: Run in the child before the measured program: at exit it prints the peak resident memory of the program's own
#: address space (``VmHWM``). ``wait4``'s ``ru_maxrss`` would not do: Linux carries the parent's peak over into a
#: child that is forked and exec'd, so a large parent (this bench after its RTF table, or pytest) hides the child's.
_PEAK_PROBE = """
import atexit, runpy, sys
def _peak():
    with open('/proc/self/status') as f:
        kb = next(line.split()[1] for line in f if line.startswith('VmHWM:'))
    print('bench-peak-kB', kb, file=sys.stderr, flush=True)
atexit.register(_peak)
sys.argv = sys.argv[1:]
if sys.argv[0] == '-m':
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
else:
    runpy.run_path(sys.argv[0], run_name='__main__')
"""


def peak_memory(argv: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """Run ``python *argv`` as a child process: its peak resident memory, wall time and CPU time.

    Parameters
    ----------
    argv : list of str
        Python's arguments: ``["-m", module, ...]`` or ``[script, ...]``.
    env : dict, optional
        The child's environment (default: this one's).

    Returns
    -------
    peak : float
        Peak resident memory of the child's own address space (``VmHWM`` at its exit) in MB (2^20 bytes).
    wall : float
        Wall time in s.
    cpu : float
        User + system CPU time of the child in s.

    Raises
    ------
    RuntimeError
        When the child fails (its last line of standard error) or reports no peak (needs Linux's /proc).
    """
    import subprocess
    import sys
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:  # not a pipe: a child writing more than its buffer would block
        child = subprocess.Popen([sys.executable, "-c", _PEAK_PROBE, *argv], stdout=subprocess.DEVNULL, stderr=log,
                                 env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        log.seek(0)
        lines = log.read().decode(errors="replace").strip().splitlines()
    peaks = [float(line.split()[1]) for line in lines if line.startswith("bench-peak-kB ")]
    if os.waitstatus_to_exitcode(status) or not peaks:
        raise RuntimeError(f"{' '.join(argv)} failed: {[x for x in lines if not x.startswith('bench-peak-kB')][-1:]}")
    return peaks[-1] / 1024.0, wall, usage.ru_utime + usage.ru_stime


def memory_profile(minutes: list[float]) -> None:
    """Print peak memory and RTF of `mburst enhance` against recording length (module doc)."""
    import tempfile
    from pathlib import Path

    from experiments.data.paths import data_root

    root = data_root()
    mpgs = sorted((root / "grid" / "s1").glob("*.mpg")) if root is not None else []
    if not mpgs:
        print("memory against length: skipped (no GRID data under MBURST_DATA)")
        return
    with tempfile.TemporaryDirectory(prefix="mburst-bench-") as tmp:
        tmp = Path(tmp)
        full_checkpoint(tmp / "model.pt")
        print(f"\nmemory against length: `mburst enhance` (offline, full-size mburst) on {mpgs[0].name} looped, "
              "one child process each")
        print("| minutes | peak memory MB | x shortest | wall s | RTF | CPU RTF (2 cores = 2x) |")
        print("|---|---|---|---|---|---|")
        first = None
        for m in minutes:
            video = tmp / f"loop{m:g}.mpg"
            looped_recording(mpgs[0], m, video)
            peak, wall, cpu = peak_memory(["-m", "experiments.cli", "enhance", "--checkpoint", str(tmp / "model.pt"),
                                           "--video", str(video), "--out", str(tmp / "out.wav")])
            first = first or peak
            seconds = _duration(tmp / "out.wav")
            print(f"| {m:g} | {peak:.0f} | {peak / first:.2f} | {wall:.1f} | {wall / seconds:.3f} | {cpu / seconds:.3f} |",
                  flush=True)
            video.unlink()


def frame_rate_table(n_utterances: int) -> None:
    """Print the frame-rate table (module doc) for the first ``n_utterances`` GRID s1 videos, spread over the list."""
    import importlib.util
    import tempfile
    from pathlib import Path

    from experiments.data.audio import read_video_audio
    from experiments.data.lip_stream import plan_lips
    from experiments.data.paths import data_root
    from experiments.data.video import FRAME_S, read_timed
    from experiments.speech.enhance import enhance
    from experiments.speech.masking import checkpoint_masker

    root = data_root()
    mpgs = sorted((root / "grid" / "s1").glob("*.mpg")) if root is not None else []
    if not mpgs:
        print("frame rates: skipped (no GRID data under MBURST_DATA)")
        return
    spec = importlib.util.spec_from_file_location("test_inputs_video", Path(__file__).parents[1] / "tests" / "test_inputs_video.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="mburst-rates-") as tmp:
        tmp = Path(tmp)
        full_checkpoint(tmp / "model.pt")
        fn, stats, _ = checkpoint_masker(tmp / "model.pt")
        for k, mpg in enumerate(mpgs[::max(1, len(mpgs) // n_utterances)][:n_utterances]):
            video, audio = read_timed(mpg), read_video_audio(mpg)
            noisy = audio + audio.std() * np.random.default_rng(k).standard_normal(audio.size)
            original = np.stack(list(plan_lips(mpg, audio.size).crops()))
            reference = enhance(noisy, original, fn, stats).audio
            for rate in [*helpers.RATES, "vfr"]:
                shown, times = helpers.retime(len(video.frames), rate)
                path = tmp / f"{rate}.mkv"
                helpers.write_video(path, video.frames[shown], times)
                plan = plan_lips(path, audio.size)
                crops = np.stack(list(plan.crops()))
                offset = shown[read_timed(path).clock_index()][:len(crops)] - np.arange(len(crops))
                err = np.sum((enhance(noisy, crops, fn, stats).audio - reference) ** 2)
                rows.setdefault(rate, []).append(dict(
                    frames=len(times), rate=plan.rate.describe(), same=np.mean(offset == 0), offset=np.abs(offset).max(),
                    crop=np.abs(crops.astype(float) - original).mean(),
                    snr=np.inf if err == 0 else 10 * np.log10(np.sum(reference ** 2) / err),
                    former=(len(crops) - 0.5) * FRAME_S - times[min(len(crops), len(times)) - 1]))
    print(f"\nframe rates: {n_utterances} GRID s1 videos re-timed by FFmpeg's fps filter (lossless), against 25 fps")
    print("| rate | frames | reported | audio frames on the 25 fps frame | max offset (frames) | crop difference (grey levels) "
          "| output SNR vs 25 fps, dB (min) | former rule: lips behind at the end, s |")
    print("|---|---|---|---|---|---|---|---|")
    for rate, r in rows.items():
        get = lambda key: np.array([x[key] for x in r])  # noqa: E731
        print(f"| {rate} | {'/'.join(map(str, sorted(set(get('frames')))))} | {r[0]['rate']} | {100 * get('same').mean():.0f} % | "
              f"{get('offset').max()} | {get('crop').mean():.2f} | {get('snr').min():.1f} | {get('former').max():.2f} |")


def _duration(wav) -> float:
    import soundfile as sf

    return sf.info(str(wav)).duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=["mburst", "multimodal", "unimodal"])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--minutes", type=float, nargs="*", default=[1, 10, 60],
                        help="recording lengths of the memory profile (none: skip it)")
    parser.add_argument("--rates", type=int, default=0, metavar="N",
                        help="also the frame-rate table on N GRID videos (0: skip it)")
    args = parser.parse_args()

    import torch

    from experiments.data.features import N_BINS, SAMPLE_RATE
    from experiments.speech.enhance import enhance
    from experiments.speech.masking import torch_mask_fn
    from experiments.speech.resynthesis import frames_for, resynthesise
    from experiments.speech.streaming import StreamingEnhancer
    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    noisy, lips, source, prep = inputs()
    duration = len(noisy) / SAMPLE_RATE
    ones = np.ones((frames_for(len(noisy)), N_BINS))
    base, base_cpu = median_time(lambda: resynthesise(noisy, ones, "pass"), args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"input: {source}, {duration:.2f} s; torch threads {torch.get_num_threads()}; median of {args.repeats}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    if np.isfinite(prep):
        print(f"decode audio+video and track lips (once per file): {prep:.3f} s (RTF {prep / duration:.3f})")
    print(f"baseline STFT + ISTFT: {base * 1000:.1f} ms wall (RTF {base / duration:.4f}), {base_cpu * 1000:.1f} ms CPU")
    if args.models:
        print("RTF = wall time / duration; CPU RTF = CPU seconds (all threads) / duration")
        print("| model | offline s | offline RTF | offline CPU RTF | x baseline (wall) | stream RTF | stream CPU RTF | "
              "per-frame ms (mean / max) |")
        print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        fn = torch_mask_fn(build_model(name, ModelConfig()))
        enhance(noisy, lips, fn)  # warm-up (allocations, oneDNN kernels)
        off, off_cpu = median_time(lambda: enhance(noisy, lips, fn), args.repeats)
        streamer = None

        def stream():
            nonlocal streamer
            streamer = StreamingEnhancer(fn)
            streamer.run(noisy, lips)

        on, on_cpu = median_time(stream, args.repeats)
        per = 1000 * np.array([streamer.times.mean, streamer.times.worst])
        print(f"| {name} | {off:.3f} | {off / duration:.3f} | {off_cpu / duration:.3f} | {off / base:.1f} | "
              f"{on / duration:.3f} | {on_cpu / duration:.3f} | {per[0]:.2f} / {per[1]:.2f} |")
    if args.models:
        print(f"streaming algorithmic latency: {StreamingEnhancer.LATENCY_SAMPLES / SAMPLE_RATE * 1000:.1f} ms "
              "(bound window + hop = 117.75 ms); target: offline RTF < 0.2 on 2 cores")
    if args.minutes:
        memory_profile(args.minutes)
    if args.rates:
        frame_rate_table(args.rates)


if __name__ == "__main__":
    main()
