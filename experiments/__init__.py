"""The audio-visual task, the studies, and the ``mburst`` command line."""
