"""Data probes of a prepared corpus: audio-visual synchrony and how much vision alone says about the mask."""
from __future__ import annotations

import numpy as np

from neurons.common import MburstError

from experiments.data import features as F
from experiments.data.corpus import Corpus


# ---------------------------------------------------------------- audio-visual synchrony

def av_sync_profile(corpus: Corpus, max_lag: int = 6) -> dict:
    """Are the lip frames aligned with the audio frames? Correlation of mouth opening with speech energy
    at frame lags -max_lag..max_lag (see :func:`av_sync_lags`), over all clean utterances.

    Parameters
    ----------
    corpus : Corpus
    max_lag : int
        Largest lag in frames (40 ms each), >= 0.

    Returns
    -------
    dict
        As :func:`av_sync_lags`.
    """
    return av_sync_lags(av_sync_pairs(corpus), max_lag)


def av_sync_pairs(corpus: Corpus) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clean utterance: its lip frames and the clean speech log-energy of each 40 ms frame.

    Parameters
    ----------
    corpus : Corpus

    Returns
    -------
    list of (ndarray of float32, shape (n, 50, 92); ndarray of float64, shape (n,))
        Lip frames and ln(mean(s^2) + 1e-10) of each hop of the clean speech s.
    """
    pairs = []
    for c in corpus.cleans:
        n = c["n_frames"]
        lips = np.asarray(corpus.lips[c["lip_start"]:c["lip_start"] + n], dtype=np.float32)
        wave = np.asarray(corpus.clean_audio[c["wave_start"]:c["wave_start"] + n * F.HOP], dtype=np.float64)
        pairs.append((lips, np.log(np.mean(wave.reshape(n, F.HOP) ** 2, axis=1) + 1e-10)))
    return pairs


def av_sync_lags(pairs, max_lag: int = 6) -> dict:
    """Mean over utterances of corr(mouth opening at frame t, speech log-energy at frame t + lag).

    ``pairs``: ``(lips [n, H, W], log_energy [n])`` per utterance, frame t of both
    covering the same 40 ms. The mouth opening is measured as the darkness (minus
    the mean intensity) of the central half of the lip crop, where the open mouth
    cavity appears. A peak at lag 0 (or +-1: the mouth moves slightly before the
    sound) means aligned streams; a peak at lag k > 0 means the audio lags the
    video by k frames.

    Parameters
    ----------
    pairs : iterable of (ndarray, shape (n, H, W); ndarray, shape (n,))
    max_lag : int
        Largest lag in frames, >= 0.

    Returns
    -------
    dict
        ``lags`` (list of int), ``r`` (mean correlation per lag, NaN where no utterance had one),
        ``best_lag``, ``best_r``, ``n_utterances``.

    Raises
    ------
    MburstError
        If ``max_lag`` < 0 or an utterance has different numbers of lip and audio frames.
    """
    if max_lag < 0:
        raise MburstError(f"av_sync_lags: max_lag={max_lag} must be >= 0")
    lags = list(range(-max_lag, max_lag + 1))
    per_lag = {lag: [] for lag in lags}
    for lips, energy in pairs:
        n = len(energy)
        if len(lips) != n:
            raise MburstError(f"av_sync_lags: {len(lips)} lip frames but {n} audio frames")
        h, w = np.shape(lips)[1:]
        opening = -np.asarray(lips[:, h // 4:3 * h // 4, w // 4:3 * w // 4], dtype=np.float64).mean(axis=(1, 2))
        for lag in lags:
            a, b = (opening[:n - lag], energy[lag:]) if lag >= 0 else (opening[-lag:], energy[:n + lag])
            if len(a) > 2 and a.std() > 0 and b.std() > 0:
                per_lag[lag].append(float(np.corrcoef(a, b)[0, 1]))
    r = [float(np.mean(per_lag[lag])) if per_lag[lag] else float("nan") for lag in lags]
    best = int(np.nanargmax(r))
    return {"lags": lags, "r": r, "best_lag": lags[best], "best_r": r[best], "n_utterances": len(pairs)}


# ---------------------------------------------------------------- vision-only probe

def vision_mask_probe(corpus: Corpus, seed: int = 0, ridge: float = 10.0, context: int = 0) -> dict:
    """Does vision alone predict the mask? Ridge regression from lip pixels to the IBM.

    Features: the lip crops of frames t - context .. t + context (within the utterance, its first and
    last frames repeated at the edges), each average-pooled 4x4 (12 x 23), standardised, plus a bias;
    W = (X'X + ridge I)^-1 X'Y on the training split (normal equations summed in chunks); a global
    threshold chosen for best training F1; F1 on the test split. Chance: predicting all ones
    (F1 = 2p/(1+p), p the test prevalence) and the same probe trained on lips shuffled across frames.
    Comparing ``context`` 0 with 1-3 measures what several frames of lip motion add to one frame.

    Parameters
    ----------
    corpus : Corpus
    seed : int
        Seed of the split and of the shuffled-lips control.
    ridge : float
        Ridge penalty.
    context : int
        Lip frames on each side of the frame (40 ms each), >= 0.

    Returns
    -------
    dict
        ``f1_vision``, ``threshold``, ``f1_all_ones``, ``f1_shuffled_lips``, ``prevalence``,
        ``n_train_frames``, ``n_test_frames``, ``context``.

    Raises
    ------
    MburstError
        If ``context`` < 0.
    """
    if context < 0:
        raise MburstError(f"context {context}: must be >= 0 lip frames")
    split = corpus.split(seed)
    pooled = np.concatenate([  # each lip frame pooled once (all SNR copies share it), in chunks
        np.asarray(corpus.lips[i:i + 4096, :48, :92], dtype=np.float32).reshape(-1, 12, 4, 23, 4).mean(axis=(2, 4)).reshape(-1, 12 * 23)
        for i in range(0, len(corpus.lips), 4096)])

    def design(utts):
        rows, lip_rows, pos = corpus.rows(utts)
        n = np.repeat([corpus.utterances[int(u)].n_frames for u in utts], [corpus.utterances[int(u)].n_frames for u in utts])
        taps = np.stack([lip_rows - pos + np.clip(pos + d, 0, n - 1) for d in range(-context, context + 1)], axis=1)
        return taps, np.asarray(corpus.ibm[rows], dtype=np.float32)

    tr_taps, ytr = design(split["train"])
    te_taps, yte = design(split["test"] if len(split["test"]) else split["proxy"])
    seen = pooled[np.unique(tr_taps[:, context])]  # standardised with the training frames' statistics
    mu, sd = seen.mean(0), seen.std(0) + 1e-6
    unit = (pooled - mu) / sd
    chunks = range(0, len(tr_taps), 16384)

    def features(taps):
        return np.hstack([unit[taps].reshape(len(taps), -1), np.ones((len(taps), 1), np.float32)]).astype(np.float64)

    def predict(taps, w):
        return np.concatenate([features(taps[k:k + 16384]) @ w for k in range(0, len(taps), 16384)])

    def fit_eval(order):
        dim = unit.shape[1] * (2 * context + 1) + 1
        ata, aty = ridge * np.eye(dim), np.zeros((dim, ytr.shape[1]))
        for k in chunks:
            a = features(tr_taps[order[k:k + 16384]])
            ata += a.T @ a
            aty += a.T @ ytr[k:k + 16384]
        w = np.linalg.solve(ata, aty)
        pa = predict(tr_taps[order], w)
        best = max(np.linspace(0.05, 0.95, 19), key=lambda th: _f1(pa >= th, ytr))
        return _f1(predict(te_taps, w) >= best, yte), float(best)

    f1, th = fit_eval(np.arange(len(tr_taps)))
    f1_shuffled, _ = fit_eval(np.random.default_rng(seed).permutation(len(tr_taps)))
    p = float(yte.mean())
    return {"f1_vision": f1, "threshold": th, "f1_all_ones": 2 * p / (1 + p), "f1_shuffled_lips": f1_shuffled,
            "prevalence": p, "n_train_frames": len(tr_taps), "n_test_frames": len(te_taps), "context": context}


def _f1(pred: np.ndarray, target: np.ndarray) -> float:
    tp = float(np.sum(pred & (target > 0.5)))
    fp = float(np.sum(pred & (target < 0.5)))
    fn = float(np.sum(~pred & (target > 0.5)))
    return 2 * tp / max(2 * tp + fp + fn, 1e-9)
