"""dpsynth.schema: loading public schemas, rejecting malformed ones, and encoding/decoding by the
schema alone (nothing learned from the data, no data value ever in an error message).

Deterministic (fixed seeds); no statistical failure probability.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import adult_schema_path, load_adult
from dpsynth.exceptions import DataError, SchemaError
from dpsynth.schema import Column, Schema, decode, encode, load_schema

SECRET = "SECRET-VALUE-123"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


YAML_SCHEMA = """
version: 1
name: people
missing_values: ["?", "NA", ""]
columns:
  - name: colour
    kind: categorical
    levels: [red, green, blue]
    nullable: true
  - name: size
    kind: categorical
    levels: [1, 2, 3]
  - name: children
    kind: integer
    bounds: [0, 6]
  - name: age
    kind: integer
    bounds: [0, 99]
    edges: [0, 18, 30, 45, 65, 99]
  - name: visits
    kind: integer
    bounds: [0, 100]
    bins: 4
    nullable: true
  - name: score
    kind: continuous
    bounds: [0.0, 1.0]
    bins: 5
  - name: income
    kind: continuous
    edges: [-10.0, 0.0, 1000.0, 50000.5]
    nullable: true
"""


@pytest.fixture
def schema(tmp_path) -> Schema:
    return load_schema(write(tmp_path, "people.yaml", YAML_SCHEMA))


def valid_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue", "?"], size=n),
            "size": rng.choice(["1", "2", "3"], size=n),
            "children": rng.integers(0, 7, size=n).astype(str),
            "age": rng.integers(0, 100, size=n).astype(str),
            "visits": rng.choice(["0", "17", "25", "26", "50", "99", "100", "NA"], size=n),
            "score": np.round(rng.random(n), 4).astype(str),
            "income": rng.choice(["-10", "-3.5", "0", "999.99", "1000", "50000.5", ""], size=n),
        }
    )


# --------------------------------------------------------------------------- loading


def test_private_pgm_domain_json_is_accepted(tmp_path):
    schema = load_schema(write(tmp_path, "domain.json", json.dumps({"a": 3, "b": 2})))
    assert schema.source == "private-pgm-domain"
    assert schema.names == ["a", "b"]
    assert schema.sizes == [3, 2]
    assert schema["a"] == Column(name="a", kind="categorical", levels=(0, 1, 2))
    codes = encode(pd.DataFrame({"a": [0, 2, 1], "b": [1, 0, 1]}), schema)
    np.testing.assert_array_equal(codes, [[0, 1], [2, 0], [1, 1]])
    with pytest.raises(DataError, match="column 'a'"):
        encode(pd.DataFrame({"a": [0, 3], "b": [1, 0]}), schema)


@pytest.mark.parametrize("bad", [{"a": 0}, {"a": -2, "b": 2}])
def test_domain_with_invalid_sizes_is_rejected(tmp_path, bad):
    with pytest.raises(SchemaError, match="'a'"):
        load_schema(write(tmp_path, "domain.json", json.dumps(bad)))


def test_dpsynth_yaml_schema(schema):
    assert schema.source == "dpsynth"
    assert schema.name == "people"
    assert schema.names == ["colour", "size", "children", "age", "visits", "score", "income"]
    assert schema.missing_values == ("?", "NA", "")
    colour = schema["colour"]
    assert colour.kind == "categorical" and colour.levels == ("red", "green", "blue")
    assert colour.nullable and colour.n_values == 3 and colour.size == 4 and colour.missing_code == 3
    assert schema["size"].levels == (1, 2, 3) and not schema["size"].nullable
    assert schema["size"].missing_code is None
    # an integer column without bins: one level per integer
    children = schema["children"]
    assert children.kind == "integer" and children.bounds == (0.0, 6.0) and children.n_values == 7
    assert children.edges == tuple(float(x) for x in range(8))
    # declared edges
    assert schema["age"].edges == (0.0, 18.0, 30.0, 45.0, 65.0, 99.0) and schema["age"].size == 5
    # bins: equal-width edges from the declared bounds (never from data)
    assert schema["visits"].edges == (0.0, 25.0, 50.0, 75.0, 100.0) and schema["visits"].size == 5
    assert schema["score"].edges == pytest.approx((0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
    assert schema["score"].edges[0] == 0.0 and schema["score"].edges[-1] == 1.0
    # edges without bounds: the bounds are the outer edges
    income = schema["income"]
    assert income.kind == "continuous" and income.bounds == (-10.0, 50000.5) and income.size == 4
    assert schema.sizes == [4, 3, 7, 5, 5, 5, 4]


def test_json_dpsynth_schema_and_round_trip_through_to_dict(tmp_path, schema):
    path = write(tmp_path, "people.json", json.dumps(schema.to_dict()))
    again = load_schema(path)
    assert again.columns == schema.columns
    # including an integer column with one level per integer, whose edges run to high + 1
    assert again["children"].edges[-1] == 7.0 and again["children"].bounds == (0.0, 6.0)
    assert again.missing_values == schema.missing_values


def test_schema_from_dict_defaults():
    schema = Schema.from_dict({"columns": [{"name": "x", "kind": "categorical", "levels": ["a"]}]}, name="n")
    assert schema.missing_values == ("",) and schema.name == "n"


# --------------------------------------------------------------------------- malformed schemas


def yaml_columns(*columns: str) -> str:
    return "version: 1\ncolumns:\n" + "".join(f"  - {c}\n" for c in columns)


MALFORMED = {
    "unknown kind": (
        yaml_columns("{name: weight, kind: text}"),
        "column 'weight': kind ('text') must be one of categorical, integer, continuous",
    ),
    "missing kind": (
        yaml_columns("{name: weight, bounds: [0, 1]}"),
        "column 'weight': kind (None) must be one of",
    ),
    "no levels": (
        yaml_columns("{name: weight, kind: categorical}"),
        "column 'weight': a categorical column needs a non-empty list of levels",
    ),
    "empty levels": (
        yaml_columns("{name: weight, kind: categorical, levels: []}"),
        "column 'weight': a categorical column needs a non-empty list of levels",
    ),
    "repeated levels": (
        yaml_columns("{name: weight, kind: categorical, levels: [a, b, a]}"),
        "column 'weight': levels must be distinct",
    ),
    "bins and edges both": (
        yaml_columns("{name: weight, kind: integer, bounds: [0, 9], bins: 3, edges: [0, 5, 9]}"),
        "column 'weight': give bins or edges, not both",
    ),
    "non-increasing edges": (
        yaml_columns("{name: weight, kind: continuous, edges: [0, 5, 5, 9]}"),
        "column 'weight': edges must be a strictly increasing list of at least 2 numbers",
    ),
    "decreasing edges": (
        yaml_columns("{name: weight, kind: continuous, edges: [0, 5, 3, 9]}"),
        "column 'weight': edges must be a strictly increasing list of at least 2 numbers",
    ),
    "edges disagree with bounds": (
        yaml_columns("{name: weight, kind: continuous, bounds: [0, 10], edges: [0, 5, 9]}"),
        "column 'weight': edges must start at the low bound and end at the high bound",
    ),
    "integer bin with no integer": (
        yaml_columns("{name: weight, kind: integer, bounds: [0, 3], bins: 10}"),
        "column 'weight': bin [0.3, 0.6) contains no integer",
    ),
    "integer bin with no integer (edges)": (
        yaml_columns("{name: weight, kind: integer, edges: [0, 0.2, 0.5, 3]}"),
        "column 'weight': bin [0.2, 0.5) contains no integer",
    ),
    "non-integer bounds of an integer column": (
        yaml_columns("{name: weight, kind: integer, bounds: [0.5, 9], bins: 2}"),
        "column 'weight': bounds of an integer column must be integers",
    ),
    "numeric without bounds": (
        yaml_columns("{name: weight, kind: continuous, bins: 4}"),
        "column 'weight': a numeric column needs bounds",
    ),
    "continuous without bins": (
        yaml_columns("{name: weight, kind: continuous, bounds: [0, 1]}"),
        "column 'weight': bins must be given",
    ),
    "too many integers without bins": (
        yaml_columns("{name: weight, kind: integer, bounds: [0, 100000]}"),
        "column 'weight': bins must be given",
    ),
    "bad bins": (
        yaml_columns("{name: weight, kind: continuous, bounds: [0, 1], bins: 0}"),
        "column 'weight': bins (0) must be an integer >= 1",
    ),
    "inverted bounds": (
        yaml_columns("{name: weight, kind: continuous, bounds: [5, 1], bins: 2}"),
        "column 'weight': bounds ([5, 1]) must be [low, high] with low < high",
    ),
    "levels on a numeric column": (
        yaml_columns("{name: weight, kind: integer, bounds: [0, 3], levels: [0, 1]}"),
        "column 'weight': a numeric column takes bounds and bins or edges, not levels",
    ),
    "bounds on a categorical column": (
        yaml_columns("{name: weight, kind: categorical, levels: [a], bounds: [0, 1]}"),
        "column 'weight': a categorical column takes levels, not bounds",
    ),
    "nullable not a bool": (
        yaml_columns("{name: weight, kind: categorical, levels: [a], nullable: maybe}"),
        "column 'weight': nullable ('maybe') must be true or false",
    ),
    "duplicate column": (
        yaml_columns("{name: weight, kind: categorical, levels: [a]}", "{name: weight, kind: integer, bounds: [0, 3]}"),
        "schema declares column 'weight' twice",
    ),
    "unknown column key": (
        yaml_columns("{name: weight, kind: categorical, levels: [a], colour: red}"),
        "column 'weight': unknown key(s) ['colour']",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_schema_raises_schema_error_naming_the_column(tmp_path, case):
    text, expected = MALFORMED[case]
    path = write(tmp_path, "schema.yaml", text)
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    message = str(info.value)
    assert "'weight'" in message, message
    assert expected in message, message
    assert str(path) in message  # and the file


def test_all_column_problems_are_reported_at_once(tmp_path):
    text = yaml_columns(
        "{name: first, kind: text}",
        "{name: second, kind: categorical}",
        "{name: third, kind: continuous, bounds: [0, 1], bins: 2, edges: [0, 1]}",
    )
    with pytest.raises(SchemaError) as info:
        load_schema(write(tmp_path, "s.yaml", text))
    for name in ("'first'", "'second'", "'third'"):
        assert name in str(info.value)


def test_unnamed_column_is_named_by_position(tmp_path):
    with pytest.raises(SchemaError, match=r"columns\[1\]: name must be a non-empty string"):
        load_schema(
            write(
                tmp_path,
                "s.yaml",
                yaml_columns("{name: ok, kind: categorical, levels: [a]}", "{kind: categorical, levels: [a]}"),
            )
        )


def test_bad_yaml_raises_schema_error(tmp_path):
    path = write(tmp_path, "broken.yaml", "columns:\n  - {name: a, kind: categorical, levels: [x, y\n")
    with pytest.raises(SchemaError, match=r"is not valid YAML at line \d+") as info:
        load_schema(path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is None  # no parser internals chained on


def test_bad_json_raises_schema_error(tmp_path):
    path = write(tmp_path, "broken.json", '{"a": 3,')
    with pytest.raises(SchemaError, match="is not valid JSON"):
        load_schema(path)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_non_mapping_file_is_rejected(tmp_path, text):
    with pytest.raises(SchemaError, match="must hold a mapping"):
        load_schema(write(tmp_path, "s.yaml", text))


def test_unknown_top_level_key_and_version(tmp_path):
    column = yaml_columns("{name: a, kind: categorical, levels: [x]}")
    with pytest.raises(SchemaError, match=r"unknown top-level key\(s\) \['colums'\]"):
        load_schema(write(tmp_path, "s.yaml", "colums: []\n" + column))
    with pytest.raises(SchemaError, match=r"version \(2\) must be 1"):
        load_schema(write(tmp_path, "s2.yaml", column.replace("version: 1", "version: 2")))


def test_missing_schema_file(tmp_path):
    with pytest.raises(SchemaError, match="does not exist"):
        load_schema(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- encode: data errors


def test_values_outside_levels_name_column_and_rows_but_not_the_value(schema):
    data = valid_frame(50)
    data.loc[[3, 7], "colour"] = SECRET
    with pytest.raises(DataError) as info:
        encode(data, schema)
    message = str(info.value)
    assert message == "column 'colour': a value outside the 3 declared levels in 2 rows"
    assert SECRET not in message and SECRET not in repr(info.value.args)


def test_non_numeric_text_in_numeric_column(schema):
    data = valid_frame(50)
    data.loc[5, "score"] = SECRET
    with pytest.raises(DataError) as info:
        encode(data, schema)
    assert str(info.value) == "column 'score': text that is not a number in 1 row"
    assert SECRET not in str(info.value)


def test_missing_in_non_nullable_column(schema):
    data = valid_frame(50)
    data.loc[[1, 2, 3], "age"] = "?"
    data.loc[4, "size"] = None
    with pytest.raises(DataError) as info:
        encode(data, schema)
    message = str(info.value)
    assert "column 'age': a missing value in 3 rows, but the column is not declared nullable" in message
    assert "column 'size': a missing value in 1 row" in message


def test_all_problems_are_collected_in_one_message(schema):
    data = valid_frame(2_000)
    data.loc[:1_199, "colour"] = SECRET  # 1,200 rows
    data.loc[10, "children"] = "many"
    data.loc[11, "age"] = ""
    with pytest.raises(DataError) as info:
        encode(data, schema)
    message = str(info.value)
    assert "column 'colour': a value outside the 3 declared levels in 1,200 rows" in message
    assert "column 'children': text that is not a number in 1 row" in message
    assert "column 'age': a missing value in 1 row" in message
    assert SECRET not in message and "many" not in message


def test_missing_column_and_empty_table(schema):
    with pytest.raises(DataError, match="'income'"):
        encode(valid_frame(5).drop(columns=["income"]), schema)
    with pytest.raises(DataError, match="no rows"):
        encode(valid_frame(5).iloc[:0], schema)


# --------------------------------------------------------------------------- encode: codes


def column_codes(schema: Schema, name: str, values: list) -> list[int]:
    data = valid_frame(len(values))
    data[name] = pd.Series(values, dtype=object)
    return encode(data, schema)[:, schema.names.index(name)].tolist()


def test_numeric_values_are_clamped_to_the_bounds(schema):
    # score: bounds [0, 1], 5 bins of width 0.2; the last bin holds the high bound.
    assert column_codes(schema, "score", ["-5", "-0.0001", "0", "0.1", "0.2", "0.99", "1", "1.5", "1e9"]) == [
        0,
        0,
        0,
        0,
        1,
        4,
        4,
        4,
        4,
    ]
    # age: edges 0, 18, 30, 45, 65, 99
    assert column_codes(schema, "age", ["-3", "0", "17", "18", "64", "65", "99", "150"]) == [0, 0, 0, 1, 3, 4, 4, 4]
    # children: one code per integer 0..6
    assert column_codes(schema, "children", ["0", "3", "6", "7", "-1"]) == [0, 3, 6, 6, 0]


def test_categorical_codes_follow_the_declared_order(schema):
    assert column_codes(schema, "colour", ["blue", "red", "green", "?", None]) == [2, 0, 1, 3, 3]
    # integer levels match their text form
    assert column_codes(schema, "size", [3, "1", 2]) == [2, 0, 1]


def test_encode_learns_nothing_from_the_data(schema):
    """Encoding a subset of rows gives the same codes for those rows: the domain is not learned."""
    data = valid_frame(500, seed=3)
    full = encode(data, schema)
    rng = np.random.default_rng(4)
    subsets = [rng.choice(500, size=k, replace=False) for k in (1, 2, 17, 250)]
    subsets.append(np.flatnonzero(data["colour"] == "blue"))  # a subset where one column is constant
    subsets.append(np.array([int(np.argmax(data["age"].astype(int)))]))  # the single oldest row
    for rows in subsets:
        part = encode(data.iloc[rows].reset_index(drop=True), schema)
        np.testing.assert_array_equal(part, full[rows])
    assert full.dtype == np.int64
    assert ((full >= 0) & (full < np.array(schema.sizes))).all()


# --------------------------------------------------------------------------- decode


def test_integer_one_level_per_integer_round_trips_exactly(tmp_path):
    schema = load_schema(
        write(
            tmp_path,
            "s.yaml",
            yaml_columns(
                "{name: n, kind: integer, bounds: [-5, 40]}",
                "{name: m, kind: integer, bounds: [1000, 1003]}",
            ),
        )
    )
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"n": rng.integers(-5, 41, size=400), "m": rng.integers(1000, 1004, size=400)})
    decoded = decode(encode(data, schema), schema, np.random.default_rng(1))
    pd.testing.assert_frame_equal(decoded, data, check_dtype=False)
    assert (decoded["n"].to_numpy() == data["n"].to_numpy()).all()


def test_categorical_round_trips_exactly(schema):
    data = valid_frame(300, seed=5)
    decoded = decode(encode(data, schema), schema, np.random.default_rng(0))
    expected_colour = [None if v == "?" else v for v in data["colour"]]
    assert decoded["colour"].tolist() == expected_colour
    assert decoded["size"].tolist() == data["size"].astype(int).tolist()


def test_decoded_numbers_lie_in_their_bin_and_within_bounds(schema):
    codes = encode(valid_frame(3_000, seed=6), schema)
    decoded = decode(codes, schema, np.random.default_rng(7))
    for name in ("children", "age", "visits", "score", "income"):
        col = schema[name]
        j = schema.names.index(name)
        present = codes[:, j] != (col.missing_code if col.nullable else -1)
        values = decoded[name].to_numpy(dtype=float, na_value=np.nan)[present]
        bins = codes[present, j]
        low, high = col.bounds
        assert np.all((values >= low) & (values <= high)), name
        edges = np.asarray(col.edges)
        assert np.all(values >= edges[bins]), name
        # the last bin is closed at the high bound, the others are half-open
        upper_ok = np.where(bins == col.n_values - 1, values <= edges[bins + 1], values < edges[bins + 1])
        assert np.all(upper_ok), name
        if col.kind == "integer":
            assert np.all(values == np.round(values)), name
        # decoding then encoding again gives back the same bin
        again = column_codes(schema, name, [repr(float(v)) for v in values])
        assert again == bins.tolist(), name


def test_nullable_missing_values_round_trip_to_missing(schema):
    data = valid_frame(400, seed=8)
    codes = encode(data, schema)
    decoded = decode(codes, schema, np.random.default_rng(9))
    for name, tokens in (("colour", {"?"}), ("visits", {"NA"}), ("income", {""})):
        was_missing = data[name].isin(tokens).to_numpy()
        assert was_missing.any() and not was_missing.all()
        j = schema.names.index(name)
        assert (codes[was_missing, j] == schema[name].missing_code).all()
        is_missing = decoded[name].isna().to_numpy()
        np.testing.assert_array_equal(is_missing, was_missing)


def test_decode_without_missing_codes_has_plain_dtypes(tmp_path):
    schema = load_schema(
        write(
            tmp_path,
            "s.yaml",
            yaml_columns(
                "{name: n, kind: integer, bounds: [0, 9], nullable: true}",
                "{name: x, kind: continuous, bounds: [0, 1], bins: 2}",
            ),
        )
    )
    decoded = decode(np.array([[0, 0], [9, 1]]), schema, np.random.default_rng(0))
    assert decoded["n"].dtype == np.int64 and decoded["n"].tolist() == [0, 9]
    assert decoded["x"].dtype == np.float64
    assert 0 <= decoded["x"][0] < 0.5 <= decoded["x"][1] <= 1
    with_missing = decode(np.array([[10, 0]]), schema, np.random.default_rng(0))
    assert with_missing["n"].isna().all()
    assert not math.isnan(with_missing["x"][0])


def test_adult_schema_covers_the_bundled_data():
    data, schema = load_adult()
    codes = encode(data, schema)
    assert codes.shape == (32_561, 15)
    assert (codes < np.array(schema.sizes)).all() and (codes >= 0).all()
    assert load_schema(adult_schema_path()).names == list(data.columns)


DATETIME_SCHEMA = """
version: 1
columns:
  - {name: admitted, kind: datetime, bounds: ["2020-01-01", "2024-12-31"], bins: 20, nullable: true}
  - name: shift
    kind: datetime
    resolution: second
    bounds: ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]
    edges: ["2024-01-01T00:00:00", "2024-01-01T08:00:00", "2024-01-01T16:00:00", "2024-01-02T00:00:00"]
  - {name: day, kind: datetime, bounds: [2024-03-01, 2024-03-31]}
"""


def test_datetime_columns_encode_clamp_and_decode_as_iso(tmp_path):
    schema = load_schema(write(tmp_path, "dt.yaml", DATETIME_SCHEMA))
    assert [c.size for c in schema.columns] == [21, 3, 31]
    data = pd.DataFrame({
        "admitted": ["2021-05-03", "", "2019-01-01", "2030-02-02"],
        "shift": ["2024-01-01T09:30:00", "2024-01-01T01:00:00", "2024-01-01T23:59:59", "2024-01-01T16:00:00"],
        "day": ["2024-03-05", "2024-03-01", "2024-03-31", "2024-03-15"],
    })
    codes = encode(data, schema)
    np.testing.assert_array_equal(codes[:, 0], [5, 20, 0, 19])  # missing → its own code; clamped to the bounds
    np.testing.assert_array_equal(codes[:, 1], [1, 0, 2, 2])
    np.testing.assert_array_equal(codes[:, 2], [4, 0, 30, 14])  # one level per day
    back = decode(codes, schema, np.random.default_rng(0))
    assert list(back["day"]) == list(data["day"])  # one level per day round-trips exactly
    assert back["admitted"][1] is None and all(len(v) == 10 for v in back["admitted"].dropna())
    assert all(len(v) == 19 and v.startswith("2024-01-01T") for v in back["shift"])
    np.testing.assert_array_equal(encode(back.fillna(""), schema), codes)
    assert Schema.from_dict(schema.to_dict()) == schema


def test_datetime_errors(tmp_path):
    data = pd.DataFrame({"day": ["2024-03-05", "not a date"]})
    schema = Schema.from_dict(
        {"columns": [{"name": "day", "kind": "datetime", "bounds": ["2024-03-01", "2024-03-31"]}]})
    with pytest.raises(DataError, match="column 'day': text that is not a date/time in 1 row"):
        encode(data, schema)
    for spec, message in [
        ({"bounds": ["2024-03-01", "soon"]}, "must be ISO dates or date-times"),
        ({"bounds": ["2024-03-01T12:00:00", "2024-03-31"]}, "must fall on whole days"),
        ({"bounds": ["2024-03-01", "2024-03-31"], "resolution": "week"}, "resolution ('week') must be day or second"),
    ]:
        with pytest.raises(SchemaError, match=re.escape(message)):
            Schema.from_dict({"columns": [{"name": "day", "kind": "datetime", **spec}]})
    with pytest.raises(SchemaError, match="only datetime columns take a resolution"):
        Schema.from_dict({"columns": [{"name": "n", "kind": "integer", "bounds": [0, 5], "resolution": "day"}]})


# --------------------------------------------------------------------------- the other level


OTHER_SCHEMA = yaml_columns(
    "{name: job, kind: categorical, levels: [clerk, nurse], other: '<other>', nullable: true}",
    "{name: code, kind: categorical, levels: [1, 2], other: rare}",
)


def test_other_level_parses_round_trips_and_counts_as_a_code(tmp_path):
    schema = load_schema(write(tmp_path, "s.yaml", "missing_values: ['?']\n" + OTHER_SCHEMA))
    job = schema["job"]
    assert job.other == "<other>" and job.other_code == 2 and job.missing_code == 3 and job.size == 4
    assert schema["code"].size == 3 and schema["code"].other_code == 2
    assert job.to_dict()["other"] == "<other>"
    assert Schema.from_dict(schema.to_dict()) == schema
    plain = Schema.from_dict({"columns": [{"name": "x", "kind": "categorical", "levels": ["a"]}]})
    assert "other" not in plain.to_dict()["columns"][0] and plain["x"].other_code is None
    # a column of nothing but other (e.g. no value was frequent enough to be discovered)
    only = Schema.from_dict({"columns": [{"name": "x", "kind": "categorical", "levels": [], "other": "<other>"}]})
    assert only["x"].size == 1


def test_values_outside_the_levels_encode_to_other_and_decode_to_its_name(tmp_path):
    schema = load_schema(write(tmp_path, "s.yaml", "missing_values: ['?']\n" + OTHER_SCHEMA))
    data = pd.DataFrame({"job": ["clerk", SECRET, "nurse", "?", "pilot"], "code": ["1", "2", "7", "1", SECRET]})
    codes = encode(data, schema)
    assert codes[:, 0].tolist() == [0, 2, 1, 3, 2] and codes[:, 1].tolist() == [0, 1, 2, 0, 2]
    decoded = decode(codes, schema, np.random.default_rng(0))
    assert decoded["job"].tolist() == ["clerk", "<other>", "nurse", None, "<other>"]
    assert decoded["code"].tolist() == [1, 2, "rare", 1, "rare"]
    # without an other level the same value is an error that names no value
    plain = Schema.from_dict({"columns": [{"name": "job", "kind": "categorical", "levels": ["clerk", "nurse"]}]})
    with pytest.raises(DataError, match="outside the 2 declared levels in 1 row") as info:
        encode(data[["job"]].iloc[:3], plain)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "column,message",
    [
        ("{name: weight, kind: categorical, levels: [a, b], other: b}", "other ('b') must differ from every level"),
        ("{name: weight, kind: categorical, levels: [a], other: ''}", "other ('') must be a non-empty string"),
        ("{name: weight, kind: categorical, levels: [a], other: 3}", "other (3) must be a non-empty string"),
        ("{name: weight, kind: categorical, levels: []}", "needs a non-empty list of levels (or an other level)"),
        ("{name: weight, kind: integer, bounds: [0, 3], other: x}", "takes bounds and bins or edges, not other"),
    ],
)
def test_bad_other_levels_name_the_column(tmp_path, column, message):
    with pytest.raises(SchemaError, match=re.escape(message)) as info:
        load_schema(write(tmp_path, "s.yaml", yaml_columns(column)))
    assert "'weight'" in str(info.value)


# --------------------------------------------------------------------------- provenance and opt-ins


def test_provenance_is_kept_and_names_the_opt_in(tmp_path):
    dp = yaml_columns("{name: a, kind: categorical, levels: [x]}") + (
        "provenance: {method: dp, epsilon: 1.0, delta: 1.0e-7, ledger_entry: 4, dataset: d}\n"
    )
    schema = load_schema(write(tmp_path, "dp.yaml", dp))
    assert schema.provenance["ledger_entry"] == 4 and schema.opt_ins == []
    assert schema.to_dict()["provenance"]["method"] == "dp"
    public = yaml_columns("{name: a, kind: categorical, levels: [x]}") + (
        "provenance: {method: public, opt_in: schema_read_from_data_without_privacy}\n"
    )
    schema = load_schema(write(tmp_path, "public.yaml", public))
    assert schema.opt_ins == ["schema_read_from_data_without_privacy"]
    assert load_schema(write(tmp_path, "plain.yaml", yaml_columns("{name: a, kind: categorical, levels: [x]}"))
                       ).opt_ins == []
    assert "provenance" not in Schema.from_domain({"a": 2}).to_dict()


@pytest.mark.parametrize(
    "provenance,message",
    [
        ("{method: public}", "provenance method 'public' needs opt_in: schema_read_from_data_without_privacy"),
        ("{method: guessed}", "provenance method ('guessed') must be one of declared, dp, public"),
        ("{method: dp, opt_in: trust_me}", "provenance opt_in ('trust_me') must be one of"),
        ("[dp]", "provenance must be a mapping"),
    ],
)
def test_bad_provenance_is_refused(tmp_path, provenance, message):
    text = yaml_columns("{name: a, kind: categorical, levels: [x]}") + f"provenance: {provenance}\n"
    with pytest.raises(SchemaError, match=re.escape(message)):
        load_schema(write(tmp_path, "s.yaml", text))
