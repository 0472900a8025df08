"""Model inputs: the training-set standardisation (:class:`Stats`) and frame sets (:class:`FrameSet`).

A model sees, per frame t, the standardised log-power of bins 1..500,
a(t, f) = (ln(|X(t, f)|^2 + 1e-8) - mu_f) / sigma_f, optionally pooled into bands
(:func:`experiments.data.features.pool_features`), frames t-7..t stacked
(:func:`experiments.data.features.context_windows`) -> [1, 8, bands], and the
lip crop of video frame t standardised as (L - mu_L) / sigma_L -> [1, 50, 92].
Training (:class:`FrameSet`), offline and streaming enhancement
(:mod:`experiments.speech`) standardise with the same :class:`Stats` of the
training split, stored in each checkpoint under ``feature_stats``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurons.common import MburstError

from experiments.data import features as F

#: Visual-input ablations of :meth:`FrameSet.with_lips` (does a model use its lips?).
LIP_ABLATIONS = ("shuffled", "mean")


@dataclass
class Stats:
    """Training-set standardisation: per-bin log-power mean/std, scalar lip-pixel mean/std.

    Attributes
    ----------
    mean, std : ndarray of float32, shape (bins,)
        Per-bin mean and standard deviation (> 0) of the natural-log power.
    lip_mean, lip_std : float
        Mean and standard deviation (> 0) of the lip pixels (0..255).
    """

    mean: np.ndarray
    std: np.ndarray
    lip_mean: float
    lip_std: float

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            arr = np.asarray(getattr(self, name), dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise MburstError(f"feature_stats {name}: expected one value per bin, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise MburstError(f"feature_stats {name}: contains NaN or inf")
            setattr(self, name, arr)
        if self.mean.shape != self.std.shape:
            raise MburstError(f"feature_stats: mean has {self.mean.size} bins but std {self.std.size}")
        if np.any(self.std <= 0):
            raise MburstError("feature_stats std: must be positive in every bin")
        self.lip_mean, self.lip_std = float(self.lip_mean), float(self.lip_std)
        if not np.isfinite(self.lip_mean) or not np.isfinite(self.lip_std) or self.lip_std <= 0:
            raise MburstError(f"feature_stats lip_mean/lip_std: need finite values and lip_std > 0, "
                              f"got {self.lip_mean}, {self.lip_std}")

    def __iter__(self):
        return iter((self.mean, self.std, self.lip_mean, self.lip_std))

    @classmethod
    def identity(cls, bins: int = F.N_BINS) -> "Stats":
        """No standardisation: mean 0 and std 1 (audio and lips).

        Parameters
        ----------
        bins : int
            Feature bins.

        Returns
        -------
        Stats
        """
        return cls(np.zeros(bins, np.float32), np.ones(bins, np.float32), 0.0, 1.0)

    @classmethod
    def coerce(cls, stats) -> "Stats":
        """Stats from a checkpoint's ``feature_stats``.

        Parameters
        ----------
        stats : Stats, dict or iterable
            A :class:`Stats`, a dict with keys mean, std, lip_mean, lip_std, or the four values in that order.

        Returns
        -------
        Stats

        Raises
        ------
        MburstError
            If a key or value is missing or a value is invalid (see the class).
        """
        if isinstance(stats, Stats):
            return stats
        if isinstance(stats, dict):
            try:
                values = (stats["mean"], stats["std"], stats["lip_mean"], stats["lip_std"])
            except KeyError as err:
                raise MburstError(f"feature_stats: missing {err.args[0]!r}") from None
        else:
            try:
                values = tuple(stats)
            except TypeError:
                raise MburstError(f"feature_stats: expected (mean, std, lip_mean, lip_std), got {type(stats).__name__}") from None
            if len(values) != 4:
                raise MburstError(f"feature_stats: expected 4 values (mean, std, lip_mean, lip_std), got {len(values)}")
        return cls(*values)

    def audio(self, log_power: np.ndarray) -> np.ndarray:
        """Standardised log-power a = (ln power - mean) / std, per bin.

        Parameters
        ----------
        log_power : ndarray of float32, shape (frames, bins)
            :func:`experiments.data.features.log_power` rows.

        Returns
        -------
        ndarray of float32, shape (frames, bins)

        Raises
        ------
        MburstError
            If the rows do not have this Stats' number of bins.
        """
        if log_power.shape[-1] != self.mean.size:
            raise MburstError(f"feature_stats: {self.mean.size} bins, but the features have {log_power.shape[-1]}")
        return (log_power - self.mean) / self.std

    def lips(self, crops: np.ndarray) -> np.ndarray:
        """Standardised lip crops v = (L - lip_mean) / lip_std.

        Parameters
        ----------
        crops : ndarray, shape (..., 50, 92)
            Lip pixels (uint8 0..255 or float).

        Returns
        -------
        ndarray of float32, shape of ``crops``
        """
        return (np.asarray(crops, dtype=np.float32) - np.float32(self.lip_mean)) / np.float32(self.lip_std)


@dataclass
class FrameSet:
    """Frames of a set of utterances of a corpus, standardised with training statistics.

    ``batch(i)`` gives ``audio`` [B, 1, 8, n_bins] (frames t-7..t of the same
    utterance, oldest first, zeros before its first frame), ``visual``
    [B, 1, 50, 92] and ``mask`` [B, n_bins], all float32 torch tensors, gathered
    with vectorised indexing. ``n_bins`` below the corpus's bins pools them
    (:func:`experiments.data.features.pool_features` / ``pool_mask``).
    """

    corpus: object  # experiments.data.corpus.Corpus
    utt_indices: np.ndarray
    stats: Stats
    context: int = F.CONTEXT
    n_bins: int = F.N_BINS
    _audio: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        rows, lip_rows, pos = self.corpus.rows(self.utt_indices)
        lp = np.asarray(self.corpus.log_power[rows], dtype=np.float32)
        self._audio = np.ascontiguousarray(F.pool_features(self.stats.audio(lp), self.n_bins), dtype=np.float32)
        self._mask = F.pool_mask(np.asarray(self.corpus.ibm[rows]), self.n_bins)
        uniq, local = np.unique(lip_rows, return_inverse=True)
        self._lips = np.asarray(self.corpus.lips[uniq])
        self._lip_row = local.astype(np.int64).reshape(-1)
        self._pos = pos.astype(np.int64)

    def __len__(self) -> int:
        return len(self._pos)

    def with_lips(self, mode: str, seed: int = 0) -> "FrameSet":
        """A copy whose visual input is ablated; audio and masks are unchanged.

        Parameters
        ----------
        mode : {'shuffled', 'mean'}
            'shuffled' gives each frame the lip image of another frame of the set (a seeded permutation:
            same images, broken pairing); 'mean' gives every frame the training-mean lips (zeros after
            standardisation).
        seed : int
            Seed of the permutation.

        Returns
        -------
        FrameSet

        Raises
        ------
        MburstError
            If ``mode`` is not one of :data:`LIP_ABLATIONS`.
        """
        import copy

        import torch

        if mode not in LIP_ABLATIONS:
            raise MburstError(f"lip ablation must be one of {', '.join(LIP_ABLATIONS)}, got '{mode}'")
        out = copy.copy(self)
        if mode == "shuffled":
            perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)).numpy()
            out._lip_row = self._lip_row[perm]
        else:
            out._lips = np.full((1, *self._lips.shape[1:]), self.stats.lip_mean, dtype=np.float32)
            out._lip_row = np.zeros_like(self._lip_row)
        return out

    def batch(self, frame_idx):
        """The model inputs and targets of some frames of the set.

        Parameters
        ----------
        frame_idx : array_like of int, shape (B,)
            Frame indices 0..len-1 (numpy, list or torch tensor).

        Returns
        -------
        audio : torch.Tensor of float32, shape (B, 1, context, n_bins)
        visual : torch.Tensor of float32, shape (B, 1, 50, 92)
        mask : torch.Tensor of float32, shape (B, n_bins)
            The (pooled) ideal binary mask, 0 or 1.
        """
        import torch

        idx = np.asarray(frame_idx, dtype=np.int64).reshape(-1)
        audio = F.context_windows(self._audio, idx, self._pos, self.context)
        visual = self.stats.lips(self._lips[self._lip_row[idx]])
        return (torch.from_numpy(audio[:, None]), torch.from_numpy(visual[:, None]),
                torch.from_numpy(self._mask[idx].astype(np.float32)))

    def batches(self, batch_size: int, shuffle: bool = True, generator=None):
        """Iterate over the set in batches (see :meth:`batch`).

        Parameters
        ----------
        batch_size : int
            Frames per batch (the last may be smaller).
        shuffle : bool
            Random order (``torch.randperm`` with ``generator``), else in order.
        generator : torch.Generator, optional

        Yields
        ------
        tuple of torch.Tensor
            ``(audio, visual, mask)`` as in :meth:`batch`.

        Raises
        ------
        MburstError
            If ``batch_size`` < 1.
        """
        import torch

        if batch_size < 1:
            raise MburstError(f"batch_size {batch_size}: must be >= 1")
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i:i + batch_size])
