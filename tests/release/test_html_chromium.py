"""report.html in a real browser: headless Chromium loads it, shows the verdict, logs no error.

Skipped when no Chromium is found (install Debian's with scripts/install-chromium.sh), unless
DPSYNTH_REQUIRE_CHROMIUM=1 (CI), which turns the skip into a failure. The browser is driven over
the DevTools protocol on a pipe (tests/release/chromium.py).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from chromium import CHROMIUM_ENV, Chromium, find_chromium
from report_example import HOSTILE_COLUMN, HOSTILE_LEVEL, HOSTILE_TEXT, example_report, hostile_report

from dpsynth.release.html import render_html

_PROBE = """JSON.stringify((() => {
  const v = document.getElementById("verdict");
  const r = v.getBoundingClientRect();
  const style = getComputedStyle(v);
  const word = v.querySelector(".word");
  return {
    title: document.title,
    verdict: word.innerText,
    visible: r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight
             && style.visibility === "visible" && style.display !== "none" && style.opacity === "1",
    background: style.backgroundColor,
    wordSize: parseFloat(getComputedStyle(word).fontSize),
    active: document.querySelectorAll("script, img, iframe, object, embed, link, a[href], form").length,
    svgs: [...document.querySelectorAll("svg")].map(s => s.getBoundingClientRect()).filter(b => b.width > 100
          && b.height > 50).length,
    text: document.body.innerText,
  };
})())"""


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        reason = f"no Chromium found (run scripts/install-chromium.sh or set {CHROMIUM_ENV})"
        if os.environ.get("DPSYNTH_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason} (DPSYNTH_REQUIRE_CHROMIUM=1)", pytrace=False)
        pytest.skip(reason)
    with Chromium(executable, width=1200, height=900) as chromium:
        yield chromium


def open_report(browser: Chromium, report: dict, tmp_path: Path, name: str = "report.html"):
    path = tmp_path / name
    path.write_text(render_html(report), encoding="utf-8")
    page = browser.load(path)
    return page, json.loads(page.evaluate(_PROBE))


@pytest.mark.parametrize("status", ["released", "blocked", "refused"])
def test_report_loads_with_visible_verdict_and_no_errors(browser: Chromium, tmp_path: Path, status: str) -> None:
    report = example_report(status)
    page, probe = open_report(browser, report, tmp_path)
    assert page.errors == []
    assert page.requests == [page.url]  # the page fetches nothing
    assert probe["verdict"] == status.upper() and probe["visible"]
    assert probe["title"].startswith(status.upper())
    assert probe["wordSize"] >= 30
    assert probe["background"] == {"released": "rgb(30, 132, 73)", "blocked": "rgb(192, 57, 43)",
                                   "refused": "rgb(110, 44, 0)"}[status]
    assert probe["active"] == 0
    for check in report["checks"]:
        assert check["id"] in probe["text"]
    expected_plots = 0 if status == "refused" else 1 + len(report["evidence"]["fidelity"]["marginals"]) + 1 + 2 + 1
    assert probe["svgs"] == expected_plots + (1 if status == "refused" else 0)  # refused: the budget plot only


@pytest.mark.parametrize("status", ["released", "blocked"])
def test_the_publishable_report_loads_and_names_what_each_check_read(browser: Chromium, tmp_path: Path,
                                                                     status: str) -> None:
    from dpsynth.release.artifacts import publishable

    report = publishable(example_report(status))
    page, probe = open_report(browser, report, tmp_path, name="publish.html")
    assert page.errors == [] and page.requests == [page.url]
    assert probe["verdict"] == status.upper() and probe["visible"]
    assert "publishable report" in probe["text"] and "for the table and the decision" in probe["text"]
    assert "private rows, with DP" in probe["text"] and "DP output only" in probe["text"]
    assert "Marginals, column by column" not in probe["text"]  # the real table's marginals are internal


def test_hostile_names_are_text_in_the_browser(browser: Chromium, tmp_path: Path) -> None:
    page, probe = open_report(browser, hostile_report(), tmp_path)
    assert page.errors == [] and page.requests == [page.url]
    assert probe["verdict"] == "BLOCKED" and probe["visible"] and probe["active"] == 0
    for hostile in (HOSTILE_COLUMN, HOSTILE_LEVEL, HOSTILE_TEXT):
        assert hostile in probe["text"]
    assert page.evaluate("document.querySelectorAll('b').length") == 0


def test_report_prints(browser: Chromium, tmp_path: Path) -> None:
    page, _ = open_report(browser, example_report("blocked"), tmp_path)
    browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=page.session)
    probe = json.loads(page.evaluate(_PROBE))
    assert probe["verdict"] == "BLOCKED" and probe["visible"]
    assert probe["background"] == "rgb(192, 57, 43)"
    pdf = browser.call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}, session=page.session)
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF") and len(data) > 50_000
    assert page.errors == []


@pytest.mark.parametrize("body", [
    '<script>console.error("boom")</script>',
    "<script>undefined_function()</script>",
    '<img src="does-not-exist.png" alt="">',
])
def test_the_harness_sees_errors(browser: Chromium, tmp_path: Path, body: str) -> None:
    """The no-error assertions above can fail: a page that logs an error, throws or misses a file is caught."""
    path = tmp_path / "broken.html"
    path.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>")
    assert browser.load(path).errors != []
