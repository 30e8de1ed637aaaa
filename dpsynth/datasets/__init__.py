"""Bundled public data for the demo and the tests: UCI Adult with its hand-written schema, and the same
rows with a synthetic person id (``people``: many rows a person, for the user privacy unit)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from dpsynth.schema import Schema, load_schema


def adult_path() -> Path:
    """Path of the bundled Adult table (gzip-compressed CSV)."""
    return Path(str(resources.files("dpsynth.datasets") / "adult" / "adult.csv.gz"))


def adult_schema_path() -> Path:
    """Where the bundled Adult table's public schema (YAML) is."""
    return Path(str(resources.files("dpsynth.datasets") / "adult" / "schema.yaml"))


def load_adult() -> tuple[pd.DataFrame, Schema]:
    """The bundled Adult table (as text, like any CSV dpsynth reads) and its public schema."""
    df = pd.read_csv(adult_path(), dtype=str, keep_default_na=False)
    return df, load_schema(adult_schema_path())


def people_path() -> Path:
    """Path of the bundled multi-row-per-person table (gzip CSV: Adult's rows and a synthetic ``person_id``)."""
    return Path(str(resources.files("dpsynth.datasets") / "people" / "people.csv.gz"))


def people_schema_path() -> Path:
    """Where its public schema is (Adult's, with ``privacy_unit: {column: person_id, max_rows: 4}``)."""
    return Path(str(resources.files("dpsynth.datasets") / "people" / "schema.yaml"))


def load_people() -> tuple[pd.DataFrame, Schema]:
    """The bundled multi-row-per-person table (as text) and its public schema (a user privacy unit)."""
    df = pd.read_csv(people_path(), dtype=str, keep_default_na=False)
    return df, load_schema(people_schema_path())
