"""``dpsynth`` command line: parses, calls the library, prints. Nothing imports this package.

One module per command group: :mod:`~dpsynth.cli.fit`, :mod:`~dpsynth.cli.evaluate` (``eval``),
:mod:`~dpsynth.cli.schema`, :mod:`~dpsynth.cli.ledger`, :mod:`~dpsynth.cli.demo`,
:mod:`~dpsynth.cli.release` (``release``, ``verify-manifest``), :mod:`~dpsynth.cli.audit`,
:mod:`~dpsynth.cli.pii` (``scan``, ``replay``), :mod:`~dpsynth.cli.refresh` and :mod:`~dpsynth.cli.history`;
the parser is assembled in :mod:`~dpsynth.cli.parser`.

Exit codes: 0 success; 2 bad input (one line on stderr, nothing written); 3 budget refused;
4 a release failed after its charge (one line on stderr saying where what it had is kept);
1 anything else (a bug in dpsynth: the traceback is kept).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from dpsynth.cli.audit import run_audit
from dpsynth.cli.demo import run_demo
from dpsynth.cli.evaluate import run_eval
from dpsynth.cli.fit import run_fit
from dpsynth.cli.history import run_history
from dpsynth.cli.ledger import run_ledger
from dpsynth.cli.parser import build_parser
from dpsynth.cli.pii import run_replay, run_scan
from dpsynth.cli.refresh import run_refresh
from dpsynth.cli.release import run_release, run_verify_manifest
from dpsynth.cli.schema import run_schema
from dpsynth.exceptions import DPSynthError, InsecureNoiseWarning, SchemaWithoutPrivacyWarning
from dpsynth.privacy.ledger import UntrackedPrivacyWarning

__all__ = ["build_parser", "main"]

_LOUD = (UntrackedPrivacyWarning, InsecureNoiseWarning, SchemaWithoutPrivacyWarning)

#: each command's handler: it prints and returns the exit code
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "fit": run_fit,
    "eval": run_eval,
    "schema": run_schema,
    "ledger": run_ledger,
    "demo": run_demo,
    "release": run_release,
    "audit": run_audit,
    "scan": run_scan,
    "replay": run_replay,
    "verify-manifest": run_verify_manifest,
    "refresh": run_refresh,
    "history": run_history,
}


def main(argv: list[str] | None = None) -> int:
    """Run ``dpsynth ARGV`` and return its exit code (a usage mistake exits 2 from argparse)."""
    args = build_parser().parse_args(argv)
    command = f"{args.command} {args.schema_command}" if args.command == "schema" else args.command
    try:
        with warnings.catch_warnings(record=True) as caught:
            for category in _LOUD:
                warnings.simplefilter("always", category)
            code = _COMMANDS[args.command](args)
        for w in caught:
            if issubclass(w.category, _LOUD):
                sys.stderr.write(f"dpsynth {command}: WARNING: {w.message}\n")
            else:  # pragma: no cover - anything else keeps its usual form
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return code
    except DPSynthError as exc:
        sys.stderr.write(f"dpsynth {command}: error: {exc}\n")
        return exc.exit_code
