"""The chunked Parquet output of ``fit --out x.parquet``: one file whose column types come from the public
schema (never from the first chunk), whatever each chunk happens to hold. Deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dpsynth.schema import Schema
from dpsynth.schema.encode import encode
from dpsynth.synth.streaming import parquet_fields, write_sampled

SCHEMA = Schema.from_dict({"version": 1, "missing_values": ["?"], "columns": [
    {"name": "a", "kind": "categorical", "levels": ["1", "2", "x"], "nullable": True},
    {"name": "age", "kind": "integer", "bounds": [0, 90], "bins": 10, "nullable": True},
    {"name": "v", "kind": "continuous", "bounds": [-4, 4], "bins": 8, "nullable": True},
    {"name": "d", "kind": "datetime", "bounds": ["2019-01-01", "2021-01-01"], "resolution": "day", "bins": 4,
     "nullable": True},
]})


class Chunky:
    """A fitted generator whose chunks change types: ints then floats with NaN, levels as numbers then
    text, no missing date then all missing."""

    name = "chunky"
    schema_ = SCHEMA

    def __init__(self) -> None:
        self.calls = 0

    def sample(self, n: int, random_state=None) -> pd.DataFrame:
        self.calls += 1
        rng = np.random.default_rng(self.calls)
        if self.calls == 1:
            return pd.DataFrame({"a": rng.choice([1, 2], n), "age": rng.integers(0, 90, n),
                                 "v": rng.normal(0, 1, n), "d": ["2020-01-01"] * n})
        return pd.DataFrame({"a": rng.choice(np.array(["x", None], dtype=object), n),
                             "age": np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 90, n).astype(float)),
                             "v": np.full(n, np.nan), "d": [None] * n})


def test_the_file_has_the_schemas_types_and_every_chunks_values(tmp_path):
    out = tmp_path / "s.parquet"
    write_sampled(Chunky(), 25, out, chunk_rows=10)
    table = pq.read_table(out)
    assert table.schema == pa.schema(parquet_fields(SCHEMA))
    assert [str(f.type) for f in table.schema] == ["string", "int64", "double", "string"]
    assert table.num_rows == 25
    frame = table.to_pandas()
    again = Chunky()
    chunks = pd.concat([again.sample(10), again.sample(10), again.sample(5)], ignore_index=True)
    chunks["a"] = chunks["a"].map(lambda v: None if pd.isna(v) else str(v))
    np.testing.assert_array_equal(encode(frame, SCHEMA), encode(chunks, SCHEMA))
    assert frame["age"].isna().sum() == chunks["age"].isna().sum() > 0
