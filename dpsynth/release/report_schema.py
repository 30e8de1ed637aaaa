"""The versioned JSON Schema of ``report.json`` (``report.schema.json`` beside this module)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    """The JSON Schema of ``report.json`` (read once)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def report_problems(report: dict[str, Any]) -> list[str]:
    """Every way ``report`` departs from the schema (empty when it validates)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(report_schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))]


def validate_report(report: dict[str, Any]) -> None:
    """Raise ``ValueError`` (a bug in dpsynth, not a user mistake) when ``report`` breaks the schema."""
    problems = report_problems(report)
    if problems:
        raise ValueError("the release report does not follow its JSON Schema: " + "; ".join(problems[:5]))
