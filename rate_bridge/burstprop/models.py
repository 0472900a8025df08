"""MBURST, Multimodal and Unimodal mask estimators (reference.md s. 1, "Network").

* audio branch: [B, 1, context, n_bins] -> conv 3x3 (channels, stride 1, padding 1) -> conv 3x3
  -> flatten (channels * context * n_bins) -> dense ``embed``;
* visual branch: [B, 1, 50, 92] -> two conv 3x3 (stride 2, padding 1) -> flatten -> dense ``embed``;
* concatenation -> dense ``n_bins`` with a sigmoid: the mask probability per frequency bin.

Hidden layers use ``cfg.activation`` (ReLU, or any name of
:func:`rate_bridge.burstprop.activations.activation_names`, e.g. the calibrated transfer functions).  ``'mburst'`` learns
every layer by burstprop, ``'multimodal'`` is the same network learned by backprop,
``'unimodal'`` is the audio branch alone (backprop).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from neurons.common import MburstError

from rate_bridge.burstprop.activations import get_activation
from rate_bridge.burstprop.functional import TEACHING_RULES, BurstParams, LayerState
from rate_bridge.burstprop.layers import FEEDBACK_MODES, LEARNING_RULES, BurstConv2d, BurstLinear, angle_deg
from rate_bridge.burstprop.routing import BurstPass

MODEL_NAMES = ("mburst", "multimodal", "unimodal")
_RULE_OF = {"mburst": "burstprop", "multimodal": "backprop", "unimodal": "backprop"}


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and burstprop constants (defaults: the paper's full size).

    feedback: 'tied' (Y = W, default), 'symmetric' (separate Y starting at W) or 'random'.
    teaching: output teaching rule, 'gradient' (paper eq.) or 'mse' (public code).
    use_z / z_init / z_lr: SOM-like recurrent weights on the two dense embedding layers.
    rescale_updates: a per-layer learning rate for burstprop (MBURST only). In the linear regime
    every hidden layer scales the burst signal b - bbar it passes down by the slope of
    p = sigma(beta u + alpha) at rest, g = beta sigma'(alpha) (1/40 at beta 0.1), so a layer k
    hidden layers below the output gets g^k times backprop's update (measured on a trained CPU
    profile MBURST: 2.5e-2 / 4e-4 / 1.2e-5 of backprop for dense / conv2 / conv1 at beta 0.1).
    Adam undoes a constant scale except through its epsilon (1e-8) and the coupled weight
    decay: the MBURST dense layers' sqrt(v) had fallen to 1.5e-8 and, in the first
    convolutions, the decay term reached a third of the update. With rescaling, Delta W of such a
    layer is divided by g^k; the burst signals and the update's direction are unchanged.
    """

    n_bins: int = 500
    context: int = 8
    lip_hw: tuple[int, int] = (50, 92)
    channels: int = 32
    embed: int = 256
    activation: str = "relu"
    pbar: float = 0.2
    beta: float = 1.0
    alpha: float = 0.0
    teaching: str = "gradient"
    feedback: str = "tied"
    use_z: bool = False
    z_init: float = 0.01
    z_lr: float = 1e-4
    rescale_updates: bool = True

    def __post_init__(self):
        object.__setattr__(self, "lip_hw", tuple(int(v) for v in self.lip_hw))
        for key in ("n_bins", "context", "channels", "embed"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise MburstError(f"model config: {key} must be a positive integer, got {value!r}")
        if len(self.lip_hw) != 2 or min(self.lip_hw) < 1:
            raise MburstError(f"model config: lip_hw must be two positive integers, got {self.lip_hw!r}")
        get_activation(self.activation)
        if self.feedback not in FEEDBACK_MODES:
            raise MburstError(f"model config: feedback must be one of {FEEDBACK_MODES}, got '{self.feedback}'")
        if self.teaching not in TEACHING_RULES:
            raise MburstError(f"model config: teaching must be one of {TEACHING_RULES}, got '{self.teaching}'")
        self.burst_params()  # validates pbar, z_lr

    def burst_params(self) -> BurstParams:
        """The :class:`BurstParams` of this config (loss a mean over the batch)."""
        return BurstParams(pbar_out=self.pbar, beta=self.beta, alpha=self.alpha, teaching=self.teaching,
                           batch_mean=True, z_lr=self.z_lr)

    def to_dict(self) -> dict:
        """JSON-able dict of the fields (saved in ``config.json`` and checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """The config saved by :meth:`to_dict`; raises MburstError on unknown keys."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise MburstError(f"model config has unknown keys: {sorted(unknown)}")
        return cls(**{"rescale_updates": False, **data})  # configs saved before the option: trained without it


#: Hidden layers between a layer (by kind) and the output, itself included.
HIDDEN_DEPTH = {"out": 0, "dense": 1, "conv2": 2, "conv1": 3}


def _conv_hw(hw: tuple[int, int], stride: int, kernel: int = 3, padding: int = 1) -> tuple[int, int]:
    return tuple((s + 2 * padding - kernel) // stride + 1 for s in hw)


class AVMaskNet(nn.Module):
    """The audio(-visual) mask network; ``forward(audio, visual) -> e_out`` in [0, 1]."""

    def __init__(self, name: str, cfg: ModelConfig):
        super().__init__()
        if name not in MODEL_NAMES:
            raise MburstError(f"model name must be one of {MODEL_NAMES}, got '{name}'")
        self.name, self.config = name, cfg
        self.visual = name != "unimodal"
        rule, act, fb, c = _RULE_OF[name], cfg.activation, cfg.feedback, cfg.channels
        self.audio_hw = (cfg.context, cfg.n_bins)
        self.audio_conv1 = BurstConv2d(1, c, 3, 1, 1, act, feedback=fb, learning_rule=rule, name="audio_conv1")
        self.audio_conv2 = BurstConv2d(c, c, 3, 1, 1, act, feedback=fb, learning_rule=rule, name="audio_conv2")
        self.audio_dense = BurstLinear(c * cfg.context * cfg.n_bins, cfg.embed, act, feedback=fb, learning_rule=rule,
                                       name="audio_dense", recurrent=cfg.use_z, z_init=cfg.z_init)
        n_cat = cfg.embed
        if self.visual:
            self.visual_hw = _conv_hw(_conv_hw(cfg.lip_hw, 2), 2)
            self.visual_conv1 = BurstConv2d(1, c, 3, 2, 1, act, feedback=fb, learning_rule=rule, name="visual_conv1")
            self.visual_conv2 = BurstConv2d(c, c, 3, 2, 1, act, feedback=fb, learning_rule=rule, name="visual_conv2")
            self.visual_dense = BurstLinear(c * self.visual_hw[0] * self.visual_hw[1], cfg.embed, act, feedback=fb,
                                            learning_rule=rule, name="visual_dense", recurrent=cfg.use_z,
                                            z_init=cfg.z_init)
            n_cat += cfg.embed
        self.out = BurstLinear(n_cat, cfg.n_bins, "sigmoid", output=True, feedback=fb, learning_rule=rule, name="out")
        if cfg.rescale_updates:
            for name, layer in self.burst_layers().items():
                layer.update_scale = self.hidden_gain() ** -HIDDEN_DEPTH[name.split("_", 1)[-1]]
        self._pass: BurstPass | None = None
        self._activities: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ structure
    def burst_layers(self) -> dict[str, BurstConv2d | BurstLinear]:
        """The layers by name, input side first, 'out' last."""
        names = ["audio_conv1", "audio_conv2", "audio_dense"]
        if self.visual:
            names += ["visual_conv1", "visual_conv2", "visual_dense"]
        return {n: getattr(self, n) for n in names + ["out"]}

    def hidden_gain(self) -> float:
        """``g = beta sigma'(alpha)`` (float): the linear-regime gain of a hidden layer's burst signal."""
        sig = 1.0 / (1.0 + math.exp(-self.config.alpha))
        return self.config.beta * sig * (1.0 - sig)

    @property
    def learning_rule(self) -> str:
        """'burstprop' or 'backprop' (every layer has the same)."""
        return self.out.learning_rule

    def set_learning_rule(self, rule: str) -> None:
        """Switch every layer to ``rule``, 'burstprop' or 'backprop' (weights unchanged); MburstError otherwise."""
        if rule not in LEARNING_RULES:
            raise MburstError(f"learning_rule must be one of {LEARNING_RULES}, got '{rule}'")
        for layer in self.burst_layers().values():
            layer.learning_rule = rule

    def describe(self) -> dict:
        """JSON-able description: model name, config, and per layer kind/in/out shapes/weights."""
        cfg, c = self.config, self.config.channels
        layers = {}

        def conv(name, in_shape, stride):
            out_hw = _conv_hw(in_shape[1:], stride)
            layer = getattr(self, name)
            layers[name] = {"kind": "conv2d", "in": list(in_shape), "out": [c, *out_hw], "weight": list(layer.weight.shape),
                            "stride": stride, "padding": 1, "activation": layer.activation}
            return (c, *out_hw)

        def dense(name, n_in):
            layer = getattr(self, name)
            layers[name] = {"kind": "dense", "in": [n_in], "out": [layer.out_features], "weight": list(layer.weight.shape),
                            "activation": layer.activation}

        shape = conv("audio_conv2", conv("audio_conv1", (1, *self.audio_hw), 1), 1)
        dense("audio_dense", math.prod(shape))
        if self.visual:
            shape = conv("visual_conv2", conv("visual_conv1", (1, *cfg.lip_hw), 2), 2)
            dense("visual_dense", math.prod(shape))
        dense("out", self.out.in_features)
        return {"name": self.name, "learning_rule": self.learning_rule, "config": cfg.to_dict(), "layers": layers}

    # ------------------------------------------------------------------ forward
    def _check(self, x, arg: str, hw: tuple[int, int]) -> None:
        expected = f"[B, 1, {hw[0]}, {hw[1]}]"
        if not isinstance(x, torch.Tensor):
            raise MburstError(f"{self.name}: argument '{arg}' must be a tensor {expected}, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 1 or tuple(x.shape[2:]) != tuple(hw):
            raise MburstError(f"{self.name}: argument '{arg}' must have shape {expected}, got {list(x.shape)}")
        if not x.is_floating_point():
            raise MburstError(f"{self.name}: argument '{arg}' must be floating point, got {x.dtype}")
        if not torch.isfinite(x).all():
            raise MburstError(f"{self.name}: argument '{arg}' contains NaN or infinite values")

    def forward(self, audio: torch.Tensor, visual: torch.Tensor | None = None) -> torch.Tensor:
        """Mask probabilities of a batch.

        Parameters
        ----------
        audio : Tensor [B, 1, context, n_bins]
            Standardised log-power features.
        visual : Tensor [B, 1, H, W], optional
            Lip images; required unless 'unimodal' (which ignores them).

        Returns
        -------
        Tensor [B, n_bins]
            e_out in [0, 1].

        Raises
        ------
        MburstError
            A missing, non-tensor, mis-shaped, non-float or non-finite input, or unequal batch sizes.
        """
        self._check(audio, "audio", self.audio_hw)
        if self.visual:
            if visual is None:
                raise MburstError(f"{self.name}: argument 'visual' is required (lip images [B, 1, {self.config.lip_hw[0]}, {self.config.lip_hw[1]}])")
            self._check(visual, "visual", self.config.lip_hw)
            if visual.shape[0] != audio.shape[0]:
                raise MburstError(f"{self.name}: arguments 'audio' and 'visual' have different batch sizes "
                                  f"({audio.shape[0]} vs {visual.shape[0]})")
        burst = self.learning_rule == "burstprop" and torch.is_grad_enabled()
        bp = BurstPass(self.config.burst_params(), learn_z=self.training) if burst else None
        self._pass = bp
        flatten = bp.flatten if burst else (lambda x: x.flatten(1))
        cat = bp.cat if burst else (lambda xs: torch.cat(xs, 1))
        acts = {}
        a1 = acts["audio_conv1"] = self.audio_conv1(audio, bp)
        a2 = acts["audio_conv2"] = self.audio_conv2(a1, bp)
        a3 = acts["audio_dense"] = self.audio_dense(flatten(a2), bp)
        if self.visual:
            v1 = acts["visual_conv1"] = self.visual_conv1(visual, bp)
            v2 = acts["visual_conv2"] = self.visual_conv2(v1, bp)
            v3 = acts["visual_dense"] = self.visual_dense(flatten(v2), bp)
            h = cat([a3, v3])
        else:
            h = a3
        self._activities = {k: v.detach() for k, v in acts.items()}
        return self.out(h, bp)

    # ------------------------------------------------------------------ introspection
    def hidden_activities(self) -> dict[str, torch.Tensor]:
        """Hidden event rates e (detached, [B, ...] per layer name) of the last forward (for energy accounting)."""
        return dict(self._activities)

    def layer_states(self) -> dict[str, LayerState]:
        """Per-layer :class:`LayerState` (detached e, bbar, d = b - bbar; properties b, p, pbar) of the
        last burstprop backward; empty in backprop mode or before a backward."""
        return dict(self._pass.states) if self._pass is not None else {}


def build_model(name: str, cfg: ModelConfig | None = None) -> AVMaskNet:
    """A mask network: 'mburst' (burstprop), 'multimodal' (same network, backprop) or 'unimodal'
    (audio only, backprop).

    Parameters
    ----------
    name : str
        One of ``MODEL_NAMES``.
    cfg : ModelConfig, optional
        Sizes and burstprop constants (default: the paper's full size).

    Returns
    -------
    AVMaskNet

    Raises
    ------
    MburstError
        Unknown model name.
    """
    return AVMaskNet(name, cfg if cfg is not None else ModelConfig())


def update_angles(model: AVMaskNet, audio: torch.Tensor, visual: torch.Tensor | None, target: torch.Tensor,
                  loss_fn) -> dict[str, float]:
    """Angle between the burstprop and the backprop update of each layer (W and bias together) on one batch.

    Leaves weights, ``.grad``, Z and the learning rule unchanged.

    Parameters
    ----------
    model : AVMaskNet
    audio : Tensor [B, 1, context, n_bins]
    visual : Tensor [B, 1, H, W] or None
        Lip images (ignored by 'unimodal').
    target : Tensor [B, n_bins]
        Mask targets in [0, 1].
    loss_fn : callable
        ``(e_out, target) -> scalar loss`` (a mean over the batch).

    Returns
    -------
    dict of str to float
        Degrees in [0, 180] per layer name (NaN where an update is zero).
    """
    rule, training = model.learning_rule, model.training
    layers = model.burst_layers()
    params = [p for layer in layers.values() for p in (layer.weight, layer.bias)]
    grads = {}
    try:
        model.eval()  # no Z learning during the measurement
        for r in LEARNING_RULES:
            model.set_learning_rule(r)
            with torch.enable_grad():
                loss = loss_fn(model(audio, visual), target)
                grads[r] = torch.autograd.grad(loss, params)
    finally:
        model.set_learning_rule(rule)
        model.train(training)
    out = {}
    for i, name in enumerate(layers):
        bp = torch.cat([g.flatten() for g in grads["burstprop"][2 * i: 2 * i + 2]])
        bk = torch.cat([g.flatten() for g in grads["backprop"][2 * i: 2 * i + 2]])
        out[name] = angle_deg(bp, bk)
    return out
