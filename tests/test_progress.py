"""Progress output: a bar on a terminal, one summary line in a log; Brian2 builds say when they start and how long
they took (a cold compile is never minutes of silence)."""
from __future__ import annotations

import io
import re

import pytest

from experiments.progress import Bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_in_a_log_is_one_summary_line():
    log = io.StringIO()
    seen = list(Bar(range(5), desc="seeds", unit="seed", stream=log))
    assert seen == [0, 1, 2, 3, 4]
    assert re.fullmatch(r"seeds: 5 seed in \d+\.\d s\n", log.getvalue())
    log = io.StringIO()
    for _ in (bar := Bar(range(3), desc="epoch 1/4", unit="batch", stream=log, leave=False)):
        bar.set_postfix(loss="0.4125", f1="0.512")
    assert re.fullmatch(r"epoch 1/4: 3 batch in \d+\.\d s, loss=0\.4125, f1=0\.512\n", log.getvalue())


def test_a_bar_on_a_terminal_draws_and_prints_no_summary():
    tty = Terminal()
    with Bar(total=48_000, desc="enhance", unit="sample", unit_scale=True, stream=tty) as bar:
        bar.update(16_000)
        bar.update(32_000)
    assert "\r" in tty.getvalue() and "48.0k/48.0k" in tty.getvalue()
    assert not re.search(r"enhance: \S+ sample in \d", tty.getvalue())


def test_summary_of_a_stopped_bar_and_a_hidden_one():
    log = io.StringIO()
    with Bar(total=48_000_000, desc="enhance", unit="sample", unit_scale=True, stream=log) as bar:
        bar.update(16_000_000)
        bar.set_postfix_str("RTF 0.1")
        assert log.getvalue() == ""  # nothing before it closes
    assert re.fullmatch(r"enhance: 16\.0M/48\.0M sample in \d+\.\d s, RTF 0\.1\n", log.getvalue())
    for _ in Bar(range(3), desc="quiet", stream=log, show=False):
        pass
    assert log.getvalue().count("\n") == 1
    gen = Bar(range(10), desc="broken", stream=log)
    for i in gen:
        if i == 2:
            break
    del gen
    assert re.search(r"broken: 2/10 it in \d+\.\d s\n$", log.getvalue())


@pytest.fixture()
def fresh_cython_cache(tmp_path):
    from brian2 import prefs

    old = prefs["codegen.runtime.cython.cache_dir"]
    prefs["codegen.runtime.cython.cache_dir"] = str(tmp_path / "cython")
    yield tmp_path
    prefs["codegen.runtime.cython.cache_dir"] = old


def test_brian2_builds_print_their_elapsed_time(fresh_cython_cache, capfd):
    """A cython run that compiles (an empty cache) prints a line per compiled code object; its warm rerun none. A
    cpp_standalone build prints a line when it starts (cold: no binary yet) and one with its elapsed time."""
    from brian2 import NeuronGroup, ms, run, start_scope

    from neurons.device import use_target

    def tiny():
        start_scope()
        group = NeuronGroup(2, "dv/dt = (1.7 - v) / (13.1 * ms) : 1")  # code no other test compiles
        run(1 * ms)
        return group

    use_target("cython")
    tiny()
    assert re.search(r"^Brian2 cython: compiled code object \d+ in \d+\.\d s \(\d+ s in all; cached in .*cython",
                     capfd.readouterr().err, re.M)
    tiny()
    assert "compiled" not in capfd.readouterr().err
    use_target("cpp_standalone", directory=fresh_cython_cache / "standalone")
    tiny()
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("Brian2 ")]
    use_target("numpy")
    assert len(err) == 2, err
    assert err[0] == f"Brian2 cpp_standalone: cold build (compiles every source file) + run in " \
                     f"{fresh_cython_cache / 'standalone'} ..."
    assert re.fullmatch(r"Brian2 cpp_standalone: built and ran in \d+\.\d s \(compile \d+\.\d s, run \d+\.\d s\)", err[-1])
