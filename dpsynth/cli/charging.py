"""Which ledger a charged command charges: ``--ledger URL --dataset NAME`` (or ``$DPSYNTH_LEDGER``), or
the loud ``--no-ledger`` opt-out."""

from __future__ import annotations

import argparse
import os
from typing import Any

from dpsynth.exceptions import ParameterError

__all__ = ["ledger_for"]


def ledger_for(args: argparse.Namespace, what: str, *, doing: str = "run") -> tuple[Any, str | None]:
    """The ledger and dataset of a charged command, or the loud UNTRACKED opt-out (with no dataset).

    ``what`` names the command in the message, ``doing`` what ``--no-ledger`` would do without recording.
    """
    from dpsynth.privacy.ledger import UNTRACKED, Ledger

    if args.no_ledger:
        if args.ledger or args.dataset:
            raise ParameterError("give --ledger URL --dataset NAME or --no-ledger, not both")
        return UNTRACKED, None
    url = args.ledger or os.environ.get("DPSYNTH_LEDGER")
    if not url or not args.dataset:
        raise ParameterError(
            f"{what} needs --ledger URL --dataset NAME to charge the privacy budget "
            f"(or --no-ledger to {doing} without recording the privacy loss)"
        )
    return Ledger(url), args.dataset
