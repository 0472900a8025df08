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
        flat = " ".join(text.split())
        modules = cli.discover(package)
        assert len(modules) >= 4
        for module in modules:
            assert f"{module.NAME} {' '.join(module.HELP.split())}" in flat, module.NAME
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
