"""The HTML building blocks of ``report.html``: escaping, tolerant reads of the report, formatting
of values, tables and sections (a section that cannot be drawn says so instead of raising)."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def esc(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (also inside SVG).

    Bidirectional control characters (which would reorder the text around them, e.g. a column name
    that reads backwards) are shown as their code point, ``<U+202E>``, instead of acting.
    """
    text = html.escape(str(value), quote=True)
    return _BIDI.sub(lambda m: f"&lt;U+{ord(m.group()):04X}&gt;", text)


def dig(obj: Any, *keys: Any, default: Any = None) -> Any:
    """``obj[k1][k2]…`` through dicts and lists, or ``default`` when any step is missing."""
    for key in keys:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def as_float(value: Any) -> float | None:
    """A finite float, or None (booleans and non-numbers are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def fmt(value: Any, digits: int = 4) -> str:
    """A value as short text (not escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return "0" if value == 0 else f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def pct(share: float | None, digits: int = 1) -> str:
    """A share as a percentage (a dash when unknown)."""
    return "—" if share is None else f"{100 * share:.{digits}f}%"


def kv_table(rows: Iterable[tuple[str, Any]], *, raw: bool = False) -> str:
    """A two-column table; values are formatted and escaped unless ``raw`` (already HTML)."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v if raw else esc(fmt(v))}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>' if body else ""


def data_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = (),
               row_class: Callable[[int], str] | None = None) -> str:
    """A table of formatted, escaped cells (a cell given as ``("html", text)`` is inserted as is)."""
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            text = cell[1] if isinstance(cell, tuple) and len(cell) == 2 and cell[0] == "html" else esc(fmt(cell))
            # right-aligned: numbers, and short preformatted figures ("4.1%", "29 / 32,561") in numeric columns
            number = cell is None or (isinstance(cell, (int, float)) and not isinstance(cell, bool)) or (
                isinstance(cell, str) and len(cell) < 24)
            cells.append(f'<td{" class=num" if i in numeric and number else ""}>{text}</td>')
        cls = row_class(r) if row_class else ""
        body.append(f'<tr{f" class={cls}" if cls else ""}>{"".join(cells)}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(title: str, anchor: str, draw: Callable[[], str]) -> str:
    """A section; if drawing it fails, the page says so instead of the renderer raising."""
    try:
        inner = draw()
    except Exception as exc:  # noqa: BLE001 - a malformed evidence object must not lose the whole report
        inner = (f'<p class="broken">This section could not be drawn from the report '
                 f"({esc(type(exc).__name__)}: {esc(exc)}). The JSON report holds the data.</p>")
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{inner}</section>'


def absent(what: str) -> str:
    """The note of a section whose evidence the report does not hold."""
    return (f"<p class=muted>{esc(what)}: the policy did not ask for it, or the release stopped before it "
            "(see the checks).</p>")
