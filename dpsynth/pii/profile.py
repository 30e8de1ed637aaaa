"""What the scan knows about a column before Presidio sees a value: its cells as text, its context
words, whether its values hold words, and the analysis profile answers are cached under.

Privacy: reads the column it is given (the scan's table); returns its distinct texts to the scan,
which reports no value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError
from dpsynth.schema.schema import Column, Schema

#: A text column goes to NER when at least this share of its distinct values holds a word.
WORDY_SHARE = 0.5
#: Distinct values read to decide whether a column is wordy or holds short values.
WORDY_SAMPLE = 2000
_WORD = re.compile(r"(?:^|(?<=\s))[^\W\d_]{2,}[.,;:!?)]?(?=\s|$)")
_NAME_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_PLAIN_TYPES = (str, int, float, bool, np.integer, np.floating, np.bool_, Decimal, date, datetime, pd.Timestamp)


@dataclass(frozen=True)
class ColumnProfile:
    """How a column's values are analysed; columns with equal profiles share their answers.

    Attributes:
        ner: whether spaCy's NER reads the values.
        context: the column name's context words.
        entities: the entity types asked for.
        allow_list: values (or matched texts) never reported.
    """

    ner: bool
    context: tuple[str, ...]
    entities: tuple[str, ...]
    allow_list: tuple[str, ...]


def context_words(column: str) -> list[str]:
    """Context words from a column name: ``PhoneNumber``/``phone_number`` → ``phone``, ``number``."""
    parts = [p.lower() for p in _NAME_PART.findall(column) if not p.isdigit()]
    return list(dict.fromkeys(parts)) or [column.lower()]


def is_wordy(text: str) -> bool:
    """Whether a value holds a word of two letters or more standing alone (NER has something to read)."""
    return _WORD.search(text) is not None


def column_texts(values: pd.Series, col: Column | None, schema: Schema | None) -> tuple[np.ndarray, np.ndarray]:
    """Factorised non-missing cells as text: (codes per row, -1 where missing; distinct texts).

    Raises:
        DataError: a cell of an unexpected type (lists, bytes …), or text in a column the schema
            declares numeric or datetime (the message counts rows, never shows a value).
    """
    name = values.name
    missing = np.array(values.isna().to_numpy(dtype=bool), dtype=bool)  # a writable copy
    kept = values[~missing]
    if pd.api.types.is_object_dtype(kept.dtype):
        bad = {t.__name__ for t in set(map(type, kept.array)) if not issubclass(t, _PLAIN_TYPES)}
        if bad:
            raise DataError(f"column {name!r} holds values of type {', '.join(sorted(bad))}; "
                            "expected text, numbers or dates")
    if pd.api.types.is_datetime64_any_dtype(kept.dtype):
        text = kept.dt.strftime("%Y-%m-%dT%H:%M:%S").str.replace("T00:00:00", "", regex=False)
    else:
        text = kept.astype(str)
    if schema is not None and schema.missing_values:
        tokens = text.isin(list(schema.missing_values)).to_numpy(dtype=bool)
        text = text[~tokens]
        missing[np.flatnonzero(~missing)[tokens]] = True
    codes = np.full(len(values), -1, dtype=np.int64)
    sub, uniques = pd.factorize(text, sort=False)
    codes[~missing] = sub
    distinct = np.asarray(uniques, dtype=object)
    if col is not None and col.kind != "categorical" and len(distinct):
        parsed = (pd.to_datetime(pd.Series(distinct), errors="coerce", format="ISO8601", utc=True)
                  if col.kind == "datetime" else pd.to_numeric(pd.Series(distinct), errors="coerce"))
        bad_values = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad_values):
            rows = int(np.isin(codes, bad_values).sum())
            what = "a date/time" if col.kind == "datetime" else "a number"
            raise DataError(f"column {name!r} is declared {col.kind} but holds text that is not {what} "
                            f"in {rows:,} row{'s' if rows != 1 else ''}")
    return codes, distinct


def ner_decision(values: pd.Series, distinct: np.ndarray, col: Column | None, ner_enabled: bool) -> tuple[bool, str]:
    """Whether NER reads the column, and why: the engine, the schema (hint, kind), the dtype, or the
    share of distinct values that hold a word."""
    numeric_dtype = (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
                     or pd.api.types.is_datetime64_any_dtype(values.dtype))
    if not ner_enabled:
        return False, "NER is off"
    if col is not None and col.pii_ner is not None:
        return col.pii_ner, f"schema hint ner: {str(col.pii_ner).lower()}"
    if col is not None and col.kind != "categorical":
        return False, f"declared {col.kind}"
    if numeric_dtype:
        return False, f"{values.dtype} values"
    sample = distinct[:WORDY_SAMPLE]
    share = float(np.mean([is_wordy(v) for v in sample])) if len(sample) else 0.0
    ner = share >= WORDY_SHARE
    return ner, f"{share:.0%} of distinct values hold words" if ner else f"code-shaped ({share:.0%} hold words)"
