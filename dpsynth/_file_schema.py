"""The files a user writes (a schema, a release policy, an audit suite, later a refresh plan) checked
against their JSON Schemas (draft 2020-12, shipped beside their readers), with one message shape.

Each problem is ``<key path>: expected <what>`` (``audit.reference_rows: expected an integer >= 20
or null``): the key path and what was expected, never the value found, so that a table given by
mistake is not echoed. The reader joins the problems into one line that names the file and raises
its own error type (exit code 2). Checks that a JSON Schema cannot express (a key that belongs to
another audit method, a guess count above the canaries) stay in the readers' code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from dpsynth._shipped import json_schema

#: the JSON Schemas shipped with the package: (package, file)
SCHEMA_FILE = ("dpsynth.schema", "schema-file.schema.json")
POLICY_FILE = ("dpsynth.release", "policy.schema.json")
SUITE_FILE = ("dpsynth.audit", "suite.schema.json")


def _key_path(parts: Iterable[Any], top: str = "(top level)") -> str:
    """``audits[0].trials_per_world`` for the parts ``("audits", 0, "trials_per_world")``; ``top``
    for none (the file itself)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or top


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _expected(error: Any, top: str) -> tuple[str, str]:
    """The key path of a jsonschema error and what was expected there (never the value)."""
    from dpsynth.io.config import key_names

    path = list(error.absolute_path)

    def key_path(parts: Iterable[Any]) -> str:
        return _key_path(parts, top)
    kind, bound = error.validator, error.validator_value
    if kind == "required":
        missing = [k for k in bound if isinstance(error.instance, dict) and k not in error.instance]
        return key_path([*path, missing[0] if missing else "?"]), "is required"
    if kind == "additionalProperties":
        known = sorted((error.schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in known] if isinstance(error.instance, dict) else []
        return key_path(path), f"has unknown key(s) {key_names(extra)} (known: {', '.join(known)})"
    custom = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if isinstance(custom, str):
        return key_path(path), f"expected {custom}"
    words = {
        "type": lambda: "a " + " or ".join(bound) if isinstance(bound, list) else f"a {bound}",
        "enum": lambda: "one of " + ", ".join("null" if v is None else str(v) for v in bound),
        "const": lambda: f"{bound!r}",
        "minimum": lambda: f"a number >= {bound:g}",
        "exclusiveMinimum": lambda: f"a number > {bound:g}",
        "maximum": lambda: f"a number <= {bound:g}",
        "exclusiveMaximum": lambda: f"a number < {bound:g}",
        "minItems": lambda: f"at least {_plural(bound, 'item')}",
        "maxItems": lambda: f"at most {_plural(bound, 'item')}",
        "minProperties": lambda: f"at least {_plural(bound, 'key')}",
        "minLength": lambda: "a non-empty string" if bound == 1 else f"a string of at least {bound} characters",
        "pattern": lambda: f"text matching {bound}",
        "uniqueItems": lambda: "items named once each",
    }
    return key_path(path), "expected " + (words[kind]() if kind in words else f"what the schema allows ({kind})")


@cache
def _validator(which: tuple[str, str]) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json_schema(*which))


def schema_problems(instance: object, which: tuple[str, str], *, top: str = "(top level)") -> list[str]:
    """Every way ``instance`` departs from the shipped JSON Schema ``which``, one
    ``<key path>: expected <what>`` each, in key order (empty when it validates); ``top`` names the
    file's top level."""
    errors = sorted(_validator(which).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    out: list[str] = []
    for error in errors:
        path, what = _expected(error, top)
        line = f"{path}: {what}"
        if line not in out:
            out.append(line)
    return out


def unreported(problems: Sequence[str], reported: Sequence[str]) -> list[str]:
    """The schema ``problems`` at key paths that none of the ``reported`` messages (the readers' own,
    in today's words, each starting with its key path) already covers: the same path or one above it."""
    paths = {re.split(r"[\s:]", r, maxsplit=1)[0] for r in reported}

    def covered(path: str) -> bool:
        return any(path == p or path.startswith((p + ".", p + "[")) for p in paths)

    return [p for p in problems if not covered(p.split(":", 1)[0])]


def with_schema_problems(reported: Sequence[str], instance: object, which: tuple[str, str], *,
                         top: str = "(top level)") -> list[str]:
    """The readers' ``reported`` problems, then the schema's at every key path they do not name."""
    return [*reported, *unreported(schema_problems(instance, which, top=top), reported)]
