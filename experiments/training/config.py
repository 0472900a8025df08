"""What a training run is set up with (:class:`TrainConfig`) and what it yields (:class:`TrainResult`,
its ``metrics.json``)."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from neurons.common import MburstError

from rate_bridge.burstprop.models import MODEL_NAMES

#: w+ from the training masks' class ratio r = negatives/positives: 'sqrt' = sqrt(r) (default), 'ratio' = r.
POS_WEIGHT_RULES = ("sqrt", "ratio")

#: Named training settings (``mburst train --preset``, reproduce's spiking stage); given options override them.
PRESETS = {
    "spiking": dict(model="mburst", activation="calibrated-circuit", bins=100, channels=2, embed=32, beta=1.0,
                    epochs=4, batch_size=256),
}
"""``spiking``: a compact MBURST in the regime the default ``mburst bridge`` runs: the transfer functions of a
layer of the circuit measured in place (``calibrated-circuit``), beta 1 (the circuit's dendritic current is
``beta x width`` pA per unit of ``u``: the calibration's own slope), 100 bands, 2 channels, 32-wide embeddings,
4 epochs of batches of 256."""


@dataclass
class TrainConfig:
    """Optimisation settings of one training run (defaults from the paper).

    ``activity_l1`` (lambda, default 0: off) adds ``lambda x mean(|e|)`` over every hidden unit and frame of the
    batch to the weighted BCE (e >= 0: the L1 norm of the hidden event rates per unit;
    :func:`experiments.training.train.activity_penalty`); backprop models only.
    """

    model: str = "mburst"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    seed: int = 0
    split_seed: int = 0
    device: str = "cpu"
    eval_batch_size: int = 256
    pos_weight: str = "sqrt"
    activity_l1: float = 0.0

    def validate(self) -> None:
        """Check the settings.

        Raises
        ------
        MburstError
            One line naming the option: an unknown model or positive-weight rule, a count below 1, a learning
            rate <= 0, an activity penalty that is negative, not finite or given to MBURST, or CUDA without a device.
        """
        if self.model not in MODEL_NAMES:
            raise MburstError(f"--model must be one of {', '.join(MODEL_NAMES)}, got '{self.model}'")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise MburstError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise MburstError(f"--lr must be > 0, got {self.lr}")
        l1 = self.activity_l1
        if isinstance(l1, bool) or not isinstance(l1, (int, float)) or not math.isfinite(l1) or l1 < 0:
            raise MburstError(f"--activity-l1 must be a finite number >= 0, got {self.activity_l1}")
        if self.activity_l1 and self.model == "mburst":
            raise MburstError("--activity-l1 is for the backprop models (multimodal, unimodal): MBURST's hidden "
                              "layers learn only from the bursts fed back from the output, and a rate penalty would be "
                              "a second, non-burst teaching signal")
        if self.pos_weight not in POS_WEIGHT_RULES:
            raise MburstError(f"--pos-weight must be one of {', '.join(POS_WEIGHT_RULES)}, got '{self.pos_weight}'")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise MburstError(f"--device {self.device} requested but torch sees no CUDA device")


@dataclass
class TrainResult:
    """The outcome of one training run, as written to its ``metrics.json``.

    ``final[split]`` (split: 'train', 'test', 'proxy') holds ``f1`` and ``accuracy`` (%) at threshold
    0.5 and the hidden layers' firing statistics ``active_fraction``/``mean_event_rate`` (per layer and
    ``'overall'``); ``history`` holds one record per epoch (the same per split, plus ``loss``: the weighted BCE, plus
    the activity penalty with ``activity_l1`` > 0; and, for MBURST, ``angles_deg``); ``pos_weight`` is the BCE's positive weight w (dimensionless);
    ``split_sizes`` counts utterances per split; ``wall_s`` and ``cpu_s`` the training wall and process CPU
    time (s) when measured.
    """

    model: str
    final: dict
    history: list
    pos_weight: float
    split_sizes: dict
    wall_s: float | None = None
    cpu_s: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str | Path) -> "TrainResult":
        """Read a run's ``metrics.json`` at ``path``.

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        TrainResult

        Raises
        ------
        MburstError
            Naming the file, if it is not a training ``metrics.json``.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})
        except (OSError, ValueError, TypeError) as err:
            raise MburstError(f"{path}: not a training metrics.json ({err})") from None

    def test_score(self, metric: str = "f1") -> float:
        """The final test-split ``metric``: 'f1' (0-1) or 'accuracy' (%).

        Parameters
        ----------
        metric : {'f1', 'accuracy'}, optional

        Returns
        -------
        float
        """
        return float(self.final["test"][metric])
