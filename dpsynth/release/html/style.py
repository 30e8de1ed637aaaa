"""The page's inline style sheet and its Content-Security-Policy (no script, no fetch of any kind)."""

CSS = """
:root { --ok: #1e8449; --bad: #c0392b; --warn: #b9770e; --muted: #5d6d7e; --line: #d5d8dc; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1c2833; margin: 0; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.35em; margin: 0 0 4px; }
h2 { font-size: 1.15em; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1em; margin: 18px 0 6px; }
.sub, .muted { color: var(--muted); }
.nowrap { white-space: nowrap; }
.sub { margin: 0 0 16px; font-size: .92em; }
.verdict { border-radius: 8px; padding: 18px 22px; color: #fff; margin: 8px 0 14px; }
.verdict .word { font-size: 2.6em; font-weight: 800; letter-spacing: .06em; line-height: 1.1; }
.verdict p { margin: 6px 0 0; }
.verdict ul { margin: 8px 0 0; padding-left: 1.2em; }
.verdict.released { background: var(--ok); }
.verdict.blocked { background: var(--bad); }
.verdict.refused { background: #6e2c00; }
.verdict.unknown { background: #566573; }
.alarm { border: 3px solid var(--bad); background: #fdedec; padding: 10px 16px; border-radius: 6px; margin: 12px 0; }
.alarm strong { color: var(--bad); }
.note { border-left: 4px solid var(--warn); background: #fef9e7; padding: 8px 14px; margin: 10px 0; }
.notice { border: 2px solid #1c2833; padding: 12px 16px; margin: 14px 0; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: .9em; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f4f6f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv { width: auto; min-width: 50%; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 0 32px; }
.cols table.kv { width: 100%; min-width: 0; }
td code.id { white-space: nowrap; overflow-wrap: normal; }
table.kv td { overflow-wrap: anywhere; }
table.kv th { width: 14em; background: none; font-weight: 600; color: #34495e; }
tr.fail td, tr.error td { background: #fdedec; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .8em; font-weight: 700;
         color: #fff; white-space: nowrap; }
.badge.pass { background: var(--ok); } .badge.fail { background: var(--bad); }
.badge.error { background: #7b241c; } .badge.notrun { background: #85929e; }
.badge.unknown { background: #566573; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .88em;
              overflow-wrap: anywhere; }
pre { background: #f4f6f7; padding: 10px 12px; overflow-x: auto; font-size: .82em; white-space: pre-wrap;
      overflow-wrap: anywhere; }
figure { margin: 8px 0 16px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: .85em; color: var(--muted); margin-top: 2px; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(470px, 1fr)); gap: 4px 24px; }
.legend { font-size: .85em; margin: 2px 0 6px; }
.swatch { display: inline-block; width: 11px; height: 11px; margin: 0 4px 0 10px; vertical-align: -1px; }
.swatch:first-child { margin-left: 0; }
.broken { border: 2px dashed var(--bad); padding: 8px 12px; color: var(--bad); }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr, figure, .verdict, .alarm, .notice { break-inside: avoid; page-break-inside: avoid; }
  .grid { display: block; }
  pre { white-space: pre-wrap; }
}
"""

# Scripts, fetches, frames and forms are all refused; only the inline styles above apply.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def document(title: str, body: str, *, extra_css: str = "") -> str:
    """One self-contained HTML page: the report's CSS and Content-Security-Policy, ``title`` (escaped
    already) and ``body`` (HTML)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{title}</title>"
        f"<style>{CSS}{extra_css}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )

