"""The ``mburst`` command line.

Subcommands are the modules of :mod:`experiments.commands`. Every run gets an
output folder (``--out DIR``, default ``runs/<command>-<timestamp>``) holding
``config.json``: the parsed options, the seed, library versions and the git
commit. User errors print one line and exit 2; ``MBURST_DEBUG=1`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
import time
from pathlib import Path

from neurons.common import MburstError, atomic_write_json

from experiments import commands as _commands_pkg
from experiments.data.paths import REPO_ROOT


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` only where there is a default and the help text does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def discover(package) -> list:
    """The public submodules of ``package``, imported, in name order.

    Parameters
    ----------
    package : module
        A package (e.g. :mod:`experiments.commands`); submodules starting with ``_`` are skipped.

    Returns
    -------
    list of module
    """
    modules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    return modules


def default_run_dir(command: str, stamp: str) -> Path:
    """The default run folder of ``command``: ``runs/<command>-<stamp>``, spaces as hyphens
    (``runs/simulate-neuron-20260101-120000``).

    Parameters
    ----------
    command : str
        The command name, e.g. ``"train"`` or ``"simulate neuron"``.
    stamp : str
        The time stamp (``%Y%m%d-%H%M%S``), or ``"<timestamp>"`` for the help text.

    Returns
    -------
    Path
    """
    return Path("runs") / f"{command.replace(' ', '-')}-{stamp}"


def add_run_options(parser: argparse.ArgumentParser, command: str) -> None:
    """``--out`` and ``--seed``, shared by every command that writes a run folder.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    command : str
        The command name, for the default folder (:func:`default_run_dir`).
    """
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help=f"output folder (default: {default_run_dir(command, '<timestamp>')}); config.json is written there",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed for everything in the run (default: 0)")


def add_subcommands(subparsers, modules: list, prefix: str) -> None:
    """Add one subparser per command module (its ``NAME``, ``HELP``, ``add_arguments`` and ``main``).

    Modules with ``RUN_DIR = False`` get no ``--out``/``--seed``; modules without ``main``
    only group sub-subcommands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers``.
    modules : list of module
        Command modules (:func:`discover`).
    prefix : str
        Prepended to each command name (e.g. ``'simulate '``).
    """
    for module in modules:
        parser = subparsers.add_parser(
            module.NAME, help=module.HELP, description=(module.__doc__ or module.HELP).strip(),
            formatter_class=_HelpFormatter,
        )
        if getattr(module, "RUN_DIR", True):
            add_run_options(parser, f"{prefix}{module.NAME}")
        module.add_arguments(parser)
        if hasattr(module, "main"):  # a module without main only groups sub-subcommands
            parser.set_defaults(_module=module, _command=f"{prefix}{module.NAME}", _parser=parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mburst",
        description="Burst-multiplexing spiking circuits, the rate MBURST, and spike-level energy on audio-visual speech enhancement.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_subcommands(sub, discover(_commands_pkg), prefix="")
    return parser


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "brian2", "opencv-python-headless", "av", "scipy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def prepare_run_dir(args: argparse.Namespace) -> Path:
    """Create the run folder and write ``config.json`` (atomically); a re-run with the same command and
    options (a resume) keeps the existing one, the record of the first run.

    ``config.json`` holds the command, argv, the parsed options, library versions,
    the git commit, ``PYTHONHASHSEED`` and the time.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options with ``out`` (None: :func:`default_run_dir`, set on ``args``) and ``_command``.

    Returns
    -------
    Path
        The run folder.

    Raises
    ------
    OSError
        If the folder or file cannot be written.
    """
    if args.out is None:
        args.out = default_run_dir(args._command, time.strftime("%Y%m%d-%H%M%S"))
    args.out.mkdir(parents=True, exist_ok=True)
    options = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    path = args.out / "config.json"
    if path.exists():  # a re-run with the same options (a resume) keeps the record of the first run
        try:
            old = json.loads(path.read_text())
            if old.get("command") == args._command and old.get("options") == json.loads(json.dumps(options, default=str)):
                return args.out
        except ValueError:
            pass
    atomic_write_json(path, {
        "command": args._command,
        "argv": sys.argv[1:],
        "options": options,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return args.out


def _suggest(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Exit with a one-line usage error and a "did you mean" when a (sub)command name is mistyped."""
    import difflib

    level, words = parser, list(argv)
    while words and not words[0].startswith("-"):
        subs = [a for a in level._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return
        choices = subs[0].choices
        if words[0] not in choices:
            close = difflib.get_close_matches(words[0], list(choices), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f"; choose from {', '.join(sorted(choices))}"
            level.error(f"unknown command '{words[0]}'{hint}")
        level, words = choices[words[0]], words[1:]


def main(argv: list[str] | None = None) -> int:
    """Run the ``mburst`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: the command's (0 on success), 2 on a :class:`MburstError` (one line on
        stderr), 130 when interrupted, 1 on any other error.

    Raises
    ------
    SystemExit
        From argparse on invalid arguments or ``--help``.
    Exception
        Any unexpected error, re-raised when ``MBURST_DEBUG`` is set.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    _suggest(parser, argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # report against the subcommand's own usage, not the top level's
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    prog = f"mburst {args._command}"
    try:
        if getattr(args._module, "RUN_DIR", True):
            prepare_run_dir(args)
        return int(args._module.main(args) or 0)
    except MburstError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is saved" + (f" in {args.out}" if getattr(args, "out", None) else ""), file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: one clear line, not a traceback
        if os.environ.get("MBURST_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(err).__name__}: {err} (set MBURST_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
