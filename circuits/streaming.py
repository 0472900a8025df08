"""When the ensemble layers see each frame and when they are read out: streamed in real time, or held.

Two modes (:data:`MODES`, chosen by :class:`circuits.ensembles.EnsembleConfig`):

* ``'stream'`` (default): frame ``k`` drives the input layers during ``[k P, (k+1) P)``,
  ``P = frame_period_ms`` (40 ms = the audio hop: real time), one frame after the other with no reset
  and no settle window; after the last frame the input holds it. A layer of depth ``d`` (input layers
  1, each synaptic stage +1, the deepest layer ``D``) is read out in ``[k P + L_d, k P + L_d + P)``
  with ``L_d = L d / D``, ``L = latency_ms``: the mask of frame ``k`` is complete ``L + P`` after the
  frame's onset, i.e. ``L / P`` frames behind the input (plus the frame itself). The run lasts
  ``F P + L``.
* ``'settle'`` (the held frames of the earlier forward-only "quiet" network, kept for it): frame ``k`` is
  held during ``[k T, (k+1) T)``, ``T = t_settle_ms + t_count_ms``, and every layer is counted in
  the last ``t_count_ms`` of it. The run lasts ``F T``.

Time constants of the stream (:data:`TAU_SYN_MS`, :data:`LATENCY_MS`), measured on a compact GRID
MBURST (``calibrated-quiet``, 100 bands, 2 channels, 32 embedding; n 16, n_conv 6; 100 consecutive
test frames at 40 ms; output windows re-binned for latencies 0-200 ms in 10 ms steps). A forward
synaptic current ``dI/dt = -I/tau_syn`` averages the presynaptic events of about ``tau_syn``; the
hidden convolutional ensembles fire at 1-4 Hz, so in one 40 ms frame a 6-cell ensemble emits less
than one event, and a short ``tau_syn`` passes that sampling noise on: output Pearson r against the
rate model (best latency) 0.30 / 0.39 / 0.57 / 0.79 / 0.82 / 0.79 / 0.76 for tau_syn 10 / 20 / 40 /
80 / 120 / 160 / 240 ms. 120 ms (three frames) is the best trade between that noise and the lag it
adds; its output r peaks at a latency of 40 ms (one frame; 0.78 at 0 ms, 0.77 at 80 ms). More cells
do not lift the 40 ms ceiling much (tau 80: n 64 for dense/output layers 0.81; n_conv 24: 0.80):
even the current-driven input layer follows a frame's rate only at r 0.83-0.85 (6 or 24 cells),
because a cell's response within 40 ms depends on its previous frames (membrane charging,
threshold and somatic adaptation of 27 and 100 ms), while the rate model's output changes from frame
to frame (lag-1 autocorrelation 0.72). Streamed at 350 ms per frame the same network reaches output
r 0.95 and hidden r >= 0.975 (40 frames, tau_syn 80 ms).

Re-measured on the whole circuit (``calibrated-circuit``, 128 cells per output unit, the same 100 frames; output
windows re-binned): with tau_syn 120 ms the output's r is 0.706 / 0.751 / 0.788 / 0.818 at latencies 0 / 40 / 80 /
160 ms, with 40 ms at best 0.755 (20 ms). 120 ms stays; 40 ms of latency keeps the stream one frame behind real
time, and ``--latency`` trades delay for fidelity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MODES", "TAU_SYN_MS", "LATENCY_MS", "FRAME_PERIOD_MS", "FrameSchedule", "layer_depths",
           "frame_schedule"]

MODES = ("stream", "settle")
FRAME_PERIOD_MS = 40.0
"""Default frame period of the stream (ms): the audio hop, so the network runs in real time."""
TAU_SYN_MS = {"stream": 120.0, "settle": 80.0}
"""Default time constant of the forward synaptic currents per mode (ms)."""
LATENCY_MS = 40.0
"""Default output latency of the stream (ms): the output window of frame k starts this long after its onset."""


@dataclass(frozen=True)
class FrameSchedule:
    """Input and read-out times of a run (ms).

    ``frame_ms``: frame ``k`` drives the inputs during ``[k frame_ms, (k+1) frame_ms)``; ``window_ms``:
    length of every read-out window; ``delay_ms``: per layer, where its window of frame ``k`` starts after
    ``k frame_ms``; ``output_delay_ms``: the deepest layer's delay; ``duration_ms``: the whole run;
    ``hold_last``: the inputs hold the last frame after it (stream) instead of falling to zero (settle).
    """

    frame_ms: float
    window_ms: float
    delay_ms: dict
    output_delay_ms: float
    duration_ms: float
    hold_last: bool

    def starts_s(self, n_frames: int, layer: str | None = None) -> np.ndarray:
        """Window starts (s), shape (n_frames,): of ``layer``, or of the deepest layer (the read-out) if None."""
        delay = self.output_delay_ms if layer is None else self.delay_ms[layer]
        return (np.arange(n_frames) * self.frame_ms + delay) * 1e-3


def layer_depths(layers) -> dict:
    """Synaptic depth of each layer: 1 for input layers (driven by currents), else 1 + the deepest source.

    Parameters
    ----------
    layers : sequence of circuits.ensembles.EnsembleLayer
        In forward order.

    Returns
    -------
    dict
        ``{name: depth}`` (int >= 1).
    """
    depth = {}
    for s in layers:
        depth[s.name] = 1 if s.is_input else 1 + max(depth[src] for src, _ in s.sources)
    return depth


def frame_schedule(config, layers, n_frames: int) -> FrameSchedule:
    """The schedule of ``n_frames`` frames through ``layers`` under ``config`` (see the module docstring).

    Parameters
    ----------
    config : circuits.ensembles.EnsembleConfig
        Mode and times (validated).
    layers : sequence of circuits.ensembles.EnsembleLayer
        In forward order.
    n_frames : int
        Frames.

    Returns
    -------
    FrameSchedule
    """
    frame, window, latency = config.t_frame_ms, config.count_window_ms, config.readout_latency_ms
    if config.mode == "settle":
        return FrameSchedule(frame, window, {s.name: latency for s in layers}, latency, n_frames * frame, False)
    depth = layer_depths(layers)
    deepest = max(depth.values())
    delays = {name: latency * d / deepest for name, d in depth.items()}
    return FrameSchedule(frame, window, delays, latency, (n_frames - 1) * frame + latency + window, True)
