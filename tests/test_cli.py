"""The command line: discovery, help, config.json and one-line errors."""
import json
import re

import pytest

from experiments import cli
from neurons.common import MburstError, atomic_write_json, atomic_write_text


def test_help_lists_every_subcommand_with_its_help(capsys):
    """Every module of experiments.commands (and of experiments.simulations under `simulate`) is a
    subcommand whose one-line HELP appears in the listing, and nothing else is."""
    from experiments import commands, simulations

    for argv, package in ((["--help"], commands), (["simulate", "--help"], simulations)):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 0
        text = capsys.readouterr().out
        flat = "".join(text.split())  # argparse wraps help lines, also at hyphens
        modules = cli.discover(package)
        assert len(modules) >= 4
        for module in modules:
            assert module.NAME + "".join(module.HELP.split()) in flat, module.NAME
        listed = re.findall(r"^    (\S+)", text, flags=re.M)
        assert sorted(listed) == sorted(m.NAME for m in modules)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}

    class Boom(Exception):
        pass

    from neurons.common import atomic_path

    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise Boom
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    atomic_write_text(target, "ok")
    assert target.read_text() == "ok"


def test_user_error_is_one_line(monkeypatch, tmp_path, capsys):
    import types

    module = types.SimpleNamespace(
        NAME="boom", HELP="raises", __doc__="raises",
        add_arguments=lambda p: None,
        main=lambda args: (_ for _ in ()).throw(MburstError("file 'x.wav' is missing")),
    )
    monkeypatch.setattr(cli, "discover", lambda pkg: [module])
    code = cli.main(["boom", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "mburst boom: error: file 'x.wav' is missing"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["command"] == "boom" and config["options"]["seed"] == 0


@pytest.mark.parametrize("argv, expected", [
    (["simulat"], "mburst: error: unknown command 'simulat'; did you mean 'simulate'?"),
    (["simulate", "propagatoin"], "mburst simulate: error: unknown command 'propagatoin'; did you mean 'propagation'?"),
    (["simulate", "propagation", "--what", "x"], "mburst simulate propagation: error: unrecognized arguments: --what x"),
])
def test_mistyped_commands_and_options_name_the_subcommand(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == expected


def test_outputs_are_readable_by_others(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the result gets an ordinary file's mode."""
    import os

    old = os.umask(0o022)
    os.umask(old)
    path = atomic_write_text(tmp_path / "a.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~old


def test_rerun_with_same_options_keeps_config_json(tmp_path):
    import types

    module = types.SimpleNamespace(NAME="noop", HELP="does nothing", __doc__="noop", add_arguments=lambda p: None,
                                   main=lambda args: 0)
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "discover", lambda pkg: [module])
        assert cli.main(["noop", "--out", str(out)]) == 0
        first = (out / "config.json").stat().st_mtime_ns
        assert cli.main(["noop", "--out", str(out)]) == 0
        assert (out / "config.json").stat().st_mtime_ns == first
        assert cli.main(["noop", "--out", str(out), "--seed", "3"]) == 0
        assert json.loads((out / "config.json").read_text())["options"]["seed"] == 3


def test_bad_training_settings_fail_before_the_corpus_is_prepared(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MBURST_CACHE", str(cache))
    assert cli.main(["train", "--epochs", "0", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == "mburst train: error: --epochs must be >= 1, got 0"
    assert not cache.exists() or not any(cache.iterdir())


def test_phase_lines_say_when_a_long_phase_starts_and_how_long_it_took():
    import io

    from experiments.progress import phase

    out = io.StringIO()
    with phase("build", stream=out):
        pass
    with pytest.raises(ValueError):
        with phase("run", stream=out):
            raise ValueError
    lines = out.getvalue().splitlines()
    assert lines[0] == "build ..." and re.fullmatch(r"build: done in \d+\.\d s", lines[1])
    assert lines[2] == "run ..." and re.fullmatch(r"run: failed after \d+\.\d s", lines[3])


def test_default_run_folder_of_a_simulate_command_has_no_space(tmp_path, monkeypatch, capsys):
    """`simulate neuron` runs into runs/simulate-neuron-<timestamp>, and its --help says so."""
    import argparse

    with pytest.raises(SystemExit):
        cli.main(["simulate", "neuron", "--help"])
    assert "runs/simulate-neuron-<timestamp>" in "".join(capsys.readouterr().out.split())
    monkeypatch.chdir(tmp_path)
    out = cli.prepare_run_dir(argparse.Namespace(out=None, seed=0, _command="simulate neuron"))
    assert re.fullmatch(r"simulate-neuron-\d{8}-\d{6}", out.name) and out.parent.name == "runs"
    assert (tmp_path / out / "config.json").exists()
