"""Public metadata: column kinds, levels, bounds and bins; encoding and decoding by schema only."""

from dpsynth.schema.encode import decode, encode
from dpsynth.schema.schema import Column, Schema, load_schema

__all__ = ["Column", "Schema", "decode", "encode", "load_schema"]
