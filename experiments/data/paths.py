"""Where things live: the real-data root (``MBURST_DATA``), the feature cache and run folders."""
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
