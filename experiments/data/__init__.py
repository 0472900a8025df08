"""The audio-visual task's data: GRID and synthetic sources, noise, lip tracking, features and the IBM,
the prepared-corpus cache, frame sets and data probes."""
