"""DP schema inference counted in DuckDB and Spark: every aggregate it reads equals the in-memory one on
the same table (text, typed Parquet, a relation, a DataFrame), the same seeded inference gives the same
schema in every engine, and only aggregates leave the engine, in three passes.

Deterministic: exact counts, and the inference's noise is seeded; no test here can fail by chance.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.datasets import adult_path
from dpsynth.exceptions import DataError, SchemaWithoutPrivacyWarning
from dpsynth.io import read_table
from dpsynth.marginals import profile
from dpsynth.marginals.profile import EngineCounts, open_table
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import infer_schema, read_schema_without_privacy
from dpsynth.schema.infer_counts import FrameCounts

MISSING = ["?", "NA", ""]


def mixed_table(n: int = 300) -> pd.DataFrame:
    """Text cells of every shape schema inference must sort: integers, decimals, exponents, signs, spaces,
    infinities, missing tokens, dates, quotes and backslashes."""
    rng = np.random.default_rng(5)
    pick = lambda values: rng.choice(np.array(values, dtype=object), size=n)  # noqa: E731
    return pd.DataFrame({
        "color": pick(["red", "green", "blue", "?", "NA", "red"]),
        "size": pick(["S", "M", "it's \\ \"L\"", "XL", "s", "", "other"]),
        "age": pick(["0", "17", "18.0", "29.99", "45", "-3", "1e1", "+30", " 44", "1e200"]),
        "count": pick(["0", "3", "9", "12", "7", "?"]),
        "score": pick(["0", "0.25", "-inf", "inf", "?", "0.1234", "nan", "-1e-4"]),
        "day": pick(["2020-01-01", "2020-03-15", "2020-12-31"]),
        "empty": pick(["?", "NA"]),
    })


def typed_table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    return pd.DataFrame({
        "i": rng.integers(-50, 5_000, size=n),
        "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(30.0, 20.0, size=n).round(3)),
        "whole": rng.integers(0, 9, size=n).astype(float),
        "flag": rng.random(n) < 0.3,
        "label": rng.choice(np.array(["a", "b", "NA", "c d"], dtype=object), size=n),
    })


def assert_same_counts(engine: EngineCounts, frame: FrameCounts) -> None:
    names = frame.columns
    assert engine.columns == names
    engine.prefetch(values=names, bins=names)
    for n in names:
        np.testing.assert_array_equal(engine.cell_counts(n), frame.cell_counts(n), err_msg=n)
        assert engine.missing_count(n) == frame.missing_count(n), n
        assert engine.value_counts(n) == frame.value_counts(n), n
        np.testing.assert_array_equal(engine.bounds_histogram(n), frame.bounds_histogram(n), err_msg=n)
        assert engine.number_range(n) == frame.number_range(n), n


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(params=["duckdb", "spark"])
def engine(request):
    if request.param == "spark":
        request.getfixturevalue("spark")  # a local session (or the fixture's skip/failure)
    return request.param


@pytest.mark.parametrize("name", ["mixed.csv", "mixed.csv.gz", "typed.parquet"])
def test_every_aggregate_equals_the_in_memory_one(engine, tmp_path, name):
    frame = typed_table() if name.endswith(".parquet") else mixed_table()
    path = write(frame, tmp_path / name)
    table = open_table(path, engine)
    try:
        assert_same_counts(table.counts(table.header(), MISSING), FrameCounts(read_table(path), MISSING))
    finally:
        table.close()


def test_a_relation_and_a_dataframe_equal_the_in_memory_table(spark, tmp_path):
    import duckdb

    frame = mixed_table()
    path = write(frame, tmp_path / "mixed.csv")
    reference = FrameCounts(frame, MISSING)  # the cells as they are (a relation keeps leading spaces)
    relation = duckdb.connect(":memory:").read_csv(str(path), all_varchar=True)
    ddl = ", ".join(f"`{c}` string" for c in frame.columns)  # from rows: pyspark warns on pandas 3 frames
    for data, engine in ((relation, "duckdb"), (spark.createDataFrame(frame.values.tolist(), ddl), "spark")):
        table = open_table(data, engine)
        try:
            assert_same_counts(table.counts(table.header(), MISSING), reference)
        finally:
            table.close()


@pytest.fixture(scope="module")
def adult_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "adult.csv"
    pd.read_csv(adult_path(), dtype=str, keep_default_na=False).head(5_000).to_csv(path, index=False)
    return path


def infer(data, engine: str, **extra):
    return infer_schema(data, epsilon=1.0, delta=1e-6, ledger=UNTRACKED, dataset="t", insecure_seed=3,
                        engine=engine, **extra)


@pytest.mark.parametrize("which", ["adult", "mixed"])
def test_the_seeded_inference_is_the_same_schema_in_every_engine(engine, tmp_path, adult_slice, which):
    path = adult_slice if which == "adult" else write(mixed_table(), tmp_path / "mixed.csv")
    hints = {"version": 1, "missing_values": MISSING, "columns": []}
    expected = infer(path, "numpy", hints=hints)
    got = infer(path, engine, hints=hints)
    assert got.to_dict() == expected.to_dict()
    assert {c.kind for c in got.columns} >= {"categorical", "integer"}


def test_inference_reads_three_aggregates_only(tmp_path, adult_slice, monkeypatch):
    """Pass 1 (one row), the levels of every categorical column in one query, the bounds of every numeric
    column in one query: nothing else reaches Python, and nothing larger than the counts."""
    from dpsynth.marginals.duckdb_backend import DuckDBSource

    fetched: list[int] = []
    original = DuckDBSource.fetch

    def recording(self, text, max_rows, **kw):
        out = original(self, text, max_rows, **kw)
        fetched.append(len(next(iter(out.values()))))
        return out

    monkeypatch.setattr(DuckDBSource, "fetch", recording)
    schema = infer(adult_slice, "duckdb")
    levels = sum(len(c.levels) for c in schema.columns if c.kind == "categorical")
    assert len(fetched) == 3 and fetched[0] == 1
    assert fetched[1] <= 5_000 and fetched[1] >= levels  # distinct values (and missing groups), never rows
    assert fetched[2] <= 2 * len(schema.columns) * 150  # log-scale bins of the numeric columns


def test_an_empty_table_and_too_many_values_are_errors_without_content(tmp_path, monkeypatch):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("t", ApproxDP(10.0, 1e-5))
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(DataError, match="^the data has no rows$"):
        infer_schema(empty, epsilon=1.0, delta=1e-6, ledger=ledger, dataset="t", engine="duckdb")
    assert ledger.statement("t").reservations == []
    monkeypatch.setattr(profile, "MAX_DISTINCT", 3)
    path = write(mixed_table(), tmp_path / "mixed.csv")
    with pytest.raises(DataError, match=r"more (distinct values )?than 3 (distinct values|per column)") as err:
        infer_schema(path, epsilon=1.0, delta=1e-6, ledger=ledger, dataset="t", engine="duckdb",
                     hints={"version": 1, "missing_values": MISSING, "columns": [{"name": "color", "kind":
                                                                                  "categorical"}]})
    assert "red" not in str(err.value) and "\n" not in str(err.value)
    # the distinct values are counted after the reservation (the kinds were measured first): it stays spent
    assert [r.status for r in ledger.statement("t").reservations] == ["failed"]


def test_the_public_opt_in_reads_the_same_schema_in_every_engine(engine, tmp_path):
    path = write(mixed_table(), tmp_path / "mixed.csv")
    hints = {"version": 1, "missing_values": MISSING, "columns": []}
    with pytest.warns(SchemaWithoutPrivacyWarning):
        expected = read_schema_without_privacy(path, hints=hints, engine="numpy")
    with pytest.warns(SchemaWithoutPrivacyWarning):
        got = read_schema_without_privacy(path, hints=hints, engine=engine)
    assert got.to_dict() == expected.to_dict()
