"""Files shipped inside the package (release policies, audit suites, the JSON Schemas of the files a
user writes), found through :mod:`importlib.resources` so that they resolve from an installed wheel
exactly as from a checkout."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

#: where the built-in files live (package data, ``pyproject.toml``): a package and a folder in it
POLICIES = ("dpsynth.release", "policies")
SUITES = ("dpsynth.audit", "suites")


def _folder(where: tuple[str, str]) -> Any:
    package, folder = where
    return resources.files(package).joinpath(folder)


def shipped_names(where: tuple[str, str], suffix: str = ".yaml") -> list[str]:
    """The names (without ``suffix``) of the files shipped in ``where``, sorted."""
    return sorted(p.name[: -len(suffix)] for p in _folder(where).iterdir() if p.name.endswith(suffix) and p.is_file())


def shipped_file(where: tuple[str, str], name: str, suffix: str = ".yaml") -> Path | None:
    """The path of the file ``name + suffix`` shipped in ``where``, or None when there is none.

    dpsynth is installed as files (not zipped), so a shipped resource is a real path.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    resource = _folder(where).joinpath(name + suffix)
    if not resource.is_file():
        return None
    return Path(str(resource))


def is_builtin_name(spec: str | Path) -> bool:
    """Whether ``spec`` names a built-in file rather than a path: a bare name without a YAML suffix
    or a folder (``default``, ``mst``)."""
    text = str(spec)
    return "/" not in text and "\\" not in text and Path(text).suffix.lower() not in (".yaml", ".yml", ".json")


@cache
def json_schema(package: str, filename: str) -> dict[str, Any]:
    """A JSON Schema that ``package`` ships (parsed once)."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    out: dict[str, Any] = json.loads(text)
    return out
