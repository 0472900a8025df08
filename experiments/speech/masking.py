"""A model's mask for noisy speech: its inputs from the audio and the lip frames, and the model as a mask function.

The inputs are built by the training pipeline itself (:mod:`experiments.data.frames`):
ln(|X|^2 + 1e-8) of bins 1..500 (:func:`experiments.data.features.log_power`),
standardised by the checkpoint's training :class:`~experiments.data.frames.Stats`,
frames t-7..t stacked by :func:`experiments.data.features.context_windows` ->
[1, 8, 500], and the lip crop of video frame t standardised by the same Stats ->
[1, 50, 92]. A :data:`MaskFn` maps a batch of them to probabilities over the 500
bins; a model with fewer bands sees the features pooled by
:func:`experiments.data.features.pool_features`, as in training, and its band mask
is spread back over the bins. Lip frame t belongs to audio frame t (25 fps = one
frame per 40 ms hop).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurons.common import MburstError

from experiments.data.features import (CONTEXT, HOP, N_BINS, SAMPLE_RATE, VIDEO_FPS, WIN, band_width,
                                       context_windows, expand_bands, log_power, pool_features)
from experiments.data.frames import Stats
from experiments.data.lips import LIP_H, LIP_W
from experiments.speech.resynthesis import check_audio, stft_padded

#: ``mask_fn(audio [B, 1, 8, 500], visual [B, 1, 50, 92]) -> probabilities [B, 500]`` (float32 arrays).
MaskFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
LIP_SHAPE = (LIP_H, LIP_W)


def align_lips(lips: np.ndarray, frames: int, source: str = "video") -> np.ndarray:
    """Lip crops for ``frames`` audio frames.

    Extra video frames are dropped; when the audio ends in a partial hop, the last lip frame
    serves it too; fewer lip frames than whole hops of audio is an error.

    Parameters
    ----------
    lips : ndarray, shape (n, 50, 92)
    frames : int
        Audio frames, ceil(samples / 640).
    source : str
        Name of the video for the error message.

    Returns
    -------
    ndarray, shape (frames, 50, 92)

    Raises
    ------
    MburstError
        On crops of another shape or a video shorter than the audio.
    """
    lips = np.asarray(lips)
    if lips.ndim != 3 or lips.shape[1:] != LIP_SHAPE:
        raise MburstError(f"{source}: expected lip crops [frames, {LIP_SHAPE[0]}, {LIP_SHAPE[1]}], got shape {lips.shape}")
    if len(lips) >= frames:
        return lips[:frames]
    if len(lips) == frames - 1 and len(lips) > 0:
        return np.concatenate([lips, lips[-1:]])
    raise MburstError(f"{source}: video has {len(lips)} frames ({len(lips) / VIDEO_FPS:.2f} s) but the audio needs "
                      f"{frames} ({frames * HOP / SAMPLE_RATE:.2f} s): the video is shorter than the audio")


def model_inputs(spec: np.ndarray, lips: np.ndarray, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
    """A model's inputs for every frame of an utterance (module doc).

    Parameters
    ----------
    spec : ndarray of complex, shape (frames, 623)
        STFT of the noisy audio.
    lips : ndarray, shape (frames, 50, 92)
        Lip crops, one per frame.
    stats : Stats
        Training-set statistics (500 bins).

    Returns
    -------
    audio : ndarray of float32, shape (frames, 1, 8, 500)
    visual : ndarray of float32, shape (frames, 1, 50, 92)

    Raises
    ------
    MburstError
        If ``stats`` does not have 500 bins.
    """
    features = stats.audio(log_power(spec))
    positions = np.arange(len(features))
    return context_windows(features, positions, positions, CONTEXT)[:, None], stats.lips(lips)[:, None]


def call_mask_fn(mask_fn: MaskFn, audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
    """``mask_fn(audio, visual)`` with its output checked.

    Parameters
    ----------
    mask_fn : MaskFn
    audio : ndarray of float32, shape (B, 1, 8, 500)
    visual : ndarray of float32, shape (B, 1, 50, 92)

    Returns
    -------
    ndarray of float32, shape (B, 500)

    Raises
    ------
    MburstError
        If the output has another shape.
    """
    out = np.asarray(mask_fn(audio, visual), dtype=np.float32)
    if out.shape != (audio.shape[0], N_BINS):
        raise MburstError(f"mask_fn: returned shape {out.shape}, expected ({audio.shape[0]}, {N_BINS})")
    return out


def predict_probs(noisy: np.ndarray, lips: np.ndarray, mask_fn: MaskFn, stats: Stats | None = None,
                  batch_size: int = 64, source: str = "video") -> np.ndarray:
    """A model's mask probabilities for a whole utterance (batched).

    Parameters
    ----------
    noisy : ndarray, shape (n,)
        16 kHz samples.
    lips : ndarray, shape (>= ceil(n / 640) - 1, 50, 92)
        Lip crops (:func:`align_lips`).
    mask_fn : MaskFn
    stats : Stats, optional
        Training-set statistics; default: none (:meth:`Stats.identity`).
    batch_size : int
        Frames per ``mask_fn`` call.
    source : str
        Name of the video for error messages.

    Returns
    -------
    ndarray of float32, shape (ceil(n / 640), 500)

    Raises
    ------
    MburstError
        On bad audio, too few lip frames, bad statistics or a bad ``mask_fn`` output.
    """
    stats = stats or Stats.identity()
    spec = stft_padded(check_audio(noisy, "noisy"))
    audio, visual = model_inputs(spec, align_lips(lips, len(spec), source), stats)
    return np.concatenate([call_mask_fn(mask_fn, audio[i:i + batch_size], visual[i:i + batch_size])
                           for i in range(0, len(spec), batch_size)])


def torch_mask_fn(model, device: str = "cpu") -> MaskFn:
    """A torch module ``model(audio, visual) -> probabilities`` as a numpy :data:`MaskFn` (eval mode, no grad).

    A model with fewer bands than the 500 feature bins (``config.n_bins``) sees band-pooled features
    (:func:`experiments.data.features.pool_features`, as in training) and its band mask is spread back
    over the bins (:func:`experiments.data.features.expand_bands`).

    Parameters
    ----------
    model : torch.nn.Module
    device : str
        Torch device of the model.

    Returns
    -------
    MaskFn

    Raises
    ------
    MburstError
        If the model's bands do not divide the 500 bins.
    """
    import torch

    model.eval()
    bands = getattr(getattr(model, "config", None), "n_bins", N_BINS)
    band_width(N_BINS, bands)

    def fn(audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
        a = np.require(pool_features(np.asarray(audio, dtype=np.float32), bands), np.float32, ["C", "W"])
        v = np.require(visual, np.float32, ["C", "W"])
        with torch.no_grad():
            out = model(torch.from_numpy(a).to(device), torch.from_numpy(v).to(device))
        return expand_bands(out.detach().cpu().numpy(), N_BINS)

    return fn


def checkpoint_masker(path) -> tuple[MaskFn, Stats, dict]:
    """The mask function and training statistics of a training checkpoint.

    Parameters
    ----------
    path : str or Path
        A ``checkpoint.pt`` (:func:`experiments.training.checkpoints.load_checkpoint`).

    Returns
    -------
    mask_fn : MaskFn
    stats : Stats
        The checkpoint's ``feature_stats``.
    state : dict
        The checkpoint without its ``model_state`` (the weights live in the model; a second copy would
        double the memory of a full-size model, 142 MB).

    Raises
    ------
    MburstError
        If the file is missing or corrupt, holds no feature statistics, or was trained with other
        feature settings.
    """
    from experiments.training.checkpoints import load_checkpoint

    model, state = load_checkpoint(path)
    if "feature_stats" not in state:
        raise MburstError(f"checkpoint '{path}' holds no feature_stats: cannot standardise its inputs")
    features = state.get("features", {})
    for key, expected in (("sample_rate", SAMPLE_RATE), ("win", WIN), ("hop", HOP), ("n_bins", N_BINS), ("context", CONTEXT)):
        if key in features and features[key] != expected:
            raise MburstError(f"checkpoint '{path}' was trained with {key}={features[key]!r}; enhancement uses {expected}")
    state = {key: value for key, value in state.items() if key != "model_state"}
    return torch_mask_fn(model), Stats.coerce(state["feature_stats"]), state
