"""XOR learned by a spiking network with burst-dependent plasticity (Payeur et al. 2021, Fig. 4).

Populations:

- inputs X1, X2 (``n`` cells each): :func:`~circuits.burst_sources.event_source_group`,
  Poisson events at ``rate_on`` (input bit 1) or ``rate_off`` (bit 0);
- hidden H (``n_hidden`` cells) and output O (``n`` cells): the simplified burst
  neuron of :func:`~circuits.burst_sources.simple_burst_group` (no
  dendrite-to-soma coupling; burst probability sigma((v_d + 57 mV)/6 mV) at each
  event, a burst adds one spike 5-15 ms later).

Pathways:

- feedforward X -> H and H -> O: events onto the soma, plastic under the
  burst-dependent rule of :mod:`circuits.plasticity` (Payeur: eta 8e-3 and
  4e-3 for 8 s presentations; here scaled by 8 s / ``t_present``). The rule
  keeps w in [0, 1]; each synapse injects a current ``(w - w_balance) J`` into
  ``I_ff_s``, i.e. a plastic excitatory synapse plus a fixed inhibitory one from
  the same cell, so a connection can act with either sign.
- feedback O -> H: output *bursts* onto the hidden dendrites (excitatory, fixed,
  conductance ``g_fb``); they carry the credit signal, so a hidden cell's burst
  probability rises when the output is taught up and falls when taught down.
- teacher: during the last ``learn_fraction`` of each presentation a current
  into each output dendrite ``I = I_max clip((r_target - r_est)/r_scale, -1, 1)``
  (``I_max`` = 1000 pA; ``r_est``: the cell's own event rate low-passed with
  ``rate_tau``), and plasticity is on (``learning_gate``). During the first
  part (prediction) plasticity is off; the moving averages Ebar, Bbar always run.

Deviations from Payeur (stated in the report): population sizes (default
n = 100, n_hidden = 200 instead of 500), presentation time (default 2 s instead
of 8 s) with the averaging window (0.3 s instead of 2 s) and learning rates
scaled to it (input->hidden 8e-3 x 4; hidden->output 4e-3 x 8, the latter doubled
again because the output's event rate, and so its learning, is low), one hidden population, signed current-based feedforward weights,
and an error-scaled teacher (the spiking analogue of the rate code's output
teaching signal) rather than a fixed-size one.

Accuracy: the output's event rate in the prediction phase of each presentation
is read as 1 when above ``(rate_hi + rate_lo)/2``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from brian2 import Hz, Quantity, TimedArray, ms, nS, pA, second

from neurons.common import MburstError
from neurons.params import check_count, check_nonnegative, check_probability, check_quantity

from .plasticity import BurstPlasticityParams

__all__ = ["XORConfig", "PATTERNS", "TARGETS", "run_xor", "schedule"]

PATTERNS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
TARGETS = np.array([0, 1, 1, 0])


@dataclass(frozen=True)
class XORConfig:
    """All parameters of the XOR experiment (see the module docstring)."""

    n: int = 100
    n_hidden: int = 200
    p: float = 0.2
    epochs: int = 40
    t_present: Quantity = field(default_factory=lambda: 2 * second)
    learn_fraction: float = 0.1
    rate_on: Quantity = field(default_factory=lambda: 40 * Hz)
    rate_off: Quantity = field(default_factory=lambda: 2 * Hz)
    rate_hi: Quantity = field(default_factory=lambda: 25 * Hz)
    rate_lo: Quantity = field(default_factory=lambda: 5 * Hz)
    r_scale: Quantity = field(default_factory=lambda: 10 * Hz)
    rate_tau: Quantity = field(default_factory=lambda: 500 * ms)
    teach_max: Quantity = field(default_factory=lambda: 1000 * pA)
    eta_ih: float = 8e-3 * 4
    eta_ho: float = 4e-3 * 8
    tau_avg: Quantity = field(default_factory=lambda: 300 * ms)
    tau_pre: Quantity = field(default_factory=lambda: 100 * ms)
    j_ih: Quantity = field(default_factory=lambda: 250 * pA)
    j_ho: Quantity = field(default_factory=lambda: 400 * pA)
    w_balance: float = 0.5
    w_init_lo: float = 0.3
    w_init_hi: float = 0.7
    g_fb: Quantity = field(default_factory=lambda: 8 * nS)
    bias_soma_h: Quantity = field(default_factory=lambda: 420 * pA)
    bias_soma_o: Quantity = field(default_factory=lambda: 420 * pA)
    bias_dend_h: Quantity = field(default_factory=lambda: 196 * pA)
    bias_dend_o: Quantity = field(default_factory=lambda: 316 * pA)
    noise_rate: Quantity = field(default_factory=lambda: 500 * Hz)
    noise_weight: Quantity = field(default_factory=lambda: 2 * nS)
    dt: Quantity = field(default_factory=lambda: 0.2 * ms)
    target: str = "cpp_standalone"
    threads: int = 0

    def validate(self) -> "XORConfig":
        o = "XORConfig"
        for name in ("n", "n_hidden", "epochs"):
            check_count(o, name, getattr(self, name))
        for name in ("p", "learn_fraction", "w_balance", "w_init_lo", "w_init_hi"):
            check_probability(o, name, getattr(self, name))
        if not 0 < self.learn_fraction < 1:
            raise MburstError(f"{o}.learn_fraction={self.learn_fraction!r} must lie strictly between 0 and 1")
        if self.w_init_hi < self.w_init_lo:
            raise MburstError(f"{o}: w_init_hi must be >= w_init_lo")
        for name in ("eta_ih", "eta_ho"):
            check_nonnegative(o, name, getattr(self, name))
        for name in ("t_present", "rate_tau", "tau_avg", "tau_pre", "dt"):
            check_quantity(o, name, getattr(self, name), second, positive=True)
        for name in ("rate_on", "rate_off", "rate_hi", "rate_lo", "noise_rate"):
            check_quantity(o, name, getattr(self, name), Hz, nonnegative=True)
        check_quantity(o, "r_scale", self.r_scale, Hz, positive=True)
        for name in ("g_fb", "noise_weight"):
            check_quantity(o, name, getattr(self, name), nS, nonnegative=True)
        for name in ("j_ih", "j_ho"):
            check_quantity(o, name, getattr(self, name), pA, nonnegative=True)
        for name in ("teach_max", "bias_soma_h", "bias_soma_o", "bias_dend_h", "bias_dend_o"):
            check_quantity(o, name, getattr(self, name), pA)
        if self.rate_hi <= self.rate_lo:
            raise MburstError(f"{o}: rate_hi={self.rate_hi!r} must exceed rate_lo={self.rate_lo!r}")
        if self.target not in ("numpy", "cython", "cpp_standalone"):
            raise MburstError(f"{o}.target={self.target!r}; expected numpy, cython or cpp_standalone")
        return self


def schedule(config: XORConfig, rng: np.random.Generator) -> np.ndarray:
    """Pattern index per presentation: each epoch shows the 4 patterns once, in random order.

    Parameters
    ----------
    config : XORConfig
        Gives ``epochs``.
    rng : numpy.random.Generator
        Draws the permutations.

    Returns
    -------
    numpy.ndarray of int, shape (4 * epochs,)
        Indices into :data:`PATTERNS`.
    """
    return np.concatenate([rng.permutation(4) for _ in range(config.epochs)])


def run_xor(config: XORConfig | None = None, seed: int = 0, tag: str = "xor", progress: bool = True) -> dict:
    """Train the XOR network (Payeur et al. 2021, Fig. 4) from a random start; return per-presentation rates and accuracy.

    Parameters
    ----------
    config : XORConfig, optional
        Default ``XORConfig()``.
    seed : int, optional
        Seed of Brian2 and of the schedule.
    tag : str, optional
        Prefix of the standalone build folder.
    progress : bool, optional
        Text progress report.

    Returns
    -------
    dict
        ``order`` (pattern per presentation), ``out_rate`` / ``hidden_rate``
        (prediction-phase event rates, Hz per neuron), ``correct`` (per presentation),
        each shape (4 * epochs,); ``epoch_accuracy`` shape (epochs,); ``final_rates``
        (mean output rate per pattern over the last 5 epochs, or fewer; Hz) and
        ``final_correct`` (per pattern), shape (4,); ``solved``, ``threshold_hz``,
        ``weights_mean``, ``simulated_s``, ``wall_s``, ``spikes``, ``events``,
        ``bursts``, ``n_neurons``, ``n_synapses``, ``config``, ``seed``, ``target``.

    Raises
    ------
    MburstError
        If ``config`` is invalid, ``1/learn_fraction`` is not an integer, or the
        target is unavailable.
    """
    config = (config or XORConfig()).validate()
    from brian2 import Network, PoissonInput, SpikeMonitor, Synapses, defaultclock, seed as brian_seed

    from neurons.device import last_build_timers, use_target

    from .burst_sources import event_source_group, simple_burst_group
    from .plasticity import burst_plastic_synapses

    target = use_target(config.target, threads=config.threads, tag=f"{tag}_n{config.n}")
    defaultclock.dt = config.dt
    brian_seed(seed)
    rng = np.random.default_rng(seed)
    order = schedule(config, rng)
    n_pres = len(order)
    T = float(config.t_present / second)
    t_learn = config.learn_fraction * T
    step = t_learn  # the schedule's resolution: presentations are whole multiples of the learning window
    per = int(round(T / step))
    if abs(per * step - T) > 1e-9:
        raise MburstError(f"XORConfig: 1/learn_fraction = {T / step:.3f} must be an integer")
    bits = PATTERNS[order]
    on, off = float(config.rate_on / Hz), float(config.rate_off / Hz)
    x1 = np.repeat(np.where(bits[:, 0] == 1, on, off), per)
    x2 = np.repeat(np.where(bits[:, 1] == 1, on, off), per)
    tgt = np.repeat(np.where(TARGETS[order] == 1, float(config.rate_hi / Hz), float(config.rate_lo / Hz)), per)
    gate = np.tile(np.r_[np.zeros(per - 1), 1.0], n_pres)
    ta_gate = TimedArray(gate, dt=step * second)

    n = config.n
    X1 = event_source_group(n, rate=0 * Hz, p_burst=0.0, name="X1")
    X2 = event_source_group(n, rate=0 * Hz, p_burst=0.0, name="X2")
    for grp, rates_in in ((X1, x1), (X2, x2)):
        grp.run_regularly("rate_e = x_rate(t)", when="start")
        grp.namespace["x_rate"] = TimedArray(rates_in * Hz, dt=step * second)
    H = simple_burst_group(config.n_hidden, name="H")
    O = simple_burst_group(n, name="O", rate_tau=config.rate_tau)
    objects = [X1, X2, H, O]
    H.I_ext_s = config.bias_soma_h
    H.I_ext_d = config.bias_dend_h
    O.I_ext_s = config.bias_soma_o
    O.run_regularly("I_ext_d = bias_d_o + teach_gate(t)*teach_max*clip((r_target(t) - r_est)/r_scale, -1, 1)",
                    dt=1 * ms)
    O.namespace.update(bias_d_o=config.bias_dend_o, teach_gate=ta_gate, teach_max=config.teach_max,
                       r_target=TimedArray(tgt * Hz, dt=step * second), r_scale=config.r_scale)
    for grp in (H, O):
        objects.append(PoissonInput(grp, "g_ampa_s", N=1, rate=config.noise_rate, weight=config.noise_weight))
        objects.append(PoissonInput(grp, "g_gaba_s", N=1, rate=config.noise_rate, weight=config.noise_weight))

    plastic_syns = []
    for pre, post, eta, j_max in ((X1, H, config.eta_ih, config.j_ih), (X2, H, config.eta_ih, config.j_ih),
                                  (H, O, config.eta_ho, config.j_ho)):
        params = BurstPlasticityParams(eta=eta, tau_pre=config.tau_pre, tau_avg=config.tau_avg, e0=10 * Hz, p0=0.5)
        plastic_syns.append(burst_plastic_synapses(
            pre, post, params, target_var="I_ff_s", g_max=j_max, w_offset=config.w_balance, transmit="event",
            p=config.p, gate=ta_gate, name=f"{pre.name}_{post.name}",
            w_init=f"{config.w_init_lo} + {config.w_init_hi - config.w_init_lo}*rand()"))
    fb = Synapses(O, H, on_pre="g_ampa_d_post += g_fb", on_event={"pre": "burst"},
                  namespace={"g_fb": config.g_fb}, name="O_H_fb")
    fb.connect(p=config.p)
    objects += plastic_syns + [fb]
    groups = {"X1": X1, "X2": X2, "H": H, "O": O}
    mons = {name: SpikeMonitor(grp, name=f"mon_{name}") for name, grp in groups.items()}
    net = Network(*objects, *mons.values())
    total = n_pres * T
    wall0 = time.perf_counter()
    net.run(total * second, report="text" if progress else None, report_period=30 * second, namespace={})
    wall = time.perf_counter() - wall0

    def rates(name) -> np.ndarray:
        """Event rate per presentation over its prediction phase (Hz per neuron)."""
        mon = mons[name]
        t = np.asarray(mon.t[:] / second)
        k = np.minimum(np.floor(t / T).astype(int), n_pres - 1)
        in_pred = (t - k * T) < (T - t_learn)
        counts = np.bincount(k[in_pred], minlength=n_pres)[:n_pres]
        return counts / (len(groups[name]) * (T - t_learn))

    out = rates("O")
    thr = 0.5 * float((config.rate_hi + config.rate_lo) / Hz)
    correct = (out > thr).astype(int) == TARGETS[order]
    epoch_acc = correct.reshape(config.epochs, 4).mean(axis=1)
    last = min(5, config.epochs)
    sel = np.arange(n_pres) >= (config.epochs - last) * 4
    final_rates = np.array([out[sel & (order == k)].mean() for k in range(4)])
    final_correct = (final_rates > thr).astype(int) == TARGETS
    events = int(sum(m.num_spikes for m in mons.values()))
    bursts = int(sum(np.sum(g.n_bursts[:]) for g in groups.values()))
    result = {
        "config": {k: (str(v) if isinstance(v, Quantity) else v) for k, v in asdict(config).items()},
        "seed": seed, "target": target, "order": order, "out_rate": out, "hidden_rate": rates("H"),
        "correct": correct, "epoch_accuracy": epoch_acc, "threshold_hz": thr,
        "final_rates": final_rates, "final_correct": final_correct, "solved": bool(final_correct.all()),
        "weights_mean": {s.name: float(np.mean(s.w[:])) for s in plastic_syns},
        "simulated_s": total, "wall_s": wall, "spikes": events + bursts, "events": events, "bursts": bursts,
        "n_neurons": 3 * n + config.n_hidden, "n_synapses": int(sum(len(o) for o in objects if isinstance(o, Synapses))),
    }
    if target == "cpp_standalone":
        result["build_timers"] = last_build_timers()
    return result
