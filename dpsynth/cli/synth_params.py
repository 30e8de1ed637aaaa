"""A synthesizer's constructor parameters from the command line: ``--param NAME=VALUE`` and ``--workload``."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError

__all__ = ["read_workload", "synth_params"]


def synth_params(cls: Any, pairs: list[str], workload: str | None) -> dict[str, Any]:
    """Constructor parameters from ``--param NAME=VALUE`` and ``--workload``, checked by name."""
    any_name = False
    if getattr(cls, "plugin", False):  # a plug-in: the parameters of the user's own __init__
        accepted, any_name = cls.parameters()
    else:
        accepted = {n for n, p in inspect.signature(cls.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    reserved = {"epsilon", "delta", "insecure_seed"}
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ParameterError(f"--param ({pair!r}) must be NAME=VALUE")
        if name in reserved or (name not in accepted and not any_name):
            known = ", ".join(sorted(accepted - reserved)) or "none"
            raise ParameterError(f"--param {name!r} is not a parameter of {cls.name} (its parameters: {known})")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    if workload is not None:
        if "workload" not in accepted:
            raise ParameterError(f"--workload: {cls.name} takes no workload")
        params["workload"] = read_workload(workload)
    return params


def read_workload(text: str) -> list[list[str]]:
    """``--workload``: a YAML or JSON file of column lists, or ``'a,b,c;d,e'``."""
    path = Path(text)
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        from dpsynth.io import read_config

        if not path.is_file():
            raise ParameterError(f"--workload file {text!r} does not exist")
        loaded, _ = read_config(path, what="--workload file", error=ParameterError, fmt="yaml")
        if not isinstance(loaded, list) or not all(isinstance(m, list) for m in loaded):
            raise ParameterError(f"--workload file {text!r} must hold a list of column lists")
        return [[str(c) for c in m] for m in loaded]
    return [[c.strip() for c in part.split(",") if c.strip()] for part in text.split(";") if part.strip()]
