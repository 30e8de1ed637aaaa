"""The demo job: a full release of the bundled raw UCI Adult table through the release gate.

A fresh ledger (``ledger.db``, dataset ``adult`` with a cap of ε = 4 at δ = 1e-6) is created in
the output folder, and ``dpsynth.release.release`` takes the table through the one road with the
default policy (``dpsynth/release/policies/default.yaml``): MST at ε = 1 by default, as many rows as MST's
DP estimate of the private count (never the true count), the black-box audit on the synthetic
table, the PII scan, and the DP checks of copies and fidelity (charged with the release, so the
decision is DP too). The publishable artifacts go to ``OUT/release/publish/`` (``report.html``,
``report.json``, ``manifest.json`` and, when released, ``synthetic.csv``); the internal evidence
(exact figures against the real table, NOT DP) to ``OUT/release/internal/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dpsynth._threads import check_threads
from dpsynth.datasets import adult_path, adult_schema_path
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.release import ReleaseResult, load_policy, release, shipped_policy

#: what ``dpsynth demo --synthesizer`` accepts (MST stays the default)
DEMO_SYNTHESIZERS = ("mst", "aim", "dpctgan", "dpvae")
#: synthesizer parameters of the demo (none: every synthesizer at its defaults)
DEMO_PARAMS: dict[str, dict[str, Any]] = {}
#: the demo's ledger cap for the bundled dataset
DEMO_CAP = ApproxDP(4.0, 1e-6)


def run_demo(out_dir: Path, *, epsilon: float = 1.0, delta: float = 1e-9, synthesizer: str = "mst",
             policy: str = "default", progress: bool | None = None, threads: int | None = None) -> ReleaseResult:
    """Release the bundled Adult table with ``synthesizer`` under ``policy`` (a shipped policy's
    name or a path) into ``out_dir/release/``, charging a fresh demo ledger in ``out_dir``
    (``threads``: of the fit, default automatic; see ``Synthesizer.fit``)."""
    policy_path = Path(policy) if Path(policy).suffix in (".yaml", ".yml") else shipped_policy(policy)
    load_policy(policy_path)  # a bad policy is reported before anything is removed or charged
    if threads is not None:
        check_threads(threads)  # so is a bad thread count
    out_dir.mkdir(parents=True, exist_ok=True)
    # The demo owns these paths in its folder: start afresh each time.
    for stale in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "ledger.db.key"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "release", ignore_errors=True)
    ledger_url = f"sqlite:///{out_dir / 'ledger.db'}"
    Ledger(ledger_url, create=True).create_dataset("adult", DEMO_CAP)
    result = release(
        data=adult_path(), schema=adult_schema_path(), synthesizer=synthesizer, epsilon=epsilon, delta=delta,
        ledger=ledger_url, dataset="adult", policy=policy_path, out=out_dir / "release", target="income",
        synthesizer_params=dict(DEMO_PARAMS.get(synthesizer, {})), progress=progress, threads=threads,
    )
    report = result.report
    verdict = {"released": "RELEASED", "blocked": "BLOCKED by the policy", "refused": "REFUSED: budget"}[result.status]
    after = report["ledger"]["after"] or report["ledger"]["before"]
    total = report["release"]["privacy"]["total"]["epsilon"]
    print(f"dpsynth demo: {synthesizer.upper()} on UCI Adult at (ε = {epsilon:g}, δ = {delta:g}), policy "
          f"{report['policy']['name']!r}: {verdict}")
    print(f"  ε of the table and the decision, composed: {total:.4f}; {report['decision']['statement']}")
    if report["release"]["rows"] is not None:
        print(f"  rows released: {report['release']['rows']:,} ({report['release']['rows_source'].replace('_', ' ')})")
    for reason in result.reasons:
        print(f"  reason: {reason}")
    audit = report["evidence"].get("audit")
    if audit and "epsilon_lower_bound" in audit:
        print(f"  audit (on the synthetic table): empirical ε ≥ {audit['epsilon_lower_bound']:.3f} against the "
              f"claimed {epsilon:g} (the most {audit['trials']} trials could show: "
              f"{audit['max_provable_epsilon']:.3f}); membership-inference AUC {audit['auc']:.3f}")
    dp_checks = report["evidence"].get("dp_checks") or {}
    for key, value in (dp_checks.get("fidelity") or {}).items():
        print(f"  fidelity (DP estimate, gates the release): {key} {_value(value):.3f}")
    fidelity = report["evidence"].get("fidelity")
    if fidelity:
        print(f"  fidelity (exact, internal, NOT DP): mean L1 error 1-way {fidelity['l1_1way']:.3f}, "
              f"2-way {fidelity['l1_2way']:.3f}, 3-way {fidelity['l1_3way']:.3f}")
    utility = report["evidence"].get("utility")
    if utility:
        m = utility["metric"]
        print(f"  utility for 'income' (exact, internal, NOT DP): {m} train-on-synthetic "
              f"{utility['train_synthetic'][m]:.3f}, train-on-real {utility['train_real'][m]:.3f}")
    print(f"  ledger {ledger_url}: dataset 'adult' has spent ε = {after['spent']['epsilon_tight']:.3f} of "
          f"{after['cap']['epsilon']:g} (δ = {after['cap']['delta']:g})")
    print(f"publishable report: {result.publish / 'report.html'}")
    if result.released:
        print(f"synthetic table: {result.publish / 'synthetic.csv'}")
    print(f"internal evidence (NOT DP, never publish): {result.internal / 'report.html'}")
    return result


def _value(value: Any) -> float:
    return float(value["value"] if isinstance(value, dict) else value)
