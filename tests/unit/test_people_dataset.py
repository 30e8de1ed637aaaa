"""The bundled multi-row-per-person table: Adult's rows unchanged, a synthetic person id, as documented,
and exactly what its generator makes."""

from __future__ import annotations

import pandas as pd

from dpsynth.datasets import load_adult, load_people
from dpsynth.datasets.people_make import MAX_ROWS, make


def test_the_people_table_is_adult_with_a_skewed_person_id():
    people, schema = load_people()
    adult, adult_schema = load_adult()
    assert list(people.columns) == ["person_id", *adult.columns]
    assert schema.privacy_unit.label == "user:4" and schema.privacy_unit.column == "person_id"
    assert schema.names == adult_schema.names
    rows = people.drop(columns="person_id")
    key = list(adult.columns)
    assert rows.sort_values(key).reset_index(drop=True).equals(adult.sort_values(key).reset_index(drop=True))
    counts = people["person_id"].value_counts()
    assert (len(counts), int(counts.max()), float(counts.median())) == (7638, MAX_ROWS, 3.0)
    assert round(float((counts > 4).mean()), 3) == 0.269


def test_the_shipped_file_is_what_the_generator_makes():
    people, _ = load_people()
    adult, _ = load_adult()
    pd.testing.assert_frame_equal(make(adult), people)
