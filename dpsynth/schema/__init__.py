"""Public metadata: column kinds, levels, bounds and bins; encoding and decoding by schema only;
a schema learned from the data with DP (``infer_schema``) or, as a named opt-in, without it."""

from typing import Any

from dpsynth.schema.encode import decode, encode
from dpsynth.schema.schema import Column, Schema, load_schema

__all__ = ["Column", "Schema", "decode", "encode", "infer_schema", "load_schema", "read_schema_without_privacy"]


def __getattr__(name: str) -> Any:
    # The inference pulls in the mechanisms; load it only when asked for.
    if name in ("infer_schema", "read_schema_without_privacy"):
        from dpsynth.schema import infer

        return getattr(infer, name)
    raise AttributeError(f"module 'dpsynth.schema' has no attribute {name!r}")
