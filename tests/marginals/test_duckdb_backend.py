"""DuckDBSource: files (CSV, gzip CSV, Parquet, folders, globs) and relations counted inside DuckDB give
numpy's marginal_counts(encode(df, schema)) exactly, encode()'s validation messages, and nothing but
aggregates of at most the public domain's size. Deterministic (public hand-made tables and Adult)."""

from __future__ import annotations

import gzip
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import adult_path, load_adult
from dpsynth.exceptions import DataError
from dpsynth.io import read_table
from dpsynth.marginals.backend import MarginalCounter, TableSource
from dpsynth.marginals.numpy_backend import marginal_counts
from dpsynth.schema import Schema
from dpsynth.schema.dp_bins import candidate_grid
from dpsynth.schema.encode import encode, numeric_values

duckdb = pytest.importorskip("duckdb")
from dpsynth.marginals.duckdb_backend import DuckDBSource  # noqa: E402


@pytest.fixture
def bounded_fetches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every result fetched from DuckDB, as (rows, the bound its caller declared)."""
    seen: list[tuple[int, int]] = []
    original = DuckDBSource.fetch

    def fetch(self: DuckDBSource, text: str, max_rows: int) -> dict[str, np.ndarray]:
        out = original(self, text, max_rows)
        seen.append((len(next(iter(out.values()))), max_rows))
        return out

    monkeypatch.setattr(DuckDBSource, "fetch", fetch)
    return seen


def all_cliques(k: int, three: int = 0) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = [(i,) for i in range(k)] + list(itertools.combinations(range(k), 2))
    return out + list(itertools.combinations(range(k), 3))[:three]


def assert_counts_equal(source: DuckDBSource, df: pd.DataFrame, schema: Schema, cliques: list[tuple[int, ...]]) -> None:
    source.validate(schema)
    codes = encode(df, schema)
    got = source.counter(schema).counts(cliques)
    for clique, counts in zip(cliques, got, strict=True):
        np.testing.assert_array_equal(counts, marginal_counts(codes, list(clique), schema.sizes), err_msg=str(clique))
        assert counts.dtype == np.int64


def test_adult_all_one_and_two_way_and_some_three_way(bounded_fetches):
    df, schema = load_adult()
    source = DuckDBSource(adult_path(), threads=1)
    cliques = all_cliques(len(schema), three=40)
    assert_counts_equal(source, df, schema, cliques)
    domain = sum(math.prod(schema.sizes[c] for c in cl) for cl in cliques)
    assert bounded_fetches and all(rows <= bound for rows, bound in bounded_fetches)
    assert sum(rows for rows, _ in bounded_fetches) <= domain + 1  # the validation row, then the marginals' cells
    assert bounded_fetches[0] == (1, 1)
    source.close()


def test_a_result_beyond_its_bound_is_refused_before_it_is_read():
    source = DuckDBSource(adult_path(), threads=1)
    with pytest.raises(RuntimeError, match="more than 10 rows"):
        source.fetch("SELECT * FROM dpsynth_src", 10)


def write_csv(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


MIXED = Schema.from_dict({
    "missing_values": ["", "?"],
    "columns": [
        {"name": "cat", "kind": "categorical", "levels": ["a", "b", "c d"], "other": "rest"},
        {"name": "opt", "kind": "categorical", "levels": ["x", "y"], "nullable": True},
        {"name": "age", "kind": "integer", "bounds": [0, 9]},
        {"name": "amount", "kind": "continuous", "edges": [0.0, 0.1, 0.5, 2.5, 10.0], "nullable": True},
        {"name": "day", "kind": "datetime", "bounds": ["2020-01-01", "2020-12-31"], "bins": 4, "nullable": True},
        {"name": "at", "kind": "datetime", "resolution": "second",
         "bounds": ["2020-01-01T00:00:00", "2020-01-02T00:00:00"], "bins": 3},
    ],
})

CSV = """cat, opt,age,amount,day,at
a,x, 3,0.1,2020-01-01,2020-01-01T00:00:00
 b,,12,0.5,2020-03-01T10:00:00+05:00,2020-01-01T12:00:00Z
"c d",y,-1,?,,2020-01-01T08:00:00.999
zzz, y,9,10.0,2021-01-01,2020-01-01T16:00:00+01:00
 b ,?,0,2.5,2020-06-30,2020-01-01T23:59:59
a, x,5.5,100,?,2020-01-01T00:00
"""


@pytest.mark.parametrize("name", ["mixed.csv", "mixed.csv.gz"])
def test_csv_with_leading_spaces_empty_cells_and_every_kind(tmp_path, name, bounded_fetches):
    path = write_csv(tmp_path / name, CSV)
    df = read_table(path)
    source = DuckDBSource(path, threads=1)
    assert source.columns == list(df.columns)
    assert_counts_equal(source, df, MIXED, all_cliques(len(MIXED), three=20))
    assert all(rows <= bound for rows, bound in bounded_fetches)


def test_a_byte_order_mark_is_no_part_of_the_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    source = DuckDBSource(path, threads=1)
    assert source.columns == list(read_table(path).columns) == MIXED.names
    assert_counts_equal(source, read_table(path), MIXED, all_cliques(len(MIXED)))


def test_a_csv_glob_counts_every_file_and_needs_one_header(tmp_path):
    lines = CSV.splitlines()
    write_csv(tmp_path / "p1.csv", "\n".join(lines[:4]) + "\n")
    write_csv(tmp_path / "p2.csv.gz", "\n".join(lines[:1] + lines[4:]) + "\n")
    source = DuckDBSource(str(tmp_path / "p*.csv*"), threads=1)
    assert_counts_equal(source, read_table(write_csv(tmp_path / "all.csv", CSV)), MIXED, all_cliques(len(MIXED)))
    write_csv(tmp_path / "p3.csv", "opt,cat,age,amount,day,at\n")
    with pytest.raises(DataError, match="has another header"):
        DuckDBSource(str(tmp_path / "p*.csv*"))


def test_validation_messages_are_encodes(tmp_path):
    bad = CSV + "q,z,ten,-,2020-02-30,noon\n" + " ,?,,,,2020-01-01T00:00:00\n"
    path = write_csv(tmp_path / "bad.csv", bad)
    with pytest.raises(DataError) as expected:
        encode(read_table(path), MIXED)
    with pytest.raises(DataError) as got:
        DuckDBSource(path, threads=1).validate(MIXED)
    assert str(got.value) == str(expected.value)
    assert "column 'age': a missing value in 1 row" in str(got.value)


def test_absent_column_no_rows_and_duplicate_header(tmp_path):
    source = DuckDBSource(write_csv(tmp_path / "a.csv", "cat,opt\na,x\n"))
    with pytest.raises(DataError, match=r"^the data has no column\(s\) 'age', 'amount', 'day', 'at' that the schema"):
        source.validate(MIXED)
    one = Schema.from_dict({"columns": [{"name": "cat", "kind": "categorical", "levels": ["a"]}]})
    with pytest.raises(DataError, match="^the data has no rows$"):
        DuckDBSource(write_csv(tmp_path / "e.csv", "cat\n")).validate(one)
    with pytest.raises(DataError, match="column 'cat' appears more than once"):
        DuckDBSource(write_csv(tmp_path / "d.csv", "cat,cat\na,a\n"))


def test_unreadable_files_are_one_line_without_content(tmp_path):
    secret = "SECRET-VALUE-123"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"cat\n{secret}\xe9\n".encode("latin-1"))
    one = Schema.from_dict({"columns": [{"name": "cat", "kind": "categorical", "levels": ["a"]}]})
    ragged = write_csv(tmp_path / "ragged.csv", f"cat,opt\na,x\n{secret},b,c,d\n")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(f"cat\n{secret}\n".encode())[:-12])
    notparquet = tmp_path / "t.parquet"
    notparquet.write_text(f"{secret}\n")
    for path in (latin, ragged, broken, notparquet):
        with pytest.raises(DataError) as err:
            DuckDBSource(path, threads=1).validate(one)
        message = str(err.value)
        assert "\n" not in message and secret not in message and "cannot be read" in message, path
    with pytest.raises(DataError, match="does not exist"):
        DuckDBSource(tmp_path / "nope.parquet")
    assert "not UTF-8" in str(pytest.raises(DataError, lambda: DuckDBSource(latin).validate(one)).value)


def typed_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "cat": pd.Series(["a", "b", None, "c d", "zzz", "a"], dtype=object),
        "opt": pd.Series(["x", None, "y", "?", "x", "y"], dtype=object),
        "age": np.array([3, 12, -1, 9, 0, 5], dtype=np.int64),
        "amount": np.array([0.1, 0.5, np.nan, 10.0, 2.5, 100.0]),
        "day": pd.to_datetime(["2020-01-01", "2020-03-01 10:00", None, "2021-01-01", "2020-06-30", "2019-01-01"],
                              format="ISO8601"),
        "at": pd.to_datetime(["2020-01-01T00:00:00", "2020-01-01T12:00:00", "2020-01-01T08:00:00.999",
                              "2020-01-01T16:00:00", "2020-01-01T23:59:59", "2020-01-01T00:00"], utc=True,
                             format="ISO8601"),
    })


def test_parquet_typed_columns_file_folder_and_glob(tmp_path):
    schema = Schema.from_dict({**MIXED.to_dict(), "columns": [
        {**c.to_dict(), **({"nullable": True} if c.name == "cat" else {})} for c in MIXED.columns]})
    df = typed_frame()
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False)
    assert_counts_equal(DuckDBSource(path, threads=1), pd.read_parquet(path), schema, all_cliques(len(schema), 10))
    folder = tmp_path / "parts"
    folder.mkdir()
    df.iloc[:3].to_parquet(folder / "a.parquet", index=False)
    df.iloc[3:].to_parquet(folder / "b.parquet", index=False)
    assert_counts_equal(DuckDBSource(folder, threads=1), df, schema, all_cliques(len(schema)))
    assert_counts_equal(DuckDBSource(str(folder / "*.parquet"), threads=1), df, schema, all_cliques(len(schema)))


def test_a_relation_is_queried_in_its_own_connection_and_cleaned_up():
    df, schema = load_adult()
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_csv('{adult_path()}', all_varchar = true)")
    source = DuckDBSource(rel)
    assert_counts_equal(source, df, schema, all_cliques(len(schema)))
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'dpsynth_%'").fetchall()[0][0] == 1
    source.close()
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'dpsynth_%'").fetchall()[0][0] == 0


@pytest.mark.parametrize("as_relation", [False, True])
def test_many_levels_through_a_registered_lookup(tmp_path, as_relation):
    levels = [f"v{i}" for i in range(300)]
    schema = Schema.from_dict({"columns": [{"name": "a", "kind": "categorical", "levels": levels, "other": "o"},
                                           {"name": "b", "kind": "categorical", "levels": levels}]})
    rows = [f"v{i % 301},v{(7 * i) % 300}" for i in range(1000)]
    path = write_csv(tmp_path / "many.csv", "a,b\n" + "\n".join(rows) + "\n")
    data: Any = path
    if as_relation:
        data = duckdb.connect().sql(f"SELECT * FROM read_csv('{path}', all_varchar = true)")
    assert_counts_equal(DuckDBSource(data), read_table(path), schema, [(0,), (1,), (0, 1)])


def test_below_counts_match_numpy(bounded_fetches):
    df, schema = load_adult()
    source = DuckDBSource(adult_path(), threads=1)
    for name in ("age", "fnlwgt", "hours-per-week", "capital-gain"):
        col = schema[name]
        grid = candidate_grid(col)
        below, n = source.below_counts(name, schema, grid)
        values = numeric_values(df[name], col, schema)
        values = np.sort(values[~np.isnan(values)])
        assert n == len(values)
        np.testing.assert_array_equal(below, np.searchsorted(values, grid, side="left"))
    assert all(rows <= bound for rows, bound in bounded_fetches)


def test_fingerprint_is_order_independent_and_changes_with_the_data(tmp_path):
    df, schema = load_adult()
    shuffled = df.sample(frac=1.0, random_state=1)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    df.to_parquet(a, index=False)
    shuffled.to_parquet(b, index=False)
    fa = DuckDBSource(a).fingerprint(schema)
    assert fa == DuckDBSource(b).fingerprint(schema) and len(fa) == 64
    shuffled.iloc[1:].to_parquet(b, index=False)
    assert DuckDBSource(b).fingerprint(schema) != fa


def test_settings_reach_the_connection(tmp_path):
    source = DuckDBSource(adult_path(), memory_limit="512MB", temp_directory=tmp_path, threads=1)
    assert isinstance(source, TableSource) and isinstance(source.counter(load_adult()[1]), MarginalCounter)
    assert source._con is not None
    assert source._con.sql("SELECT current_setting('threads')").fetchall()[0][0] == 1
    assert str(tmp_path) in source._con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]


def test_validation_and_encoding_are_one_pass_shared_with_the_counter():
    df, schema = load_adult()
    source = DuckDBSource(adult_path(), threads=1)
    source.validate(schema)
    assert source._con is not None
    tables = "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'dpsynth_codes_%'"
    assert source._con.sql(tables).fetchall()[0][0] == 1
    assert source.counter(schema).table == source.materialize(schema)
    source.counter(schema).counts([(0, 1)])
    assert source._con.sql(tables).fetchall()[0][0] == 1


def test_a_failed_validation_drops_its_table(tmp_path):
    path = write_csv(tmp_path / "bad.csv", CSV + "q,z,ten,-,2020-02-30,noon\n")
    source = DuckDBSource(path, threads=1)
    with pytest.raises(DataError):
        source.validate(MIXED)
    assert source._con is not None
    tables = "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'dpsynth_%'"
    assert source._con.sql(tables).fetchall()[0][0] == 0


def test_parquet_dates_float32_and_booleans(tmp_path):
    import datetime as dt

    schema = Schema.from_dict({"columns": [
        {"name": "d", "kind": "datetime", "bounds": ["1960-01-01", "2030-01-01"], "bins": 9, "nullable": True},
        {"name": "f", "kind": "continuous", "bounds": [0, 1], "bins": 4},
        {"name": "b", "kind": "integer", "bounds": [0, 1]}]})
    df = pd.DataFrame({"d": [dt.date(2020, 1, 1), None, dt.date(1965, 3, 1), dt.date(2029, 12, 31)],
                       "f": np.array([0.25, 0.5, 0.75, 1.0], dtype=np.float32), "b": [True, False, True, True]})
    path = tmp_path / "typed.parquet"
    df.to_parquet(path, index=False)
    source = DuckDBSource(path, threads=1)
    assert source.kinds == {"d": "date", "f": "float", "b": "boolean"}
    assert_counts_equal(source, pd.read_parquet(path), schema, all_cliques(3, three=1))


def test_a_table_wider_than_a_grouping_id_is_counted_in_chunks(tmp_path):
    """70 columns: one query's grouping id has a bit per column of its sets' union (a 64-bit integer), so
    the 1-way sets are cut into queries of at most MAX_UNION columns; the counts are numpy's."""
    from dpsynth.marginals import sql

    width = 70
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"x{j}": rng.choice(["a", "b", "c"], 50) for j in range(width)})
    schema = Schema.from_dict({"version": 1, "columns": [{"name": f"x{j}", "kind": "categorical",
                                                          "levels": ["a", "b", "c"]} for j in range(width)]})
    cliques = [(j,) for j in range(width)] + [(0, 69), (1, 68)]
    queries = sql.marginal_queries("t", schema, cliques, "duckdb", weight="w")
    assert len(queries) >= 2 and all(len(q.union) <= sql.MAX_UNION for q in queries)
    assert sorted(i for q in queries for i, _ in q.cliques) == list(range(len(cliques)))
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    source = DuckDBSource(path, threads=1)
    assert_counts_equal(source, df, schema, cliques)
    source.close()


def test_reduce_batches_sums_every_row_and_frees_the_connection_on_an_error(tmp_path):
    """The sum over batches is the sum over rows; a failing batch function leaves the connection usable."""
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [str(i) for i in range(10_000)]}).to_csv(path, index=False)
    source = DuckDBSource(path, threads=1)
    total = source.reduce_batches(["x"], lambda b: np.array([len(b), pd.to_numeric(b["x"]).sum()]), 2, batch_rows=999)
    assert total.tolist() == [10_000, sum(range(10_000))]

    def fails(batch: pd.DataFrame) -> np.ndarray:
        raise ValueError("a batch function failed")

    with pytest.raises(ValueError, match="a batch function failed"):
        source.reduce_batches(["x"], fails, 1, batch_rows=999)
    assert int(source.fetch("SELECT COUNT(*) AS n FROM dpsynth_src", 1)["n"][0]) == 10_000
    source.close()
