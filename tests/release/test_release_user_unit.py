"""The whole release road at the user privacy unit, on the bundled multi-row-per-person table: the
default policy's checks with every sensitivity scaled by K, canaries that are people, the key never in
an artifact, and what cannot honour the unit refused before anything is charged or written.

Deterministic: seeded noise (the policy is the default one with secure noise not required).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpsynth import PrivacyUnit
from dpsynth.cli import main
from dpsynth.datasets import load_people, people_path, people_schema_path
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger, LedgerError
from dpsynth.release import release

K = 4


@pytest.fixture
def env(tmp_path):
    default = Path(__file__).parents[2] / "dpsynth" / "release" / "policies" / "default.yaml"
    policy = tmp_path / "policy.yaml"
    policy.write_text(default.read_text().replace("require_secure_noise: true", "require_secure_noise: false"))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    led = Ledger(url, create=True)
    led.create_dataset("people", ApproxDP(20.0, 1e-5), unit=f"user:{K}")
    led.create_dataset("rows", ApproxDP(20.0, 1e-5))
    return tmp_path, policy, url


def run(env, **over):
    root, policy, url = env
    kwargs = dict(data=people_path(), schema=people_schema_path(), synthesizer="mst", epsilon=1.0, delta=1e-9,
                  ledger=url, dataset="people", policy=policy, out=root / "out", insecure_seed=7,
                  synthesizer_params={"estimation_iters": 300})
    kwargs.update(over)
    return release(**kwargs)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_people_table_is_released_at_the_user_unit_with_every_sensitivity_scaled(env):
    result = run(env)
    assert result.status == "released", result.reasons
    report = result.report
    assert report["release"]["privacy_unit"] == "add/remove one person with up to 4 rows"
    assert report["ledger"]["after"]["unit_description"] == "add/remove one person with up to 4 rows"
    ids = {c["id"]: c["status"] for c in report["checks"]}
    assert ids["audit.violation"] == ids["audit.replay"] == ids["replay.exact_rows"] == "pass"
    assert ids["fidelity.l1_1way"] == ids["fidelity.l1_2way"] == "pass"
    # every Gaussian of the fit and of the DP checks declares K times its row-level sensitivity
    entries = Ledger(env[2]).statement("people").reservations
    assert [r.synthesizer for r in entries] == ["mst", "release-checks"]
    dp = report["evidence"]["dp_checks"]["plan"]["measurements"]
    assert {m["name"]: m["l2_sensitivity"] for m in dp} == {"rows": K, "fidelity.1way": 16 * K,
                                                           "fidelity.2way": 16 * K, "replay.exact_rows.reference": K,
                                                           "replay.exact_rows.baseline": K}
    # the canary audit and the record/replay checks worked on people
    assert "person" in next(c for c in report["checks"] if c["id"] == "audit.replay")["detail"]
    # the key: never synthesised, never in an artifact
    people, _ = load_people()
    synthetic = (result.publish / "synthetic.csv").read_text()
    assert synthetic.splitlines()[0].split(",")[0] == "age" and "person_id" not in synthetic
    keys = set(people["person_id"])
    for path in (result.out).rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(k in text for k in list(keys)[:200]), path.name


@pytest.mark.parametrize("case,error,words", [
    ("row_dataset", LedgerError, "registered with privacy unit 'row'"),
    ("larger_k", LedgerError, "registered with privacy unit 'user:4'"),
    ("dpvae", ParameterError, "does not support the privacy unit user:4"),
    ("missing_key", DataError, "column 'person_id', row 3: the person key is missing"),
])
def test_what_cannot_honour_the_unit_is_refused_before_any_charge(env, case, error, words, monkeypatch):
    from dpsynth.synth.dpsgd.vae import DPVAE

    monkeypatch.setattr(DPVAE, "user_level", False)  # a synthesizer that does not declare the user unit
    root = env[0]
    over: dict = {}
    if case == "row_dataset":
        over["dataset"] = "rows"
    elif case == "larger_k":
        over["privacy_unit"] = PrivacyUnit.users("person_id", max_rows=8)
    elif case == "dpvae":
        over.update(synthesizer="dpvae", synthesizer_params={}, rows=100)
    else:
        people, _ = load_people()
        people.loc[2, "person_id"] = ""
        over["data"] = people
    before = files(root)
    with pytest.raises(error, match=words):
        run(env, **over)
    assert files(root) == before
    assert Ledger(env[2]).statement("people").reservations == [] and Ledger(env[2]).statement("rows").reservations == []


def test_the_cli_releases_with_a_smaller_k_than_registered(env, capsys):
    root, policy, url = env
    argv = ["release", "--data", str(people_path()), "--schema", str(people_schema_path()), "--synthesizer", "mst",
            "--epsilon", "1", "--delta", "1e-9", "--ledger", url, "--dataset", "people", "--policy", str(policy),
            "--out", str(root / "cli"), "--insecure-seed", "7", "--param", "estimation_iters=300", "--json",
            "--user-column", "person_id", "--max-rows-per-user", "2"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "released"
    report = json.loads((root / "cli" / "internal" / "report.json").read_text())
    assert report["release"]["privacy_unit"] == "add/remove one person with up to 2 rows"


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_an_engine_bounds_each_person_and_gives_the_in_memory_figures(env, engine, request):
    """The fit counts the bounded table in the engine and the DP checks read a view of the kept rows
    there (the same rule): the same seeded synthetic table, row count and fidelity figures as in memory."""
    if engine == "spark":
        request.getfixturevalue("spark")
    root = env[0]
    memory = run(env, out=root / "numpy")
    engined = run(env, out=root / engine, engine=engine)
    assert memory.status == engined.status == "released", (memory.reasons, engined.reasons)
    a, b = (r.report["evidence"]["dp_checks"] for r in (memory, engined))
    assert a["rows"] == b["rows"] and a["fidelity"] == b["fidelity"]
    assert [m["l2_sensitivity"] for m in a["measurements"]] == [m["l2_sensitivity"] for m in b["measurements"]]
    assert (memory.publish / "synthetic.csv").read_bytes() == (engined.publish / "synthetic.csv").read_bytes()
    assert engined.report["release"]["engine"]["engine"] == engine
