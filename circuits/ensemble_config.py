"""How the ensemble layers of :mod:`circuits.ensembles` run: mode, times, circuit parts and Brian2 target.

:class:`EnsembleConfig` holds the settings (times in ms; the modes and their schedules are in
:mod:`circuits.streaming`); :func:`ablate` switches circuit parts off by name (:data:`PARTS`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from neurons.common import MburstError

from circuits.streaming import FRAME_PERIOD_MS, LATENCY_MS, MODES, TAU_SYN_MS

__all__ = ["EnsembleConfig", "PARTS", "FORWARD_ONLY", "ablate"]

PARTS = {"stp": "stp", "interneurons": "interneurons", "feedback": "feedback", "dendrites": "dendrites"}
"""Circuit parts that :func:`ablate` switches off: the ``EnsembleConfig`` field of each."""
FORWARD_ONLY = "forward-only"
"""The named ablation of the earlier forward-only network: no STP, feedback or interneurons, forward
synapses that transmit the presynaptic 16 ms-rule events as plain current jumps (``forward_pathway='event'``);
models trained with ``calibrated-quiet`` run in it."""


@dataclass(frozen=True)
class EnsembleConfig:
    """How the ensembles run (times in ms); see the module docstring and :mod:`circuits.streaming`.

    ``mode``: ``'stream'`` (``frame_period_ms``, output ``latency_ms``) or ``'settle'`` (``t_settle_ms``,
    ``t_count_ms``, ``reset``); ``tau_syn_ms``: time constant of the shared synaptic currents (forward and
    feedback), None for the mode's default (:data:`circuits.streaming.TAU_SYN_MS`; :attr:`tau_syn` resolves it).
    Circuit parts (:data:`PARTS`, all on by default; :mod:`circuits.shared_current`): ``stp``: forward synapses
    depress (STD) and feedback synapses facilitate (STF), else both are static; ``feedback``: the upper layer's
    spikes reach the lower layer's dendrites (weights tied to the forward ones, Y = W); ``interneurons``: PV and
    SOM per layer; ``dendrites``: the dendrite is excitable (plateau potentials, the bAP), else passive
    (``g_d = c = 0``). ``forward_pathway``: what a forward synapse transmits, every ``'spike'`` (the circuit) or
    the 16 ms-rule ``'event'`` (the forward-only network, :data:`FORWARD_ONLY`).
    """

    dt_ms: float = 0.1
    mode: str = "stream"
    frame_period_ms: float = FRAME_PERIOD_MS
    latency_ms: float = LATENCY_MS
    t_settle_ms: float = 100.0
    t_count_ms: float = 250.0
    tau_syn_ms: float | None = None
    background: bool = True
    reset: bool = False
    stp: bool = True
    feedback: bool = True
    interneurons: bool = True
    dendrites: bool = True
    forward_pathway: str = "spike"
    target: str = "cpp_standalone"
    threads: int = 0
    seed: int = 0
    build_tag: str = "ensembles"  # standalone build folder; concurrent processes need different tags

    @property
    def tau_syn(self) -> float:
        """Forward synaptic time constant (ms): ``tau_syn_ms``, or the mode's default."""
        return TAU_SYN_MS[self.mode] if self.tau_syn_ms is None else float(self.tau_syn_ms)

    @property
    def t_frame_ms(self) -> float:
        """Simulated time per frame (ms): the frame period (stream) or settle + count (settle)."""
        return self.frame_period_ms if self.mode == "stream" else self.t_settle_ms + self.t_count_ms

    @property
    def count_window_ms(self) -> float:
        """Read-out window per frame (ms): the frame period (stream) or ``t_count_ms`` (settle)."""
        return self.frame_period_ms if self.mode == "stream" else self.t_count_ms

    @property
    def readout_latency_ms(self) -> float:
        """Delay of the output's read-out window after each frame's onset (ms): ``latency_ms`` (stream) or
        ``t_settle_ms`` (settle); the mask of a frame is complete ``readout_latency_ms + count_window_ms`` after
        its onset."""
        return self.latency_ms if self.mode == "stream" else self.t_settle_ms

    def validate(self, who: str = "ensembles") -> "EnsembleConfig":
        """Check the mode and times; ``who`` prefixes the error.

        Raises
        ------
        MburstError
            Unknown ``mode``; ``dt_ms`` or the synaptic time constant <= 0; a read-out window (frame period
            or ``t_count_ms``) < 16 ms; ``latency_ms`` or ``t_settle_ms`` < 0; ``reset`` while streaming.
        """
        if self.mode not in MODES:
            raise MburstError(f"{who}: mode={self.mode!r} is unknown; expected one of {', '.join(MODES)}")
        if not self.dt_ms > 0 or not self.tau_syn > 0:
            raise MburstError(f"{who}: dt_ms={self.dt_ms} and tau_syn_ms={self.tau_syn} must be > 0")
        window, name = ((self.frame_period_ms, "frame_period_ms") if self.mode == "stream"
                        else (self.t_count_ms, "t_count_ms"))
        if not window >= 16.0:
            raise MburstError(f"{who}: {name}={window} ms is too short to count a spike as an event "
                              "(the 16 ms burst rule needs a read-out window >= 16 ms)")
        if self.mode == "stream" and (self.reset or not self.latency_ms >= 0):
            raise MburstError(f"{who}: a stream has latency_ms >= 0 (got {self.latency_ms}) and no reset "
                              f"(reset={self.reset}; reset belongs to mode 'settle')")
        if self.forward_pathway not in ("spike", "event"):
            raise MburstError(f"{who}: forward_pathway={self.forward_pathway!r}; expected 'spike' or 'event'")
        if self.t_settle_ms < 0:
            raise MburstError(f"{who}: t_settle_ms={self.t_settle_ms} must be >= 0")
        return self


def ablate(config: EnsembleConfig, parts) -> EnsembleConfig:
    """``config`` with the named circuit parts switched off.

    Parameters
    ----------
    config : EnsembleConfig
        Any configuration (a subclass keeps its type).
    parts : iterable of str
        Names of :data:`PARTS`, or :data:`FORWARD_ONLY` (stp, feedback and interneurons off, forward
        synapses on events).

    Returns
    -------
    EnsembleConfig
        A copy with each part's field False.

    Raises
    ------
    MburstError
        For an unknown part.
    """
    off = {}
    for part in parts:
        if part == FORWARD_ONLY:
            off.update(stp=False, feedback=False, interneurons=False, forward_pathway="event")
            continue
        if part not in PARTS:
            raise MburstError(f"--ablate {part!r} is unknown; choose from {', '.join([*PARTS, FORWARD_ONLY])}")
        off[PARTS[part]] = False
    return dataclasses.replace(config, **off)
