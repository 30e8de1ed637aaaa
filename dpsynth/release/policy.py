"""Release policies: what a release must satisfy, read from a YAML file and validated.

A policy names limits, never data. Every problem in a file is reported in one line (the key path and
what was expected) as a :class:`PolicyError`, which the CLI turns into exit code 2. The file's shape
is ``policy.schema.json`` (JSON Schema, beside this module); the audit bounds are
:mod:`dpsynth.audit.defaults`'; what a JSON Schema cannot say (a key of the other audit method, a
check without a DP form) is checked here.
``docs/release.md`` documents every key; ``dpsynth/release/policies/`` ships commented examples
(:func:`shipped_policy`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpsynth.audit.defaults import ATTACKS, BLACKBOX, CANARY, CONFIDENCE, COPIES, IntBound, RealBound
from dpsynth.exceptions import ParameterError
from dpsynth.schema.declaration import KNOWN_OPT_INS

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
    """The ``audit`` section; its defaults and bounds are :mod:`dpsynth.audit.defaults`'."""

    method: str = "canary"
    fits: int = CANARY.fits
    base_rows: int = CANARY.base_rows
    sample_factor: int = CANARY.sample_factor
    fits_per_world: int = BLACKBOX.fits_per_world
    canaries: int = BLACKBOX.canaries
    outliers: int = BLACKBOX.outliers
    reference_rows: int | None = BLACKBOX.reference_rows
    attacks: tuple[str, ...] = ATTACKS
    confidence: float = CANARY.confidence
    max_auc: float | None = None
    max_tpr_at_1pct_fpr: float | None = None
    suite: str | None = None
    require_conclusive: bool = True


@dataclass(frozen=True)
class PIIRules:
    """The ``pii`` section: the Presidio scan of the synthetic table."""

    forbidden_entities: tuple[str, ...] = ()
    threshold: float = 0.5
    ner: bool = True


@dataclass(frozen=True)
class ReplayRules:
    """The ``replay`` section: copies of real rows against a holdout baseline."""

    checks: tuple[str, ...] = COPIES.checks
    alpha: float = COPIES.alpha
    near_threshold: float = COPIES.near_threshold


@dataclass(frozen=True)
class QualityRules:
    """The ``fidelity`` section: ceilings on the workload errors."""

    max_l1_1way: float | None = None
    max_l1_2way: float | None = None
    max_l1_3way: float | None = None
    max_mean_tvd: float | None = None


@dataclass(frozen=True)
class UtilityRules:
    """The ``utility`` section: train-synthetic-test-real floors."""

    target: str | None = None
    max_gap: float | None = None
    min_score: float | None = None


#: the marginals a drift check may compare (``drift.over``), and those it compares by default: every column's.
#: Pairs of two synthetic tables also move with the model's choices (e.g. MST's tree), not only the data.
DRIFT_OVER = ("columns", "pairs")
DRIFT_DEFAULT = ("columns",)


@dataclass(frozen=True)
class DriftRules:
    """The ``drift`` section: the most a release of a series may move from the previous released
    version, in total-variation distance of its marginals (``docs/refresh.md``). It compares only DP
    output (the two synthetic tables), so it costs no privacy; a release with no previous version
    (the first of a series, or ``dpsynth release``) has nothing to compare and no drift check."""

    max_tvd: float | None = None
    over: tuple[str, ...] = DRIFT_DEFAULT


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
        """Whether the checks that read private rows are DP measurements."""
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
    drift: DriftRules | None = None
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
            "drift": plain(self.drift),
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

_SECTIONS = {"version", "name", "description", "privacy", "audit", "pii", "replay", "fidelity", "utility", "decision",
             "drift"}


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

    def real(self, sec: dict[str, Any], prefix: str, key: str, default: Any, bound: IntBound | RealBound) -> Any:
        """A number within a bound of :mod:`dpsynth.audit.defaults` (null: the default)."""
        return self.number(sec, prefix, key, default, low=bound.low, high=bound.high,
                           low_open=getattr(bound, "low_open", False))

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


def _audit_rules(c: _Checker, raw: dict[str, Any]) -> AuditRules | None:
    """The ``audit`` section (None: no release audit)."""
    sec = c.section(raw, "audit", {"method", *_CANARY_KEYS, *_MULTI_FIT_KEYS, "confidence", "max_auc", "suite",
                                   "require_conclusive"})
    if sec is None:
        return None
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
    fits = c.integer(sec, "audit", "fits", d.fits, low=int(CANARY.BOUNDS["fits"].low))
    if fits > (most := getattr(CANARY.BOUNDS["fits"], "high", None) or fits):
        c.problem("audit.fits", f"({fits!r}) must be at most {most} (the canary audit's fits beyond the release's own)")
        fits = d.fits

    def integer(key: str, default: Any, defaults: Any) -> Any:
        return c.integer(sec, "audit", key, default, low=defaults.BOUNDS[key].low,
                         nullable=defaults.BOUNDS[key].nullable)

    audit = AuditRules(
        method=method, fits=fits,
        base_rows=integer("base_rows", d.base_rows, CANARY),
        sample_factor=integer("sample_factor", d.sample_factor, CANARY),
        fits_per_world=integer("fits_per_world", d.fits_per_world, BLACKBOX),
        canaries=integer("canaries", d.canaries, BLACKBOX),
        outliers=integer("outliers", d.outliers, BLACKBOX),
        reference_rows=integer("reference_rows", d.reference_rows, BLACKBOX),
        attacks=c.names(sec, "audit", "attacks", d.attacks, ATTACKS),
        confidence=c.real(sec, "audit", "confidence", d.confidence, CONFIDENCE),
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
    return audit


def _pii_rules(c: _Checker, raw: dict[str, Any]) -> PIIRules | None:
    """The ``pii`` section (None: no scan)."""
    sec = c.section(raw, "pii", {"forbidden_entities", "threshold", "ner"})
    if sec is None:
        return None
    return PIIRules(  # entity names are checked against Presidio's engine before the release reads data
        forbidden_entities=c.names(sec, "pii", "forbidden_entities", ()),
        threshold=c.number(sec, "pii", "threshold", 0.5, low=0.0, high=1.0),
        ner=c.boolean(sec, "pii", "ner", True),
    )


def _replay_rules(c: _Checker, raw: dict[str, Any]) -> ReplayRules | None:
    """The ``replay`` section (None: no check of copies)."""
    sec = c.section(raw, "replay", {"checks", "alpha", "near_threshold"})
    if sec is None:
        return None
    return ReplayRules(
        checks=c.names(sec, "replay", "checks", COPIES.checks, REPLAY_CHECKS),
        alpha=c.real(sec, "replay", "alpha", COPIES.alpha, COPIES.BOUNDS["alpha"]),
        near_threshold=c.real(sec, "replay", "near_threshold", COPIES.near_threshold, COPIES.BOUNDS["near_threshold"]),
    )


def _quality_rules(c: _Checker, raw: dict[str, Any]) -> QualityRules | None:
    """The ``fidelity`` section (None: no fidelity floor)."""
    sec = c.section(raw, "fidelity", {"max_l1_1way", "max_l1_2way", "max_l1_3way", "max_mean_tvd"})
    if sec is None:
        return None
    return QualityRules(**{k: c.number(sec, "fidelity", k, None, low=0.0, high=2.0)
                           for k in ("max_l1_1way", "max_l1_2way", "max_l1_3way", "max_mean_tvd")})


def _utility_rules(c: _Checker, raw: dict[str, Any]) -> UtilityRules | None:
    """The ``utility`` section (None: no utility floor)."""
    sec = c.section(raw, "utility", {"target", "max_gap", "min_score"})
    if sec is None:
        return None
    target = sec.get("target")
    if target is not None and not (isinstance(target, str) and target):
        c.problem("utility.target", f"({target!r}) must be a column name or null")
        target = None
    return UtilityRules(target=target, max_gap=c.number(sec, "utility", "max_gap", None, low=0.0, high=1.0),
                        min_score=c.number(sec, "utility", "min_score", None, low=-1.0, high=1.0))


def _drift_rules(c: _Checker, raw: dict[str, Any]) -> DriftRules | None:
    """The ``drift`` section (None: no drift ceiling)."""
    sec = c.section(raw, "drift", {"max_tvd", "over"})
    if sec is None:
        return None
    over = c.names(sec, "drift", "over", DRIFT_DEFAULT, DRIFT_OVER)
    if not over:
        c.problem("drift.over", f"must name at least one of: {', '.join(DRIFT_OVER)}")
    return DriftRules(max_tvd=c.number(sec, "drift", "max_tvd", None, low=0.0, high=1.0), over=over or DRIFT_DEFAULT)


def _decision_rules(c: _Checker, raw: dict[str, Any]) -> DecisionRules:
    """The ``decision`` section (absent: the DP checks at the default ρ)."""
    sec = c.section(raw, "decision", {"private_checks", "rho"})
    if sec is None:
        return DecisionRules()
    mode = sec.get("private_checks", "dp")
    if mode not in PRIVATE_CHECKS:
        c.problem("decision.private_checks", f"({mode!r}) must be one of: {', '.join(PRIVATE_CHECKS)}")
        mode = "dp"
    return DecisionRules(private_checks=mode, rho=c.number(sec, "decision", "rho", DEFAULT_DECISION_RHO, low=0.0,
                                                           low_open=True, high=1.0))


def _no_dp_form(c: _Checker, decision: DecisionRules, replay: ReplayRules | None, utility: UtilityRules | None) -> None:
    """A DP decision cannot hold a check that has no DP form."""
    if not decision.dp:
        return
    no_dp = " has no DP form: drop it, or set decision.private_checks: without_privacy (a named opt-in)"
    if replay is not None and "near_copies" in replay.checks:
        c.problem("replay.checks", "(near_copies)" + no_dp)
    if utility is not None and utility.max_gap is not None:
        c.problem("utility.max_gap", "(train-on-real minus train-on-synthetic)" + no_dp + "; utility.min_score has one")


def _header(c: _Checker, raw: dict[str, Any]) -> tuple[str, str]:
    """The top level: unknown keys, ``version``, and the ``name`` and ``description``."""
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
    return name.strip(), " ".join(description.split())


def parse_policy(raw: object, *, where: str = "policy", path: str = "", sha256: str = "") -> Policy:
    """Validate a policy mapping (as read from YAML).

    Raises:
        PolicyError: every problem of the policy, in one line.
    """
    c = _Checker(where)
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a YAML mapping with the keys {', '.join(sorted(_SECTIONS))}")
    name, description = _header(c, raw)
    privacy = c.section(raw, "privacy", {"max_epsilon", "max_delta", "require_secure_noise", "allowed_opt_ins"})
    if privacy is None:
        c.problem("privacy", "is required (max_epsilon, max_delta)")
        privacy = {}
    max_epsilon = c.number(privacy, "privacy", "max_epsilon", None, low=0.0, low_open=True, optional=False)
    max_delta = c.number(privacy, "privacy", "max_delta", None, low=0.0, high=0.1, optional=False)
    require_secure = c.boolean(privacy, "privacy", "require_secure_noise", True)
    opt_ins = c.names(privacy, "privacy", "allowed_opt_ins", (), tuple(KNOWN_OPT_INS))
    audit, pii, replay = _audit_rules(c, raw), _pii_rules(c, raw), _replay_rules(c, raw)
    fidelity, utility, decision = _quality_rules(c, raw), _utility_rules(c, raw), _decision_rules(c, raw)
    drift = _drift_rules(c, raw)
    _no_dp_form(c, decision, replay, utility)

    from dpsynth._file_schema import POLICY_FILE, with_schema_problems

    problems = with_schema_problems(c.problems, raw, POLICY_FILE, top="policy")  # policy.schema.json
    if problems:
        raise PolicyError(f"{where} is invalid: " + "; ".join(problems))
    return Policy(name=name, description=description, max_epsilon=max_epsilon, max_delta=max_delta,
                  require_secure_noise=require_secure, allowed_opt_ins=opt_ins, audit=audit, pii=pii, replay=replay,
                  fidelity=fidelity, utility=utility, decision=decision, drift=drift, path=path,
                  sha256=sha256)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (YAML), or a shipped policy by name (``default``, ``strict``,
    ``permissive``: :func:`shipped_policy`)."""
    from dpsynth._shipped import is_builtin_name

    p = Path(path)
    if is_builtin_name(path) and not p.is_file():
        p = path = shipped_policy(str(path))
    if not p.is_file():
        raise PolicyError(f"policy file {str(path)!r} does not exist")
    from dpsynth.io import read_config

    raw, data = read_config(p, what="policy file", error=PolicyError, fmt="yaml")
    return parse_policy(raw, where=f"policy file {str(path)!r}", path=str(p), sha256=hashlib.sha256(data).hexdigest())


def shipped_policy(name: str) -> Path:
    """Path of a policy shipped in the package (``dpsynth/release/policies/``: ``default``, ``strict``,
    ``permissive``), found through importlib.resources so that it works from an installed wheel."""
    from dpsynth._shipped import POLICIES, shipped_file, shipped_names

    path = shipped_file(POLICIES, name)
    if path is None:
        raise PolicyError(f"policy {name!r} is not a shipped policy (shipped: {', '.join(shipped_names(POLICIES))}; "
                          "pass --policy PATH for a policy file)")
    return path
