"""The wiring of the burst-multiplexing microcircuit (Payeur et al. 2021, Fig. 3): one table for the project.

Weights in leak-conductance units of the target compartment (reference.md s. 3); connection
probability 0.05 in the 4000/1000/1000 reference circuit. Roles: ``'lower'`` and ``'upper'`` are the
pyramidal cells of two consecutive layers, ``'layer'`` any one layer (its within-layer projection),
``'pv'`` and ``'som'`` the interneurons. Plasticity: ``'forward'`` synapses depress (STD: they
transmit the event rate), ``'feedback'`` ones facilitate (STF: they transmit the burst rate),
``None`` are static::

    name         pre    -> post          STP       target    receptor  weight
    ff_soma      lower  -> upper         forward   soma      ampa      0.05
    ff_pv        lower  -> pv            forward   soma      ampa      0.05
    pv_soma      pv     -> upper         -         soma      gaba      0.07
    fb_dend      upper  -> lower         feedback  dendrite  ampa      0.37
    fb_som       upper  -> som           feedback  soma      ampa      0.3
    som_dend     som    -> lower         -         dendrite  gaba      0.035
    within_dend  layer  -> layer         feedback  dendrite  gaba      0.1

Used by :mod:`circuits.microcircuit` (the propagation experiment; its configuration may deviate
from a weight and says why) and :mod:`circuits.ensemble_parts` (PV/SOM of each ensemble layer).
"""
from __future__ import annotations

from dataclasses import dataclass

from neurons.common import MburstError

__all__ = ["Projection", "WIRING", "REFERENCE_P", "REFERENCE_SIZES", "indegree_p", "stp_of", "stp_label"]

REFERENCE_P = 0.05
"""Connection probability of every projection in the 4000/1000/1000 reference circuit."""
REFERENCE_SIZES = {"pyramidal": 4000, "pv": 1000, "som": 1000}
"""Population sizes of the reference circuit (Payeur et al. 2021, Fig. 3)."""


def indegree_p(n_pre: int, n_ref: int, p: float = REFERENCE_P) -> float:
    """Connection probability from ``n_pre`` cells that keeps the reference circuit's in-degree.

    Parameters
    ----------
    n_pre, n_ref : int
        Presynaptic cells here and in the reference circuit (:data:`REFERENCE_SIZES`).
    p : float, optional
        Probability in the reference circuit.

    Returns
    -------
    float
        ``min(1, p N_ref / n_pre)``: each postsynaptic cell gets ``p N_ref`` inputs (200 from a pyramidal
        layer, 50 from its PV or SOM cells) where ``n_pre`` allows, all ``n_pre`` below that.
    """
    return float(min(1.0, p * n_ref / max(int(n_pre), 1)))


@dataclass(frozen=True)
class Projection:
    """One projection of the microcircuit: ``pre`` and ``post`` roles, ``plasticity`` (``'forward'``: STD,
    ``'feedback'``: STF, ``None``: static), the ``target`` compartment, the ``receptor`` and the ``weight``
    (leak-conductance units of the target)."""

    pre: str
    post: str
    plasticity: str | None
    target: str
    receptor: str
    weight: float


WIRING = {
    "ff_soma": Projection("lower", "upper", "forward", "soma", "ampa", 0.05),
    "ff_pv": Projection("lower", "pv", "forward", "soma", "ampa", 0.05),
    "pv_soma": Projection("pv", "upper", None, "soma", "gaba", 0.07),
    "fb_dend": Projection("upper", "lower", "feedback", "dendrite", "ampa", 0.37),
    "fb_som": Projection("upper", "som", "feedback", "soma", "ampa", 0.3),
    "som_dend": Projection("som", "lower", None, "dendrite", "gaba", 0.035),
    "within_dend": Projection("layer", "layer", "feedback", "dendrite", "gaba", 0.1),
}
"""The microcircuit's projections by name (see the module docstring)."""


def stp_of(projection: Projection, swapped: bool = False):
    """The Tsodyks-Markram parameters of a projection (None for a static one).

    Parameters
    ----------
    projection : Projection
        An entry of :data:`WIRING`.
    swapped : bool, optional
        The ablation that puts STF where the circuit has STD and vice versa.

    Returns
    -------
    neurons.params.STPParams or None
        :data:`neurons.params.STD` for forward, :data:`neurons.params.STF` for feedback synapses.

    Raises
    ------
    MburstError
        For an unknown plasticity.
    """
    from neurons.params import STD, STF

    kinds = {"forward": STD, "feedback": STF, None: None}
    if projection.plasticity not in kinds:
        raise MburstError(f"wiring: plasticity={projection.plasticity!r} is unknown; expected 'forward', "
                          "'feedback' or None")
    stp = kinds[projection.plasticity]
    if swapped and stp is not None:
        stp = STF if stp is STD else STD
    return stp


def stp_label(stp) -> str:
    """``'STD'``, ``'STF'`` or ``''`` (static) for Tsodyks-Markram parameters (None: static).

    Raises
    ------
    MburstError
        For parameters that are neither :data:`neurons.params.STD` nor :data:`neurons.params.STF`.
    """
    from neurons.params import STD, STF

    if stp is None:
        return ""
    for label, params in (("STD", STD), ("STF", STF)):
        if stp == params:
            return label
    raise MburstError(f"wiring: STP parameters {stp!r} are neither STD nor STF")
