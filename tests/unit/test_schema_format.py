"""The public schema: file formats, validation, and schema-only encoding/decoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import adult_schema_path, load_adult
from dpsynth.exceptions import DataError, SchemaError
from dpsynth.schema import Schema, decode, encode, load_schema


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_private_pgm_domain_file_is_a_schema(tmp_path):
    schema = load_schema(write(tmp_path, "domain.json", json.dumps({"a": 3, "b": 2})))
    assert schema.source == "private-pgm-domain"
    assert schema.names == ["a", "b"] and schema.sizes == [3, 2]
    codes = encode(pd.DataFrame({"a": ["0", "2"], "b": ["1", "0"]}), schema)
    np.testing.assert_array_equal(codes, [[0, 1], [2, 0]])


def test_yaml_schema_kinds(tmp_path):
    schema = load_schema(write(tmp_path, "s.yaml", """
version: 1
missing_values: ["?", "NA"]
columns:
  - {name: c, kind: categorical, levels: [x, y], nullable: true}
  - {name: i, kind: integer, bounds: [0, 9]}
  - {name: b, kind: integer, bounds: [0, 99], bins: 4}
  - {name: f, kind: continuous, bounds: [0.0, 1.0], edges: [0.0, 0.5, 0.9, 1.0]}
"""))
    assert schema.sizes == [3, 10, 4, 3]
    assert schema["c"].missing_code == 2
    assert schema["b"].edges == (0.0, 24.75, 49.5, 74.25, 99.0)


def test_adult_schema_covers_the_bundled_data():
    data, schema = load_adult()
    codes = encode(data, schema)
    assert codes.shape == (32_561, 15)
    assert (codes < np.array(schema.sizes)).all() and (codes >= 0).all()
    assert load_schema(adult_schema_path()).names == list(data.columns)


MALFORMED = [
    ("unknown kind", "columns:\n  - {name: a, kind: text}\n", "column 'a': kind ('text') must be one of"),
    ("no levels", "columns:\n  - {name: a, kind: categorical}\n", "column 'a': a categorical column needs"),
    ("bins and edges", "columns:\n  - {name: a, kind: integer, bounds: [0, 9], bins: 3, edges: [0, 5, 9]}\n",
     "column 'a': give bins or edges, not both"),
    ("edges not increasing", "columns:\n  - {name: a, kind: continuous, edges: [0, 5, 5, 9]}\n",
     "column 'a': edges must be a strictly increasing list"),
    ("empty integer bin", "columns:\n  - {name: a, kind: integer, edges: [0, 0.2, 0.5, 3]}\n",
     "column 'a': bin [0.2, 0.5) contains no integer"),
    ("duplicate",
     "columns:\n  - {name: a, kind: categorical, levels: [x]}\n  - {name: a, kind: categorical, levels: [y]}\n",
     "declares column 'a' twice"),
    ("unknown key", "columns:\n  - {name: a, kind: categorical, levels: [x], colour: red}\n",
     "column 'a': unknown key(s) ['colour']"),
    ("no bounds", "columns:\n  - {name: a, kind: continuous, bins: 4}\n", "column 'a': a numeric column needs bounds"),
    ("bad bounds", "columns:\n  - {name: a, kind: continuous, bounds: [5, 1], bins: 4}\n",
     "column 'a': bounds ([5, 1]) must be [low, high] with low < high"),
    ("continuous without bins", "columns:\n  - {name: a, kind: continuous, bounds: [0, 1]}\n",
     "column 'a': bins must be given"),
    ("wide integer without bins", "columns:\n  - {name: a, kind: integer, bounds: [0, 100000]}\n",
     "column 'a': bins must be given"),
    ("nullable not bool", "columns:\n  - {name: a, kind: categorical, levels: [x], nullable: yes please}\n",
     "column 'a': nullable ('yes please') must be true or false"),
    ("version", "version: 2\ncolumns:\n  - {name: a, kind: categorical, levels: [x]}\n", "version (2) must be 1"),
    ("bad yaml", "columns: [\n  - {", "is not valid YAML"),
    ("empty", "", "must hold a mapping"),
    ("columns missing", "name: x\n", "columns must be a non-empty list"),
]


@pytest.mark.parametrize("label,text,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_schema(tmp_path, label, text, message):
    with pytest.raises(SchemaError) as err:
        load_schema(write(tmp_path, "s.yaml", text))
    assert message in str(err.value)
    assert "s.yaml" in str(err.value)


def test_malformed_json_and_missing_file(tmp_path):
    with pytest.raises(SchemaError, match="is not valid JSON"):
        load_schema(write(tmp_path, "d.json", "{"))
    with pytest.raises(SchemaError, match="does not exist"):
        load_schema(tmp_path / "nope.yaml")
    with pytest.raises(SchemaError, match="column 'a' has 0 levels"):
        load_schema(write(tmp_path, "d.json", '{"a": 0}'))


@pytest.fixture
def schema() -> Schema:
    return Schema.from_dict({"missing_values": ["?"], "columns": [
        {"name": "c", "kind": "categorical", "levels": ["x", "y", 7]},
        {"name": "n", "kind": "integer", "bounds": [0, 10]},
        {"name": "f", "kind": "continuous", "bounds": [0.0, 1.0], "bins": 4, "nullable": True},
    ]})


def test_bad_values_are_counted_never_shown(schema):
    data = pd.DataFrame({
        "c": ["x", "SECRET-VALUE-123", "SECRET-VALUE-123", "?"],
        "n": ["1", "2", "SECRET-TEXT-9", "3"],
        "f": ["0.5", "?", "0.1", "0.2"],
    })
    with pytest.raises(DataError) as err:
        encode(data, schema)
    message = str(err.value)
    assert "column 'c': a missing value in 1 row, but the column is not declared nullable" in message
    assert "column 'c': a value outside the 3 declared levels in 2 rows" in message
    assert "column 'n': text that is not a number in 1 row" in message
    assert "SECRET" not in message


def test_missing_column_and_empty_table(schema):
    with pytest.raises(DataError, match="the data has no column\\(s\\) 'f'"):
        encode(pd.DataFrame({"c": ["x"], "n": ["1"]}), schema)
    with pytest.raises(DataError, match="no rows"):
        encode(pd.DataFrame({"c": [], "n": [], "f": []}), schema)


def test_numeric_values_are_clamped_to_the_bounds(schema):
    data = pd.DataFrame({"c": ["x"] * 4, "n": ["-5", "0", "10", "1e9"], "f": ["-3", "0.3", "1.0", "7"]})
    codes = encode(data, schema)
    np.testing.assert_array_equal(codes[:, 1], [0, 0, 10, 10])
    np.testing.assert_array_equal(codes[:, 2], [0, 1, 3, 3])


def test_integer_levels_round_trip_exactly(schema):
    data = pd.DataFrame({"c": ["x", "y", "7"], "n": [str(v) for v in (0, 4, 10)], "f": ["?", "0.9", "0.0"]})
    codes = encode(data, schema)
    back = decode(codes, schema, np.random.default_rng(0))
    assert list(back["c"]) == ["x", "y", 7]
    assert list(back["n"]) == [0, 4, 10]
    assert np.isnan(back["f"][0]) and 0.75 <= back["f"][1] <= 1.0 and 0.0 <= back["f"][2] < 0.25


def test_decoded_values_stay_in_their_bins():
    schema = Schema.from_dict({"columns": [
        {"name": "i", "kind": "integer", "bounds": [0, 99], "edges": [0, 1, 10, 50, 99]},
        {"name": "f", "kind": "continuous", "bounds": [-1.0, 1.0], "bins": 8},
    ]})
    rng = np.random.default_rng(1)
    codes = np.stack([rng.integers(0, 4, 5000), rng.integers(0, 8, 5000)], axis=1)
    back = decode(codes, schema, rng)
    np.testing.assert_array_equal(encode(back.astype(str), schema), codes)
    assert back["i"].between(0, 99).all() and back["f"].between(-1, 1).all()
    assert (back["i"][codes[:, 0] == 0] == 0).all()
    assert back["i"][codes[:, 0] == 3].max() == 99 or (codes[:, 0] == 3).sum() < 100


def test_encoding_learns_nothing_from_the_rows(schema):
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"c": rng.choice(["x", "y"], 300), "n": rng.integers(0, 11, 300).astype(str),
                         "f": rng.random(300).round(3).astype(str)})
    full = encode(data, schema)
    for idx in (np.arange(10), np.arange(150, 300), np.array([7])):
        np.testing.assert_array_equal(encode(data.iloc[idx].reset_index(drop=True), schema), full[idx])
