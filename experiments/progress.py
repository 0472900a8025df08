"""Progress for long phases: a bar on a terminal, one summary line elsewhere, and start/elapsed lines.

:class:`Bar` is a tqdm bar when its stream is a terminal; when output goes to a log or a pipe it draws
nothing and prints one summary line (what, how many, elapsed time) when it closes, so redirected logs get
no carriage-return updates. :func:`phase` is for phases without steps to count (a Brian2 build and run, a
network construction), where a bar would not move: a line when it starts and one with its elapsed time.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterable, Iterator


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal.

    Parameters
    ----------
    stream : file-like

    Returns
    -------
    bool
        ``stream.isatty()``; False when it has no such method or is closed.
    """
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Bar:
    """A tqdm progress bar on a terminal; elsewhere silent, with one summary line when it closes.

    Use it as tqdm: iterate over it, or ``update(n)`` it inside a ``with`` block.

    Parameters
    ----------
    iterable : iterable, optional
        Items to pass through (counted one each).
    desc : str
        What is counted, e.g. ``"enhance"``.
    total : int, optional
        Expected count (default: ``len(iterable)`` when it has one).
    unit : str
        Name of one step (``"it"``, ``"utt"``, ``"sample"``).
    show : bool
        False: no bar and no summary line.
    stream : file-like, optional
        Where to draw or print (default: standard error).
    unit_scale : bool
        Counts with SI prefixes (``48.0M sample``).
    leave : bool
        Keep the finished bar on the terminal (tqdm's ``leave``).

    Attributes
    ----------
    n : int
        Steps counted so far.
    """

    def __init__(self, iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
                 show: bool = True, stream=None, unit_scale: bool = False, leave: bool = True) -> None:
        from tqdm import tqdm

        self.stream = sys.stderr if stream is None else stream
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.desc, self.total, self.unit, self.unit_scale, self.n = desc, total, unit, unit_scale, 0
        self._iterable, self._postfix, self._closed = iterable, "", False
        drawn = show and is_terminal(self.stream)
        self._summary = show and not drawn
        self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=self.stream,
                         disable=not drawn, dynamic_ncols=True, leave=leave)
        self._t0 = time.perf_counter()

    def __iter__(self) -> Iterator:
        try:
            for item in self._iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps.

        Parameters
        ----------
        n : int
        """
        self.n += n
        self._bar.update(n)

    def set_postfix_str(self, text: str) -> None:
        """Show ``text`` after the bar (and at the end of the summary line).

        Parameters
        ----------
        text : str
        """
        self._postfix = text
        self._bar.set_postfix_str(text)

    def set_postfix(self, **values) -> None:
        """Show ``key=value, ...`` after the bar (and at the end of the summary line).

        Parameters
        ----------
        **values
            Names and their (formatted) values, e.g. ``loss="0.4125"``.
        """
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in values.items()))

    def write(self, text: str) -> None:
        """Print a line above the bar (a plain line when there is no bar).

        Parameters
        ----------
        text : str
        """
        self._bar.write(text, file=self.stream)

    def summary(self) -> str:
        """The summary line: ``desc: n[/total] unit in X s[, postfix]``.

        Returns
        -------
        str
        """
        from tqdm import tqdm

        count = (lambda x: tqdm.format_sizeof(x).strip()) if self.unit_scale else (lambda x: f"{x:,}")
        done = count(self.n) if self.total is None or self.n == self.total else f"{count(self.n)}/{count(self.total)}"
        tail = f", {self._postfix}" if self._postfix else ""
        return f"{self.desc}: {done} {self.unit} in {time.perf_counter() - self._t0:.1f} s{tail}"

    def close(self) -> None:
        """Close the bar; away from a terminal print the summary line (once)."""
        if self._closed:
            return
        self._closed = True
        self._bar.close()
        if self._summary:
            print(self.summary(), file=self.stream, flush=True)


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
