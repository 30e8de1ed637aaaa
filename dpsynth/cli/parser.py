"""The ``dpsynth`` argument parser, assembled from the command groups in the order ``dpsynth --help`` lists
them."""

from __future__ import annotations

import argparse

from dpsynth.cli.arguments import Parser
from dpsynth.cli.audit import add_audit
from dpsynth.cli.demo import add_demo
from dpsynth.cli.evaluate import add_eval
from dpsynth.cli.fit import add_fit
from dpsynth.cli.history import add_history
from dpsynth.cli.ledger import add_ledger
from dpsynth.cli.pii import add_replay, add_scan
from dpsynth.cli.refresh import add_refresh
from dpsynth.cli.release import add_release, add_verify_manifest
from dpsynth.cli.schema import add_schema

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``dpsynth`` command."""
    parser = Parser(prog="dpsynth", description="Differentially private synthetic data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (add_fit, add_eval, add_schema, add_ledger, add_demo, add_release, add_audit, add_scan, add_replay,
                add_verify_manifest, add_refresh, add_history):
        add(sub)
    return parser
