"""Make the bundled multi-row-per-person table (``people/people.csv.gz``) from the bundled Adult rows.

Public data only: every row is a row of the bundled UCI Adult table, and the person id is synthetic.
One person's rows are drawn from rows alike in sex, race, native country and education (the rows are
sorted by those columns, ties broken at random, and cut into consecutive runs), so that a person's
rows concentrate in the same cells of the marginals, as a real person's claims or visits do. The
number of rows a person has is skewed: 1 + ⌊LogNormal(0.7, 1.1)⌋, at most 60 (most people have 1-4
rows, a few dozens). The rows are then shuffled.

Deterministic (seed 0). Run ``python -m dpsynth.datasets.people_make`` to write it again; the file
ships with the package, so nothing runs this at install or test time.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
MAX_ROWS = 60
KEY = "person_id"
ALIKE = ["sex", "race", "native-country", "education"]


def person_sizes(n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Rows per person, skewed, summing to ``n_rows``."""
    sizes: list[int] = []
    total = 0
    while total < n_rows:
        k = int(min(MAX_ROWS, 1 + np.floor(rng.lognormal(0.7, 1.1))))
        k = min(k, n_rows - total)
        sizes.append(k)
        total += k
    return np.asarray(sizes)


def make(adult: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Adult's rows with a synthetic person id (the first column), shuffled."""
    rng = np.random.default_rng(seed)
    ordered = adult.assign(_tie=rng.random(len(adult))).sort_values([*ALIKE, "_tie"]).drop(columns="_tie")
    sizes = person_sizes(len(ordered), rng)
    ids = rng.permutation(len(sizes))
    person = np.repeat(ids, sizes)
    out = ordered.reset_index(drop=True)
    out.insert(0, KEY, [f"p{i:05d}" for i in person])
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def main() -> None:  # pragma: no cover - a maintainer's script
    """Write ``people/people.csv.gz`` (byte-stable) and print its shape."""
    from dpsynth.datasets import load_adult

    adult, _ = load_adult()
    table = make(adult)
    path = Path(__file__).parent / "people" / "people.csv.gz"
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # byte-stable output
        f.write(table.to_csv(index=False).encode("utf-8"))
    counts = table[KEY].value_counts()
    print(f"{path}: {len(table):,} rows, {len(counts):,} people, rows a person: median {counts.median():g}, "
          f"max {counts.max()}, share of people above 1/4/16 rows: "
          + ", ".join(f"{(counts > k).mean():.3f}" for k in (1, 4, 16)))


if __name__ == "__main__":  # pragma: no cover
    main()
