"""Monthly snapshots of the bundled Adult table: a public split, one planted drift, the same bytes each call."""

from __future__ import annotations

import pandas as pd
import pytest

from dpsynth.datasets import adult_snapshots, load_adult
from dpsynth.exceptions import ParameterError
from dpsynth.quality.drift import table_drift

NAMES = ["adult-2026-01.csv", "adult-2026-02.csv", "adult-2026-03.csv"]


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snapshots")
    return adult_snapshots(folder), adult_snapshots(folder / "undrifted", drift_month=None)


def test_three_dated_months_the_same_bytes_every_call(snapshots, tmp_path):
    paths, _ = snapshots
    assert [p.name for p in paths] == NAMES
    again = adult_snapshots(tmp_path)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_the_months_split_the_bundled_table(snapshots):
    """Undrifted, the months are a partition of the bundled rows (by a hash of each row's position)."""
    _, plain = snapshots
    months = [_read(p) for p in plain]
    assert [len(m) for m in months] == [10921, 10774, 10866]
    adult, _ = load_adult()
    key = list(adult.columns)
    joined = pd.concat(months).sort_values(key).reset_index(drop=True)
    assert joined.equals(adult.sort_values(key).reset_index(drop=True))


def test_the_planted_drift_is_as_documented(snapshots):
    paths, plain = snapshots
    months = [_read(p) for p in paths]
    undrifted = _read(plain[2])
    assert [m.equals(_read(p)) for m, p in zip(months[:2], plain[:2], strict=True)] == [True, True]
    changed = months[2].ne(undrifted)
    assert list(changed.any()[lambda s: s].index) == ["income"] and int(changed["income"].sum()) == 2129
    assert set(undrifted.loc[changed["income"], "income"]) == {"<=50K"}
    _, schema = load_adult()
    planted = table_drift(undrifted, months[2], schema)["columns"]["income"]["tvd"]
    assert round(planted, 4) == 0.1959
    two_three = table_drift(months[1], months[2], schema)
    assert round(two_three["columns"]["income"]["tvd"], 4) == 0.1974 and two_three["columns"]["income"]["above_noise"]
    assert [n for n, e in two_three["columns"].items() if e["above_noise"]] == ["income"]


def test_months_one_and_two_do_not_drift(snapshots):
    """Months 1 and 2: every column's TVD (on the schema's codes) at most 0.021, every pair's at most 0.07,
    and none above its sampling noise floor."""
    paths, _ = snapshots
    _, schema = load_adult()
    drift = table_drift(_read(paths[0]), _read(paths[1]), schema)
    assert round(drift["columns"]["income"]["tvd"], 4) == 0.0042
    assert max(e["tvd"] for e in drift["columns"].values()) <= 0.021
    assert max(e["tvd"] for e in drift["pairs"].values()) <= 0.07
    assert not any(e["above_noise"] for part in ("columns", "pairs") for e in drift[part].values())


def test_names_follow_the_start_month_and_bad_arguments_are_refused(tmp_path):
    paths = adult_snapshots(tmp_path, months=2, drift_month=None, start="2025-12")
    assert [p.name for p in paths] == ["adult-2025-12.csv", "adult-2026-01.csv"]
    with pytest.raises(ParameterError, match="drift_month"):
        adult_snapshots(tmp_path, months=2, drift_month=3)
    with pytest.raises(ParameterError, match="YYYY-MM"):
        adult_snapshots(tmp_path, start="2026-13")
    with pytest.raises(ParameterError, match="income_share"):
        adult_snapshots(tmp_path, income_share=2)
