"""Targeted tables of a release: extra synthetic tables sampled from the same fit under conditions on
public values (``sample(n, conditions=…)``, :mod:`dpsynth.synth.conditions`), to fill a coverage gap
(more rows with ``income = >50K``, or a stated mix) without a new fit.

They are post-processing of the fitted model, so they cost nothing. Each is named and sized by the
caller (public), checked against the schema before anything is charged, sampled after the main table,
scanned for PII with it (the release's PII check reads every table that leaves), and written beside
it as ``publish/targeted-NAME.csv`` (in the manifest) only when the release is released. The replay
and fidelity checks measure the main table: a targeted table follows the conditions, not the data's
distribution, by design. A rare condition amplifies the model's noise (``docs/conditional-sampling.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dpsynth.exceptions import ParameterError
from dpsynth.release.checks import Checks, first_line

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
TITLE = "the targeted tables meet their conditions"


@dataclass(frozen=True)
class Targeted:
    """One targeted table: its name (its file is ``targeted-NAME.csv``), rows and conditions."""

    name: str
    rows: int
    conditions: dict[str, Any]

    @property
    def file(self) -> str:
        """The table's file name in ``publish/``."""
        return f"targeted-{self.name}.csv"

    def to_dict(self) -> dict[str, Any]:
        """As the report records it (public)."""
        return {"name": self.name, "rows": self.rows, "conditions": self.conditions, "file": self.file}


def check_targeted(raw: Any, schema: Any) -> list[Targeted]:
    """``raw`` (a list of ``{name, rows, conditions}``) checked against ``schema``, before any charge.

    Raises:
        ParameterError: one line naming the table and what was expected.
    """
    from dpsynth import _validation as check
    from dpsynth.synth.conditions import parse_conditions
    from dpsynth.synth.streaming import check_rows_in_memory

    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ParameterError("targeted must be a list of {name, rows, conditions}")
    out: list[Targeted] = []
    for i, item in enumerate(raw):
        where = f"targeted[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"name", "rows", "conditions"}:
            raise ParameterError(f"{where} must be a mapping with exactly the keys name, rows, conditions")
        name = item["name"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ParameterError(f"{where}.name must be 1 to 40 lower-case letters, digits, '_' or '-', starting "
                                 "with a letter or digit (it names the table's file)")
        if any(t.name == name for t in out):
            raise ParameterError(f"{where}.name ({name!r}) names another targeted table too")
        rows = check.positive_int(f"{where}.rows", item["rows"])
        check_rows_in_memory(rows, schema, name=f"{where}.rows")
        parse_conditions(item["conditions"], schema)
        out.append(Targeted(name, rows, dict(item["conditions"])))
    return out


def sample_targeted(synth: Any, targeted: list[Targeted], checks: Checks,
                    report: dict[str, Any]) -> dict[str, pd.DataFrame] | None:
    """Each targeted table sampled from the fitted ``synth`` (post-processing); None (and a blocking
    check) when one cannot be sampled, e.g. a condition too rare for a generator that rejects."""
    if not targeted:
        return {}
    report["release"]["targeted"] = [t.to_dict() for t in targeted]
    tables: dict[str, pd.DataFrame] = {}
    for t in targeted:
        try:
            tables[t.file] = synth.sample(t.rows, conditions=t.conditions)
        except Exception as exc:  # noqa: BLE001 - a table that cannot be made blocks; it never ships half the release
            checks.failed("release.targeted", "privacy", TITLE, None, "==", f"{t.name}: {first_line(exc)}",
                          reads="dp_output")
            return None
    return tables


__all__ = ["TITLE", "Targeted", "check_targeted", "sample_targeted"]
