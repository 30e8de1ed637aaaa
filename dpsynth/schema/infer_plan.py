"""The plan of a schema inference: its mechanisms and what each costs, calibrated from public
information only (the tasks the hints leave to do and the budget), so that its cost does not depend
on the data."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from dpsynth import _validation as check
from dpsynth.exceptions import InternalError, ParameterError
from dpsynth.mechanisms import GaussianCounts, PartitionSelection
from dpsynth.privacy.accounting import rho_within
from dpsynth.privacy.budgets import ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent, total_delta, total_rho
from dpsynth.schema.infer_hints import ColumnTask


def _share(name: str, value: object) -> float:
    x = check.positive_finite(name, value)
    if x > 1:
        raise ParameterError(f"{name} ({value!r}) must be at most 1 (a share of the budget)")
    return x



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
        """The privacy events of the plan, in the order the mechanisms run."""
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
        """The plan's total zCDP ρ."""
        return total_rho(self.events())

    @property
    def additive_delta(self) -> float:
        """The plan's additive δ (of the thresholding)."""
        return total_delta(self.events())


def plan_inference(
    tasks: Sequence[ColumnTask],
    budget: ApproxDP,
    *,
    split_kinds: float,
    split_categories: float,
    split_bounds: float,
    split_delta_threshold: float,
    max_rows: int = 1,
) -> InferencePlan:
    """Calibrate the mechanisms for ``tasks`` within ``budget`` (ε, δ).

    ``max_rows``: K of a user privacy unit (1 for a row). The kinds' counts and the bounds' histograms
    then have L2 sensitivity K (a person's K rows in one cell), and the partition selection, which
    counts distinct people per value, L0 = K per categorical column (a person holds at most K values).
    """
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
        kinds = GaussianCounts.for_rho(parts["kinds"].rho / n_open, l2_sensitivity=max_rows, label="schema_kind")
    if used["categories"]:
        levels = PartitionSelection.calibrate(
            parts["categories"].rho, delta_threshold, max_partitions=max_rows * n_categorical, label="schema_levels"
        )
    if used["bounds"]:
        bounds = GaussianCounts.for_rho(parts["bounds"].rho / n_numeric, l2_sensitivity=max_rows,
                                        label="schema_bounds")
    plan = InferencePlan(kinds, n_open, levels, bounds, n_numeric, budget, delta_threshold)
    if plan.additive_delta > delta_threshold:
        raise InternalError(f"the inference plan's additive delta ({plan.additive_delta:g}) exceeds its reserved share "
                            f"({delta_threshold:g})")
    if plan.rho > rho.rho * (1 + 1e-12):
        raise InternalError(f"the inference plan's rho ({plan.rho:g}) exceeds the budget's ({rho.rho:g})")
    return plan

