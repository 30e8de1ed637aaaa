"""What leaves a release is DP or public (issue 15, DESIGN.md rule 8).

* the released row count is public input or a DP estimate, never the private table's length: over
  a fixed set of seeds, the counts released for D and for D plus one row overlap, and none of the
  publishable artifacts carries n;
* the decision is DP under the default policy (every check reads public input, the DP output, or
  the private rows through a charged DP measurement), and the report's ε covers it;
* a policy whose decision reads the private rows without privacy needs the named opt-in, which
  the publishable report, page and manifest state in words;
* no plain hash of the private input is in any artifact (keyed with the ledger's secret).

Every test here is deterministic: the noise is seeded (``insecure_seed``), so no statistical
assertion can fail by chance.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_release import BASE_POLICY, SCHEMA, make_table

from dpsynth.exceptions import ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.release import PolicyError, parse_policy, release, shipped_policy

N = 437  # an odd size, so that a stray "437" in an artifact is a telling match
PLUGIN = '''
from dpsynth.synth.mst import MST


class NoRowEstimate(MST):
    """MST that does not offer its DP row count: a release must be given --rows."""

    estimates_rows = False
'''


@pytest.fixture
def files(tmp_path, monkeypatch):
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    spec = json.loads(json.dumps(BASE_POLICY))
    spec.update(audit=None, pii=None)
    policy.write_text(yaml.safe_dump(spec), encoding="utf-8")
    (tmp_path / "plugin_synths.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, schema, policy


def _release(root: Path, schema: Path, policy: Path, table: pd.DataFrame, name: str, seed: int, **kwargs):
    data = root / f"{name}.csv"
    table.to_csv(data, index=False)
    url = f"sqlite:///{root / (name + '.db')}"
    if not (root / f"{name}.db").exists():
        Ledger(url, create=True).create_dataset("crm", ApproxDP(50.0, 1e-5))
    return release(data=data, schema=schema, synthesizer="mst", epsilon=1.0, delta=1e-6, ledger=url, dataset="crm",
                   policy=policy, out=root / f"{name}-out-{seed}", insecure_seed=seed, progress=False, workers=1,
                   synthesizer_params={"estimation_iters": 50}, **kwargs)


def test_the_released_row_count_is_not_a_function_of_the_private_count(files):
    """Release D (n rows) and D plus one row under the same seeds: a count taken from len(data) would
    give {n} and {n + 1}, disjoint sets; the DP estimate varies with the seed and the two overlap."""
    root, schema, policy = files
    table = make_table(N + 1, seed=3)
    small, large = table.iloc[:N], table
    seeds = range(1, 7)
    rows_small = [_release(root, schema, policy, small, "d", s).report["release"]["rows"] for s in seeds]
    rows_large = [_release(root, schema, policy, large, "d1", s).report["release"]["rows"] for s in seeds]
    assert len(set(rows_small)) > 1 and len(set(rows_large)) > 1  # randomised, not a function of n
    assert min(rows_large) <= max(rows_small) and min(rows_small) <= max(rows_large)  # overlapping
    for s in seeds:
        out = root / f"d-out-{s}"
        report = json.loads((out / "internal" / "report.json").read_text(encoding="utf-8"))
        assert report["release"]["rows_source"] == "dp_estimate"
        assert len(pd.read_csv(out / "publish" / "synthetic.csv")) == report["release"]["rows"]
        if report["release"]["rows"] == N:
            continue  # the noisy count may land on n; then n is in the table's length by chance, not by rule
        for name in ("report.json", "manifest.json", "report.html"):
            text = (out / "publish" / name).read_text(encoding="utf-8")
            # a number standing alone, not digits inside a hash (hex) or another word or number
            assert not re.search(rf"(?<![\w.]){N}(?![\w])", text), (s, name)


def test_a_public_row_count_is_used_as_given(files):
    root, schema, policy = files
    result = _release(root, schema, policy, make_table(N), "p", 1, rows=1000)
    assert result.report["release"]["rows"] == 1000 and result.report["release"]["rows_source"] == "public_input"
    assert len(pd.read_csv(result.publish / "synthetic.csv")) == 1000


def test_a_synthesizer_without_a_dp_row_count_needs_rows_before_anything_is_charged(files):
    root, schema, policy = files
    data = root / "t.csv"
    make_table(N).to_csv(data, index=False)
    url = f"sqlite:///{root / 't.db'}"
    Ledger(url, create=True).create_dataset("crm", ApproxDP(4.0, 1e-5))
    with pytest.raises(ParameterError, match="no DP estimate of the private row count"):
        release(data=data, schema=schema, synthesizer="plugin_synths:NoRowEstimate", epsilon=1.0, delta=1e-6,
                ledger=url, dataset="crm", policy=policy, out=root / "t-out", insecure_seed=1, progress=False)
    assert Ledger(url, create=True).statement("crm").to_dict()["releases"] == 0 and not (root / "t-out").exists()


def test_the_default_decision_is_dp_and_the_epsilon_covers_it(files):
    root, schema, policy = files
    result = _release(root, schema, policy, make_table(N), "e", 1)
    report = result.report
    assert report["decision"]["privacy"] == "dp"
    assert {c["reads"] for c in report["checks"]} <= {"public", "dp_output", "private_dp"}
    assert {c["reads"] for c in report["checks"] if c["category"] in ("replay", "fidelity")} == {"private_dp"}
    privacy = report["release"]["privacy"]
    assert 0.05 * (1 - 1e-8) <= privacy["decision"]["rho"] <= 0.05  # the plan never overspends its ρ
    assert privacy["total"]["epsilon"] > privacy["table"]["epsilon"] == 1.0
    # the ledger charged both reservations of the release; its tight total is the report's total
    after = Ledger(f"sqlite:///{root / 'e.db'}", create=True).statement("crm")
    assert after.to_dict()["releases"] == 2 and len(report["ledger"]["entry_ids"]) == 2
    assert after.rho_spent == pytest.approx(sum(e["rho"] for r in after.to_dict()["entries"] for e in r["events"]))
    from dpsynth.privacy.accounting import zcdp_epsilon

    assert privacy["total"]["epsilon"] == pytest.approx(zcdp_epsilon(after.rho_spent, 1e-6), rel=1e-9)
    page = (result.publish / "report.html").read_text(encoding="utf-8")
    assert "for the table and the decision" in page
    manifest = json.loads((result.publish / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["privacy"]["total"]["epsilon"] == privacy["total"]["epsilon"]


def test_a_decision_without_privacy_is_a_named_opt_in_stated_everywhere(files):
    root, schema, policy = files
    spec = yaml.safe_load(policy.read_text(encoding="utf-8"))
    spec["decision"] = {"private_checks": "without_privacy"}
    loose = root / "loose.yaml"
    loose.write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = _release(root, schema, loose, make_table(N), "o", 1)
    assert result.report["decision"]["privacy"] == "not_dp"
    assert "decision_read_private_data_without_privacy" in result.report["opt_ins"]
    words = "read private data without privacy"
    public = json.loads((result.publish / "report.json").read_text(encoding="utf-8"))
    assert words in public["decision"]["statement"]
    assert words in (result.publish / "report.html").read_text(encoding="utf-8")
    assert words in json.loads((result.publish / "manifest.json").read_text(encoding="utf-8"))["decision_statement"]
    # the exact values stay internal; the publishable report keeps only the statuses
    exact = [c for c in public["checks"] if c["reads"] == "private_not_dp"]
    assert exact and all(c["value"] is None for c in exact)
    assert all(c["value"] is not None for c in result.report["checks"] if c["reads"] == "private_not_dp")


def test_no_plain_hash_of_the_private_input_leaves(files):
    root, schema, policy = files
    result = _release(root, schema, policy, make_table(N), "h", 1)
    plain = hashlib.sha256((root / "h.csv").read_bytes()).hexdigest()
    for path in result.out.rglob("*"):
        if path.is_file() and path.suffix != ".csv":
            assert plain not in path.read_text(encoding="utf-8"), path
    fingerprint = result.report["inputs"]["data"]["fingerprint"]
    assert fingerprint == Ledger(f"sqlite:///{root / 'h.db'}", create=True).keyed_fingerprint(plain)
    # the ledger itself keeps the plain hash
    entries = Ledger(f"sqlite:///{root / 'h.db'}", create=True).statement("crm").to_dict()["entries"]
    assert {e["input_sha256"] for e in entries} == {plain}


def test_checks_without_a_dp_form_need_the_opt_in():
    base = {"version": 1, "name": "x", "privacy": {"max_epsilon": 1, "max_delta": 1e-6}}
    with pytest.raises(PolicyError, match="near_copies.*has no DP form"):
        parse_policy({**base, "replay": {"checks": ["near_copies"]}})
    with pytest.raises(PolicyError, match="utility.max_gap.*has no DP form"):
        parse_policy({**base, "utility": {"max_gap": 0.1}})
    policy = parse_policy({**base, "replay": {"checks": ["near_copies"]},
                           "decision": {"private_checks": "without_privacy"}})
    assert policy.opt_ins == ("decision_read_private_data_without_privacy",)


@pytest.mark.parametrize("name", ["default", "strict"])
def test_the_shipped_default_and_strict_policies_decide_with_dp(name):
    from dpsynth.release import load_policy

    policy = load_policy(shipped_policy(name))
    assert policy.decision.dp and policy.opt_ins == () and policy.reads_private_rows


def test_a_quasi_identifier_check_on_a_schema_without_them_is_not_applicable(files):
    """As with the exact check: nothing to measure, nothing charged for it, the release passes."""
    root, schema, policy = files
    spec = yaml.safe_load(policy.read_text(encoding="utf-8"))
    spec["replay"] = {"checks": ["exact_rows", "quasi_identifiers"], "alpha": 1e-3}
    both = root / "both.yaml"
    both.write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = _release(root, schema, both, make_table(N), "q", 1)
    check = next(c for c in result.report["checks"] if c["id"] == "replay.quasi_identifiers")
    assert check["status"] == "pass" and check["value"] == "not applicable" and check["reads"] == "public"
    labels = [e["label"] for e in result.report["release"]["privacy"]["decision"]["events"]]
    assert not any("quasi" in label for label in labels) and result.released
