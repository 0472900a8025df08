"""One module per ``mburst`` subcommand, discovered by :mod:`experiments.cli`.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``main(args) -> int``. Modules must be cheap to import: heavy libraries are
imported inside ``main``. ``RUN_DIR = False`` opts out of the run folder
(``--out DIR`` + ``config.json``) that the CLI otherwise creates.
"""
