"""Continuous refresh: a versioned series of releases of one dataset, spending from one budget.

``dpsynth refresh PLAN`` (:func:`refresh`) takes the newest snapshot of a private table through the
release gate into a new version ``releases/<dataset>/vNNNN/``, after forecasting the budget over
the plan's horizon, and measures the drift from the previous released version from DP output only;
``dpsynth history`` (:mod:`~dpsynth.refresh.history`) and the series' ``index.html``
(:mod:`~dpsynth.refresh.index_html`) list the versions. The parts: the plan file
(:mod:`~dpsynth.refresh.plan`), the snapshots (:mod:`~dpsynth.refresh.snapshots`), the series on disk
(:mod:`~dpsynth.refresh.versions`) and one refresh (:mod:`~dpsynth.refresh.run`). See
``docs/refresh.md``.
"""

from dpsynth.refresh.plan import Horizon, PlanError, RefreshPlan, load_plan
from dpsynth.refresh.run import RefreshResult, refresh

__all__ = ["Horizon", "PlanError", "RefreshPlan", "RefreshResult", "load_plan", "refresh"]
