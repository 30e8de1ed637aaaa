"""What every command group of the CLI parses with: the parser that reports a usage mistake as one line
and exit code 2, the number types, and the options several commands share."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, NoReturn

__all__ = ["THREADS_HELP", "Parser", "engine_options", "integer", "ledger_option", "number"]


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Let negative numbers in scientific notation (``--delta -1e-6``) reach validation
        # as values instead of being mistaken for options.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str) -> NoReturn:
        """Write the usage mistake as one line and exit 2."""
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def number(text: str) -> float:
    """A float option (argparse's one-line error otherwise)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def integer(text: str) -> int:
    """An integer option (argparse's one-line error otherwise)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


THREADS_HELP = ("threads of PyTorch and the BLAS/OpenMP pools during the fit, 1 to 1024 (default: automatic, from "
                "the usable CPUs, the machine's load and the work; OMP_NUM_THREADS is respected)")


def ledger_option(parser: argparse.ArgumentParser) -> None:
    """``--ledger URL`` of the ``ledger`` commands: required unless ``$DPSYNTH_LEDGER`` gives it."""
    parser.add_argument("--ledger", required=os.environ.get("DPSYNTH_LEDGER") is None,
                        default=os.environ.get("DPSYNTH_LEDGER"))


def engine_options(parser: argparse.ArgumentParser, *, by_size: bool = True) -> None:
    """``--engine`` and ``--spark-master``: where the private table is counted (docs/scale.md); ``by_size``:
    whether ``auto`` sends a large file to DuckDB (not for ``release``, whose DP replay depends on the engine)."""
    large = "a file over 256 MiB" if by_size else "(never by a file's size: name duckdb for a large file)"
    parser.add_argument("--engine", default="auto", choices=["auto", "numpy", "duckdb", "spark"],
                        help=f"where the private table is counted: auto (the default: DuckDB for a folder, a glob or "
                             f"{large}, Spark when --spark-master is given, else in memory), numpy (in memory), "
                             "duckdb (embedded, larger than memory) or spark")
    parser.add_argument("--spark-master", default=None,
                        help="the Spark master URL for --engine spark (default: the active session's, or local[*])")


def user_unit_options(parser: argparse.ArgumentParser) -> None:
    """``--user-column`` and ``--max-rows-per-user``: the privacy unit, one person (overrides the schema's)."""
    parser.add_argument("--user-column", help="privacy unit: one person, keyed by this column (never synthesised); "
                        "overrides the schema's privacy_unit; needs --max-rows-per-user")
    parser.add_argument("--max-rows-per-user", type=integer, default=None,
                        help="K: each person keeps at most K rows (the rest are dropped before any measurement)")


def user_unit(args: argparse.Namespace) -> Any:
    """The :class:`~dpsynth.privacy.unit.PrivacyUnit` of ``--user-column`` and ``--max-rows-per-user`` (both or
    neither), or None: the schema's own."""
    from dpsynth.exceptions import ParameterError
    from dpsynth.privacy.unit import PrivacyUnit

    column, max_rows = args.user_column, args.max_rows_per_user
    if column is None and max_rows is None:
        return None
    if column is None or max_rows is None:
        raise ParameterError("--user-column and --max-rows-per-user must be given together")
    return PrivacyUnit.users(column, max_rows=max_rows)
