"""The Spark counting backend against the reference semantics (encode + numpy), and the proof that the
Spark path never brings a row of the table to the driver.

Every test is deterministic (exact counts, no noise). One local[1] session serves the whole file
(tests/marginals/conftest.py); without Java or pyspark the tests are skipped (DPSYNTH_REQUIRE_SPARK=1
fails instead).
"""

from __future__ import annotations

import decimal
import gzip
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import adult_path, load_adult
from dpsynth.exceptions import DataError
from dpsynth.io import read_table
from dpsynth.marginals.numpy_backend import marginal_counts
from dpsynth.schema import Schema
from dpsynth.schema.dp_bins import candidate_grid
from dpsynth.schema.encode import encode, numeric_values

ROW_METHODS = ("collect", "take", "head", "first", "tail", "toLocalIterator", "toPandas", "toArrow")
FORBIDDEN = ("foreach", "foreachPartition", "toJSON", "show")


def all_cliques(schema: Schema) -> list[tuple[int, ...]]:
    k = len(schema)
    return [(i,) for i in range(k)] + list(itertools.combinations(range(k), 2))


def reference(frame: pd.DataFrame, schema: Schema, cliques) -> list[np.ndarray]:
    codes = encode(frame, schema)
    return [marginal_counts(codes, list(cl), schema.sizes) for cl in cliques]


def reference_below(frame: pd.DataFrame, schema: Schema, column: str, grid: np.ndarray) -> tuple[np.ndarray, int]:
    values = numeric_values(frame[column], schema[column], schema)
    values = np.sort(values[~np.isnan(values)])
    return np.searchsorted(values, grid, side="left"), len(values)


# -- a recorder of everything that reaches the driver ------------------------------------------------


def _under_aggregate(plan) -> bool:
    """Whether every leaf of a (JVM) logical plan has an Aggregate on its way to the root; a literal
    leaf (LocalRelation, OneRowRelation) reads no table. Written here, apart from the backend's check."""
    if str(plan.nodeName()) == "Aggregate":
        return True
    children = plan.children()
    if children.size() == 0:
        return str(plan.nodeName()) in ("LocalRelation", "OneRowRelation")
    return all(_under_aggregate(children.apply(i)) for i in range(children.size()))


class Recorder:
    """Wraps every DataFrame method that brings rows to Python; records what each returned."""

    def __init__(self):
        self.calls: list[dict] = []

    def install(self, mp: pytest.MonkeyPatch) -> None:
        from pyspark.sql import DataFrame as Base
        from pyspark.sql.classic.dataframe import DataFrame as Classic

        for cls in (Classic, Base):
            for name in ROW_METHODS:
                if name in vars(cls):
                    mp.setattr(cls, name, self._wrap(name, vars(cls)[name]))
            if "count" in vars(cls):
                mp.setattr(cls, "count", self._wrap_count(vars(cls)["count"]))
            for name in FORBIDDEN:
                if name in vars(cls):
                    mp.setattr(cls, name, self._refuse(name))
            if "rdd" in vars(cls):
                mp.setattr(cls, "rdd", property(self._refuse("rdd")))

    def _wrap(self, name, original):
        recorder = self

        def wrapped(df, *args, **kwargs):
            aggregated = _under_aggregate(df._jdf.queryExecution().optimizedPlan())
            result = original(df, *args, **kwargs)
            rows = list(result) if name in ("collect", "take", "tail", "toLocalIterator") else result
            if name == "toLocalIterator":
                result = iter(rows)
            if name in ("head", "first") and not isinstance(rows, list):
                rows = [] if rows is None else [rows]
            if name in ("toPandas", "toArrow"):
                values, n = [], len(rows)
            else:
                values, n = [v for row in rows for v in row], len(rows)
            recorder.calls.append({"method": name, "aggregated": aggregated, "rows": n, "values": values})
            return result

        return wrapped

    def _wrap_count(self, original):
        recorder = self

        def wrapped(df, *args, **kwargs):
            result = original(df, *args, **kwargs)  # a count is itself an aggregate
            recorder.calls.append({"method": "count", "aggregated": True, "rows": 1, "values": [result]})
            return result

        return wrapped

    @staticmethod
    def _refuse(name):
        def refused(*args, **kwargs):
            raise AssertionError(f"DataFrame.{name} brings rows to Python")

        return refused


# -- the bundled Adult, through Spark, with everything recorded -------------------------------------


@pytest.fixture(scope="module")
def adult_run(spark):
    from dpsynth.marginals.spark_backend import SparkSource

    frame, schema = load_adult()
    cliques = all_cliques(schema)
    numeric = [c.name for c in schema.columns if c.kind != "categorical"]
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as mp:
        recorder.install(mp)
        source = SparkSource(adult_path(), session=spark)
        source.validate(schema)
        counter = source.counter(schema)
        counts = counter.counts(cliques)
        below = {name: source.below_counts(name, schema, candidate_grid(schema[name])) for name in numeric[:2]}
        fingerprint = counter.fingerprint()
    yield {"frame": frame, "schema": schema, "cliques": cliques, "counts": counts, "below": below,
           "fingerprint": fingerprint, "calls": recorder.calls, "fetched": source.fetched_rows,
           "source": source}
    source.close()


def test_adult_marginals_equal_numpy_for_every_one_and_two_way_clique(adult_run):
    expected = reference(adult_run["frame"], adult_run["schema"], adult_run["cliques"])
    assert len(adult_run["counts"]) == len(expected) == 15 + 105
    for cl, got, want in zip(adult_run["cliques"], adult_run["counts"], expected, strict=True):
        assert got.dtype == np.int64 and got.shape == want.shape, cl
        np.testing.assert_array_equal(got, want, err_msg=str(cl))


def test_adult_below_counts_equal_numpy(adult_run):
    frame, schema = adult_run["frame"], adult_run["schema"]
    for name, (below, n) in adult_run["below"].items():
        want, want_n = reference_below(frame, schema, name, candidate_grid(schema[name]))
        assert n == want_n == len(frame)
        np.testing.assert_array_equal(below, want, err_msg=name)


def test_adult_fingerprint_is_a_stable_digest(adult_run, spark):
    from dpsynth.marginals.spark_backend import SparkSource

    fp = adult_run["fingerprint"]
    assert len(fp) == 64 and int(fp, 16) >= 0
    schema, view = adult_run["schema"], adult_run["source"].view
    shuffled = SparkSource(spark.table(view).repartition(3))  # another order and partitioning
    fewer = SparkSource(spark.table(view).where("`age` <> '39'"))
    try:
        assert shuffled.fingerprint(schema) == fp
        assert fewer.fingerprint(schema) != fp
    finally:
        shuffled.close()
        fewer.close()


def test_the_spark_path_never_collects_a_row(adult_run):
    """Only aggregates reach the driver: every result comes from a plan whose every table read is under
    an Aggregate, holds at most the domain's cells, and holds numbers only (never a cell's text)."""
    schema, cliques = adult_run["schema"], adult_run["cliques"]
    calls = adult_run["calls"]
    domain = sum(int(np.prod([schema.sizes[c] for c in cl])) for cl in cliques)
    grid = max(len(candidate_grid(schema[n])) + 1 for n in adult_run["below"])
    assert calls, "nothing was recorded: the recorder is not in the path"
    assert {c["method"] for c in calls} <= set(ROW_METHODS) | {"count"}
    for call in calls:
        assert call["aggregated"], call["method"]
        assert call["rows"] <= max(domain, grid)
        assert all(v is None or isinstance(v, (int, np.integer, decimal.Decimal)) for v in call["values"]), \
            "a value that is not a count or a code reached Python"
    assert sum(c["rows"] for c in calls if c["method"] == "collect") == sum(adult_run["fetched"])
    assert len(adult_run["frame"]) > domain  # the rows could not have fitted in what came back


def test_the_recorder_sees_a_row_level_collect(spark, adult_run):
    """The check above is not vacuous: collecting rows of the table is recorded as not aggregated."""
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as mp:
        recorder.install(mp)
        spark.sql(f"SELECT `age` FROM {adult_run['source'].view}").limit(2).collect()
        with pytest.raises(AssertionError, match="brings rows"):
            spark.sql(f"SELECT * FROM {adult_run['source'].view}").rdd  # noqa: B018
    assert [c["aggregated"] for c in recorder.calls] == [False]


def test_fetch_refuses_a_query_that_does_not_aggregate(adult_run):
    source = adult_run["source"]
    before = list(source.fetched_rows)
    with pytest.raises(RuntimeError, match="does not aggregate"):
        source.fetch(f"SELECT * FROM {source.view}", 10)
    with pytest.raises(RuntimeError, match="more than 1 rows"):
        source.fetch(f"SELECT `sex`, COUNT(*) AS n FROM {source.view} GROUP BY `sex`", 1)
    assert source.fetched_rows == before


# -- small tables of every column kind, as CSV, Parquet and a DataFrame ----------------------------

KINDS = Schema.from_dict({
    "version": 1,
    "missing_values": ["?", "NA"],
    "columns": [
        {"name": "color", "kind": "categorical", "levels": ["red", "green", "blue"], "nullable": True},
        {"name": "size", "kind": "categorical", "levels": ["S", "M", "it's \\ \"L\""], "other": "other"},
        {"name": "code", "kind": "categorical", "levels": [1, 2, 3]},
        {"name": "age", "kind": "integer", "bounds": [0, 99], "edges": [0, 18, 30, 45, 65, 99]},
        {"name": "n", "kind": "integer", "bounds": [0, 9]},
        {"name": "score", "kind": "continuous", "bounds": [0.0, 1.0], "bins": 4, "nullable": True},
        {"name": "day", "kind": "datetime", "resolution": "day", "bounds": ["2020-01-01", "2020-12-31"], "bins": 6},
        {"name": "at", "kind": "datetime", "resolution": "second", "bounds": ["2020-01-01", "2020-01-02"],
         "bins": 5, "nullable": True},
        {"name": "wide", "kind": "categorical", "levels": [f"w{i}" for i in range(100)]},
    ],
})


def kinds_table(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    pick = lambda values: rng.choice(np.array(values, dtype=object), size=n)  # noqa: E731
    return pd.DataFrame({
        "color": pick(["red", "green", "blue", "?", "NA", "red"]),
        "size": pick(["S", "M", "it's \\ \"L\"", "XL", "s", "", "other"]),
        "code": pick(["1", "2", "3"]),
        "age": pick(["0", "17", "18", "18.0", "29.99", "45", "65", "99", "120", "-3", "1e1", "+30", " 44"]),
        "n": pick(["0", "3", "9", "12", "4.5", "-1"]),
        "score": pick(["0", "0.25", "0.5", "0.75", "1", "1.5", "-inf", "inf", "?", "0.1234"]),
        "day": pick(["2020-01-01", "2020-03-15", "2020-07-01T12:00:00", "2020-12-31", "2019-06-01", "2021-01-05",
                     "2020-02-29 23:59:59"]),
        "at": pick(["2020-01-01T00:00:00", "2020-01-01T06:30:00", "2020-01-01T12:00:00Z",
                    "2020-01-01T13:00:00+01:00", "2020-01-01 23:59:59", "NA", "2020-01-02"]),
        "wide": pick([f"w{i}" for i in range(100)]),
    })


def write_csv(frame: pd.DataFrame, path: Path, *, gz: bool = False) -> Path:
    text = frame.to_csv(index=False)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def spark_counts(source, schema: Schema, cliques) -> list[np.ndarray]:
    source.validate(schema)
    try:
        return source.counter(schema).counts(cliques)
    finally:
        source.close()


@pytest.mark.parametrize("form", ["csv", "csv.gz", "parquet", "dataframe"])
def test_every_column_kind_equals_numpy(spark, tmp_path, form):
    from dpsynth.marginals.spark_backend import SparkSource

    frame = kinds_table()
    cliques = all_cliques(KINDS)
    if form in ("csv", "csv.gz"):
        path = write_csv(frame, tmp_path / f"t.{form}", gz=form == "csv.gz")
        ref, source = read_table(path), SparkSource(path, session=spark)
    elif form == "parquet":
        typed = frame.assign(code=frame["code"].astype(int))  # a typed column: text is pandas' astype(str)
        typed.to_parquet(tmp_path / "t.parquet", index=False)
        ref, source = pd.read_parquet(tmp_path / "t.parquet"), SparkSource(tmp_path / "t.parquet", session=spark)
    else:
        ref = frame
        source = SparkSource(spark.createDataFrame(frame.values.tolist(), "color string, size string, code string, "
                                                   "age string, n string, score string, day string, at string, "
                                                   "wide string"))
    for cl, got, want in zip(cliques, spark_counts(source, KINDS, cliques), reference(ref, KINDS, cliques),
                             strict=True):
        np.testing.assert_array_equal(got, want, err_msg=f"{form} {cl}")


def test_a_folder_and_a_glob_of_csv_files_are_one_table(spark, tmp_path):
    from dpsynth.marginals.spark_backend import SparkSource

    frame = kinds_table()
    (tmp_path / "parts").mkdir()
    write_csv(frame.iloc[:100], tmp_path / "parts" / "a.csv")
    write_csv(frame.iloc[100:], tmp_path / "parts" / "b.csv.gz", gz=True)
    cliques = [(0,), (3, 6), (5, 7)]
    want = reference(frame, KINDS, cliques)
    for data in (tmp_path / "parts", str(tmp_path / "parts" / "*.csv*")):
        got = spark_counts(SparkSource(data, session=spark, format="csv"), KINDS, cliques)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


# -- validation: the messages of encode(), from counts ---------------------------------------------

STRICT = Schema.from_dict({
    "version": 1,
    "columns": [
        {"name": "color", "kind": "categorical", "levels": ["red", "green"]},
        {"name": "age", "kind": "integer", "bounds": [0, 99]},
        {"name": "score", "kind": "continuous", "bounds": [0.0, 1.0], "bins": 2, "nullable": True},
        {"name": "day", "kind": "datetime", "bounds": ["2020-01-01", "2020-12-31"], "bins": 4},
    ],
})


def encode_error(frame: pd.DataFrame, schema: Schema) -> str:
    with pytest.raises(DataError) as info:
        encode(frame, schema)
    return str(info.value)


@pytest.mark.parametrize("case", ["bad cells", "one bad cell", "absent column", "no rows"])
def test_validation_messages_equal_encode(spark, tmp_path, case):
    from dpsynth.marginals.spark_backend import SparkSource

    frame = pd.DataFrame({
        "color": ["red", "blue", "", "green", "SECRET-7", "red"],
        "age": ["3", "x3", "", "1_000", "nan", "44"],
        "score": ["", "0.5", "no", "0.1", "1.0d", "0x1"],
        "day": ["2020-01-01", "2020-13-01", "", "not a day", "2020-02-30", "2020-05-05"],
    })
    if case == "one bad cell":
        frame = frame.iloc[[0, 1, 5]]
    elif case == "absent column":
        frame = frame.drop(columns=["age", "day"])
    elif case == "no rows":
        frame = frame.iloc[:0]
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    ref = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    want = encode_error(ref, STRICT)
    source = SparkSource(path, session=spark)
    try:
        with pytest.raises(DataError) as info:
            source.validate(STRICT)
    finally:
        source.close()
    assert str(info.value) == want
    assert "SECRET" not in str(info.value)


# -- errors: one line, no content --------------------------------------------------------------------


def test_a_missing_file_and_a_malformed_csv_are_one_line_errors_without_content(spark, tmp_path, capfd):
    from dpsynth.marginals.spark_backend import SparkSource

    with pytest.raises(DataError, match="does not exist"):
        SparkSource(tmp_path / "absent.csv", session=spark)
    bad = tmp_path / "bad.csv"
    bad.write_text("color,age,score,day\nred,3,0.5,2020-01-01\nred,4,0.5,2020-01-02,SECRET-ROW-VALUE\n")
    source = SparkSource(bad, session=spark)
    try:
        with pytest.raises(DataError) as info:
            source.validate(STRICT)
    finally:
        source.close()
    message = str(info.value)
    assert "\n" not in message and "SECRET" not in message and "failed in Spark" in message
    dup = tmp_path / "dup.csv"
    dup.write_text("color,color\nred,red\n")
    with pytest.raises(DataError, match="appears more than once"):
        SparkSource(dup, session=spark)
    out, err = capfd.readouterr()
    assert "SECRET" not in out + err


def test_a_dataframe_source_uses_its_own_session_and_the_process_keeps_one(spark):
    from dpsynth.marginals.spark_backend import SparkSource
    from dpsynth.marginals.spark_session import spark_session

    assert spark_session() is spark and spark_session("local[1]") is spark
    df = spark.createDataFrame([("red", "3", "0.5", "2020-01-01")],
                               "color string, age string, score string, day string")
    source = SparkSource(df)
    try:
        assert source.session is spark and source.engine == "spark"
        assert [int(x.sum()) for x in source.counter(STRICT).counts([(0,), (1, 3)])] == [1, 1]
    finally:
        source.close()


def test_the_persisted_codes_are_coalesced_whatever_the_shuffle_partitions(spark):
    """A session's ``spark.sql.shuffle.partitions`` (200 by default) must not become the partitions of the
    small persisted code-tuple table that every marginal query reads: adaptive execution coalesces them
    (``QUERY_CONF``; without it the table keeps every partition, and each query runs that many tasks)."""
    from dpsynth.marginals.spark_backend import SparkSource
    from dpsynth.marginals.spark_session import session_conf

    schema = load_adult()[1]
    with session_conf(spark, {"spark.sql.shuffle.partitions": "50"}):
        source = SparkSource(adult_path(), session=spark)
        try:
            source.validate(schema)
            source.counter(schema).counts([(0,), (1, 2)])
            assert [df.rdd.getNumPartitions() for df in source._persisted] == [1]
        finally:
            source.close()


def test_a_task_result_above_the_direct_size_reaches_the_driver(spark):
    """A task result above ``spark.task.maxDirectResultSize`` (1 MB) is fetched from the block manager at the
    driver's advertised host; a local session advertises the loopback address it binds, so the fetch works
    on a machine whose own address it cannot reach (before: TaskResultLost, e.g. the DP replay on Adult)."""
    from dpsynth.marginals.spark_backend import SparkSource

    assert spark.conf.get("spark.driver.host") == "127.0.0.1"
    source = SparkSource(spark.range(1).toDF("x"))
    try:
        out = source.fetch("SELECT id, COUNT(*) AS n FROM range(150000) GROUP BY id", 150000)
        assert len(out["id"]) == 150000 and int(out["n"].sum()) == 150000
    finally:
        source.close()
