#!/usr/bin/env python
"""
Burst multiplexing in a population of two-compartment pyramidal cells
---------------------------------------------------------------------

Naud, R. & Sprekeler, H. (2018). Sparse bursts optimize information
transmission in a multiplexed neural code. PNAS 115(27):E6329-E6338.

Payeur, A., Guerguiev, J., Zenke, F., Richards, B. A. & Naud, R. (2021).
Burst-dependent synaptic plasticity can coordinate learning in hierarchical
circuits. Nature Neuroscience 24:1010-1019 (Fig. 2; model in Methods).

Each cell has a soma and an apical dendrite. The dendrite has a regenerative
sigmoidal nonlinearity (plateau potentials); a somatic spike sends a 2 ms
backpropagating current into it. A plateau drives the soma hard enough to fire
a *burst*. With Poisson background noise, a population's *event rate*
(bursts and single spikes counted once; 16 ms rule) follows the current into
the somata, while the *burst probability* (bursts per event) follows the
current into the dendrites: two signals travel in one spike train.

Here all cells share two independent piecewise-constant currents, one somatic
and one dendritic, and we decode both from the population's spikes.

Original simulator: Auryn (C++). This is the mburst Brian2 port
(``neurons.pyramidal``). Run::

    PYTHONHASHSEED=0 python examples/payeur2021_multiplexing.py --out multiplexing.png
"""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from brian2 import Network, TimedArray, defaultclock, ms, pA, second, seed

from neurons.bursts import BurstMonitor
from neurons.device import use_target
from neurons.inputs import payeur_background
from neurons.pyramidal import pyramidal_group

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--cells", type=int, default=1000)
parser.add_argument("--duration", type=float, default=3.0, help="seconds")
parser.add_argument("--target", default="cython", choices=["numpy", "cython", "cpp_standalone"])
parser.add_argument("--out", default="payeur2021_multiplexing.png")
args = parser.parse_args()

use_target(args.target, tag="example_multiplexing")
defaultclock.dt = 0.1 * ms
seed(1)
rng = np.random.default_rng(1)
step = 0.25  # s between input changes
n_steps = int(np.ceil(args.duration / step))
I_soma = rng.uniform(-100, 400, n_steps)  # pA, somatic input (changes the event rate)
I_dend = rng.uniform(-100, 500, n_steps)  # pA, dendritic input (changes the burst probability)

cells = pyramidal_group(args.cells)
cells.namespace["I_soma_t"] = TimedArray(I_soma * pA, dt=step * second)
cells.namespace["I_dend_t"] = TimedArray(I_dend * pA, dt=step * second)
cells.run_regularly("I_ext_s = I_soma_t(t)\nI_ext_d = I_dend_t(t)", when="start")
background = payeur_background(cells, "pyramidal")  # 500 Hz Poisson, E/I onto soma and dendrite
monitor = BurstMonitor(cells)  # spikes + the online 'event' and 'burst' detection
Network(cells, background, monitor.objects).run(args.duration * second)

# Population event rate E, burst rate B and burst probability P = B/E in 50 ms bins.
bin_size = 0.05
stats = monitor.stats(bin_size)
t = 0.5 * (stats.edges[1:] + stats.edges[:-1])
inputs_s = I_soma[np.minimum((t / step).astype(int), n_steps - 1)]
inputs_d = I_dend[np.minimum((t / step).astype(int), n_steps - 1)]
ok = np.isfinite(stats.burst_prob)
print(f"corr(E, somatic input)    = {np.corrcoef(stats.event_rate[ok], inputs_s[ok])[0, 1]:.2f}")
print(f"corr(E, dendritic input)  = {np.corrcoef(stats.event_rate[ok], inputs_d[ok])[0, 1]:.2f}")
print(f"corr(P, somatic input)    = {np.corrcoef(stats.burst_prob[ok], inputs_s[ok])[0, 1]:.2f}")
print(f"corr(P, dendritic input)  = {np.corrcoef(stats.burst_prob[ok], inputs_d[ok])[0, 1]:.2f}")
det = monitor.offline()
print(f"online == offline detection: {len(det.event_t) == monitor.events.num_events and len(det.burst_t) == monitor.bursts.num_events}")

fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
sel = np.asarray(monitor.spikes.i[:]) < 30
axes[0].plot(np.asarray(monitor.spikes.t / second)[sel], np.asarray(monitor.spikes.i[:])[sel], "|k", ms=4)
axes[0].plot(np.asarray(monitor.bursts.t / second), np.asarray(monitor.bursts.i[:]), "|r", ms=8)
axes[0].set_ylim(-1, 30)
axes[0].set_ylabel("cell (red: burst)")
axes[1].plot(t, stats.event_rate, "k")
axes[1].set_ylabel("event rate (Hz)")
axes[1].twinx().step(t, inputs_s, "C0", where="mid")
axes[2].plot(t, stats.burst_prob, "k")
axes[2].set_ylabel("burst probability")
axes[2].twinx().step(t, inputs_d, "C0", where="mid")
axes[2].set_xlabel("time (s)")
axes[0].set_title("Somatic input -> event rate; dendritic input -> burst probability (blue: inputs, pA)")
fig.tight_layout()
fig.savefig(args.out, dpi=120)
print(f"wrote {args.out}")
