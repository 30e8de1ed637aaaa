"""DP forms of the release gate's checks that read the private table: fidelity, replay, utility.

The gate decides whether to publish a synthetic table S from checks of S against the private table
D. Read exactly, those checks make the decision (and so the release's existence) a non-DP function
of D. Here each check is a new DP measurement of D given S: S is a DP output, fixed and public, and
every statistic is released through the exact discrete Gaussian of :mod:`dpsynth.mechanisms`,
spending from the release's odometer (adaptive composition with the fit). Everything in
:class:`DPChecksResult` is post-processing of those noisy measurements, S and public information,
so a gate that reads only it is DP, with the cost :meth:`DPChecksPlan.events` states up front.

Neighbours: add or remove one row; at a user privacy unit, one person with up to K rows, every
sensitivity below times K (``unit_sensitivity``: each person's rows beyond K are dropped from the
real table before any check reads it). The measurements (ρ split by named weights, see
:class:`DPChecksPlan`):

* ``rows``: n, sensitivity 1 (here);
* ``fidelity.kway`` (k = 1, 2, 3): ⌊SCALE·(1/|M|)·Σ_m Σ_cells |c − n·p_S| + ½⌋, sensitivity 2·SCALE
  (:mod:`dpsynth.quality.dp_fidelity`, with the proof);
* ``replay.<check>.reference``: (a, d_H), and ``replay.<check>.baseline``: (b), sensitivity 1 each
  (:mod:`dpsynth.pii.dp_replay`, with the proof and the split rule);
* ``utility``: the 2×B histogram of (true label, score bin) of the real rows for a binary target,
  or the number of correctly classified real rows for more classes, sensitivity 1
  (:mod:`dpsynth.quality.dp_utility`).

Reported values: ``l1_kway`` = ĝ_k / (SCALE·n̂) (clipped to [0, 2]), an estimate of the value
``dpsynth eval`` reports exactly (same marginal sets); ``mean_tvd`` = ½·``l1_1way`` (the
per-column TVD of :mod:`dpsynth.quality.distances` is ½·L1 of the 1-way marginal and ``l1_1way``
is the mean over all columns, so this costs nothing more); replay rates with a one-sided test at
``alpha``; the train-synthetic-test-real ROC-AUC (binary target) or accuracy (more classes).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpsynth import _validation as v
from dpsynth.exceptions import ParameterError
from dpsynth.marginals.backend import EngineSource, TableSource
from dpsynth.mechanisms import GaussianCounts, NoiseSource
from dpsynth.pii import dp_replay
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.odometer import Odometer
from dpsynth.quality import dp_fidelity, dp_utility
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

FIDELITY_KEYS = ("l1_1way", "l1_2way", "l1_3way", "mean_tvd")
REPLAY_CHECKS = dp_replay.CHECKS
_K_OF = {"l1_1way": 1, "l1_2way": 2, "l1_3way": 3, "mean_tvd": 1}
LABEL_PREFIX = "dp_checks"
NOTICE = ("Differentially private: every figure here is post-processing of noisy measurements of the real table "
          "(exact discrete Gaussian, charged to the ledger in the release's plan), the synthetic table and public "
          "information.")


@dataclass(frozen=True)
class Measurement:
    """One noisy measurement of the plan: its name, what it measures and its mechanism."""

    name: str
    statistic: str
    units: str
    mechanism: GaussianCounts

    def to_dict(self) -> dict[str, Any]:
        """The measurement for the report: its sensitivity, noise scale, ρ and label."""
        return {"name": self.name, "statistic": self.statistic, "units": self.units,
                "l2_sensitivity": self.mechanism.l2_sensitivity, "noise_scale": self.mechanism.scale,
                "rho": self.mechanism.rho, "label": self.mechanism.label}


@dataclass(frozen=True)
class DPChecksPlan:
    """Which DP checks to run and how their zCDP budget ``rho`` is split. Data-independent.

    ``rho`` is split among the parts present (rows, fidelity, replay, utility) in proportion to
    their ``*_weight``; within fidelity equally among the k-way measurements needed (``mean_tvd``
    shares ``l1_1way``'s), within replay equally among the checks and, per check, equally between
    its two measurements (reference and baseline: together the cost of one measurement of L2
    sensitivity √2 at that noise).
    """

    rho: float
    fidelity: tuple[str, ...] = ()
    replay: tuple[str, ...] = ()
    utility: bool = False
    rows_weight: float = 1.0
    fidelity_weight: float = 3.0
    replay_weight: float = 3.0
    utility_weight: float = 3.0
    #: B of the utility check's 2×B histogram of (label, score bin) (even, for the ½ threshold).
    utility_bins: int = dp_utility.DEFAULT_BINS
    #: SCALE of the fidelity statistic (an integer; sensitivity 2·SCALE).
    fidelity_scale: int = dp_fidelity.FIDELITY_SCALE
    #: False when the caller already holds a DP (or public) row count and passes it to the run.
    measure_rows: bool = True
    #: K of a user privacy unit (1 for a row): every sensitivity is scaled by it.
    unit_sensitivity: int = 1

    def __post_init__(self) -> None:
        """Validate and canonicalise (names in their canonical order): a plan built directly is
        checked as strictly as one from :func:`plan_dp_checks`."""
        set_ = object.__setattr__
        set_(self, "rho", v.positive_finite("rho", self.rho))
        set_(self, "fidelity", _names("fidelity", self.fidelity, FIDELITY_KEYS))
        set_(self, "replay", _names("replay", self.replay, REPLAY_CHECKS))
        for name in ("utility", "measure_rows"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} ({getattr(self, name)!r}) must be True or False")
        for name in ("rows_weight", "fidelity_weight", "replay_weight", "utility_weight"):
            set_(self, name, v.positive_finite(name, getattr(self, name)))
        bins = v.positive_int("utility_bins", self.utility_bins)
        if bins < 2 or bins % 2:
            raise ParameterError(f"utility_bins ({self.utility_bins!r}) must be an even integer >= 2")
        set_(self, "utility_bins", bins)
        set_(self, "fidelity_scale", v.positive_int("fidelity_scale", self.fidelity_scale))
        set_(self, "unit_sensitivity", v.positive_int("unit_sensitivity", self.unit_sensitivity))
        if not (self.measure_rows or self.fidelity or self.replay or self.utility):
            raise ParameterError("the plan measures nothing: ask for a check, or measure_rows=True")

    @property
    def fidelity_ks(self) -> tuple[int, ...]:
        """The marginal orders k that the fidelity checks measure, ascending."""
        return tuple(sorted({_K_OF[key] for key in self.fidelity}))

    def weights(self) -> dict[str, float]:
        """The parts present and their weights."""
        parts = {"rows": self.rows_weight if self.measure_rows else 0.0,
                 "fidelity": self.fidelity_weight if self.fidelity else 0.0,
                 "replay": self.replay_weight if self.replay else 0.0,
                 "utility": self.utility_weight if self.utility else 0.0}
        return {k: w for k, w in parts.items() if w > 0}

    def part_rho(self) -> dict[str, float]:
        """ρ of each part present (before the mechanisms' rounding, which only lowers it)."""
        weights = self.weights()
        total = math.fsum(weights.values())
        return {k: self.rho * w / total for k, w in weights.items()}

    def measurements(self) -> list[Measurement]:
        """The noisy measurements of a run, in the order it spends them."""
        rho = self.part_rho()
        out: list[Measurement] = []

        def add(name: str, statistic: str, units: str, share: float, sensitivity: int) -> None:
            mech = GaussianCounts.for_rho(share, l2_sensitivity=sensitivity * self.unit_sensitivity,
                                          label=f"{LABEL_PREFIX}.{name}")
            out.append(Measurement(name, statistic, units, mech))

        if "rows" in rho:
            add("rows", "number of real rows n", "rows", rho["rows"], 1)
        for k in self.fidelity_ks:
            add(f"fidelity.{k}way", f"floor(SCALE * mean over the {k}-way marginal sets of sum |c - n p_S| + 1/2), "
                f"SCALE = {self.fidelity_scale}", f"rows x {self.fidelity_scale}",
                rho["fidelity"] / len(self.fidelity_ks), dp_fidelity.quantised_sensitivity(self.fidelity_scale))
        for check in self.replay:
            share = rho["replay"] / len(self.replay) / 2.0
            add(f"replay.{check}.reference", "(a, d_H): distinct synthetic-sample keys matching the reference, "
                "distinct baseline keys", "distinct keys", share, 1)
            add(f"replay.{check}.baseline", "(b): distinct baseline keys matching the reference", "distinct keys",
                share, 1)
        if self.utility:
            add("utility", f"2 x {self.utility_bins} histogram of (true label, score bin) of the real rows (binary "
                "target) or the number of correctly classified real rows (more classes)", "rows", rho["utility"], 1)
        return out

    def events(self) -> list[PrivacyEvent]:
        """What the ledger reserves for the checks (from the plan only)."""
        return [m.mechanism.event for m in self.measurements()]

    def to_dict(self) -> dict[str, Any]:
        """The plan for the report (public: from the policy and the schema)."""
        return {"rho": self.rho, "fidelity": list(self.fidelity), "replay": list(self.replay),
                "utility": self.utility, "weights": self.weights(), "part_rho": self.part_rho(),
                "utility_bins": self.utility_bins, "fidelity_scale": self.fidelity_scale,
                "measure_rows": self.measure_rows, "measurements": [m.to_dict() for m in self.measurements()]}


def _names(name: str, value: object, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ParameterError(f"{name} ({value!r}) must be a sequence of names among {', '.join(allowed)}")
    items = tuple(value)
    bad = [x for x in items if x not in allowed]
    if bad:
        raise ParameterError(f"{name} ({value!r}) must hold only names among {', '.join(allowed)}")
    if len(set(items)) != len(items):
        raise ParameterError(f"{name} ({value!r}) must not repeat a name")
    return tuple(x for x in allowed if x in items)  # canonical order


def plan_dp_checks(*, rho: float, fidelity: Sequence[str] = (), replay: Sequence[str] = (), utility: bool = False,
                   schema: Schema | None = None, target: str | None = None, rows_weight: float = 1.0,
                   fidelity_weight: float = 3.0, replay_weight: float = 3.0, utility_weight: float = 3.0,
                   utility_bins: int = dp_utility.DEFAULT_BINS, fidelity_scale: int = dp_fidelity.FIDELITY_SCALE,
                   measure_rows: bool = True, unit_sensitivity: int = 1) -> DPChecksPlan:
    """A validated :class:`DPChecksPlan`.

    With the (public) ``schema`` (and ``target`` for utility), what the run would refuse is refused
    here already: a numeric or absent target, ``quasi_identifiers`` without quasi-identifier columns.

    Raises:
        ParameterError: a bad ρ, weight, name, bin count or scale, or one of the above.
    """
    plan = DPChecksPlan(rho=rho, fidelity=fidelity, replay=replay, utility=utility,  # type: ignore[arg-type]
                        rows_weight=rows_weight, fidelity_weight=fidelity_weight, replay_weight=replay_weight,
                        utility_weight=utility_weight, utility_bins=utility_bins, fidelity_scale=fidelity_scale,
                        measure_rows=measure_rows, unit_sensitivity=unit_sensitivity)
    if schema is not None:
        _check_public(schema, plan.replay, plan.utility, target)
    elif plan.utility and target is not None and not isinstance(target, str):
        raise ParameterError(f"target ({target!r}) must be a column name")
    return plan


def _check_public(schema: Schema, replay: tuple[str, ...], utility: bool, target: str | None) -> str | None:
    if "quasi_identifiers" in replay and not dp_replay.quasi_identifier_names(schema):
        raise ParameterError("the quasi_identifiers replay check needs columns marked quasi_identifier: true in the "
                             "schema")
    return dp_utility.target_kind(schema, target) if utility else None


@dataclass
class DPChecksResult:
    """The DP checks' figures: every value is DP (post-processing of the noisy measurements, S and
    public information)."""

    rows: float
    fidelity: dict[str, float | None]
    replay: dict[str, dict[str, Any]]
    utility: dict[str, Any] | None
    plan: DPChecksPlan
    measurements: list[dict[str, Any]] = field(default_factory=list)
    fidelity_details: dict[str, dict[str, Any]] = field(default_factory=dict)
    alpha: float = 0.01
    seed: int = 0
    secure_noise: bool = True
    rows_source: str = "measured"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with each measurement's sensitivity, noise scale and ρ."""
        return _plain({
            "notice": NOTICE, "rows": self.rows, "rows_source": self.rows_source, "fidelity": self.fidelity,
            "fidelity_details": self.fidelity_details, "replay": self.replay, "utility": self.utility,
            "alpha": self.alpha, "seed": self.seed, "secure_noise": self.secure_noise,
            "rho": math.fsum(m["rho"] for m in self.measurements), "measurements": self.measurements,
            "plan": self.plan.to_dict(),
        })


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(x) for k, x in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def run_dp_checks(plan: DPChecksPlan, real: pd.DataFrame | EngineSource, synthetic: pd.DataFrame, schema: Schema, *,
                  target: str | None, noise: NoiseSource, odometer: Odometer, seed: int = 0, alpha: float = 0.01,
                  rows_estimate: float | None = None) -> DPChecksResult:
    """Run the plan's DP checks of ``synthetic`` against ``real``.

    Args:
        plan: from :func:`plan_dp_checks`; its events must be reserved in ``odometer``.
        real: the private table, in memory or held by a counting engine (DuckDB, Spark; validated against
            ``schema`` already): there every statistic is an aggregate computed in the engine, over every row
            (the replay sample registered beside it, the utility model scoring the rows in batches there).
        synthetic: the (DP, public) synthetic table.
        schema: the tables' public schema.
        target: the utility check's target column (categorical).
        noise: the noise source of the measurements.
        odometer: every measurement spends its event from ``odometer`` before its noise is drawn.
        seed: public seed of the replay split key and the synthetic sample.
        alpha: level of the replay checks' one-sided test.
        rows_estimate: a DP or public row count to use instead of measuring one (needed when
            ``plan.measure_rows`` is False; never ``len(real)``).

    Raises:
        ParameterError: a bad ``alpha``, target, schema for the plan, an empty synthetic table, no
            row count or two of them; DataError: a table that does not fit the schema. Both before any noise.
    """
    if not isinstance(plan, DPChecksPlan):
        raise ParameterError(f"plan ({plan!r}) must be a DPChecksPlan (from plan_dp_checks)")
    alpha = v.open_unit("alpha", alpha)
    kind = _check_public(schema, plan.replay, plan.utility, target)
    if len(synthetic) == 0:
        raise ParameterError("the synthetic table has no rows")
    if not plan.measure_rows and rows_estimate is None:
        raise ParameterError("plan.measure_rows is False: give rows_estimate (a DP or public row count)")
    if plan.measure_rows and rows_estimate is not None:
        raise ParameterError("rows_estimate is given but the plan measures the rows: plan with measure_rows=False")
    if rows_estimate is not None:
        rows_estimate = v.real("rows_estimate", rows_estimate)
    held = isinstance(real, TableSource)  # in an engine (validated there): every query below is an aggregate
    real_codes = None if held else encode(real, schema)
    synthetic_codes = encode(synthetic, schema)
    # Everything below touches the real table only through `measure`: the event is spent, then the
    # noisy value is all that leaves.
    mechanisms = {m.name: m for m in plan.measurements()}
    records: list[dict[str, Any]] = []

    def measure(name: str, counts: np.ndarray) -> np.ndarray:
        m = mechanisms[name]
        noisy = m.mechanism(np.asarray(counts, dtype=np.int64), noise=noise, odometer=odometer)
        records.append(m.to_dict())
        return noisy

    if plan.measure_rows:
        n_hat = float(measure("rows", np.array([_rows(real) if real_codes is None else len(real_codes)]))[0])
        rows_source = "measured"
    else:
        assert rows_estimate is not None  # type narrowing: checked above (ParameterError)
        n_hat, rows_source = float(rows_estimate), "given"
    n_norm = max(n_hat, 1.0)

    def statistic(k: int) -> dp_fidelity.WorkloadStatistic | None:
        if real_codes is None:
            return dp_fidelity.counted_workload_statistic(real.counter(schema), synthetic_codes, k)
        return dp_fidelity.workload_statistic(real_codes, synthetic_codes, schema.sizes, k)

    fidelity, details = _fidelity(plan, statistic, measure, mechanisms, n_norm)
    replay = _replay(plan, real, synthetic, schema, measure, mechanisms, n_hat, seed, alpha)
    utility = None
    if plan.utility:
        assert kind is not None and target is not None  # type narrowing: _check_public checked both
        utility = _utility(plan, kind, real, real_codes, synthetic, synthetic_codes, schema, target, measure,
                           mechanisms, n_norm)
    return DPChecksResult(rows=n_hat, fidelity=fidelity, replay=replay, utility=utility, plan=plan,
                          measurements=records, fidelity_details=details, alpha=alpha, seed=int(seed),
                          secure_noise=bool(getattr(noise, "secure", False)), rows_source=rows_source)


def _rows(real: Any) -> int:
    """The real table's row count, one aggregate row from its engine."""
    return int(real.fetch(f"SELECT COUNT(*) AS n FROM {real.table}", 1)["n"][0])


def _fidelity(plan: DPChecksPlan, statistic: Any, measure: Any, mechanisms: dict[str, Measurement],
              n_norm: float) -> tuple[dict[str, float | None], dict[str, Any]]:
    scale = plan.fidelity_scale
    by_k: dict[int, float | None] = {}
    details: dict[str, dict[str, Any]] = {}
    for k in plan.fidelity_ks:
        stat = statistic(k)
        name = f"fidelity.{k}way"
        if stat is None:  # fewer columns than k (public): nothing to measure, nothing spent
            by_k[k] = None
            details[f"l1_{k}way"] = {"n_marginals": 0, "sampled": False, "measured": False}
            continue
        g_hat = float(measure(name, np.array([stat.quantised(scale)]))[0])
        by_k[k] = min(max(g_hat / (scale * n_norm), 0.0), 2.0)
        details[f"l1_{k}way"] = {"n_marginals": stat.n_marginals, "sampled": stat.sampled, "measured": True,
                                 "noise_sd": mechanisms[name].mechanism.scale / (scale * n_norm)}
    out: dict[str, float | None] = {}
    for key in plan.fidelity:
        value = by_k[_K_OF[key]]
        out[key] = (None if value is None else 0.5 * value) if key == "mean_tvd" else value
    if "mean_tvd" in plan.fidelity and "l1_1way" in details:
        details["mean_tvd"] = {"derived_from": "l1_1way", "formula": "0.5 * l1_1way",
                               **({"noise_sd": 0.5 * details["l1_1way"]["noise_sd"]}
                                  if "noise_sd" in details["l1_1way"] else {})}
    return out, details


def _replay(plan: DPChecksPlan, real: Any, synthetic: pd.DataFrame, schema: Schema, measure: Any,
            mechanisms: dict[str, Measurement], n_hat: float, seed: int, alpha: float) -> dict[str, dict[str, Any]]:
    if not plan.replay:
        return {}
    size = dp_replay.synthetic_sample_size(n_hat, len(synthetic))
    sample = synthetic.iloc[dp_replay.synthetic_sample(len(synthetic), size, seed)].reset_index(drop=True)
    if isinstance(real, EngineSource):  # the sample (a DP output) is registered beside the real table
        from dpsynth.marginals.engines import registered
        from dpsynth.pii.engine_dp_replay import engine_replay_counts

        with registered(real, sample, schema) as beside:
            counts = engine_replay_counts(real, beside, schema, plan.replay, seed=seed)
    else:
        counts = dp_replay.replay_counts(real, sample, schema, plan.replay, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    for check in plan.replay:
        c = counts[check]
        ref_name, base_name = f"replay.{check}.reference", f"replay.{check}.baseline"
        a_hat, d_h_hat = (float(x) for x in measure(ref_name, c.reference_vector()))
        b_hat = float(measure(base_name, c.baseline_vector())[0])
        decision = dp_replay.replay_decision(a_hat, b_hat, d_h_hat, c.d_s,
                                             sigma_reference=mechanisms[ref_name].mechanism.scale,
                                             sigma_baseline=mechanisms[base_name].mechanism.scale, alpha=alpha)
        out[check] = {**decision, "synthetic_sample_rows": size, "synthetic_distinct_keys": c.d_s,
                      "synthetic_matches": a_hat, "baseline_matches": b_hat, "baseline_distinct_keys": d_h_hat,
                      "alpha": alpha, "holdout_share": dp_replay.HOLDOUT_SHARE,
                      "match": ("equal on every schema column" if check == "exact_rows" else
                                "equal on the quasi-identifier columns to a combination held by exactly one "
                                "reference row"),
                      "rates_over": "distinct keys"}
    return out


def _utility(plan: DPChecksPlan, kind: str, real: Any, real_codes: np.ndarray | None, synthetic: pd.DataFrame,
             synthetic_codes: np.ndarray, schema: Schema, target: str, measure: Any,
             mechanisms: dict[str, Measurement], n_norm: float) -> dict[str, Any]:
    model = dp_utility.fit_synthetic_model(synthetic, synthetic_codes, schema, target)
    sigma = mechanisms["utility"].mechanism.scale
    out: dict[str, Any] = {"target": target, "model": "HistGradientBoosting", "trained_on": "synthetic table only",
                           "tested_on": "all real rows", "train_real": None, "gap": None,
                           "note": "no train-on-real arm: it would need a DP-trained model"}
    if kind == "binary":
        bins = plan.utility_bins
        noisy = measure("utility", dp_utility.score_histogram(model, real, real_codes, bins) if real_codes is not None
                        else dp_utility.source_score_histogram(model, real, bins))
        out.update({"metric": "roc_auc", "kind": "binary", "bins": bins,
                    "train_synthetic": {"roc_auc": dp_utility.auc_from_histogram(noisy, bins),
                                        "accuracy": dp_utility.accuracy_from_histogram(noisy, bins)},
                    "binning": f"{bins} uniform bins of the predicted probability of code 1; ties within a bin "
                               "count 1/2"})
    else:
        correct = float(measure("utility", dp_utility.correct_count(model, real, real_codes) if real_codes is not None
                                else dp_utility.source_correct_count(model, real))[0])
        out.update({"metric": "accuracy", "kind": "multiclass",
                    "train_synthetic": {"accuracy": min(max(correct / n_norm, 0.0), 1.0)},
                    "noise_sd": sigma / n_norm})
    return out


__all__ = ["FIDELITY_KEYS", "NOTICE", "REPLAY_CHECKS", "DPChecksPlan", "DPChecksResult", "Measurement",
           "plan_dp_checks", "run_dp_checks"]
