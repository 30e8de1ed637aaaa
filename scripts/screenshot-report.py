#!/usr/bin/env python3
"""Render a release report to HTML and take a Chromium screenshot of it (docs/release-report.png).

    .venv/bin/python scripts/screenshot-report.py                       # the example passing report
    .venv/bin/python scripts/screenshot-report.py --report dpsynth-demo/release/publish/report.json

Without ``--report`` the report is the example passing release of ``tests/release/report_example.py``:
its "real" marginals are those of the bundled public Adult table; its audit, scan, replay and
ledger figures are illustrative, not measured. With ``--report`` any report.json is used (it is
validated against dpsynth/release/report.schema.json first). The screenshot is Chromium's own
``--screenshot`` of the top of the page (verdict, claim, budget plot, checks) at a fixed window
size, in a throw-away profile, offline. The HTML is also written beside the PNG when ``--html`` is
given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "release"))  # report_example, chromium (test helpers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="a report.json (default: the example passing report)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "release-report.png")
    parser.add_argument("--html", type=Path, help="also write the rendered HTML here")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--chromium", help="the Chromium executable (default: $DPSYNTH_CHROMIUM or PATH)")
    args = parser.parse_args(argv)

    from chromium import find_chromium
    from report_example import example_report, validate

    from dpsynth.release.html import render_html

    report = json.loads(args.report.read_text()) if args.report else example_report("released")
    validate(report)
    executable = args.chromium or find_chromium()
    if executable is None:
        print("screenshot-report: no Chromium found; run scripts/install-chromium.sh", file=sys.stderr)
        return 1
    document = render_html(report)
    if args.html:
        args.html.write_text(document, encoding="utf-8")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dpsynth-screenshot-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(document, encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        command = [executable, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   "--disable-extensions", "--disable-background-networking", "--force-device-scale-factor=1",
                   f"--user-data-dir={tmp}/profile", f"--window-size={args.width},{args.height}",
                   f"--screenshot={shot}", page.as_uri()]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                                check=False)
        if result.returncode != 0 or not shot.exists():
            print(f"screenshot-report: chromium failed (exit {result.returncode}):\n{result.stderr[-2000:]}",
                  file=sys.stderr)
            return 1
        shutil.copyfile(shot, args.out)
    print(f"screenshot-report: {args.out} ({args.out.stat().st_size:,} bytes, {args.width}x{args.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
