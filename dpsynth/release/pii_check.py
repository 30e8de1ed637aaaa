"""The release's PII check: Presidio's scan of the synthetic table (DP output, so post-processing)
for the entity types the policy forbids. A scan that fails to run is an ``error`` and blocks."""

from __future__ import annotations

import time
import warnings
from typing import Any

import pandas as pd

from dpsynth.release.checks import Checks
from dpsynth.release.policy import Policy

TITLE = "forbidden PII entity types found"


def pii_check(report: dict[str, Any], checks: Checks, pol: Policy, scanner: Any, synthetic: pd.DataFrame,
              sch: Any, timings: dict[str, float]) -> None:
    """Scan ``synthetic`` with ``scanner``; the scan goes to ``report["evidence"]["pii"]``."""
    assert pol.pii is not None  # type narrowing: called only when the policy has a pii section
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Presidio's context enhancer warns that it has no lemmas when NER is off (the report says NER
            # is off and what that leaves uncovered).
            warnings.filterwarnings("ignore", message="LemmaContextAwareEnhancer cannot use context",
                                    category=UserWarning)
            scan = scanner.scan(synthetic, schema=sch, source="synthetic table")
        report["evidence"]["pii"] = scan.to_dict()
        found = sorted({f.entity_type for f in scan.findings})
        bad = [e for e in found if e in pol.pii.forbidden_entities]
        checks.add("pii.forbidden", "pii", TITLE, bad, list(pol.pii.forbidden_entities), "none_of", not bad,
                   "entity types found: " + (", ".join(found) or "none"), reads="dp_output")
    except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks, it never passes
        checks.error("pii.forbidden", "pii", TITLE, list(pol.pii.forbidden_entities), "none_of", exc,
                     reads="dp_output")
    timings["pii"] = round(time.perf_counter() - t, 3)
