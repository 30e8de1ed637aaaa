"""The section of ``report.html`` for a release that is one version of a series (``dpsynth refresh``):
its version, the budget's forecast as a plot (ε spent after each earlier version, then the
composed ε after k more refreshes of this plan, against the cap) and the drift from the previous
released version. Everything it shows is public or DP output."""

from __future__ import annotations

from typing import Any

from dpsynth.release.html.charts import nice_ticks, svg, svg_text
from dpsynth.release.html.markup import as_dict, as_float, as_list, data_table, dig, esc, fmt, kv_table

_CAP, _SPENT, _FORECAST = "#c0392b", "#1c2833", "#4c72b0"


def forecast_plot(forecast: dict[str, Any], history: list[Any]) -> str:
    """ε spent after each earlier version (solid), then the forecast after k more refreshes (dashed),
    against the cap."""
    spent: list[tuple[str, float]] = []
    for h in history:
        value = as_float(as_dict(h).get("epsilon_spent"))
        if value is not None:
            spent.append((str(as_dict(h).get("version", "")), value))
    points: list[tuple[float, float]] = []
    for p in as_list(forecast.get("curve")):
        k, v = as_float(as_dict(p).get("refreshes")), as_float(as_dict(p).get("epsilon"))
        if k is not None and v is not None:
            points.append((k, v))
    cap = as_float(forecast.get("cap_epsilon"))
    if not points:
        return "<p class=muted>No forecast: the release stopped before its budget was checked.</p>"
    width, height, left, right, top, bottom = 900, 280, 56, 130, 16, 48
    pw, ph = width - left - right, height - top - bottom
    n_past, k_max = len(spent), max(k for k, _ in points)
    span = max(1.0, n_past + k_max)
    ymax = nice_ticks(max([v for _, v in points] + [v for _, v in spent] + [cap or 0.0]) * 1.05)[-1]

    def x(i: float) -> float:
        return left + pw * i / span

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    parts = []
    for t in nice_ticks(ymax):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eaeded"/>')
        parts.append(svg_text(left - 6, y(t) + 4, fmt(t), anchor="end", size=10))
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#566573"/>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#566573"/>')
    if spent:
        path = f"M{x(0):.1f},{y(0):.1f}" + "".join(f"L{x(i + 1):.1f},{y(v):.1f}" for i, (_, v) in enumerate(spent))
        parts.append(f'<path d="{path}" fill="none" stroke="{_SPENT}" stroke-width="2"/>')
        for i, (label, v) in enumerate(spent):
            parts.append(f'<circle cx="{x(i + 1):.1f}" cy="{y(v):.1f}" r="3" fill="{_SPENT}">'
                         f"<title>{esc(label)}: ε spent {esc(fmt(v))}</title></circle>")
            parts.append(svg_text(x(i + 1), top + ph + 16, label, anchor="middle", size=10))
    path = "M" + "L".join(f"{x(n_past + k):.1f},{y(v):.1f}" for k, v in points)
    parts.append(f'<path d="{path}" fill="none" stroke="{_FORECAST}" stroke-width="2" stroke-dasharray="6 4"/>')
    parts.append(svg_text(left + pw + 8, y(points[-1][1]) + 4, f"after {int(k_max)} more", color=_FORECAST, size=10))
    if cap is not None:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" stroke="{_CAP}" '
                     'stroke-width="2" stroke-dasharray="8 4"/>')
        parts.append(svg_text(left + pw + 6, y(cap) - 4, f"cap ε = {fmt(cap)}", color=_CAP, size=11, weight="bold"))
    parts.append(svg_text(left + pw / 2, height - 6, "versions so far, then refreshes to come at this plan's ε",
                          anchor="middle", size=11))
    caption = ("ε spent on the dataset after each earlier version (solid) and after k more refreshes of this plan "
               "(dashed), composed tightly by the ledger's own cap check, against the cap.")
    return (f"<figure>{svg(width, height, ''.join(parts), 'budget forecast of the series')}"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


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
    ]), forecast_plot(forecast, as_list(series.get("history")))]
    drift = as_dict(dig(report, "evidence", "drift"))
    if drift.get("table"):
        out.append("<h3>Drift from the previous released version (DP output only)</h3>" + drift_table(drift))
    return "".join(out)


__all__ = ["drift_table", "forecast_plot", "series_section"]
