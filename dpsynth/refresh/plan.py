"""A refresh plan: the YAML file that ``dpsynth refresh PLAN`` runs (``docs/refresh.md``).

One file says everything a series of releases needs: the dataset and its ledger, where the
snapshots come from, the synthesizer and its ε per refresh, the policy, the row count (public), the
horizon the budget must last and where the versions go. Every problem in the file is reported in
one line (``plan file 'P' is invalid: key: what was expected; …``, exit 2) before anything is read
or charged. Paths are relative to the plan file's folder.

::

    version: 1
    dataset: adult                      # its name in the ledger (registered with `dpsynth ledger create`)
    ledger: sqlite:///ledger.db         # or postgresql://…; default $DPSYNTH_LEDGER
    snapshots: snapshots/adult-*.csv    # a glob, or a folder; each file's name carries its date
    schema: adult.schema.yaml
    synthesizer: mst
    synthesizer_params: {}
    epsilon: 1.0                        # per refresh (the table; the policy's DP checks come on top)
    delta: 1.0e-9
    policy: default                     # a shipped policy or a file
    rows: 16000                         # public; omit for the synthesizer's DP estimate
    horizon: {refreshes: 12}            # or {until: 2027-12-01, every: monthly}
    allow_short_horizon: false          # true: release even when the budget cannot last the horizon
    releases: releases                  # versions go to releases/<dataset>/v0001/, v0002/, …
    targeted:                           # optional: extra tables of each released version, from the same fit
      - {name: high-income, rows: 2000, conditions: {income: ">50K"}}
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError

#: the cadences a horizon with an end date may name (``every``), and their length in days
CADENCES = {"daily": 1, "weekly": 7, "monthly": None, "quarterly": None}
_EVERY_DAYS = re.compile(r"^([1-9][0-9]{0,3}) days?$")
_KEYS = {"version", "dataset", "ledger", "snapshots", "schema", "synthesizer", "synthesizer_params", "epsilon", "delta",
         "policy", "rows", "horizon", "allow_short_horizon", "releases", "target", "engine", "seed", "privacy_unit",
         "insecure_seed", "description", "targeted"}
_REQUIRED = ("dataset", "snapshots", "schema", "synthesizer", "epsilon", "delta", "policy", "horizon", "releases")


class PlanError(ParameterError):
    """A refresh plan is unreadable or invalid (exit 2)."""


@dataclass(frozen=True)
class Horizon:
    """How long the budget must last: a number of refreshes, or an end date with a cadence."""

    refreshes: int | None = None
    until: dt.date | None = None
    every: str | None = None

    def left(self, done: int, on: dt.date) -> int:
        """Refreshes the budget must still pay for, the one about to run included: the plan's count
        less the versions ``done``, or the cadence's dates from ``on`` (the snapshot's date) to the end
        date. At least 1: a refresh past its horizon must still fit the cap itself."""
        if self.refreshes is not None:
            return max(1, self.refreshes - done)
        assert self.until is not None and self.every is not None
        if on > self.until:
            return 1
        if self.every in ("monthly", "quarterly"):
            months = (self.until.year - on.year) * 12 + self.until.month - on.month - (self.until.day < on.day)
            return 1 + max(0, months) // (1 if self.every == "monthly" else 3)
        days = CADENCES.get(self.every) or int(_EVERY_DAYS.match(self.every).group(1))  # type: ignore[union-attr]
        return 1 + (self.until - on).days // days

    def describe(self) -> str:
        """The horizon in words."""
        if self.refreshes is not None:
            return f"{self.refreshes} refreshes"
        return f"{self.every} until {self.until}"


@dataclass(frozen=True)
class RefreshPlan:
    """A validated refresh plan (paths resolved against the plan file's folder)."""

    path: Path
    dataset: str
    ledger: str
    snapshots: str
    schema: Path
    synthesizer: str
    epsilon: float
    delta: float
    policy: str
    horizon: Horizon
    releases: Path
    synthesizer_params: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None
    allow_short_horizon: bool = False
    target: str | None = None
    engine: str = "auto"
    seed: int = 0
    privacy_unit: dict[str, Any] | None = None
    insecure_seed: int | None = None
    description: str = ""
    #: targeted tables of each released version: ``[{name, rows, conditions}]`` (``dpsynth.release.targeted``)
    targeted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def series_dir(self) -> Path:
        """Where this plan's versions go: ``releases/<dataset>/``."""
        return self.releases / self.dataset


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{key}: {message}")


def _text(raw: dict[str, Any], key: str, p: _Problems, *, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            p.add(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        p.add(key, "must be a non-empty string")
        return None
    return value.strip()


def _number(raw: dict[str, Any], key: str, p: _Problems, *, high: float | None = None) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        p.add(key, "must be a number > 0" + ("" if value is not None else " (it is required)"))
        return 1.0
    if high is not None and value >= high:
        p.add(key, f"must be < {high:g}")
    return float(value)


def _integer(raw: dict[str, Any], key: str, p: _Problems, *, low: int, default: int | None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        p.add(key, f"must be an integer >= {low}")
        return default
    return int(value)


def _horizon(raw: Any, p: _Problems) -> Horizon:
    if not isinstance(raw, dict) or not raw:
        p.add("horizon", "must be a mapping: {refreshes: N} or {until: YYYY-MM-DD, every: monthly}")
        return Horizon(refreshes=1)
    unknown = sorted(set(raw) - {"refreshes", "until", "every"})
    if unknown:
        p.add(f"horizon.{unknown[0]}", "unknown key (known: every, refreshes, until)")
    if "refreshes" in raw:
        if "until" in raw or "every" in raw:
            p.add("horizon", "give either refreshes or until and every, not both")
        n = _integer(raw, "refreshes", p, low=1, default=1)
        return Horizon(refreshes=n)
    until, every = raw.get("until"), raw.get("every")
    if isinstance(until, str):
        try:
            until = dt.date.fromisoformat(until)
        except ValueError:
            until = None
    if not isinstance(until, dt.date) or isinstance(until, dt.datetime):
        p.add("horizon.until", "must be a date YYYY-MM-DD")
        until = dt.date.max
    if not isinstance(every, str) or not (every in CADENCES or _EVERY_DAYS.match(every)):
        p.add("horizon.every", f"must be one of {', '.join(CADENCES)} or 'N days'")
        every = "monthly"
    return Horizon(until=until, every=every)


def _unit(raw: Any, p: _Problems) -> dict[str, Any] | None:
    if raw is None:
        return None
    if (not isinstance(raw, dict) or set(raw) != {"column", "max_rows"} or not isinstance(raw["column"], str)
            or isinstance(raw["max_rows"], bool) or not isinstance(raw["max_rows"], int) or raw["max_rows"] < 1):
        p.add("privacy_unit", "must be {column: NAME, max_rows: K} with K an integer >= 1, or null")
        return None
    return dict(raw)


def _ledger(raw: dict[str, Any], base: Path, p: _Problems) -> str | None:
    """The ledger's URL (default ``$DPSYNTH_LEDGER``); a SQLite ledger's relative path is relative to the
    plan's folder, like every path of the plan."""
    url = _text(raw, "ledger", p, required=False)
    prefix = "sqlite:///"
    if url is not None and url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        url = prefix + str(base / url[len(prefix):])
    url = url or os.environ.get("DPSYNTH_LEDGER")
    if not url:
        p.add("ledger", "is required (a ledger URL, or $DPSYNTH_LEDGER): every refresh is charged")
    return url


def parse_plan(raw: object, *, path: Path) -> RefreshPlan:
    """Validate a plan mapping (as read from YAML) whose file is ``path``.

    Raises:
        PlanError: every problem of the plan, in one line.
    """
    where = f"plan file {str(path)!r}"
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: must be a YAML mapping with the keys {', '.join(_REQUIRED)}")
    p = _Problems()
    for key in sorted(set(raw) - _KEYS):
        p.add(str(key), f"unknown key (known: {', '.join(sorted(_KEYS))})")
    if raw.get("version") != 1:
        p.add("version", "must be 1")
    base = path.resolve().parent
    dataset = _text(raw, "dataset", p)
    if dataset is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", dataset):
        p.add("dataset", "must be a name of letters, digits, '_', '.' or '-' (it names the series' folder)")
    ledger = _ledger(raw, base, p)
    snapshots, schema = _text(raw, "snapshots", p), _text(raw, "schema", p)
    synthesizer, policy = _text(raw, "synthesizer", p), _text(raw, "policy", p)
    releases = _text(raw, "releases", p)
    epsilon, delta = _number(raw, "epsilon", p), _number(raw, "delta", p, high=1.0)
    params = raw.get("synthesizer_params") or {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        p.add("synthesizer_params", "must be a mapping of parameter names to values")
        params = {}
    rows = _integer(raw, "rows", p, low=1, default=None)
    horizon = _horizon(raw.get("horizon"), p) if "horizon" in raw else None
    if horizon is None:
        p.add("horizon", "is required: {refreshes: N} or {until: YYYY-MM-DD, every: monthly}")
    allow = raw.get("allow_short_horizon", False)
    if not isinstance(allow, bool):
        p.add("allow_short_horizon", "must be true or false")
    target = _text(raw, "target", p, required=False)
    engine = _text(raw, "engine", p, required=False) or "auto"
    seed = _integer(raw, "seed", p, low=0, default=0)
    insecure_seed = _integer(raw, "insecure_seed", p, low=0, default=None)
    unit = _unit(raw.get("privacy_unit"), p)
    targeted = raw.get("targeted") or []
    if not isinstance(targeted, list) or not all(isinstance(t, dict) for t in targeted):
        p.add("targeted", "must be a list of {name, rows, conditions}")
        targeted = []
    description = raw.get("description", "")
    if not isinstance(description, str):
        p.add("description", "must be a string")
    if p.items:
        raise PlanError(f"{where} is invalid: " + "; ".join(p.items))
    assert dataset and ledger and snapshots and schema and synthesizer and policy and releases and horizon
    policy_path = base / policy
    return RefreshPlan(
        path=path, dataset=dataset, ledger=ledger, snapshots=str(base / snapshots), schema=base / schema,
        synthesizer=synthesizer, epsilon=epsilon, delta=delta,
        policy=str(policy_path) if policy_path.is_file() or "/" in policy or policy.endswith((".yaml", ".yml"))
        else policy, horizon=horizon, releases=base / releases, synthesizer_params=dict(params), rows=rows,
        allow_short_horizon=bool(allow), target=target, engine=engine, seed=seed or 0, privacy_unit=unit,
        insecure_seed=insecure_seed, description=" ".join(str(description).split()), targeted=list(targeted))


def load_plan(path: str | Path) -> RefreshPlan:
    """Read and validate a refresh plan file (YAML)."""
    from dpsynth.io import read_config

    p = Path(path)
    if not p.is_file():
        raise PlanError(f"plan file {str(path)!r} does not exist")
    raw, _ = read_config(p, what="plan file", error=PlanError, fmt="yaml")
    return parse_plan(raw, path=p)


__all__ = ["CADENCES", "Horizon", "PlanError", "RefreshPlan", "load_plan", "parse_plan"]
