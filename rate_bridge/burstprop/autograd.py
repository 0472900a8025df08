"""Burstprop wired into torch autograd: dense and convolutional layer functions (eqs. 1-8).

:func:`burst_linear` and :func:`burst_conv2d` compute ``e = f(W x + c)`` (a convolution for the
latter); their backward replaces backprop's gradient by burstprop's burst signals, built from the
pointwise equations of :mod:`.functional`, and routes ``Y bbar`` through the
:class:`~rate_bridge.burstprop.routing.BurstPass`.

Sign convention (what lands in ``.grad``).  The update is applied by a torch optimiser, which
*descends* along ``.grad``.  We store ``W.grad = Y.grad = -(1/n) sum_samples (b - bbar) e_pre^T``
(``n`` = batch size when the loss averages over the batch, ``BurstParams.batch_mean``), so the
optimiser step ``W -= lr * grad`` *potentiates* synapses whose post-synaptic bursts exceed their
no-teaching average.  With the MSE teaching rule ``b - bbar = pbar (t - e) e (1 - e) = -pbar dL/dv``,
hence ``W.grad = pbar dL/dW`` exactly (tested); with the default ``teaching='gradient'`` and no
clamping, ``b - bbar = -dL/dv`` and ``W.grad = dL/dW`` at the output layer.  (reference.md's "put
-Delta W into .grad" would flip this sign and make the optimiser ascend the loss; we follow the
derivation above.)

Batch convention.  Autograd hands the output layer ``dL/de`` of the *batch* loss.  The teaching
signal needs the per-sample gradient, so it is multiplied by ``n`` (the loss is assumed to be a
mean over the batch; set ``batch_mean=False`` for a sum) and the weight updates are averaged over
the batch with the same ``1/n``.  A loss that also averages over the output units (e.g. BCE mean
over bins) makes the per-unit teaching term ``h(e) dL/de`` correspondingly small, so p_L stays
near pbar_L (no clamping).

Recurrent weights Z (dense hidden layers, off by default): Z [n, n] ~ U(+-0.01) descends
``0.5 |ubar|^2``: ``Z += z_lr mean_batch(ubar bbar_pre^T)`` (z_lr 1e-4), during backward, in
training mode only.  It learns on the no-teaching pass, so it removes the baseline drive and keeps
pbar near 0.5.

Cost.  Burstprop needs both ``Y b`` and ``Y bbar`` at every layer that has a layer below, so its
input-side projections are done twice where backprop does them once (the weight updates and the
forward pass cost the same).  Convolutions use one fused ``convolution_backward`` for
``Y^T (b - bbar)`` plus the weight update and one more for ``Y^T bbar``; dense layers project
``[b - bbar; bbar]`` stacked in one matmul.  The pointwise work runs in place on the stacked
``[b - bbar; bbar]`` buffer (:func:`~.functional.burst_rates_`), and the dense weight update is
scaled on its small factor (``-(b - bbar) / n``), not on the product.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from neurons.common import MburstError
from rate_bridge.burstprop.functional import (Activation, LayerState, burst_rates_, hidden_burst_probs,
                                             output_burst_change)
from rate_bridge.burstprop.routing import BurstPass


class _LayerSpec(NamedTuple):
    """Static description of one burstprop layer for its autograd function."""

    name: str
    act: Activation
    output: bool
    stride: int
    padding: int
    separate_y: bool
    learn_z: bool
    update_scale: float


def _burst_signals(grad_e, e, v, z, bp: BurstPass, spec: _LayerSpec, out_key: int, bb):
    """Common top half of a burstprop backward: writes ``[b - bbar, bbar]`` into ``bb`` (two tensors
    shaped like e) and returns the batch divisor n.

    ``grad_e`` is ``Y (b - bbar)`` from the layer above (dL/de at the output layer).
    """
    params = bp.params
    n = e.shape[0] if params.batch_mean else 1
    if spec.output:
        if out_key in bp.bar:
            raise MburstError(f"burstprop layer '{spec.name}' is marked output but feeds another burstprop layer")
        torch.mul(output_burst_change(e, spec.act.h(e, v), grad_e * n, params), e, out=bb[0])
        torch.mul(e, params.pbar_out, out=bb[1])
        return n
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
        return n
    if spec.act.dendrite is not None:
        spec.act.dendrite(grad_e, fb_bar, e, bb)  # [u - ubar; ubar]
    else:
        h = spec.act.h(e, v)
        torch.mul(grad_e, h, out=bb[0])
        torch.mul(fb_bar, h, out=bb[1])
    # [dx; y] = [beta (u - ubar); beta ubar + alpha]; then [b - bbar; bbar] = e [p - pbar; pbar].
    if params.beta != 1.0:
        bb[0].mul_(params.beta)
        bb[1].mul_(params.beta)
    if params.alpha != 0.0:
        bb[1].add_(params.alpha)
    # fb_bar (popped from the pass, ours alone) is spent: its memory holds the temporary.
    usable = fb_bar.shape == e.shape and fb_bar.dtype == e.dtype and fb_bar.is_contiguous()
    burst_rates_(bb[0], bb[1], e, fb_bar if usable else None)
    return n


def _record(bp: BurstPass, spec: _LayerSpec, e, bb):
    """Keep e, bbar and b - bbar (``bb`` = [b - bbar; bbar])."""
    silent = bp.params.pbar_out if spec.output else 1.0 / (1.0 + math.exp(-bp.params.alpha))
    bp.states[spec.name] = LayerState(e.detach(), bb[1].detach(), bb[0].detach(), silent)


def _forward_tail(fctx, v, x, weight, y, bp: BurstPass, spec: _LayerSpec, out_key: int) -> torch.Tensor:
    """Common end of a burstprop forward: e = f(v); keep x, the feedback weights (Y, or W when
    tied), e and (only if the activation needs it) v for the backward."""
    act = spec.act
    e = act.fn_(v) if act.fn_ is not None and not act.needs_v else act.fn(v)  # in place when v is not kept
    fctx.bp, fctx.spec, fctx.out_key, fctx.in_key = bp, spec, out_key, BurstPass.key_of(x)
    fctx.save_for_backward(x, weight if y is None else y, e, v if act.needs_v else None)
    return e


def _backward_head(fctx, grad_e, z, stacked: bool):
    """Common start of a burstprop backward: (x, Y, e, bb, n) from the saved forward, with
    ``bb = [b - bbar, bbar]`` one [2, *e.shape] tensor (``stacked``) or two tensors.

    Convolutions take two: glibc maps an allocation over 32 MB afresh each time (page faults:
    4 ms per full-size audio convolution and step), while two 16 MB blocks come from its heap."""
    x, y, e, v = fctx.saved_tensors
    if stacked:
        bb = torch.empty((2, *e.shape), dtype=e.dtype, device=e.device)
    else:
        bb = [torch.empty(e.shape, dtype=e.dtype, device=e.device) for _ in range(2)]
    n = _burst_signals(grad_e, e, v, z, fctx.bp, fctx.spec, fctx.out_key, bb)
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
        x, y, e, bb, n = _backward_head(fctx, grad_e, fctx.z, stacked=True)
        bp = fctx.bp
        grad_x = None
        if fctx.needs_input_grad[0]:
            proj = bb.reshape(2 * e.shape[0], -1) @ y  # [Y (b - bbar) ; Y bbar] in one pass over Y
            grad_x = proj[: e.shape[0]]
            if fctx.in_key is not None:
                bp.add_bar(fctx.in_key, proj[e.shape[0]:])
        # .grad = -(b - bbar) e_pre^T / n (times the layer's update scale): the factor on the small
        # [B, out] operand, so the [out, in] product is not swept a second time.
        scaled = bb[0] * (-fctx.spec.update_scale / n)
        grad_w = scaled.t() @ x
        grad_bias = scaled.sum(0) if fctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_bias, _backward_tail(fctx, e, bb, grad_w), None, None, None, None


class _BurstConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x, weight, bias, y, bp, spec, out_key):
        return _forward_tail(fctx, F.conv2d(x, weight, bias, spec.stride, spec.padding), x, weight, y, bp, spec,
                             out_key)

    @staticmethod
    def backward(fctx, grad_e):
        x, y, e, bb, n = _backward_head(fctx, grad_e, None, stacked=False)
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


def _check_input(x: torch.Tensor, name: str) -> None:
    if x.requires_grad and BurstPass.key_of(x) is None and x.grad_fn is not None:
        raise MburstError(
            f"burstprop layer '{name}' gets an input computed by non-burstprop operations; "
            "between burstprop layers use BurstPass.flatten / BurstPass.cat only")


def burst_linear(x, weight, bias, y, z, act: Activation, bp: BurstPass, name: str, output: bool = False,
                 learn_z: bool = True, update_scale: float = 1.0) -> torch.Tensor:
    """Dense layer ``e = f(x W^T + c)`` (eqs. 1-2) whose backward applies burstprop (eqs. 3-8).

    Parameters
    ----------
    x : Tensor [B, in]
        Input event rates: data, or the output of a burstprop layer (directly or through
        ``bp.flatten`` / ``bp.cat``).
    weight : Tensor [out, in]
    bias : Tensor [out]
    y : Tensor [out, in] or None
        Separate feedback weights Y, or None for Y = W.
    z : Tensor [out, out] or None
        Recurrent weights (a buffer, learned in backward) or None.
    act : Activation
    bp : BurstPass
        The pass this forward belongs to.
    name : str
        Layer name (key of ``bp.states``, and in error messages).
    output : bool
        The output layer (teaching signal from dL/de, eq. 3).
    learn_z : bool
        Whether Z may learn in this pass (training mode).
    update_scale : float
        A per-layer learning rate on Delta W = Delta Y (the burst signals are unchanged).

    Returns
    -------
    Tensor [B, out]
        Event rates e (dimensionless).

    Raises
    ------
    MburstError
        ``x`` was computed by non-burstprop operations from a burstprop output; at backward, a
        hidden layer that received no feedback or an output layer that feeds another layer.
    """
    _check_input(x, name)
    spec = _LayerSpec(name, act, output, 1, 0, y is not None, learn_z, update_scale)
    out_key = bp.new_key()
    return bp.tag(_BurstLinearFn.apply(x, weight, bias, y, z, bp, spec, out_key), out_key)


def burst_conv2d(x, weight, bias, y, act: Activation, bp: BurstPass, name: str, stride: int = 1, padding: int = 0,
                 output: bool = False, update_scale: float = 1.0) -> torch.Tensor:
    """Convolutional layer ``e = f(conv2d(x, W) + c)`` whose backward applies burstprop; Y acts by
    transposed convolution (eqs. 1-8).

    Parameters
    ----------
    x : Tensor [B, C_in, H, W]
    weight : Tensor [C_out, C_in, k, k]
    bias : Tensor [C_out]
    y : Tensor [C_out, C_in, k, k] or None
        Separate feedback weights Y, or None for Y = W.
    act, bp, name, output, update_scale
        As for :func:`burst_linear`.
    stride, padding : int
        Of the convolution (square).

    Returns
    -------
    Tensor [B, C_out, H_out, W_out]
        Event rates e.

    Raises
    ------
    MburstError
        As for :func:`burst_linear`.
    """
    _check_input(x, name)
    spec = _LayerSpec(name, act, output, stride, padding, y is not None, False, update_scale)
    out_key = bp.new_key()
    return bp.tag(_BurstConv2dFn.apply(x, weight, bias, y, bp, spec, out_key), out_key)
