"""The device table: energy per operation of each platform, its time step, and where every constant comes from.

A :class:`Device` has a J per synaptic op, a J per *active* neuron update (the neuron received a
synaptic event or spiked in that step), optionally a different J per *idle* update (neither), a J per
spike (routing, or biology's whole action potential) and a time step. Neuron updates are counted at
the device's step, not at the simulation's (:func:`rate_bridge.ledger.count_spiking`); a device
without a step (``step_s=None``) is counted at the simulation step, which is then a stated choice of
the run, not a property of the device. Every constant carries its source: ``source`` covers all of
them, ``sources`` names one per constant; a device with a constant that has neither is refused.

Sources (reference.md s. 4; the Loihi rows quoted by their labels in Table 2, "Loihi pre-silicon
performance and energy measurements", of Davies et al. 2018, IEEE Micro 38(1):82-99, as transcribed
in public notes and keras-spiking's device table; the paper itself was not available to this code's
authors):

* Loihi synaptic op 23.6 pJ: row "Energy per synaptic spike op (min)";
* Loihi neuron update 81 pJ active / 52 pJ idle: row "Energy per neuron update (active / inactive)";
* Loihi 3.5 pJ per spike: row "Energy per tile hop (E-W / N-S)", 3.0 / 4.0 pJ, their mean, i.e. one
  inter-tile hop per spike (an assumption: the hop count depends on placement; a spike that stays in
  its tile costs 1.7 pJ, row "Within-tile spike energy"). keras-spiking adds the same 3.5 to every
  synaptic op instead; Table 2's other 3.5 is "Time per synaptic spike op (max)", 3.5 ns;
* Loihi step 1 ms: Davies et al. 2021, Proc. IEEE 109(5):911-934, s. II-A: timesteps "may be throttled
  to a real-time scale (one millisecond per timestep is common)". Loihi has no global clock; the step
  is the algorithm's, so per second of audio it is 1,000 steps in real time;
* CPU/GPU/ARM: Degnan, Marr & Hasler 2015, IEEE TVLSI 24(1):58-66 (one energy per op; they execute
  the simulation, so their step is the simulation's);
* SpiNNaker/SpiNNaker2: Hoppner et al. 2019, IEEE TCAS-I 66(8):2973-2986; no time step or idle energy
  in that source as available here: counted at the simulation step, one energy per update;
* biology: Attwell & Laughlin 2001 and Howarth et al. 2012 (reference.md s. 4): 7e8 ATP per action
  potential including synaptic transmission x 0.9e-19 J per ATP, all charged per spike.

Pure Python; nothing here imports torch or Brian2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from neurons.common import MburstError

__all__ = ["Device", "DEVICES", "CONSTANTS", "register_device", "get_device", "device_names", "ARITHMETIC_J",
           "BIOLOGY_J_PER_SPIKE", "CACHE_J_PER_BYTE", "CACHE_J_SOURCE"]

#: The constants of a device that carry a source.
CONSTANTS = ("j_per_synop", "j_per_neuron_update", "j_per_idle_update", "j_per_spike", "step_s")


def _finite_nonneg(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


@dataclass(frozen=True, eq=False)
class Device:
    """Energy per operation (joules) and time step (seconds) of a platform, each with its source.

    Attributes
    ----------
    name : str
    j_per_synop : float
        One synaptic op (one presynaptic spike delivered to one target).
    j_per_neuron_update : float
        One active neuron update (the neuron received a synaptic event or spiked in that step);
        every update when ``j_per_idle_update`` is None.
    j_per_spike : float
        Extra cost per somatic spike (routing, or biology's whole action potential).
    source : str or None
        The source of every constant without its own entry in ``sources``.
    step_s : float or None
        The device's time step (s); None: the simulation step (a choice of the run, stated in tables).
    j_per_idle_update : float or None
        One idle update (no input, no spike); None: the same as an active one (the source gives one).
    sources : dict of str to str
        Per-constant sources, keys from :data:`CONSTANTS`.

    Raises
    ------
    MburstError
        One line: an empty name, a negative or non-finite energy, a step that is not a positive
        number of seconds, an unknown key in ``sources``, or a given constant without a source.
    """

    name: str
    j_per_synop: float
    j_per_neuron_update: float
    j_per_spike: float = 0.0
    source: str | None = None
    step_s: float | None = None
    j_per_idle_update: float | None = None
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise MburstError(f"device name {self.name!r} must be a non-empty string")
        for key in ("j_per_synop", "j_per_neuron_update", "j_per_spike"):
            if not _finite_nonneg(getattr(self, key)):
                raise MburstError(f"device '{self.name}': {key}={getattr(self, key)!r} must be a finite number >= 0 "
                                  "(joules)")
        if self.j_per_idle_update is not None and not _finite_nonneg(self.j_per_idle_update):
            raise MburstError(f"device '{self.name}': j_per_idle_update={self.j_per_idle_update!r} must be a finite "
                              "number >= 0 (joules) or None (same as an active update)")
        if self.step_s is not None and not (_finite_nonneg(self.step_s) and self.step_s > 0):
            raise MburstError(f"device '{self.name}': step_s={self.step_s!r} must be a positive time step in seconds "
                              "(or None: the simulation step)")
        unknown = set(self.sources) - set(CONSTANTS)
        if unknown:
            raise MburstError(f"device '{self.name}': sources has unknown keys {sorted(unknown)}; expected {CONSTANTS}")
        for key in self.given():
            if not self.source_of(key):
                raise MburstError(f"device '{self.name}': no source for {key} (pass source=... or sources={{'{key}': "
                                  "...}}: every constant needs one)")

    def given(self) -> tuple[str, ...]:
        """The constants this device states (synop and update energies always; the others when set)."""
        return tuple(k for k in CONSTANTS if k in ("j_per_synop", "j_per_neuron_update") or
                     (k == "j_per_spike" and self.j_per_spike != 0) or
                     (k in ("j_per_idle_update", "step_s") and getattr(self, k) is not None))

    def source_of(self, key: str) -> str:
        """The source of constant ``key`` ('' when it has none)."""
        text = self.sources.get(key) or self.source
        return text.strip() if isinstance(text, str) else ""

    @property
    def j_idle(self) -> float:
        """J per idle neuron update (the active one when the source gives one energy)."""
        return self.j_per_neuron_update if self.j_per_idle_update is None else self.j_per_idle_update

    @property
    def splits_updates(self) -> bool:
        """Whether active and idle updates cost differently on this device."""
        return self.j_idle != self.j_per_neuron_update

    def step_label(self) -> str:
        """The step for tables: e.g. '1 ms', or 'simulation step'."""
        return "simulation step" if self.step_s is None else f"{self.step_s * 1e3:g} ms"

    def joules(self, synops: float, neuron_updates: float, spikes: float = 0.0, idle_updates: float = 0.0) -> float:
        """J = synops J_synop + active updates J_update + idle updates J_idle + spikes J_spike.

        Parameters
        ----------
        synops, neuron_updates, spikes, idle_updates : float
            Counts; ``neuron_updates`` are the active ones (all of them when not split).

        Returns
        -------
        float
            Joules.
        """
        return (synops * self.j_per_synop + neuron_updates * self.j_per_neuron_update + idle_updates * self.j_idle
                + spikes * self.j_per_spike)


#: ATP per action potential including synaptic transmission (Attwell & Laughlin 2001) x 0.9e-19 J/ATP.
BIOLOGY_J_PER_SPIKE = 7e8 * 0.9e-19

DEVICES: dict[str, Device] = {}


def register_device(name: str, j_per_synop: float, j_per_neuron_update: float, j_per_spike: float = 0.0,
                    source: str | None = None, replace: bool = False, *, step_s: float | None = None,
                    j_per_idle_update: float | None = None, sources: dict | None = None) -> Device:
    """Add a platform to the table (see :class:`Device` for the fields).

    Parameters
    ----------
    name : str
    j_per_synop, j_per_neuron_update, j_per_spike : float
        Joules per synaptic op, per active neuron update, per spike.
    source : str, optional
        Source of every constant without an entry in ``sources``.
    replace : bool
        Overwrite an existing name (otherwise refused).
    step_s : float, optional
        The device's time step in seconds (None: the simulation step).
    j_per_idle_update : float, optional
        Joules per idle update (None: as an active one).
    sources : dict, optional
        Per-constant sources (keys from :data:`CONSTANTS`).

    Returns
    -------
    Device

    Raises
    ------
    MburstError
        A name already registered (without ``replace``), or any refusal of :class:`Device`.
    """
    if name in DEVICES and not replace:
        raise MburstError(f"device '{name}' is already registered (pass replace=True to overwrite)")
    num = (lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
    dev = Device(name, num(j_per_synop), num(j_per_neuron_update), num(j_per_spike), source,
                 None if step_s is None else num(step_s), None if j_per_idle_update is None else num(j_per_idle_update),
                 dict(sources or {}))
    DEVICES[name] = dev
    return dev


def device_names() -> tuple[str, ...]:
    """The registered device names (tuple of str, in registration order): ``mburst energy --device``."""
    return tuple(DEVICES)


def get_device(name: str) -> Device:
    """The device registered as ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Device

    Raises
    ------
    MburstError
        Unknown name (the message lists the known ones).
    """
    try:
        return DEVICES[name]
    except KeyError:
        raise MburstError(f"device '{name}' is unknown; known devices: {', '.join(DEVICES)}") from None


_DEGNAN = "Degnan, Marr & Hasler 2015, IEEE TVLSI 24(1):58-66"
_HOPPNER = "Hoppner et al. 2019, IEEE TCAS-I 66(8):2973-2986"
_DAVIES = "Davies et al. 2018, IEEE Micro 38(1):82-99, Table 2 row "
for _name, _syn, _upd, _detail in (("CPU", 8.6e-9, 8.6e-9, "i7-4960X"), ("GPU", 0.3e-9, 0.3e-9, "GTX Titan Black"),
                                    ("ARM", 0.9e-9, 0.9e-9, "ARM Cortex-A")):
    register_device(_name, _syn, _upd, source=f"{_DEGNAN} ({_detail})")
register_device("Loihi", 23.6e-12, 81e-12, 3.5e-12, step_s=1e-3, j_per_idle_update=52e-12, sources={
    "j_per_synop": _DAVIES + "'Energy per synaptic spike op (min)'",
    "j_per_neuron_update": _DAVIES + "'Energy per neuron update (active / inactive)', active",
    "j_per_idle_update": _DAVIES + "'Energy per neuron update (active / inactive)', inactive",
    "j_per_spike": _DAVIES + "'Energy per tile hop (E-W / N-S)', 3.0/4.0 pJ: mean, one hop per spike (assumed)",
    "step_s": "Davies et al. 2021, Proc. IEEE 109(5):911-934, s. II-A: 'one millisecond per timestep is common'"})
register_device("SpiNNaker", 13.3e-9, 26e-9, source=_HOPPNER)
register_device("SpiNNaker2", 450e-12, 2.19e-9, source=_HOPPNER)
register_device("biology", 0.0, 0.0, BIOLOGY_J_PER_SPIKE,
                source="Attwell & Laughlin 2001; Howarth et al. 2012: 7e8 ATP/AP incl. synapses x 0.9e-19 J")

#: Arithmetic energy at 45 nm (Horowitz, ISSCC 2014), joules: MAC = add + multiply.
ARITHMETIC_J = {
    "fp32": {"mac": 4.6e-12, "add": 0.9e-12},
    "fp16": {"mac": 1.5e-12, "add": 0.4e-12},
    "int8": {"mac": 0.23e-12, "add": 0.03e-12},
}

#: Memory traffic: a 32-bit cache access costs about 5 pJ at 45 nm, i.e. 1.25 pJ per byte (DRAM: far more;
#: no figure for it in the sources available here).
CACHE_J_PER_BYTE = 5e-12 / 4
CACHE_J_SOURCE = "Horowitz, ISSCC 2014 (reference.md s. 4): 32-bit cache access ~5 pJ at 45 nm"
