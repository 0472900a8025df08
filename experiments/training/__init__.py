"""Training and evaluation of the rate models, checkpoints, mask/activity metrics and ``mburst reproduce``."""
