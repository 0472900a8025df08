"""Where things live: the real-data root (``MBURST_DATA``) and the feature cache, with its superseded folders."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path | None:
    """The real-data root: ``$MBURST_DATA``, else ``../shared/data`` beside the repo when it exists.

    Returns ``None`` when neither exists (real-data tests then skip).
    """
    env = os.environ.get("MBURST_DATA")
    if env:
        path = Path(env).expanduser()
        return path if path.exists() else None
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.exists() else None


def cache_root() -> Path:
    """Feature cache folder: ``$MBURST_CACHE``, default ``<repo>/.mburst_cache``."""
    return Path(os.environ.get("MBURST_CACHE", REPO_ROOT / ".mburst_cache")).expanduser()


def superseded_corpora(folder: Path) -> list[Path]:
    """The other corpus folders in ``folder``'s cache built with its settings and data folders, from other input files.

    A corpus folder's name carries a key over its settings and its input files' names, sizes and modification times
    (:meth:`experiments.data.spec.CorpusSpec.cache_key`). When the input files change (a fresh copy of the data has
    new modification times), the next run builds a new folder and the old one is never read again: this lists them.

    Parameters
    ----------
    folder : Path
        A prepared corpus folder (with ``meta.json``).

    Returns
    -------
    list of Path
        Sibling folders whose ``meta.json`` equals ``folder``'s but for ``cache_key`` and ``created``, sorted.
    """
    import json

    def settings(path: Path) -> dict | None:
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        return {k: v for k, v in meta.items() if k not in ("cache_key", "created")} if isinstance(meta, dict) else None

    own = settings(folder)
    if own is None:
        return []
    return sorted(p for p in folder.parent.iterdir()
                  if p.is_dir() and p.resolve() != folder.resolve() and not p.name.startswith(".") and settings(p) == own)


def note_superseded(folder: Path) -> None:
    """Print one line naming how many :func:`superseded_corpora` ``folder`` has and their size (nothing when none)."""
    stale = superseded_corpora(folder)
    if stale:
        size = sum(f.stat().st_size for p in stale for f in p.iterdir() if f.is_file())
        print(f"  {len(stale)} older cache folder(s) of these settings and data folders ({size / 2**30:.1f} GiB) are no "
              f"longer read (their input files changed): `mburst prepare --prune-cache` removes them")
