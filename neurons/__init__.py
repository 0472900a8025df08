"""Brian2 cell and synapse models of burst-multiplexing cortex.

Submodules import Brian2 themselves; importing this package does not, so the
torch side (``rate_bridge``) can import :mod:`neurons.common` without it.
"""
