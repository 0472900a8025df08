"""Progress for long phases: a line when a phase starts and one with its elapsed time when it ends.

For phases without steps to count (a Brian2 build and run, a network construction), where a tqdm bar
would not move; bars themselves use ``tqdm(..., disable=None)``, silent when output is not a terminal.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator


@contextlib.contextmanager
def phase(label: str, stream=None) -> Iterator[None]:
    """Print ``label ...`` now and ``label: done in X s`` (or ``failed after``) when the block ends.

    Parameters
    ----------
    label : str
        What the phase does, e.g. ``"STP: Brian2 build + run (cython; the first build compiles for minutes)"``.
    stream : file-like, optional
        Where to print (default: standard error, flushed).

    Yields
    ------
    None
    """
    stream = stream or sys.stderr
    print(f"{label} ...", file=stream, flush=True)
    t0 = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        print(f"{label}: {'done in' if ok else 'failed after'} {time.perf_counter() - t0:.1f} s", file=stream, flush=True)
