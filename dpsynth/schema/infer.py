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
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pandas as pd

from dpsynth import _validation as check
from dpsynth.exceptions import DataError, InternalError, ParameterError, SchemaWithoutPrivacyWarning
from dpsynth.mechanisms import make_noise
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.unit import ROW, PrivacyUnit
from dpsynth.schema.declaration import MAX_INTEGER_LEVELS, SCHEMA_WITHOUT_PRIVACY
from dpsynth.schema.infer_counts import ColumnCounts, FrameCounts, PersonCounts
from dpsynth.schema.infer_hints import ColumnTask, Hints, parse_hints
from dpsynth.schema.infer_plan import InferencePlan, plan_inference
from dpsynth.schema.infer_steps import (
    BOUNDS_MARGIN,
    KIND_MARGIN,
    OTHER,
    bounds_from_histogram,
    bounds_grid,
    bounds_histogram,
    categorical_column,
    numeric_column,
    run_inference,
)
from dpsynth.schema.schema import SCHEMA_VERSION, Schema

if TYPE_CHECKING:
    from dpsynth.privacy.ledger import Ledger, Untracked

BIN_EDGES = ("dp_quantiles", "uniform")
SYNTHESIZER_NAME = "schema_infer"

__all__ = [
    "BIN_EDGES", "BOUNDS_MARGIN", "KIND_MARGIN", "OTHER", "SYNTHESIZER_NAME", "ColumnTask", "Hints", "InferencePlan",
    "bounds_from_histogram", "bounds_grid", "bounds_histogram", "dump_schema", "infer_schema", "plan_inference",
    "read_schema_without_privacy",
]


class _FrameTable:
    """The private table read into memory (pandas): a DataFrame, or a CSV/Parquet file read whole."""

    def __init__(self, data: pd.DataFrame | str | Path):
        self.data = data

    def header(self) -> list[str]:
        data = self.data
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
        raise ParameterError(f"data ({type(data).__name__}) must be a pandas DataFrame, a path to a table, a DuckDB "
                             "relation or a Spark DataFrame")

    def counts(self, header: list[str], missing_values: Sequence[str]) -> FrameCounts:
        """Read the rows (after everything public has been checked)."""
        if isinstance(self.data, pd.DataFrame):
            if len(self.data) == 0:
                raise DataError("the data has no rows")
            frame = self.data
        else:
            from dpsynth.io import read_table

            frame = read_table(self.data)
        absent = [c for c in header if c not in frame.columns]
        if absent:  # a DataFrame is its own header; a file's rows come with the header just read
            raise DataError(f"the data has no column(s) {', '.join(repr(c) for c in absent)}")
        return FrameCounts(frame, missing_values)

    def fingerprint(self, counts: ColumnCounts) -> str:
        if isinstance(self.data, (str, Path)):
            from dpsynth.io import sha256_file

            return sha256_file(self.data)
        return counts.fingerprint()

    def close(self) -> None:
        pass


class _Table(Protocol):
    def header(self) -> list[str]: ...
    def counts(self, header: list[str], missing_values: Sequence[str]) -> ColumnCounts: ...
    def fingerprint(self, counts: ColumnCounts) -> str: ...
    def close(self) -> None: ...


def _open(data: Any, engine: str, spark_master: str | None) -> _Table:
    """The table, counted where ``engine`` says (:func:`dpsynth.marginals.engines.choose_engine`)."""
    from dpsynth.marginals.engines import choose_engine

    chosen = choose_engine(engine, data, fits_on_marginals=True, spark_master=spark_master)
    if chosen == "numpy":
        return _FrameTable(data)
    from dpsynth.marginals.profile import open_table

    return open_table(data, chosen, spark_master=spark_master)


def _bounded_counts(counts: FrameCounts, header: list[str], unit: PrivacyUnit,
                    missing_values: Sequence[str]) -> PersonCounts:
    """The counts of the table with each person's rows beyond K dropped (key checked: none missing)."""
    from dpsynth.marginals.bounding import bound_raw_rows, check_keys

    frame = counts.frame
    keys = check_keys(frame, cast(str, unit.column))
    kept = bound_raw_rows(keys, frame[header], unit.max_rows)
    people = pd.factorize(keys.iloc[kept], sort=False)[0]
    return PersonCounts(frame.iloc[kept][header].reset_index(drop=True), people, missing_values)


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



def infer_schema(
    data: pd.DataFrame | str | Path,
    *,
    epsilon: float,
    delta: float,
    ledger: Ledger | Untracked | None = None,
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
    engine: str = "auto",
    spark_master: str | None = None,
    privacy_unit: PrivacyUnit | None = None,
) -> Schema:
    """A schema for ``data`` learned with (ε, δ)-DP and charged to ``ledger`` for ``dataset``.

    Args:
        data: the private table: a pandas DataFrame, the path of a CSV/Parquet file (a folder or
            glob of Parquet files for an engine), a ``duckdb.DuckDBPyRelation`` or a
            ``pyspark.sql.DataFrame``. Its header is read first; the rows only once everything
            public has been checked.
        epsilon: the ε this inference spends.
        delta: the δ this inference spends (never derived from the data).
        ledger: a :class:`~dpsynth.privacy.ledger.Ledger` (with ``dataset``), or
            ``dpsynth.UNTRACKED`` (warns).
        dataset: the ledger's dataset the inference is charged to.
        hints: a partial schema (path, mapping or Schema): complete column declarations are used
            as they are; a column with only its kind gets the rest learned (levels, or bounds);
            columns not named are learned entirely. Its ``missing_values`` and ``name`` are used.
        split_kinds: share in (0, 1] of ρ for the kinds (the three shares are normalised over the
            steps the hints leave to do).
        split_categories: share in (0, 1] of ρ for the levels.
        split_bounds: share in (0, 1] of ρ for the bounds.
        split_delta_threshold: share of δ (below 1) for the partition selection's thresholding.
        bins: K, the bins of the learned numeric columns (integer columns with at most K
            integers get one level per integer).
        bin_edges: ``dp_quantiles`` (edges chosen, and charged, by the fit) or ``uniform``.
        bounds_quantile: the bounds cut off about this share of the values at each end (they are
            clamped), on the log-scale grid.
        other: name of the level that values not released encode to.
        name: the schema's name (default: the hints', else the dataset's).
        insecure_seed: seed the privacy noise (INSECURE, tests only; warns and is recorded).
        engine: where the counts are computed: ``auto``, ``numpy`` (in memory), ``duckdb`` or
            ``spark`` (:mod:`dpsynth.marginals.engines`); the same counts, so the same schema for
            the same seed.
        spark_master: the Spark master for ``engine="spark"``.
        privacy_unit: ``PrivacyUnit.users(column, max_rows=K)`` to protect one person with up to K rows
            (in memory, DuckDB or Spark): the key column is left out of the schema (and written as its
            ``privacy_unit``), each person's rows beyond K are dropped before counting (by the digest of
            their cells' text: :func:`~dpsynth.marginals.bounding.bound_raw_rows`), the levels are
            counted in distinct people, and every sensitivity is scaled by K. Default: one row.

    Returns:
        the schema, with ``provenance`` (method ``dp``, the budget, the ledger entry, the dataset).

    Raises:
        ParameterError, SchemaError, DataError: bad input, before anything is charged.
        BudgetExceededError: the dataset's cap would be exceeded (nothing is charged).
    """
    from dpsynth.privacy.ledger import check_ledger_argument

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
    unit = ROW if privacy_unit is None else privacy_unit
    if not isinstance(unit, PrivacyUnit) or (unit.is_user and unit.column is None):
        raise ParameterError(f"privacy_unit ({privacy_unit!r}) must be a PrivacyUnit (users: with its key column)")
    table = _open(data, engine, spark_master)
    try:
        return _infer(table, budget, ledger, dataset, hints, k=k, edges=edges, q=q, other=other, name=name,
                      insecure_seed=insecure_seed, splits=(split_kinds, split_categories, split_bounds,
                                                           split_delta_threshold), unit=unit)
    finally:
        table.close()


def _infer(table: _Table, budget: ApproxDP, ledger: Ledger | Untracked | None, dataset: str | None, hints: Any, *,
           k: int, edges: str, q: float, other: str, name: str | None, insecure_seed: int | None,
           splits: tuple[float, float, float, float], unit: PrivacyUnit = ROW) -> Schema:
    from dpsynth._version import __version__
    from dpsynth.privacy.ledger import Ledger

    split_kinds, split_categories, split_bounds, split_delta_threshold = splits
    header = table.header()
    if unit.column is not None:  # the person key is never a column of the schema
        if unit.column not in header:
            raise DataError(f"data has no column {unit.column!r}: the privacy unit is keyed by it")
        header = [h for h in header if h != unit.column]
    parsed = parse_hints(header, hints, bins=_default_bins(k, edges))
    plan = plan_inference(
        parsed.tasks,
        budget,
        split_kinds=split_kinds,
        split_categories=split_categories,
        split_bounds=split_bounds,
        split_delta_threshold=split_delta_threshold,
        max_rows=unit.max_rows if unit.is_user else 1,
    )
    events = plan.events()
    if ledger is None:  # check_ledger_argument refused it
        raise InternalError("infer_schema reached its charge without a ledger")
    if isinstance(ledger, Ledger):
        ledger.check(str(dataset), events, claimed=budget)  # fail early, before reading the rows
    if unit.column is None:
        counts = table.counts(header, parsed.missing_values)
    elif isinstance(table, _FrameTable):  # each person's rows beyond K dropped before anything is counted
        counts = _bounded_counts(table.counts(header, parsed.missing_values), header, unit, parsed.missing_values)
    else:  # the same rule in the engine
        counts = cast(Any, table).person_counts(header, parsed.missing_values, unit.column, unit.max_rows)
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
        str(dataset),
        events,
        synthesizer=SYNTHESIZER_NAME,
        claimed=budget,
        input_sha256=table.fingerprint(counts),
        parameters=parameters,
        unit=unit,
        opt_ins=opt_ins,
    )
    start = time.perf_counter()
    noise = make_noise(insecure_seed)
    try:
        columns, origin = run_inference(
            counts,
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
    if unit.is_user:
        spec["privacy_unit"] = unit.to_dict()
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
    engine: str = "auto",
    spark_master: str | None = None,
) -> Schema:
    """A schema read from the data WITHOUT privacy: levels are the values seen, bounds the
    minimum and maximum seen, kinds what the cells parse as.

    This is a loud, named opt-in (``schema_read_from_data_without_privacy``): it warns
    (:class:`~dpsynth.exceptions.SchemaWithoutPrivacyWarning`), the schema's provenance carries the
    opt-in, and every release built on the schema reports it. Use it only when the table's domain
    is public already; otherwise use :func:`infer_schema`. ``data``, ``engine`` and
    ``spark_master`` as for :func:`infer_schema`.
    """
    k, edges = _check_binning(bins, bin_edges)
    table = _open(data, engine, spark_master)
    try:
        header = table.header()
        parsed = parse_hints(header, hints, bins=_default_bins(k, edges))
        counts = table.counts(header, parsed.missing_values)
        warnings.warn(
            "the schema was read from the data without privacy (opt-in schema_read_from_data_without_privacy): its "
            "levels and bounds may reveal individuals, and every release built on it reports this opt-in",
            SchemaWithoutPrivacyWarning,
            stacklevel=2,
        )
        columns = [_read_column(task, counts, _default_bins(k, edges)) for task in parsed.tasks]
    finally:
        table.close()
    spec = {
        "version": SCHEMA_VERSION,
        "name": name or parsed.name or "",
        "missing_values": list(parsed.missing_values),
        "columns": columns,
        "provenance": {"method": "public", "opt_in": SCHEMA_WITHOUT_PRIVACY},
    }
    return Schema.from_dict(spec)


def _read_column(task: ColumnTask, counts: ColumnCounts, default_bins: Any) -> dict[str, Any]:
    """The declaration of one column read from its exact counts (the no-privacy opt-in)."""
    if task.declared is not None:
        return dict(task.declared)
    keep = dict(task.keep)
    keep.setdefault("nullable", counts.missing_count(task.name) > 0)
    task = dataclasses.replace(task, keep=keep)
    kind = task.kind
    if kind is None:
        n_int, n_frac, n_text = (int(v) for v in counts.cell_counts(task.name))
        kind = "categorical" if n_text or not (n_int + n_frac) else ("integer" if not n_frac else "continuous")
    if kind == "categorical":
        levels = list(counts.value_counts(task.name))
        return categorical_column(task, levels, task.keep.get("other", None if levels else OTHER))
    found = counts.number_range(task.name)
    if found is None:
        raise DataError(f"column {task.name!r}: no numbers to read bounds from")
    return numeric_column(task, kind, found[0], found[1], default_bins)


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
