"""The YAML and JSON files a user writes (schemas, policies, suites, workloads): reading one within its
size limit with one-line errors that never quote its text, naming its unknown keys, and checking that a
schema file can be written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError
from dpsynth.io.tables import writable_location

__all__ = ["SCHEMA_SUFFIXES", "check_schema_writable", "key_names", "read_config"]

SCHEMA_SUFFIXES = (".yaml", ".yml", ".json")


def check_schema_writable(path: str | Path, *, name: str = "out") -> Path:
    """Check, before any budget is spent, that a schema file (YAML or JSON) can be written at ``path``."""
    p = Path(path)
    if not p.name.lower().endswith(SCHEMA_SUFFIXES):
        raise ParameterError(f"{name} ({str(p)!r}) must end in .yaml, .yml or .json")
    return writable_location(p, name)


def read_config(path: str | Path, *, what: str, error: type[Exception], fmt: str | None = None) -> tuple[object, bytes]:
    """The parsed content of a YAML or JSON file a user wrote, and its bytes.

    Every failure raises ``error`` with one line naming the file, the line and column and a generic
    reason: never the file's text (a private table given by mistake must not reach the screen).
    ``fmt`` is ``"json"`` or ``"yaml"`` (JSON is YAML, so YAML also reads JSON); by default the suffix decides.
    """
    from dpsynth import _limits

    p = Path(path)
    where = f"{what} {str(p)!r}"
    limit = _limits.max_config_bytes()
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)  # at most the limit: /dev/zero or a table given by mistake stops there
    except FileNotFoundError:
        raise error(f"{where} does not exist") from None
    except IsADirectoryError:
        raise error(f"{where} is a directory, not a file") from None
    except PermissionError:
        raise error(f"{where} cannot be read: permission denied") from None
    except OSError as exc:
        raise error(f"{where} cannot be read ({exc.__class__.__name__})") from None
    if len(data) > limit:
        raise error(f"{where} is more than the limit of {limit:,} bytes for a config file (set "
                    f"${_limits.CONFIG_ENV} to change it; docs/limits.md)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    fmt = fmt or ("json" if p.suffix.lower() == ".json" else "yaml")
    if fmt == "json":
        import json

        try:
            return json.loads(text), data
        except json.JSONDecodeError as exc:
            raise error(f"{where} is not valid JSON at line {exc.lineno}, column {exc.colno}") from None
        except RecursionError:
            raise error(f"{where} is nested too deeply") from None
    import yaml

    try:
        return yaml.safe_load(text), data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"{where} is not valid YAML{at} ({exc.__class__.__name__})") from None
    except RecursionError:
        raise error(f"{where} is nested too deeply") from None


def key_names(keys: Any, *, listed: bool = False) -> str:
    """Unknown keys of a config file for an error message: names that look like a setting are shown,
    anything else (a row of a table given by mistake) only counted, never quoted."""
    import re

    shown = sorted({str(k) for k in keys if re.fullmatch(r"[a-z_][a-z0-9_.-]{0,39}", str(k))})
    hidden = len({str(k) for k in keys}) - len(shown)
    note = [f"{hidden} other key(s) not shown (not a dpsynth setting)"] if hidden else []
    return (repr(shown) + (f" and {note[0]}" if note else "")) if listed else ", ".join(shown + note)
