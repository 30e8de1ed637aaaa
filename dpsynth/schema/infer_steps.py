"""The private computation of a schema inference: what each planned mechanism measures (cell kinds,
level counts, a log-scale histogram for bounds) and the post-processing of its noisy output into
column declarations. Also what the no-privacy opt-in reads (the same counts, exact)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from dpsynth._limits import MAX_LEVELS
from dpsynth.exceptions import InternalError
from dpsynth.mechanisms import NoiseSource
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema.column import plain_number
from dpsynth.schema.encode import missing_mask, numbers_of
from dpsynth.schema.infer_hints import ColumnTask, Hints
from dpsynth.schema.infer_plan import InferencePlan

if TYPE_CHECKING:
    from dpsynth.schema.infer_counts import ColumnCounts

OTHER = "<other>"
#: A column is numeric when its noisy text count is below this many noise scales.
KIND_MARGIN = 3.0

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


def finite_numbers(values: pd.Series, missing: np.ndarray) -> np.ndarray:
    """Finite numbers of the cells (NaN where missing, text or not finite); encode reads the same."""
    out = numbers_of(values, missing)
    out[~np.isfinite(out)] = np.nan
    return out


def cell_counts(values: pd.Series, missing_values: Sequence[str]) -> np.ndarray:
    """[integers, other numbers, text] among the non-missing cells: each row adds to one at most."""
    missing = missing_mask(values, missing_values)
    numbers = finite_numbers(values, missing)
    is_number = ~np.isnan(numbers)
    integral = is_number & (np.floor(np.where(is_number, numbers, 0.0)) == np.where(is_number, numbers, 0.0))
    n_number = int(is_number.sum())
    n_int = int(integral.sum())
    return np.array([n_int, n_number - n_int, int((~missing).sum()) - n_number], dtype=np.int64)


def decide_kind(noisy: np.ndarray, scale: float) -> str:
    """Post-processing of the noisy [integers, other numbers, text] counts of a column."""
    margin = KIND_MARGIN * scale
    n_int, n_frac, n_text = (int(v) for v in noisy)
    if n_text < margin and n_int + n_frac >= margin:
        return "integer" if n_frac < margin else "continuous"
    return "categorical"


def value_counts(values: pd.Series, missing_values: Sequence[str]) -> dict[str, int]:
    """Exact counts of the non-missing values of a column, as text (what the partition selection measures)."""
    missing = missing_mask(values, missing_values)
    text = values[~missing].astype("string")
    return {str(k): int(v) for k, v in text.value_counts(sort=False).items()}


def _other_name(levels: Sequence[str], wanted: str) -> str:
    name, i = wanted, 2
    while name in levels:  # never one of the levels (post-processing: only the released levels)
        name, i = f"{wanted[:-1]} {i}>" if wanted.endswith(">") else f"{wanted} {i}", i + 1
    return name


def numeric_column(task: ColumnTask, kind: str, low: float, high: float, default_bins: Any) -> dict[str, Any]:
    """The declaration of a numeric column from its bounds (learned with DP, or read under the opt-in)."""
    spec: dict[str, Any] = {"name": task.name, "kind": kind}
    if kind == "integer":
        low, high = float(math.floor(low)), float(math.ceil(high))
    if not low < high:
        high = low + 1.0
    spec["bounds"] = [plain_number(low), plain_number(high)]
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


def categorical_column(task: ColumnTask, levels: Sequence[str], other: str | None) -> dict[str, Any]:
    """The declaration of a categorical column from its released levels."""
    spec: dict[str, Any] = {"name": task.name, "kind": "categorical", "levels": sorted(levels)}
    if other is not None:
        spec["other"] = _other_name(spec["levels"], other)
    spec["nullable"] = task.keep.get("nullable", True)
    if "description" in task.keep:
        spec["description"] = task.keep["description"]
    return spec


def _kinds(data: ColumnCounts, hints: Hints, plan: InferencePlan, noise: NoiseSource,
           odometer: Odometer) -> dict[str, str]:
    """Step 1: the kind of every column, declared or (open columns) decided from noisy counts of
    integers, other numbers and text."""
    kinds: dict[str, str] = {}
    for task in hints.tasks:
        if task.declared is not None:
            kinds[task.name] = str(task.declared["kind"])
        elif task.kind is not None:
            kinds[task.name] = task.kind
    for task in hints.tasks:
        if task.open:
            if plan.kinds is None:
                raise InternalError("the inference plan has no kinds mechanism for an open column")
            noisy = plan.kinds(data.cell_counts(task.name), noise=noise, odometer=odometer)
            kinds[task.name] = decide_kind(noisy, plan.kinds.scale)
    return kinds


def _levels(data: ColumnCounts, categorical: list[ColumnTask], hints: Hints, plan: InferencePlan, noise: NoiseSource,
            odometer: Odometer) -> dict[str, list[str]]:
    """Step 2: the released levels of the categorical columns, one partition selection over all."""
    if not categorical:
        return {}
    if plan.levels is None:
        raise InternalError("the inference plan has no levels mechanism for a categorical column")
    data.prefetch(values=[t.name for t in categorical])  # one pass in an engine
    # in sorted order: every engine (and any row order) pairs the same noise draw with the same value
    groups = cast(list[Mapping[Hashable, int]], [dict(sorted(data.value_counts(t.name).items()))
                                                 for t in categorical])
    kept = plan.levels(groups, noise=noise, odometer=odometer)
    return {task.name: [str(k) for k in levels] for task, levels in zip(categorical, kept, strict=True)}


def _bounds(data: ColumnCounts, numeric: list[ColumnTask], hints: Hints, plan: InferencePlan, quantile: float,
            noise: NoiseSource, odometer: Odometer) -> dict[str, tuple[float, float]]:
    """Step 3: the bounds of the numeric columns, a noisy histogram each over the public log-scale grid."""
    bounds: dict[str, tuple[float, float]] = {}
    data.prefetch(bins=[t.name for t in numeric])  # one pass in an engine
    for task in numeric:
        if plan.bounds is None:
            raise InternalError("the inference plan has no bounds mechanism for a numeric column")
        noisy = plan.bounds(data.bounds_histogram(task.name), noise=noise, odometer=odometer)
        found = bounds_from_histogram(noisy, plan.bounds.scale, quantile)
        bounds[task.name] = found if found is not None else (0.0, 1.0)
    return bounds


def run_inference(
    data: ColumnCounts,
    hints: Hints,
    plan: InferencePlan,
    *,
    default_bins: Any,
    bounds_quantile: float,
    other: str,
    noise: NoiseSource,
    odometer: Odometer,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The column declarations, learned with the planned mechanisms (spent through ``odometer``) from
    the private table's per-column counts ``data`` (read with the hints' missing values), and the
    kind of every column and where it came from."""
    kinds = _kinds(data, hints, plan, noise, odometer)
    categorical = [t for t in hints.tasks if t.declared is None and kinds[t.name] == "categorical"]
    released = _levels(data, categorical, hints, plan, noise, odometer)
    numeric = [t for t in hints.tasks if t.declared is None and kinds[t.name] in ("integer", "continuous")]
    bounds = _bounds(data, numeric, hints, plan, bounds_quantile, noise, odometer)
    columns = []
    for task in hints.tasks:
        if task.declared is not None:
            columns.append(dict(task.declared))
        elif kinds[task.name] == "categorical":
            # Post-processing of the released levels: past the schema's limit (docs/limits.md), the first
            # in sorted order are kept and every other value encodes to the other level.
            kept = sorted(released[task.name])[: MAX_LEVELS - 1]
            columns.append(categorical_column(task, kept, task.keep.get("other", other)))
        else:
            columns.append(numeric_column(task, kinds[task.name], *bounds[task.name], default_bins))
    origin = {t.name: ("declared" if t.declared is not None else "dp") for t in hints.tasks}
    return columns, origin
