"""Copy checks (the ``dpsynth replay`` command, a policy's ``replay`` rules): does a synthetic table copy real records?

:func:`copy_check` returns a :class:`CopyReport` (its JSON names the report ``dpsynth.pii.replay``).
The replay audit of a synthesizer's mechanism use is another thing: :mod:`dpsynth.audit.replay`.

Three rates, each beside the same rate for real rows the generator never saw (a holdout), because
in a small domain (a few categorical columns) two real people share a row by chance, and a copy
rate is only a leak when it is higher than that:

* ``exact``: the share of synthetic rows equal to some real row on every schema column;
* ``quasi_identifiers``: the same on the columns the schema marks ``quasi_identifier: true``, and
  the share that match a combination held by exactly one real row (the re-identifying case);
* ``near``: the share whose distance to the closest real record (DCR) is at most a threshold, with
  a mixed-type distance: categorical columns 0 when equal and 1 otherwise, numeric and date columns
  ``|a - b| / (high - low)`` with the schema's PUBLIC bounds, missing equal to missing (0) and
  unequal to a value (1); the mean over columns (Gower's distance, in [0, 1]). Exact copies are
  near copies too; DCR quantiles are reported for both sides (:mod:`dpsynth.pii.encoding`).

Without a holdout, the real table is split at random (seeded): 80% is the reference and 20% the
baseline (real-vs-real chance matches). With ``holdout``, the whole real table is the reference and
the holdout rows are the baseline: give the rows that were held out from the synthesizer's fit.

A rate is flagged when it is higher than the baseline's with a one-sided Fisher exact test at
``alpha`` (and there is at least one match).

Privacy: NOT differentially private. These checks read the real data and are internal evidence;
the report holds rates, counts and distance quantiles, never a row or a value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError, ParameterError
from dpsynth.pii.encoding import encode_tables, nearest_distances
from dpsynth.schema.schema import Schema

REPORT_VERSION = 1
DEFAULT_NEAR_THRESHOLD = 0.02
DEFAULT_ALPHA = 0.01
DEFAULT_HOLDOUT_SHARE = 0.2
NOT_DP_NOTICE = (
    "NOT differentially private: these checks read the real data. Internal evidence only; the report "
    "holds rates and distance quantiles, never a row."
)


@dataclass(frozen=True)
class CopyRate:
    """Matches of one check: synthetic rows against the reference, and the baseline."""

    check: str
    synthetic_matches: int
    synthetic_rows: int
    baseline_matches: int
    baseline_rows: int
    p_value: float
    flagged: bool

    @property
    def synthetic_rate(self) -> float:
        """The share of synthetic rows that match."""
        return self.synthetic_matches / self.synthetic_rows if self.synthetic_rows else 0.0

    @property
    def baseline_rate(self) -> float:
        """The share of baseline rows that match."""
        return self.baseline_matches / self.baseline_rows if self.baseline_rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (rates rounded, the p-value to 4 significant digits)."""
        return {"check": self.check, "synthetic_rate": round(self.synthetic_rate, 6),
                "baseline_rate": round(self.baseline_rate, 6), "synthetic_matches": self.synthetic_matches,
                "synthetic_rows": self.synthetic_rows, "baseline_matches": self.baseline_matches,
                "baseline_rows": self.baseline_rows, "p_value": float(f"{self.p_value:.4g}"),
                "flagged": self.flagged}


@dataclass
class CopyReport:
    """Rates of exact, quasi-identifier and near copies, with their holdout baselines."""

    rates: list[CopyRate]
    columns: list[str]
    quasi_identifiers: list[str]
    near_threshold: float
    alpha: float
    baseline: str
    reference_rows: int
    dcr_quantiles: dict[str, dict[str, float]]
    seconds: float
    #: for tables in an engine: which checks ran over every row there, which on a sample
    engine: dict[str, Any] | None = None

    @property
    def flagged(self) -> bool:
        """Whether any rate is flagged above its baseline."""
        return any(r.flagged for r in self.rates)

    def rate(self, check: str) -> CopyRate:
        """The rate of one check (``exact``, ``quasi_identifiers``, ``quasi_identifiers_unique``, ``near``)."""
        return next(r for r in self.rates if r.check == check)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the report's name, version and not-DP notice."""
        return {
            "report": "dpsynth.pii.replay", "version": REPORT_VERSION, "flagged": self.flagged,
            "checks": [r.to_dict() for r in self.rates], "columns": list(self.columns),
            "quasi_identifiers": list(self.quasi_identifiers), "near_threshold": self.near_threshold,
            "alpha": self.alpha, "baseline": self.baseline, "reference_rows": self.reference_rows,
            "dcr_quantiles": self.dcr_quantiles, "seconds": self.seconds, "notice": NOT_DP_NOTICE,
        } | ({"engine": self.engine} if self.engine is not None else {})


def _matches(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.isin(query, reference)


def fisher_flag(a: int, n_a: int, b: int, n_b: int, alpha: float) -> tuple[float, bool]:
    """(p-value, flagged) of the one-sided Fisher exact test that ``a`` of ``n_a`` is a higher rate than
    ``b`` of ``n_b``; flagged when p < ``alpha`` and ``a`` > 0."""
    from scipy.stats import fisher_exact

    if n_a == 0 or n_b == 0:
        return 1.0, False
    p = float(fisher_exact([[a, n_a - a], [b, n_b - b]], alternative="greater").pvalue)
    return p, bool(a > 0 and p < alpha)


def copy_check(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, holdout: pd.DataFrame | None = None,
                 near_threshold: float = DEFAULT_NEAR_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                 holdout_share: float = DEFAULT_HOLDOUT_SHARE, seed: int = 0, near: bool = True) -> CopyReport:
    """Exact, quasi-identifier and near copies of real rows in ``synthetic``, each beside the same
    rate for held-out real rows.

    Args:
        real: the real table the synthesizer was fitted on.
        synthetic: the synthetic table.
        schema: the public schema: its columns are compared; its bounds scale numeric distances;
            columns marked ``quasi_identifier: true`` are checked on their own.
        holdout: real rows the synthesizer never saw (the baseline); default a random
            ``holdout_share`` of ``real`` (seeded by ``seed``).
        holdout_share: the share of ``real`` held out as the baseline when ``holdout`` is not given.
        seed: the seed of that split.
        near_threshold: a synthetic row is a near copy when its Gower distance to the closest
            reference row is at most this (default 0.02).
        alpha: the level of the one-sided Fisher test that flags a rate above its baseline.
        near: also compute distances to the closest record (the ``near`` check and the DCR
            quantiles); quadratic in the rows, the costly part on large tables.

    Raises:
        ParameterError: a threshold, alpha or share out of range.
        DataError: a schema column missing from a table, an empty table, or text in a numeric column.

    Privacy: NOT DP; reads the real data. The report holds no row.
    """
    start = time.perf_counter()
    for name, value, ok in (("near_threshold", near_threshold, 0.0 <= near_threshold < 1.0),
                            ("alpha", alpha, 0.0 < alpha < 1.0),
                            ("holdout_share", holdout_share, 0.0 < holdout_share < 1.0)):
        if not ok:
            raise ParameterError(f"{name} ({value!r}) must be in {'[0, 1)' if name == 'near_threshold' else '(0, 1)'}")
    names = schema.names
    tables = {"real": real, "synthetic": synthetic} | ({"holdout": holdout} if holdout is not None else {})
    for label, table in tables.items():
        absent = [c for c in names if c not in table.columns]
        if absent:
            raise DataError(f"the {label} table has no column(s) {', '.join(map(repr, absent))} "
                            "that the schema declares")
        if len(table) == 0:
            raise DataError(f"the {label} table has no rows")
    encoded = encode_tables([real, synthetic] + ([holdout] if holdout is not None else []), schema, names)
    if holdout is not None:
        reference, synth, base = encoded
        baseline = "holdout table (real rows the synthesizer did not see)"
    else:
        if len(real) < 10:
            raise DataError("the real table has fewer than 10 rows: too few to hold some out as the baseline")
        order = np.random.default_rng(seed).permutation(len(real))
        cut = int(round(len(real) * holdout_share))
        ref_all, synth = encoded
        base, reference = ref_all.take(order[:cut]), ref_all.take(order[cut:])
        baseline = f"random {holdout_share:.0%} of the real table (seed {seed}), matched against the other rows"
    cat_names = [c.name for c in schema.columns if c.kind == "categorical"]
    num_names = [c.name for c in schema.columns if c.kind != "categorical"]
    all_cat, all_num = list(range(len(cat_names))), list(range(len(num_names)))
    rates: list[CopyRate] = []

    def add(check: str, s_hits: np.ndarray, b_hits: np.ndarray) -> None:
        a, b = int(s_hits.sum()), int(b_hits.sum())
        p, flag = fisher_flag(a, len(s_hits), b, len(b_hits), alpha)
        rates.append(CopyRate(check, a, len(s_hits), b, len(b_hits), p, flag))

    ref_keys = reference.keys(all_cat, all_num)
    add("exact", _matches(synth.keys(all_cat, all_num), ref_keys), _matches(base.keys(all_cat, all_num), ref_keys))
    qis = [c.name for c in schema.columns if c.quasi_identifier]
    if qis:
        qc = [cat_names.index(n) for n in qis if n in cat_names]
        qn = [num_names.index(n) for n in qis if n in num_names]
        ref_q = reference.keys(qc, qn)
        s_q, b_q = synth.keys(qc, qn), base.keys(qc, qn)
        add("quasi_identifiers", _matches(s_q, ref_q), _matches(b_q, ref_q))
        uniq, counts = np.unique(ref_q, return_counts=True)
        unique_keys = uniq[counts == 1]
        add("quasi_identifiers_unique", _matches(s_q, unique_keys), _matches(b_q, unique_keys))
    quantiles: dict[str, dict[str, float]] = {}
    if near:
        s_dcr = nearest_distances(synth, reference)
        b_dcr = nearest_distances(base, reference)
        add("near", s_dcr <= near_threshold + 1e-9, b_dcr <= near_threshold + 1e-9)
        quantiles = {label: {f"q{int(q * 100):02d}": round(float(np.quantile(d, q)), 6) for q in (0.01, 0.05, 0.5)}
                     for label, d in (("synthetic", s_dcr), ("baseline", b_dcr))}
    return CopyReport(rates=rates, columns=names, quasi_identifiers=qis, near_threshold=near_threshold, alpha=alpha,
                        baseline=baseline, reference_rows=len(reference), dcr_quantiles=quantiles,
                        seconds=round(time.perf_counter() - start, 3))
