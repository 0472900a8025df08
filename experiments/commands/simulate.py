"""Spike-level simulations: ``mburst simulate <what>``.

Each experiment is a module of :mod:`experiments.simulations`.
"""
from __future__ import annotations

NAME = "simulate"
HELP = "run a Brian2 spiking experiment (see `mburst simulate --help`)"
RUN_DIR = False  # each experiment gets its own run folder


def add_arguments(parser) -> None:
    from experiments import simulations
    from experiments.cli import add_subcommands, discover

    sub = parser.add_subparsers(title="experiments", metavar="WHAT", required=True)
    add_subcommands(sub, discover(simulations), prefix="simulate ")

