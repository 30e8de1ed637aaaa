"""Contribution bounding in DuckDB and Spark keeps the rows the in-memory rule keeps: the same bounded
counts, the same seeded MST fit, and the same one-line errors for a missing key. Deterministic."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED, PrivacyUnit
from dpsynth.datasets import load_adult
from dpsynth.exceptions import DataError
from dpsynth.marginals.bounding import bound_contributions
from dpsynth.marginals.numpy_backend import marginal_counts
from dpsynth.schema.encode import encode
from dpsynth.synth import MST

CLIQUES = [(0,), (1, 5), (4, 13), (2, 9, 14)]


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """The bundled Adult with a person id of 1-9 rows a person (skewed), as CSV and as Parquet (int keys)."""
    frame, schema = load_adult()
    rng = np.random.default_rng(0)
    sizes = rng.zipf(1.6, size=len(frame)).clip(1, 9)
    ids = np.repeat(np.arange(len(sizes)), sizes)[: len(frame)]
    frame = frame.copy()
    frame.insert(2, "pid", rng.permutation(ids))
    folder = tmp_path_factory.mktemp("people")
    frame.to_csv(folder / "people.csv", index=False)
    frame.to_parquet(folder / "people.parquet", index=False)
    return frame, schema.with_unit(PrivacyUnit.users("pid", max_rows=3)), folder


def in_memory(frame: pd.DataFrame, schema) -> list[np.ndarray]:
    codes = encode(frame, schema)
    kept = bound_contributions(frame["pid"].astype(str), codes, schema.privacy_unit.max_rows)
    assert 0 < len(kept) < len(frame)  # some people have more than K rows
    return [marginal_counts(codes[kept], c, schema.sizes) for c in CLIQUES]


def assert_counts_as_numpy(source, frame: pd.DataFrame, schema) -> None:
    """The engine's bounded marginal counts equal the in-memory ones (the source is closed after)."""
    try:
        source.validate(schema)
        counts = source.counter(schema).counts(CLIQUES)
    finally:
        source.close()
    assert all(np.array_equal(a.ravel(), b.ravel()) for a, b in zip(in_memory(frame, schema), counts, strict=True))


def mst_sample(data, schema) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untracked, seeded: expected here
        model = MST(epsilon=1.0, delta=1e-9, estimation_iters=100, insecure_seed=3).fit(
            data, schema=schema, ledger=UNTRACKED)
    return model.sample(500, random_state=0)


@pytest.mark.parametrize("form", ["people.csv", "people.parquet"])
def test_duckdb_bounds_as_numpy_does(people, form):
    from dpsynth.marginals.duckdb_backend import DuckDBSource

    frame, schema, folder = people
    assert_counts_as_numpy(DuckDBSource(folder / form), frame, schema)
    assert mst_sample(DuckDBSource(folder / form), schema).equals(mst_sample(frame, schema))


def test_spark_bounds_as_numpy_does(people, spark):
    from dpsynth.marginals.spark_backend import SparkSource

    frame, schema, folder = people
    assert_counts_as_numpy(SparkSource(str(folder / "people.parquet"), session=spark), frame, schema)
    assert mst_sample(SparkSource(str(folder / "people.csv"), session=spark), schema).equals(
        mst_sample(frame, schema))


def test_a_missing_key_in_an_engine_is_one_line_without_the_value(people, tmp_path):
    from dpsynth.marginals.duckdb_backend import DuckDBSource

    frame, schema, _ = people
    broken = frame.copy()
    broken["pid"] = broken["pid"].astype(str)
    broken.loc[[10, 20], "pid"] = "  "
    broken.to_csv(tmp_path / "broken.csv", index=False)
    source = DuckDBSource(tmp_path / "broken.csv")
    try:
        with pytest.raises(DataError, match=r"^column 'pid': the person key is missing in 2 row\(s\)"):
            source.validate(schema)
    finally:
        source.close()
    source = DuckDBSource(tmp_path / "broken.csv")
    try:
        with pytest.raises(DataError, match="data has no column 'other'"):
            source.validate(schema.with_unit(PrivacyUnit.users("other", max_rows=3)))
    finally:
        source.close()


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_dp_bin_edges_at_the_user_unit_are_chosen_on_the_kept_rows_in_every_engine(people, engine, request):
    """Age's bin edges are DP quantiles: an engine measures them on its view of the kept rows and counts the
    fit under the chosen edges; in memory the same rows are kept, so the seeded fits are equal."""
    from dpsynth.marginals.duckdb_backend import DuckDBSource
    from dpsynth.marginals.spark_backend import SparkSource
    from dpsynth.schema import Schema

    frame, schema, folder = people
    spec = schema.to_dict()
    spec["columns"][0] = {"name": "age", "kind": "integer", "bounds": [17, 90], "bins": {"dp_quantiles": 4}}
    binned = Schema.from_dict(spec)
    if engine == "spark":
        source = SparkSource(str(folder / "people.csv"), session=request.getfixturevalue("spark"))
    else:
        source = DuckDBSource(folder / "people.parquet")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # untracked, seeded: expected here
            fitted = [MST(epsilon=1.0, delta=1e-9, estimation_iters=100, insecure_seed=3).fit(
                data, schema=binned, ledger=UNTRACKED) for data in (frame, source)]
    finally:
        source.close()
    edges = [m.schema_["age"].edges for m in fitted]
    assert edges[0] == edges[1] and len(edges[0]) == 5
    assert fitted[0].sample(500, random_state=0).equals(fitted[1].sample(500, random_state=0))
