"""A series on the bundled Adult snapshots: a ledger, a policy with a drift ceiling and a plan, in a
temporary folder; :func:`arrive` copies the snapshots in one month at a time, as they would arrive."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from dpsynth.datasets import adult_schema_path, adult_snapshots
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.ledger import Ledger

#: The drift ceiling of the test policy: two MST releases at ε = 1 of the undrifted months 1 and 2 differ
#: by 0.036 ± 0.005 in their largest column TVD; the planted drift of month 3 shows as 0.197 ± 0.003 on
#: ``income`` (30 pairs of fits, benchmarks/refresh_drift_noise.py): 0.1 is far from both.
DRIFT_CEILING = 0.1

POLICY = {
    "version": 1, "name": "refresh-test",
    "description": "The default policy's privacy rules, DP checks and no audit (tests/refresh), with a drift ceiling.",
    "privacy": {"max_epsilon": 2.0, "max_delta": 1.0e-6, "require_secure_noise": True},
    "audit": None, "pii": None,
    "replay": {"checks": ["exact_rows"], "alpha": 1.0e-5},
    "fidelity": {"max_l1_1way": 0.1},
    "drift": {"max_tvd": DRIFT_CEILING},
}


@pytest.fixture(scope="session")
def adult_months(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The three bundled monthly snapshots (the third with a planted drift), written once."""
    return adult_snapshots(tmp_path_factory.mktemp("months"))


class Series:
    """A series' folder: the plan, the ledger, the snapshots that have arrived."""

    def __init__(self, root: Path, months: list[Path]):
        self.root, self.months = root, months
        self.snapshots = root / "snapshots"
        self.snapshots.mkdir()
        self.ledger_url = f"sqlite:///{root / 'ledger.db'}"
        self.plan_path = root / "plan.yaml"
        (root / "policy.yaml").write_text(yaml.safe_dump(POLICY), encoding="utf-8")
        shutil.copy(adult_schema_path(), root / "adult.schema.yaml")
        self.plan: dict[str, Any] = {
            "version": 1, "dataset": "adult", "ledger": self.ledger_url, "snapshots": "snapshots",
            "schema": "adult.schema.yaml", "synthesizer": "mst", "epsilon": 1.0, "delta": 1.0e-9,
            "policy": "policy.yaml", "horizon": {"refreshes": 3}, "releases": "releases",
        }
        self.write_plan()

    def write_plan(self, **changes: Any) -> Path:
        self.plan.update(changes)
        self.plan_path.write_text(yaml.safe_dump(self.plan), encoding="utf-8")
        return self.plan_path

    def register(self, epsilon: float = 4.0, delta: float = 1e-6) -> Ledger:
        led = Ledger(self.ledger_url, create=True)
        led.create_dataset("adult", ApproxDP(epsilon, delta))
        return led

    def arrive(self, month: int) -> Path:
        """Month ``month`` (1-based) arrives in the snapshots folder."""
        src = self.months[month - 1]
        return Path(shutil.copy(src, self.snapshots / src.name))

    @property
    def folder(self) -> Path:
        return self.root / "releases" / "adult"

    def versions(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and p.name.startswith("v"))


@pytest.fixture
def series(tmp_path: Path, adult_months: list[Path]) -> Series:
    return Series(tmp_path, adult_months)

