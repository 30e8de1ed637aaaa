"""Bad input (issue 17): exit 2 with one line, no file content on the screen, nothing charged, nothing
written. Files a user gives by mistake (a private CSV as a suite, policy, schema or workload) must never
have a row quoted back; duplicate CSV columns, an ``--out`` that would overwrite, a symlinked release
folder are refused before the reservation; bidi controls in names are shown, not obeyed, in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_inputs import POLICY, SCHEMA

from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Alice Smith: SSN 123-45-6789"
#: a private table whose second line is malformed YAML (PyYAML quotes that line in its message)
PRIVATE_CSV = f"name,note\n{SECRET},x\nBob Jones,y\n"
NOT_UTF8 = b"name,note\n\xff\xfe" + SECRET.encode() + b",x\n"



def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.name != "ledger.db" and "ledger.db" not in p.name}


@pytest.fixture
def env(tmp_path: Path):
    table = pd.DataFrame({"region": ["north", "south", "east"] * 40, "plan": ["basic", "plus"] * 60,
                          "age": list(range(0, 120))})
    table["age"] = table["age"] % 90
    table.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY), encoding="utf-8")
    (tmp_path / "private.csv").write_text(PRIVATE_CSV, encoding="utf-8")
    (tmp_path / "private.yaml").write_text(PRIVATE_CSV, encoding="utf-8")
    (tmp_path / "binary.yaml").write_bytes(NOT_UTF8)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("crm", ApproxDP(4.0, 1e-5))
    return tmp_path, url


def ledger_state(root: Path, url: str) -> str:
    proc = run("ledger", "show", "--ledger", url, "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fit(root: Path, url: str, **over: str) -> list[str]:
    args = {"--data": "data.csv", "--schema": "schema.yaml", "--synthesizer": "mst", "--epsilon": "1",
            "--delta": "1e-6", "--rows": "50", "--out": "synthetic.csv", "--ledger": url, "--dataset": "crm"}
    args.update(over)
    return ["fit", *[x for kv in args.items() for x in kv]]


def release(root: Path, url: str, **over: str) -> list[str]:
    args = {"--data": "data.csv", "--schema": "schema.yaml", "--synthesizer": "mst", "--epsilon": "1",
            "--delta": "1e-6", "--rows": "50", "--out": "rel", "--ledger": url, "--dataset": "crm",
            "--policy": "policy.yaml", "--insecure-seed": "1"}
    args.update(over)
    return ["release", *[x for kv in args.items() for x in kv]]


def assert_refused(root: Path, url: str, argv: list[str], *, names: str | None = None) -> str:
    before, state = files(root), ledger_state(root, url)
    proc = run(*argv, cwd=root)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    for secret in ("Alice", "123-45-6789", "Bob Jones"):
        assert secret not in proc.stderr and secret not in proc.stdout, proc.stderr
    assert files(root) == before  # no output, no temporary file
    assert ledger_state(root, url) == state  # nothing charged
    if names is not None:
        assert names in proc.stderr, proc.stderr
    return proc.stderr


# -- 1. no error message quotes file content -------------------------------------------------------

def _policy_with_suite(root: Path, suite: str) -> str:
    spec = {**POLICY, "audit": {"method": "multi_fit", "fits_per_world": 3, "canaries": 1, "outliers": 1,
                                "reference_rows": None, "suite": suite}}
    (root / "suite-policy.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return "suite-policy.yaml"


@pytest.mark.parametrize("case", [
    "audit-suite-csv", "audit-suite-binary", "fit-workload", "fit-workload-binary", "fit-schema", "fit-schema-binary",
    "release-policy", "release-policy-binary", "release-schema", "policy-suite-csv", "policy-suite-binary",
])
def test_no_message_quotes_file_content(env, case):
    root, url = env
    if case.startswith("audit-suite"):
        suite = "private.csv" if case == "audit-suite-csv" else "binary.yaml"
        argv = ["audit", "--synthesizer", "mst", "--epsilon", "1", "--delta", "1e-6", "--suite", suite]
    elif case.startswith("fit-workload"):
        argv = fit(root, url, **{"--synthesizer": "aim",
                                 "--workload": "private.yaml" if case == "fit-workload" else "binary.yaml"})
    elif case.startswith("fit-schema"):
        argv = fit(root, url, **{"--schema": "private.yaml" if case == "fit-schema" else "binary.yaml"})
    elif case.startswith("release-policy"):
        argv = release(root, url, **{"--policy": "private.yaml" if case == "release-policy" else "binary.yaml"})
    elif case == "release-schema":
        argv = release(root, url, **{"--schema": "private.yaml"})
    else:
        suite = "private.csv" if case == "policy-suite-csv" else "binary.yaml"
        argv = release(root, url, **{"--policy": _policy_with_suite(root, suite)})
    err = assert_refused(root, url, argv)
    if "binary" not in case:
        assert "line 2, column 12" in err, err  # where, without what
    else:
        assert "UTF-8" in err, err


def test_a_table_that_parses_as_a_mapping_is_not_quoted_back(env):
    root, url = env
    (root / "mapping.yaml").write_text(f"{SECRET}\n", encoding="utf-8")  # valid YAML: {"Alice Smith": "SSN …"}
    assert_refused(root, url, release(root, url, **{"--policy": "mapping.yaml"}))
    assert_refused(root, url, fit(root, url, **{"--schema": "mapping.yaml"}))
    assert_refused(root, url, ["audit", "--synthesizer", "mst", "--epsilon", "1", "--delta", "1e-6",
                               "--suite", "mapping.yaml"])


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_one_line(env):
    root, url = env
    locked = root / "locked.yaml"
    locked.write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    locked.chmod(0)
    try:
        assert_refused(root, url, fit(root, url, **{"--schema": "locked.yaml"}), names="locked.yaml")
        assert_refused(root, url, release(root, url, **{"--policy": "locked.yaml"}), names="locked.yaml")
    finally:
        locked.chmod(0o600)


# -- 2. duplicate column names ---------------------------------------------------------------------

@pytest.mark.parametrize("command", ["fit", "schema infer", "release"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_duplicate_columns_are_refused_before_any_charge(env, command, fmt):
    root, url = env
    if fmt == "csv":
        data = "dup.csv"
        (root / data).write_text("region,plan,age,age\nnorth,basic,3,4\nsouth,plus,5,6\n", encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = "dup.parquet"
        pq.write_table(pa.table([["north", "south"], ["basic", "plus"], [3, 5], [4, 6]],
                                names=["region", "plan", "age", "age"]), root / data)
    if command == "fit":
        argv = fit(root, url, **{"--data": data})
    elif command == "release":
        argv = release(root, url, **{"--data": data})
    else:
        argv = ["schema", "infer", "--data", data, "--out", "inferred.yaml", "--epsilon", "1", "--delta", "1e-6",
                "--ledger", url, "--dataset", "crm"]
    err = assert_refused(root, url, argv, names="'age'")
    assert "age.1" not in err


# -- 3. fit --out never overwrites silently ------------------------------------------------------

def test_fit_refuses_its_input_as_output_even_with_overwrite(env):
    root, url = env
    original = (root / "data.csv").read_bytes()
    for extra in ([], ["--overwrite"]):
        assert_refused(root, url, fit(root, url, **{"--out": "data.csv"}) + extra, names="--data")
        assert_refused(root, url, fit(root, url, **{"--out": str(root / "." / "data.csv")}) + extra)
    (root / "alias.csv").symlink_to(root / "data.csv")
    assert_refused(root, url, fit(root, url, **{"--out": "alias.csv"}) + ["--overwrite"])
    assert (root / "data.csv").read_bytes() == original


def test_fit_refuses_an_existing_out_unless_overwrite(env):
    root, url = env
    (root / "synthetic.csv").write_text("keep me\n", encoding="utf-8")
    assert_refused(root, url, fit(root, url), names="--overwrite")
    assert (root / "synthetic.csv").read_text(encoding="utf-8") == "keep me\n"
    proc = run(*fit(root, url), "--overwrite", "--insecure-seed", "1", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(root / "synthetic.csv")) == 50


# -- 4. release --out that is a symbolic link ----------------------------------------------------

@pytest.mark.parametrize("target", ["empty-folder", "dangling"])
def test_release_out_symlink_is_refused_before_any_charge(env, target):
    root, url = env
    if target == "empty-folder":
        (root / "empty").mkdir()
    (root / "link").symlink_to(root / ("empty" if target == "empty-folder" else "nowhere"))
    assert_refused(root, url, release(root, url, **{"--out": "link"}), names="symbolic link")


# -- 5. bidi controls in the HTML report -----------------------------------------------------------

def test_bidi_controls_in_names_are_rendered_visibly():
    sys.path.insert(0, str(ROOT / "tests" / "release"))
    try:
        from report_example import example_report
    finally:
        sys.path.remove(str(ROOT / "tests" / "release"))
    from dpsynth.release.html import render_html

    report = example_report("released")
    report["release"]["dataset"] = "crm\u202etxt.exe"
    marginal = report["evidence"]["fidelity"]["marginals"][0]
    marginal["column"] = "age\u2066x\u2069\u200f"
    page = render_html(report)
    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c":
        assert ch not in page
    assert "crm&lt;U+202E&gt;txt.exe" in page
    assert "age&lt;U+2066&gt;x&lt;U+2069&gt;&lt;U+200F&gt;" in page
    json.dumps(report)  # the report itself keeps the names as they are
