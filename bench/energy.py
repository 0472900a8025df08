"""Benchmark: the time the spike ledger's counting adds to a bridge-like Brian2 run, as a ratio (target <= 1.05).

A small two-layer network shaped like a bridge run: Poisson inputs (the input layer) -> a layer of
LIF cells -> a second layer, forward synapses registered with their targets (so the active/idle
split of every device step is computed, not assumed), run frame after frame with a counting
window in each frame. The baseline, measured in the same run, is the network's build + run time;
the counting is :meth:`rate_bridge.ledger.SpikeLedger.count` over all frames' windows at the
simulation step and at every registered device step (Loihi: 1 ms). Prints both times, the
synaptic events and neuron updates counted, and the ratio (run + count) / run.

    PYTHONHASHSEED=0 python bench/energy.py                     # numpy target, 10 frames of 120 ms
    PYTHONHASHSEED=0 python bench/energy.py --target cpp_standalone --frames 40
"""
from __future__ import annotations

import argparse
import time

import numpy as np

TARGET = 1.05  # (run + count) / run, issue 16


def build_and_run(target: str, frames: int, frame_ms: float, count_ms: float, n_in: int, n_hid: int, seed: int):
    """Build and run the network; returns (ledger, window starts, window stops, seconds)."""
    from brian2 import (Network, NeuronGroup, PoissonGroup, SpikeMonitor, Synapses, defaultclock, Hz, ms,
                        seed as b2seed, start_scope)

    from neurons.device import use_target
    from rate_bridge.ledger import SpikeLedger

    t0 = time.perf_counter()
    use_target(target, tag="bench_energy")
    start_scope()
    defaultclock.dt = 0.1 * ms
    b2seed(seed)
    rng = np.random.default_rng(seed)
    inp = PoissonGroup(n_in, rates=20 * Hz)
    eqs = "dv/dt = -v / (10*ms) : volt (unless refractory)"
    hid = NeuronGroup(n_hid, eqs, threshold="v > 10*mV", reset="v = 0*mV", refractory=2 * ms, method="exact")
    out = NeuronGroup(n_hid // 4, eqs, threshold="v > 10*mV", reset="v = 0*mV", refractory=2 * ms, method="exact")
    s1 = Synapses(inp, hid, on_pre="v_post += 1.5*mV")
    i1 = rng.integers(0, n_in, 20 * n_hid)
    j1 = np.repeat(np.arange(n_hid), 20)
    s1.connect(i=i1, j=j1)
    s2 = Synapses(hid, out, on_pre="v_post += 1.2*mV")
    i2 = rng.integers(0, n_hid, 40 * (n_hid // 4))
    j2 = np.repeat(np.arange(n_hid // 4), 40)
    s2.connect(i=i2, j=j2)
    mons = [SpikeMonitor(g) for g in (inp, hid, out)]
    net = Network(inp, hid, out, s1, s2, *mons)
    net.run(frames * frame_ms * ms)
    led = SpikeLedger(dt=0.1e-3)
    led.add_population("inp", "input", n_in, mons[0], updates=False)
    led.add_population("hid", "hidden", n_hid, mons[1])
    led.add_population("out", "output", n_hid // 4, mons[2])
    led.add_synapses("inp", i1, "forward", post="hid", post_index=j1)
    led.add_synapses("hid", i2, "forward", post="out", post_index=j2)
    starts = (np.arange(frames) * frame_ms + frame_ms - count_ms) * 1e-3
    return led, starts, starts + count_ms * 1e-3, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="numpy", choices=("numpy", "cython", "cpp_standalone"))
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--frame-ms", type=float, default=120.0, help="simulated time per frame (settle + count)")
    parser.add_argument("--count-ms", type=float, default=100.0, help="counting window at the end of each frame")
    parser.add_argument("--inputs", type=int, default=400)
    parser.add_argument("--cells", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3, help="counting repetitions (the median is used)")
    args = parser.parse_args()

    from rate_bridge.ledger import total_counts

    led, starts, stops, run_s = build_and_run(args.target, args.frames, args.frame_ms, args.count_ms, args.inputs,
                                              args.cells, args.seed)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        counts = led.count(starts, stops)
        times.append(time.perf_counter() - t0)
    count_s = float(np.median(times))
    tot = total_counts(counts)
    print(f"network: {args.inputs} Poisson inputs -> {args.cells} LIF -> {args.cells // 4} LIF, {args.frames} frames "
          f"of {args.frame_ms:g} ms ({args.count_ms:g} ms counted each), target {args.target}")
    print(f"counted: {tot.spikes} spikes, {tot.synops} synaptic events, {tot.neuron_updates} neuron updates at 0.1 ms; "
          + "; ".join(f"at the {s * 1e3:g} ms device step: {sc.active} active / {sc.idle} idle"
                      for s, sc in sorted(tot.device.items())))
    print(f"build + run {run_s:.2f} s; counting {count_s * 1e3:.1f} ms (median of {args.reps})")
    ratio = (run_s + count_s) / run_s
    print(f"ratio (run + count) / run = {ratio:.4f} (target <= {TARGET}): {'ok' if ratio <= TARGET else 'ABOVE TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
