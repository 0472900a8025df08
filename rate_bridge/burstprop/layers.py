"""Burstprop layers as thin ``nn.Module`` wrappers (Norse style) over :mod:`.autograd`'s functions.

:class:`BurstLinear` (``e = f(W x + c)``) and :class:`BurstConv2d` (``e = f(W * x + c)``) hold the
weights and a ``learning_rule`` switch: ``'burstprop'`` (Payeur et al. 2021, eqs. 1-8; the maths is
in :mod:`.functional`) or ``'backprop'`` (plain torch layers and autograd).

Feedback weights.  ``feedback='tied'`` uses ``Y = W`` (one tensor).  Because ``Delta Y = Delta W``
and the optimiser sees identical gradients, a separately stored Y initialised equal to W
(``'symmetric'``) stays equal to W for ever (tested), so 'tied' is the same learning rule without
the copy.  ``'random'`` stores an independently initialised Y that is learned the same way.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurons.common import MburstError
from rate_bridge.burstprop.activations import get_activation
from rate_bridge.burstprop.autograd import burst_conv2d, burst_linear
from rate_bridge.burstprop.routing import BurstPass

LEARNING_RULES = ("burstprop", "backprop")
FEEDBACK_MODES = ("tied", "symmetric", "random")


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
    """Dense burstprop layer ``e = f(W x + c)`` (eqs. 1-2; learning by eqs. 3-8 or backprop).

    Parameters
    ----------
    in_features, out_features : int
    activation : str
        A registered activation (:func:`~rate_bridge.burstprop.activations.activation_names`).
    output : bool
        The output layer (its teaching signal comes from dL/de, eq. 3).
    feedback : {'tied', 'symmetric', 'random'}
        Feedback weights Y (see the module docstring).
    learning_rule : {'burstprop', 'backprop'}
    name : str
        Layer name (key of the pass's states).
    recurrent : bool
        Add SOM-like recurrent weights Z [out, out] ~ U(-z_init, z_init) (hidden layers only;
        :func:`~rate_bridge.burstprop.functional.hidden_burst_probs`).
    z_init : float
        Half-width of Z's initial uniform distribution.

    Raises
    ------
    MburstError
        Unknown activation, feedback mode or learning rule; ``recurrent`` on an output layer.
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
        """Event rates of the layer (eqs. 1-2); backprop mode (or no grad) runs plain torch.

        Parameters
        ----------
        x : Tensor [B, in]
        bp : BurstPass, optional
            The pass of a multi-layer network (standalone: a fresh one, kept as ``last_pass``).

        Returns
        -------
        Tensor [B, out]
            e (dimensionless).
        """
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
    """2-D convolutional burstprop layer ``e = f(W * x + c)``; Y acts by transposed convolution.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int
        Of the square convolution.
    activation, output, feedback, learning_rule, name
        As for :class:`BurstLinear`.

    Raises
    ------
    MburstError
        Unknown activation, feedback mode or learning rule.
    """

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

    def forward(self, x: torch.Tensor, bp: BurstPass | None = None) -> torch.Tensor:
        """Event rates of the layer (eqs. 1-2); backprop mode (or no grad) runs plain torch.

        Parameters
        ----------
        x : Tensor [B, C_in, H, W]
        bp : BurstPass, optional
            As for :meth:`BurstLinear.forward`.

        Returns
        -------
        Tensor [B, C_out, H_out, W_out]
        """
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
    """Angle between two update tensors, flattened.

    Parameters
    ----------
    a, b : Tensor
        Same number of elements (any shapes).

    Returns
    -------
    float
        Degrees in [0, 180]; NaN if either tensor is zero.
    """
    a, b = a.flatten().double(), b.flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return float("nan")
    return math.degrees(math.acos(float((a @ b / (na * nb)).clamp(-1.0, 1.0))))
