"""The torch side of burst propagation (Payeur et al. 2021): functional equations, layers, activations
(including the calibrated ones, from transfer fits given as plain numbers) and the three models.

Nothing here imports Brian2, :mod:`circuits` or the Brian2 modules of :mod:`neurons` (import-linter
contract in ``pyproject.toml``).
"""
