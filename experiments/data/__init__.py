"""The audio-visual task's data: sources (GRID, synthetic, noise, lip tracking), features and the IBM, what to
prepare (spec), building and reading the cached corpus, model inputs (frames) and data probes."""
