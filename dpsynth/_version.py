"""dpsynth's version, written once: pyproject.toml reads it from here (``dynamic = ["version"]``).

A module of its own, importing nothing, so that code recording the version (the ledger, reports,
schema provenance) does not import the package root and everything it re-exports.
"""

__version__ = "0.1.0"
