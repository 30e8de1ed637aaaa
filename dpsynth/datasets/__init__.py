"""Bundled public data for the demo and the tests: UCI Adult with its hand-written schema, and the same
rows with a synthetic person id (``people``: many rows a person, for the user privacy unit)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from dpsynth.datasets.snapshots import adult_snapshots
from dpsynth.schema import Schema, load_schema


def _bundled(folder: str, name: str) -> Path:
    return Path(str(resources.files("dpsynth.datasets") / folder / name))


def _load(table: Path, schema: Path) -> tuple[pd.DataFrame, Schema]:
    """A bundled table as text, like any CSV dpsynth reads, and its public schema."""
    return pd.read_csv(table, dtype=str, keep_default_na=False), load_schema(schema)


def adult_path() -> Path:
    """Path of the bundled Adult table (gzip-compressed CSV)."""
    return _bundled("adult", "adult.csv.gz")


def adult_schema_path() -> Path:
    """Where the bundled Adult table's public schema (YAML) is."""
    return _bundled("adult", "schema.yaml")


def load_adult() -> tuple[pd.DataFrame, Schema]:
    """The bundled Adult table (as text, like any CSV dpsynth reads) and its public schema."""
    return _load(adult_path(), adult_schema_path())


def people_path() -> Path:
    """Path of the bundled multi-row-per-person table (gzip CSV: Adult's rows and a synthetic ``person_id``)."""
    return _bundled("people", "people.csv.gz")


def people_schema_path() -> Path:
    """Where its public schema is (Adult's, with ``privacy_unit: {column: person_id, max_rows: 4}``)."""
    return _bundled("people", "schema.yaml")


def load_people() -> tuple[pd.DataFrame, Schema]:
    """The bundled multi-row-per-person table (as text) and its public schema (a user privacy unit)."""
    return _load(people_path(), people_schema_path())


__all__ = ["adult_path", "adult_schema_path", "adult_snapshots", "load_adult", "load_people", "people_path",
           "people_schema_path"]
