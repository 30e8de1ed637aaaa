"""A schema learned from the private table: with DP and charged (``infer_schema``), or read without
privacy under a loud, named opt-in (``read_schema_without_privacy``).

What is public: the column names (the header), the hints (a partial schema the user declares) and
the parameters. Everything else is learned with DP, from a plan fixed by those public inputs
alone, reserved in the ledger before any private value is looked at:

1. **Kinds** of the columns the hints leave open. Each cell is one of: missing, an integer, a
   number that is not an integer, or text. The three non-missing counts of every open column get
   discrete Gaussian noise (one row moves one count per column by one: L2 sensitivity 1 per
   column, ``split_kinds`` of ρ shared evenly). A column is numeric when its noisy text count is
   below 3σ and its noisy number count is not; integer when, in addition, its noisy non-integer
   count is below 3σ. Otherwise it is categorical.
2. **Levels** of categorical columns (hinted without levels, or open): a DP partition selection
   (:class:`~dpsynth.mechanisms.PartitionSelection`) over all of them at once, L0 = number of such
   columns, ``split_categories`` of ρ, and the threshold calibrated to ``split_delta_threshold`` of
   δ. The column gets an ``other`` level that every value not released encodes to.
3. **Bounds** of numeric columns (hinted without bounds, or open): a noisy histogram of the
   column over a fixed public log-scale grid (edges 0 and ±m·10^k for m = 1 … 9, k = −3 … 12;
   values beyond the grid fall in its outermost bins), discrete Gaussian noise (each row in one
   bin: L2 sensitivity 1 per column, ``split_bounds`` of ρ shared evenly). Post-processing: bins
   whose noisy count is below 5σ count as empty; the low bound is the lower edge of the first bin
   at which the kept counts reach the ``bounds_quantile`` share of their total, the high bound the
   upper edge of the last such bin from the top (whole numbers for integer columns). The bins are
   then ``{dp_quantiles: K}`` (chosen, and charged, by the fit) or K uniform bins, as asked.

The plan assumes the worst case for open columns (each may turn out categorical or numeric), so
its cost does not depend on the data; a column that turns out numeric is simply not part of the
partition selection, which only lowers that mechanism's true cost. Open and discovered columns are
declared ``nullable`` (whether a column has missing values is itself private) unless the hints say
otherwise.

Privacy: (ε, δ)-DP for the ``epsilon`` and ``delta`` asked for: the events compose to ρ-zCDP plus an
additive δ_thr ≤ ``split_delta_threshold``·δ, and ρ is the largest with
zcdp_epsilon(ρ, δ − δ_thr/(1 − δ_thr)) ≤ ε. Everything after the noisy measurements is
post-processing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth._limits import MAX_LEVELS
from dpsynth.exceptions import DataError, ParameterError, SchemaError, SchemaWithoutPrivacyWarning
from dpsynth.mechanisms import GaussianCounts, NoiseSource, PartitionSelection, make_noise
from dpsynth.privacy.accounting import rho_within
from dpsynth.privacy.budgets import ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent, total_delta, total_rho
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema.schema import (
    DEFAULT_MISSING,
    MAX_INTEGER_LEVELS,
    SCHEMA_VERSION,
    SCHEMA_WITHOUT_PRIVACY,
    Schema,
    _parse_column,
    _parse_provenance,
    read_spec,
)

if TYPE_CHECKING:
    from dpsynth.privacy.ledger import Ledger, _Untracked

OTHER = "<other>"
#: A column is numeric when its noisy text count is below this many noise scales.
KIND_MARGIN = 3.0
BIN_EDGES = ("dp_quantiles", "uniform")
SYNTHESIZER_NAME = "schema_infer"

_CATEGORICAL_PARTIAL_KEYS = {"name", "kind", "other", "nullable", "description"}
_NUMERIC_PARTIAL_KEYS = {"name", "kind", "bins", "nullable", "description"}
_OPEN_KEYS = {"name", "nullable", "description"}


# ------------------------------------------------------------------------------------------------
# public inputs: header, hints, parameters


@dataclasses.dataclass(frozen=True)
class _Task:
    """What to do for one column, decided from public information only."""

    name: str
    #: a complete column declaration (used as is), or None
    declared: Mapping[str, Any] | None = None
    #: the hinted kind of a partial column; None when the kind is to be decided with DP
    kind: str | None = None
    #: hinted keys kept for the inferred column (nullable, other, bins, description)
    keep: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.declared is None and self.kind is None

    @property
    def may_be_categorical(self) -> bool:
        return self.declared is None and self.kind in (None, "categorical")

    @property
    def may_be_numeric(self) -> bool:
        return self.declared is None and self.kind in (None, "integer", "continuous")


@dataclasses.dataclass(frozen=True)
class _Hints:
    tasks: tuple[_Task, ...]
    missing_values: tuple[str, ...]
    name: str
    opt_in: str | None


def _load_hints(hints: str | Path | Mapping[str, Any] | Schema | None) -> tuple[Mapping[str, Any], str]:
    if hints is None:
        return {}, ""
    if isinstance(hints, Schema):
        return hints.to_dict(), "hints"
    if isinstance(hints, Mapping):
        return hints, "hints"
    if isinstance(hints, (str, Path)):
        return read_spec(hints, what="hints file"), f"hints file {str(hints)!r}"
    raise ParameterError(f"hints ({hints!r}) must be a path to a partial schema, a mapping or a Schema")


def _parse_hints(header: Sequence[str], hints: str | Path | Mapping[str, Any] | Schema | None, *, bins: Any) -> _Hints:
    """Tasks for every column of ``header`` from the hints; all problems at once, as a SchemaError."""
    spec, where = _load_hints(hints)
    problems: list[str] = []
    unknown = set(spec) - {"version", "name", "missing_values", "columns", "description", "provenance"}
    if unknown:
        problems.append(f"unknown top-level key(s) {sorted(unknown)}")
    if spec.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        problems.append(f"version ({spec.get('version')!r}) must be {SCHEMA_VERSION}")
    missing = spec.get("missing_values", list(DEFAULT_MISSING))
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        problems.append("missing_values must be a list of strings")
        missing = list(DEFAULT_MISSING)
    opt_in = None
    provenance = spec.get("provenance")
    if provenance is not None:
        parsed, errs = _parse_provenance(provenance)
        problems.extend(errs)
        opt_in = (parsed or {}).get("opt_in")
    raw_columns = spec.get("columns", [])
    if not isinstance(raw_columns, list):
        problems.append("columns must be a list")
        raw_columns = []
    by_name: dict[str, _Task] = {}
    known = set(header)
    for i, raw in enumerate(raw_columns):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not isinstance(name, str) or not name:
            problems.append(f"columns[{i}] must be a mapping with a name")
            continue
        if name not in known:
            problems.append(f"column {name!r} is not in the data (its columns: {', '.join(header)})")
            continue
        if name in by_name:
            problems.append(f"column {name!r} is hinted twice")
            continue
        task, errs = _hint_task(raw, i, bins)
        problems.extend(errs)
        if task is not None:
            by_name[name] = task
    if problems:
        prefix = f"{where}: " if where else ""
        raise SchemaError(prefix + "; ".join(problems))
    tasks = tuple(by_name.get(name, _Task(name=name)) for name in header)
    return _Hints(tasks, tuple(missing), str(spec.get("name", "") or ""), opt_in)


def _hint_task(raw: Mapping[str, Any], i: int, bins: Any) -> tuple[_Task | None, list[str]]:
    name = raw["name"]
    where = f"column {name!r}"
    kind = raw.get("kind")
    keep = {k: raw[k] for k in ("nullable", "description") if k in raw}
    if "nullable" in raw and not isinstance(raw["nullable"], bool):
        return None, [f"{where}: nullable ({raw['nullable']!r}) must be true or false"]
    if kind is None:
        extra = set(raw) - _OPEN_KEYS
        if extra:
            return None, [f"{where}: give the kind to hint {sorted(extra)}"]
        return _Task(name=name, keep=keep), []
    if kind == "categorical" and "levels" not in raw:
        extra = set(raw) - _CATEGORICAL_PARTIAL_KEYS
        if extra:
            return None, [f"{where}: unknown key(s) {sorted(extra)}"]
        other = raw.get("other")
        if other is not None and (not isinstance(other, str) or not other):
            return None, [f"{where}: other ({other!r}) must be a non-empty string"]
        if other is not None:
            keep["other"] = other
        return _Task(name=name, kind="categorical", keep=keep), []
    if kind in ("integer", "continuous") and "bounds" not in raw and "edges" not in raw:
        extra = set(raw) - _NUMERIC_PARTIAL_KEYS
        if extra:
            return None, [f"{where}: unknown key(s) {sorted(extra)}"]
        if "bins" in raw:
            # Check the binning's syntax on stand-in bounds; the real ones are learned with DP.
            _, errs = _parse_column({"name": name, "kind": kind, "bounds": [0, 10**12], "bins": raw["bins"]}, i)
            if errs:
                return None, errs
            keep["bins"] = raw["bins"]
        return _Task(name=name, kind=kind, keep=keep), []
    if kind == "datetime" and "bounds" not in raw and "edges" not in raw:
        return None, [f"{where}: a datetime column needs declared bounds (schema infer does not estimate them)"]
    declared = dict(raw)
    if kind in ("integer", "continuous") and "bins" not in declared and "edges" not in declared:
        col, errs = _parse_column(declared, i)
        if col is None:  # bounds without bins: the default binning
            declared["bins"] = bins
    _, errs = _parse_column(declared, i)
    if errs:
        return None, errs
    return _Task(name=name, declared=declared), []


def _header_of(data: pd.DataFrame | str | Path) -> list[str]:
    if isinstance(data, pd.DataFrame):
        names = list(data.columns)
        if not names:
            raise DataError("the data has no columns")
        if not all(isinstance(n, str) and n for n in names):
            raise DataError("the data's column names must be non-empty strings")
        if len(set(names)) != len(names):
            raise DataError("the data's column names must be distinct")
        return names
    if isinstance(data, (str, Path)):
        from dpsynth.io import read_header

        return read_header(data)
    raise ParameterError(f"data ({type(data).__name__}) must be a pandas DataFrame or a path to a table")


def _read(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        if len(data) == 0:
            raise DataError("the data has no rows")
        return data
    from dpsynth.io import read_table

    return read_table(data)


def _default_bins(numeric_bins: int, bin_edges: str) -> Any:
    return {"dp_quantiles": numeric_bins} if bin_edges == "dp_quantiles" else numeric_bins


def _check_binning(numeric_bins: object, bin_edges: object) -> tuple[int, str]:
    if bin_edges not in BIN_EDGES:
        raise ParameterError(f"bin_edges ({bin_edges!r}) must be one of {', '.join(BIN_EDGES)}")
    k = check.positive_int("bins", numeric_bins)
    if bin_edges == "dp_quantiles" and k < 2:
        raise ParameterError(f"bins ({numeric_bins!r}) must be at least 2 for DP quantile bins")
    if k > MAX_INTEGER_LEVELS:
        raise ParameterError(f"bins ({numeric_bins!r}) must be at most {MAX_INTEGER_LEVELS}")
    return k, str(bin_edges)


def _share(name: str, value: object) -> float:
    x = check.positive_finite(name, value)
    if x > 1:
        raise ParameterError(f"{name} ({value!r}) must be at most 1 (a share of the budget)")
    return x


# ------------------------------------------------------------------------------------------------
# the plan (public information only)


@dataclasses.dataclass(frozen=True)
class InferencePlan:
    """The mechanisms of one DP schema inference and what each costs (data-independent)."""

    kinds: GaussianCounts | None  # once per open column, on its 3 counts (integer, other number, text)
    n_open: int
    levels: PartitionSelection | None  # once, over every column that may be categorical
    bounds: GaussianCounts | None  # once per column that may be numeric, on its log-scale histogram
    n_numeric: int
    budget: ApproxDP
    delta_threshold: float  # the share of δ reserved for the thresholding (an upper bound of its δ_thr)

    def events(self) -> list[PrivacyEvent]:
        out: list[PrivacyEvent] = []
        if self.kinds is not None:
            out += [self.kinds.event] * self.n_open
        if self.levels is not None:
            out.append(self.levels.event)
        if self.bounds is not None:
            out += [self.bounds.event] * self.n_numeric
        return out

    @property
    def rho(self) -> float:
        return total_rho(self.events())

    @property
    def additive_delta(self) -> float:
        return total_delta(self.events())


def plan_inference(
    tasks: Sequence[_Task],
    budget: ApproxDP,
    *,
    split_kinds: float,
    split_categories: float,
    split_bounds: float,
    split_delta_threshold: float,
) -> InferencePlan:
    """Calibrate the mechanisms for ``tasks`` within ``budget`` (ε, δ)."""
    weights = {
        "kinds": _share("split_kinds", split_kinds),
        "categories": _share("split_categories", split_categories),
        "bounds": _share("split_bounds", split_bounds),
    }
    share_delta = check.positive_finite("split_delta_threshold", split_delta_threshold)
    if share_delta >= 1:
        raise ParameterError(f"split_delta_threshold ({split_delta_threshold!r}) must be below 1 (a share of delta)")
    n_open = sum(t.open for t in tasks)
    n_categorical = sum(t.may_be_categorical for t in tasks)
    n_numeric = sum(t.may_be_numeric for t in tasks)
    used = {"kinds": n_open > 0, "categories": n_categorical > 0, "bounds": n_numeric > 0}
    delta_threshold = share_delta * budget.delta if n_categorical else 0.0
    if not any(used.values()):
        return InferencePlan(None, 0, None, None, 0, budget, 0.0)
    rho = ZCDP(rho_within(budget.epsilon, budget.delta, delta_threshold))
    names = [k for k in weights if used[k]]
    parts = dict(zip(names, rho.split([weights[k] for k in names]), strict=True))
    kinds = levels = bounds = None
    if used["kinds"]:
        kinds = GaussianCounts.for_rho(parts["kinds"].rho / n_open, label="schema_kind")
    if used["categories"]:
        levels = PartitionSelection.calibrate(
            parts["categories"].rho, delta_threshold, max_partitions=n_categorical, label="schema_levels"
        )
    if used["bounds"]:
        bounds = GaussianCounts.for_rho(parts["bounds"].rho / n_numeric, label="schema_bounds")
    plan = InferencePlan(kinds, n_open, levels, bounds, n_numeric, budget, delta_threshold)
    assert plan.additive_delta <= delta_threshold
    assert plan.rho <= rho.rho * (1 + 1e-12)
    return plan


# ------------------------------------------------------------------------------------------------
# the private computation


#: Bins of the bounds histogram whose noisy count is below this many noise scales count as empty.
BOUNDS_MARGIN = 5.0


@lru_cache(maxsize=1)
def bounds_grid() -> np.ndarray:
    """The public, data-independent edges of the bounds histogram: 0 and ±m·10^k (m = 1 … 9,
    k = −3 … 12) and 1e13, increasing. Bin i is [edge i, edge i+1); values below the first edge or
    from the last one on fall in the outermost bins."""
    positive = [float(f"{m}e{k}") for k in range(-3, 13) for m in range(1, 10)]
    return np.array([-v for v in reversed(positive)] + [0.0] + positive + [1e13])


def bounds_histogram(numbers: np.ndarray) -> np.ndarray:
    """Counts of ``numbers`` in the bins of :func:`bounds_grid` (each value in exactly one bin)."""
    edges = bounds_grid()
    index = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(index, minlength=len(edges) - 1).astype(np.int64)


def bounds_from_histogram(noisy: np.ndarray, scale: float, quantile: float) -> tuple[float, float] | None:
    """Post-processing of a noisy bounds histogram: (low, high), or None if no bin is clearly held."""
    edges = bounds_grid()
    kept = np.where(noisy >= BOUNDS_MARGIN * scale, noisy, 0).astype(float)
    total = kept.sum()
    if total <= 0:
        return None
    need = quantile * total
    low = int(np.argmax(np.cumsum(kept) > need))  # first bin at which the kept mass passes q
    high = len(kept) - 1 - int(np.argmax(np.cumsum(kept[::-1]) > need))
    return float(edges[low]), float(edges[high + 1])


def _missing(values: pd.Series, missing_values: Sequence[str]) -> np.ndarray:
    mask = np.array(values.isna().to_numpy(), dtype=bool)
    if missing_values:
        tokens = values.astype("string").isin(list(missing_values)).fillna(False)
        mask |= np.asarray(tokens.to_numpy(dtype=bool))
    return mask


def _numbers(values: pd.Series, missing: np.ndarray) -> np.ndarray:
    """Finite numbers of the cells (NaN where missing, text or not finite); encode reads the same."""
    numeric = pd.to_numeric(values.where(~missing), errors="coerce").astype("Float64")
    out = numeric.to_numpy(dtype=float, na_value=np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


def _cell_counts(values: pd.Series, missing_values: Sequence[str]) -> np.ndarray:
    """[integers, other numbers, text] among the non-missing cells: each row adds to one at most."""
    missing = _missing(values, missing_values)
    numbers = _numbers(values, missing)
    is_number = ~np.isnan(numbers)
    integral = is_number & (np.floor(np.where(is_number, numbers, 0.0)) == np.where(is_number, numbers, 0.0))
    n_number = int(is_number.sum())
    n_int = int(integral.sum())
    return np.array([n_int, n_number - n_int, int((~missing).sum()) - n_number], dtype=np.int64)


def _decide_kind(noisy: np.ndarray, scale: float) -> str:
    """Post-processing of the noisy [integers, other numbers, text] counts of a column."""
    margin = KIND_MARGIN * scale
    n_int, n_frac, n_text = (int(v) for v in noisy)
    if n_text < margin and n_int + n_frac >= margin:
        return "integer" if n_frac < margin else "continuous"
    return "categorical"


def _value_counts(values: pd.Series, missing_values: Sequence[str]) -> dict[str, int]:
    missing = _missing(values, missing_values)
    text = values[~missing].astype("string")
    return {str(k): int(v) for k, v in text.value_counts(sort=False).items()}


def _other_name(levels: Sequence[str], wanted: str) -> str:
    name, i = wanted, 2
    while name in levels:  # never one of the levels (post-processing: only the released levels)
        name, i = f"{wanted[:-1]} {i}>" if wanted.endswith(">") else f"{wanted} {i}", i + 1
    return name


def _numeric_column(task: _Task, kind: str, low: float, high: float, default_bins: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": task.name, "kind": kind}
    if kind == "integer":
        low, high = float(math.floor(low)), float(math.ceil(high))
    if not low < high:
        high = low + 1.0
    spec["bounds"] = [_plain(low), _plain(high)]
    bins = task.keep.get("bins", default_bins)
    k = bins["dp_quantiles"] if isinstance(bins, Mapping) else int(bins)
    if kind == "integer" and high - low + 1 <= max(k, 1):
        pass  # few integers: one level per integer
    else:
        spec["bins"] = dict(bins) if isinstance(bins, Mapping) else bins
    spec["nullable"] = task.keep.get("nullable", True)
    if "description" in task.keep:
        spec["description"] = task.keep["description"]
    return spec


def _categorical_column(task: _Task, levels: Sequence[str], other: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": task.name, "kind": "categorical", "levels": sorted(levels)}
    if other is not None:
        spec["other"] = _other_name(spec["levels"], other)
    spec["nullable"] = task.keep.get("nullable", True)
    if "description" in task.keep:
        spec["description"] = task.keep["description"]
    return spec


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _run(
    data: pd.DataFrame,
    hints: _Hints,
    plan: InferencePlan,
    *,
    default_bins: Any,
    bounds_quantile: float,
    other: str,
    noise: NoiseSource,
    odometer: Odometer,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The column declarations, learned with the planned mechanisms (spent through ``odometer``),
    and the kind of every column and where it came from."""
    missing_values = hints.missing_values
    kinds: dict[str, str] = {}
    for task in hints.tasks:
        if task.declared is not None:
            kinds[task.name] = str(task.declared["kind"])
        elif task.kind is not None:
            kinds[task.name] = task.kind
    # 1. kinds of the open columns: noisy counts of integers, other numbers and text
    for task in hints.tasks:
        if task.open:
            assert plan.kinds is not None
            noisy = plan.kinds(_cell_counts(data[task.name], missing_values), noise=noise, odometer=odometer)
            kinds[task.name] = _decide_kind(noisy, plan.kinds.scale)
    # 2. levels of the categorical columns: one partition selection over all of them
    categorical = [t for t in hints.tasks if t.declared is None and kinds[t.name] == "categorical"]
    released: dict[str, list[str]] = {}
    if categorical:
        assert plan.levels is not None
        groups = [_value_counts(data[t.name], missing_values) for t in categorical]
        for task, kept in zip(categorical, plan.levels(groups, noise=noise, odometer=odometer), strict=True):
            released[task.name] = [str(k) for k in kept]
    # 3. bounds of the numeric columns: a noisy histogram each over the public log-scale grid
    bounds: dict[str, tuple[float, float]] = {}
    for task in hints.tasks:
        if task.declared is None and kinds[task.name] in ("integer", "continuous"):
            assert plan.bounds is not None
            values = data[task.name]
            numbers = _numbers(values, _missing(values, missing_values))
            noisy = plan.bounds(bounds_histogram(numbers[~np.isnan(numbers)]), noise=noise, odometer=odometer)
            found = bounds_from_histogram(noisy, plan.bounds.scale, bounds_quantile)
            bounds[task.name] = found if found is not None else (0.0, 1.0)
    columns = []
    for task in hints.tasks:
        if task.declared is not None:
            columns.append(dict(task.declared))
        elif kinds[task.name] == "categorical":
            # Post-processing of the released levels: past the schema's limit (docs/limits.md), the first
            # in sorted order are kept and every other value encodes to the other level.
            kept = sorted(released[task.name])[: MAX_LEVELS - 1]
            columns.append(_categorical_column(task, kept, task.keep.get("other", other)))
        else:
            columns.append(_numeric_column(task, kinds[task.name], *bounds[task.name], default_bins))
    origin = {t.name: ("declared" if t.declared is not None else "dp") for t in hints.tasks}
    return columns, origin


def _fingerprint(data: pd.DataFrame | str | Path, frame: pd.DataFrame) -> str:
    if isinstance(data, (str, Path)):
        from dpsynth.io import sha256_file

        return sha256_file(data)
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(np.ascontiguousarray(hashed).tobytes()).hexdigest()


def infer_schema(
    data: pd.DataFrame | str | Path,
    *,
    epsilon: float,
    delta: float,
    ledger: Ledger | _Untracked | None = None,
    dataset: str | None = None,
    hints: str | Path | Mapping[str, Any] | Schema | None = None,
    split_kinds: float = 0.1,
    split_categories: float = 0.6,
    split_bounds: float = 0.3,
    split_delta_threshold: float = 0.5,
    bins: int = 8,
    bin_edges: str = "dp_quantiles",
    bounds_quantile: float = 0.01,
    other: str = OTHER,
    name: str | None = None,
    insecure_seed: int | None = None,
) -> Schema:
    """A schema for ``data`` learned with (ε, δ)-DP and charged to ``ledger`` for ``dataset``.

    Args:
        data: the private table, or the path of a CSV/Parquet file (its header is read first; the
            rows only once everything public has been checked).
        epsilon, delta: the (ε, δ) this inference spends (δ never derived from the data).
        ledger: a :class:`~dpsynth.privacy.ledger.Ledger` (with ``dataset``), or
            ``dpsynth.UNTRACKED`` (warns).
        hints: a partial schema (path, mapping or Schema): complete column declarations are used
            as they are; a column with only its kind gets the rest learned (levels, or bounds);
            columns not named are learned entirely. Its ``missing_values`` and ``name`` are used.
        split_kinds, split_categories, split_bounds: shares in (0, 1] of ρ for the kinds, the
            levels and the bounds, normalised over the steps the hints leave to do.
        split_delta_threshold: share of δ (below 1) for the partition selection's thresholding.
        bins, bin_edges: K and ``dp_quantiles`` (edges chosen, and charged, by the fit) or
            ``uniform`` for the learned numeric columns (integer columns with at most K integers
            get one level per integer).
        bounds_quantile: the bounds cut off about this share of the values at each end (they are
            clamped), on the log-scale grid.
        other: name of the level that values not released encode to.
        insecure_seed: seed the privacy noise (INSECURE, tests only; warns and is recorded).

    Returns:
        the schema, with ``provenance`` (method ``dp``, the budget, the ledger entry, the dataset).

    Raises:
        ParameterError, SchemaError, DataError: bad input, before anything is charged.
        BudgetExceededError: the dataset's cap would be exceeded (nothing is charged).
    """
    from dpsynth import __version__
    from dpsynth.privacy.ledger import Ledger, check_ledger_argument

    budget = ApproxDP(check.positive_finite("epsilon", epsilon), check.open_unit("delta", delta))
    k, edges = _check_binning(bins, bin_edges)
    q = check.positive_finite("bounds_quantile", bounds_quantile)
    if q >= 0.5:
        raise ParameterError(f"bounds_quantile ({bounds_quantile!r}) must be below 0.5")
    if not isinstance(other, str) or not other:
        raise ParameterError(f"other ({other!r}) must be a non-empty string")
    if insecure_seed is not None and (isinstance(insecure_seed, bool) or not isinstance(insecure_seed, int)):
        raise ParameterError(f"insecure_seed ({insecure_seed!r}) must be an integer or None")
    check_ledger_argument(ledger, dataset, doing="infer")
    header = _header_of(data)
    parsed = _parse_hints(header, hints, bins=_default_bins(k, edges))
    plan = plan_inference(
        parsed.tasks,
        budget,
        split_kinds=split_kinds,
        split_categories=split_categories,
        split_bounds=split_bounds,
        split_delta_threshold=split_delta_threshold,
    )
    events = plan.events()
    if isinstance(ledger, Ledger):
        ledger.check(dataset, events, claimed=budget)  # fail early, before reading the rows
    frame = _read(data)
    absent = [c for c in header if c not in frame.columns]
    if absent:  # a DataFrame is its own header; a file's rows come with the header just read
        raise DataError(f"the data has no column(s) {', '.join(repr(c) for c in absent)}")
    parameters = {
        "split_kinds": split_kinds,
        "split_categories": split_categories,
        "split_bounds": split_bounds,
        "split_delta_threshold": split_delta_threshold,
        "bins": k,
        "bin_edges": edges,
        "bounds_quantile": q,
        "insecure_seed": insecure_seed,
    }
    opt_ins = [parsed.opt_in] if parsed.opt_in else []
    reservation = ledger.reserve(
        dataset,
        events,
        synthesizer=SYNTHESIZER_NAME,
        claimed=budget,
        input_sha256=_fingerprint(data, frame),
        parameters=parameters,
        unit="row",
        opt_ins=opt_ins,
    )
    start = time.perf_counter()
    noise = make_noise(insecure_seed)
    try:
        columns, origin = _run(
            frame,
            parsed,
            plan,
            default_bins=_default_bins(k, edges),
            bounds_quantile=q,
            other=other,
            noise=noise,
            odometer=reservation.odometer,
        )
    except BaseException as exc:
        reservation.fail(type(exc).__name__)  # the budget stays spent: noise may have been drawn
        raise
    provenance: dict[str, Any] = {
        "method": "dp",
        "epsilon": budget.epsilon,
        "delta": budget.delta,
        "rho": plan.rho,
        "additive_delta": plan.additive_delta,
        "ledger_entry": reservation.id,
        "dataset": dataset,
        "secure_noise": bool(noise.secure),
        "dpsynth_version": __version__,
        "columns": origin,
    }
    if insecure_seed is not None:
        provenance["insecure_seed"] = insecure_seed
    if parsed.opt_in:
        provenance["opt_in"] = parsed.opt_in
    spec = {
        "version": SCHEMA_VERSION,
        "name": name or parsed.name or dataset or "",
        "missing_values": list(parsed.missing_values),
        "columns": columns,
        "provenance": provenance,
    }
    schema = Schema.from_dict(spec)
    reservation.complete(
        seconds=round(time.perf_counter() - start, 3), events_run=len(reservation.odometer.events), opt_ins=opt_ins
    )
    return schema


def read_schema_without_privacy(
    data: pd.DataFrame | str | Path,
    *,
    hints: str | Path | Mapping[str, Any] | Schema | None = None,
    bins: int = 8,
    bin_edges: str = "dp_quantiles",
    name: str | None = None,
) -> Schema:
    """A schema read from the data WITHOUT privacy: levels are the values seen, bounds the
    minimum and maximum seen, kinds what the cells parse as.

    This is a loud, named opt-in (``schema_read_from_data_without_privacy``): it warns
    (:class:`~dpsynth.exceptions.SchemaWithoutPrivacyWarning`), the schema's provenance carries the
    opt-in, and every release built on the schema reports it. Use it only when the table's domain
    is public already; otherwise use :func:`infer_schema`.
    """
    k, edges = _check_binning(bins, bin_edges)
    header = _header_of(data)
    parsed = _parse_hints(header, hints, bins=_default_bins(k, edges))
    frame = _read(data)
    warnings.warn(
        "the schema was read from the data without privacy (opt-in schema_read_from_data_without_privacy): its "
        "levels and bounds may reveal individuals, and every release built on it reports this opt-in",
        SchemaWithoutPrivacyWarning,
        stacklevel=2,
    )
    missing_values = parsed.missing_values
    columns = []
    for task in parsed.tasks:
        if task.declared is not None:
            columns.append(dict(task.declared))
            continue
        values = frame[task.name]
        missing = _missing(values, missing_values)
        keep = dict(task.keep)
        keep.setdefault("nullable", bool(missing.any()))
        task = dataclasses.replace(task, keep=keep)
        kind = task.kind
        if kind is None:
            n_int, n_frac, n_text = _cell_counts(values, missing_values)
            kind = "categorical" if n_text or not (n_int + n_frac) else ("integer" if not n_frac else "continuous")
        if kind == "categorical":
            levels = list(_value_counts(values, missing_values))
            columns.append(_categorical_column(task, levels, task.keep.get("other", None if levels else OTHER)))
        else:
            numbers = _numbers(values, missing)
            numbers = numbers[~np.isnan(numbers)]
            if not len(numbers):
                raise DataError(f"column {task.name!r}: no numbers to read bounds from")
            columns.append(
                _numeric_column(task, kind, float(numbers.min()), float(numbers.max()), _default_bins(k, edges))
            )
    spec = {
        "version": SCHEMA_VERSION,
        "name": name or parsed.name or "",
        "missing_values": list(missing_values),
        "columns": columns,
        "provenance": {"method": "public", "opt_in": SCHEMA_WITHOUT_PRIVACY},
    }
    return Schema.from_dict(spec)


def dump_schema(schema: Schema, path: str | Path) -> Path:
    """Write ``schema`` atomically as YAML (or JSON for a ``.json`` path)."""
    import json

    from dpsynth.io import write_text

    spec = schema.to_dict()
    if Path(path).suffix.lower() == ".json":
        text = json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
    return write_text(text, path)
