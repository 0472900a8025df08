"""Training checkpoints: save atomically, load with clear errors.

A checkpoint holds everything needed to resume exactly or to use the model
elsewhere: the model name and :class:`rate_bridge.burstprop.models.ModelConfig`, its
weights, the optimiser state, the epoch/batch position, the running metrics,
the feature statistics of the training split and the corpus feature settings.
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import torch

from neurons.common import MburstError, atomic_write_bytes

FORMAT = "mburst-checkpoint-v1"
#: Corpus settings a model is tied to; data prepared otherwise cannot be scored with it.
FEATURE_KEYS = ("sample_rate", "win", "hop", "n_bins", "context", "lip_shape")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` through a temporary file."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict, or raise a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MburstError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise MburstError(f"checkpoint '{path}' is corrupt or not a torch file ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MburstError(f"'{path}' is not an mburst checkpoint (format tag missing)")
    return state


def model_from_checkpoint(state: dict, path: str | Path = "checkpoint"):
    """Rebuild the model recorded in ``state`` and load its weights (shapes checked)."""
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
    """``(model, state)`` for a checkpoint file; the model is in eval mode on the CPU."""
    state = read_checkpoint(path)
    model = model_from_checkpoint(state, path)
    model.eval()
    return model, state


def check_features(state: dict, corpus_meta: dict, path: str | Path = "checkpoint") -> None:
    """Refuse data prepared with other feature settings than the checkpoint's."""
    trained = state.get("features", {})
    for key in FEATURE_KEYS:
        if key in trained and key in corpus_meta and _norm(trained[key]) != _norm(corpus_meta[key]):
            raise MburstError(
                f"data prepared with {key}={corpus_meta[key]!r} but checkpoint '{path}' was trained with {key}={trained[key]!r}"
            )


def _norm(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
