"""The section of ``report.html`` for a release that is one version of a series (``dpsynth refresh``):
its version, the budget's forecast as a plot (ε spent after each earlier version, then the
composed ε after k more refreshes of this plan, against the cap) and the drift from the previous
released version. Everything it shows is public or DP output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dpsynth.release.html.charts import legend_html, nice_ticks, plot_frame, shorten, svg, svg_text
from dpsynth.release.html.markup import as_dict, as_float, as_list, data_table, dig, esc, fmt, kv_table

#: Version labels written under the plot's axis (thinned evenly beyond this).
MAX_AXIS_LABELS = 12

_SPENT, _FORECAST, _CAP = "#1c2833", "#4c72b0", "#c0392b"


def _curve(budget: dict[str, Any]) -> list[tuple[int, float]]:
    """The forecast's (more refreshes, ε spent) points, by refreshes, skipping malformed ones."""
    points = []
    for item in as_list(budget.get("curve")):
        item = as_dict(item)
        k, eps = item.get("refreshes"), as_float(item.get("epsilon"))
        if isinstance(k, int) and not isinstance(k, bool) and k >= 0 and eps is not None:
            points.append((k, eps))
    return sorted(points)


def _axis_labels(labels: Sequence[str], steps: int) -> list[tuple[int, str]]:
    """(x index, text) of the labels under the axis: every version, then ``+k`` forecast steps, thinned."""
    every = [(i, lab) for i, lab in enumerate(labels)] + [(len(labels) - 1 + k, f"+{k}") for k in range(1, steps + 1)]
    if len(every) <= MAX_AXIS_LABELS:
        return every
    stride = (len(every) - 1) / (MAX_AXIS_LABELS - 1)
    return [every[round(i * stride)] for i in range(MAX_AXIS_LABELS)]


def budget_svg(budget: dict[str, Any], spent_history: Sequence[tuple[str, Any]]) -> str:
    """The budget of a series over time as an HTML figure with an inline SVG plot.

    ``spent_history``: (version label, ε spent on the dataset after it), oldest first, drawn as a solid
    line; ``budget``: the newest version's ``budget`` object of ``version.json``: its ``curve`` (ε spent
    after k more refreshes at the plan's ε, from ``refreshes`` 0, the newest version) is drawn dashed
    from the last version on, and ``cap_epsilon`` as a horizontal line. Malformed values are skipped;
    nothing to draw gives a short note instead of a plot. Every text is escaped.
    """
    budget = as_dict(budget)
    history = [(str(lab), v) for lab, v in ((h[0], as_float(h[1])) for h in as_list(spent_history)
                                           if isinstance(h, (list, tuple)) and len(h) == 2) if v is not None]
    curve = _curve(budget)
    cap = as_float(budget.get("cap_epsilon"))
    if not history and not curve:
        note = f" (cap ε = {fmt(cap)})" if cap is not None else ""
        return f"<p class=muted>{esc('No ε spent recorded yet' + note)}: no budget plot.</p>"
    steps = max([k for k, _ in curve] + [0])
    origin = max(len(history) - 1, 0)  # the x of the newest version, where the forecast starts
    n = origin + steps
    width, height, left, right, top, bottom = 900, 300, 56, 130, 16, 56
    pw, ph = width - left - right, height - top - bottom
    hi = max([v for _, v in history] + [v for _, v in curve] + [cap or 0.0])
    ticks = nice_ticks(hi * 1.05)
    ymax = ticks[-1]

    def x(i: float) -> float:
        return left + (pw * i / n if n else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    parts = plot_frame(ticks, y, (left, top, pw, ph), "ε spent")
    if history:
        parts += _spent_line(history, x, y)
    if curve:
        pts = " ".join(f"{x(origin + k):.1f},{y(v):.1f}" for k, v in curve)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{_FORECAST}" stroke-width="2" '
                     'stroke-dasharray="6 4"><title>forecast</title></polyline>')
        for k, v in curve:
            parts.append(f'<circle cx="{x(origin + k):.1f}" cy="{y(v):.1f}" r="2.5" fill="{_FORECAST}">'
                         f"<title>{esc(f'+{k} refresh(es): ε = {fmt(v)}')}</title></circle>")
    if cap is not None:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" stroke="{_CAP}" '
                     'stroke-width="2" stroke-dasharray="8 4"/>')
        parts.append(svg_text(left + pw + 6, y(cap) + 4, f"cap ε = {fmt(cap)}", color=_CAP, size=11, weight="bold"))
    for i, text in _axis_labels([lab for lab, _ in history], steps):
        parts.append(svg_text(x(i), top + ph + 16, shorten(text, 10), anchor="middle", size=10, title=text,
                              color=_FORECAST if text.startswith("+") else "#1c2833"))
    parts.append(svg_text(left + pw / 2, height - 8, "versions, oldest first, then forecast refreshes (+k)",
                          anchor="middle", size=11))
    legend = legend_html([("ε spent after each version", _SPENT), ("forecast at this plan's ε (dashed)", _FORECAST),
                          ("cap", _CAP)])
    return (f"<figure>{legend}{svg(width, height, ''.join(parts), 'privacy budget of the series against the cap')}"
            f"<figcaption>{esc(_caption(budget))}</figcaption></figure>")


def _spent_line(history: list[tuple[str, float]], x: Callable[[float], float],
                y: Callable[[float], float]) -> list[str]:
    pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(history))
    parts = [f'<polyline points="{pts}" fill="none" stroke="{_SPENT}" stroke-width="2"/>']
    for i, (label, v) in enumerate(history):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" fill="{_SPENT}">'
                     f"<title>{esc(f'{label}: ε spent {fmt(v)}')}</title></circle>")
    return parts


def _caption(budget: dict[str, Any]) -> str:
    text = ("ε spent on the dataset after each version (tight composition over the ledger's reservations, "
            "interrupted attempts included); dashed: the ε spent after each further refresh at this plan's ε; "
            "red: the ledger's cap.")
    left, horizon = budget.get("forecast_refreshes_left"), budget.get("horizon_left")
    if isinstance(left, int) and not isinstance(left, bool):
        text += f" {left} more refresh(es) fit under the cap"
        text += f"; the plan's horizon needs {horizon} more." if isinstance(horizon, int) else "."
    return text



def drift_table(drift: dict[str, Any]) -> str:
    """The marginals that moved most from the previous released version, with their noise floors."""
    table = as_dict(drift.get("table"))
    rows = []
    for kind in ("columns", "pairs"):
        for name, item in as_dict(table.get(kind)).items():
            item = as_dict(item)
            rows.append((kind[:-1], name, item.get("tvd"), item.get("noise_floor"),
                         "yes" if item.get("above_noise") else "no"))
    rows.sort(key=lambda r: -(as_float(r[2]) or 0.0))
    summary = as_dict(drift.get("summary"))
    head = kv_table([("Compared with", drift.get("previous")), ("Largest TVD", summary.get("max_tvd")),
                     ("Where", summary.get("where")), ("Noise floor there", summary.get("noise_floor"))])
    return head + data_table(["marginal", "name", "TVD", "noise floor", "above the noise"], rows[:15],
                             numeric=(2, 3))


def series_section(report: dict[str, Any]) -> str:
    """The series block of a release made by ``dpsynth refresh`` (absent: a one-off release)."""
    series = as_dict(report.get("series"))
    if not series:
        return "<p class=muted>This release is not part of a series (it was not made by dpsynth refresh).</p>"
    forecast = as_dict(series.get("forecast"))
    left = forecast.get("refreshes_left")
    out = [kv_table([
        ("Version", series.get("version")),
        ("Previous released version", series.get("previous") or "none (the first)"),
        ("ε spent before this version (tight)", forecast.get("spent_epsilon")),
        ("ε remaining under the cap", forecast.get("remaining_epsilon")),
        ("Refreshes of this plan the cap still allows", f"{left}{'+' if forecast.get('at_least') else ''}"),
        ("Refreshes the plan's horizon still needs", forecast.get("horizon_left")),
    ]), budget_svg(forecast, [(str(as_dict(h).get("version", "")), as_dict(h).get("epsilon_spent"))
                              for h in as_list(series.get("history"))])]
    drift = as_dict(dig(report, "evidence", "drift"))
    if drift.get("table"):
        out.append("<h3>Drift from the previous released version (DP output only)</h3>" + drift_table(drift))
    return "".join(out)


__all__ = ["budget_svg", "drift_table", "series_section"]
