"""Resumable stages of ``mburst reproduce``: a stage runs only when its outputs are missing or were made
with another configuration, and every run of a stage is counted.

``<out>/stages.json`` records, per stage, a hash of its configuration, the files it wrote, the markdown
section it contributes to ``report.md``, how many times it ran, and its wall and CPU time (s). Re-running
``mburst reproduce`` into the same folder therefore redoes nothing that is up to date; ``--force STAGE``
redoes one stage (and the stages after it that read its outputs see a new fingerprint).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from neurons.common import MburstError, atomic_write_json

#: The stages of ``mburst reproduce``, in order.
STAGES = ("training", "tables", "noise", "vision", "enhancement", "spiking", "scoreboard", "report")
LOG = "stages.json"


def fingerprint(value) -> str:
    """A short, stable hash of a JSON-serialisable value (dict keys sorted; other objects by ``str``).

    Parameters
    ----------
    value : object

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def files_fingerprint(paths) -> str:
    """Fingerprint of the contents of ``paths`` (missing files count as empty)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(str(p.name).encode())
        h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()[:16]


@dataclass
class StageRecord:
    """One stage's entry in ``stages.json`` (times in s)."""

    config: str
    outputs: list[str]
    section: str = ""
    runs: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    extra: dict = field(default_factory=dict)


class StageLog:
    """The stage records of one reproduction folder.

    Parameters
    ----------
    out : Path
        The reproduction folder; the log is ``out/stages.json``.
    force : iterable of str
        Stages to redo even when up to date (names from :data:`STAGES`).

    Raises
    ------
    MburstError
        If ``force`` names an unknown stage or the log is not readable JSON.
    """

    def __init__(self, out: Path, force=()):
        self.out = Path(out)
        self.force = set(force)
        unknown = self.force - set(STAGES)
        if unknown:
            raise MburstError(f"--force: unknown stage {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
        path = self.out / LOG
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
            self.records = {k: StageRecord(**v) for k, v in data.items()}
        except (ValueError, TypeError) as err:
            raise MburstError(f"{path}: not a stage log ({err}); delete it to redo every stage") from None

    def up_to_date(self, name: str, config: str) -> bool:
        """Whether stage ``name`` ran with ``config`` and all its outputs exist (and it is not forced)."""
        rec = self.records.get(name)
        return (name not in self.force and rec is not None and rec.config == config
                and all((self.out / f).exists() for f in rec.outputs))

    def run(self, name: str, config, work: Callable[[], tuple[str, list[str]]]) -> StageRecord:
        """Run stage ``name`` unless it is up to date for ``config``.

        Parameters
        ----------
        name : str
            A name from :data:`STAGES`.
        config : object
            Everything the stage's result depends on (JSON-serialisable), fingerprinted.
        work : callable
            ``work() -> (markdown section, output paths relative to the folder)``.

        Returns
        -------
        StageRecord
            The stage's record (its section is the one made by the run that is up to date).
        """
        key = fingerprint(config)
        if self.up_to_date(name, key):
            return self.records[name]
        t0, c0 = time.perf_counter(), time.process_time()
        section, outputs = work()
        old = self.records.get(name)
        rec = StageRecord(config=key, outputs=sorted(outputs), section=section, runs=(old.runs if old else 0) + 1,
                          wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0)
        self.records[name] = rec
        atomic_write_json(self.out / LOG, {k: asdict(v) for k, v in self.records.items()})
        return rec
