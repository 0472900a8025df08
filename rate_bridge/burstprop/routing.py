"""How burstprop's two top-down signals travel between layers during one backward pass.

Autograd's gradient channel carries the teaching-induced change ``Y (b - bbar)`` between layers;
the no-teaching signal ``Y bbar`` (eq. 6) travels beside it in a per-forward :class:`BurstPass`,
keyed by an integer stored on each burstprop layer's output tensor.  ``Y b`` is their sum.

Between burstprop layers only :meth:`BurstPass.flatten` and :meth:`BurstPass.cat` may be used
(they route both signals); anything else that feeds a hidden burstprop layer's output would add
its own gradient to the teaching signal.
"""
from __future__ import annotations

import torch

from rate_bridge.burstprop.functional import BurstParams, LayerState


class BurstPass:
    """Context of one forward/backward pass: carries ``Y bbar`` between layers and collects the
    per-layer :class:`~rate_bridge.burstprop.functional.LayerState`.

    Parameters
    ----------
    params : BurstParams, optional
        Constants of the rule (default :class:`BurstParams()`).
    learn_z : bool
        Whether the recurrent weights Z learn during this pass's backward.
    """

    def __init__(self, params: BurstParams | None = None, learn_z: bool = True):
        self.params = params or BurstParams()
        self.learn_z = learn_z
        self.bar: dict[int, torch.Tensor] = {}
        self.states: dict[str, LayerState] = {}
        self._next_key = 0

    @staticmethod
    def key_of(x: torch.Tensor) -> int | None:
        """The routing key of ``x`` (int) if it is a burstprop layer's output, else None."""
        return getattr(x, "_bp_key", None)

    def new_key(self) -> int:
        """A fresh routing key (int) for the output of the next burstprop operation."""
        self._next_key += 1
        return self._next_key

    @staticmethod
    def tag(x: torch.Tensor, key: int) -> torch.Tensor:
        """Mark tensor ``x`` as the output with routing key ``key`` (int); returns x itself."""
        x._bp_key = key
        return x

    def add_bar(self, key: int, value: torch.Tensor) -> None:
        """Add ``value`` (a part of ``Y bbar``, shaped like the output keyed by int ``key``) to that output's total."""
        self.bar[key] = self.bar[key] + value if key in self.bar else value

    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        """``x.flatten(1)`` that also routes the no-teaching feedback.

        Parameters
        ----------
        x : Tensor [B, C, H, W]
            A burstprop layer's output (or any tensor: then a plain flatten).

        Returns
        -------
        Tensor [B, C H W]
        """
        key = self.key_of(x)
        if key is None:
            return x.flatten(1)
        out_key = self.new_key()
        return self.tag(_Flatten.apply(x, self, key, out_key), out_key)

    def cat(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """``torch.cat(xs, 1)`` that also routes the no-teaching feedback.

        Parameters
        ----------
        xs : list of Tensor [B, n_i]
            Burstprop layers' outputs (others get no ``Y bbar``).

        Returns
        -------
        Tensor [B, sum n_i]
        """
        keys = [self.key_of(x) for x in xs]
        if all(k is None for k in keys):
            return torch.cat(xs, 1)
        out_key = self.new_key()
        return self.tag(_Cat.apply(self, tuple(keys), out_key, *xs), out_key)


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
