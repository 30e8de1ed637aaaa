"""Shared pieces of the plug-in tests (not a test module): a small table, its schema, a policy, and
the source of a module of user classes with the plain contract (written to a temporary folder and
imported by path, as a user's package would be)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
MODULE = "user_generators"

SCHEMA = {
    "version": 1,
    "columns": [
        {"name": "region", "kind": "categorical", "levels": ["north", "south", "east", "west"]},
        {"name": "plan", "kind": "categorical", "levels": ["basic", "plus", "pro"]},
        {"name": "churn", "kind": "categorical", "levels": ["no", "yes"]},
        {"name": "tenure", "kind": "integer", "bounds": [0, 120], "edges": [0, 12, 36, 60, 120]},
    ],
}
#: a value of the private table that must never be quoted by an error or a report
SECRET = 98765

#: a policy without the audit (a colleague rewrites the release audit) and without DP checks
POLICY = {
    "version": 1,
    "name": "plugin-test",
    "description": "plug-in tests: caps and the ledger only",
    "privacy": {"max_epsilon": 3.0, "max_delta": 1e-5, "require_secure_noise": False},
    "audit": None,
    "pii": None,
    "replay": None,
    "fidelity": None,
}

USER_MODULE = '''
import json
import os

import numpy as np
import pandas as pd

from dpsynth.privacy.events import GaussianEvent
from dpsynth.schema.encode import decode


def record(what, **detail):
    """Calls of the generators, in a file (the CLI tests run in another process)."""
    with open(os.environ["PLUGIN_CALLS"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"call": what, **detail}) + "\\n")


class Uniform:
    """The plain contract only: samples uniformly from the schema's public domain."""

    def __init__(self, *, epsilon, delta, width=1):
        self.epsilon, self.delta, self.width = epsilon, delta, width
        record("init", epsilon=epsilon, delta=delta)

    def fit(self, data, *, schema):
        record("fit", rows=len(data))
        self.schema_ = schema
        return self

    def sample(self, n_rows):
        rng = np.random.default_rng()
        codes = np.stack([rng.integers(0, c.size, n_rows) for c in self.schema_.columns], axis=1)
        return decode(codes, self.schema_, rng)


class Seeded(Uniform):
    """A seed in __init__ and in sample, a claim of secure noise, and a DP row estimate."""

    estimates_rows = True

    def __init__(self, *, epsilon, delta, random_state=None):
        super().__init__(epsilon=epsilon, delta=delta)
        self.random_state = random_state
        record("seed", random_state=random_state)

    def fit(self, data, *, schema):
        super().fit(data, schema=schema)
        self.secure_noise_ = self.random_state is None
        self.total_estimate_ = 321.4
        return self

    def sample(self, n_rows, *, random_state=None):
        record("sample", random_state=random_state)
        rng = np.random.default_rng(random_state)
        codes = np.stack([rng.integers(0, c.size, n_rows) for c in self.schema_.columns], axis=1)
        return decode(codes, self.schema_, rng)


class ChecksReservation(Uniform):
    """Its fit asserts that dpsynth reserved its claim in the ledger before calling it."""

    def fit(self, data, *, schema):
        from dpsynth.privacy.ledger import Ledger

        reservations = Ledger(os.environ["PLUGIN_LEDGER"], create=True).statement("crm").reservations
        last = reservations[-1]
        assert last.status == "reserved", last.status
        record("reserved_before_fit", events=last.events, synthesizer=last.synthesizer)
        return super().fit(data, schema=schema)


class OwnPlan(Uniform):
    """Offers its own plan: one Gaussian count."""

    def plan(self, schema):
        return [GaussianEvent(scale=20.0, l2_sensitivity=1.0, label="my noisy count")]


class EmptyPlan(Uniform):
    def plan(self, schema):
        return []


class StringPlan(Uniform):
    def plan(self, schema):
        return ["epsilon=1"]


class FitRaises(Uniform):
    def fit(self, data, *, schema):
        record("fit", rows=len(data))
        raise ValueError(f"cannot handle the value {data['tenure'].max()}")


class SampleRaises(Uniform):
    def sample(self, n_rows):
        raise RuntimeError("sampler crashed on 98765")


class SampleList(Uniform):
    def sample(self, n_rows):
        return [["north", "basic", "no", 3]] * n_rows


class SampleFewerRows(Uniform):
    def sample(self, n_rows):
        return super().sample(n_rows).iloc[: n_rows - 1]


class SampleMissingColumn(Uniform):
    def sample(self, n_rows):
        return super().sample(n_rows).drop(columns=["churn"])


class SampleOutOfSchema(Uniform):
    def sample(self, n_rows):
        out = super().sample(n_rows)
        out.loc[0, "region"] = "mars98765"
        return out


class NoFit:
    def __init__(self, *, epsilon, delta):
        pass

    def sample(self, n_rows):
        return None


class NoDelta(Uniform):
    def __init__(self, *, epsilon):
        pass


class FitWithoutSchema(Uniform):
    def fit(self, data):
        return self


class NoSample:
    def __init__(self, *, epsilon, delta):
        pass

    def fit(self, data, *, schema):
        return self
'''


def make_table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"region": rng.choice(["north", "south", "east"], n),
                          "plan": rng.choice(["basic", "plus"], n, p=[0.7, 0.3]),
                          "churn": rng.choice(["no", "yes"], n), "tenure": rng.integers(0, 60, n)})
    table.loc[3, "tenure"] = 119  # the largest value, which FitRaises would quote
    return table


class Files:
    """One test's files: table, schema, policy, a ledger with (ε = 4, δ = 1e-5) for 'crm', the user module."""

    def __init__(self, root: Path, monkeypatch):
        self.root = root
        self.data = root / "crm.csv"
        make_table().to_csv(self.data, index=False)
        self.schema = root / "schema.yaml"
        self.schema.write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
        (root / f"{MODULE}.py").write_text(USER_MODULE, encoding="utf-8")
        self.calls_file = root / "calls.jsonl"
        self.calls_file.touch()
        self.url = f"sqlite:///{root / 'ledger.db'}"
        Ledger(self.url, create=True).create_dataset("crm", ApproxDP(4.0, 1e-5))
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.delitem(sys.modules, MODULE, raising=False)  # each test imports its own copy
        monkeypatch.setenv("PLUGIN_CALLS", str(self.calls_file))
        monkeypatch.setenv("PLUGIN_LEDGER", self.url)

    def policy(self, name: str = "policy", **overrides) -> Path:
        spec = json.loads(json.dumps(POLICY))
        for key, value in overrides.items():
            spec[key] = value if not isinstance(value, dict) or spec.get(key) is None else {**spec[key], **value}
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec), encoding="utf-8")
        return path

    def calls(self, what: str | None = None) -> list[dict]:
        lines = [json.loads(line) for line in self.calls_file.read_text(encoding="utf-8").splitlines() if line]
        return [c for c in lines if what is None or c["call"] == what]

    def ledger(self) -> Ledger:
        return Ledger(self.url, create=True)

    def reservations(self) -> list:
        return self.ledger().statement("crm").reservations
