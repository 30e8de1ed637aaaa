"""report.html: structure, self-containment, escaping and robustness of `dpsynth.release.html.render_html`."""

from __future__ import annotations

import copy
import math
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_example import (
    HOSTILE_COLUMN,
    HOSTILE_LEVEL,
    HOSTILE_TEXT,
    example_report,
    hostile_report,
    reference_suite,
    validate,
)

from dpsynth.release.html import MAX_BARS, MAX_FULL, render_html

#: Every element the renderer may emit. Anything else (script, img, iframe, link, object, a …) is a failure.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "section", "h1", "h2", "h3", "p", "div",
    "span", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code", "pre", "strong", "br", "figure",
    "figcaption", "svg", "line", "rect", "circle", "path", "polyline", "text",
}
SECTIONS = ["budget", "checks", "decision", "fidelity", "audit", "pii", "replay", "provenance", "opt-ins", "notice"]


class Page(HTMLParser):
    """The parsed document: tags with their attributes, text per element id, all text."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.section_order: list[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section" and attributes.get("id"):
            self.section_order.append(attributes["id"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def assert_inert(document: str) -> Page:
    """No active content and nothing fetched: only the allowed elements, no event handler, no URL."""
    page = Page(document)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS, {t for t, _ in page.tags} - ALLOWED_TAGS
    for tag, attributes in page.tags:
        for name in attributes:
            assert not name.startswith("on"), (tag, name)
            assert name not in ("src", "href", "xlink:href", "srcset", "action", "formaction"), (tag, name)
    assert "<script" not in document.lower()
    unquoted = re.sub(r'"[^"<>]*"', '""', document)  # attribute values (escaped) may hold any text
    assert not re.search(r"<[^>]*\s(?:src|href|on[a-z]+)\s*=", unquoted, re.IGNORECASE)  # in a tag
    assert "http://" not in document and "https://" not in document
    assert "url(" not in document and "@import" not in document
    return page


def render(report: dict) -> tuple[str, Page]:
    document = render_html(report)
    return document, assert_inert(document)


@pytest.mark.parametrize("status", ["released", "blocked", "refused"])
def test_example_reports_match_the_schema(status: str) -> None:
    validate(example_report(status))


def test_hostile_report_matches_the_schema() -> None:
    validate(hostile_report())


def test_released_report_structure() -> None:
    report = example_report("released")
    document, page = render(report)
    assert document.startswith("<!DOCTYPE html>")
    assert page.section_order == SECTIONS
    verdict = document.index('id="verdict"')
    assert document.index(">RELEASED<", verdict) < document.index('id="budget"')
    assert "<title>RELEASED · dpsynth release report · adult-2024</title>" in document
    for check in report["checks"]:
        assert f">{check['id']}<" in document
    assert page.all_text.count("PASS") == len(report["checks"])
    assert "12 checks: 12 pass." in page.all_text
    # budget (1) + one per marginal + the bound plot (1) + two ROC panels + replay (1)
    assert page.count("svg") == 1 + len(report["evidence"]["fidelity"]["marginals"]) + 1 + 2 + 1
    assert ">this release<" in document and "cap ε = 4" in page.all_text
    assert "claimed ε = 1" in page.all_text
    assert 'class="broken"' not in document and "could not be drawn" not in document
    assert report["notice"] in page.all_text
    assert "None: this release uses no opt-in." in page.all_text
    assert "Content-Security-Policy" in document and "default-src 'none'" in document
    assert "@media print" in document
    for name in ("adult.csv.gz", "schema.yaml", "default.yaml"):
        assert name in page.all_text
    assert report["inputs"]["data"]["fingerprint"] in page.all_text
    assert "synthetic.csv" in page.all_text


def test_every_marginal_and_attack_is_drawn() -> None:
    report = example_report("released")
    _, page = render(report)
    labels = {attrs.get("aria-label") for tag, attrs in page.tags if tag == "svg"}
    for marginal in report["evidence"]["fidelity"]["marginals"]:
        assert f"marginal of {marginal['column']}" in labels
    for attack in report["evidence"]["audit"]["attacks"]:
        assert attack in page.all_text
    polylines = [a for t, a in page.tags if t == "polyline"]
    # one curve per attack in each of the two ROC panels, plus the log panel's chance line
    assert len(polylines) == 2 * len(report["evidence"]["audit"]["attacks"]) + 1


def test_hostile_names_render_as_text() -> None:
    document, page = render(hostile_report())
    text = page.all_text
    for hostile in (HOSTILE_COLUMN, HOSTILE_LEVEL, HOSTILE_TEXT):
        assert hostile in text
        assert hostile not in document  # only its escaped form is in the markup
    assert page.count("script") == 0 and page.count("img") == 0 and page.count("b") == 0
    assert html_escaped(HOSTILE_LEVEL) in document
    # inside SVG too: the marginal plot of the hostile column, its tooltip and axis label
    assert f'aria-label="marginal of {html_escaped(HOSTILE_COLUMN)}"' in document
    assert f"<title>{html_escaped(HOSTILE_LEVEL)}</title>" in document


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_blocked_report_says_why() -> None:
    report = example_report("blocked")
    document, page = render(report)
    assert ">BLOCKED<" in document
    for reason in report["decision"]["reasons"]:
        assert reason in page.all_text
    assert "12 checks: 9 pass, 2 fail, 1 error." in page.all_text
    assert document.count('<tr class=fail>') >= 2 and '<tr class=error>' in document
    assert '<span class="badge error">ERROR</span>' in document
    assert "Violation:" in page.all_text  # the audit's bound above the claim is called out
    assert "j***@e******.com" in page.all_text  # masked examples, as given
    assert "none written" in page.all_text


def test_refused_report_without_evidence() -> None:
    report = example_report("refused")
    document, page = render(report)
    assert ">REFUSED<" in document
    assert "nothing was computed from the private data" in page.all_text
    assert ">this release<" not in document and "This release reserved nothing" in page.all_text
    for what in ("fidelity evidence", "audit evidence", "PII scan", "replay check"):
        assert f"No {what} in this report" in page.all_text
    assert page.all_text.count("NOT RUN") == 9
    assert 'class="broken"' not in document


def minimal_report() -> dict:
    """The least a schema-valid report can hold: no evidence, no history, one check that errored."""
    report = copy.deepcopy(example_report("refused"))
    report["decision"] = {"status": "blocked", "exit_code": 1, "reasons": ["audit.run: could not run"],
                          "privacy": "dp", "statement": ""}
    report["ledger"].update(before=None, after=None, entry_id=None, entry_ids=[], history=[], epsilon_cap=None)
    report["checks"] = [{"id": "audit.run", "category": "audit", "title": "audit ran", "value": None,
                         "threshold": None, "comparison": "==", "status": "error", "detail": "RuntimeError: boom",
                         "reads": "dp_output"}]
    report["release"]["synthesizer_params"] = {}
    report["release"]["seconds"] = {}
    report["versions"] = {"dpsynth": "0.1.0", "python": "3.11.7"}
    report["policy"]["rules"] = {}
    return report


def test_minimal_report_renders() -> None:
    report = minimal_report()
    validate(report)
    document, page = render(report)
    assert ">BLOCKED<" in document and "audit.run: could not run" in page.all_text
    assert "No reservation recorded for this dataset yet" in page.all_text
    assert page.count("svg") == 0
    assert 'class="broken"' not in document


@pytest.mark.parametrize("breakage", [
    lambda r: r["evidence"]["fidelity"]["marginals"][0].update(real=[0.5]),  # lengths disagree
    lambda r: r["evidence"]["fidelity"]["marginals"][1].update(synthetic=["x"] * 8),
    lambda r: r["evidence"]["fidelity"].update(marginals="not a list", columns=[1, 2], tvd=None),
    lambda r: r["evidence"]["audit"]["attacks"]["density_ratio"].update(roc={"fpr": ["a"], "tpr": None}),
    lambda r: r["evidence"]["audit"].update(attacks=[], claimed_epsilon="one", epsilon_lower_bound=math.nan),
    lambda r: r["evidence"].update(audit=[{"method": "a", "claimed_epsilon": 1.0, "epsilon_lower_bound": 0.1}, 3]),
    lambda r: r["evidence"].update(audit={"blackbox": None, "suite": {"method": "one_run"}}),
    lambda r: r["evidence"]["pii"].update(findings=[None, {"examples": None}], ner="on", columns=None),
    lambda r: r["evidence"]["replay"].update(checks=[{"check": None, "synthetic_rate": math.inf}], dcr_quantiles=[]),
    lambda r: r["ledger"]["history"].append({"entry_id": 99, "at": None, "epsilon_spent_tight": "x"}),
    lambda r: r["ledger"].update(history=None, epsilon_cap=math.inf, before=[], after="?"),
    lambda r: r["checks"].extend([None, {"status": "weird", "value": {"a": [1, None]}}]),
    lambda r: r.update(decision=None, release=None, versions=None, policy=None, inputs=None, artifacts=None),
    lambda r: r.clear(),
])
def test_malformed_evidence_never_raises(breakage) -> None:
    report = example_report("blocked")
    breakage(report)
    document, page = render(report)
    assert 'id="verdict"' in document
    assert page.section_order == SECTIONS


def test_a_section_that_cannot_be_drawn_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import dpsynth.release.html as module

    def boom(report: dict) -> str:
        raise ValueError("<b>bad</b>")

    monkeypatch.setattr(module, "replay_section", boom)
    document, page = render(example_report("released"))
    assert 'class="broken"' in document and "ValueError: <b>bad</b>" in page.all_text
    assert ">RELEASED<" in document and page.section_order == SECTIONS


def marginal_report(labels: list[str], real: list[float], synthetic: list[float]) -> dict:
    report = minimal_report()
    report["evidence"] = {"fidelity": {"marginals": [
        {"column": "c", "labels": labels, "real": real, "synthetic": synthetic}]}}
    return report


def bars_of(document: str) -> int:
    figure = document[document.index('aria-label="marginal of c"'):]
    return figure[: figure.index("</svg>")].count("<rect")


def test_many_levels_are_capped_with_an_other_bar() -> None:
    n = 40
    real = [1 / n] * n
    real[5], real[30] = 0.2, 0.15  # two large levels far apart must be among those shown
    document, page = render(marginal_report([f"level{i}" for i in range(n)], real, list(reversed(real))))
    assert bars_of(document) == 2 * (MAX_BARS + 1)
    assert f"other ({n - MAX_BARS} levels)" in page.all_text
    assert ">level5<" in document and ">level30<" in document
    assert ">level9<" in document  # reversed(real) puts the synthetic's large levels at 34 and 9
    shown = [int(m) for m in re.findall(r">level(\d+)<", document)]
    assert shown == sorted(shown)  # the schema's order is kept


def test_few_levels_are_all_shown() -> None:
    labels = [f"bin{i}" for i in range(MAX_FULL)]
    document, page = render(marginal_report(labels, [1 / MAX_FULL] * MAX_FULL, [1 / MAX_FULL] * MAX_FULL))
    assert bars_of(document) == 2 * MAX_FULL and "other (" not in page.all_text


def test_reference_suite_nested_in_the_audit_is_drawn() -> None:
    report = example_report("released")
    report["evidence"]["audit"]["suite"] = reference_suite(violation=True)
    validate(report)
    document, page = render(report)
    audit = document[document.index('id="audit"'):document.index('id="pii"')]
    assert ">blackbox_mia<" in audit and ">suite: whitebox_transcript_likelihood_ratio<" in audit
    assert "pair_a: noise: identical outputs on neighbouring inputs" in page.all_text
    assert audit.count("<tr class=fail>") == 1  # the replay row of the suite's audits
    assert audit.count(">claimed ε = 1<") == 2  # a bound plot for each
    assert "Violation:" in audit  # the suite says it found one
    assert "Strongest attack" in page.all_text and "distance_to_closest_record" in page.all_text


def test_an_inconclusive_audit_says_so() -> None:
    report = example_report("released")
    _, page = render(report)
    assert "Inconclusive" not in page.all_text
    report["evidence"]["audit"].update(conclusive=False, max_provable_epsilon=0.5)
    _, page = render(report)
    assert "Inconclusive: with these trials the audit could prove at most ε = 0.5" in page.all_text


def test_a_perfect_attack_is_drawn_on_both_roc_panels() -> None:
    report = example_report("blocked")
    report["evidence"]["audit"]["attacks"] = {"counting": {"auc": 1.0, "roc": {"fpr": [0, 0, 1], "tpr": [0, 1, 1]}}}
    document, _ = render(report)
    curves = re.findall(r'<polyline fill="none" stroke="#4c72b0" stroke-width="2" points="([^"]*)"', document)
    assert len(curves) == 2 and all(len(c.split()) == 3 for c in curves)


def test_long_roc_is_thinned_but_keeps_its_low_fpr_corner() -> None:
    from dpsynth.release.html import MAX_ROC_POINTS

    report = example_report("released")
    n = 5000
    fpr = [i / n for i in range(n + 1)]
    report["evidence"]["audit"]["attacks"]["density_ratio"]["roc"] = {"fpr": fpr, "tpr": [min(1.0, 3 * f) for f in fpr]}
    document, _ = render(report)
    curves = re.findall(r'<polyline fill="none" stroke="#dd8452" stroke-width="2" points="([^"]*)"', document)
    assert len(curves) == 2  # linear and log panels
    assert len(curves[0].split()) <= MAX_ROC_POINTS + 1
    assert len(curves[1].split()) >= MAX_ROC_POINTS // 4 - 1  # the first points (fpr < 2%) are all kept


def test_opt_ins_are_loud() -> None:
    report = example_report("released")
    report["opt_ins"] = ["schema_read_from_data_without_privacy"]
    document, page = render(report)
    assert page.all_text.count("schema_read_from_data_without_privacy") == 2  # under the verdict and in its section
    assert document.index('class="alarm"') < document.index('id="budget"')


def test_insecure_noise_is_loud() -> None:
    report = example_report("released")
    report["release"]["secure_noise"] = False
    report["release"]["noise_source"] = "seeded (insecure_seed=3): dpsynth's exact samplers on a predictable generator"
    _, page = render(report)
    assert "Insecure noise" in page.all_text and "drawn by: seeded (insecure_seed=3)" in page.all_text


def test_the_privacy_table_names_the_noise_generator() -> None:
    report = example_report("released")
    _, page = render(report)
    assert "Noise drawn by" in page.all_text and "OpenDP's exact samplers" in page.all_text
    del report["release"]["noise_source"]  # an older report: no row, no error
    _, page = render(report)
    assert "Noise drawn by" not in page.all_text


_MARKUP = ("<", ">", "&", '"', "'", "=", "/", " ", "script", "img", "b", "svg", "amp;", "#x3c;", "lt;", "é")
_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
    st.lists(st.sampled_from(_MARKUP), min_size=1, max_size=12).map("".join),
)


@settings(max_examples=60, deadline=None)
@given(column=_TEXT, labels=st.lists(_TEXT, min_size=1, max_size=20, unique=True), reason=_TEXT)
def test_any_text_renders_as_itself(column: str, labels: list[str], reason: str) -> None:
    report = marginal_report(labels, [1 / len(labels)] * len(labels), [1 / len(labels)] * len(labels))
    report["evidence"]["fidelity"]["marginals"][0]["column"] = column
    report["decision"]["reasons"] = [reason]
    _, page = render(report)
    assert column in page.all_text and reason in page.all_text
    shown = labels if len(labels) <= MAX_FULL else []
    for label in shown:
        assert label in page.all_text  # the tooltip holds the full label
