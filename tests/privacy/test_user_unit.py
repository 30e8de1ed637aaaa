"""The user privacy unit (one person with up to K rows): contribution bounding, scaled sensitivities,
replay on neighbours that differ by one person, and the ledger's unit rules.

Deterministic: seeded tables and seeded noise; no statistical failure probability.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED, PrivacyUnit
from dpsynth.audit.replay import replay_check
from dpsynth.exceptions import DataError, ParameterError, SchemaError
from dpsynth.marginals.bounding import bound_contributions
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.ledger import Ledger, LedgerError
from dpsynth.schema import Schema
from dpsynth.schema.encode import decode
from dpsynth.synth import MST
from dpsynth.synth.aim import AIM

K = 4
BASE = Schema.from_domain({"a": 2, "b": 3, "c": 2})
SCHEMA = BASE.with_unit(PrivacyUnit.users("pid", max_rows=K))


def table(codes: np.ndarray, keys: list[str]) -> pd.DataFrame:
    frame = decode(np.asarray(codes, dtype=np.int64), BASE, np.random.default_rng(0))
    frame["pid"] = keys
    return frame


def person_pairs(seed: int = 0) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Neighbouring tables that differ by one whole person: 12 people with 1-7 rows each (some above K),
    and the same plus one person with 7 identical rows at the last code (the worst case: K rows kept
    in one cell of every marginal), or with random rows; and the removal."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(BASE.sizes)
    counts = rng.integers(1, 8, size=12)
    codes = rng.integers(0, sizes, size=(int(counts.sum()), len(sizes)))
    keys = [f"p{i}" for i, c in enumerate(counts) for _ in range(c)]
    worst = np.repeat((sizes - 1)[None, :], 7, axis=0)
    other = rng.integers(0, sizes, size=(6, len(sizes)))
    base = table(codes, keys)
    return {
        "person_of_identical_rows_added": (base, table(np.vstack([codes, worst]), [*keys, *["new"] * 7])),
        "random_person_removed": (table(np.vstack([codes, other]), [*keys, *["new"] * 6]), base),
    }


def make_mst() -> MST:
    return MST(epsilon=1.0, delta=1e-2, estimation_iters=50)


def make_aim() -> AIM:
    return AIM(epsilon=1.0, delta=1e-2, max_rounds=6, estimation_iters=30)


def test_the_unit_value_parses_labels_and_describes_itself():
    unit = PrivacyUnit.users("pid", max_rows=3)
    assert (unit.label, unit.sensitivity, unit.is_user) == ("user:3", 3, True)
    assert unit.describe() == "add/remove one person with up to 3 rows"
    assert PrivacyUnit.parse("user:1").label == "user:1" and PrivacyUnit.parse("user:1").is_user
    assert PrivacyUnit.parse("row") is PrivacyUnit.rows() and not PrivacyUnit.rows().is_user
    assert PrivacyUnit.parse("user:2").fits_within(PrivacyUnit.parse("user:3"))
    assert not PrivacyUnit.parse("user:4").fits_within(PrivacyUnit.parse("user:3"))
    assert not PrivacyUnit.parse("row").fits_within(PrivacyUnit.parse("user:3"))
    assert not PrivacyUnit.parse("user:1").fits_within(PrivacyUnit.parse("row"))
    for bad in ("user:0", "users:3", "household", ""):
        with pytest.raises(ParameterError, match="must be 'row' or 'user:K'"):
            PrivacyUnit.parse(bad)
    with pytest.raises(ParameterError, match=r"max_rows \(0\) must be an integer"):
        PrivacyUnit.users("pid", max_rows=0)


def test_the_schema_declares_the_unit_and_keeps_the_key_out_of_its_columns():
    assert Schema.from_dict(SCHEMA.to_dict()).to_dict() == SCHEMA.to_dict()
    assert Schema.from_dict(SCHEMA.to_dict()).privacy_unit == SCHEMA.privacy_unit
    assert SCHEMA.to_dict()["privacy_unit"] == {"column": "pid", "max_rows": K}
    assert "privacy_unit" not in BASE.to_dict()
    with pytest.raises(SchemaError, match="privacy_unit column 'a' is also a column"):
        BASE.with_unit(PrivacyUnit.users("a", max_rows=2))
    spec = {**BASE.to_dict(), "privacy_unit": {"column": "pid"}}
    with pytest.raises(SchemaError, match="privacy_unit must be a mapping with exactly 'column'"):
        Schema.from_dict(spec)
    spec["privacy_unit"] = {"column": "pid", "max_rows": -1}
    with pytest.raises(SchemaError, match=r"privacy_unit: max_rows \(-1\) must be"):
        Schema.from_dict(spec)


def test_bounding_keeps_at_most_k_rows_a_person_by_a_rule_blind_to_other_people():
    rng = np.random.default_rng(1)
    keys = pd.Series([f"p{i}" for i in rng.integers(0, 30, size=400)])
    codes = rng.integers(0, 3, size=(400, 3))
    kept = bound_contributions(keys, codes, K)
    per_person = keys.iloc[kept].value_counts()
    assert per_person.max() <= K
    assert set(per_person.index) == set(keys)  # nobody vanishes
    assert all(per_person[p] == min(K, n) for p, n in keys.value_counts().items())
    # another person added, and the rows shuffled: every earlier person keeps the same rows
    order = rng.permutation(400)
    more_keys = pd.concat([keys.iloc[order], pd.Series(["new"] * 9)], ignore_index=True)
    more_codes = np.vstack([codes[order], rng.integers(0, 3, size=(9, 3))])
    kept_again = bound_contributions(more_keys, more_codes, K)

    def rows_of(k: pd.Series, c: np.ndarray, idx: np.ndarray) -> list[tuple]:
        return sorted((k.iloc[i], *c[i].tolist()) for i in idx if k.iloc[i] != "new")

    assert rows_of(keys, codes, kept) == rows_of(more_keys, more_codes, kept_again)


@pytest.mark.parametrize("make", [make_mst, make_aim], ids=["mst", "aim"])
def test_replay_on_neighbours_that_differ_by_one_person_stays_within_the_declared_sensitivities(make):
    report = replay_check(make, SCHEMA, pairs=person_pairs())
    assert report.passed, report.failures()


def test_a_sensitivity_not_scaled_by_k_is_caught(monkeypatch):
    monkeypatch.setattr(PrivacyUnit, "sensitivity", property(lambda self: max(1, self.max_rows // 2)))
    report = replay_check(make_mst, SCHEMA, pairs=person_pairs())
    assert not report.passed
    assert any("sensitivity" in f and "exceed" in f for f in report.failures())


def whitebox_pair() -> tuple[Schema, pd.DataFrame, pd.DataFrame]:
    """The worst case: ten people of one all-zero row each, and the same plus one person with K identical
    all-ones rows (every kept row of the new person in one cell of every marginal)."""
    from dpsynth.audit.replay import neighbouring_pairs

    binary = Schema.from_domain({"a": 2, "b": 2, "c": 2})
    zeros, with_ones = neighbouring_pairs(binary, rows=10)["constant_plus_outlier"]
    before = zeros.assign(pid=[f"p{i}" for i in range(10)])
    after = pd.concat([before, pd.concat([with_ones.iloc[[10]]] * K).assign(pid="new")], ignore_index=True)
    return binary.with_unit(PrivacyUnit.users("pid", max_rows=K)), before, after


def test_a_whitebox_audit_of_one_person_with_k_identical_rows_stays_within_the_claim_and_flags_row_noise(
        monkeypatch):
    """Seeded noise per transcript (deterministic: no false-failure probability in CI). With row-level
    noise (sensitivity 1 while each person keeps K = 4 rows) the transcript's μ is 4 × the Gaussian
    part's: 300 transcripts a world show μ ≥ 1.05 against the claim's 0.4548."""
    from dpsynth.audit.whitebox import whitebox_audit

    schema, before, after = whitebox_pair()
    claim = {"claimed_epsilon": 1.0, "claimed_delta": 1e-2}
    correct = whitebox_audit(make_mst, schema, before, after, trials_per_world=15, noise="seeded", **claim)
    assert not correct.violation and correct.epsilon_lower_bound < 1.0
    monkeypatch.setattr(PrivacyUnit, "sensitivity", property(lambda self: 1))
    row_noise = whitebox_audit(make_mst, schema, before, after, trials_per_world=300, noise="seeded", **claim)
    assert row_noise.violation and row_noise.mu_lower_bound > 2 * row_noise.claimed_mu


def test_the_ledger_composes_by_unit(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("people", ApproxDP(10.0, 1e-3), unit=PrivacyUnit.parse(f"user:{K}"))
    ledger.create_dataset("rows", ApproxDP(10.0, 1e-3))
    data = person_pairs()["person_of_identical_rows_added"][1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_mst().fit(data, schema=SCHEMA, ledger=ledger, dataset="people")
        make_mst().fit(data, schema=BASE.with_unit(PrivacyUnit.users("pid", max_rows=2)), ledger=ledger,
                       dataset="people")
    with pytest.raises(LedgerError, match=r"registered with privacy unit 'user:4'.*up to 8 rows.*at most the "):
        make_mst().fit(data, schema=BASE.with_unit(PrivacyUnit.users("pid", max_rows=8)), ledger=ledger,
                       dataset="people")
    with pytest.raises(LedgerError, match="registered with privacy unit 'user:4'"):
        make_mst().fit(data.drop(columns=["pid"]), schema=BASE, ledger=ledger, dataset="people")
    with pytest.raises(LedgerError, match="registered with privacy unit 'row'"):
        make_mst().fit(data, schema=SCHEMA, ledger=ledger, dataset="rows")
    statement = ledger.statement("people").to_dict()
    assert statement["unit_description"] == "add/remove one person with up to 4 rows"
    assert statement["releases"] == 2


def test_what_cannot_honour_the_unit_is_refused_before_anything_is_reserved(tmp_path):
    from dpsynth.synth.dpsgd.vae import DPVAE

    class RowsOnly(DPVAE):  # a synthesizer that does not declare user_level (plug-ins, for one)
        user_level = False

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("people", ApproxDP(10.0, 1e-3), unit=f"user:{K}")
    data = person_pairs()["person_of_identical_rows_added"][1]
    with pytest.raises(ParameterError, match="does not support the privacy unit user:4"):
        RowsOnly(epsilon=1.0, delta=1e-5).fit(data, schema=SCHEMA, ledger=ledger, dataset="people")
    missing = data.copy()
    missing.loc[3, "pid"] = None
    with pytest.raises(DataError, match=r"^column 'pid', row 4: the person key is missing \(1 row\(s\)\)"):
        make_mst().fit(missing, schema=SCHEMA, ledger=ledger, dataset="people")
    with pytest.raises(DataError, match="data has no column 'pid'"):
        make_mst().fit(data.drop(columns=["pid"]), schema=SCHEMA, ledger=ledger, dataset="people")
    assert ledger.statement("people").to_dict()["releases"] == 0


def test_the_key_is_never_synthesised():
    data = person_pairs()["person_of_identical_rows_added"][1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MST(epsilon=1.0, delta=1e-2, estimation_iters=50, insecure_seed=0).fit(
            data, schema=SCHEMA, ledger=UNTRACKED)
    assert list(model.sample(20, random_state=0).columns) == BASE.names
    assert model.unit_ == SCHEMA.privacy_unit


def test_the_cli_fits_at_the_user_unit_and_refuses_a_missing_key(tmp_path):
    import json
    import subprocess
    import sys

    data = person_pairs()["person_of_identical_rows_added"][1]
    path = tmp_path / "people.csv"
    data.to_csv(path, index=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(BASE.to_dict()))
    base = [sys.executable, "-m", "dpsynth", "fit", "--data", str(path), "--schema", str(schema), "--epsilon", "1",
            "--delta", "1e-6", "--rows", "30", "--no-ledger", "--param", "estimation_iters=50"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=300)

    out = tmp_path / "synthetic.csv"
    proc = run("--out", str(out), "--user-column", "pid", "--max-rows-per-user", str(K), "--json")
    assert proc.returncode == 0, proc.stderr
    assert list(pd.read_csv(out).columns) == BASE.names  # the key is not synthesised
    proc = run("--out", str(tmp_path / "x.csv"), "--user-column", "pid")
    assert proc.returncode == 2 and "--user-column and --max-rows-per-user must be given together" in proc.stderr
    missing = data.copy()
    missing.loc[5, "pid"] = ""
    missing.to_csv(path, index=False)
    proc = run("--out", str(tmp_path / "y.csv"), "--user-column", "pid", "--max-rows-per-user", str(K))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "column 'pid', row 6: the person key is missing" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "y.csv").exists()


def test_dp_bin_edges_are_chosen_on_the_bounded_rows_with_scores_scaled_by_k():
    """A column whose bin edges are DP quantiles: the quantile scores move by at most K between tables
    that differ by one person (who has more rows than K, all at the top of the range)."""
    spec = {"columns": [{"name": "a", "kind": "categorical", "levels": ["x", "y"]},
                        {"name": "n", "kind": "integer", "bounds": [0, 100], "bins": {"dp_quantiles": 3}}],
            "privacy_unit": {"column": "pid", "max_rows": 3}}
    schema = Schema.from_dict(spec)
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"a": rng.choice(["x", "y"], 40), "n": rng.integers(0, 60, 40).astype(str),
                         "pid": [f"p{i % 15}" for i in range(40)]})
    person = pd.DataFrame({"a": ["y"] * 6, "n": ["100"] * 6, "pid": ["new"] * 6})
    pairs = {"person_added": (base, pd.concat([base, person], ignore_index=True))}
    report = replay_check(make_mst, schema, pairs=pairs)
    assert report.passed, report.failures()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_mst().fit(pairs["person_added"][1], schema=schema, ledger=UNTRACKED)
    quantiles = [e for e in model.privacy_events_ if e.label == "dp_quantile"]
    assert len(quantiles) == 2 and all(e.sensitivity == 3.0 for e in quantiles)
