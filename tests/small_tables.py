"""The small schema and table of the ``small_schema`` and ``small_data`` fixtures (tests/conftest.py), for
tests that build them outside a function-scoped fixture (e.g. a module-scoped fit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: the declaration of the small schema: a nullable categorical, a categorical, a binned integer, a continuous
SMALL_SCHEMA: dict[str, Any] = {
    "version": 1,
    "missing_values": ["?"],
    "columns": [
        {"name": "color", "kind": "categorical", "levels": ["red", "green", "blue"], "nullable": True},
        {"name": "size", "kind": "categorical", "levels": ["S", "M", "L", "XL"]},
        {"name": "age", "kind": "integer", "bounds": [0, 99], "edges": [0, 18, 30, 45, 65, 99]},
        {"name": "score", "kind": "continuous", "bounds": [0.0, 1.0], "bins": 5},
    ],
}


def small_table() -> pd.DataFrame:
    """400 seeded rows of the ``small_schema`` fixture's columns, as text (``?`` is missing)."""
    rng = np.random.default_rng(7)
    n = 400
    color = rng.choice(["red", "green", "blue", "?"], size=n, p=[0.5, 0.3, 0.15, 0.05])
    size = np.where(color == "red", rng.choice(["S", "M"], size=n), rng.choice(["L", "XL"], size=n))
    age = rng.integers(0, 99, size=n)
    score = np.round(rng.random(n), 3)
    return pd.DataFrame({"color": color, "size": size, "age": age.astype(str), "score": score.astype(str)})
