"""Release policies: what a release must satisfy, read from a YAML file and validated.

A policy names limits, never data. Every problem in a file is reported in one line (the key path,
the value and what was expected) as a :class:`PolicyError`, which the CLI turns into exit code 2.
``docs/release.md`` documents every key; ``audits/policies/`` ships commented examples.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError
from dpsynth.schema.schema import KNOWN_OPT_INS

#: attacks the black-box release audit knows (dpsynth.audit.blackbox)
ATTACKS = ("counting", "dcr", "domias")
#: replay checks (dpsynth.pii.replay) a policy can hold against the holdout baseline
REPLAY_CHECKS = ("exact_rows", "quasi_identifiers", "near_copies")
#: replay checks with a DP form (dpsynth.release.dp_checks); near copies have none
DP_REPLAY_CHECKS = ("exact_rows", "quasi_identifiers")
#: how the checks that read private rows are computed (``decision.private_checks``)
PRIVATE_CHECKS = ("dp", "without_privacy")
#: the named opt-in of a policy whose decision reads the private rows without privacy
DECISION_OPT_IN = "decision_read_private_data_without_privacy"
#: the checks' default zCDP budget: ρ = 5e-4 adds about 0.017 to ε = 1 at δ = 1e-9 (composed tightly)
DEFAULT_DECISION_RHO = 5e-4


class PolicyError(ParameterError):
    """A policy file is unreadable or invalid."""


#: how the release audit works (``audit.method``): the canary audit (dpsynth.audit.canary, data-
#: independent, a few fits) or the multi-fit membership inference (dpsynth.audit.blackbox)
AUDIT_METHODS = ("canary", "multi_fit")
_CANARY_KEYS = {"fits", "base_rows", "sample_factor"}
_MULTI_FIT_KEYS = {"fits_per_world", "canaries", "outliers", "reference_rows", "attacks", "max_tpr_at_1pct_fpr"}


@dataclass(frozen=True)
class AuditRules:
    method: str = "canary"
    fits: int = 3
    base_rows: int = 1000
    sample_factor: int = 5
    fits_per_world: int = 8
    canaries: int = 1
    outliers: int = 1
    reference_rows: int | None = 2000
    attacks: tuple[str, ...] = ATTACKS
    confidence: float = 0.95
    max_auc: float | None = None
    max_tpr_at_1pct_fpr: float | None = None
    suite: str | None = None
    require_conclusive: bool = True


@dataclass(frozen=True)
class PIIRules:
    forbidden_entities: tuple[str, ...] = ()
    threshold: float = 0.5
    ner: bool = True


@dataclass(frozen=True)
class ReplayRules:
    checks: tuple[str, ...] = ("exact_rows",)
    alpha: float = 0.01
    near_threshold: float = 0.02


@dataclass(frozen=True)
class QualityRules:
    max_l1_1way: float | None = None
    max_l1_2way: float | None = None
    max_l1_3way: float | None = None
    max_mean_tvd: float | None = None


@dataclass(frozen=True)
class UtilityRules:
    target: str | None = None
    max_gap: float | None = None
    min_score: float | None = None


@dataclass(frozen=True)
class DecisionRules:
    """How the checks that read the private rows (replay, fidelity, utility) are computed.

    ``dp``: each is a DP measurement of the private table given the synthetic one
    (:mod:`dpsynth.release.dp_checks`), charged to the ledger with the release, so that the
    decision to release is DP and the report's ε covers it. ``without_privacy``: the exact checks,
    a named opt-in (:data:`DECISION_OPT_IN`) that every report and the manifest state in words.
    """

    private_checks: str = "dp"
    rho: float = DEFAULT_DECISION_RHO

    @property
    def dp(self) -> bool:
        return self.private_checks == "dp"


@dataclass(frozen=True)
class Policy:
    """A validated release policy (see ``docs/release.md``)."""

    name: str
    description: str
    max_epsilon: float
    max_delta: float
    require_secure_noise: bool = True
    allowed_opt_ins: tuple[str, ...] = ()
    audit: AuditRules | None = field(default_factory=AuditRules)
    pii: PIIRules | None = field(default_factory=PIIRules)
    replay: ReplayRules | None = field(default_factory=ReplayRules)
    fidelity: QualityRules | None = None
    utility: UtilityRules | None = None
    decision: DecisionRules = field(default_factory=DecisionRules)
    path: str = ""
    sha256: str = ""

    def rules(self) -> dict[str, Any]:
        """The policy as applied (JSON-ready), for the report."""
        def plain(obj: Any) -> Any:
            if obj is None:
                return None
            out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(obj).items()}
            return out

        return {
            "privacy": {"max_epsilon": self.max_epsilon, "max_delta": self.max_delta,
                        "require_secure_noise": self.require_secure_noise,
                        "allowed_opt_ins": list(self.allowed_opt_ins)},
            "audit": plain(self.audit),
            "pii": plain(self.pii),
            "replay": plain(self.replay),
            "fidelity": plain(self.fidelity),
            "utility": plain(self.utility),
            "decision": {"private_checks": self.decision.private_checks, "rho": self.decision.rho},
        }

    @property
    def opt_ins(self) -> tuple[str, ...]:
        """The named opt-ins of privacy the policy itself makes (the decision read without DP)."""
        return () if self.decision.dp or not self.reads_private_rows else (DECISION_OPT_IN,)

    @property
    def reads_private_rows(self) -> bool:
        """Whether any check of the policy reads the private rows (replay, fidelity, utility)."""
        fid = self.fidelity is not None and any(v is not None for v in vars(self.fidelity).values())
        util = self.utility is not None and (self.utility.max_gap is not None or self.utility.min_score is not None)
        return bool(self.replay is not None and self.replay.checks) or fid or util


# -- validation ---------------------------------------------------------------------------------

_SECTIONS = {"version", "name", "description", "privacy", "audit", "pii", "replay", "fidelity", "utility", "decision"}


class _Checker:
    def __init__(self, where: str):
        self.where = where
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def section(self, raw: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any] | None:
        """A mapping section (``None``/``false`` = off); unknown keys are problems."""
        value = raw.get(key)
        if value is None or value is False:
            return None
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping or null, not {type(value).__name__}")
            return None
        for k in sorted(set(value) - allowed):
            self.problem(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def number(self, sec: dict[str, Any], prefix: str, key: str, default: Any, *, low: float | None = None,
               high: float | None = None, low_open: bool = False, optional: bool = True) -> Any:
        if key not in sec or sec[key] is None:
            if not optional and default is None:
                self.problem(f"{prefix}.{key}", "is required")
            return default
        value = sec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(f"{prefix}.{key}", f"({value!r}) must be a finite number")
            return default
        if low is not None and (value <= low if low_open else value < low):
            self.problem(f"{prefix}.{key}", f"({value!r}) must be {'>' if low_open else '>='} {low:g}")
        if high is not None and value > high:
            self.problem(f"{prefix}.{key}", f"({value!r}) must be <= {high:g}")
        return float(value)

    def integer(self, sec: dict[str, Any], prefix: str, key: str, default: Any, *, low: int,
                nullable: bool = False) -> Any:
        if key not in sec:
            return default
        value = sec[key]
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.problem(f"{prefix}.{key}", f"({value!r}) must be an integer >= {low}"
                         + (" or null" if nullable else ""))
            return default
        return int(value)

    def boolean(self, sec: dict[str, Any], prefix: str, key: str, default: bool) -> bool:
        value = sec.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{prefix}.{key}", f"({value!r}) must be true or false")
            return default
        return value

    def names(self, sec: dict[str, Any], prefix: str, key: str, default: tuple[str, ...],
              known: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = sec.get(key, list(default))
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(f"{prefix}.{key}", f"({value!r}) must be a list of names")
            return default
        if known is not None:
            for v in value:
                if v not in known:
                    self.problem(f"{prefix}.{key}", f"({v!r}) must be one of: {', '.join(known)}")
        return tuple(value)


def parse_policy(raw: object, *, where: str = "policy", path: str = "", sha256: str = "") -> Policy:
    """Validate a policy mapping (as read from YAML)."""
    c = _Checker(where)
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a YAML mapping with the keys {', '.join(sorted(_SECTIONS))}")
    unknown = set(raw) - _SECTIONS
    if unknown:
        from dpsynth.io import key_names

        c.problem("policy", f"has unknown key(s) {key_names(unknown)} (known: {', '.join(sorted(_SECTIONS))})")
    if raw.get("version") != 1:
        c.problem("version", f"({raw.get('version')!r}) must be 1")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        c.problem("name", f"({name!r}) must be a non-empty string")
        name = ""
    description = raw.get("description", "")
    if not isinstance(description, str):
        c.problem("description", "must be a string")
        description = ""

    privacy = c.section(raw, "privacy", {"max_epsilon", "max_delta", "require_secure_noise", "allowed_opt_ins"})
    if privacy is None:
        c.problem("privacy", "is required (max_epsilon, max_delta)")
        privacy = {}
    max_epsilon = c.number(privacy, "privacy", "max_epsilon", None, low=0.0, low_open=True, optional=False)
    max_delta = c.number(privacy, "privacy", "max_delta", None, low=0.0, high=0.1, optional=False)
    require_secure = c.boolean(privacy, "privacy", "require_secure_noise", True)
    opt_ins = c.names(privacy, "privacy", "allowed_opt_ins", (), tuple(KNOWN_OPT_INS))

    audit = None
    sec = c.section(raw, "audit", {"method", *_CANARY_KEYS, *_MULTI_FIT_KEYS, "confidence", "max_auc", "suite",
                                   "require_conclusive"})
    if sec is not None:
        d = AuditRules()
        method = sec.get("method", d.method)
        if method not in AUDIT_METHODS:
            c.problem("audit.method", f"({method!r}) must be one of: {', '.join(AUDIT_METHODS)}")
            method = d.method
        for k in sorted(set(sec) & (_MULTI_FIT_KEYS if method == "canary" else _CANARY_KEYS)):
            c.problem(f"audit.{k}", f"belongs to audit.method {'multi_fit' if method == 'canary' else 'canary'}, "
                                    f"not {method!r}")
        suite = sec.get("suite")
        if suite is not None and not isinstance(suite, str):
            c.problem("audit.suite", f"({suite!r}) must be a path to an audit suite or null")
            suite = None
        fits = c.integer(sec, "audit", "fits", d.fits, low=1)
        if fits > 3:
            c.problem("audit.fits", f"({fits!r}) must be at most 3 (the canary audit's fits beyond the release's own)")
            fits = d.fits
        audit = AuditRules(
            method=method, fits=fits,
            base_rows=c.integer(sec, "audit", "base_rows", d.base_rows, low=20),
            sample_factor=c.integer(sec, "audit", "sample_factor", d.sample_factor, low=1),
            fits_per_world=c.integer(sec, "audit", "fits_per_world", d.fits_per_world, low=2),
            canaries=c.integer(sec, "audit", "canaries", d.canaries, low=0),
            outliers=c.integer(sec, "audit", "outliers", d.outliers, low=0),
            reference_rows=c.integer(sec, "audit", "reference_rows", d.reference_rows, low=20, nullable=True),
            attacks=c.names(sec, "audit", "attacks", d.attacks, ATTACKS),
            confidence=c.number(sec, "audit", "confidence", d.confidence, low=0.5, high=0.999999),
            max_auc=c.number(sec, "audit", "max_auc", None, low=0.5, high=1.0),
            max_tpr_at_1pct_fpr=c.number(sec, "audit", "max_tpr_at_1pct_fpr", None, low=0.0, high=1.0),
            suite=suite,
            # the canary audit is conclusive at usual claims; the multi-fit one rarely is (opt in)
            require_conclusive=c.boolean(sec, "audit", "require_conclusive", method == "canary"),
        )
        if method == "multi_fit" and audit.canaries + audit.outliers == 0:
            c.problem("audit", "needs at least one canary or outlier target (canaries + outliers >= 1)")
        if not audit.attacks:
            c.problem("audit.attacks", "must name at least one attack")

    pii = None
    sec = c.section(raw, "pii", {"forbidden_entities", "threshold", "ner"})
    if sec is not None:
        pii = PIIRules(  # entity names are checked against Presidio's engine before the release reads data
            forbidden_entities=c.names(sec, "pii", "forbidden_entities", ()),
            threshold=c.number(sec, "pii", "threshold", 0.5, low=0.0, high=1.0),
            ner=c.boolean(sec, "pii", "ner", True),
        )

    replay = None
    sec = c.section(raw, "replay", {"checks", "alpha", "near_threshold"})
    if sec is not None:
        replay = ReplayRules(
            checks=c.names(sec, "replay", "checks", ("exact_rows",), REPLAY_CHECKS),
            alpha=c.number(sec, "replay", "alpha", 0.01, low=0.0, low_open=True, high=0.5),
            near_threshold=c.number(sec, "replay", "near_threshold", 0.02, low=0.0, high=0.99),
        )

    fidelity = None
    sec = c.section(raw, "fidelity", {"max_l1_1way", "max_l1_2way", "max_l1_3way", "max_mean_tvd"})
    if sec is not None:
        fidelity = QualityRules(**{k: c.number(sec, "fidelity", k, None, low=0.0, high=2.0)
                                   for k in ("max_l1_1way", "max_l1_2way", "max_l1_3way", "max_mean_tvd")})

    utility = None
    sec = c.section(raw, "utility", {"target", "max_gap", "min_score"})
    if sec is not None:
        target = sec.get("target")
        if target is not None and not (isinstance(target, str) and target):
            c.problem("utility.target", f"({target!r}) must be a column name or null")
            target = None
        utility = UtilityRules(target=target, max_gap=c.number(sec, "utility", "max_gap", None, low=0.0, high=1.0),
                               min_score=c.number(sec, "utility", "min_score", None, low=-1.0, high=1.0))

    decision = DecisionRules()
    sec = c.section(raw, "decision", {"private_checks", "rho"})
    if sec is not None:
        mode = sec.get("private_checks", "dp")
        if mode not in PRIVATE_CHECKS:
            c.problem("decision.private_checks", f"({mode!r}) must be one of: {', '.join(PRIVATE_CHECKS)}")
            mode = "dp"
        decision = DecisionRules(private_checks=mode,
                                 rho=c.number(sec, "decision", "rho", DEFAULT_DECISION_RHO, low=0.0, low_open=True,
                                              high=1.0))
    if decision.dp:
        no_dp = " has no DP form: drop it, or set decision.private_checks: without_privacy (a named opt-in)"
        if replay is not None and "near_copies" in replay.checks:
            c.problem("replay.checks", "(near_copies)" + no_dp)
        if utility is not None and utility.max_gap is not None:
            c.problem("utility.max_gap", "(train-on-real minus train-on-synthetic)" + no_dp
                      + "; utility.min_score has one")

    if c.problems:
        raise PolicyError(f"{where} is invalid: " + "; ".join(c.problems))
    return Policy(name=name.strip(), description=" ".join(description.split()), max_epsilon=max_epsilon,
                  max_delta=max_delta, require_secure_noise=require_secure, allowed_opt_ins=opt_ins, audit=audit,
                  pii=pii, replay=replay, fidelity=fidelity, utility=utility, decision=decision, path=path,
                  sha256=sha256)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (YAML)."""
    p = Path(path)
    if not p.is_file():
        raise PolicyError(f"policy file {str(path)!r} does not exist")
    from dpsynth.io import read_config

    raw, data = read_config(p, what="policy file", error=PolicyError, fmt="yaml")
    return parse_policy(raw, where=f"policy file {str(path)!r}", path=str(p), sha256=hashlib.sha256(data).hexdigest())


def shipped_policy(name: str) -> Path:
    """Path of a policy in the source tree's ``audits/policies/`` (``default``, ``strict``, ``permissive``)."""
    path = Path(__file__).resolve().parents[2] / "audits" / "policies" / f"{name}.yaml"
    if not path.is_file():
        raise PolicyError(f"policy {name!r} is not in {path.parent} (the shipped policies live in the source "
                          "tree's audits/policies/; pass --policy PATH)")
    return path
