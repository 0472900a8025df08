"""What to prepare: :class:`CorpusSpec`, the registries of clean-speech sources and error policies, and
the cache key over the settings and the input files (:mod:`experiments.data.corpus` holds the cache)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurons.common import MburstError

from experiments.data import features as F
from experiments.data.noise import NOISE_SPLITS
from experiments.data.paths import data_root

DEFAULT_SYNTHETIC_SIZE = 200
FORMAT_VERSION = 4  # 2: preview.npz; 3: lips on the audio clock, source frame rates recorded;
# 4: noise by category and recording, every utterance mixed with train and with test recordings
#: The clean-speech sources (``--data`` choices) and what each is.
SOURCES = {
    "synthetic": "the embedded procedural corpus (experiments/data/synthetic.py)",
    "grid": "a GRID-layout root (sN/*.mpg, alignments/sN/*.align, optional audio/sN/*.wav)",
}
#: The noise sets of the shared data (``--noise-set``; folders under ``MBURST_DATA``) and what each is.
NOISE_SETS = {
    "ambient": "eight real ambience recordings in four categories (cafe, street, pedestrian, transport; 15.7 min), "
               "CHiME-3 stand-ins: whole recordings held out for test",
    "noise": "three recordings in one category (dishes 71 s, exercise bike 46 s, babble 3.1 s): the earlier set",
}
#: What to do with a bad input file (``--on-error`` choices) and what each does.
ON_ERROR = {
    "fail": "fail with a one-line error naming the file",
    "skip": "skip it and report the count and reasons at the end",
}


@dataclass(frozen=True)
class CorpusSpec:
    """What to prepare. ``source`` is a key of :data:`SOURCES`; ``data_root``/``noise_root`` default to
    ``data_root()/grid`` and ``data_root()/<noise_set>`` (:data:`NOISE_SETS`) for GRID; a synthetic corpus uses
    its own synthetic noises (:data:`experiments.data.synthetic.NOISES`) unless ``noise_root`` is given."""

    source: str = "synthetic"
    data_root: Path | None = None
    noise_root: Path | None = None
    speakers: tuple[str, ...] | None = None
    snrs_db: tuple[float, ...] = (-12.0, -6.0, 0.0, 6.0)
    lc_db: float = 5.0
    n_bins: int = F.N_BINS
    n_utterances: int | None = None  # synthetic size (default DEFAULT_SYNTHETIC_SIZE) / optional GRID limit
    seed: int = 0
    on_error: str = "fail"
    noise_split: str = "recording"  # a key of experiments.data.noise.NOISE_SPLITS
    noise_set: str = "ambient"  # a key of NOISE_SETS: GRID's noise when noise_root is not given
    detect_every: int = 10  # face detection on every k-th frame, tracked in between
    detect_scale: float = 0.5  # detection on a frame downscaled by this factor
    workers: int = 2

    def resolved(self) -> "CorpusSpec":
        """Validate and fill in the default roots.

        Returns
        -------
        CorpusSpec
            With absolute roots, float SNRs and LC, and speakers as a tuple or None.

        Raises
        ------
        MburstError
            Naming the bad argument (as its command-line option).
        """
        if self.source not in SOURCES:
            raise MburstError(f"--data {self.source!r}: expected one of {', '.join(SOURCES)}")
        if self.on_error not in ON_ERROR:
            raise MburstError(f"--on-error {self.on_error!r}: expected one of {', '.join(ON_ERROR)}")
        snrs = tuple(float(s) for s in self.snrs_db)
        if not snrs or not all(np.isfinite(snrs)):
            raise MburstError(f"--snrs {self.snrs_db!r}: need at least one finite SNR in dB")
        if self.noise_split not in NOISE_SPLITS:
            raise MburstError(f"--noise-split {self.noise_split!r}: expected one of {', '.join(NOISE_SPLITS)}")
        if not np.isfinite(self.lc_db):
            raise MburstError(f"--lc-db {self.lc_db!r}: must be finite")
        if not 1 <= self.n_bins <= F.N_BINS:
            raise MburstError(f"n_bins {self.n_bins}: must be in 1..{F.N_BINS}")
        if self.n_utterances is not None and self.n_utterances < 1:
            raise MburstError(f"--n-utterances {self.n_utterances}: must be >= 1")
        if self.detect_every < 1 or not 0.1 <= self.detect_scale <= 1.0:
            raise MburstError(f"detect_every {self.detect_every} / detect_scale {self.detect_scale}: need k >= 1 and 0.1 <= scale <= 1")
        droot, nroot = self.data_root, self.noise_root
        if self.source == "grid":
            base = data_root()
            if droot is None:
                if base is None or not (base / "grid").is_dir():
                    raise MburstError("--data-root: not given and no GRID data under MBURST_DATA / ../shared/data")
                droot = base / "grid"
            if nroot is None:
                if self.noise_set not in NOISE_SETS:
                    raise MburstError(f"--noise-set {self.noise_set!r}: expected one of {', '.join(NOISE_SETS)}")
                if base is None or not (base / self.noise_set).is_dir():
                    raise MburstError(f"--noise-root: not given and no {self.noise_set}/ folder under MBURST_DATA / "
                                      f"../shared/data (--noise-set {' or '.join(k for k in NOISE_SETS if k != self.noise_set)} "
                                      "picks another)")
                nroot = base / self.noise_set
        return dataclasses.replace(
            self, snrs_db=snrs, lc_db=float(self.lc_db),
            data_root=None if droot is None else Path(droot).resolve(),
            noise_root=None if nroot is None else Path(nroot).resolve(),
            speakers=None if not self.speakers else tuple(self.speakers),
        )

    def feature_config(self) -> dict:
        """Everything that changes the cached arrays (not ``on_error``/``workers``).

        Returns
        -------
        dict
            JSON-serialisable settings (stored in ``meta.json``; hashed into the cache key).
        """
        return {
            "format": FORMAT_VERSION, "source": self.source, "sample_rate": F.SAMPLE_RATE, "win": F.WIN,
            "hop": F.HOP, "window": "hamming", "n_bins": self.n_bins, "lc_db": float(self.lc_db),
            "snrs_db": [float(s) for s in self.snrs_db], "context": F.CONTEXT, "seed": self.seed,
            "n_utterances": self.n_utterances, "speakers": list(self.speakers or []),
            "detect_every": self.detect_every, "detect_scale": self.detect_scale, "noise_split": self.noise_split,
        }

    def input_files(self) -> list[Path]:
        """The files the corpus is made from.

        Returns
        -------
        list of Path
            GRID videos, wavs and alignments, then every file under the noise root (recursively).

        Raises
        ------
        MburstError
            If the spec is invalid or the GRID root cannot be listed.
        """
        spec = self.resolved()
        files: list[Path] = []
        if spec.source == "grid":
            from experiments.data.grid import list_items

            items, _ = list_items(spec.data_root, spec.speakers)
            for it in items:
                files += [p for p in (it.mpg, it.wav, it.align) if p is not None]
        if spec.noise_root is not None and spec.noise_root.is_dir():
            files += sorted(p for p in spec.noise_root.rglob("*") if p.is_file())
        return files

    def cache_key(self) -> str:
        """The cache key: SHA-256 of :meth:`feature_config` and the input files (names, sizes, mtimes).

        Returns
        -------
        str
            64 hex digits.

        Raises
        ------
        MburstError
            If the spec is invalid (:meth:`resolved`) or the GRID root cannot be listed.
        """
        spec = self.resolved()
        h = hashlib.sha256(json.dumps(spec.feature_config(), sort_keys=True).encode())
        for path in spec.input_files():
            st = path.stat()
            h.update(f"{path.name}\0{path.parent.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
