"""The reading side of a refresh series: ``read_history``, ``read_interrupted``, ``dpsynth history`` and the
series' ``index.html``, on version folders written by hand in the on-disk format of ``dpsynth refresh``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dpsynth.cli import main
from dpsynth.exceptions import ParameterError
from dpsynth.refresh.history import (
    FORMAT,
    INCOMPLETE,
    format_history,
    history_rows,
    read_history,
    read_interrupted,
)
from dpsynth.refresh.index_html import write_index
from dpsynth.release.html.series import budget_svg

DATASET = "adult"
EVIL = "<script>alert(1)</script>.csv"


def version_json(n: int, **overrides: Any) -> dict[str, Any]:
    spent = 1.0 + 0.5 * n
    doc: dict[str, Any] = {
        "format": FORMAT, "dataset": DATASET, "version": n, "label": f"v{n:04d}", "status": "released",
        "created_at": f"2026-{n:02d}-04T05:00:00+00:00",
        "snapshot": {"name": f"adult-2026-{n:02d}.csv", "fingerprint": f"{n:064x}"},
        "previous": f"v{n - 1:04d}" if n > 1 else None,
        "synthesizer": "mst", "epsilon": 1.0, "delta": 1e-9, "epsilon_total": 1.017, "rows": 16000,
        "ledger_entries": [2 * n, 2 * n + 1], "reasons": [],
        "checks": [{"id": "pii", "status": "pass", "value": 0, "threshold": 0, "comparison": "<="},
                   {"id": "drift", "status": "pass", "value": 0.01, "threshold": 0.05, "comparison": "<="}],
        "drift": None if n == 1 else {
            "statistic": "synthetic_marginal_tvd", "max_tvd": 0.02, "where": "age", "threshold": 0.05,
            "noise_floor": 0.01, "columns": {"age": {"tvd": 0.02, "noise_floor": 0.01, "above_noise": True}},
            "pairs": {"age|income": {"tvd": 0.015, "noise_floor": 0.012, "above_noise": True}}},
        "budget": {"cap_epsilon": 4.0, "cap_delta": 1e-6, "spent_epsilon": spent, "remaining_epsilon": 4.0 - spent,
                   "forecast_refreshes_left": 3, "horizon_left": 2,
                   "curve": [{"refreshes": k, "epsilon": spent + 0.45 * k} for k in range(4)]},
    }
    doc.update(overrides)
    return doc


def write_version(root: Path, n: int, *, report: bool = True, **overrides: Any) -> Path:
    folder = root / DATASET / f"v{n:04d}"
    (folder / "publish").mkdir(parents=True)
    (folder / "internal").mkdir()
    (folder / "internal" / "secret.json").write_text('{"real_row": "INTERNAL-ONLY"}')
    if report:
        (folder / "publish" / "report.html").write_text("<html></html>")
        (folder / "publish" / "report.json").write_text("{}")
    (folder / "version.json").write_text(json.dumps(version_json(n, **overrides)))
    return folder


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """v0001 released, v0002 released, v0003 blocked by drift (its snapshot named like a script), v0004 with no
    version.json, and one interrupted attempt."""
    root = tmp_path / "releases"
    write_version(root, 1)
    write_version(root, 2)
    write_version(root, 3, status="blocked", snapshot={"name": EVIL, "fingerprint": "ab" * 32},
                  reasons=["drift 0.12 at income is above the policy's 0.05"],
                  checks=[{"id": "pii", "status": "pass", "value": 0, "threshold": 0, "comparison": "<="},
                          {"id": "drift", "status": "fail", "value": 0.12, "threshold": 0.05, "comparison": "<="}],
                  drift={"statistic": "synthetic_marginal_tvd", "max_tvd": 0.12, "where": "income", "threshold": 0.05,
                         "noise_floor": 0.01, "columns": {"income": {"tvd": 0.12, "noise_floor": 0.01,
                                                                     "above_noise": True}}, "pairs": {}})
    (root / DATASET / "v0004").mkdir()
    (root / DATASET / "scratch").mkdir()  # not a version folder
    attempt = {"snapshot": {"name": "adult-2026-05.csv", "fingerprint": "cd" * 32},
               "started_at": "2026-05-04T05:00:00+00:00", "detected_at": "2026-05-05T05:00:00+00:00",
               "ledger_entries": [12], "note": "killed during the fit; its reservation stays spent"}
    (root / DATASET / "interrupted.jsonl").write_text(json.dumps(attempt) + "\n\n")
    return root


def test_history_is_newest_first_and_an_empty_version_folder_is_incomplete(series: Path) -> None:
    records = read_history(series, DATASET)
    assert [r.label for r in records] == ["v0004", "v0003", "v0002", "v0001"]
    assert [r.status for r in records] == [INCOMPLETE, "blocked", "released", "released"]
    assert not records[0].complete and records[0].snapshot == {}
    assert records[1].previous == "v0002" and records[1].snapshot_name == EVIL
    assert records[1].ledger_entries == (6, 7) and records[3].drift is None
    assert records[1].path == series / DATASET / "v0003"


def test_interrupted_attempts_are_read(series: Path) -> None:
    (attempt,) = read_interrupted(series, DATASET)
    assert attempt.snapshot["name"] == "adult-2026-05.csv" and attempt.ledger_entries == (12,)
    assert attempt.line == 1 and "killed" in attempt.note
    (series / DATASET / "interrupted.jsonl").unlink()
    assert read_interrupted(series, DATASET) == []


def test_text_rows_name_the_failed_checks_and_the_drift(series: Path) -> None:
    records = read_history(series, DATASET)
    rows = history_rows(records)
    assert rows[0][:2] == ("v0004", INCOMPLETE)
    assert rows[1][1] == "blocked" and rows[1][5] == "drift" and rows[1][6].startswith("0.12 at income > 0.05")
    assert rows[2][5] == "none" and rows[2][6].startswith("0.02 at age <= 0.05 (above noise)")
    assert rows[3][6] == "—"
    text = format_history(DATASET, records, read_interrupted(series, DATASET))
    assert "3 version(s), newest v0003 (blocked), 1 incomplete" in text
    assert "adult-2026-05.csv" in text and "ledger entries 12" in text


@pytest.mark.parametrize(("change", "key"), [
    ({"status": "done"}, "'status'"),
    ({"epsilon": "one"}, "'epsilon'"),
    ({"label": "v0009"}, "'label'"),
    ({"format": "other/2"}, "'format'"),
    ({"snapshot": {"name": "x.csv"}}, "'snapshot.fingerprint'"),
    ({"checks": [{"id": "pii", "status": "maybe"}]}, "'checks[0].status'"),
    ({"budget": {"curve": [{"refreshes": 0, "epsilon": None}]}}, "'budget.curve[0].epsilon'"),
    ({"created_at": "yesterday"}, "'created_at'"),
])
def test_a_malformed_version_json_is_one_line_naming_the_file_and_the_key(tmp_path: Path, change: dict[str, Any],
                                                                          key: str) -> None:
    write_version(tmp_path, 1, **change)
    with pytest.raises(ParameterError) as info:
        read_history(tmp_path, DATASET)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / DATASET / "v0001" / "version.json") in message and key in message


def test_a_missing_key_and_bad_json_are_one_line(tmp_path: Path) -> None:
    folder = write_version(tmp_path, 1)
    doc = version_json(1)
    del doc["synthesizer"]
    (folder / "version.json").write_text(json.dumps(doc))
    with pytest.raises(ParameterError, match=r"version\.json: key 'synthesizer' is missing"):
        read_history(tmp_path, DATASET)
    (folder / "version.json").write_text("{not json")
    with pytest.raises(ParameterError, match=r"version\.json: not valid JSON \(line 1"):
        read_history(tmp_path, DATASET)


def test_a_malformed_interrupted_line_names_its_line(series: Path) -> None:
    with (series / DATASET / "interrupted.jsonl").open("a") as f:
        f.write('{"snapshot": {"name": "a", "fingerprint": "b"}, "detected_at": "2026-01-01", "ledger_entries": [0]}\n')
    with pytest.raises(ParameterError, match=r"interrupted\.jsonl line 3: key 'ledger_entries'"):
        read_interrupted(series, DATASET)


def test_cli_json_lists_every_version_newest_first(series: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", DATASET, "--releases", str(series), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [v["label"] for v in out["versions"]] == ["v0004", "v0003", "v0002", "v0001"]
    assert out["versions"][0] == {"dataset": DATASET, "version": 4, "label": "v0004", "status": INCOMPLETE,
                                  "path": str(series / DATASET / "v0004")}
    assert out["versions"][1]["drift"]["max_tvd"] == 0.12 and out["versions"][1]["snapshot"]["name"] == EVIL
    assert out["versions"][3]["budget"]["spent_epsilon"] == 1.5
    assert out["interrupted"][0]["ledger_entries"] == [12]


def test_cli_text_and_a_bad_folder_exits_2(series: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", DATASET, "--releases", str(series)]) == 0
    out = capsys.readouterr().out.split("\n", 1)[1]  # below the summary line
    assert out.index("v0004") < out.index("v0003") < out.index("v0002") < out.index("v0001")
    assert main(["history", "nosuch", "--releases", str(series)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dpsynth history: error: no series of dataset 'nosuch'" in err
    write_version(series, 5, status="ok")
    assert main(["history", DATASET, "--releases", str(series), "--html"]) == 2
    assert "v0005" in capsys.readouterr().err and not (series / DATASET / "index.html").exists()


def test_html_index_is_escaped_self_contained_and_links_the_reports(series: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", DATASET, "--releases", str(series), "--html"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == series / DATASET / "index.html"
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in page
    assert "http://" not in page and "https://" not in page and "Content-Security-Policy" in page
    assert page.count("<svg") == 1 and "stroke-dasharray" in page and "cap ε = 4" in page
    for n in (1, 2, 3):
        assert f'href="v{n:04d}/publish/report.html"' in page
    assert 'href="#v0002"' in page and 'id="v0002"' in page  # v0003 links to its previous version
    assert "INTERNAL-ONLY" not in page and "internal/secret" not in page
    assert page.index('id="v0004"') < page.index('id="v0003"') < page.index('id="v0001"')
    assert "adult-2026-05.csv" in page  # the interrupted attempt
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".index.")]  # no temporary file left
    assert write_index(series, DATASET) == path  # rewriting replaces it


def test_budget_svg_draws_the_spent_line_the_dashed_forecast_and_the_cap() -> None:
    budget = version_json(3)["budget"]
    figure = budget_svg(budget, [("v0001", 1.5), ("v0002", 2.0), ("v0003", 2.5)])
    assert figure.startswith("<figure>") and figure.count("<svg") == 1
    polylines = re.findall(r"<polyline [^>]*>", figure)
    assert len(polylines) == 2 and "stroke-dasharray" in polylines[1] and "stroke-dasharray" not in polylines[0]
    assert "cap ε = 4" in figure and "+3" in figure and "v0003" in figure
    assert "3 more refresh(es) fit under the cap; the plan&#x27;s horizon needs 2 more." in figure
    assert "no budget plot" in budget_svg({}, [])
    assert "&lt;b&gt;" in budget_svg({"cap_epsilon": 1.0}, [("<b>", 0.5)])
    assert "<svg" in budget_svg({"curve": "garbage", "cap_epsilon": "x"}, [("v0001", 0.5), ("bad",)])  # type: ignore[list-item]


def test_an_attempt_without_a_snapshot_and_a_refresh_in_flight_are_shown(series: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = series / DATASET
    with (folder / "interrupted.jsonl").open("a") as f:
        f.write(json.dumps({"snapshot": {}, "label": "v0005", "started_at": None,
                            "detected_at": "2026-06-01T00:00:00+00:00", "ledger_entries": [14]}) + "\n")
    (folder / "attempt.json").write_text(json.dumps({"label": "v0006", "snapshot": {"name": "adult-2026-06.csv"},
                                                     "started_at": "2026-06-04T05:00:00+00:00"}))
    newest, older = read_interrupted(series, DATASET)
    assert newest.snapshot == {"name": None, "fingerprint": None} and newest.label == "v0005" and older.line == 1
    assert main(["history", DATASET, "--releases", str(series)]) == 0
    out = capsys.readouterr().out
    assert "(snapshot unknown) (would have been v0005)" in out
    assert "a refresh started and has not finished (label v0006, snapshot adult-2026-06.csv" in out
    assert main(["history", DATASET, "--releases", str(series), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["in_flight"]["label"] == "v0006"
    page = write_index(series, DATASET).read_text(encoding="utf-8")
    assert "has not finished" in page and "v0005" in page
    (folder / "attempt.json").write_text("{half")
    assert main(["history", DATASET, "--releases", str(series)]) == 0
    assert "attempt.json is unreadable" in capsys.readouterr().out
