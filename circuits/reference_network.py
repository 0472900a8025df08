"""A one-layer network with the Payeur et al. (2021, Fig. 3) cell types, inputs and synapse types.

Used to check code-generation targets against each other and to benchmark
(``bench/neuron_sim.py``); the full two-layer propagation microcircuit lives
in ``circuits/``. Connections (probability ``p``, weights in leak units,
reference.md section 3):

| projection | STP | target | weight |
|---|---|---|---|
| pyr -> PV | STD | soma, AMPA | 0.05 |
| PV -> pyr | - | soma, GABA | 0.07 |
| pyr -> SOM | STF | soma, AMPA | 0.3 |
| SOM -> pyr | - | dendrite, GABA | 0.035 |
| pyr -> pyr | STF | dendrite, GABA (within-layer inhibition) | 0.1 |

Every cell gets the Payeur Poisson background (500 Hz).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurons.common import MburstError

__all__ = ["ReferenceNetwork", "reference_network", "PROJECTIONS"]

PROJECTIONS = (
    # name, pre, post, stp, target, receptor, weight
    ("pyr_pv", "pyr", "pv", "STD", "soma", "ampa", 0.05),
    ("pv_pyr", "pv", "pyr", None, "soma", "gaba", 0.07),
    ("pyr_som", "pyr", "som", "STF", "soma", "ampa", 0.3),
    ("som_pyr", "som", "pyr", None, "dendrite", "gaba", 0.035),
    ("pyr_pyr", "pyr", "pyr", "STF", "dendrite", "gaba", 0.1),
)


@dataclass
class ReferenceNetwork:
    """The Brian2 objects: groups, synapses, background inputs, spike-count monitors and the Network."""

    net: object
    groups: dict
    synapses: dict
    monitors: dict

    @property
    def n_neurons(self) -> int:
        return sum(len(g) for g in self.groups.values())

    @property
    def n_synapses(self) -> int:
        return sum(len(s) for s in self.synapses.values())

    def spike_counts(self) -> dict:
        """Spikes per neuron for each population (after the run)."""
        return {k: np.asarray(m.count[:]) for k, m in self.monitors.items()}

    def synaptic_events(self) -> int:
        """Delivered synaptic events: sum over projections of presynaptic spikes x out-degree."""
        counts = self.spike_counts()
        total = 0
        for name, pre, *_ in PROJECTIONS:
            out_degree = np.bincount(np.asarray(self.synapses[name].i[:]), minlength=len(self.groups[pre]))
            total += int(np.dot(out_degree, counts[pre]))
        return total


def reference_network(n_pyr: int = 4000, n_pv: int = 1000, n_som: int = 1000, p: float = 0.05,
                      seed: int = 0, record_spikes: bool = False, online_events: bool = False) -> ReferenceNetwork:
    """Build the network under the current Brian2 device (call :func:`neurons.device.use_target` first).

    Parameters
    ----------
    n_pyr, n_pv, n_som : int, optional
        Sizes of the pyramidal, PV and SOM populations (>= 1).
    p : float, optional
        Connection probability of every projection.
    seed : int, optional
        Seed of Brian2 (connections and background).
    record_spikes : bool, optional
        Keep spike times (else only per-neuron counts are kept).
    online_events : bool, optional
        Give the pyramidal cells the online ``'event'``/``'burst'`` detection
        (off by default: every projection here transmits spikes).

    Returns
    -------
    ReferenceNetwork

    Raises
    ------
    MburstError
        If a population size is < 1, or as :func:`neurons.synapses.connect`.
    """
    from brian2 import Network, SpikeMonitor
    from brian2 import seed as brian_seed

    from neurons.inputs import payeur_background
    from neurons.interneurons import pv_group, som_group
    from neurons.params import STD, STF
    from neurons.pyramidal import pyramidal_group
    from neurons.synapses import connect

    if min(n_pyr, n_pv, n_som) < 1:
        raise MburstError(f"reference_network: population sizes must be positive (got {n_pyr}, {n_pv}, {n_som})")
    brian_seed(seed)
    groups = {"pyr": pyramidal_group(n_pyr, name="ref_pyr", online_events=online_events), "pv": pv_group(n_pv, name="ref_pv"),
              "som": som_group(n_som, name="ref_som")}
    background = []
    for kind, group in (("pyramidal", groups["pyr"]), ("pv", groups["pv"]), ("som", groups["som"])):
        background += payeur_background(group, kind)
    stps = {"STD": STD, "STF": STF, None: None}
    synapses = {}
    for name, pre, post, stp, target, receptor, weight in PROJECTIONS:
        synapses[name] = connect(groups[pre], groups[post], stps[stp], target=target, receptor=receptor,
                                 p=p, weight=weight, name=f"ref_{name}")
    monitors = {k: SpikeMonitor(g, record=record_spikes, name=f"ref_{k}_spikes") for k, g in groups.items()}
    net = Network(*groups.values(), *background, *synapses.values(), *monitors.values())
    return ReferenceNetwork(net=net, groups=groups, synapses=synapses, monitors=monitors)
