"""The SQL encoding of dpsynth.marginals.sql reproduces dpsynth.schema.encode exactly (run on DuckDB).

Every test is deterministic: hand-made public tables, each row's codes compared with encode()'s, and
every validation message compared as a string.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals import sql
from dpsynth.schema import Schema
from dpsynth.schema.dp_bins import candidate_grid, quantile_scores
from dpsynth.schema.encode import encode, numeric_values

duckdb = pytest.importorskip("duckdb")


def schema_of(*columns: dict[str, Any], missing: list[str] | None = None) -> Schema:
    spec: dict[str, Any] = {"columns": list(columns)}
    if missing is not None:
        spec["missing_values"] = missing
    return Schema.from_dict(spec)


def sql_codes(df: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Per-row codes of the SQL encoding (rows kept in order by a carried row id)."""
    con = duckdb.connect()
    frame = df.assign(_row=np.arange(len(df)))  # noqa: F841 - read by DuckDB's replacement scan
    rel = con.sql("SELECT * FROM frame")
    kinds = {c: sql.source_kind(str(t)) for c, t in zip(rel.columns, rel.types, strict=True)}
    text = sql.encoded_query(schema, "src", kinds, "duckdb", keep=["_row"])
    out = rel.query("src", f"SELECT * FROM ({text}) ORDER BY k0").fetchnumpy()
    return np.column_stack([out[f"c{j}"] for j in range(len(schema))]).astype(np.int64)


def sql_error(df: pd.DataFrame, schema: Schema) -> DataError | None:
    con = duckdb.connect()
    rel = con.from_df(df)
    kinds = {c: sql.source_kind(str(t)) for c, t in zip(rel.columns, rel.types, strict=True)}
    sql.check_columns(schema, rel.columns)
    row = rel.query("src", sql.validation_query(schema, "src", kinds, "duckdb")).fetchnumpy()
    error = sql.validation_error(schema, {k: v[0] for k, v in row.items()})
    # the same counts from the one-pass path: codes with problem flags, aggregated, then counted
    codes = sql.encoded_query(schema, "src", kinds, "duckdb", problems=True)
    aggregated = f"(SELECT *, COUNT(*) AS w FROM ({codes}) AS e GROUP BY ALL) AS a"
    one_pass = rel.query("src", sql.codes_validation_query(aggregated, schema, weight="w")).fetchnumpy()
    again = sql.validation_error(schema, {k: v[0] for k, v in one_pass.items()})
    assert str(again) == str(error)
    return error


def same_as_encode(df: pd.DataFrame, schema: Schema) -> None:
    assert sql_error(df, schema) is None
    np.testing.assert_array_equal(sql_codes(df, schema), encode(df, schema))


def same_error(df: pd.DataFrame, schema: Schema) -> str:
    with pytest.raises(DataError) as expected:
        encode(df, schema)
    got = sql_error(df, schema)
    assert got is not None and str(got) == str(expected.value)
    return str(got)


TEXT = pd.Series  # text columns, as a CSV is read


def text(values: list[str]) -> pd.Series:
    return pd.Series(values, dtype=str)


def test_categorical_levels_other_missing_and_integer_levels():
    schema = schema_of(
        {"name": "a", "kind": "categorical", "levels": ["x", "y", "O'Neil", "back\\slash", "ü"]},
        {"name": "b", "kind": "categorical", "levels": ["x", "?"], "other": "rest", "nullable": True},
        {"name": "c", "kind": "categorical", "levels": [1, 2, 10]},
        missing=["?", "", "NA"],
    )
    df = pd.DataFrame({
        "a": text(["x", "y", "O'Neil", "back\\slash", "ü", "y"]),
        "b": text(["x", "?", "", "zzz", "NA", "X"]),
        "c": text(["1", "2", "10", "10", "1", "2"]),
    })
    same_as_encode(df, schema)


def test_unknown_levels_and_missing_in_a_column_not_nullable_give_encodes_messages():
    schema = schema_of(
        {"name": "a", "kind": "categorical", "levels": ["x", "y"]},
        {"name": "b", "kind": "categorical", "levels": [1, 2]},
        {"name": "n", "kind": "integer", "bounds": [0, 9]},
        {"name": "t", "kind": "datetime", "bounds": ["2020-01-01", "2020-12-31"], "bins": 4},
        missing=["?"],
    )
    df = pd.DataFrame({
        "a": text(["x", "X", "?", "y ", "z"]),
        "b": text(["1", "01", "1.0", "2", "?"]),
        "n": text(["1", "one", "?", "1_0", "nan"]),
        "t": text(["2020-02-01", "2020-02-30", "yesterday", "?", "2020-01-01 "]),
    })
    message = same_error(df, schema)
    assert "column 'a': a missing value in 1 row" in message and "outside the 2 declared levels in 3 rows" in message


def test_integer_unit_bins_use_arithmetic_and_match_encode():
    col = {"name": "n", "kind": "integer", "bounds": [-3, 20]}
    schema = schema_of(col, {"name": "m", "kind": "integer", "bounds": [0, 5], "nullable": True})
    query = sql.encoded_query(schema, "t", {}, "duckdb")
    assert "floor(LEAST(GREATEST(v0" in query and query.count("WHEN v0 <") == 0  # no CASE chain for unit bins
    df = pd.DataFrame({
        "n": text(["-3", "-4", "20", "21", "7.5", "1e1", " 7", "-inf", "inf", "+5", ".5", "-0", "5."]),
        "m": text(["0", "", "5", "6", "", "3", "2", "1", "", "4", "0", "1", "2"]),
    })
    same_as_encode(df, schema)


def test_declared_float_edges_values_on_edges_and_outside_bounds():
    edges = [0.0, 0.1, 0.30000000000000004, 1 / 3, 2.5, 1e6]
    schema = schema_of({"name": "x", "kind": "continuous", "edges": edges},
                       {"name": "w", "kind": "integer", "bounds": [0, 1500000],
                        "edges": [0, 50000, 100000, 150000, 200000, 1500000]})
    values = ["0", "0.1", "0.09999999999999999", "0.30000000000000004", "0.3", repr(1 / 3), "0.3333333333333333",
              "2.5", "2.4999999999999996", "1e6", "1000000.0000000001", "-1", "1e300", "-0.0", "5e-324"]
    df = pd.DataFrame({"x": text(values), "w": text([str(v) for v in [0, 49999, 50000, 50001, 150000, 1499999,
                                                                     1500000, 1500001, -5, 99999, 100000, 2e5,
                                                                     199999.5, 3, 4]])})
    same_as_encode(df, schema)


@pytest.mark.parametrize("resolution", ["day", "second"])
def test_datetimes_iso_forms_offsets_and_floor(resolution):
    bounds = ["1960-01-01", "2030-12-31"] if resolution == "day" else ["1969-12-31T00:00:00", "2020-01-02T00:00:00"]
    schema = schema_of({"name": "t", "kind": "datetime", "resolution": resolution, "bounds": bounds, "bins": 7,
                        "nullable": True}, missing=["", "?"])
    values = ["2020-01-01", "2020-01-01T10:00:00", "2020-01-01 10:00:00", "2020-01-01T10:00:00Z",
              "2020-01-01T10:00:00+05:00", "2020-01-01T23:30:00-01:30", "2020-01-01T10:00:00.5", "2020-01-01T10:00",
              "2020-01", "2020", "20200101", "2020-1-1", "2020/01/02", "1969-12-31T23:59:59.5",
              "1969-12-31T23:59:59.999999", "1970-01-01T00:00:00.000001", "1950-06-01", "2100-01-01", "", "?",
              "2020-01-01T10:00:00+0530", "2020-01-01T10:00:00+05", "1999-12-31T23:59:59", "1600-02-29", "2300-01-01"]
    df = pd.DataFrame({"t": text(values)})
    same_as_encode(df, schema)


def test_datetimes_pandas_refuses_are_refused():
    schema = schema_of({"name": "t", "kind": "datetime", "bounds": ["2020-01-01", "2020-12-31"]} | {"bins": 3})
    for bad in ["2020-01-01T24:00:00", "2020-01-01 UTC", "01/02/2020", "2020-13-01", "10000-01-01",
                "2020-01-01t10:00", "2020-W01", "2020-01-01 "]:
        df = pd.DataFrame({"t": text(["2020-03-01", bad])})
        assert same_error(df, schema) == "column 't': text that is not a date/time in 1 row", bad


def test_non_numbers_as_pandas_reads_them():
    schema = schema_of({"name": "x", "kind": "continuous", "bounds": [0, 1], "bins": 2})
    for bad in ["1_000", "0x10", "1,5", "  ", "1d", "nan", "NaN", "e5", "--1", "١"]:
        df = pd.DataFrame({"x": text(["0.5", bad])})
        assert same_error(df, schema) == "column 'x': text that is not a number in 1 row", bad


def test_typed_columns_text_as_pandas_writes_it():
    """Typed columns (as Parquet or a DataFrame holds them): ints read "39", floats "39.0"; NaN and
    None are missing; booleans "True"/"False"."""
    schema = schema_of(
        {"name": "i", "kind": "categorical", "levels": [1, 2, 39]},
        {"name": "f", "kind": "categorical", "levels": ["39.0", "0.1", "1e+20"], "nullable": True},
        {"name": "s", "kind": "categorical", "levels": ["a", "b"], "nullable": True},
        {"name": "b", "kind": "categorical", "levels": ["True", "False"]},
        {"name": "n", "kind": "integer", "bounds": [0, 50], "edges": [0, 10, 39, 50], "nullable": True},
        {"name": "m", "kind": "integer", "bounds": [-1, 3], "nullable": True},
        missing=["", "-1"],
    )
    df = pd.DataFrame({
        "i": np.array([1, 2, 39, 39], dtype=np.int64),
        "f": np.array([39.0, 0.1, 1e20, np.nan]),
        "s": pd.Series(["a", None, "b", "a"], dtype=object),
        "b": np.array([True, False, True, True]),
        "n": np.array([39.0, np.nan, 9.999, 60.0]),
        "m": np.array([-1, 0, 3, 2], dtype=np.int32),
    })
    same_as_encode(df, schema)


def test_many_levels_join_a_lookup_table_not_a_case_chain():
    levels = [f"level {i}" for i in range(200)] + [7]
    schema = schema_of({"name": "a", "kind": "categorical", "levels": levels, "other": "rest"},
                       {"name": "b", "kind": "categorical", "levels": levels, "nullable": True})
    query = sql.encoded_query(schema, "t", {}, "duckdb")
    assert query.count("LEFT JOIN") == 2 and "WHEN 'level 150'" not in query
    df = pd.DataFrame({"a": text(["level 0", "level 199", "7", "nope", "Level 0"]),
                       "b": text(["level 3", "", "7", "level 150", "level 199"])})
    same_as_encode(df, schema)
    bad = pd.DataFrame({"a": text(["level 0"]), "b": text(["level 200"])})
    assert same_error(bad, schema) == "column 'b': a value outside the 201 declared levels in 1 row"


def test_odd_column_names_are_quoted():
    name = 'we"ird `name\' \\ é'
    schema = schema_of({"name": name, "kind": "categorical", "levels": ["a"]})
    same_as_encode(pd.DataFrame({name: text(["a", "a"])}), schema)
    assert sql.quote_identifier(name, "spark") == "`" + name.replace("`", "``") + "`"
    assert sql.quote_string("it's \\", "spark") == "'it\\'s \\\\'"
    assert sql.quote_string("it's \\", "duckdb") == "'it''s \\'"


def test_no_rows_and_absent_columns():
    schema = schema_of({"name": "a", "kind": "categorical", "levels": ["x"]},
                       {"name": "b", "kind": "categorical", "levels": ["x"]})
    with pytest.raises(DataError, match="the data has no column\\(s\\) 'b' that the schema declares"):
        sql.check_columns(schema, ["a"])
    empty = pd.DataFrame({"a": text([]), "b": text([])})
    assert same_error(empty, schema) == "the data has no rows"


def test_searchsorted_sql_is_numpys_right_side_exactly():
    rng = np.random.default_rng(7)
    con = duckdb.connect()
    for points in [[0.5], [1.0, 2.0, 3.0, 4.0], [0.0, 0.1, 0.2, 0.30000000000000004, 7.0], sorted(rng.normal(size=37)),
                   list(range(5, 300)), [2.0, 4.0, 5.0, 6.0]]:
        values = np.concatenate([np.asarray(points), np.nextafter(points, -np.inf), np.nextafter(points, np.inf),
                                 rng.normal(scale=100, size=50), [-1e300, 1e300]])
        expr = sql.searchsorted_sql("v", points, "duckdb")
        got = con.execute(f"SELECT {expr} AS b FROM (SELECT unnest(?::DOUBLE[]) AS v)", [values.tolist()]).fetchnumpy()
        np.testing.assert_array_equal(got["b"], np.searchsorted(points, values, side="right"))
    deep = sql.searchsorted_sql("v", [float(x) for x in np.linspace(0, 1, 1000)], "duckdb")
    assert deep.count("CASE") == 1000 and "floor" not in deep


def test_below_counts_match_the_numpy_computation():
    schema = schema_of({"name": "x", "kind": "integer", "bounds": [0, 100], "bins": {"dp_quantiles": 4},
                        "nullable": True},
                       {"name": "y", "kind": "continuous", "bounds": [-1, 1], "bins": {"dp_quantiles": 3}},
                       missing=["", "?"])
    rng = np.random.default_rng(3)
    xs = [str(v) for v in rng.integers(-20, 130, size=300)] + ["", "?", "50.5", "100", "0"]
    ys = [repr(float(v)) for v in rng.normal(size=len(xs))]
    df = pd.DataFrame({"x": text(xs), "y": text(ys)})
    con = duckdb.connect()
    rel = con.from_df(df)
    for column in ("x", "y"):
        col = schema[column]
        grid = candidate_grid(col)
        out = rel.query("src", sql.below_query(schema, column, "src", {}, grid.tolist(), "duckdb")).fetchnumpy()
        assert len(out["b"]) <= len(grid) + 1
        below, n = sql.below_from_histogram(out["b"], out["n"], len(grid))
        values = numeric_values(df[column], col, schema)
        values = values[~np.isnan(values)]
        assert n == len(values)
        np.testing.assert_array_equal(-np.abs(below - 0.5 * n), quantile_scores(values, grid, 0.5))


def test_marginal_queries_group_each_set_once_and_bound_their_rows():
    schema = schema_of(*({"name": n, "kind": "categorical", "levels": ["a", "b", "c"]} for n in "pqrs"))
    queries = sql.marginal_queries("codes", schema, [(0,), (1, 0), (0, 1), (2, 3), ()], "duckdb", max_sets=2)
    assert [len(q.cliques) for q in queries] == [3, 2]
    assert queries[0].max_rows == 3 + 9 and queries[1].max_rows == 9 + 1
    assert "GROUPING SETS ((c0), (c0, c1))" in queries[0].sql
    spark = sql.marginal_queries("codes", schema, [(0, 1)], "spark")[0].sql
    assert "grouping_id(c0, c1)" in spark
    with pytest.raises(ParameterError):
        sql.marginal_queries("codes", schema, [(0, 0)], "duckdb")
    with pytest.raises(ParameterError):
        sql.quote_identifier("a", "postgres")  # type: ignore[arg-type]


def test_spark_dialect_strings():
    schema = schema_of({"name": "x", "kind": "continuous", "bounds": [0, 1], "bins": 2},
                       {"name": "t", "kind": "datetime", "bounds": ["2020-01-01", "2020-12-31"], "bins": 2})
    text_sql = sql.encoded_query(schema, "src", {}, "spark")
    assert "RLIKE" in text_sql and "unix_micros" in text_sql and '"' not in text_sql
    assert "xxhash64" in sql.fingerprint_query("codes", schema, "spark", weight="w")


@pytest.mark.parametrize(("engine_type", "kind"), [
    ("VARCHAR", "text"), ("string", "text"), ("BIGINT", "number"), ("int", "number"), ("DECIMAL(10,2)", "number"),
    ("DOUBLE", "float"), ("float", "float"), ("BOOLEAN", "boolean"), ("DATE", "date"), ("TIMESTAMP", "timestamp"),
    ("TIMESTAMP_NS", "timestamp"), ("TIMESTAMP WITH TIME ZONE", "timestamptz"), ("timestamp_ntz", "timestamp"),
    ("BLOB", "other"),
])
def test_source_kinds(engine_type, kind):
    assert sql.source_kind(engine_type) == kind
