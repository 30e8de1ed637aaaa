"""The release gate: one blocked release for each policy rule (overdraft, audit violation with a
broken synthesizer, injected PII, replayed rows, quality floor, caps, seeded noise), a passing
release with valid artifacts, bad input that charges and writes nothing, and the CLI's exit codes.

The table is small (400 rows, 5 columns) so that an MST fit takes milliseconds; the policies are
written per test from a base with short audits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dpsynth.cli import main
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.release import PolicyError, release, report_problems, verify_manifest

SCHEMA = {
    "version": 1,
    "columns": [
        {"name": "region", "kind": "categorical", "levels": ["north", "south", "east", "west"]},
        {"name": "plan", "kind": "categorical", "levels": ["basic", "plus", "pro"]},
        {"name": "churn", "kind": "categorical", "levels": ["no", "yes"]},
        {"name": "spend", "kind": "integer", "bounds": [0, 100000], "edges": [0, 100, 500, 1000, 5000, 100000]},
        {"name": "tenure", "kind": "integer", "bounds": [0, 120], "edges": [0, 12, 36, 60, 120]},
    ],
}
#: the one real row whose values must never appear outside the synthetic table
OUTLIER = {"region": "west", "plan": "pro", "churn": "yes", "spend": 98765, "tenure": 119}

BROKEN = '''
import pandas as pd
from dpsynth.synth.mst import MST


class CopiesRows(MST):
    """Broken on purpose: reserves MST's budget in the ledger, then returns its training rows as the
    "synthetic" table (whatever the number of rows asked for)."""

    def _fit_table(self, data, codes, schema, odometer, noise):
        self.rows_ = data.reset_index(drop=True).copy()
        self.secure_noise_ = bool(noise.secure)

    def sample(self, n_rows):
        return self.rows_.copy()


class DoubledMST(MST):
    """Broken on purpose: counts every row twice (its declared sensitivity 1 is half the real one)."""

    def _fit_codes(self, codes, schema, odometer, noise):
        import numpy as np

        return super()._fit_codes(np.concatenate([codes, codes]), schema, odometer, noise)


class LeaksEmails(MST):
    """Broken on purpose: its output carries a column of e-mail addresses."""

    def sample(self, n_rows):
        out = super().sample(n_rows)
        out["contact"] = [f"customer{i}@example.com" for i in range(n_rows)]
        return out
'''


def make_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n)
    plan = rng.choice(["basic", "plus"], n, p=[0.7, 0.3])
    churn = np.where(plan == "basic", rng.choice(["no", "yes"], n, p=[0.8, 0.2]), "no")
    table = pd.DataFrame({"region": region, "plan": plan, "churn": churn,
                          "spend": rng.integers(0, 900, n), "tenure": rng.integers(0, 60, n)})
    table.iloc[7] = list(OUTLIER.values())
    return table


BASE_POLICY = {
    "version": 1,
    "name": "test",
    "description": "short audits for tests",
    "privacy": {"max_epsilon": 3.0, "max_delta": 1e-5, "require_secure_noise": False},
    # the multi-fit audit: a 5-column table is too small for the canary audit to be conclusive
    # (tests/release/test_release_mutants.py runs the default canary audit on Adult)
    "audit": {"method": "multi_fit", "fits_per_world": 3, "canaries": 1, "outliers": 1, "reference_rows": None},
    "pii": {"forbidden_entities": ["EMAIL_ADDRESS", "CREDIT_CARD"], "ner": False},
    "replay": {"checks": ["exact_rows"], "alpha": 0.01},
    "fidelity": {"max_l1_1way": 0.5, "max_l1_2way": 1.0},
    # a 400-row table needs more than the shipped policies' ρ for checks this precise
    "decision": {"private_checks": "dp", "rho": 0.05},
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Files of one release: table, schema, a ledger with ε = 4 for 'crm', a broken-synthesizer module."""
    data = tmp_path / "crm.csv"
    make_table().to_csv(data, index=False)
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    (tmp_path / "broken_synths.py").write_text(BROKEN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("crm", ApproxDP(4.0, 1e-5))

    class Env:
        root = tmp_path

        def policy(self, name: str = "policy", **overrides) -> Path:
            spec = json.loads(json.dumps(BASE_POLICY))
            for key, value in overrides.items():
                spec[key] = value if not isinstance(value, dict) or spec.get(key) is None else {**spec[key], **value}
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump(spec), encoding="utf-8")
            return path

        def run(self, out: str = "out", **kwargs):
            args = dict(data=data, schema=schema, synthesizer="mst", epsilon=1.0, delta=1e-6, ledger=url,
                        dataset="crm", policy=kwargs.pop("policy", None) or self.policy(), out=tmp_path / out,
                        insecure_seed=1, progress=False, synthesizer_params={"estimation_iters": 100}, workers=1)
            args.update(kwargs)
            return release(**args)

        def releases(self) -> int:
            return Ledger(url, create=True).statement("crm").to_dict()["releases"]

    Env.data, Env.schema, Env.url = data, schema, url
    return Env()


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def _check(result, cid: str) -> dict:
    return next(c for c in result.report["checks"] if c["id"] == cid)


def _no_real_row(folder: Path) -> None:
    """The planted real outlier's unique value appears in no artifact other than the synthetic table
    (``folder`` is a release's ``out``: both its publish/ and internal/ folders are read)."""
    for sub in ("publish", "internal"):
        for name in ("report.json", "report.html", "manifest.json"):
            assert str(OUTLIER["spend"]) not in (folder / sub / name).read_text(encoding="utf-8"), (sub, name)


def test_a_passing_release_writes_every_artifact_and_charges_once(env):
    policy = env.policy(utility={"target": "churn", "min_score": 0.0},
                        audit={"fits_per_world": 2, "canaries": 1, "outliers": 0})
    result = env.run(target="churn", policy=policy)
    assert result.status == "released" and result.exit_code == 0 and result.reasons == []
    assert _files(result.out) == {"publish", "internal"}
    assert _files(result.publish) == {"synthetic.csv", "report.json", "report.html", "manifest.json"}
    assert _files(result.internal) == {"report.json", "report.html", "manifest.json"}
    report = json.loads((result.internal / "report.json").read_text(encoding="utf-8"))
    public = json.loads((result.publish / "report.json").read_text(encoding="utf-8"))
    assert report_problems(report) == [] and report_problems(public) == []
    assert (report["scope"], public["scope"]) == ("internal", "publishable")
    assert report["decision"]["status"] == "released" and report["decision"]["reasons"] == []
    assert report["decision"]["privacy"] == "dp" and public["decision"] == report["decision"]
    assert {c["status"] for c in report["checks"]} == {"pass"}
    ids = {c["id"] for c in report["checks"]}
    assert {"privacy.epsilon", "privacy.delta", "budget.ledger", "audit.violation", "pii.forbidden",
            "replay.exact_rows", "fidelity.l1_1way", "fidelity.l1_2way", "utility.score"} <= ids
    assert {c["reads"] for c in report["checks"]} <= {"public", "dp_output", "private_dp"}
    assert env.releases() == 2  # the fit and the DP checks: two reservations of one release
    assert report["ledger"]["before"]["releases"] == 0 and report["ledger"]["after"]["releases"] == 2
    assert report["ledger"]["entry_ids"] == [h["entry_id"] for h in report["ledger"]["history"][-2:]]
    assert report["ledger"]["history"][-1]["this_release"] is True
    assert report["inputs"]["data"]["name"] == "crm.csv"
    assert report["inputs"]["data"]["fingerprint"].startswith("hmac-sha256:")
    assert report["evidence"]["audit"]["method"] == "blackbox_membership_inference"
    assert {m["column"] for m in report["evidence"]["fidelity"]["marginals"]} == {c["name"] for c in SCHEMA["columns"]}
    assert not {"fidelity", "replay", "utility"} & set(public["evidence"]) and "seconds" not in public["release"]
    assert verify_manifest(result.publish) == [] and verify_manifest(result.internal) == []
    manifest = json.loads((result.publish / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["artifacts"]) == {"synthetic.csv", "report.json", "report.html"}
    assert manifest["scope"] == "publishable" and manifest["internal"]["publish"] is False
    assert manifest["ledger_entry_ids"] == report["ledger"]["entry_ids"]
    assert manifest["decision_privacy"] == "dp" and "differentially private" in manifest["decision_statement"]
    assert "RELEASED" in (result.publish / "report.html").read_text(encoding="utf-8").upper()
    assert len(pd.read_csv(result.publish / "synthetic.csv")) == report["release"]["rows"]
    assert report["release"]["rows_source"] == "dp_estimate"
    _no_real_row(result.out)
    (result.publish / "report.json").write_text("{}", encoding="utf-8")
    assert verify_manifest(result.publish) == ["report.json: SHA-256 differs from the manifest"]
    assert verify_manifest(result.internal) == ["../publish/report.json: SHA-256 differs from the manifest"]


def test_overdraft_is_refused_with_exit_3_and_nothing_charged(env):
    result = env.run(epsilon=5.0, policy=env.policy(privacy={"max_epsilon": 10.0}))
    assert result.status == "refused" and result.exit_code == 3
    assert result.reasons[0].startswith("budget.ledger") and "exceed" in result.reasons[0]
    assert env.releases() == 0
    assert _files(result.publish) == {"report.json", "report.html", "manifest.json"}
    report = json.loads((result.publish / "report.json").read_text(encoding="utf-8"))
    assert report_problems(report) == [] and report["ledger"]["after"] is None
    assert _check(result, "audit.violation")["status"] == "not_run"


def test_epsilon_above_the_policy_cap_is_blocked_before_anything_is_charged(env):
    result = env.run(epsilon=1.5, policy=env.policy(privacy={"max_epsilon": 1.0}))
    assert result.status == "blocked" and result.exit_code == 1
    assert [r.split(":")[0] for r in result.reasons] == ["privacy.epsilon"]
    assert env.releases() == 0 and "synthetic.csv" not in _files(result.publish)


def test_seeded_noise_is_blocked_when_the_policy_requires_secure_noise(env):
    result = env.run(policy=env.policy(privacy={"require_secure_noise": True}))
    assert result.status == "blocked" and _check(result, "privacy.secure_noise")["status"] == "fail"
    assert env.releases() == 0


def test_a_schema_read_without_privacy_is_blocked_unless_the_policy_allows_it(env, tmp_path):
    public = tmp_path / "public_schema.yaml"
    public.write_text(yaml.safe_dump({**SCHEMA, "provenance": {
        "method": "public", "opt_in": "schema_read_from_data_without_privacy"}}), encoding="utf-8")
    result = env.run(schema=public)
    assert result.status == "blocked" and _check(result, "privacy.opt_ins")["status"] == "fail"
    assert result.report["opt_ins"] == ["schema_read_from_data_without_privacy"]
    assert env.releases() == 0
    allowed = env.policy("allowing", audit=None, privacy={"allowed_opt_ins": ["schema_read_from_data_without_privacy"]})
    result = env.run(schema=public, policy=allowed, out="out2")
    assert result.released and result.report["opt_ins"] == ["schema_read_from_data_without_privacy"]


def test_a_broken_synthesizer_is_blocked_by_the_audit(env):
    """CopiesRows spends its budget honestly but samples its training rows: the black-box audit
    refutes ε = 0.1 and the release is blocked as an implementation defect."""
    policy = env.policy(audit={"fits_per_world": 8, "attacks": ["counting"]}, replay=None, pii=None, fidelity=None)
    result = env.run(synthesizer="broken_synths:CopiesRows", epsilon=0.1, policy=policy, rows=400)
    assert result.status == "blocked" and result.exit_code == 1
    check = _check(result, "audit.violation")
    assert check["status"] == "fail" and check["value"] > 0.1
    assert [r.split(":")[0] for r in result.reasons] == ["audit.violation"]
    assert "synthetic.csv" not in _files(result.publish)
    assert env.releases() == 1  # the fit ran and spent: a reservation is final
    _no_real_row(result.out)


def test_an_audit_too_small_to_refute_the_claim_blocks_when_the_policy_requires_power(env):
    policy = env.policy(audit={"fits_per_world": 2, "canaries": 1, "outliers": 0, "require_conclusive": True},
                        replay=None, pii=None, fidelity=None)
    result = env.run(policy=policy)
    assert result.status == "blocked"
    check = _check(result, "audit.power")
    assert check["status"] == "fail" and check["value"] == 0.0 and check["threshold"] == 1.0


def test_replayed_rows_are_blocked(env):
    """The DP form of the copy check (noisy counts at the test policy's ρ) blocks a generator that
    returns its training rows; so does the exact check under the named opt-in."""
    result = env.run(synthesizer="broken_synths:CopiesRows", policy=env.policy(audit=None, pii=None, fidelity=None),
                     rows=400)
    assert result.status == "blocked"
    check = _check(result, "replay.exact_rows")
    # every synthetic row is a real one; the reference is the 80% of real rows outside the baseline
    assert check["status"] == "fail" and check["reads"] == "private_dp"
    assert check["value"] > 0.5 and check["threshold"] < 0.3
    exact = env.run(synthesizer="broken_synths:CopiesRows", rows=400, out="exact", policy=env.policy(
        "exact", audit=None, pii=None, fidelity=None, decision={"private_checks": "without_privacy"}))
    check = _check(exact, "replay.exact_rows")
    assert check["status"] == "fail" and check["value"] >= 0.75 and check["threshold"] < 0.05
    assert check["reads"] == "private_not_dp" and exact.report["decision"]["privacy"] == "not_dp"
    assert "synthetic.csv" not in _files(result.publish)
    _no_real_row(result.out)


def test_injected_pii_is_blocked_and_reported_masked(env):
    result = env.run(synthesizer="broken_synths:LeaksEmails", policy=env.policy(audit=None, replay=None))
    assert result.status == "blocked"
    check = _check(result, "pii.forbidden")
    assert check["status"] == "fail" and check["value"] == ["EMAIL_ADDRESS"]
    for folder in (result.publish, result.internal):
        text = (folder / "report.json").read_text(encoding="utf-8") + (folder / "report.html").read_text("utf-8")
        assert "customer1@example.com" not in text and "@example.com" not in text


def test_a_quality_floor_blocks(env):
    result = env.run(policy=env.policy(audit=None, fidelity={"max_l1_2way": 1e-6}))
    assert result.status == "blocked"
    assert [r.split(":")[0] for r in result.reasons] == ["fidelity.l1_2way"]


def test_a_check_that_cannot_run_blocks(env, monkeypatch):
    import dpsynth.pii.replay

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dpsynth.pii.replay, "copy_check", broken)
    result = env.run(policy=env.policy(audit=None, decision={"private_checks": "without_privacy"}))
    assert result.status == "blocked"
    check = _check(result, "replay.exact_rows")
    assert check["status"] == "error" and "disk on fire" in check["detail"]


@pytest.mark.parametrize(("change", "error", "words"), [
    ({"policy": "bad"}, PolicyError, "audit.max_auc"),
    ({"target": "nope"}, ParameterError, "target ('nope')"),
    ({"out": "busy"}, ParameterError, "new or empty folder"),
    ({"synthesizer": "nosuch"}, ParameterError, "nosuch"),
    ({"epsilon": -1.0}, ParameterError, "epsilon"),
    ({"dataset": "unknown"}, Exception, "unknown"),
    ({"pii": "bad"}, ParameterError, "NOT_AN_ENTITY"),
    ({"data": "bad"}, DataError, "plan"),
])
def test_bad_input_charges_nothing_and_writes_nothing(env, change, error, words):
    kwargs = dict(change)
    if kwargs.get("policy") == "bad":
        kwargs["policy"] = env.policy("bad", audit={"max_auc": 7})
    if kwargs.pop("pii", None) == "bad":
        kwargs["policy"] = env.policy("badpii", pii={"forbidden_entities": ["NOT_AN_ENTITY"]})
    if kwargs.get("out") == "busy":
        (env.root / "busy").mkdir()
        (env.root / "busy" / "keep.txt").write_text("x")
    if kwargs.get("data") == "bad":
        table = make_table()
        table.loc[3, "plan"] = "platinum"
        kwargs["data"] = env.root / "bad.csv"
        table.to_csv(kwargs["data"], index=False)
    kwargs.setdefault("policy", env.policy())
    before = _files(env.root)
    with pytest.raises(error, match=None) as info:
        env.run(**kwargs)
    assert words in str(info.value)
    assert env.releases() == 0 if kwargs.get("dataset") != "unknown" else True
    assert _files(env.root) == before  # no output folder, no temporary folder
    if kwargs.get("out") == "busy":
        assert _files(env.root / "busy") == {"keep.txt"}


def test_cli_exit_codes_and_json(env, capsys):
    base = ["release", "--data", str(env.data), "--schema", str(env.schema), "--synthesizer", "mst",
            "--delta", "1e-6", "--ledger", env.url, "--dataset", "crm", "--insecure-seed", "3",
            "--param", "estimation_iters=100", "--json"]
    policy = str(env.policy(audit=None))
    assert main(base + ["--epsilon", "1", "--policy", policy, "--out", str(env.root / "a")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "released" and out["ledger_entry"] is not None
    assert "synthetic.csv" in out["artifacts"] and out["decision_privacy"] == "dp"
    strict = str(env.policy("capped", audit=None, privacy={"max_epsilon": 0.5}))
    assert main(base + ["--epsilon", "1", "--policy", strict, "--out", str(env.root / "b")]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "blocked"
    assert main(base + ["--epsilon", "5", "--policy", str(env.policy("wide", audit=None,
                                                                     privacy={"max_epsilon": 9.0})),
                        "--out", str(env.root / "c")]) == 3
    assert json.loads(capsys.readouterr().out)["status"] == "refused"
    assert main(base + ["--epsilon", "1", "--policy", str(env.root / "missing.yaml"), "--out",
                        str(env.root / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.yaml" in err and not (env.root / "d").exists()


def test_shipped_policies_are_valid_and_commented():
    from dpsynth.release import load_policy, shipped_policy

    root = shipped_policy("default").parent
    names = sorted(p.stem for p in root.glob("*.yaml"))
    assert names == ["default", "permissive", "strict"]
    for name in names:
        policy = load_policy(root / f"{name}.yaml")
        assert policy.name == name and policy.description
        assert (root / f"{name}.yaml").read_text(encoding="utf-8").count("#") >= 5
    strict, default, permissive = (load_policy(root / f"{n}.yaml") for n in ("strict", "default", "permissive"))
    assert strict.max_epsilon <= default.max_epsilon <= permissive.max_epsilon
    assert {p.audit.method for p in (strict, default, permissive)} == {"canary"}
    assert strict.audit.fits >= default.audit.fits >= permissive.audit.fits
    assert strict.audit.require_conclusive and default.audit.require_conclusive


def test_policy_errors_name_every_problem(tmp_path):
    from dpsynth.release import parse_policy

    with pytest.raises(PolicyError) as info:
        parse_policy({"version": 2, "name": "", "privacy": {"max_epsilon": -1},
                      "audit": {"method": "multi_fit", "attacks": ["psychic"], "fits": 2}, "colour": 1})
    message = str(info.value)
    for words in ("version", "name", "privacy.max_epsilon", "privacy.max_delta", "audit.attacks", "colour",
                  "audit.fits: belongs to audit.method canary"):
        assert words in message
    assert "\n" not in message
    bad = tmp_path / "broken.yaml"
    bad.write_text("privacy: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML at line 1"):
        from dpsynth.release import load_policy

        load_policy(bad)


def test_progress_goes_to_a_terminal_only(env, capsys):
    result = env.run(policy=env.policy(audit=None, pii=None), progress=None)
    assert result.released
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # not a TTY under pytest: quiet
    result = env.run(policy=env.policy(audit={"fits_per_world": 2, "canaries": 1, "outliers": 0}, pii=None),
                     progress=True, out="shown")
    err = capsys.readouterr().err
    assert result.released and "fitting mst" in err and "membership-inference audit" in err and "4/4" in err


def test_release_modules_do_not_import_the_cli():
    source = Path(__file__).resolve().parents[2] / "dpsynth" / "release"
    for path in source.rglob("*.py"):
        assert "dpsynth.cli" not in path.read_text(encoding="utf-8"), path.name


def test_canary_audit_policy_keys_are_checked():
    from dpsynth.release import parse_policy

    base = {"version": 1, "name": "p", "privacy": {"max_epsilon": 1, "max_delta": 1e-6}}
    with pytest.raises(PolicyError) as info:
        parse_policy({**base, "audit": {"fits_per_world": 8, "fits": 4, "method": "canary"}})
    assert "audit.fits_per_world: belongs to audit.method multi_fit" in str(info.value)
    assert "audit.fits: (4) must be at most 3" in str(info.value)
    with pytest.raises(PolicyError, match="audit.method"):
        parse_policy({**base, "audit": {"method": "psychic"}})
    rules = parse_policy({**base, "audit": {}}).audit
    assert (rules.method, rules.fits, rules.base_rows, rules.sample_factor, rules.require_conclusive) == (
        "canary", 3, 1000, 5, True)
    assert not parse_policy({**base, "audit": {"method": "multi_fit"}}).audit.require_conclusive


def test_the_gate_replays_dpsynths_own_mechanisms_before_the_charge(env):
    """dpsynth's record/replay checks run in the gate for its marginal synthesizers (cheap: ten-row
    tables of a public domain): a halved sensitivity blocks before anything is charged."""
    spec = json.loads(json.dumps(BASE_POLICY))
    spec["audit"] = {"method": "canary", "fits": 1, "base_rows": 100, "require_conclusive": False}
    spec.update(pii=None, replay=None, fidelity=None)
    path = env.root / "canary.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    ok = env.run(policy=path, out="ok")
    assert _check(ok, "audit.replay")["status"] == "pass" and _check(ok, "audit.replay")["reads"] == "public"
    assert ok.report["evidence"]["audit"]["replay"]["passed"] is True
    bad = env.run(policy=path, out="bad", synthesizer="broken_synths:DoubledMST")
    assert bad.status == "blocked" and _check(bad, "audit.replay")["status"] == "fail"
    assert "sensitivity" in _check(bad, "audit.replay")["detail"]
    assert env.releases() == 1  # only the passing release was charged

