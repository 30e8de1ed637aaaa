"""Copy checks of tables in DuckDB and Spark: exact and quasi-identifier copies found by joins in the
engine equal :func:`dpsynth.pii.replay.copy_check`'s in memory on the same tables (with a holdout, the
same baseline), every row counted; the Bernoulli split without a holdout is seeded and repeatable.

Deterministic except the split's size: with n = 4,000 real rows and share 0.2, the baseline holds
Binomial(4000, 0.2) rows (sd 25.3) and the test allows 7 sd: false failure below 3e-12 per engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import adult_path, adult_schema_path
from dpsynth.exceptions import DataError
from dpsynth.io import read_table
from dpsynth.marginals.engines import open_sources
from dpsynth.pii.engine_replay import engine_copy_check
from dpsynth.pii.replay import copy_check
from dpsynth.schema import Schema, load_schema

REAL, SYNTHETIC, HOLDOUT = 4_000, 1_500, 1_000


def schema_with_qis() -> Schema:
    spec = load_schema(adult_schema_path()).to_dict()
    for col in spec["columns"]:
        if col["name"] in ("age", "sex", "race", "native-country"):
            col["quasi_identifier"] = True
    return Schema.from_dict(spec)


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("replay")
    adult = pd.read_csv(adult_path(), dtype=str, keep_default_na=False)
    real = adult.iloc[:REAL]
    holdout = adult.iloc[REAL:REAL + HOLDOUT]
    rng = np.random.default_rng(2)
    copied = real.iloc[rng.choice(REAL, size=200, replace=False)]
    fresh = adult.iloc[REAL + HOLDOUT:REAL + HOLDOUT + SYNTHETIC - 200]
    synthetic = pd.concat([copied, fresh]).sample(frac=1.0, random_state=3)
    paths = {}
    for name, frame in (("real", real), ("holdout", holdout), ("synthetic", synthetic)):
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    parquet = folder / "synthetic.parquet"
    synthetic.to_parquet(parquet, index=False)
    paths["synthetic_parquet"] = parquet
    return paths


@pytest.fixture(params=["duckdb", "spark"])
def engine(request):
    if request.param == "spark":
        request.getfixturevalue("spark")
    return request.param


def in_engine(engine: str, real: Path, synthetic: Path, holdout: Path | None, **kw):
    sources = open_sources([real, synthetic, holdout], engine)
    try:
        return engine_copy_check(sources[0], sources[1], schema_with_qis(), holdout=sources[2], **kw)
    finally:
        for s in reversed(sources):
            if s is not None:
                s.close()


@pytest.mark.parametrize("synthetic", ["synthetic", "synthetic_parquet"])
def test_with_a_holdout_every_count_equals_the_in_memory_check(engine, tables, synthetic):
    schema = schema_with_qis()
    want = copy_check(read_table(tables["real"]), read_table(tables[synthetic]), schema,
                      holdout=read_table(tables["holdout"]), near=False)
    got = in_engine(engine, tables["real"], tables[synthetic], tables["holdout"], near=False)
    assert [r.check for r in got.rates] == [r.check for r in want.rates]
    assert [r.check for r in want.rates] == ["exact", "quasi_identifiers", "quasi_identifiers_unique"]
    for g, w in zip(got.rates, want.rates, strict=True):
        assert g == w, g.check
    assert got.rate("exact").synthetic_matches >= 200 and got.rate("exact").flagged  # the planted copies
    assert got.reference_rows == want.reference_rows == REAL
    assert got.engine["every_row"] == ["exact", "quasi_identifiers", "quasi_identifiers_unique"]


def test_without_a_holdout_the_split_is_seeded_and_near_copies_are_sampled(engine, tables):
    first = in_engine(engine, tables["real"], tables["synthetic"], None, sample_rows=800)
    again = in_engine(engine, tables["real"], tables["synthetic"], None, sample_rows=800)
    exact = first.rate("exact")
    assert first.to_dict()["checks"][:3] == again.to_dict()["checks"][:3]
    assert abs(exact.baseline_rows - 0.2 * REAL) <= 7 * (REAL * 0.2 * 0.8) ** 0.5
    assert first.reference_rows + exact.baseline_rows == REAL
    assert exact.synthetic_rows == SYNTHETIC and exact.synthetic_matches >= 150  # most copies are in the reference
    assert first.engine["sampled"] == ["near", "dcr_quantiles"]
    assert first.engine["sample_rows"] == {"real": 800, "synthetic": 800}
    assert first.rate("near").synthetic_rows == 800 and set(first.dcr_quantiles) == {"synthetic", "baseline"}


def test_bad_numbers_are_one_line_errors_without_values(tmp_path, tables):
    bad = pd.read_csv(tables["synthetic"], dtype=str, keep_default_na=False)
    bad.loc[7, "age"] = "xyzzy"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"^column 'age': text that is not a number in 1 row$"):
        in_engine("duckdb", tables["real"], path, tables["holdout"])
