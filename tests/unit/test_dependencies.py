"""Every third-party package dpsynth imports is declared in pyproject.toml: in ``dependencies``, or in
the extra of the feature whose modules import it.

Each module of dpsynth is parsed (not imported) with ``ast``; an import's top-level name is mapped to
its distribution with ``importlib.metadata.packages_distributions()``.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dpsynth"

#: each optional feature's extra, and the modules (dotted prefixes) of that feature
FEATURES = {
    "dpsgd": ("dpsynth.synth.dpsgd", "dpsynth.audit"),  # the generators, and the one-run audit of them
    "pii": ("dpsynth.pii",),
    "postgres": ("dpsynth.privacy",),  # the ledger's PostgreSQL store
    "spark": ("dpsynth.marginals.spark_backend", "dpsynth.marginals.spark_session"),  # the Spark counting backend
}
#: imports that are probed, not required: what they enable is off without them, and they are in no extra
#: (none now: torchcsprng, once probed for Opacus's secure_mode, gave way to the ``cryptography`` keystream of
#: dpsynth/synth/dpsgd/secure_noise.py, declared in the dpsgd extra)
PROBED: dict[str, str] = {}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed distribution: once


@cache
def _declared() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = frozenset(_name(r) for r in project["dependencies"])
    extras = {extra: frozenset(_name(r) for r in reqs) for extra, reqs in project["optional-dependencies"].items()}
    return core, extras


def _imports() -> list[tuple[str, str, int]]:
    """(module, top-level import, line) of every absolute import of a package outside dpsynth and the stdlib."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top != "dpsynth" and top not in sys.stdlib_module_names:
                    found.append((module, top, node.lineno))
    return found


def _problem(module: str, top: str) -> str | None:
    """Why this import is not declared, or None."""
    if top in PROBED:
        return None
    distributions = _distributions().get(top)
    if not distributions:
        return f"{top} is imported but no installed distribution provides it"
    core, extras = _declared()
    names = {_name(d) for d in distributions}
    if names & core:
        return None
    for extra, prefixes in FEATURES.items():
        if names & extras[extra] and any(module == p or module.startswith(p + ".") for p in prefixes):
            return None
    owners = sorted(extra for extra, reqs in extras.items() if names & reqs)
    where = f"only in the extra(s) {', '.join(owners)}, which are not this feature's" if owners else "nowhere"
    return f"{'/'.join(sorted(names))} (import {top}) is declared {where}"


def test_the_scan_finds_the_imports() -> None:
    tops = {top for _, top, _ in _imports()}
    assert {"numpy", "pandas", "mbi", "torch", "presidio_analyzer"} <= tops


def test_every_imported_package_is_declared() -> None:
    problems = sorted({f"{module}:{line}: {why}" for module, top, line in _imports()
                       if (why := _problem(module, top)) is not None})
    assert not problems, "undeclared imports (add them to pyproject.toml):\n" + "\n".join(problems)


@pytest.mark.parametrize("module, top, expected", [
    ("dpsynth.release.report", "rich", None),
    ("dpsynth.synth.dpsgd.ctgan", "torch", None),
    ("dpsynth.quality.fidelity", "torch", "torch (import torch) is declared only in the extra(s) dpsgd, which are "
                                          "not this feature's"),
    ("dpsynth.quality.fidelity", "no_such_package_xyz", "no_such_package_xyz is imported but no installed "
                                                        "distribution provides it"),
])
def test_the_rule(module: str, top: str, expected: str | None) -> None:
    assert _problem(module, top) == expected
