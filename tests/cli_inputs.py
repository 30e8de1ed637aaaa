"""Inputs the CLI tests share: a small public schema and a policy with no audit."""

from __future__ import annotations

#: region × plan × age: three columns, small domains
SCHEMA = {
    "version": 1,
    "columns": [
        {"name": "region", "kind": "categorical", "levels": ["north", "south", "east"]},
        {"name": "plan", "kind": "categorical", "levels": ["basic", "plus"]},
        {"name": "age", "kind": "integer", "bounds": [0, 100], "edges": [0, 30, 60, 100]},
    ],
}
#: a policy with no audit and no checks that read the private rows
POLICY = {
    "version": 1, "name": "test", "description": "no audit",
    "privacy": {"max_epsilon": 3.0, "max_delta": 1e-5, "require_secure_noise": False},
    "audit": None, "pii": None, "replay": None, "fidelity": None,
    "decision": {"private_checks": "dp", "rho": 0.05},
}
