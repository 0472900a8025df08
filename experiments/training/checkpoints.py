"""Training checkpoints: save atomically, load with clear errors.

A checkpoint holds everything needed to resume exactly or to use the model
elsewhere: the model name and :class:`rate_bridge.burstprop.models.ModelConfig`, its
weights, the optimiser state, the epoch/batch position, the running metrics,
the feature statistics of the training split and the corpus feature settings.
"""
from __future__ import annotations

import dataclasses
import io
import pickle
import types
from pathlib import Path

import torch

from neurons.common import MburstError, atomic_write_bytes

FORMAT = "mburst-checkpoint-v1"
#: Classes older checkpoints pickled, (module, name), and the module each lives in now.
MOVED_CLASSES = {("experiments.corpus", "Stats"): "experiments.data.frames",
                 ("experiments.data.corpus", "Stats"): "experiments.data.frames"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(MOVED_CLASSES.get((module, name), module), name)


_PICKLE = types.SimpleNamespace(Unpickler=_Unpickler, load=pickle.load, __name__="pickle")
#: Corpus settings a model is tied to; data prepared otherwise cannot be scored with it.
FEATURE_KEYS = ("sample_rate", "win", "hop", "n_bins", "context", "lip_shape")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` through a temporary file.

    Parameters
    ----------
    path : str or Path
        Destination (``checkpoint.pt``).
    state : dict
        Picklable checkpoint content (see the module docstring).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict, or raise a one-line error naming the file.

    Parameters
    ----------
    path : str or Path
        Checkpoint file (loaded onto the CPU).

    Returns
    -------
    dict
        The saved state, with ``'format'`` equal to :data:`FORMAT`.

    Raises
    ------
    MburstError
        If the file does not exist, cannot be unpickled, or lacks the format tag.

    Notes
    -----
    Checkpoints written before the package layout changed pickled the feature statistics as
    ``experiments.corpus.Stats``; :data:`MOVED_CLASSES` maps them to where the class lives now.
    """
    path = Path(path)
    if not path.is_file():
        raise MburstError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PICKLE)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise MburstError(f"checkpoint '{path}' is corrupt or not a torch file ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MburstError(f"'{path}' is not an mburst checkpoint (format tag missing)")
    return state


def model_from_checkpoint(state: dict, path: str | Path = "checkpoint"):
    """Rebuild the model recorded in ``state`` and load its weights (shapes checked).

    Parameters
    ----------
    state : dict
        A checkpoint (:func:`read_checkpoint`) with ``model_name``, ``model_config``, ``model_state``.
    path : str or Path, optional
        Names the checkpoint in errors.

    Returns
    -------
    torch.nn.Module
        The model, on the CPU, in training mode.

    Raises
    ------
    MburstError
        If the model description is unusable or the weights do not fit the model.
    """
    from rate_bridge.burstprop.models import ModelConfig, build_model

    try:
        cfg = ModelConfig(**state["model_config"])
        model = build_model(state["model_name"], cfg)
    except (KeyError, TypeError, ValueError) as err:
        raise MburstError(f"checkpoint '{path}' has an unusable model description: {err}") from None
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise MburstError(f"checkpoint '{path}' does not fit model '{state['model_name']}': {detail}") from None
    return model


def load_checkpoint(path: str | Path):
    """``(model, state)`` for a checkpoint file; the model is in eval mode on the CPU.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.

    Returns
    -------
    model : torch.nn.Module
    state : dict

    Raises
    ------
    MburstError
        As :func:`read_checkpoint` and :func:`model_from_checkpoint`.
    """
    state = read_checkpoint(path)
    model = model_from_checkpoint(state, path)
    model.eval()
    return model, state


def check_features(state: dict, corpus_meta: dict, path: str | Path = "checkpoint") -> None:
    """Refuse data prepared with other feature settings than the checkpoint's.

    Parameters
    ----------
    state : dict
        A checkpoint; its ``'features'`` holds the training corpus's :data:`FEATURE_KEYS`.
    corpus_meta : dict
        The metadata of the data to score.
    path : str or Path, optional
        Names the checkpoint in errors.

    Raises
    ------
    MburstError
        If a key of :data:`FEATURE_KEYS` present in both differs.
    """
    trained = state.get("features", {})
    for key in FEATURE_KEYS:
        if key in trained and key in corpus_meta and _norm(trained[key]) != _norm(corpus_meta[key]):
            raise MburstError(
                f"data prepared with {key}={corpus_meta[key]!r} but checkpoint '{path}' was trained with {key}={trained[key]!r}"
            )


def _norm(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def config_dict(cfg) -> dict:
    """A dataclass as a plain dict (``dataclasses.asdict``), e.g. a ``ModelConfig`` for a checkpoint.

    Parameters
    ----------
    cfg : dataclass instance

    Returns
    -------
    dict
    """
    return dataclasses.asdict(cfg)
