"""The AIM workload error, written from its definition (McKenna et al. 2022), apart from dpsynth.

For a set of columns C, the marginal of a table T is the share of T's rows that fall in each
combination of values of C. The error of C is the L1 distance between the real and the synthetic
marginals::

    err(C) = sum over cells x of | #{r in R : r[C] = x} / |R|  -  #{s in S : s[C] = x} / |S| |

and the k-way workload error is the mean of err(C) over every set C of k columns. A cell that
neither table occupies adds nothing, so only occupied cells are visited and no domain is needed:
the two tables only have to write the same value the same way. A missing value (``NaN``,
``None``) is a value of its own, one cell for all of them.

Plain Python counting (``collections.Counter`` over row tuples) and ``math.fsum``; this module
reads no code of :mod:`dpsynth` and none of ``shared/peers/workload_error.py``.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Sequence

import pandas as pd

MISSING = ("<missing>",)  # a key no cell value can equal: a tuple, where values are scalars


def _cell_values(column: pd.Series) -> list[Hashable]:
    """The column's values as dictionary keys, every kind of missing value folded into one."""
    return [MISSING if pd.isna(value) else value for value in column.tolist()]


def _shares(table: pd.DataFrame, columns: Sequence[str]) -> dict[tuple[Hashable, ...], float]:
    """Share of the table's rows in each occupied cell of the marginal over ``columns``."""
    rows = zip(*(_cell_values(table[name]) for name in columns), strict=True)
    counts = Counter(rows)
    return {cell: count / len(table) for cell, count in counts.items()}


def marginal_error(real: pd.DataFrame, synthetic: pd.DataFrame, columns: Sequence[str]) -> float:
    """L1 distance between the two tables' normalised marginals over ``columns``."""
    p = _shares(real, columns)
    q = _shares(synthetic, columns)
    return math.fsum(abs(p.get(cell, 0.0) - q.get(cell, 0.0)) for cell in p.keys() | q.keys())


def workload_error(real: pd.DataFrame, synthetic: pd.DataFrame, columns: Sequence[str], k: int) -> float | None:
    """Mean :func:`marginal_error` over every set of ``k`` of ``columns``; ``None`` when there is none."""
    errors = [marginal_error(real, synthetic, subset) for subset in itertools.combinations(columns, k)]
    return math.fsum(errors) / len(errors) if errors else None


def number_of_marginals(columns: Sequence[str], k: int) -> int:
    """How many k-way marginals the workload over ``columns`` has."""
    return math.comb(len(columns), k)
