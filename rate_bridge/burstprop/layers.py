"""Rate-based burst propagation (burstprop) layers wired into torch autograd.

Equations (paper eqs. 1-8; Payeur et al. 2021; ``shared/design/reference.md`` s. 2):

* forward: ``v_l = W_l e_{l-1} + c_l``, ``e_l = f(v_l)`` (convolutions replace products);
* output layer: ``p_L = zeta(pbar_L - h(e_L) dL/de_L)``, ``zeta`` = clamp to [0, 1],
  ``h(e) = f'(v) / e`` (sigmoid: ``1 - e``; ReLU: ``1/e`` where ``e > 0``, else 0);
  the public-code MSE teaching rule ``p_t = pbar ((t - e)(1 - e) + 1)`` is
  ``teaching='mse'``: ``p_L = zeta(pbar (1 - h(e) dL/de))``, which equals it when the
  per-sample loss is ``0.5 sum (t - e)^2`` (then ``dL/de = e - t``) and f is a sigmoid;
* burst rates ``b_l = p_l e_l`` (with teaching), ``bbar_l = pbar_l e_l`` (without);
* dendrites ``u_l = h(e_l) (Y_l b_{l+1})``, ``ubar_l = h(e_l) (Y_l bbar_{l+1})``, with
  ``Y_l b_{l+1}`` a transposed convolution for convolutional layers;
* optional SOM-like recurrent weights Z_l (dense layers only, off by default):
  ``u = h(e)(Y b) - Z b_pre``.  reference.md leaves ``b_pre`` open; we read it as the
  layer's own burst rate before recurrent inhibition (the within-layer pyr -> SOM ->
  dendrite loop of the microcircuit): ``b_pre = sigma(beta u0 + alpha) e`` with
  ``u0 = h(e)(Y b)`` (likewise ``bbar_pre`` from ``ubar0``), applied once.  Z [n, n]
  ~ U(+-0.01) descends ``0.5 |ubar|^2``: ``Z += z_lr mean_batch(ubar bbar_pre^T)``
  (z_lr 1e-4), during backward, in training mode only.  It learns on the no-teaching
  pass, so it removes the baseline drive and keeps pbar near 0.5;
* ``p_l = sigma(beta u_l + alpha)``, ``pbar_l = sigma(beta ubar_l + alpha)`` (beta 1, alpha 0);
* update ``Delta W_l = Delta Y_l = -(b_l - bbar_l) e_{l-1}^T`` (bias: ``-(b_l - bbar_l)``).

Sign convention (what lands in ``.grad``).  The update is applied by a torch
optimiser, which *descends* along ``.grad``.  We store
``W.grad = Y.grad = -(1/n) sum_samples (b - bbar) e_pre^T`` (``n`` = batch size when
the loss averages over the batch, ``BurstParams.batch_mean``), so the optimiser step
``W -= lr * grad`` *potentiates* synapses whose post-synaptic bursts exceed their
no-teaching average.  With the MSE teaching rule ``b - bbar = pbar (t - e) e (1 - e) =
-pbar dL/dv``, hence ``W.grad = pbar dL/dW`` exactly (tested); with the default
``teaching='gradient'`` and no clamping, ``b - bbar = -dL/dv`` and ``W.grad = dL/dW``
at the output layer.  (reference.md's "put -Delta W into .grad" would flip this sign
and make the optimiser ascend the loss; we follow the derivation above.)

Batch convention.  Autograd hands the output layer ``dL/de`` of the *batch* loss.  The
teaching signal needs the per-sample gradient, so it is multiplied by ``n`` (the
loss is assumed to be a mean over the batch; set ``batch_mean=False`` for a sum) and
the weight updates are averaged over the batch with the same ``1/n``.  A loss that also
averages over the output units (e.g. BCE mean over bins) makes the per-unit teaching
term ``h(e) dL/de`` correspondingly small, so p_L stays near pbar_L (no clamping).

How the two top-down signals travel.  Autograd's gradient channel carries the
teaching-induced change ``Y (b - bbar)`` between layers; the no-teaching signal
``Y bbar`` travels beside it in a per-forward :class:`BurstPass` (keys stored on the
activation tensors).  ``Y b`` is their sum.

Precision.  ``p`` and ``pbar`` differ by far less than float32 resolves near
sigma(alpha) (1e-8 to 1e-6 in the CPU-profile convolutions at beta 0.1), so
``b - bbar`` is never formed as a difference: with ``y = beta ubar + alpha`` and
``dx = beta (u - ubar) = beta h(e) Y (b - bbar)``,
``sigma(y + dx) - sigma(y) = sign(dx) (1 - exp(-|dx|)) sigma(hi) sigma(-lo)`` (exact; hi/lo the
larger/smaller of y and y + dx; :func:`sigmoid_step`), and at the
output ``p_L - pbar_L = zeta(pbar - h dL/de) - pbar = clamp(-h dL/de, -pbar, 1 - pbar)``.
Subtracting instead turned the float32 update of a small network's first convolution
35-43 degrees away from its float64 value (beta 0.1; tested).

Between burstprop layers only :meth:`BurstPass.flatten` and :meth:`BurstPass.cat` may
be used (they route both signals); anything else that feeds a hidden burstprop layer's
output would add its own gradient to the teaching signal.

Cost.  Burstprop needs both ``Y b`` and ``Y bbar`` at every layer that has a layer
below, so its input-side projections are done twice where backprop does them once
(the weight updates and the forward pass cost the same).  Convolutions use one fused
``convolution_backward`` for ``Y^T (b - bbar)`` plus the weight update and one more
for ``Y^T bbar``; dense layers project ``[b - bbar; bbar]`` stacked in one matmul.

Feedback weights.  ``feedback='tied'`` uses ``Y = W`` (one tensor).  Because
``Delta Y = Delta W`` and the optimiser sees identical gradients, a separately stored
Y initialised equal to W (``'symmetric'``) stays equal to W for ever (tested), so
'tied' is the same learning rule without the copy.  ``'random'`` stores an
independently initialised Y that is learned the same way.

Pure functions (``h_of_e``, ``output_burst_prob``, ``hidden_burst_probs``,
``burst_linear``, ``burst_conv2d``) hold the maths; :class:`BurstLinear` and
:class:`BurstConv2d` are thin ``nn.Module`` wrappers with a
``learning_rule`` switch (``'burstprop'`` or ``'backprop'``).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from neurons.common import MburstError

LEARNING_RULES = ("burstprop", "backprop")
FEEDBACK_MODES = ("tied", "symmetric", "random")
TEACHING_RULES = ("gradient", "mse")


# --------------------------------------------------------------------------- activations
class Activation(NamedTuple):
    """A transfer function e = f(v) and its burstprop factor h(e) = f'(v) / e.

    ``fn`` must be differentiable by autograd (backprop mode).  ``h`` receives
    ``(e, v)``; ``v`` is ``None`` unless ``needs_v`` (then v is kept for backward).
    Optional speed-ups: ``fn_`` computes f in place on v; ``dendrite(fb, fb_bar, e, out)``
    writes ``h(e) fb`` and ``h(e) fb_bar`` into ``out[0]``, ``out[1]`` (its value at
    units with e = 0 may differ from 0, since their burst rate p e is 0 anyway).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    h: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    needs_v: bool = False
    fn_: Callable[[torch.Tensor], torch.Tensor] | None = None
    dendrite: Callable | None = None


def _safe_reciprocal_where_positive(e: torch.Tensor) -> torch.Tensor:
    """1/e where e > 0, else 0; e is floored at sqrt(tiny) so h*x cannot overflow to inf*0."""
    floor = math.sqrt(torch.finfo(e.dtype).tiny)
    return torch.where(e > 0, e.clamp_min(floor).reciprocal(), torch.zeros((), dtype=e.dtype, device=e.device))


def _relu_h(e, v):
    return _safe_reciprocal_where_positive(e)


def _relu_dendrite(fb, fb_bar, e, out):
    # u = fb / e for e > 0 (h = 1/e).  At e = 0 this gives fb / sqrt(tiny): finite, and the
    # burst rate sigma(u) * 0 is 0, as with h = 0.  Two fused passes instead of five.
    ec = e.clamp_min(math.sqrt(torch.finfo(e.dtype).tiny))
    torch.div(fb, ec, out=out[0])
    torch.div(fb_bar, ec, out=out[1])


def _sigmoid_h(e, v):
    # f'(v) / e = e (1 - e) / e = 1 - e; no division, so a saturated sigmoid (e = 1) gives 0.
    return 1.0 - e


def general_h(deriv: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """h(e) = f'(v)/e for any activation, guarded like ReLU's (0 where e <= 0)."""

    def h(e, v):
        return deriv(v) * _safe_reciprocal_where_positive(e)

    return h


_ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", torch.relu, _relu_h, fn_=torch.relu_, dendrite=_relu_dendrite),
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid_h, fn_=torch.sigmoid_),
}


def register_activation(act: Activation) -> None:
    """Add a transfer function (the hook for a 'calibrated' f fitted to the spiking cells)."""
    _ACTIVATIONS[act.name] = act


#: Activations registered by importing a module (kept lazy: calibration reads the spiking fits).
_REGISTERED_BY = {"calibrated": "rate_bridge.burstprop.calibrated", "calibrated-quiet": "rate_bridge.burstprop.calibrated"}


def get_activation(name: str) -> Activation:
    if name not in _ACTIVATIONS and name in _REGISTERED_BY:
        importlib.import_module(_REGISTERED_BY[name])
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise MburstError(f"activation '{name}' is unknown; registered: {sorted(_ACTIVATIONS)}") from None


def activation_names() -> tuple[str, ...]:
    return tuple(sorted(set(_ACTIVATIONS) | set(_REGISTERED_BY)))


def h_of_e(e: torch.Tensor, activation: str | Activation, v: torch.Tensor | None = None) -> torch.Tensor:
    """h(e) = f'(v)/e, finite everywhere (ReLU at e = 0 and a saturated sigmoid give 0)."""
    act = get_activation(activation) if isinstance(activation, str) else activation
    return act.h(e, v)


# --------------------------------------------------------------------------- parameters and state
@dataclass(frozen=True)
class BurstParams:
    """Constants of the burstprop rule.

    pbar_out: reference output burst probability pbar_L (paper: 0.2).
    beta, alpha: slope and offset of p = sigma(beta u + alpha) (1, 0).
    teaching: 'gradient' (p_L = zeta(pbar - h dL/de)) or 'mse' (public code's p_t).
    batch_mean: the loss averages over the batch (per-sample gradient = n dL/de).
    z_lr: learning rate of the recurrent weights Z (public default 1e-4).
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
    """Per-layer rates after a burstprop step (detached): event rate e, no-teaching burst
    rate bbar and the teaching-induced change d = b - bbar (the learning signal).  The burst
    rate b = bbar + d and the burst probabilities p = b / e, pbar = bbar / e are derived on
    demand; at silent units (e = 0, where h(e) = 0) p and pbar are ``p_silent`` =
    sigma(alpha) for hidden layers (u = 0) and pbar_L for the output layer."""

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


class BurstPass:
    """Context of one forward/backward pass: carries ``Y bbar`` between layers and
    collects the per-layer :class:`LayerState`.

    ``learn_z``: whether the recurrent weights Z learn during this pass's backward.
    """

    def __init__(self, params: BurstParams | None = None, learn_z: bool = True):
        self.params = params or BurstParams()
        self.learn_z = learn_z
        self.bar: dict[int, torch.Tensor] = {}
        self.states: dict[str, LayerState] = {}
        self._next_key = 0

    def new_key(self) -> int:
        self._next_key += 1
        return self._next_key

    def add_bar(self, key: int, value: torch.Tensor) -> None:
        self.bar[key] = self.bar[key] + value if key in self.bar else value

    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        """``x.flatten(1)`` that also routes the no-teaching feedback."""
        key = _key_of(x)
        if key is None:
            return x.flatten(1)
        out_key = self.new_key()
        out = _Flatten.apply(x, self, key, out_key)
        out._bp_key = out_key
        return out

    def cat(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """``torch.cat(xs, 1)`` that also routes the no-teaching feedback."""
        keys = [_key_of(x) for x in xs]
        if all(k is None for k in keys):
            return torch.cat(xs, 1)
        out_key = self.new_key()
        out = _Cat.apply(self, tuple(keys), out_key, *xs)
        out._bp_key = out_key
        return out


def _key_of(x: torch.Tensor) -> int | None:
    return getattr(x, "_bp_key", None)


class _Flatten(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x, bp, in_key, out_key):
        fctx.bp, fctx.keys, fctx.shape = bp, (in_key, out_key), x.shape
        return x.reshape(x.shape[0], -1)

    @staticmethod
    def backward(fctx, grad):
        bp, (in_key, out_key), shape = fctx.bp, fctx.keys, fctx.shape
        if out_key in bp.bar:
            bp.add_bar(in_key, bp.bar.pop(out_key).reshape(shape))
        return grad.reshape(shape), None, None, None


class _Cat(torch.autograd.Function):
    @staticmethod
    def forward(fctx, bp, in_keys, out_key, *xs):
        fctx.bp, fctx.in_keys, fctx.out_key = bp, in_keys, out_key
        fctx.sizes = [x.shape[1] for x in xs]
        return torch.cat(xs, 1)

    @staticmethod
    def backward(fctx, grad):
        bp = fctx.bp
        grads = grad.split(fctx.sizes, 1)
        bar = bp.bar.pop(fctx.out_key, None)
        if bar is not None:
            for key, piece in zip(fctx.in_keys, bar.split(fctx.sizes, 1)):
                if key is not None:
                    bp.add_bar(key, piece)
        return (None, None, None, *grads)


# --------------------------------------------------------------------------- burst probabilities
def output_burst_change(e: torch.Tensor, h: torch.Tensor, grad_e: torch.Tensor, params: BurstParams) -> torch.Tensor:
    """p_L - pbar_L, with p_L = zeta(pbar - h(e) dL/de) ('gradient') or zeta(pbar (1 - h(e) dL/de))
    ('mse'): ``clamp(-h dL/de, -pbar, 1 - pbar)`` (times pbar for 'mse'), never a difference.

    ``grad_e`` is the per-sample gradient dL/de.  Where h = 0 (saturated sigmoid,
    silent ReLU) the product is 0 even if dL/de is infinite.
    """
    hg = torch.where(h == 0, torch.zeros((), dtype=e.dtype, device=e.device), h * grad_e)
    change = hg.neg_() if params.teaching != "mse" else hg.mul_(-params.pbar_out)
    return change.clamp_(-params.pbar_out, 1.0 - params.pbar_out)


def output_burst_prob(e: torch.Tensor, h: torch.Tensor, grad_e: torch.Tensor, params: BurstParams) -> torch.Tensor:
    """p_L = pbar_L + :func:`output_burst_change`, in [0, 1]."""
    return output_burst_change(e, h, grad_e, params).add_(params.pbar_out)


def sigmoid_step(y: torch.Tensor, dx: torch.Tensor, s0: torch.Tensor | None = None) -> torch.Tensor:
    """sigma(y + dx) - sigma(y) = sign(dx) (1 - exp(-|dx|)) sigma(hi) sigma(-lo), hi/lo the larger/
    smaller of y and y + dx; computed as ``-expm1(-|dx|) (max(s0, s1) - s0 s1)`` with s1 =
    sigma(y + dx), s0 = sigma(y) (pass it if known).  Exact, free of cancellation when |dx| is far
    below float resolution at sigma(y), and finite for any arguments (every factor is in [0, 1]);
    only a saturated dendrite (s0, s1 both within float resolution of 1) loses relative precision."""
    s0 = torch.sigmoid(y) if s0 is None else s0
    s1 = torch.add(y, dx).sigmoid_()
    both = torch.mul(s0, s1)
    step = torch.maximum(s0, s1, out=s1).sub_(both)
    return step.mul_(dx.abs().neg_().expm1_().neg_()).copysign_(dx)


def hidden_burst_probs(h: torch.Tensor, fb: torch.Tensor, fb_bar: torch.Tensor, params: BurstParams,
                       e: torch.Tensor | None = None, z: torch.Tensor | None = None):
    """(p, pbar, ubar, bbar_pre): u = h(e) (Y b) [- Z b_pre], p = sigma(beta u + alpha); likewise
    with bbar.  ``fb`` = Y b and ``fb_bar`` = Y bbar from the layer above; ``z`` needs ``e``."""
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


# --------------------------------------------------------------------------- the autograd functions
class _LayerSpec(NamedTuple):
    """Static description of one burstprop layer for its autograd function."""

    name: str
    act: Activation
    output: bool
    kind: str  # 'linear' or 'conv'
    stride: int
    padding: int
    separate_y: bool
    learn_z: bool
    update_scale: float


def _burst_signals(grad_e, e, v, z, bp: BurstPass, spec: _LayerSpec, out_key: int):
    """Common top half of a burstprop backward: returns (bb = stacked [b - bbar, bbar], n).

    ``grad_e`` is ``Y (b - bbar)`` from the layer above (dL/de at the output layer).
    """
    params = bp.params
    n = e.shape[0] if params.batch_mean else 1
    bb = torch.empty((2, *e.shape), dtype=e.dtype, device=e.device)
    if spec.output:
        if out_key in bp.bar:
            raise MburstError(f"burstprop layer '{spec.name}' is marked output but feeds another burstprop layer")
        torch.mul(output_burst_change(e, spec.act.h(e, v), grad_e * n, params), e, out=bb[0])
        torch.mul(e, params.pbar_out, out=bb[1])
        return bb, n
    fb_bar = bp.bar.pop(out_key, None)
    if fb_bar is None:
        raise MburstError(
            f"hidden burstprop layer '{spec.name}' received no feedback: it must feed burstprop layers "
            "(through BurstPass.flatten/cat) or be built with output=True")
    if z is not None:
        p, pbar, ubar, bbar_pre = hidden_burst_probs(spec.act.h(e, v), grad_e + fb_bar, fb_bar, params, e, z)
        if spec.learn_z and bp.learn_z and params.z_lr > 0:
            # Z descends 0.5 |ubar|^2 (d ubar / dZ = -bbar_pre): Z += z_lr mean_n ubar bbar_pre^T.
            z.add_(ubar.t() @ bbar_pre, alpha=params.z_lr / e.shape[0])
        torch.mul(p.sub_(pbar), e, out=bb[0])  # Z mixes b_pre into u and ubar unequally: a plain difference
        torch.mul(pbar, e, out=bb[1])
        return bb, n
    if spec.act.dendrite is not None:
        spec.act.dendrite(grad_e, fb_bar, e, bb)  # [u - ubar; ubar]
    else:
        h = spec.act.h(e, v)
        torch.mul(grad_e, h, out=bb[0])
        torch.mul(fb_bar, h, out=bb[1])
    # [dx; y] = [beta (u - ubar); beta ubar + alpha]; then b - bbar = e (p - pbar), bbar = e pbar.
    if params.beta != 1.0:
        bb.mul_(params.beta)
    if params.alpha != 0.0:
        bb[1].add_(params.alpha)
    pbar = torch.sigmoid(bb[1])
    torch.mul(sigmoid_step(bb[1], bb[0], pbar), e, out=bb[0])
    torch.mul(pbar, e, out=bb[1])
    return bb, n


def _record(bp: BurstPass, spec: _LayerSpec, e, bb):
    """Keep e, bbar and b - bbar (``bb`` = [b - bbar; bbar])."""
    silent = bp.params.pbar_out if spec.output else 1.0 / (1.0 + math.exp(-bp.params.alpha))
    bp.states[spec.name] = LayerState(e.detach(), bb[1].detach(), bb[0].detach(), silent)


def _forward_tail(fctx, v, x, weight, y, bp: BurstPass, spec: _LayerSpec, out_key: int) -> torch.Tensor:
    """Common end of a burstprop forward: e = f(v); keep x, the feedback weights (Y, or W when
    tied), e and (only if the activation needs it) v for the backward."""
    e = _apply_act(spec.act, v)
    fctx.bp, fctx.spec, fctx.out_key, fctx.in_key = bp, spec, out_key, _key_of(x)
    fctx.save_for_backward(x, weight if y is None else y, e, v if spec.act.needs_v else None)
    return e


def _backward_head(fctx, grad_e, z):
    """Common start of a burstprop backward: (x, Y, e, bb = [b, bbar], n) from the saved forward."""
    x, y, e, v = fctx.saved_tensors
    bb, n = _burst_signals(grad_e, e, v, z, fctx.bp, fctx.spec, fctx.out_key)
    return x, y, e, bb, n


def _backward_tail(fctx, e, bb, grad_w):
    """Common end of a burstprop backward: record the layer's signals; the gradient of a separate Y
    (it follows W's update) or None when Y is tied to W."""
    _record(fctx.bp, fctx.spec, e, bb)
    return grad_w.clone() if fctx.spec.separate_y else None


class _BurstLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x, weight, bias, y, z, bp, spec, out_key):
        fctx.z = z  # a buffer (no grad); learned in place during backward
        return _forward_tail(fctx, F.linear(x, weight, bias), x, weight, y, bp, spec, out_key)

    @staticmethod
    def backward(fctx, grad_e):
        x, y, e, bb, n = _backward_head(fctx, grad_e, fctx.z)
        bp = fctx.bp
        grad_x = None
        if fctx.needs_input_grad[0]:
            proj = bb.reshape(2 * e.shape[0], -1) @ y  # [Y (b - bbar) ; Y bbar] in one pass over Y
            grad_x = proj[: e.shape[0]]
            if fctx.in_key is not None:
                bp.add_bar(fctx.in_key, proj[e.shape[0]:])
        delta = bb[0]  # b - bbar
        # .grad = -(b - bbar) e_pre^T / n (times the layer's update scale): one matmul, the factor on the result.
        factor = -fctx.spec.update_scale / n
        grad_w = (delta.t() @ x).mul_(factor)
        grad_bias = delta.sum(0).mul_(factor) if fctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_bias, _backward_tail(fctx, e, bb, grad_w), None, None, None, None


class _BurstConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x, weight, bias, y, bp, spec, out_key):
        return _forward_tail(fctx, F.conv2d(x, weight, bias, spec.stride, spec.padding), x, weight, y, bp, spec,
                             out_key)

    @staticmethod
    def backward(fctx, grad_e):
        x, y, e, bb, n = _backward_head(fctx, grad_e, None)
        bp, spec = fctx.bp, fctx.spec
        delta = bb[0]  # b - bbar
        factor = -spec.update_scale / n
        grad_bias = delta.sum((0, 2, 3)).mul_(factor) if fctx.needs_input_grad[2] else None
        conv = (spec.stride, spec.stride), (spec.padding, spec.padding), (1, 1), False, (0, 0), 1
        grad_x = None
        if fctx.needs_input_grad[0]:
            # Y acts by transposed convolution.  One fused backward gives Y^T (b - bbar) and the
            # weight update from (b - bbar) (its weight argument only supplies Y for the input
            # side); a second gives Y^T bbar.  This is cheaper than transposing
            # [b - bbar; bbar] stacked plus a separate weight update.
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(delta, x, y, None, *conv, (True, True, False))
            y_bar = torch.ops.aten.convolution_backward(bb[1], x, y, None, *conv, (True, False, False))[0]
            if fctx.in_key is not None:
                bp.add_bar(fctx.in_key, y_bar)
        else:
            grad_w = torch.ops.aten.convolution_backward(delta, x, y, None, *conv, (False, True, False))[1]
        grad_w.mul_(factor)
        return grad_x, grad_w, grad_bias, _backward_tail(fctx, e, bb, grad_w), None, None, None


def _apply_act(act: Activation, v: torch.Tensor) -> torch.Tensor:
    """f(v), in place on v when the activation allows it and v is not needed in backward."""
    return act.fn_(v) if act.fn_ is not None and not act.needs_v else act.fn(v)


def _check_input(x: torch.Tensor, name: str) -> None:
    if x.requires_grad and _key_of(x) is None and x.grad_fn is not None:
        raise MburstError(
            f"burstprop layer '{name}' gets an input computed by non-burstprop operations; "
            "between burstprop layers use BurstPass.flatten / BurstPass.cat only")


def burst_linear(x, weight, bias, y, z, act: Activation, bp: BurstPass, name: str, output: bool = False,
                 learn_z: bool = True, update_scale: float = 1.0) -> torch.Tensor:
    """e = f(x W^T + c) whose backward applies burstprop (see module docstring).

    ``y``: separate feedback weights (same shape as W) or ``None`` for Y = W;
    ``z``: recurrent weights [out, out] (a buffer, learned in backward) or ``None``;
    ``update_scale``: a per-layer learning rate on Delta W = Delta Y (the burst signals are unchanged).
    """
    _check_input(x, name)
    spec = _LayerSpec(name, act, output, "linear", 1, 0, y is not None, learn_z, update_scale)
    out_key = bp.new_key()
    e = _BurstLinearFn.apply(x, weight, bias, y, z, bp, spec, out_key)
    e._bp_key = out_key
    return e


def burst_conv2d(x, weight, bias, y, act: Activation, bp: BurstPass, name: str, stride: int = 1, padding: int = 0,
                 output: bool = False, update_scale: float = 1.0) -> torch.Tensor:
    """e = f(conv2d(x, W) + c) whose backward applies burstprop; Y acts by transposed convolution."""
    _check_input(x, name)
    spec = _LayerSpec(name, act, output, "conv", stride, padding, y is not None, False, update_scale)
    out_key = bp.new_key()
    e = _BurstConv2dFn.apply(x, weight, bias, y, bp, spec, out_key)
    e._bp_key = out_key
    return e


# --------------------------------------------------------------------------- modules
class _BurstLayer(nn.Module):
    """Shared parts of the burstprop modules: learning-rule switch and feedback weights."""

    def _setup(self, name: str, activation: str, output: bool, feedback: str, learning_rule: str):
        if feedback not in FEEDBACK_MODES:
            raise MburstError(f"feedback must be one of {FEEDBACK_MODES}, got '{feedback}'")
        self.layer_name = name
        self.activation = activation
        self.act = get_activation(activation)
        self.output = output
        self.feedback = feedback
        self.learning_rule = learning_rule
        self.update_scale = 1.0  # per-layer learning rate of the burstprop update (see AVMaskNet)
        self.last_pass: BurstPass | None = None
        if feedback == "tied":
            self.register_parameter("feedback_weight", None)
        else:
            self.feedback_weight = nn.Parameter(torch.empty_like(self.weight))

    @property
    def learning_rule(self) -> str:
        return self._learning_rule

    @learning_rule.setter
    def learning_rule(self, rule: str) -> None:
        if rule not in LEARNING_RULES:
            raise MburstError(f"learning_rule must be one of {LEARNING_RULES}, got '{rule}'")
        self._learning_rule = rule

    def _init_feedback(self):
        if self.feedback_weight is None:
            return
        with torch.no_grad():
            if self.feedback == "symmetric":
                self.feedback_weight.copy_(self.weight)
            else:
                nn.init.kaiming_uniform_(self.feedback_weight, a=math.sqrt(5))

    def _uses_burstprop(self) -> bool:
        return self._learning_rule == "burstprop" and torch.is_grad_enabled()


class BurstLinear(_BurstLayer):
    """Dense burstprop layer ``e = f(W x + c)``.

    ``recurrent``: add SOM-like recurrent weights Z [out, out] ~ U(-z_init, z_init)
    (dense hidden layers only; see the module docstring).
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "relu", output: bool = False,
                 feedback: str = "tied", learning_rule: str = "burstprop", name: str = "linear",
                 recurrent: bool = False, z_init: float = 0.01):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self._setup(name, activation, output, feedback, learning_rule)
        if recurrent:
            if output:
                raise MburstError(f"layer '{name}': recurrent weights Z are for hidden layers only")
            self.register_buffer("z", torch.empty(out_features, out_features))
        else:
            self.z = None
        self.reset_parameters()
        if self.z is not None:  # drawn after W so that switching Z on leaves W's initialisation unchanged
            nn.init.uniform_(self.z, -z_init, z_init)

    def reset_parameters(self):
        """nn.Linear's initialisation (Kaiming uniform, bias U(+-1/sqrt(in)))."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.bias, -bound, bound)
        self._init_feedback()

    def forward(self, x: torch.Tensor, bp: BurstPass | None = None) -> torch.Tensor:
        if not self._uses_burstprop():
            return self.act.fn(F.linear(x, self.weight, self.bias))
        if bp is None:  # standalone use: a fresh pass, kept for inspecting the states
            bp = self.last_pass = BurstPass()
        return burst_linear(x, self.weight, self.bias, self.feedback_weight, self.z, self.act, bp,
                            self.layer_name, self.output, learn_z=self.training, update_scale=self.update_scale)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, activation={self.activation}, output={self.output}, "
                f"feedback={self.feedback}, rule={self.learning_rule}, z={self.z is not None}")


class BurstConv2d(_BurstLayer):
    """2-D convolutional burstprop layer ``e = f(W * x + c)``; Y acts by transposed convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                 activation: str = "relu", output: bool = False, feedback: str = "tied",
                 learning_rule: str = "burstprop", name: str = "conv"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self._setup(name, activation, output, feedback, learning_rule)
        self.reset_parameters()

    def reset_parameters(self):
        """nn.Conv2d's initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size ** 2)
        nn.init.uniform_(self.bias, -bound, bound)
        self._init_feedback()

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        k, s, p = self.kernel_size, self.stride, self.padding
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1

    def forward(self, x: torch.Tensor, bp: BurstPass | None = None) -> torch.Tensor:
        if not self._uses_burstprop():
            return self.act.fn(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))
        if bp is None:  # standalone use: a fresh pass, kept for inspecting the states
            bp = self.last_pass = BurstPass()
        return burst_conv2d(x, self.weight, self.bias, self.feedback_weight, self.act, bp, self.layer_name,
                            self.stride, self.padding, self.output, self.update_scale)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, activation={self.activation}, output={self.output}, "
                f"feedback={self.feedback}, rule={self.learning_rule}")


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two update tensors (flattened); NaN if either is zero."""
    a, b = a.flatten().double(), b.flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return float("nan")
    return math.degrees(math.acos(float((a @ b / (na * nb)).clamp(-1.0, 1.0))))
