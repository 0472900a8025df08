"""Training and evaluation of the rate models on the audio-visual mask task.

Passos et al.: weighted BCE (positives are rare), Adam (lr 1e-3, weight decay 1e-6), F1/accuracy over all
time-frequency units at threshold 0.5, and the per-epoch firing statistics of the hidden layers (Table II / Figure 3).

The positive weight w comes from the training masks (:data:`experiments.training.config.POS_WEIGHT_RULES`). The minimiser of the weighted BCE
is e = w q / (w q + 1 - q) for a posterior q, so the fixed threshold e = 0.5 thresholds q at 1 / (1 + w).  The plain
class ratio w = negatives/positives (about 20 on GRID at LC 5 dB) puts that at q = 0.05 and floods the mask with
false positives; its square root puts it near 0.18, closer to the F1-optimal threshold q = F1*/2 (Lipton, Elkan &
Narayanaswamy 2014, "Optimal thresholding of classifiers to maximize F1").

Resumable: the state is saved after every epoch, and on Ctrl-C with the batch position inside the epoch. The
shuffle order of epoch k is drawn from ``seed * 10007 + k`` alone, so a resumed run replays the same batches.
"""
from __future__ import annotations

import dataclasses
import math
import signal
from pathlib import Path

import numpy as np
import torch

from neurons.common import MburstError, atomic_write_json

from experiments.progress import Bar
from experiments.training.checkpoints import FEATURE_KEYS, config_dict, model_from_checkpoint, read_checkpoint, save_checkpoint
from experiments.training.config import TrainConfig, TrainResult
from experiments.training.metrics import ActivityStats, MaskCounts, weighted_bce

CHECKPOINT = "checkpoint.pt"


def feature_settings(corpus_meta: dict) -> dict:
    """The :data:`FEATURE_KEYS` entries of a corpus's metadata ``corpus_meta``.

    Parameters
    ----------
    corpus_meta : dict

    Returns
    -------
    dict
    """
    return {k: corpus_meta[k] for k in FEATURE_KEYS if k in corpus_meta}


def positive_weight(frames, rule: str = "sqrt", chunk: int = 4096) -> float:
    """w+ from r = (#negative units) / (#positive units) over the masks of a FrameSet: sqrt(r) or r.

    Parameters
    ----------
    frames : FrameSet
    rule : {'sqrt', 'ratio'}, optional
    chunk : int, optional
        Frames read at a time.

    Returns
    -------
    float

    Raises
    ------
    MburstError
        If the masks contain no positive unit.
    """
    positives = total = 0
    for start in range(0, len(frames), chunk):
        mask = frames.batch(np.arange(start, min(start + chunk, len(frames))))[2]
        positives += int(mask.sum())
        total += mask.numel()
    if positives == 0:
        raise MburstError("the training masks contain no positive unit; check --lc-db and the SNRs")
    ratio = (total - positives) / positives
    return math.sqrt(ratio) if rule == "sqrt" else ratio


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel (CPU and CUDA).

    One pass over each parameter instead of the foreach path's six; on the full-size model's 33 M-weight
    audio dense layer, 19 ms against 142 ms per step on 2 CPU cores.

    Parameters
    ----------
    model : torch.nn.Module
    cfg : TrainConfig
        Gives ``lr`` and ``weight_decay``.

    Returns
    -------
    torch.optim.Adam
    """
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def _to(device, *tensors):
    return [t.to(device, non_blocking=True) for t in tensors]


def activity_penalty(activities: dict, strength: float) -> torch.Tensor:
    """The activity (L1) penalty ``strength x sum_l sum |e_l| / sum_l numel(e_l)``: lambda times the mean event rate
    over every hidden unit and frame (e >= 0, so the L1 norm of the hidden activity per unit and frame; the same
    mean as :class:`experiments.training.metrics.ActivityStats`' ``mean_event_rate['overall']``).

    Parameters
    ----------
    activities : dict of str to torch.Tensor
        Per hidden layer, the event rates e of a batch, shape (B, ...), with their graph.
    strength : float
        lambda (per event-rate unit of e).

    Returns
    -------
    torch.Tensor
        A scalar, differentiable in the activities.
    """
    total = sum(e.abs().sum() for e in activities.values())
    return strength * total / sum(e.numel() for e in activities.values())


class HiddenOutputs:
    """The hidden layers' outputs e of a model's last forward, with their graph (forward hooks on every burst
    layer but the output): the tensors the forward computed, for :func:`activity_penalty`; ``enabled=False``
    registers nothing. A context manager; the hooks go on exit."""

    def __init__(self, model, enabled: bool = True):
        self.outputs: dict = {}
        keep = self.outputs.__setitem__
        self._hooks = [layer.register_forward_hook(lambda mod, args, out, name=name: keep(name, out))
                       for name, layer in model.burst_layers().items() if enabled and not layer.output]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    if not torch.isfinite(tensor).all():
        raise MburstError(f"{name} input contains NaN or infinite values")


@torch.no_grad()
def evaluate(model, frames, batch_size: int = 256, device: str = "cpu", keep_masks: slice | None = None, progress: bool = False):
    """Score ``model`` (eval mode) on a FrameSet, in batches of ``batch_size`` frames on ``device``.

    Parameters
    ----------
    model : torch.nn.Module
    frames : FrameSet
    batch_size : int, optional
    device : str, optional
    keep_masks : slice, optional
        Frames whose predicted masks to return.
    progress : bool, optional
        A bar on a terminal, one summary line elsewhere.

    Returns
    -------
    counts : MaskCounts
        At threshold 0.5.
    activity : dict
        :meth:`ActivityStats.summary` of the hidden layers.
    masks : numpy.ndarray of float32, shape (n_kept, n_bins), or None

    Raises
    ------
    MburstError
        If an input contains NaN or infinite values, or as the model's ``forward``.
    """
    model.eval()
    counts, activity, kept = MaskCounts(), ActivityStats(), []
    order = np.arange(len(frames))
    batches = range(0, len(order), batch_size)
    for start in Bar(batches, desc="evaluate", leave=False, show=progress):
        audio, visual, mask = frames.batch(order[start:start + batch_size])
        _check_finite("audio", audio)
        _check_finite("visual", visual)
        audio, visual, mask = _to(device, audio, visual, mask)
        prob = model(audio, visual)
        counts.update(prob, mask)
        activity.update(model.hidden_activities())
        if keep_masks is not None:
            kept.append(prob.cpu())
    masks = torch.cat(kept)[keep_masks].numpy() if keep_masks is not None and kept else None
    return counts, activity.summary(), masks


def _split_report(counts: MaskCounts, activity: dict, loss: float | None = None) -> dict:
    report = {"f1": counts.f1, "accuracy": counts.accuracy, "positive_fraction": counts.positive_fraction, **activity}
    if loss is not None:
        report["loss"] = loss
    return report


class _Interrupt:
    """Turns SIGINT/SIGTERM into a flag checked between batches, so a batch is never half applied."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(corpus, model_name: str, model_cfg, cfg: TrainConfig, out_dir: str | Path, resume: bool = False,
          progress: bool = True) -> TrainResult:
    """Train one model on the corpus's seeded split.

    Parameters
    ----------
    corpus : Corpus
        A prepared corpus (:func:`experiments.data.corpus.load_corpus`).
    model_name : {'mburst', 'multimodal', 'unimodal'}
        MBURST learns with burstprop, the others with backprop.
    model_cfg : ModelConfig
        Model sizes and burstprop settings.
    cfg : TrainConfig
        Optimisation settings (its ``model`` is replaced by ``model_name``).
    out_dir : str or Path
        Run folder: ``checkpoint.pt`` (every epoch), ``history.json``, and at the end ``metrics.json``.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` exactly where it stopped.
    progress : bool
        A per-batch bar on a terminal (one summary line per epoch elsewhere) and a line per epoch.

    Returns
    -------
    TrainResult
        Final metrics per split and the per-epoch history.

    Raises
    ------
    MburstError
        On invalid settings, a split without utterances, or a checkpoint from another run.
    KeyboardInterrupt
        After saving, when interrupted (SIGINT/SIGTERM).
    """
    from rate_bridge.burstprop.models import ModelConfig, build_model, update_angles

    cfg = dataclasses.replace(cfg, model=model_name)
    cfg.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT

    splits = corpus.split(cfg.split_seed)
    if len(splits["train"]) == 0 or len(splits["test"]) == 0:
        raise MburstError(f"the corpus has too few utterances for a train/test split ({len(corpus.utterances)})")
    stats = corpus.feature_stats(splits["train"])
    sets = {name: corpus.frames(splits[name], stats, model_cfg.n_bins) for name in ("train", "test", "proxy") if len(splits[name])}
    pos_weight = positive_weight(sets["train"], cfg.pos_weight)

    torch.manual_seed(cfg.seed)
    model = build_model(model_name, model_cfg).to(cfg.device)
    optimizer = make_optimizer(model, cfg)
    state = {"epoch": 0, "batch": 0, "history": [], "running": None}
    if resume and ckpt_path.exists():
        saved = read_checkpoint(ckpt_path)
        if saved["model_name"] != model_name or saved["train_config"]["split_seed"] != cfg.split_seed:
            raise MburstError(f"--resume: '{ckpt_path}' belongs to another run ({saved['model_name']}, split {saved['train_config']['split_seed']})")
        saved_rule = saved["train_config"].get("pos_weight", "ratio")  # checkpoints before the option used the ratio
        if saved_rule != cfg.pos_weight:
            raise MburstError(f"--resume: '{ckpt_path}' was trained with --pos-weight {saved_rule}; use another --out")
        saved_l1 = saved["train_config"].get("activity_l1", 0.0)  # checkpoints before the option had none
        if saved_l1 != cfg.activity_l1:
            raise MburstError(f"--resume: '{ckpt_path}' was trained with --activity-l1 {saved_l1:g}; use another --out")
        old = ModelConfig.from_dict(saved["model_config"]).to_dict()
        changed = ", ".join(f"{k}={old.get(k)!r}" for k, v in sorted(config_dict(model_cfg).items()) if old.get(k) != v)
        if changed:
            raise MburstError(f"--resume: '{ckpt_path}' was trained with another model configuration ({changed}); "
                              "use another --out")
        model = model_from_checkpoint(saved, ckpt_path).to(cfg.device)
        optimizer = make_optimizer(model, cfg)
        optimizer.load_state_dict(saved["optimizer_state"])
        state = {k: saved[k] for k in ("epoch", "batch", "history", "running")}

    def snapshot() -> dict:
        return {
            "model_name": model_name,
            "model_config": config_dict(model_cfg),
            "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "train_config": dataclasses.asdict(cfg),
            "features": feature_settings(corpus.meta),
            "corpus": {"source": corpus.meta.get("source"), "cache_key": corpus.meta.get("cache_key")},
            "feature_stats": dataclasses.asdict(stats),  # plain arrays: no class path in the pickle
            "pos_weight": pos_weight,
            **state,
        }

    angle_batch = sets["train"].batch(np.arange(min(cfg.batch_size, len(sets["train"]))))
    n_batches = (len(sets["train"]) + cfg.batch_size - 1) // cfg.batch_size
    with _Interrupt() as interrupt, HiddenOutputs(model, enabled=cfg.activity_l1 > 0) as hidden:
        for epoch in range(state["epoch"], cfg.epochs):
            generator = torch.Generator().manual_seed(cfg.seed * 10007 + epoch)
            order = torch.randperm(len(sets["train"]), generator=generator).numpy()
            running = state["running"] or {"loss": 0.0, "n": 0, "counts": MaskCounts(), "activity": ActivityStats()}
            model.train()
            with Bar(range(state["batch"], n_batches), desc=f"{model_name} epoch {epoch + 1}/{cfg.epochs}",
                     unit="batch", show=progress, leave=False) as bar:
                for b in bar:
                    audio, visual, mask = sets["train"].batch(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
                    audio, visual, mask = _to(cfg.device, audio, visual, mask)
                    prob = model(audio, visual)
                    loss = weighted_bce(prob, mask, pos_weight)
                    if cfg.activity_l1:
                        loss = loss + activity_penalty(hidden.outputs, cfg.activity_l1)
                    if not torch.isfinite(loss):
                        raise MburstError(f"training diverged: loss is {float(loss)} at epoch {epoch + 1}, batch {b + 1}")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    running["loss"] += float(loss.detach()) * len(mask)
                    running["n"] += len(mask)
                    running["counts"].update(prob.detach(), mask)
                    running["activity"].update(model.hidden_activities())
                    bar.set_postfix(loss=f"{running['loss'] / running['n']:.4f}", f1=f"{running['counts'].f1:.3f}")
                    if interrupt.requested:
                        state.update(epoch=epoch, batch=b + 1, running=running)
                        save_checkpoint(ckpt_path, snapshot())
                        raise KeyboardInterrupt
            test_counts, test_activity, _ = evaluate(model, sets["test"], cfg.eval_batch_size, cfg.device)
            record = {
                "epoch": epoch + 1,
                "train": _split_report(running["counts"], running["activity"].summary(), running["loss"] / max(running["n"], 1)),
                "test": _split_report(test_counts, test_activity),
            }
            if model_name == "mburst":
                audio, visual, mask = _to(cfg.device, *angle_batch)
                record["angles_deg"] = update_angles(model, audio, visual, mask, lambda p, t: weighted_bce(p, t, pos_weight))
            state["history"].append(record)
            state.update(epoch=epoch + 1, batch=0, running=None)
            save_checkpoint(ckpt_path, snapshot())
            atomic_write_json(out_dir / "history.json", state["history"])
            if progress:
                print(f"{model_name} epoch {epoch + 1}: loss {record['train']['loss']:.4f} "
                      f"train F1 {record['train']['f1']:.3f} test F1 {record['test']['f1']:.3f} "
                      f"active {record['test']['active_fraction'].get('overall', float('nan')):.3f}", flush=True)
            if interrupt.requested:
                raise KeyboardInterrupt

    final = {}
    for name, frames in sets.items():
        counts, activity, _ = evaluate(model, frames, cfg.eval_batch_size, cfg.device)
        final[name] = _split_report(counts, activity)
    result = TrainResult(model=model_name, final=final, history=state["history"], pos_weight=pos_weight,
                         split_sizes={k: int(len(v)) for k, v in splits.items()})
    atomic_write_json(out_dir / "metrics.json", result.to_dict())
    return result
