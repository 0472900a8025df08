"""Benchmark: 4000 pyramidal + 1000 PV + 1000 SOM cells, Poisson background, STP synapses (p = 0.05), 1 s at 0.1 ms.

Prints neuron-steps/s and synaptic events/s for cython and cpp_standalone (1 and
2 OpenMP threads), build times (cold build and warm rebuild), peak memory, and
ratios against a baseline measured in the same run: the same network written
as a plain hand-written Brian2 script (no mburst code), cpp_standalone.

The two networks have the same cells, synapses and input statistics (mburst's spikes
are its own, as the background is drawn differently); they differ in how the work is
organised:

- Poisson background: the baseline uses Brian2's ``PoissonInput`` (one code object and
  one binomial draw per input, receptor and step), mburst its
  ``neurons.inputs.PoissonBackground`` (one code object per group, one uniform number per
  neuron and step, recycled into all of its Bernoulli inputs);
- STP: the baseline keeps (x, u) per synapse (two exponentials per synaptic event), mburst
  once per presynaptic cell and projection type (``neurons.synapses``: exact, two
  exponentials per presynaptic spike);
- online event/burst detection: no projection here uses the event or burst pathways, so
  the pyramidal cells are built without those custom events; one extra row times mburst
  with them (two more threshold tests per pyramidal cell and step).

Each configuration runs in a fresh Python subprocess (Brian2 device state and
peak memory are per process). Usage::

    PYTHONHASHSEED=0 python bench/neuron_sim.py                  # full size, all configurations
    python bench/neuron_sim.py --scale 0.1 --duration 0.2        # a quick smoke run
    PYTHONHASHSEED=0 python bench/neuron_sim.py --profile        # time per code object (Brian2 profiling)

Counting: a neuron-step is one neuron advanced by one time step; a synaptic
event is one presynaptic spike delivered to one target. The "syn events/s" column
counts the recurrent synapses only; "+ backgr./s" adds the background input spikes
(their expected number: 10 M per simulated second at full size), which are synaptic
events onto the cells as well. Rates use the simulation loop's own time (standalone:
Brian2's ``last_run_info``; cython: the timed ``run`` after a compile warm-up).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _neuron_sim_nets import background_events_per_s, framework_network, hand_written_network, synaptic_events

REPO = Path(__file__).resolve().parents[1]


def _profile_by_role(net) -> dict:
    """Seconds per code object from Brian2's profiling, named by role so that both networks line up
    ('hand_pyr_stateupdater_codeobject' and 'ref_pyr_stateupdater_codeobject' -> 'pyr_stateupdater');
    the background objects (hand-written: eight PoissonInput; mburst: one PoissonBackground per group)
    are summed into 'poisson_inputs'."""
    from brian2 import second

    roles: dict = {}
    for name, duration in net.profiling_info:
        roles[_role(name)] = roles.get(_role(name), 0.0) + float(duration / second)
    return roles


def _role(name: str) -> str:
    role = name.removesuffix("_profiling_info").removesuffix("_codeobject")
    for prefix in ("hand_", "ref_"):
        role = role.removeprefix(prefix)
    return "poisson_inputs" if role.startswith(("poissoninput", "poissonbackground")) else role


def child(args) -> dict:
    """Run one configuration in this process and return its measurements."""
    import numpy as np
    from brian2 import defaultclock, device, ms, second

    sys.path.insert(0, str(REPO))
    from neurons.device import last_build_timers, use_target

    target = "cython" if args.config == "cython" else "cpp_standalone"
    tag = (f"bench_{args.impl}_{args.threads}_{args.scale:g}" + ("_prof" if args.profile else "")
           + ("_events" if args.online_events else ""))
    use_target(target, threads=args.threads, tag=tag, clean=args.cold)
    defaultclock.dt = 0.1 * ms
    t0 = time.perf_counter()
    if args.impl == "hand":
        net, cells, syns, mons = hand_written_network(args.scale, args.seed)
    else:
        net, cells, syns, mons = framework_network(args.scale, args.seed, args.online_events)
    t_construct = time.perf_counter() - t0
    result = {"impl": args.impl, "config": args.config, "threads": args.threads, "cold": args.cold}
    n_neurons = sum(len(g) for g in cells.values())
    steps = int(round(args.duration / 1e-4))
    if target == "cython":
        t1 = time.perf_counter()
        net.run(1 * ms)  # compiles every code object (cached in ~/.cython after the first time)
        result["build_s"] = time.perf_counter() - t1 + t_construct
        before = {k: np.asarray(m.count[:], dtype=np.int64) for k, m in mons.items()}
        t2 = time.perf_counter()
        net.run(args.duration * second)
        result["sim_s"] = time.perf_counter() - t2
        result["syn_events"] = synaptic_events(cells, syns, mons, before)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    else:
        t1 = time.perf_counter()
        net.run(args.duration * second, profile=args.profile)  # build_on_run: code generation + make + run
        total = time.perf_counter() - t1
        if args.profile:
            result["profile"] = _profile_by_role(net)
        timers = last_build_timers()
        result["sim_s"] = float(device._last_run_time)
        result["make_s"] = timers["make"]
        result["binary_s"] = timers["run_binary"]
        result["build_s"] = total - timers["run_binary"] + t_construct
        result["syn_events"] = synaptic_events(cells, syns, mons)
        result["project_dir"] = str(device.project_dir)  # the parent reruns the binary (timing, peak memory)
        result["python_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["n_neurons"] = n_neurons
    result["background_events"] = background_events_per_s(net) * args.duration
    result["n_synapses"] = int(sum(len(s) for s, _ in syns.values()))
    result["steps"] = steps
    _set_rates(result)
    result["mean_rate_hz"] = {k: float(np.mean(m.count[:]) / args.duration) for k, m in mons.items()}
    return result


def _set_rates(result: dict) -> None:
    result["neuron_steps_per_s"] = result["n_neurons"] * result["steps"] / result["sim_s"]
    result["syn_events_per_s"] = result["syn_events"] / result["sim_s"]
    result["all_events_per_s"] = (result["syn_events"] + result["background_events"]) / result["sim_s"]


def rerun_binary(result: dict, profile: bool, cap_s: float) -> None:
    """Run a built standalone binary once more (same seed, so the same spikes); record its loop time
    (Brian2's ``last_run_info``), its peak memory and, if profiled, its time per code object.
    A run still going after ``cap_s`` seconds (OpenMP threads starved by other jobs) is stopped and
    counted in ``result['capped_runs']``."""
    project = Path(result["project_dir"])
    env = dict(os.environ, LD_BIND_NOW="1")
    proc = subprocess.Popen(["./main"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + cap_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            result["capped_runs"] = result.get("capped_runs", 0) + 1
            return
        time.sleep(0.02)
    if status != 0:
        raise SystemExit(f"neuron_sim: rerunning {project / 'main'} failed (wait status {status})")
    sim_s = float((project / "results" / "last_run_info.txt").read_text().split()[0])
    result["sim_s_runs"].append(sim_s)
    result["peak_rss_mb"] = max(result.get("peak_rss_mb", 0.0), usage.ru_maxrss / 1024)
    if profile:
        roles: dict = {}
        for line in (project / "results" / "profiling_info.txt").read_text().splitlines():
            name, seconds = line.split()
            role = _role(name)
            roles[role] = roles.get(role, 0.0) + float(seconds)
        result["profile_runs"].append(roles)


def interleaved_reruns(results: list, repeats: int, profile: bool, cap_s: float = 30.0) -> None:
    """``repeats`` rounds, each running every standalone configuration once in turn, so that all of them
    see the same load; then ``sim_s`` = the fastest run (the least disturbed by other jobs).
    Reruns longer than ``cap_s`` seconds are stopped (see :func:`rerun_binary`)."""
    runs = [r for r in results if r.get("project_dir") and not r["cold"]]
    for r in runs:
        r["sim_s_runs"] = [r["sim_s"]]
        r["profile_runs"] = [r["profile"]] if profile else []
    from tqdm import tqdm

    for _ in tqdm(range(repeats), desc="interleaved reruns", file=sys.stderr, disable=None):
        for r in runs:
            rerun_binary(r, profile, cap_s)
    for r in runs:
        best = int(min(range(len(r["sim_s_runs"])), key=r["sim_s_runs"].__getitem__))
        r["sim_s"] = r["sim_s_runs"][best]
        r["sim_s_median"] = float(sorted(r["sim_s_runs"])[len(r["sim_s_runs"]) // 2])
        if profile:
            r["profile"] = r["profile_runs"][best]
        _set_rates(r)


def run_child(impl: str, config: str, threads: int, cold: bool, args, online_events: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", "--impl", impl, "--config", config, "--threads", str(threads),
           "--scale", str(args.scale), "--duration", str(args.duration), "--seed", str(args.seed)]
    if cold:
        cmd.append("--cold")
    if online_events:
        cmd.append("--online-events")
    if args.profile:
        cmd.append("--profile")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise SystemExit(f"neuron_sim: configuration {impl}/{config}/{threads} failed:\n{tail}")
    return json.loads(lines[-1][len("RESULT "):])


def profile(args) -> int:
    """Print seconds per code object for hand-written and mburst, cpp_standalone with 1 and 2 threads."""
    from tqdm import tqdm

    plan = [(impl, threads) for threads in (1, 2) for impl in ("hand", "mburst")]
    results = [run_child(impl, "cpp", threads, False, args)
               for impl, threads in tqdm(plan, desc="profiled configurations", file=sys.stderr, disable=None)]
    interleaved_reruns(results, args.repeats, profile=True, cap_s=args.rerun_cap)
    roles = sorted({role for r in results for role in r["profile"]},
                   key=lambda role: -max(r["profile"].get(role, 0.0) for r in results))
    heads = [f"{r['impl']} {r['threads']}T" for r in results]
    print(f"seconds per code object, {results[0]['n_neurons']} neurons, {args.duration:g} s simulated; fastest of "
          f"{args.repeats + 1} interleaved runs per configuration; load average {os.getloadavg()[0]:.1f}")
    print(f"{'code object':<32}" + "".join(f"{h:>12}" for h in heads))
    for role in roles + ["(sum of code objects)", "(simulation loop)"]:
        if role == "(sum of code objects)":
            values = [sum(r["profile"].values()) for r in results]
        elif role == "(simulation loop)":
            values = [r["sim_s"] for r in results]
        else:
            values = [r["profile"].get(role) for r in results]
        print(f"{role:<32}" + "".join(f"{v:>12.3f}" if v is not None else f"{'-':>12}" for v in values))
    if args.json:
        sys.path.insert(0, str(REPO))
        from neurons.common import atomic_write_json

        atomic_write_json(args.json, {"args": vars(args) | {"json": str(args.json)}, "results": results})
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale (1 = 4000/1000/1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-cython", action="store_true", help="leave out the (slow) cython configuration")
    parser.add_argument("--json", type=Path, default=None, help="also write all measurements here")
    parser.add_argument("--repeats", type=int, default=3,
                        help="extra interleaved runs of every standalone binary; the fastest run counts (default 3)")
    parser.add_argument("--rerun-cap", type=float, default=30.0,
                        help="stop an extra run after this many seconds (a machine busy with other jobs; default 30)")
    parser.add_argument("--profile", action="store_true",
                        help="instead: time every code object (Brian2 profiling), hand-written vs mburst, 1 and 2 threads")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="mburst", choices=["mburst", "hand"], help=argparse.SUPPRESS)
    parser.add_argument("--config", default="cpp", choices=["cython", "cpp"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--online-events", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return 0
    if args.duration <= 0 or args.scale <= 0:
        parser.error("--duration and --scale must be positive")
    if args.repeats < 0 or args.rerun_cap <= 0:
        parser.error("--repeats must be >= 0 and --rerun-cap positive")
    if args.profile:
        return profile(args)
    # (impl, config, threads, cold build, online event/burst detection, label)
    plan = [("hand", "cpp", 1, False, False, "baseline: hand-written Brian2, cpp_standalone 1 thread"),
            ("hand", "cpp", 2, False, False, "baseline: hand-written Brian2, cpp_standalone 2 threads"),
            ("mburst", "cpp", 1, True, False, "mburst cpp_standalone 1 thread (cold build)"),
            ("mburst", "cpp", 1, False, False, "mburst cpp_standalone 1 thread (warm rebuild)"),
            ("mburst", "cpp", 2, False, False, "mburst cpp_standalone 2 threads (warm rebuild)"),
            ("mburst", "cpp", 2, False, True, "mburst cpp_standalone 2 threads, online event/burst detection")]
    if not args.skip_cython:
        plan.append(("mburst", "cython", 0, False, False, "mburst cython (runtime)"))
    results = []
    from tqdm import tqdm

    for impl, config, threads, cold, events, label in tqdm(plan, desc="configurations", file=sys.stderr, disable=None):
        res = run_child(impl, config, threads, cold, args, online_events=events)
        res["label"] = label
        results.append(res)
    interleaved_reruns(results, args.repeats, profile=False, cap_s=args.rerun_cap)
    baselines = {r["threads"]: r for r in results if r["impl"] == "hand"}
    first = results[0]
    print(f"network: {first['n_neurons']} neurons, {first['n_synapses']} synapses, {args.duration:g} s at dt 0.1 ms; "
          f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other jobs included)")
    print(f"{'configuration':<60} {'neuron-steps/s':>14} {'syn events/s':>13} {'+ backgr./s':>12} {'sim s':>7} "
          f"{'median':>7} {'build s':>8} {'make s':>7} {'peak MB':>8} {'ratio':>6}")
    for r in results:
        base = baselines.get(max(r["threads"], 1))
        ratio = r["neuron_steps_per_s"] / base["neuron_steps_per_s"]
        make = f"{r['make_s']:.2f}" if r.get("make_s") is not None else "-"
        median = f"{r['sim_s_median']:.2f}" if r.get("sim_s_median") is not None else "-"
        peak = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") is not None else "-"
        print(f"{r['label']:<60} {r['neuron_steps_per_s'] / 1e6:>12.2f} M {r['syn_events_per_s'] / 1e6:>11.2f} M "
              f"{r['all_events_per_s'] / 1e6:>10.2f} M {r['sim_s']:>7.2f} {median:>7} {r['build_s']:>8.2f} {make:>7} {peak:>8} {ratio:>6.2f}")
    capped = ", ".join(f"{r['label']}: {r['capped_runs']}" for r in results if r.get("capped_runs"))
    print(f"sim s = the fastest of {args.repeats + 1} runs of each standalone binary, interleaved across "
          f"configurations (median beside it; cold build and cython: one run"
          + (f"; runs stopped after {args.rerun_cap:g} s, not counted: {capped}" if capped else "")
          + "); ratio = neuron-steps/s over the "
          "hand-written baseline with the same number of threads, same run (cython: over the 1-thread baseline)")
    events_per_sim_s = {r["impl"]: r["syn_events"] / args.duration for r in results if not r["cold"]}
    steps_per_sim_s = first["n_neurons"] * first["steps"] / args.duration
    print("workload: " + ", ".join(f"{impl} {e / 1e6:.2f} M synaptic events" for impl, e in events_per_sim_s.items())
          + f" per simulated second; so 10 M recurrent events/s needs a loop time <= {min(events_per_sim_s.values()) / 1e7:.2f} s "
          f"per simulated second, i.e. >= {steps_per_sim_s / (min(events_per_sim_s.values()) / 1e7) / 1e6:.1f} M "
          "neuron-steps/s")
    print(f"syn events/s = recurrent synaptic events (presynaptic spikes x out-degree); + backgr./s adds the "
          f"{first['background_events'] / args.duration / 1e6:.2f} M expected background input spikes per simulated "
          "second (Poisson 500 Hz: 4 inputs per pyramidal cell, 2 per interneuron), which are synaptic events "
          "onto the cells too, applied without synapse objects")
    print("build s = network construction + code generation + compile (standalone) or first-run compile (cython); "
          "make s = the C++ compile alone; peak MB = the simulation process (standalone: the binary)")
    print("firing rates (Hz): " + "; ".join(f"{r['impl']}/{r['config']}/{r['threads']}: "
                                          + ", ".join(f"{k} {v:.1f}" for k, v in r["mean_rate_hz"].items())
                                          for r in results if not r["cold"]))
    if args.json:
        sys.path.insert(0, str(REPO))
        from neurons.common import atomic_write_json

        atomic_write_json(args.json, {"args": vars(args) | {"json": str(args.json)}, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
