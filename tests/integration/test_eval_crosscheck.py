"""`dpsynth eval`'s workload errors against a second implementation of the same metric.

The second implementation, ``tests/oracles/workload_error.py``, is written from the AIM paper's
definition and shares no code with :mod:`dpsynth.quality`, so it runs in a clean clone. When the
peers' script ``shared/peers/workload_error.py`` is beside the checkout, it is checked too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from oracles.workload_error import marginal_error, number_of_marginals, workload_error

from dpsynth.quality import fidelity
from dpsynth.schema import Schema

PEER = Path(__file__).resolve().parents[2].parent / "shared" / "peers" / "workload_error.py"
TOLERANCE = 1e-12


def _as_oracle_sees_it(table: pd.DataFrame) -> pd.DataFrame:
    """The schema's missing values (``NaN`` and, by default, the empty string) as ``NaN``."""
    return table.mask(table == "")


def _assert_matches_the_oracle(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    ours = fidelity(real, synthetic, schema)
    r, s, names = _as_oracle_sees_it(real), _as_oracle_sees_it(synthetic), schema.names
    assert (ours["real_rows"], ours["synthetic_rows"]) == (len(real), len(synthetic))
    for k in (1, 2, 3):
        expected = workload_error(r, s, names, k)
        assert ours[f"n_{k}way"] == number_of_marginals(names, k)
        assert ours[f"sampled_{k}way"] is False
        if expected is None:
            assert ours[f"l1_{k}way"] is None
        else:
            assert ours[f"l1_{k}way"] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)
    for name in names:
        assert ours["tvd"][name] == pytest.approx(0.5 * marginal_error(r, s, [name]), rel=TOLERANCE, abs=TOLERANCE)
    return ours


def _random_case(seed: int, n_columns: int) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """A schema of categorical columns and two tables of unequal lengths drawn under it.

    Column 0 has a single level; column 1 is nullable, with missing values written as ``NaN`` and
    as empty strings; the synthetic table never uses some levels that the real one does (and the
    other way round), so many marginal cells are empty in one table or both.
    """
    rng = np.random.default_rng(seed)
    levels = [["only"]] + [[f"v{j}_{i}" for i in range(int(rng.integers(2, 6)))] for j in range(1, n_columns)]
    columns = [
        {"name": f"c{j}", "kind": "categorical", "levels": lv, "nullable": j == 1} for j, lv in enumerate(levels)
    ]
    schema = Schema.from_dict({"version": 1, "columns": columns})

    def draw(n: int, dropped: int) -> pd.DataFrame:
        out: dict[str, np.ndarray] = {}
        for j, lv in enumerate(levels):
            kept = lv if len(lv) == 1 else [v for i, v in enumerate(lv) if i != dropped % len(lv)]
            values = rng.choice(np.array(kept, dtype=object), size=n)
            if j == 1:
                values[rng.random(n) < 0.1] = np.nan
                values[rng.random(n) < 0.1] = ""
            out[f"c{j}"] = values
        return pd.DataFrame(out)

    real_rows, synthetic_rows = int(rng.integers(50, 400)), int(rng.integers(1, 120))
    return draw(real_rows, dropped=0), draw(synthetic_rows, dropped=1), schema


@pytest.mark.parametrize(("seed", "n_columns"), [(0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7)])
def test_workload_errors_match_the_oracle_on_random_tables(seed: int, n_columns: int) -> None:
    real, synthetic, schema = _random_case(seed, n_columns)
    ours = _assert_matches_the_oracle(real, synthetic, schema)
    assert ours["l1_1way"] > 0  # the tables differ: the comparison is not 0 == 0


def test_a_table_against_itself_has_no_error() -> None:
    real, _, schema = _random_case(6, 4)
    ours = _assert_matches_the_oracle(real, real.copy(), schema)
    assert (ours["l1_1way"], ours["l1_2way"], ours["l1_3way"]) == (0.0, 0.0, 0.0)


def test_a_private_pgm_domain_with_a_single_level_column() -> None:
    rng = np.random.default_rng(7)
    domain = {"a": 3, "b": 1, "c": 6, "d": 2}
    real = pd.DataFrame({c: rng.integers(0, k, 333) for c, k in domain.items()}).astype(str)
    synthetic = pd.DataFrame({c: rng.integers(0, max(k - 1, 1), 41) for c, k in domain.items()}).astype(str)
    _assert_matches_the_oracle(real, synthetic, Schema.from_domain(domain))


@pytest.mark.skipif(not PEER.exists(), reason="shared/peers/workload_error.py is not beside the checkout")
def test_workload_errors_match_the_peer_script(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    domain = {"a": 3, "b": 5, "c": 2, "d": 4}
    real = pd.DataFrame({c: rng.integers(0, k, 500) for c, k in domain.items()})
    fake = pd.DataFrame({c: rng.integers(0, k, 300) for c, k in domain.items()})
    paths = {name: tmp_path / f"{name}.csv" for name in ("real", "fake")}
    real.to_csv(paths["real"], index=False)
    fake.to_csv(paths["fake"], index=False)
    (tmp_path / "domain.json").write_text(json.dumps(domain))
    proc = subprocess.run(
        [sys.executable, str(PEER), str(paths["real"]), str(tmp_path / "domain.json"), str(paths["fake"]), "--json"],
        capture_output=True, text=True, check=True,
    )
    theirs = json.loads(proc.stdout)
    ours = fidelity(real.astype(str), fake.astype(str), Schema.from_domain(domain))
    for k in (1, 2, 3):
        assert ours[f"l1_{k}way"] == pytest.approx(theirs[f"l1_{k}way_mean"], rel=1e-12)
        assert ours[f"n_{k}way"] == theirs[f"n_{k}way"]
        assert workload_error(real, fake, list(domain), k) == pytest.approx(theirs[f"l1_{k}way_mean"], rel=1e-12)
