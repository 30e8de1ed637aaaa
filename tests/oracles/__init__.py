"""Second implementations of dpsynth's metrics, written from their definitions for cross-checks.

Nothing here imports :mod:`dpsynth`: an oracle that shared code with what it checks would agree
with it by construction.
"""
