"""PyTorch burstprop layers and models, transfer-function calibration, and the rate-to-spike bridge.

Importing this package must not import Brian2; the bridge imports it lazily.
"""
