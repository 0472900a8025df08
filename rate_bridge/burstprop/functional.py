"""Burstprop's pointwise equations as pure functions (Payeur et al. 2021; ``shared/design/reference.md`` s. 2).

Paper eqs. 1-8, per unit (convolutions replace products in convolutional layers):

* forward (eqs. 1-2): ``v_l = W_l e_{l-1} + c_l``, ``e_l = f(v_l)``;
* output layer (eq. 3): ``p_L = zeta(pbar_L - h(e_L) dL/de_L)``, ``zeta`` = clamp to [0, 1],
  ``h(e) = f'(v) / e``; the public-code MSE teaching rule ``p_t = pbar ((t - e)(1 - e) + 1)`` is
  ``teaching='mse'``: ``p_L = zeta(pbar (1 - h(e) dL/de))``, which equals it when the per-sample
  loss is ``0.5 sum (t - e)^2`` (then ``dL/de = e - t``) and f is a sigmoid;
* burst rates (eq. 4): ``b_l = p_l e_l`` (with teaching), ``bbar_l = pbar_l e_l`` (without);
* dendrites (eqs. 5-6): ``u_l = h(e_l) (Y_l b_{l+1})``, ``ubar_l = h(e_l) (Y_l bbar_{l+1})``;
* optional SOM-like recurrent weights Z_l: ``u = h(e)(Y b) - Z b_pre`` (see :func:`hidden_burst_probs`);
* burst probabilities (eq. 7): ``p_l = sigma(beta u_l + alpha)``, ``pbar_l = sigma(beta ubar_l + alpha)``;
* update (eq. 8): ``Delta W_l = Delta Y_l = -(b_l - bbar_l) e_{l-1}^T`` (applied in :mod:`.autograd`).

Precision.  ``p`` and ``pbar`` differ by far less than float32 resolves near sigma(alpha) (1e-8 to
1e-6 in the CPU-profile convolutions at beta 0.1), so ``b - bbar`` is never formed as a difference:
with ``y = beta ubar + alpha`` and ``dx = beta (u - ubar) = beta h(e) Y (b - bbar)``,
``sigma(y + dx) - sigma(y) = tanh(dx/2) (s0 + s1 - 2 s0 s1)`` with ``s0 = sigma(y)``,
``s1 = sigma(y + dx)`` (exact: ``s0 + s1 - 2 s0 s1 = s0 sigma(-y - dx) + s1 sigma(-y)``, a sum of
two positive terms, and ``tanh(dx/2) = expm1(dx) / (expm1(dx) + 2)``; :func:`sigmoid_step`), and at the output ``p_L - pbar_L = clamp(-h dL/de,
-pbar, 1 - pbar)``.  Subtracting instead turned the float32 update of a small network's first
convolution 35-43 degrees away from its float64 value (beta 0.1; tested).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from neurons.common import MburstError

TEACHING_RULES = ("gradient", "mse")


class Activation(NamedTuple):
    """A transfer function ``e = f(v)`` and its burstprop factor ``h(e) = f'(v) / e`` (eqs. 2, 5-6).

    ``fn`` must be differentiable by autograd (backprop mode).  ``h`` receives ``(e, v)``; ``v``
    is ``None`` unless ``needs_v`` (then v is kept for backward).  Optional speed-ups: ``fn_``
    computes f in place on v; ``dendrite(fb, fb_bar, e, out)`` writes ``h(e) fb`` and
    ``h(e) fb_bar`` into ``out[0]``, ``out[1]`` (its value at units with e = 0 may differ from 0,
    since their burst rate p e is 0 anyway).  The registry of named activations is
    :mod:`rate_bridge.burstprop.activations`.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    h: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    needs_v: bool = False
    fn_: Callable[[torch.Tensor], torch.Tensor] | None = None
    dendrite: Callable | None = None


@dataclass(frozen=True)
class BurstParams:
    """Constants of the burstprop rule.

    Parameters
    ----------
    pbar_out : float
        Reference output burst probability pbar_L in (0, 1) (paper: 0.2).
    beta, alpha : float
        Slope and offset of ``p = sigma(beta u + alpha)`` (eq. 7; reference 1, 0).
    teaching : {'gradient', 'mse'}
        ``p_L = zeta(pbar - h dL/de)`` (eq. 3) or the public code's ``p_t``.
    batch_mean : bool
        The loss averages over the batch (the per-sample gradient is then ``n dL/de``).
    z_lr : float
        Learning rate of the recurrent weights Z (public default 1e-4), >= 0.

    Raises
    ------
    MburstError
        ``pbar_out`` outside (0, 1), an unknown ``teaching`` rule or a negative ``z_lr``.
    """

    pbar_out: float = 0.2
    beta: float = 1.0
    alpha: float = 0.0
    teaching: str = "gradient"
    batch_mean: bool = True
    z_lr: float = 1e-4

    def __post_init__(self):
        if not 0.0 < self.pbar_out < 1.0:
            raise MburstError(f"pbar must lie in (0, 1), got {self.pbar_out}")
        if self.teaching not in TEACHING_RULES:
            raise MburstError(f"teaching must be one of {TEACHING_RULES}, got '{self.teaching}'")
        if self.z_lr < 0:
            raise MburstError(f"z_lr must be >= 0, got {self.z_lr}")


class LayerState(NamedTuple):
    """Per-layer rates after a burstprop step (detached), all shaped like the layer's output [B, ...].

    ``e``: event rate; ``bbar``: no-teaching burst rate (eq. 4); ``d = b - bbar``: the
    teaching-induced change (the learning signal, eq. 8).  ``b = bbar + d`` and the burst
    probabilities ``p = b / e``, ``pbar = bbar / e`` are derived on demand; at silent units (e = 0,
    where h(e) = 0) p and pbar are ``p_silent``: sigma(alpha) for hidden layers (u = 0) and
    pbar_L for the output layer.
    """

    e: torch.Tensor
    bbar: torch.Tensor
    d: torch.Tensor
    p_silent: float

    @property
    def b(self) -> torch.Tensor:
        return self.bbar + self.d

    def _ratio(self, rate):
        active = self.e > 0
        return torch.where(active, rate / torch.where(active, self.e, torch.ones_like(self.e)),
                           torch.full_like(self.e, self.p_silent))

    @property
    def p(self) -> torch.Tensor:
        return self._ratio(self.b)

    @property
    def pbar(self) -> torch.Tensor:
        return self._ratio(self.bbar)


def output_burst_change(e: torch.Tensor, h: torch.Tensor, grad_e: torch.Tensor, params: BurstParams) -> torch.Tensor:
    """The output layer's ``p_L - pbar_L`` (eq. 3), never formed as a difference.

    ``p_L = zeta(pbar - h(e) dL/de)`` ('gradient') or ``zeta(pbar (1 - h(e) dL/de))`` ('mse'), so
    ``p_L - pbar_L = clamp(-h dL/de, -pbar, 1 - pbar)`` (times pbar for 'mse').

    Parameters
    ----------
    e : Tensor [B, n]
        Output event rates (dimensionless, in [0, 1] for a sigmoid).
    h : Tensor [B, n]
        ``h(e) = f'(v) / e``.
    grad_e : Tensor [B, n]
        The per-sample gradient dL/de.  Where h = 0 (saturated sigmoid, silent ReLU) the product
        ``h dL/de`` is 0 even if dL/de is infinite.
    params : BurstParams

    Returns
    -------
    Tensor [B, n]
        ``p_L - pbar_L``, in ``[-pbar, 1 - pbar]``.
    """
    hg = torch.where(h == 0, torch.zeros((), dtype=e.dtype, device=e.device), h * grad_e)
    change = hg.neg_() if params.teaching != "mse" else hg.mul_(-params.pbar_out)
    return change.clamp_(-params.pbar_out, 1.0 - params.pbar_out)


def output_burst_prob(e: torch.Tensor, h: torch.Tensor, grad_e: torch.Tensor, params: BurstParams) -> torch.Tensor:
    """The output burst probability ``p_L = pbar_L + p_L - pbar_L`` (eq. 3).

    Parameters and shapes as :func:`output_burst_change`.

    Returns
    -------
    Tensor [B, n]
        p_L in [0, 1].
    """
    return output_burst_change(e, h, grad_e, params).add_(params.pbar_out)


def _sigmoid_step_(dx: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
    """In place, given ``s0 = sigma(y)``, ``s1 = sigma(y + dx)``: ``dx <- e (s1 - s0)`` computed as
    ``e tanh(dx/2) (s0 + s1 - 2 s0 s1)``, ``tanh(dx/2) = w / (w + 2)`` with ``w = expm1(dx)`` (dx
    clamped to +-40, where tanh(20) is 1 in float32 and float64).  ``s1`` is overwritten, and so is
    ``s0`` (with ``e s0``) when ``e`` is given."""
    s1.addcmul_(s1, s0, value=-2.0)  # s1 (1 - 2 s0)
    q = s1.add_(s0) if e is None else torch.addcmul(s0.mul_(e), s1, e, out=s1)  # (e) (s0 + s1 - 2 s0 s1)
    w = dx.clamp_(-40.0, 40.0).expm1_()  # expm1: several times cheaper than tanh on the CPU
    return torch.div(q.mul_(w), w.add_(2.0), out=dx)


def sigmoid_step(y: torch.Tensor, dx: torch.Tensor, s0: torch.Tensor | None = None) -> torch.Tensor:
    """``sigma(y + dx) - sigma(y)`` without cancellation (the hidden ``p - pbar``, eq. 7).

    Computed as ``tanh(dx/2) (s0 + s1 - 2 s0 s1)`` with ``s0 = sigma(y)``, ``s1 = sigma(y + dx)``:
    exact, free of cancellation when ``|dx|`` is far below float resolution at sigma(y), and finite
    for any arguments (``tanh`` is in [-1, 1], the bracket in [0, 1]); only a saturated dendrite
    (s0, s1 both within float resolution of 1) loses relative precision.

    Parameters
    ----------
    y : Tensor
        ``beta ubar + alpha`` (dimensionless).
    dx : Tensor
        ``beta (u - ubar)``, same shape as y.
    s0 : Tensor, optional
        ``sigma(y)`` when already known.

    Returns
    -------
    Tensor
        ``sigma(y + dx) - sigma(y)``, in (-1, 1).
    """
    s0 = torch.sigmoid(y) if s0 is None else s0
    return _sigmoid_step_(dx.clone(), s0, torch.add(y, dx).sigmoid_())


def burst_rates_(dx: torch.Tensor, y: torch.Tensor, e: torch.Tensor, scratch: torch.Tensor | None = None) -> None:
    """In place: dendritic drives -> burst rates of a hidden layer (eqs. 4, 7).

    Parameters
    ----------
    dx : Tensor [B, ...]
        ``beta (u - ubar)``, overwritten with ``b - bbar = e (sigma(y + dx) - sigma(y))``.
    y : Tensor [B, ...]
        ``beta ubar + alpha``, overwritten with ``bbar = e sigma(y)`` (rates in units of e).
    e : Tensor [B, ...]
        The layer's event rates.
    scratch : Tensor [B, ...], optional
        A contiguous tensor shaped like e whose values are no longer needed: overwritten instead of
        allocating a temporary.
    """
    s1 = torch.add(y, dx, out=scratch).sigmoid_() if scratch is not None else torch.add(y, dx).sigmoid_()
    _sigmoid_step_(dx, y.sigmoid_(), s1, e)


def hidden_burst_probs(h: torch.Tensor, fb: torch.Tensor, fb_bar: torch.Tensor, params: BurstParams,
                       e: torch.Tensor | None = None, z: torch.Tensor | None = None):
    """Hidden burst probabilities with optional SOM-like recurrent weights Z (eqs. 5-7).

    ``u = h(e) (Y b) [- Z b_pre]``, ``p = sigma(beta u + alpha)``; likewise ``ubar``, ``pbar`` with
    ``Y bbar``.  reference.md leaves ``b_pre`` open; we read it as the layer's own burst rate
    before recurrent inhibition (the within-layer pyr -> SOM -> dendrite loop of the
    microcircuit): ``b_pre = sigma(beta u0 + alpha) e`` with ``u0 = h(e) (Y b)`` (likewise
    ``bbar_pre`` from ``ubar0``), applied once.

    Parameters
    ----------
    h : Tensor [B, n]
        ``h(e) = f'(v) / e``.
    fb, fb_bar : Tensor [B, n]
        ``Y b`` and ``Y bbar`` from the layer above.
    params : BurstParams
    e : Tensor [B, n], optional
        Event rates; required with ``z``.
    z : Tensor [n, n], optional
        Recurrent weights.

    Returns
    -------
    tuple of Tensor [B, n]
        ``(p, pbar, ubar, bbar_pre)``; ``bbar_pre`` is None without ``z``.
    """
    u = h * fb
    ubar = h * fb_bar
    bbar_pre = None
    if z is not None:
        b_pre = _sigma(u, params) * e
        bbar_pre = _sigma(ubar, params) * e
        u = u - b_pre @ z.t()
        ubar = ubar - bbar_pre @ z.t()
    return _sigma(u, params), _sigma(ubar, params), ubar, bbar_pre


def _sigma(u: torch.Tensor, params: BurstParams) -> torch.Tensor:
    """sigma(beta u + alpha), skipping the affine map at the defaults (beta 1, alpha 0)."""
    if params.beta == 1.0 and params.alpha == 0.0:
        return torch.sigmoid(u)
    return torch.sigmoid(u * params.beta + params.alpha)
