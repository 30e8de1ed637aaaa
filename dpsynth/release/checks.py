"""The checks of one release, each classified by what it reads (DESIGN.md, "What the gate checks").

Every check records its value, threshold, status and ``reads``:

* ``public``: public input or ledger state (the policy's caps, the privacy parameters, the budget);
* ``dp_output``: only the DP output (the synthetic table, the fitted model): post-processing;
* ``private_dp``: the private rows, through a DP measurement charged to the ledger with the release;
* ``private_not_dp``: the private rows WITHOUT privacy, only under the policy's named opt-in
  ``decision_read_private_data_without_privacy``.

A decision taken only from checks of the first three kinds is DP: its ε is the composition of
the fit's and the DP checks' charges, which the report states.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dpsynth.exceptions import InternalError

#: what a check may read, in words (the report and the page show them)
READS = {
    "public": "public input or ledger state",
    "dp_output": "only the DP output (post-processing)",
    "private_dp": "the private rows through a DP measurement charged to the ledger",
    "private_not_dp": "the private rows WITHOUT privacy (named opt-in)",
}


class Checks:
    """The checks of one release, in order."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, id: str, category: str, title: str, value: Any, threshold: Any, comparison: str, ok: bool,
            detail: str = "", *, reads: str) -> None:
        """Record a check that ran: ``ok`` gives its status, pass or fail."""
        _check_reads(reads)
        self.items.append({"id": id, "category": category, "title": title, "value": plain(value),
                           "threshold": plain(threshold), "comparison": comparison,
                           "status": "pass" if ok else "fail", "detail": detail, "reads": reads})

    def error(self, id: str, category: str, title: str, threshold: Any, comparison: str, exc: BaseException, *,
              reads: str) -> None:
        """Record a check that raised ``exc`` while running: it blocks (status ``error``)."""
        self.failed(id, category, title, threshold, comparison, f"could not run: {type(exc).__name__}: "
                    f"{first_line(exc)}", reads=reads)

    def failed(self, id: str, category: str, title: str, threshold: Any, comparison: str, why: str, *,
               reads: str) -> None:
        """A check that could not run: it blocks (status ``error``)."""
        _check_reads(reads)
        self.items.append({"id": id, "category": category, "title": title, "value": None,
                           "threshold": plain(threshold), "comparison": comparison, "status": "error",
                           "detail": why, "reads": reads})

    def not_run(self, id: str, category: str, title: str, threshold: Any, comparison: str, why: str, *,
                reads: str) -> None:
        """Record a check that was not run (status ``not_run``), and why."""
        self.items.append({"id": id, "category": category, "title": title, "value": None,
                           "threshold": plain(threshold), "comparison": comparison, "status": "not_run",
                           "detail": why, "reads": reads})

    def remove(self, id: str) -> None:
        """Forget the check ``id`` (to record it again)."""
        self.items[:] = [c for c in self.items if c["id"] != id]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c["status"] == "pass" for c in self.items)

    @property
    def decision_is_dp(self) -> bool:
        """Whether no check read the private rows without privacy."""
        return all(c["reads"] != "private_not_dp" for c in self.items)

    def reasons(self) -> list[str]:
        """Why the release is not released: one line per failed or errored check."""
        out = []
        for c in self.items:
            if c["status"] == "fail":
                out.append(f"{c['id']}: {c['title']}: {show(c['value'])} (must be {c['comparison']} "
                           f"{show(c['threshold'])})" + (f"; {c['detail']}" if c["detail"] else ""))
            elif c["status"] == "error":
                out.append(f"{c['id']}: {c['title']}: {c['detail']}")
        return out


def _check_reads(reads: str) -> None:
    if reads not in READS:
        raise InternalError(f"a check must say what it read, one of {', '.join(READS)}; got {reads!r}")


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (empty when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def plain(value: Any) -> Any:
    """``value`` as a plain JSON value (numpy scalars unwrapped; a non-finite float as its text)."""
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def show(value: Any) -> str:
    """``value`` as short text for a reason line."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]" if value else "none"
    return str(value)
