"""Step 1 of the release road: everything a user can get wrong, checked before any private
computation and before anything is charged or written (a mistake is a :class:`ParameterError`,
exit code 2): the policy, the out folder, the schema, the synthesizer and its parameters (its plan
validates ε, δ and them), the row count, the ledger and the dataset, the target column, the PII
scanner's entity types, the reference audit suite and the private table against its schema."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dpsynth.exceptions import ParameterError
from dpsynth.release.manifest import sha256_bytes, sha256_path
from dpsynth.release.policy import Policy, load_policy
from dpsynth.release.private_checks import plan_decision
from dpsynth.release.targeted import check_targeted


@dataclass
class ReleaseInputs:
    """The checked inputs of one release (nothing in it has been charged or computed privately)."""

    synthesizer: str
    epsilon: float
    delta: float
    dataset: str
    insecure_seed: int | None
    seed: int
    pol: Policy
    out_dir: Path
    schema_path: Path | None
    sch: Any
    cls: Any
    params: dict[str, Any]
    probe: Any  # an unfitted synthesizer of these parameters: its plan and claim (public)
    events: list[Any]
    claimed: Any
    rows: int | None
    led: Any
    statement_before: Any
    target: str | None
    dp_plan: Any
    scanner: Any
    suite: dict[str, Any] | None
    real: Any  # a pandas DataFrame, or the source of a counting engine (open: release closes it)
    input_name: str
    input_sha256: str
    workers: int
    threads: int | None
    schema_file: dict[str, str]
    check_events: list[Any]
    engine: str = "numpy"
    series: Any = None  # a SeriesContext when the release is one version of a series (dpsynth refresh)
    targeted: list[Any] = field(default_factory=list)  # the targeted tables (dpsynth.release.targeted)

    @property
    def na_rep(self) -> str:
        """How the schema writes a missing value in the synthetic table."""
        return self.sch.missing_values[0] if self.sch.missing_values else ""


def check_out_dir(out: str | Path) -> Path:
    """``out`` as a path, when it is a new or empty folder in a writable parent (else ParameterError)."""
    path = Path(out)
    if path.is_symlink():  # the release is built beside it and renamed into place, which a link refuses
        raise ParameterError(f"--out ({str(out)!r}) must be a new or empty folder, not a symbolic link "
                             "(give the folder it points to)")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ParameterError(f"--out ({str(out)!r}) must be a new or empty folder: a release never mixes its "
                             "artifacts with other files")
    parent = path.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ParameterError(f"--out ({str(out)!r}): its parent folder does not exist or is not writable")
    return path


def check_inputs(*, data: str | Path | pd.DataFrame, schema: str | Path | Any, synthesizer: str, epsilon: float,
                 delta: float, ledger: str | Any, dataset: str, policy: str | Path | Policy, out: str | Path,
                 rows: int | None, synthesizer_params: dict[str, Any] | None, target: str | None,
                 insecure_seed: int | None, seed: int, workers: int | None, threads: int | None,
                 engine: str = "auto", spark_master: str | None = None, privacy_unit: Any = None,
                 series: Any = None, targeted: Any = None) -> ReleaseInputs:
    """Check the arguments of :func:`~dpsynth.release.pipeline.release` in its order (the first
    mistake is the one reported); reads the private table only to check it against its schema."""
    from dpsynth import _validation as check
    from dpsynth._threads import check_threads
    from dpsynth.io import read_table
    from dpsynth.privacy.ledger import Ledger
    from dpsynth.schema import load_schema
    from dpsynth.synth.plugin import load_generator
    from dpsynth.synth.streaming import check_rows_in_memory

    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    out_dir = check_out_dir(out)
    schema_path = None if not isinstance(schema, (str, Path)) else Path(schema)
    sch: Any = load_schema(schema_path) if schema_path is not None else schema
    if privacy_unit is not None:
        sch = sch.with_unit(privacy_unit)
    cls = load_generator(synthesizer)  # a plug-in (plain contract) comes back wrapped: dpsynth charges its claim
    params = dict(synthesizer_params or {})
    if insecure_seed is not None:
        params["insecure_seed"] = insecure_seed
    try:
        probe = cls(epsilon=epsilon, delta=delta, **params)
    except TypeError as exc:
        raise ParameterError(f"synthesizer ({synthesizer!r}) does not accept these parameters: {exc}") from None
    events = probe.plan(sch)  # validates ε, δ and the parameters
    claimed = probe.budget()
    if not isinstance(dataset, str) or not dataset:
        raise ParameterError(f"dataset ({dataset!r}) must be the private dataset's name in the ledger")
    if rows is not None:
        rows = check.positive_int("rows", rows)
        check_rows_in_memory(rows, sch)  # the whole synthetic table is held for the checks: bound it before any charge
    elif not getattr(cls, "estimates_rows", False):
        raise ParameterError(f"rows: synthesizer ({synthesizer!r}) offers no DP estimate of the private row count; "
                             "give the number of rows to release (--rows N), a public number")
    led = Ledger(ledger) if isinstance(ledger, str) else ledger
    led.check_integrity(dataset)  # a damaged ledger is refused (exit 2) before anything is read or charged
    statement_before = led.statement(dataset)  # raises LedgerError (exit 2) for an unknown dataset
    _check_unit(sch, cls, synthesizer, dataset, statement_before.unit, pol)
    target = target if target is not None else (pol.utility.target if pol.utility else None)
    if target is not None and target not in sch.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(sch.names)}")
    utility_floor = pol.utility is not None and (pol.utility.max_gap is not None or pol.utility.min_score is not None)
    if utility_floor and target is None:
        raise ParameterError(f"policy {pol.name!r} has a utility floor: give the target column (--target NAME or "
                             "utility.target in the policy)")
    dp_plan = plan_decision(pol, sch, target)
    extra = check_targeted(targeted, sch)
    scanner = _pii_scanner(pol)
    suite = _audit_suite(pol)
    workers = min(os.cpu_count() or 1, 8) if workers is None else check.positive_int("workers", workers)
    threads = None if threads is None else check_threads(threads)
    engine = _engine(engine, data, cls, spark_master)
    real: Any
    if engine != "numpy":  # the rows stay in the engine; it validates them (counts only) and fingerprints them
        real, input_name, input_sha256 = _open_in_engine(data, engine, spark_master, sch)
    elif isinstance(data, pd.DataFrame):
        real = data
        input_name, input_sha256 = "<DataFrame>", sha256_bytes(data.to_csv(index=False).encode("utf-8"))
    else:
        real = read_table(data)
        input_name, input_sha256 = Path(data).name, sha256_path(data)
    _check_rows(real, sch, engine)
    schema_file = ({"name": schema_path.name, "sha256": sha256_path(schema_path)} if schema_path is not None else
                   {"name": "<Schema>", "sha256": sha256_bytes(json.dumps(sch.to_dict(), sort_keys=True).encode())})
    check_events = dp_plan.events() if dp_plan is not None else []
    return ReleaseInputs(synthesizer=synthesizer, epsilon=epsilon, delta=delta, dataset=dataset,
                         insecure_seed=insecure_seed, seed=seed, pol=pol, out_dir=out_dir, schema_path=schema_path,
                         sch=sch, cls=cls, params=params, probe=probe, events=events, claimed=claimed, rows=rows,
                         led=led, statement_before=statement_before, target=target, dp_plan=dp_plan,
                         scanner=scanner, suite=suite, real=real, input_name=input_name, input_sha256=input_sha256,
                         workers=workers, threads=threads, schema_file=schema_file, check_events=check_events,
                         engine=engine, series=series, targeted=extra)


def _check_rows(real: Any, sch: Any, engine: str) -> None:
    """A table in memory against its schema and, at a user unit, its person keys (exit 2, before any charge);
    an engine's table was validated where it lives (its keys too)."""
    from dpsynth.marginals.bounding import check_keys
    from dpsynth.schema.encode import encode

    if engine == "numpy":
        encode(real, sch)  # a table that does not fit its schema is a user mistake (exit 2), before any charge
        if sch.privacy_unit.column is not None:
            check_keys(real, sch.privacy_unit.column)  # every row names its person


def _check_unit(sch: Any, cls: Any, synthesizer: str, dataset: str, registered: str, pol: Policy) -> None:
    """The schema's privacy unit against the synthesizer and the dataset's registered unit, before anything."""
    from dpsynth.privacy.ledger import LedgerError
    from dpsynth.privacy.unit import unit_refusal

    unit = sch.privacy_unit
    if unit.is_user and not getattr(cls, "user_level", False):
        raise ParameterError(f"synthesizer {synthesizer!r} does not support the privacy unit {unit.label} "
                             f"({unit.describe()}) yet; MST, AIM, dpvae and dpctgan do")
    if unit.is_user and pol.audit is not None and pol.audit.method != "canary":
        raise ParameterError(f"policy {pol.name!r}: audit.method {pol.audit.method!r} audits rows; at the privacy "
                             f"unit {unit.label} the release audit is the canary audit (audit.method: canary)")
    refusal = unit_refusal(dataset, registered, unit, f"{synthesizer} at the schema's privacy unit")
    if refusal is not None:  # the ledger's own refusal, before anything is read or charged
        raise LedgerError(refusal)


def _engine(engine: str, data: Any, cls: Any, spark_master: str | None) -> str:
    """The engine that holds the private table (``--engine``; ``auto`` as for ``fit``, except that a large
    file stays in memory unless the engine is named: see the comment below)."""
    from dpsynth.marginals.engines import choose_engine, held_by

    # by_size=False: the DP replay check splits the real rows by the engine's hash, so the engine changes a
    # published noisy figure, and a file's size (a function of the private rows) must not choose it
    chosen = choose_engine(engine, data, fits_on_marginals=getattr(cls, "fits_on_marginals", False),
                           spark_master=spark_master, by_size=False)
    if chosen != "numpy" and isinstance(data, pd.DataFrame):
        raise ParameterError(f"engine ({engine!r}): a pandas DataFrame is in memory already; use engine numpy or "
                             "auto, or give the table's path")
    if held_by(data) == "duckdb":
        raise ParameterError("release reads a DuckDB table by its path (its checks register the synthetic table "
                             "in the same connection): give the file, folder or glob")
    return chosen


def _open_in_engine(data: Any, engine: str, spark_master: str | None, sch: Any) -> tuple[Any, str, str]:
    """(the open source, its name for the report, its fingerprint), the table validated against ``sch``
    in the engine (a DataError, exit 2, names the column and the count of bad cells; nothing is charged)."""
    from dpsynth.marginals.engines import held_by, open_source

    source: Any = open_source(data, engine, spark_master=spark_master)
    try:
        source.validate(sch)
        fingerprint = source.fingerprint(sch)
    except BaseException:
        source.close()
        raise
    name = "<Spark DataFrame>" if held_by(data) == "spark" else Path(str(data)).name
    return source, name, fingerprint


def _pii_scanner(pol: Policy) -> Any:
    """The policy's PII scanner, or None without a ``pii`` section (an entity type Presidio does not
    know is a ParameterError)."""
    if pol.pii is None:
        return None
    from dpsynth.pii.scan import PIIScanner

    scanner = PIIScanner(threshold=pol.pii.threshold, use_ner=pol.pii.ner)
    known = set(scanner.engine.known_entities())
    bad = [e for e in pol.pii.forbidden_entities if e not in known]
    if bad:
        raise ParameterError(f"policy {pol.name!r}: pii.forbidden_entities names {', '.join(map(repr, bad))}, "
                             f"which Presidio does not know (known: {', '.join(sorted(known))})")
    return scanner


def _audit_suite(pol: Policy) -> dict[str, Any] | None:
    """The policy's reference audit suite (a relative path is looked up beside the policy file first), or None."""
    if pol.audit is None or not pol.audit.suite:
        return None
    from dpsynth.audit.suite import load_suite

    suite_path = Path(pol.audit.suite)
    if not suite_path.is_absolute() and pol.path:
        candidate = Path(pol.path).resolve().parent / suite_path
        suite_path = candidate if candidate.is_file() else suite_path
    return load_suite(suite_path)
