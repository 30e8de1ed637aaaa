"""The inline SVG charts of ``report.html``: the budget over time, real against synthetic marginals,
the audit's ε lower bounds against the claim, ROC curves, and replay rates against their baseline.

Every text drawn in a chart is escaped (:func:`~dpsynth.release.html.markup.esc`); a chart never
raises on malformed figures it can skip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from dpsynth.release.html.markup import as_dict, as_float, as_list, esc, fmt, pct

#: A column with more levels than MAX_FULL is drawn as its MAX_BARS largest levels (in the schema's
#: order) and one "other" bar summing the rest.
MAX_BARS = 12
MAX_FULL = 16
#: Points kept per ROC curve (the curve is thinned evenly beyond this).
MAX_ROC_POINTS = 400
#: Characters of a level or column name shown in a plot (the full name is in the tooltip).
MAX_LABEL = 26

REAL, SYNTH = "#4c72b0", "#dd8452"
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_CAP, _OK, _BAD, _WARN = "#c0392b", "#1e8449", "#c0392b", "#b9770e"


def nice_ticks(hi: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``hi``."""
    if not hi > 0:
        return [0.0, 1.0]
    raw = hi / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < hi - 1e-12 * hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def legend_html(items: Sequence[tuple[str, str]]) -> str:
    """A legend: a colour swatch before each label."""
    return '<div class="legend">' + "".join(
        f'<span class="swatch" style="background:{color}"></span>{esc(label)}' for label, color in items) + "</div>"


def svg(width: int, height: int, body: str, label: str) -> str:
    """An inline SVG image of ``body``, labelled for screen readers."""
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(label)}">{body}</svg>')


def svg_text(x: float, y: float, text: Any, *, size: int = 11, anchor: str = "start", color: str = "#1c2833",
             weight: str = "normal", title: Any = None) -> str:
    """An SVG ``<text>`` (escaped), with an optional tooltip."""
    tip = f"<title>{esc(title)}</title>" if title is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" '
            f'font-weight="{weight}">{tip}{esc(text)}</text>')


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_frame(ticks: Sequence[float], y: Callable[[float], float], box: tuple[int, int, int, int],
               label: str) -> list[str]:
    """A plot's horizontal grid lines at ``ticks`` with their values, its two axes and its y label,
    in the plotting box ``(left, top, width, height)``."""
    left, top, pw, ph = box
    parts = []
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eaeded"/>')
        parts.append(svg_text(left - 6, y(t) + 4, fmt(t), anchor="end", size=10))
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#566573"/>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#566573"/>')
    parts.append(svg_text(14, top + ph / 2, label, anchor="middle", size=11)
                 .replace("<text ", f'<text transform="rotate(-90 14 {top + ph / 2:.1f})" ', 1))
    return parts


def budget_plot(history: list[Any], cap: float | None) -> str:
    """The cumulative ε spent on the dataset after each reservation, against the ledger's cap."""
    points = _budget_points(history)
    if not points:
        note = f" (cap ε = {esc(fmt(cap))})" if cap is not None else ""
        return f"<p class=muted>No reservation recorded for this dataset yet{note}: no budget plot.</p>"
    width, height, left, right, top, bottom = 900, 300, 56, 120, 16, 52
    pw, ph = width - left - right, height - top - bottom
    hi = max([p[2] for p in points] + [p[3] or 0.0 for p in points] + [cap or 0.0])
    ticks = nice_ticks(hi * 1.05)
    ymax = ticks[-1]
    n = len(points)

    def x(i: float) -> float:
        return left + pw * i / n

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    parts = plot_frame(ticks, y, (left, top, pw, ph), "cumulative ε")
    for key, dash, color, label in ((2, "", "#1c2833", "spent (tight)"), (3, "5 4", "#85929e", "plain sum")):
        if key == 3 and all(p[3] is None for p in points):
            continue
        path, prev = [f"M{x(0):.1f},{y(0):.1f}"], 0.0
        for i, p in enumerate(points, start=1):
            value = p[key] if p[key] is not None else prev
            path.append(f"H{x(i):.1f}V{y(value):.1f}")
            prev = value
        path.append(f"H{left + pw:.1f}")
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{color}" '
                     f'stroke-width="{2 if key == 2 else 1.5}"{dashes}/>')
        parts.append(svg_text(left + pw + 10, y(prev) + 4 + (12 if key == 3 else 0), label, color=color, size=10))
    if cap is not None:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" stroke="{_CAP}" '
                     'stroke-width="2" stroke-dasharray="8 4"/>')
        parts.append(svg_text(left + pw + 6, y(cap) - 4, f"cap ε = {fmt(cap)}", color=_CAP, size=11, weight="bold"))
    parts += _budget_markers(points, x, y, top + ph)
    parts.append(svg_text(left + pw / 2, height - 6, "ledger reservations of this dataset, oldest first",
                          anchor="middle", size=11))
    mine = [p for p in points if p[4]]
    caption = ("Cumulative ε spent on this dataset after each reservation (tight composition; dashed grey: the "
               "plain sum of ε), against the ledger's cap.")
    if not mine:
        caption += " This release reserved nothing, so it is not on the plot."
    return (f"<figure>{svg(width, height, ''.join(parts), 'cumulative privacy budget against the cap')}"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _budget_points(history: list[Any]) -> list[tuple[Any, ...]]:
    """(entry id, time, ε spent tight, plain sum, this release?) of each history item with a tight ε."""
    points = []
    for item in history:
        item = as_dict(item)
        tight = as_float(item.get("epsilon_spent_tight"))
        if tight is None:
            continue
        points.append((item.get("entry_id"), str(item.get("at", "")), tight,
                       as_float(item.get("epsilon_spent_plain_sum")), bool(item.get("this_release"))))
    return points


def _budget_markers(points: list[tuple[Any, ...]], x: Callable[[float], float],
                    y: Callable[[float], float], axis: float) -> list[str]:
    """A dot per reservation (a large one, labelled, for this release's), and entry labels under ``axis``."""
    parts = []
    n = len(points)
    step = max(1, math.ceil(n / 10))
    for i, (entry, at, tight, _plain, mine) in enumerate(points, start=1):
        tip = f"entry {entry} at {at}: ε spent {fmt(tight)}"
        if mine:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(tight):.1f}" r="6" fill="{SYNTH}" stroke="#1c2833">'
                         f"<title>{esc(tip)} (this release)</title></circle>")
            parts.append(svg_text(x(i) - 8, y(tight) - 10, "this release", anchor="end", color="#a04000", size=11,
                                  weight="bold"))
        else:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(tight):.1f}" r="3" fill="#1c2833">'
                         f"<title>{esc(tip)}</title></circle>")
        if (i - 1) % step == 0 or i == n or mine:
            parts.append(svg_text(x(i), axis + 16, f"#{entry}", anchor="middle", size=10, title=tip))
            parts.append(svg_text(x(i), axis + 29, at[:10], anchor="middle", size=9, color="#5d6d7e"))
    return parts


def _shares(values: Any, n: int) -> list[float] | None:
    values = as_list(values)
    if len(values) < n:
        return None
    out = []
    for v in values[:n]:
        f = as_float(v)
        if f is None:
            return None
        out.append(max(f, 0.0))
    return out


def marginal_plot(marginal: dict[str, Any], tvd: Any) -> str:
    """One column's real and synthetic shares per level or bin, side by side."""
    column = str(marginal.get("column", "?"))
    labels = [str(v) for v in as_list(marginal.get("labels"))]
    n = len(labels)
    real, synth = _shares(marginal.get("real"), n), _shares(marginal.get("synthetic"), n)
    if not n or real is None or synth is None:
        return (f"<figure><h3>{esc(column)}</h3><p class=broken>The marginal of this column is malformed "
                "(labels and shares do not match).</p></figure>")
    bars = list(zip(labels, real, synth, strict=True))
    hidden = 0
    if n > MAX_FULL:
        keep = sorted(range(n), key=lambda i: -max(real[i], synth[i]))[:MAX_BARS]
        keep_set = set(keep)
        rest = [i for i in range(n) if i not in keep_set]
        hidden = len(rest)
        bars = [bars[i] for i in sorted(keep)]  # keep the schema's order (bins stay in order)
        bars.append((f"other ({hidden} levels)", math.fsum(real[i] for i in rest),
                     math.fsum(synth[i] for i in rest)))
    label_w, bar_h, gap, width, top = 170, 9, 7, 470, 6
    row_h = 2 * bar_h + gap
    pw = width - label_w - 56
    height = top + row_h * len(bars) + 22
    top_share = max(max(r, s) for _, r, s in bars) or 1.0
    ticks = nice_ticks(top_share, 4)
    xmax = ticks[-1]
    parts = []
    for t in ticks:
        tx = label_w + pw * t / xmax
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 20}" stroke="#eaeded"/>')
        parts.append(svg_text(tx, height - 6, pct(t, 0), anchor="middle", size=9, color="#5d6d7e"))
    for k, (label, r, s) in enumerate(bars):
        y0 = top + k * row_h
        other = hidden and k == len(bars) - 1
        parts.append(svg_text(label_w - 6, y0 + bar_h + 3, shorten(label), anchor="end", size=10, title=label,
                              color="#5d6d7e" if other else "#1c2833"))
        for j, (share, color, name) in enumerate(((r, REAL, "real"), (s, SYNTH, "synthetic"))):
            w = pw * share / xmax
            yy = y0 + j * bar_h
            parts.append(f'<rect x="{label_w}" y="{yy:.1f}" width="{w:.1f}" height="{bar_h - 1}" fill="{color}">'
                         f"<title>{esc(label)}: {esc(name)} {esc(pct(share, 2))}</title></rect>")
            parts.append(svg_text(label_w + w + 3, yy + bar_h - 1.5, pct(share), size=8, color="#5d6d7e"))
    caption = f"TVD {fmt(tvd, 3)}." if as_float(tvd) is not None else ""
    if hidden:
        caption += f" The {MAX_BARS} largest of {n} levels; the other {hidden} are summed in the last bar."
    return (f"<figure><h3>{esc(column)}</h3>{svg(width, height, ''.join(parts), f'marginal of {column}')}"
            f"<figcaption>{esc(caption.strip())}</figcaption></figure>")



def bound_plot(name: str, result: dict[str, Any], attacks: dict[str, dict[str, Any]]) -> str:
    """The audit's ε lower bounds (and the most its trials could prove) against the claimed ε."""
    claimed = as_float(result.get("claimed_epsilon"))
    rows = [("audit (best attack)", as_float(result.get("epsilon_lower_bound")),
             as_float(result.get("max_provable_epsilon")))]
    rows += [(k, as_float(a.get("epsilon_lower_bound")), as_float(a.get("max_provable_epsilon"))) for k, a in
             attacks.items()]
    rows = [r for r in rows if r[1] is not None]
    if claimed is None or not rows:
        return ""
    label_w, row_h, width, top = 190, 26, 900, 22
    pw = width - label_w - 40
    height = top + row_h * len(rows) + 30
    hi = max([claimed] + [r[1] or 0 for r in rows] + [r[2] or 0 for r in rows])
    ticks = nice_ticks(hi * 1.05, 6)
    xmax = ticks[-1]

    def x(v: float) -> float:
        return label_w + pw * v / xmax

    parts = []
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 4}" y2="{height - 24}" stroke="#eaeded"/>')
        parts.append(svg_text(x(t), height - 10, fmt(t), anchor="middle", size=10))
    for k, (label, lower, provable) in enumerate(rows):
        y0 = top + k * row_h
        color = _BAD if lower is not None and lower > claimed else _OK
        parts.append(svg_text(label_w - 8, y0 + 14, shorten(label, 30), anchor="end", size=11, title=label,
                              weight="bold" if k == 0 else "normal"))
        if provable is not None:
            parts.append(f'<rect x="{label_w}" y="{y0 + 3:.1f}" width="{x(provable) - label_w:.1f}" height="16" '
                         f'fill="none" stroke="#85929e" stroke-dasharray="3 3"><title>max provable ε '
                         f"{esc(fmt(provable))}</title></rect>")
        w = x(lower or 0.0) - label_w
        parts.append(f'<rect x="{label_w}" y="{y0 + 5:.1f}" width="{max(w, 1.5):.1f}" height="12" fill="{color}">'
                     f"<title>{esc(label)}: ε lower bound {esc(fmt(lower))}</title></rect>")
        parts.append(svg_text(label_w + max(w, 1.5) + 4, y0 + 15, fmt(lower), size=10, color=color))
    cx = x(claimed)
    parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top - 10}" y2="{height - 24}" stroke="{_CAP}" '
                 'stroke-width="2"/>')
    parts.append(svg_text(cx, top - 12 + 2, f"claimed ε = {fmt(claimed)}", anchor="middle", size=11, color=_CAP,
                          weight="bold"))
    caption = ("Solid bars: the ε each attack proves at the stated confidence (green: at most the claim; red: a "
               "violation). Dashed boxes: the largest ε these trials could prove at all; a box that ends below the "
               "claim means the audit could not have caught a violation of it.")
    return (f"<figure>{svg(width, height, ''.join(parts), f'ε lower bounds of {name} against the claim')}"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _roc_curve(attack: dict[str, Any]) -> list[tuple[float, float]] | None:
    roc = as_dict(attack.get("roc"))
    fpr, tpr = as_list(roc.get("fpr")), as_list(roc.get("tpr"))
    points = [(as_float(f), as_float(t)) for f, t in zip(fpr, tpr, strict=False)]
    clean = [(min(max(f, 0.0), 1.0), min(max(t, 0.0), 1.0)) for f, t in points if f is not None and t is not None]
    if len(clean) < 2:
        return None
    if len(clean) > MAX_ROC_POINTS:
        # keep the low false-positive corner whole (the log panel draws it large), thin the rest evenly
        head, tail = clean[: MAX_ROC_POINTS // 4], clean[MAX_ROC_POINTS // 4:]
        stride = len(tail) / (MAX_ROC_POINTS - len(head))
        clean = head + [tail[int(i * stride)] for i in range(MAX_ROC_POINTS - len(head))] + [clean[-1]]
    return clean


def roc_plots(attacks: dict[str, dict[str, Any]]) -> str:
    """The attacks' ROC curves, on linear and log-log axes (empty when no attack has a curve)."""
    curves = [(name, curve) for name, a in attacks.items() if (curve := _roc_curve(a)) is not None]
    if not curves:
        return ""
    colors = {name: _PALETTE[i % len(_PALETTE)] for i, (name, _) in enumerate(curves)}
    linear = _roc_svg(curves, colors, log=False)
    log = _roc_svg(curves, colors, log=True)
    legend = legend_html([(f"{name} (AUC {fmt(attacks[name].get('auc'), 3)})", colors[name]) for name, _ in curves]
                         + [("chance", "#aab7b8")])
    return (f'<figure>{legend}<div class="grid">{linear}{log}</div><figcaption>ROC curves of the membership-'
            "inference attacks, linear and log-log (the low false-positive corner is where an attack is "
            "dangerous).</figcaption></figure>")


def _roc_svg(curves: list[tuple[str, list[tuple[float, float]]]], colors: dict[str, str], *, log: bool) -> str:
    size, left, bottom, top, right = 440, 48, 40, 10, 14
    pw, ph = size - left - right, size - top - bottom
    lo = 1e-3
    if log:
        small = [f for _, c in curves for f, _t in c if f > 0] + [t for _, c in curves for _f, t in c if t > 0]
        lo = max(min(small + [1e-3]), 1e-5)
        lo = 10 ** math.floor(math.log10(lo))

    def scale(v: float) -> float:
        if not log:
            return v
        return (math.log10(max(v, lo)) - math.log10(lo)) / -math.log10(lo)

    def px(f: float) -> float:
        return left + pw * scale(f)

    def py(t: float) -> float:
        return top + ph * (1 - scale(t))

    ticks = [10.0 ** -k for k in range(round(-math.log10(lo)), -1, -1)] if log else [0, 0.25, 0.5, 0.75, 1.0]
    parts = []
    for t in ticks:
        label = (f"1e{round(math.log10(t))}" if t < 1 else "1") if log else fmt(float(t))
        parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + ph}" stroke="#eaeded"/>')
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eaeded"/>')
        parts.append(svg_text(px(t), top + ph + 14, label, anchor="middle", size=9))
        parts.append(svg_text(left - 5, py(t) + 3, label, anchor="end", size=9))
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#566573"/>')
    if log:
        diag = [lo * (1 / lo) ** (i / 40) for i in range(41)]
        parts.append('<polyline fill="none" stroke="#aab7b8" stroke-dasharray="4 3" points="'
                     + " ".join(f"{px(v):.1f},{py(v):.1f}" for v in diag) + '"/>')
    else:
        parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" stroke="#aab7b8" '
                     'stroke-dasharray="4 3"/>')
    for name, curve in curves:
        pts = curve  # on the log axes a zero rate is drawn on the edge (scale clamps it to the lowest tick)
        parts.append(f'<polyline fill="none" stroke="{colors[name]}" stroke-width="2" points="'
                     + " ".join(f"{px(f):.1f},{py(t):.1f}" for f, t in pts)
                     + f'"><title>{esc(name)}</title></polyline>')
    parts.append(svg_text(left + pw / 2, size - 8, "false positive rate" + (" (log)" if log else ""), anchor="middle"))
    parts.append(svg_text(12, top + ph / 2, "true positive rate" + (" (log)" if log else ""), anchor="middle")
                 .replace("<text ", f'<text transform="rotate(-90 12 {top + ph / 2:.1f})" ', 1))
    return svg(size, size, "".join(parts), "ROC curves" + (" (log-log)" if log else ""))



def replay_plot(checks: list[dict[str, Any]]) -> str:
    """The replay checks' synthetic rates beside their holdout baseline."""
    rows = [(str(c.get("check", "?")), as_float(c.get("synthetic_rate")), as_float(c.get("baseline_rate")),
             bool(c.get("flagged"))) for c in checks]
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    if not rows:
        return ""
    label_w, bar_h, gap, width, top = 170, 11, 9, 900, 6
    pw = width - label_w - 80
    height = top + len(rows) * (2 * bar_h + gap) + 22
    ticks = nice_ticks(max([r[1] or 0 for r in rows] + [r[2] or 0 for r in rows]) or 0.01, 5)
    xmax = ticks[-1]
    parts = []
    for t in ticks:
        tx = label_w + pw * t / xmax
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 20}" stroke="#eaeded"/>')
        parts.append(svg_text(tx, height - 6, pct(t, 2 if xmax < 0.05 else 0), anchor="middle", size=9))
    for k, (label, synth, base, flagged) in enumerate(rows):
        y0 = top + k * (2 * bar_h + gap)
        parts.append(svg_text(label_w - 6, y0 + bar_h + 4, shorten(label), anchor="end", size=11, title=label,
                              color=_BAD if flagged else "#1c2833", weight="bold" if flagged else "normal"))
        for j, (rate, color, name) in enumerate(((synth, SYNTH, "synthetic"), (base, "#85929e", "holdout baseline"))):
            w = pw * (rate or 0.0) / xmax
            yy = y0 + j * bar_h
            parts.append(f'<rect x="{label_w}" y="{yy:.1f}" width="{max(w, 1):.1f}" height="{bar_h - 1}" '
                         f'fill="{color}"><title>{esc(label)}: {esc(name)} {esc(pct(rate, 3))}</title></rect>')
            parts.append(svg_text(label_w + max(w, 1) + 4, yy + bar_h - 2, f"{name} {pct(rate, 2)}", size=9,
                                  color="#5d6d7e"))
    return (f"<figure>{legend_html((('synthetic', SYNTH), ('holdout baseline', '#85929e')))}"
            f"{svg(width, height, ''.join(parts), 'replay rates against the holdout baseline')}<figcaption>"
            "Share of synthetic rows that copy a real training row, beside the same share for real rows the "
            "synthesizer never saw (the baseline a generator that copies nothing still reaches).</figcaption></figure>")
