"""The registry of transfer functions ``e = f(v)`` and burstprop's ``h(e) = f'(v) / e`` (eqs. 2, 5-6).

Built in: ``'relu'`` (``h = 1/e`` where ``e > 0``, else 0) and ``'sigmoid'`` (``h = 1 - e``).  The
calibrated activations (the spiking cells' measured transfer functions) come from
:mod:`rate_bridge.burstprop.calibrated`: every name in its table
(:func:`~rate_bridge.burstprop.calibrated.calibrated_names`) is an activation here, so
``get_activation('calibrated')`` works as soon as this module is imported.  The dependency is one
way: this module reads ``calibrated``, which knows nothing of the registry.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from neurons.common import MburstError
from rate_bridge.burstprop.calibrated import calibrated_activation, calibrated_names, calibration_of
from rate_bridge.burstprop.functional import Activation

__all__ = ["Activation", "register_activation", "unregister_activation", "get_activation", "activation_names",
           "h_of_e", "general_h"]


def _safe_reciprocal_where_positive(e: torch.Tensor) -> torch.Tensor:
    """1/e where e > 0, else 0; e is floored at sqrt(tiny) so h*x cannot overflow to inf*0."""
    floor = math.sqrt(torch.finfo(e.dtype).tiny)
    return torch.where(e > 0, e.clamp_min(floor).reciprocal(), torch.zeros((), dtype=e.dtype, device=e.device))


def _relu_h(e, v):
    return _safe_reciprocal_where_positive(e)


def _relu_dendrite(fb, fb_bar, e, out):
    # u = fb / e for e > 0 (h = 1/e).  At e = 0 this gives fb / sqrt(tiny): finite, and the burst
    # rate sigma(u) * 0 is 0, as with h = 0.  Three passes, no temporary: the floored e goes
    # into out[1] and is divided into fb_bar in place.
    torch.clamp_min(e, math.sqrt(torch.finfo(e.dtype).tiny), out=out[1])
    torch.div(fb, out[1], out=out[0])
    torch.div(fb_bar, out[1], out=out[1])


def _sigmoid_h(e, v):
    # f'(v) / e = e (1 - e) / e = 1 - e; no division, so a saturated sigmoid (e = 1) gives 0.
    return 1.0 - e


def general_h(deriv: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """``h(e) = f'(v) / e`` for any activation, guarded like ReLU's (0 where e <= 0).

    Parameters
    ----------
    deriv : callable
        ``v -> f'(v)`` (tensor to tensor).

    Returns
    -------
    callable
        ``h(e, v)`` for :class:`Activation` (which then needs ``needs_v=True``).
    """

    def h(e, v):
        return deriv(v) * _safe_reciprocal_where_positive(e)

    return h


_BUILT_IN = ("relu", "sigmoid")
_ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", torch.relu, _relu_h, fn_=torch.relu_, dendrite=_relu_dendrite),
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid_h, fn_=torch.sigmoid_),
}


def register_activation(act: Activation, replace: bool = False) -> Activation:
    """Add a transfer function to the registry under ``act.name``.

    Parameters
    ----------
    act : Activation
    replace : bool
        Overwrite an activation registered earlier under the same name.

    Returns
    -------
    Activation
        ``act``.

    Raises
    ------
    MburstError
        ``act`` is not an :class:`Activation`; its name is built in or calibrated (register a
        calibration in :mod:`rate_bridge.burstprop.calibrated` instead); or it is taken and
        ``replace`` is False.
    """
    if not isinstance(act, Activation):
        raise MburstError(f"register_activation: expected an Activation, got {type(act).__name__}")
    if act.name in _BUILT_IN or act.name in calibrated_names():
        raise MburstError(f"activation '{act.name}' is built in and cannot be replaced")
    if act.name in _ACTIVATIONS and not replace:
        raise MburstError(f"activation '{act.name}' is already registered (pass replace=True to overwrite)")
    _ACTIVATIONS[act.name] = act
    return act


def unregister_activation(name: str) -> None:
    """Remove an activation added with :func:`register_activation`.

    Parameters
    ----------
    name : str

    Raises
    ------
    MburstError
        ``name`` is built in, calibrated, or not registered.
    """
    if name in _BUILT_IN or name in calibrated_names():
        raise MburstError(f"activation '{name}' is built in and cannot be removed")
    if _ACTIVATIONS.pop(name, None) is None:
        raise MburstError(f"activation '{name}' is not registered; registered: {', '.join(activation_names())}")


def get_activation(name: str) -> Activation:
    """The activation registered as ``name`` (built in, calibrated or added by the user).

    Parameters
    ----------
    name : str
        One of :func:`activation_names`.

    Returns
    -------
    Activation

    Raises
    ------
    MburstError
        ``name`` is unknown (the message lists the registered names).
    """
    if name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    if name in calibrated_names():
        return calibrated_activation(calibration_of(name), name)
    raise MburstError(f"activation '{name}' is unknown; registered: {', '.join(activation_names())}")


def activation_names() -> tuple[str, ...]:
    """Every registered activation name (built in, calibrated, added by the user).

    Returns
    -------
    tuple of str
        Sorted names: the choices of ``mburst train --activation``.
    """
    return tuple(sorted({*_ACTIVATIONS, *calibrated_names()}))


def h_of_e(e: torch.Tensor, activation: str | Activation, v: torch.Tensor | None = None) -> torch.Tensor:
    """Burstprop's dendritic factor ``h(e) = f'(v) / e`` (eqs. 5-6), finite everywhere.

    ReLU at e = 0 and a saturated sigmoid (e = 1) give 0.

    Parameters
    ----------
    e : Tensor
        Event rates (dimensionless).
    activation : str or Activation
        A registered name or an activation.
    v : Tensor, optional
        The drive with ``f(v) = e``, same shape as e; required by activations with ``needs_v``.

    Returns
    -------
    Tensor
        h(e), shaped like e.

    Raises
    ------
    MburstError
        Unknown activation name.
    """
    act = get_activation(activation) if isinstance(activation, str) else activation
    return act.h(e, v)
