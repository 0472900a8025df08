"""Tsodyks-Markram efficacies: the closed-form recursion and the Brian2 measurement.

For a regular train with inter-spike interval Delta (reference.md section 3;
Tsodyks & Markram 1997), the efficacy of spike n is ``u_n x_n`` with
``x_1 = 1, u_1 = U`` and::

    x_{n+1} = 1 - (1 - (x_n - u_n x_n)) exp(-Delta/tau_D)
    u_{n+1} = U + (u_n + f (1 - u_n) - U) exp(-Delta/tau_F)

:func:`simulate_efficacies` measures the same numbers from a
:func:`neurons.synapses.connect` synapse driven by spike generators.
"""
from __future__ import annotations

import numpy as np

from .common import MburstError
from .params import STPParams

__all__ = ["tm_efficacies", "simulate_efficacies", "paired_pulse_ratio"]


def tm_efficacies(params: STPParams, isi_s: float, n_spikes: int) -> np.ndarray:
    """Efficacies u x (before each update) of ``n_spikes`` regular spikes ``isi_s`` seconds apart.

    The closed-form Tsodyks & Markram 1997 recursion of the module docstring.

    Parameters
    ----------
    params : STPParams
        tau_D, tau_F (s), U, f.
    isi_s : float (s)
        Inter-spike interval.
    n_spikes : int
        Number of spikes.

    Returns
    -------
    numpy.ndarray, shape (n_spikes,)
        Efficacies u_n x_n (dimensionless).

    Raises
    ------
    MburstError
        If ``params`` is invalid, ``isi_s <= 0`` or ``n_spikes < 1``.
    """
    from brian2 import second

    params.validate()
    if not isi_s > 0 or n_spikes < 1:
        raise MburstError(f"tm_efficacies: isi_s={isi_s} must be > 0 and n_spikes={n_spikes} >= 1")
    tau_d, tau_f = float(params.tau_D / second), float(params.tau_F / second)
    x, u, out = 1.0, float(params.U), []
    for _ in range(n_spikes):
        out.append(u * x)
        x, u = x - u * x, u + params.f * (1 - u)
        x = 1 - (1 - x) * np.exp(-isi_s / tau_d)
        u = params.U + (u - params.U) * np.exp(-isi_s / tau_f)
    return np.array(out)


def paired_pulse_ratio(efficacies: np.ndarray) -> float:
    """Second efficacy over the first.

    Parameters
    ----------
    efficacies : numpy.ndarray, shape (n_spikes,), n_spikes >= 2
        Efficacies of a train (e.g. from :func:`tm_efficacies`).

    Returns
    -------
    float
        ``efficacies[1] / efficacies[0]`` (dimensionless).
    """
    return float(efficacies[1] / efficacies[0])


def simulate_efficacies(params: STPParams, rates_hz=(5, 20, 50), n_spikes: int = 8, target: str = "numpy",
                        onset_ms: float = 10.0) -> dict:
    """Drive one STP synapse per rate with a regular train; return ``{rate: (spike_times_s, u x)}``.

    Rates must give ISIs on the 0.1 ms grid. The synapse targets a pyramidal
    dendrite (any target works: the efficacy does not depend on it).

    Parameters
    ----------
    params : STPParams
        The STP parameters (Tsodyks & Markram 1997).
    rates_hz : sequence of float (Hz), optional
        Train rates.
    n_spikes : int, optional
        Spikes per train.
    target : str, optional
        Brian2 code-generation target (see :func:`neurons.device.use_target`).
    onset_ms : float (ms), optional
        Time of each train's first spike.

    Returns
    -------
    dict of float -> (numpy.ndarray, numpy.ndarray)
        Per rate (Hz): spike times (s) and measured efficacies, each shape (n_spikes,).

    Raises
    ------
    MburstError
        If a rate is not positive, an ISI is off the 0.1 ms grid, ``params``
        is invalid, or ``target`` is unavailable.
    """
    from brian2 import Network, SpikeGeneratorGroup, StateMonitor, defaultclock, ms

    from .device import use_target
    from .pyramidal import pyramidal_group
    from .synapses import connect

    rates = [float(r) for r in rates_hz]
    if not rates or min(rates) <= 0:
        raise MburstError(f"simulate_efficacies: rates_hz={rates_hz!r} must be positive")
    use_target(target, tag="stp")
    defaultclock.dt = 0.1 * ms
    idx, times = [], []
    for k, rate in enumerate(rates):
        isi = 1000.0 / rate
        if abs(isi * 10 - round(isi * 10)) > 1e-9:
            raise MburstError(f"simulate_efficacies: rate {rate} Hz gives an ISI off the 0.1 ms grid")
        idx += [k] * n_spikes
        times += [onset_ms + isi * m for m in range(n_spikes)]
    pre = SpikeGeneratorGroup(len(rates), np.array(idx), np.array(times) * ms, name="stp_trains")
    post = pyramidal_group(1, name="stp_post")
    syn = connect(pre, post, params, target="dendrite", i=range(len(rates)), j=[0] * len(rates),
                  weight=0.1, name="stp_synapses")
    mon = StateMonitor(syn, "eff", record=True, when="end", name="stp_eff")
    Network(pre, post, syn, mon).run((max(times) + 1.0) * ms, namespace={})
    steps = np.round(np.asarray(mon.t / ms) * 10).astype(int)
    eff = np.asarray(mon.eff)
    idx, times = np.array(idx), np.array(times)
    out = {}
    for k, rate in enumerate(rates):
        spike_steps = np.round(times[idx == k] * 10).astype(int)
        out[rate] = (times[idx == k] / 1000.0, eff[k][np.searchsorted(steps, spike_steps)])
    return out
