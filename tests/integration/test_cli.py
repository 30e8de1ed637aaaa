"""The `dpsynth` command end to end: success paths, and bad input → exit 2, one line, no file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dpsynth.datasets import adult_path, adult_schema_path

DOMAIN = {"a": 3, "b": 4, "c": 2}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture
def coded(tmp_path: Path) -> tuple[Path, Path]:
    data = pd.DataFrame({"a": [0, 1, 2, 1] * 50, "b": [0, 1, 2, 3] * 50, "c": [0, 1, 1, 0] * 50})
    data_path = tmp_path / "data.csv"
    data.to_csv(data_path, index=False)
    domain_path = tmp_path / "domain.json"
    domain_path.write_text(json.dumps(DOMAIN))
    return data_path, domain_path


def fit_args(data: Path, schema: Path, out: Path, **over: str) -> list[str]:
    args = {"--data": str(data), "--schema": str(schema), "--synthesizer": "mst", "--epsilon": "1",
            "--delta": "1e-6", "--rows": "100", "--out": str(out)}
    args.update(over)
    flat = [x for kv in args.items() for x in kv if x is not None]
    return ["fit", *flat, "--no-ledger"]


def test_fit_json_and_eval_on_domain_file(tmp_path, coded):
    data, domain = coded
    out = tmp_path / "synthetic.csv"
    proc = run(*fit_args(data, domain, out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"synthesizer", "epsilon", "delta", "rho", "rows", "out", "seconds"} <= set(result)
    assert result["synthesizer"] == "mst" and result["rows"] == 100 and result["secure_noise"] is True
    assert result["noise_source"].startswith("OpenDP's exact samplers")
    assert result["rho"] == pytest.approx(0.024356, abs=1e-6)  # largest ρ with (1, 1e-6) by CKS20
    synthetic = pd.read_csv(out)
    assert list(synthetic.columns) == list(DOMAIN) and len(synthetic) == 100
    assert all(synthetic[c].between(0, k - 1).all() for c, k in DOMAIN.items())

    proc = run("eval", "--real", str(data), "--synthetic", str(out), "--schema", str(domain), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"l1_1way", "l1_2way", "l1_3way", "tvd"} <= set(report)
    assert report["n_3way"] == 1 and set(report["tvd"]) == set(DOMAIN)


def test_eval_of_a_copy_is_zero_and_matches_the_definition(tmp_path, coded):
    data, domain = coded
    proc = run("eval", "--real", str(data), "--synthetic", str(data), "--schema", str(domain), "--json")
    report = json.loads(proc.stdout)
    assert report["l1_1way"] == report["l1_2way"] == report["l1_3way"] == 0.0
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [0] * 10, "b": [0] * 10, "c": [0] * 10}).to_csv(other, index=False)
    report = json.loads(run("eval", "--real", str(data), "--synthetic", str(other), "--schema", str(domain),
                            "--json").stdout)
    # real a = (0.25, 0.5, 0.25), synthetic all zero: L1 = 0.75 + 0.5 + 0.25 = 1.5
    assert report["tvd"]["a"] == pytest.approx(0.75)


def test_fit_parquet_output_on_raw_adult(tmp_path):
    out = tmp_path / "adult-synthetic.parquet"
    proc = run(*fit_args(adult_path(), adult_schema_path(), out, **{"--rows": "500"}))
    assert proc.returncode == 0, proc.stderr
    synthetic = pd.read_parquet(out)
    assert len(synthetic) == 500 and "income" in synthetic.columns
    assert set(synthetic["income"]) <= {"<=50K", ">50K"}
    assert synthetic["age"].between(17, 90).all()


BAD_INPUTS = [
    ("missing data file", {"--data": "nope.csv"}, "does not exist"),
    ("epsilon zero", {"--epsilon": "0"}, "epsilon (0.0) must be a finite number > 0"),
    ("epsilon nan", {"--epsilon": "nan"}, "epsilon (nan) must be a finite number > 0"),
    ("epsilon inf", {"--epsilon": "inf"}, "epsilon (inf) must be a finite number > 0"),
    ("epsilon text", {"--epsilon": "lots"}, "'lots' is not a number"),
    ("delta one", {"--delta": "1"}, "delta (1.0) must be in the open interval (0, 1)"),
    ("delta negative", {"--delta": "-1e-6"}, "delta (-1e-06) must be in the open interval (0, 1)"),
    ("rows zero", {"--rows": "0"}, "rows (0) must be an integer > 0"),
    ("rows negative", {"--rows": "-5"}, "rows (-5) must be an integer > 0"),
    ("unknown synthesizer", {"--synthesizer": "gan9000"}, "synthesizer ('gan9000') must be one of"),
    ("bad out suffix", {"--out": "synthetic.txt"}, "must end in .csv, .csv.gz or .parquet"),
    ("aim workload unknown column", {"--synthesizer": "aim", "--workload": "a,zz"},
     "workload[0] (['a', 'zz']) must name distinct columns of the schema; unknown: 'zz'"),
    ("aim marginal above model size", {"--synthesizer": "aim", "--workload": "a,b,c", "--param": "max_model_size=1e-6"},
     "workload marginal ['a', 'b', 'c'] (24 cells) is larger than max_model_size (1e-06 MB)"),
    ("preprocessing share above total", {"--synthesizer": "aim", "--param": "split_preprocess=1.5"},
     "split_preprocess (1.5) must be below 1"),
    ("unknown synthesizer parameter", {"--param": "max_rounds=3"}, "--param 'max_rounds' is not a parameter of mst"),
    ("malformed parameter", {"--param": "max_rounds"}, "--param ('max_rounds') must be NAME=VALUE"),
    ("mst takes no workload", {"--workload": "a,b"}, "--workload: mst takes no workload"),
]


@pytest.mark.parametrize("label,override,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_parameters(tmp_path, coded, label, override, message):
    data, domain = coded
    out = tmp_path / "synthetic.csv"
    override = {k: (str(tmp_path / v) if k in ("--data", "--out") else v) for k, v in override.items()}
    proc = run(*fit_args(data, domain, out, **override))
    assert_bad_input(proc, message)
    assert not list(tmp_path.glob("synthetic*")), "no output file on bad input"


def assert_bad_input(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


SCHEMA = """
version: 1
missing_values: ["?"]
columns:
  - {name: kind, kind: categorical, levels: [a, b]}
  - {name: n, kind: integer, bounds: [0, 10]}
"""


@pytest.mark.parametrize(
    "label,data_text,schema_text,message",
    [
        ("empty table", "kind,n\n", SCHEMA, "has no rows"),
        ("empty file", "", SCHEMA, "is empty"),
        ("schema column missing", "kind\na\nb\n", SCHEMA, "the data has no column(s) 'n'"),
        ("value outside levels", "kind,n\na,1\nSECRET-LEVEL,2\nSECRET-LEVEL,3\n", SCHEMA,
         "column 'kind': a value outside the 2 declared levels in 2 rows"),
        ("non-numeric text", "kind,n\na,1\nb,SECRET-TEXT\n", SCHEMA,
         "column 'n': text that is not a number in 1 row"),
        ("missing not nullable", "kind,n\na,?\nb,2\n", SCHEMA,
         "column 'n': a missing value in 1 row, but the column is not declared nullable"),
        ("malformed yaml", "kind,n\na,1\n", "columns: [\n  - {", "is not valid YAML"),
        ("unknown kind", "kind,n\na,1\n", "columns:\n  - {name: kind, kind: text}\n", "kind ('text') must be one of"),
        ("not a mapping", "kind,n\na,1\n", "- 1\n- 2\n", "must hold a mapping"),
    ],
)
def test_bad_data_and_schema(tmp_path, label, data_text, schema_text, message):
    data = write(tmp_path, "data.csv", data_text)
    schema = write(tmp_path, "schema.yaml", schema_text)
    out = tmp_path / "synthetic.csv"
    proc = run(*fit_args(data, schema, out))
    assert_bad_input(proc, message)
    assert "SECRET" not in proc.stderr, "error messages never echo private values"
    assert not out.exists()


def test_unreadable_data_file(tmp_path, coded):
    _, domain = coded
    (tmp_path / "folder.csv").mkdir()
    proc = run(*fit_args(tmp_path / "folder.csv", domain, tmp_path / "synthetic.csv"))
    assert_bad_input(proc, "is not a file")
    binary = tmp_path / "binary.parquet"
    binary.write_bytes(b"\x00\x01 not parquet at all")
    proc = run(*fit_args(binary, domain, tmp_path / "synthetic.csv"))
    assert_bad_input(proc, "cannot be read as parquet")


def test_missing_schema_file(tmp_path, coded):
    data, _ = coded
    proc = run(*fit_args(data, tmp_path / "absent.yaml", tmp_path / "synthetic.csv"))
    assert_bad_input(proc, "schema file")


def test_missing_required_argument_is_one_line(tmp_path):
    proc = run("fit", "--data", "x.csv")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_output_directory_must_exist(tmp_path, coded):
    data, domain = coded
    proc = run(*fit_args(data, domain, tmp_path / "no-such-dir" / "out.csv"))
    assert_bad_input(proc, "must be in an existing directory")
