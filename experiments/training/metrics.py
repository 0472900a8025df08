"""Mask metrics and firing-rate ("energy") statistics of the MBURST paper.

F1 and accuracy are counted over all time-frequency units at threshold 0.5
(Passos et al., Table I). The paper's "activation rate" is not defined
exactly (reference.md section 1), so both readings are kept per hidden layer:
the fraction of units with e > 0 and the mean event rate e. "overall" pools
all hidden units (unit-weighted), so the large convolutional layers dominate.
Table II is the trapezoid area under the per-epoch curve.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class MaskCounts:
    """Confusion counts of a binary mask at a threshold."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def update(self, prob: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> None:
        """Add the confusion counts of one batch.

        Parameters
        ----------
        prob : torch.Tensor, shape (B, n_bins)
            Mask probabilities in [0, 1].
        target : torch.Tensor, shape (B, n_bins)
            Ideal binary mask (a unit is positive when >= 0.5).
        threshold : float, optional
            Decision threshold on ``prob`` (0.5, Passos et al.).
        """
        pred = prob >= threshold
        truth = target >= 0.5
        self.tp += int((pred & truth).sum())
        self.fp += int((pred & ~truth).sum())
        self.fn += int((~pred & truth).sum())
        self.tn += int((~pred & ~truth).sum())

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 0.0

    @property
    def positive_fraction(self) -> float:
        """Fraction of units that are positive (speech-dominated) in the target mask."""
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.fn) / total if total else 0.0

    @property
    def accuracy(self) -> float:
        """Accuracy in percent, as the paper reports it."""
        total = self.tp + self.fp + self.fn + self.tn
        return 100.0 * (self.tp + self.tn) / total if total else 0.0


@dataclass
class ActivityStats:
    """Running per-layer sums of active units (e > 0) and event rates."""

    active: dict = field(default_factory=dict)
    rate: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)

    def update(self, activities: dict[str, torch.Tensor]) -> None:
        """Add one batch's hidden event rates.

        Parameters
        ----------
        activities : dict of str -> torch.Tensor
            Per layer, the event rates e of any shape (the model's ``hidden_activities()``).
        """
        for name, e in activities.items():
            e = e.detach()
            self.active[name] = self.active.get(name, 0.0) + float((e > 0).sum())
            self.rate[name] = self.rate.get(name, 0.0) + float(e.sum())
            self.units[name] = self.units.get(name, 0) + e.numel()

    def summary(self) -> dict:
        """{'active_fraction': {layer: f, 'overall': f}, 'mean_event_rate': {...}}."""
        out = {"active_fraction": {}, "mean_event_rate": {}}
        for name, n in self.units.items():
            out["active_fraction"][name] = self.active[name] / n
            out["mean_event_rate"][name] = self.rate[name] / n
        total = sum(self.units.values())
        if total:
            out["active_fraction"]["overall"] = sum(self.active.values()) / total
            out["mean_event_rate"]["overall"] = sum(self.rate.values()) / total
        return out


def energy_auc(per_epoch: list[float]) -> float:
    """Trapezoid area under a per-epoch curve (epochs spaced 1 apart), Table II.

    Parameters
    ----------
    per_epoch : list of float, length n_epochs
        One value per epoch.

    Returns
    -------
    float
        The area (the single value's sum if fewer than 2 epochs), in the curve's unit x epochs.
    """
    values = np.asarray(per_epoch, dtype=float)
    if values.size < 2:
        return float(values.sum())
    return float(np.trapezoid(values))


def weighted_bce(prob: torch.Tensor, target: torch.Tensor, pos_weight: float, eps: float = 1e-6) -> torch.Tensor:
    """Weighted binary cross-entropy on probabilities, mean over all units.

    L = -mean(w+ t log e + (1 - t) log(1 - e)), w+ = negatives/positives in the
    training masks (positives are rare) (Passos et al.).

    Parameters
    ----------
    prob : torch.Tensor, shape (B, n_bins)
        Mask probabilities e, clamped to [eps, 1 - eps].
    target : torch.Tensor, shape (B, n_bins)
        Ideal binary mask t.
    pos_weight : float
        w+ (dimensionless).
    eps : float, optional
        Clamp of ``prob``.

    Returns
    -------
    torch.Tensor, shape ()
        The loss (nats).
    """
    prob = prob.clamp(eps, 1 - eps)
    return -(pos_weight * target * torch.log(prob) + (1 - target) * torch.log1p(-prob)).mean()
