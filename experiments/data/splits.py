"""Sentence splits that stay put: a sentence's split is a function of its id and the seed alone."""
from __future__ import annotations

import hashlib

import numpy as np

from neurons.common import MburstError

#: Default shares of the clean sentences in train, test and proxy.
SPLIT_FRACTIONS = (0.8, 0.15, 0.05)
#: The sentence splits, in the order of :func:`sentence_splits`'s codes.
SENTENCE_SPLITS = ("train", "test", "proxy")


def sentence_splits(clean_ids, seed: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> np.ndarray:
    """The split of each sentence: 0 train, 1 test, 2 proxy, by a hash of its id and the seed.

    With h = the first 8 bytes of SHA-256("<seed>\\0<clean id>") as a number in [0, 1), a sentence is train
    when h < f_train, test when h < f_train + f_test, else proxy: a function of the id and the seed alone,
    so adding sentences never moves one. Only when that leaves train or test empty (a corpus of a few
    sentences) is the sentence nearest that split's interval moved into it.

    Parameters
    ----------
    clean_ids : sequence of str, shape (n,)
    seed : int
    fractions : (float, float, float)
        Shares of train, test and proxy (summing to 1).

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    MburstError
        If the fractions are not three non-negative numbers summing to 1.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise MburstError(f"split fractions {fractions}: need three non-negative numbers summing to 1")
    h = np.array([int.from_bytes(hashlib.sha256(f"{seed}\0{c}".encode()).digest()[:8], "big") / 2.0 ** 64
                  for c in clean_ids])
    edges = (fractions[0], fractions[0] + fractions[1])
    part = np.searchsorted(np.asarray(edges), h, side="right").astype(np.int64)
    if len(part) >= 2:
        for k, (lo, hi) in ((0, (0.0, edges[0])), (1, edges)):
            if not np.any(part == k) and fractions[k] > 0:
                donors = np.flatnonzero((part != 1 - k) | (np.sum(part == 1 - k) > 1))
                dist = np.maximum(lo - h[donors], h[donors] - hi)
                part[donors[np.argmin(dist)]] = k
    return part
