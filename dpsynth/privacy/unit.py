"""The privacy unit: what one neighbouring step adds or removes, a row or a person with at most K rows.

A guarantee is only as good as its unit. ``PrivacyUnit.rows()`` protects one row; under
``PrivacyUnit.users(column, max_rows=K)`` each person (the rows sharing a value of ``column``) keeps at
most K rows (contribution bounding, :mod:`dpsynth.marginals.bounding`, before any measurement), and the
neighbouring tables differ by one whole person: up to K rows. K is public (it is declared, never read
from the data), and every mechanism scales its sensitivity by :attr:`PrivacyUnit.sensitivity`.

The ledger stores the unit by its label, ``row`` or ``user:K``; :meth:`PrivacyUnit.parse` reads it
back (the key column is a property of the schema, not of the ledger). A dataset registered at
``user:K`` accepts fits that bound each person at K' ≤ K rows (:meth:`PrivacyUnit.fits_within`):
since every row of a person beyond K' is dropped, such a fit protects one person whatever their
number of rows, with the fit's own ε.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dpsynth.exceptions import ParameterError

__all__ = ["ROW", "PrivacyUnit", "unit_refusal"]

_LABEL = re.compile(r"^(row|user:[1-9][0-9]*)$")
#: The largest K accepted: sensitivities are integers scaled by K, and a bound beyond this is no bound.
MAX_ROWS_PER_USER = 1_000_000


@dataclass(frozen=True)
class PrivacyUnit:
    """A row (``max_rows`` 1, no ``column``), or a person keyed by ``column`` with at most ``max_rows`` rows.

    Use :meth:`rows` and :meth:`users` to build one (they validate).
    """

    kind: str = "row"  # "row" or "user"
    column: str | None = None
    max_rows: int = 1

    @classmethod
    def rows(cls) -> PrivacyUnit:
        """Add/remove one row."""
        return ROW

    @classmethod
    def users(cls, column: str, *, max_rows: int) -> PrivacyUnit:
        """Add/remove one person (the rows sharing a value of ``column``), each bounded at ``max_rows`` rows."""
        if not isinstance(column, str) or not column:
            raise ParameterError(f"privacy unit column ({column!r}) must be a non-empty column name")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_ROWS_PER_USER:
            raise ParameterError(f"max_rows ({max_rows!r}) must be an integer in [1, {MAX_ROWS_PER_USER:,}]")
        return cls(kind="user", column=column, max_rows=max_rows)

    @classmethod
    def parse(cls, label: str) -> PrivacyUnit:
        """The unit of a ledger label (``row`` or ``user:K``); a user unit read this way has no column."""
        if not isinstance(label, str) or not _LABEL.match(label):
            raise ParameterError(f"unit ({label!r}) must be 'row' or 'user:K' (at most K rows per user)")
        if label == "row":
            return ROW
        k = int(label.split(":", 1)[1])
        if k > MAX_ROWS_PER_USER:
            raise ParameterError(f"unit ({label!r}) must have K at most {MAX_ROWS_PER_USER:,}")
        return cls(kind="user", column=None, max_rows=k)

    @property
    def is_user(self) -> bool:
        """Whether a neighbouring step is a whole person (even with ``max_rows`` 1)."""
        return self.kind == "user"

    @property
    def label(self) -> str:
        """``row`` or ``user:K``: how the ledger records the unit."""
        return f"user:{self.max_rows}" if self.is_user else "row"

    @property
    def sensitivity(self) -> int:
        """By how much one neighbouring step moves a count vector, in L1 and in L2 (K rows in one cell):
        the factor every mechanism's sensitivity is scaled by."""
        return self.max_rows

    def describe(self) -> str:
        """The unit in words, as every report and statement shows it."""
        if not self.is_user:
            return "add/remove one row"
        return f"add/remove one person with up to {self.max_rows} row{'s' if self.max_rows > 1 else ''}"

    def fits_within(self, registered: PrivacyUnit) -> bool:
        """Whether a fit at this unit may be charged to a dataset registered at ``registered``: the same
        kind, and for people a bound of at most the registered K."""
        if self.is_user != registered.is_user:
            return False
        return self.max_rows <= registered.max_rows

    def to_dict(self) -> dict[str, object]:
        """The schema file's ``privacy_unit`` mapping (``None`` for a row: the default, not written)."""
        return {"column": self.column, "max_rows": self.max_rows}

    def __str__(self) -> str:
        return self.label


ROW = PrivacyUnit()


def unit_refusal(dataset: str, registered: str, unit: PrivacyUnit, protector: str) -> str | None:
    """Why a charge at ``unit`` (by ``protector``, e.g. a synthesizer's name) may not go to ``dataset``,
    registered at the ledger label ``registered``; None when it may (:meth:`PrivacyUnit.fits_within`)."""
    on_file = PrivacyUnit.parse(registered)
    if unit.fits_within(on_file):
        return None
    return (f"dataset {dataset!r} is registered with privacy unit {registered!r} ({on_file.describe()}), but "
            f"{protector} protects {unit.describe()}"
            + (" (a person's bound K must be at most the registered one)" if unit.is_user else ""))
