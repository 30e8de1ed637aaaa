"""``dpsynth history DATASET --releases ROOT``: every version of a refresh series, newest first, and the
interrupted attempts; ``--json`` as one object, ``--html`` (re)writes the series' ``index.html``."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_history", "run_history"]


def add_history(sub: Any) -> None:
    """Add ``dpsynth history`` to the subcommands ``sub``."""
    hist = sub.add_parser("history", help="every version of a refresh series, newest first, with its ε, checks and "
                                          "drift, and the interrupted attempts (exit 0, 2 a bad folder)")
    hist.add_argument("dataset", metavar="DATASET", help="the series' dataset (the folder ROOT/DATASET)")
    hist.add_argument("--releases", required=True, metavar="ROOT",
                      help="the releases folder of the refresh plan (holds DATASET/v0001, …)")
    out = hist.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the history as one JSON object")
    out.add_argument("--html", action="store_true", help="(re)write ROOT/DATASET/index.html and print its path")


def run_history(args: argparse.Namespace) -> int:
    """Exit 0 done, 2 a missing or malformed series folder (one line on stderr)."""
    from dpsynth.refresh.history import format_history, read_history, read_interrupted, read_pending
    from dpsynth.refresh.index_html import write_index

    if args.html:
        print(write_index(args.releases, args.dataset))
        return 0
    records = read_history(args.releases, args.dataset)
    interrupted = read_interrupted(args.releases, args.dataset)
    pending = read_pending(args.releases, args.dataset)
    if args.json:
        print(json.dumps({"dataset": args.dataset, "releases": str(args.releases),
                          "versions": [r.to_dict() for r in records],
                          "interrupted": [a.to_dict() for a in interrupted], "in_flight": pending}))
    else:
        print(format_history(args.dataset, records, interrupted, pending))
    return 0
