"""``fit(data=...)`` in Python with a DuckDB relation or a Spark DataFrame: the table is counted where it
lives (the engine's source is opened by the fit and closed after it, the user's object left alone),
and the same seeded fit gives the same model and synthetic table as the fit on the pandas table.

Deterministic: the noise is seeded (``insecure_seed``), so no test here can fail by chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.datasets import adult_path, adult_schema_path
from dpsynth.exceptions import ParameterError
from dpsynth.io import read_table
from dpsynth.marginals.engines import held_by
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import load_schema
from dpsynth.synth import MST

ROWS = 4_000


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("python_data") / "adult.csv"
    pd.read_csv(adult_path(), dtype=str, keep_default_na=False).head(ROWS).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def numpy_fit(adult_csv: Path) -> MST:
    return mst().fit(read_table(adult_csv), schema=load_schema(adult_schema_path()), ledger=UNTRACKED,
                     dataset="adult")


def mst() -> MST:
    return MST(epsilon=1.0, delta=1e-6, estimation_iters=100, insecure_seed=7)


def assert_same_fit(fitted: MST, expected: MST) -> None:
    assert fitted.edges_ == expected.edges_ and fitted.total_estimate_ == expected.total_estimate_
    assert list(fitted.marginals_) == list(expected.marginals_)
    for key, value in expected.marginals_.items():
        assert np.array_equal(fitted.marginals_[key], value), key
    pd.testing.assert_frame_equal(fitted.sample(400, random_state=3), expected.sample(400, random_state=3))


def temporary_tables(con) -> list[str]:
    return [r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()]


def test_a_duckdb_relation_fits_like_the_pandas_table_and_is_left_clean(adult_csv, numpy_fit):
    import duckdb

    con = duckdb.connect(":memory:")
    relation = con.read_csv(str(adult_csv))  # typed by DuckDB's own sniffer, as a user's relation would be
    assert held_by(relation) == "duckdb"
    fitted = mst().fit(relation, schema=load_schema(adult_schema_path()), ledger=UNTRACKED, dataset="adult")
    assert_same_fit(fitted, numpy_fit)
    assert temporary_tables(con) == []  # the source's coded tables were dropped; the connection stays open
    assert relation.shape[0] == ROWS


def test_a_spark_dataframe_fits_like_the_pandas_table_and_is_left_clean(spark, adult_csv, numpy_fit):
    frame = spark.read.csv(str(adult_csv), header=True)
    assert held_by(frame) == "spark"
    before = {t.name for t in spark.catalog.listTables()}
    fitted = mst().fit(frame, schema=load_schema(adult_schema_path()), ledger=UNTRACKED, dataset="adult")
    assert_same_fit(fitted, numpy_fit)
    assert {t.name for t in spark.catalog.listTables()} == before  # the source's views were dropped
    assert frame.count() == ROWS


def test_a_relation_is_fingerprinted_like_the_same_file_in_duckdb(tmp_path, adult_csv):
    import duckdb

    from dpsynth.marginals.duckdb_backend import DuckDBSource

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("adult", ApproxDP(10.0, 1e-5))
    schema = load_schema(adult_schema_path())
    relation = duckdb.connect(":memory:").read_csv(str(adult_csv))
    mst().fit(relation, schema=schema, ledger=ledger, dataset="adult")
    (entry,) = ledger.statement("adult").reservations
    source = DuckDBSource(adult_csv)
    try:
        assert entry.input_sha256 == source.fingerprint(schema) and entry.status == "completed"
    finally:
        source.close()


def test_a_synthesizer_that_trains_on_rows_refuses_a_relation_before_any_reservation(tmp_path, adult_csv):
    import duckdb

    from dpsynth.synth.dpsgd import DPVAE

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("adult", ApproxDP(10.0, 1e-5))
    relation = duckdb.connect(":memory:").read_csv(str(adult_csv))
    with pytest.raises(ParameterError, match=r"trains on rows, which a duckdb table.*pandas DataFrame") as err:
        DPVAE(epsilon=1.0, delta=1e-6, epochs=1).fit(relation, schema=load_schema(adult_schema_path()),
                                                      ledger=ledger, dataset="adult")
    assert "\n" not in str(err.value)
    assert ledger.statement("adult").reservations == []
