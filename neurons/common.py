"""Shared plumbing for every layer of mburst: one error type and atomic writes.

This module sits at the bottom of the import chain
(experiments -> rate_bridge -> circuits -> neurons) and imports neither Brian2
nor torch, so every layer may use it.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


class MburstError(Exception):
    """A user-facing error: the CLI prints its message as one line and exits 2.

    The message must name the offending file, argument or parameter.
    """


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or Ctrl-C leaves the old file (or nothing), never a partial one. The file gets the
    permissions of an ordinary new file (0666 less the umask), not ``mkstemp``'s private 0600.

    Parameters
    ----------
    path : str or os.PathLike
        The final file; its parent folders are created.

    Yields
    ------
    pathlib.Path
        The temporary file to write (removed if the block raises).

    Raises
    ------
    OSError
        If the folder cannot be created or the file cannot be replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync'ed before the rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    data : bytes
        Content.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    text : str
        Content.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (numpy scalars/arrays and paths converted).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    obj : object
        JSON-serialisable data; keys are sorted, other objects written as ``str``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` through a temporary file (``path`` should end in ``.npz``).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    **arrays : numpy.ndarray
        Arrays to store, by name (any shape).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format taken from ``path``'s suffix).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or os.PathLike
        Destination file; no suffix means PNG.
    **kwargs
        Passed to ``fig.savefig`` (``dpi`` defaults to 120).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    path = Path(path)
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("format", path.suffix.lstrip(".") or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return path


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table; floats printed with 4 significant digits.

    Parameters
    ----------
    header : list of str, length n_cols
        Column titles.
    rows : list of list, each of length n_cols
        Cell values.

    Returns
    -------
    str
        The table, one line per row, ending in a newline.
    """
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(header: list[str], rows: list[list[Any]]) -> str:
    """The same rows as CSV text (full float precision).

    Parameters
    ----------
    header : list of str, length n_cols
        Column titles.
    rows : list of list, each of length n_cols
        Cell values.

    Returns
    -------
    str
        CSV text with the header line first.
    """
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
