"""The release gate: one road from a private table to a release decision and its artifacts.

``release(...)`` (``dpsynth release`` on the command line) checks the inputs and the policy, charges
the ledger, fits, gathers the evidence (black-box membership-inference audit, Presidio PII scan,
replay checks, fidelity and utility), decides against the policy and writes ``report.json``
(canonical, JSON Schema in ``report.schema.json``), ``report.html``, ``manifest.json`` and, only when
released, ``synthetic.csv``. See ``docs/release.md``.
"""

from dpsynth.release.manifest import verify_manifest
from dpsynth.release.pipeline import EXIT, NOTICE, ReleaseResult, release
from dpsynth.release.policy import Policy, PolicyError, load_policy, parse_policy, shipped_policy
from dpsynth.release.report_schema import report_problems, report_schema, validate_report

__all__ = [
    "EXIT",
    "NOTICE",
    "Policy",
    "PolicyError",
    "ReleaseResult",
    "load_policy",
    "parse_policy",
    "release",
    "report_problems",
    "report_schema",
    "shipped_policy",
    "validate_report",
    "verify_manifest",
]
