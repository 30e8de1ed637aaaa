"""Reading an audit suite file (YAML): every problem listed in one line, the defaults filled in.

The file's shape is ``suite.schema.json`` (JSON Schema, beside this module); the defaults and
bounds of every parameter are :mod:`dpsynth.audit.defaults`'; what a JSON Schema cannot say (the
guesses of a one-run audit at most its canaries) is checked here. The format is in
:mod:`dpsynth.audit.suite`'s docstring and ``docs/audit.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dpsynth.audit.defaults import (
    ATTACKS,
    BLACKBOX,
    CANARY,
    DATASETS,
    NOISES,
    ONERUN,
    PAIRS,
    REPLAY,
    SCORINGS,
    THRESHOLDS,
    WHITEBOX,
)
from dpsynth.exceptions import ParameterError

_KINDS = ("blackbox", "canary", "onerun", "replay", "whitebox")
_TOP_KEYS = {"version", "synthesizer_params", "data", "audits", "description"}


class SuiteError(ParameterError):
    """A suite file is malformed (every problem is listed)."""


class _Audit:
    """One entry of ``audits``: its mapping (defaults filled in place) and its problems."""

    def __init__(self, audit: dict[str, Any], where: str, problems: list[str]):
        self.audit, self.where, self.problems = audit, where, problems

    def problem(self, key: str | None, message: str) -> None:
        self.problems.append(f"{self.where}.{key} {message}" if key else f"{self.where} {message}")

    def bounded(self, defaults: Any, keys: Sequence[str], *, fill: bool = True) -> None:
        """Each key within its bound (``fill``: absent keys get their default)."""
        for key in keys:
            if fill:
                self.audit.setdefault(key, getattr(defaults, key))
            elif key not in self.audit:
                continue
            bound = defaults.BOUNDS[key]
            if not bound.accepts(self.audit[key]):
                self.problem(key, f"({self.audit[key]!r}) must be {bound.constraint}")

    def choice(self, key: str, default: str, choices: Sequence[str], *, quoted: bool = False, why: str = "") -> None:
        """``key`` one of ``choices`` (``quoted``: named as ``'a', 'b' or 'c'``)."""
        value = self.audit.setdefault(key, default)
        if value not in choices:
            listed = (", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}") if quoted else \
                f"one of {', '.join(choices)}"
            self.problem(key, f"({value!r}) must be {listed}{why}")

    def names(self, key: str, default: Sequence[str], known: Sequence[str]) -> None:
        value = self.audit.setdefault(key, list(default))
        if not isinstance(value, list) or not value or any(v not in known for v in value):
            self.problem(key, f"must be a non-empty list of {', '.join(known)}")

    def only(self, keys: set[str]) -> None:
        extra = set(self.audit) - keys - {"kind"}
        if extra:
            self.problem(None, f"has unknown key(s) {', '.join(sorted(map(str, extra)))}")


def _blackbox(a: _Audit) -> None:
    a.choice("dataset", "adult", DATASETS)
    a.bounded(BLACKBOX, ("fits_per_world", "canaries", "outliers", "reference_rows", "seed", "workers"))
    a.names("attacks", ATTACKS, ATTACKS)
    a.bounded(BLACKBOX, ("confidence",))
    a.choice("noise", BLACKBOX.noise, NOISES, quoted=True)
    a.only({"dataset", "fits_per_world", "canaries", "outliers", "reference_rows", "attacks", "confidence", "noise",
            "seed", "workers"})


def _onerun(a: _Audit) -> None:
    a.bounded(ONERUN, ("canaries",))
    guesses = a.audit.setdefault("guesses", ONERUN.guesses)
    canaries = a.audit["canaries"]
    too_many = ONERUN.BOUNDS["canaries"].accepts(canaries) and isinstance(guesses, int) and guesses > canaries
    if guesses is not None and (not ONERUN.BOUNDS["guesses"].accepts(guesses) or guesses % 2 or too_many):
        a.problem("guesses", f"({guesses!r}) must be null or an even integer in [2, canaries]")
    a.bounded(ONERUN, ("base_rows", "seed"))
    a.bounded(ONERUN, ("min_distance",), fill=False)
    a.choice("scoring", ONERUN.scoring, SCORINGS, quoted=True)
    a.bounded(ONERUN, ("confidence",))
    a.only({"canaries", "guesses", "base_rows", "seed", "min_distance", "scoring", "confidence"})


def _canary(a: _Audit) -> None:
    a.choice("schema", CANARY.schema, DATASETS, why=" (a bundled public schema; the audit's tables are drawn from it)")
    a.bounded(CANARY, ("fits", "base_rows", "sample_factor", "seed", "confidence"))
    a.only({"schema", "fits", "base_rows", "sample_factor", "seed", "confidence"})


def _replay(a: _Audit) -> None:
    a.names("pairs", REPLAY.pairs, PAIRS)
    a.only({"pairs"})


def _whitebox(a: _Audit) -> None:
    a.bounded(WHITEBOX, ("trials_per_world",), fill=False)
    if "trials_per_world" not in a.audit:
        a.problem("trials_per_world", "(None) must be an integer >= 1")
    a.bounded(WHITEBOX, ("confidence",))
    a.choice("noise", WHITEBOX.noise, NOISES, quoted=True)
    a.choice("threshold", WHITEBOX.threshold, THRESHOLDS, quoted=True)
    a.bounded(WHITEBOX, ("seed",), fill=False)
    a.only({"trials_per_world", "confidence", "noise", "threshold", "seed"})


_CHECKS = {"blackbox": _blackbox, "canary": _canary, "onerun": _onerun, "replay": _replay, "whitebox": _whitebox}


def _check_data(data: object, problems: list[str]) -> None:
    if not isinstance(data, dict):
        problems.append("data must be a mapping with generator, columns and rows")
        return
    if data.get("generator") != "worst_case_pair":
        problems.append(f"data.generator ({data.get('generator')!r}) must be 'worst_case_pair'")
    columns = data.get("columns")
    values = REPLAY.BOUNDS["columns"]
    if not isinstance(columns, dict) or len(columns) < 2 or not all(values.accepts(v) for v in columns.values()):
        problems.append("data.columns must map at least 2 column names to a number of values >= 2")
    rows = data.setdefault("rows", REPLAY.rows)
    if not REPLAY.BOUNDS["rows"].accepts(rows):
        problems.append(f"data.rows ({rows!r}) must be {REPLAY.BOUNDS['rows'].constraint}")


def check_suite(suite: dict[str, Any]) -> list[str]:
    """Every problem of a parsed suite (empty when valid); fills in the defaults in place."""
    problems: list[str] = []
    unknown = set(suite) - _TOP_KEYS
    if unknown:
        from dpsynth.io.config import key_names

        problems.append(f"suite has unknown key(s) {key_names(unknown)}")
    if suite.get("version") != 1:
        problems.append(f"version ({suite.get('version')!r}) must be 1")
    params = suite.setdefault("synthesizer_params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        problems.append("synthesizer_params must map parameter names to values")
    _check_data(suite.get("data"), problems)
    audits = suite.get("audits")
    if not isinstance(audits, list) or not audits:
        problems.append("audits must be a non-empty list")
        audits = []
    for i, audit in enumerate(audits):
        where = f"audits[{i}]"
        if not isinstance(audit, dict) or audit.get("kind") not in _KINDS:
            problems.append(f"{where} must be a mapping with kind one of {', '.join(_KINDS)}")
            continue
        _CHECKS[audit["kind"]](_Audit(audit, where, problems))
    return problems


def shipped_suite(name: str) -> Path:
    """Path of an audit suite shipped in the package (``dpsynth/audit/suites/``: ``mst``, ``aim``,
    ``mst_blackbox``, ``dpctgan``, ``dpvae``, ``plugin``), found through importlib.resources.

    Raises:
        SuiteError: no shipped suite has that name.
    """
    from dpsynth._shipped import SUITES, shipped_file, shipped_names

    path = shipped_file(SUITES, name)
    if path is None:
        raise SuiteError(f"suite {name!r} is not a shipped suite (shipped: {', '.join(shipped_names(SUITES))}; "
                         "pass --suite PATH for a suite file)")
    return path


def load_suite(path: str | Path) -> dict[str, Any]:
    """Read and validate a suite file, or a shipped suite by name (:func:`shipped_suite`).

    Raises:
        SuiteError: the file cannot be read or is invalid (every problem in one line).
    """
    from dpsynth._file_schema import SUITE_FILE, with_schema_problems
    from dpsynth._shipped import is_builtin_name
    from dpsynth.io.config import read_config

    if is_builtin_name(path) and not Path(path).is_file():
        path = shipped_suite(str(path))
    path = Path(path)
    suite, _ = read_config(  # one line for a missing, unreadable, too large or non-UTF-8 file, or a directory
        path, what="suite file", error=SuiteError, fmt="yaml")
    if not isinstance(suite, dict):
        raise SuiteError(f"suite file {str(path)!r} must hold a mapping with version, data and audits")
    written = copy.deepcopy(suite)  # the file as written, for its JSON Schema (before the defaults)
    problems = with_schema_problems(check_suite(suite), written, SUITE_FILE, top="suite")
    if problems:
        raise SuiteError(f"suite file {str(path)!r} is invalid: " + "; ".join(problems))
    return suite
