"""One module per ``mburst simulate <what>`` experiment (same interface as :mod:`experiments.commands`)."""
