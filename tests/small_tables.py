"""The small table of the ``small_schema`` fixture (tests/conftest.py), for tests that build it outside a
function-scoped fixture (e.g. a module-scoped fit)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def small_table() -> pd.DataFrame:
    """400 seeded rows of the ``small_schema`` fixture's columns, as text (``?`` is missing)."""
    rng = np.random.default_rng(7)
    n = 400
    color = rng.choice(["red", "green", "blue", "?"], size=n, p=[0.5, 0.3, 0.15, 0.05])
    size = np.where(color == "red", rng.choice(["S", "M"], size=n), rng.choice(["L", "XL"], size=n))
    age = rng.integers(0, 99, size=n)
    score = np.round(rng.random(n), 3)
    return pd.DataFrame({"color": color, "size": size, "age": age.astype(str), "score": score.astype(str)})
