"""The release gate catches broken generators it did not write (issue 16).

Plain-contract generators of this folder's ``mutant_generators`` module go through the default
policy on the bundled Adult table: the correct one is released with its claim marked as its own;
each broken one is blocked by the canary audit (exit 1, no synthetic table, a report naming the
audit and what caught it), before anything is charged.

False-failure probabilities: the correct generator is audited at confidence 1 − 1e-4, so it is
flagged with probability at most 1e-4 by the audit's guarantee. (At the default policy's 0.95 the
bound is 5%; 0 of the 240 canary audits of all four synthesizers measured flagged anything,
benchmarks/RESULTS.md, "The canary audit".) This test's tables are fixed by the release's seed: a
rerun differs only by the generator's own fresh noise. Each mutant is caught in every one of the 20
audits measured per mutant (docs/audit.md), for reasons argued in tests/privacy/test_audit_canary.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpsynth.datasets import adult_path, adult_schema_path
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.release import release
from dpsynth.release.policy import shipped_policy

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow


@pytest.fixture
def ledger(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("adult", ApproxDP(10.0, 1e-6))
    return url


def _release(tmp_path, ledger, cls, out, policy=None):
    return release(data=adult_path(), schema=adult_schema_path(), synthesizer=f"mutant_generators:{cls}",
                   epsilon=1.0, delta=1e-9, ledger=ledger, dataset="adult", policy=policy or shipped_policy("default"),
                   out=tmp_path / out, rows=32561, target="income", progress=False)


def _policy_at_confidence(tmp_path, confidence):
    """The default policy with the canary audit's confidence raised (everything else as shipped)."""
    policy = yaml.safe_load(shipped_policy("default").read_text(encoding="utf-8"))
    policy["audit"]["confidence"] = confidence
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    return path


@pytest.mark.parametrize("cls, caught_by", [
    ("CopiesRealRows", "copies"),
    ("AppendsOneRecord", "copies"),
    ("LearnsDomain", "key"),
    ("OverspentMST", "key"),
])
def test_a_broken_plugin_is_blocked_by_the_audit_before_any_charge(tmp_path, ledger, cls, caught_by):
    result = _release(tmp_path, ledger, cls, "out")
    assert result.status == "blocked" and result.exit_code == 1
    reasons = [r.split(":")[0] for r in result.reasons]
    assert reasons[0] == "audit.violation" and set(reasons) <= {"audit.violation", "audit.auc"}
    check = next(c for c in result.report["checks"] if c["id"] == "audit.violation")
    assert check["status"] == "fail" and check["value"] > 1.0 and check["reads"] == "public"
    audit = result.report["evidence"]["audit"]
    assert audit["method"] == "canary_one_run_blackbox" and audit["caught_by"] == caught_by
    assert audit["max_provable_epsilon"] > 1.0  # conclusive: it could refute the claim, and did
    assert not (result.publish / "synthetic.csv").exists()
    assert Ledger(ledger, create=True).statement("adult").to_dict()["releases"] == 0  # blocked before the charge
    publish = json.loads((result.publish / "report.json").read_text())
    assert publish["decision"]["status"] == "blocked" and publish["decision"]["privacy"] == "dp"
    page = (result.publish / "report.html").read_text(encoding="utf-8")
    assert "Caught by" in page and "Violation" in page


def test_a_correct_plugin_is_released_with_its_claim_marked_as_its_own(tmp_path, ledger):
    """The plug-in draws fresh secure noise (the default policy requires it), so the audit runs at
    confidence 1 − 1e-4: a correct generator is flagged with probability at most 1e-4 (the audit's
    guarantee), and the audit must still be conclusive (it could refute the claim)."""
    result = _release(tmp_path, ledger, "PlainMST", "out", policy=_policy_at_confidence(tmp_path, 1 - 1e-4))
    assert result.released, result.reasons
    claim = result.report["release"]["claim"]
    assert claim["source"] == "generator" and claim["verified"] is False
    audit = result.report["evidence"]["audit"]
    assert not audit["violation"] and audit["conclusive"] and audit["max_provable_epsilon"] > 1.0
    assert (result.publish / "synthetic.csv").exists()
    assert Ledger(ledger, create=True).statement("adult").to_dict()["releases"] >= 1


def test_the_cli_blocks_a_broken_plugin_with_exit_1(tmp_path, ledger):
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-m", "dpsynth", "release", "--data", str(adult_path()), "--schema", str(adult_schema_path()),
         "--synthesizer", "mutant_generators:LearnsDomain", "--epsilon", "1", "--delta", "1e-9", "--ledger", ledger,
         "--dataset", "adult", "--policy", str(shipped_policy("default")), "--out", str(tmp_path / "cli"),
         "--rows", "32561", "--target", "income"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "audit.violation" in out.stdout + out.stderr
    assert not (tmp_path / "cli" / "publish" / "synthetic.csv").exists()
