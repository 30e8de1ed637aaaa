"""Targeted tables of a release and of a refresh: extra tables of the same fit under conditions on
public values (post-processing), checked before the charge, scanned and written only when released."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dpsynth.exceptions import ParameterError
from dpsynth.refresh import refresh
from dpsynth.release.manifest import verify_manifest
from tests.refresh.conftest import Series

HIGH = {"name": "high-income", "rows": 500, "conditions": {"income": ">50K"}}
MIX = {"name": "by-sex", "rows": 301, "conditions": {"sex": {"Female": 0.5, "Male": 0.5}}}


@pytest.mark.slow
def test_a_refresh_writes_its_targeted_tables(series: Series) -> None:
    led = series.register()
    series.arrive(1)
    series.write_plan(targeted=[HIGH, MIX])
    result = refresh(series.plan_path, progress=False)
    assert result.status == "released"
    publish = series.folder / "v0001" / "publish"
    high = pd.read_csv(publish / "targeted-high-income.csv", dtype=str, keep_default_na=False)
    mix = pd.read_csv(publish / "targeted-by-sex.csv", dtype=str, keep_default_na=False)
    assert len(high) == 500 and set(high["income"]) == {">50K"}
    assert len(mix) == 301 and sorted(mix["sex"].value_counts().tolist()) == [150, 151]  # largest remainder
    assert verify_manifest(publish) == []
    manifest = json.loads((publish / "manifest.json").read_text(encoding="utf-8"))
    assert {"targeted-high-income.csv", "targeted-by-sex.csv"} <= set(manifest["artifacts"])
    report = json.loads((publish / "report.json").read_text(encoding="utf-8"))
    assert [t["file"] for t in report["release"]["targeted"]] == ["targeted-high-income.csv", "targeted-by-sex.csv"]
    assert len(led.statement("adult").reservations) == 2  # the fit and its DP checks: the tables cost nothing


@pytest.mark.parametrize(("targeted", "words"), [
    ([{"name": "x", "rows": 10}], "exactly the keys name, rows, conditions"),
    ([{"name": "Bad Name", "rows": 10, "conditions": {"income": ">50K"}}], "targeted[0].name"),
    ([{"name": "x", "rows": 0, "conditions": {"income": ">50K"}}], "targeted[0].rows"),
    ([{"name": "x", "rows": 10, "conditions": {"income": "rich"}}], "column 'income'"),
    ([{"name": "x", "rows": 10, "conditions": {"salary": ">50K"}}], "must be a column of the schema"),
    ([HIGH, HIGH], "names another targeted table"),
])
def test_a_bad_targeted_table_is_refused_before_the_charge(series: Series, targeted: list[dict[str, object]],
                                                           words: str) -> None:
    led = series.register()
    series.arrive(1)
    series.write_plan(targeted=targeted)
    with pytest.raises(ParameterError) as err:
        refresh(series.plan_path, progress=False)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert led.statement("adult").reservations == []
    assert series.versions() == []
