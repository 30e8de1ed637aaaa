"""Resource limits (issue 17, docs/limits.md): a table over its decompressed size, its longest line or the
memory of its cells, a schema with too many levels or bins, a config file that is too large, missing, a
directory or not UTF-8 -- each is refused through the CLI with exit 2 and one line naming the file, the
limit and where it was passed: no traceback, no file content, no output, nothing charged. A gzip bomb is
refused with little memory."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_inputs import POLICY, SCHEMA

from dpsynth import _limits
from dpsynth.exceptions import ParameterError, SchemaError

SECRET = "Alice Smith: SSN 123-45-6789"
SECRETS = ("Alice", "123-45-6789")
LIMIT_ENV = (_limits.INPUT_ENV, _limits.LINE_ENV, _limits.CONFIG_ENV)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LIMIT_ENV}
    env.update(extra or {})
    return env


def run(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, cwd=root,
                          timeout=300, env=_env(env))


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "ledger.db" not in p.name}


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"sqlite:///{root / 'ledger.db'}"

    def ledger_state(self) -> str:
        proc = run(self.root, "ledger", "show", "--ledger", self.url, "--json")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def fit(self, **over: str) -> list[str]:
        args = {"--data": "data.csv", "--schema": "schema.yaml", "--synthesizer": "mst", "--epsilon": "1",
                "--delta": "1e-6", "--rows": "50", "--out": "synthetic.csv", "--ledger": self.url, "--dataset": "crm"}
        args.update(over)
        return ["fit", *[x for kv in args.items() for x in kv]]

    def release(self, **over: str) -> list[str]:
        args = {"--data": "data.csv", "--schema": "schema.yaml", "--synthesizer": "mst", "--epsilon": "1",
                "--delta": "1e-6", "--rows": "50", "--out": "rel", "--ledger": self.url, "--dataset": "crm",
                "--policy": "policy.yaml", "--insecure-seed": "1"}
        args.update(over)
        return ["release", *[x for kv in args.items() for x in kv]]

    def infer(self, **over: str) -> list[str]:
        args = {"--data": "data.csv", "--out": "inferred.yaml", "--epsilon": "1", "--delta": "1e-6",
                "--ledger": self.url, "--dataset": "crm"}
        args.update(over)
        return ["schema", "infer", *[x for kv in args.items() for x in kv]]

    def audit(self, suite: str) -> list[str]:
        return ["audit", "--synthesizer", "mst", "--epsilon", "1", "--delta", "1e-6", "--suite", suite]

    def refused(self, argv: list[str], *, env: dict[str, str] | None = None, names: tuple[str, ...] = (),
                charged: bool = True) -> str:
        """Run ``argv``: exit 2, one line on stderr naming ``names``, no content, no output, nothing charged."""
        before = files(self.root)
        state = self.ledger_state() if charged else None
        proc = run(self.root, *argv, env=env)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.endswith("\n"), proc.stderr
        assert "Traceback" not in proc.stderr and " error: " in proc.stderr, proc.stderr
        for secret in SECRETS:
            assert secret not in proc.stderr and secret not in proc.stdout, proc.stderr
        assert files(self.root) == before  # no output, no temporary file
        if charged:
            assert self.ledger_state() == state  # nothing charged
        for name in names:
            assert name in proc.stderr, proc.stderr
        return proc.stderr


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("limits")
    table = pd.DataFrame({"region": ["north", "south", "east"] * 40, "plan": ["basic", "plus"] * 60,
                          "age": [str(i % 90) for i in range(120)]})
    table.to_csv(root / "data.csv", index=False)
    (root / "schema.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    (root / "policy.yaml").write_text(yaml.safe_dump(POLICY), encoding="utf-8")
    e = Env(root)
    proc = run(root, "ledger", "create", "--ledger", e.url, "--dataset", "crm", "--epsilon", "10", "--delta", "1e-6")
    assert proc.returncode == 0, proc.stderr
    return e


def gzip_bomb(path: Path, *, gib: int = 1, prefix: bytes = b"") -> Path:
    """A ~1 MB gzip file that expands to ``gib`` GiB of one line without a line break (made in
    milliseconds: one compressed 16 MiB member, repeated; gzip readers join the members)."""
    member = gzip.compress(b"a" * (16 << 20), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(b"region,plan,age\n" + prefix))
        for _ in range(64 * gib):
            f.write(member)
    return path


# -- 1. tables -------------------------------------------------------------------------------------

def _refused_fit(env: Env, data: str) -> tuple[str, int]:
    """Run a fit on ``data`` that must be refused: its stderr and the child's own peak memory (bytes)."""
    with open(env.root / "child.err", "w+", encoding="utf-8") as err:
        child = subprocess.Popen([sys.executable, "-m", "dpsynth", *env.fit(**{"--data": data})],
                                 cwd=env.root, env=_env(None), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    (env.root / "child.err").unlink()
    assert child.returncode == 2, stderr
    return stderr, usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # KiB on Linux


def test_a_gzip_bomb_is_refused_with_little_memory(env):
    """The brief's case: ~1 MB that expands to 1 GiB without a line break took 3.5 GB; now the read
    stops at the line limit (1 MiB) and the command's peak memory stays within 256 MiB of the same
    command refusing a plain 2 MiB line. The bound is on the difference: a child's peak (ru_maxrss)
    counts the pages it shared with this test process between fork and exec, about 1 GB late in a
    full run (CI measured 1.09 GB for the refused bomb), while a reader holding the bomb would
    exceed the plain refusal by about 1 GiB."""
    bomb = gzip_bomb(env.root / "bomb.csv.gz", prefix=SECRET.encode())
    assert bomb.stat().st_size < 2 << 20
    plain = env.root / "long-line.csv"
    plain.write_bytes(b"region,plan,age\n" + SECRET.encode() + b"a" * (2 << 20))
    state, before = env.ledger_state(), files(env.root)
    stderr, bomb_rss = _refused_fit(env, "bomb.csv.gz")
    _, plain_rss = _refused_fit(env, "long-line.csv")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr and "Alice" not in stderr, stderr
    assert "'bomb.csv.gz'" in stderr and "line longer than the limit of 1,048,576 bytes" in stderr, stderr
    assert "line 2, from byte offset 16" in stderr, stderr
    peaks = f"peak memory: bomb {bomb_rss:,} bytes, plain long line {plain_rss:,}"
    assert bomb_rss < plain_rss + (256 << 20), peaks
    assert files(env.root) == before
    assert env.ledger_state() == state
    bomb.unlink()
    plain.unlink()


@pytest.mark.parametrize("command", ["schema infer", "release", "eval"])
def test_a_line_without_end_is_refused_by_every_reader(env, command):
    (env.root / "long.csv.gz").write_bytes(gzip.compress(b"region,plan,age\nnorth,basic,3\n" + SECRET.encode()
                                                         + b"x" * 5000))
    limit = {_limits.LINE_ENV: "4K"}
    if command == "schema infer":
        argv, charged = env.infer(**{"--data": "long.csv.gz"}), True
    elif command == "release":
        argv, charged = env.release(**{"--data": "long.csv.gz"}), True
    else:
        argv, charged = ["eval", "--real", "data.csv", "--synthetic", "long.csv.gz", "--schema", "schema.yaml"], False
    err = env.refused(argv, env=limit, charged=charged, names=("'long.csv.gz'", "4,096 bytes", "line 3",
                                                                "byte offset 30", _limits.LINE_ENV))
    assert "decompressed" in err


def test_the_decompressed_size_is_bounded_while_reading(env):
    rows = b"".join(f"{'north' * 20},{'basic' * 20},{i % 90}\n".encode() for i in range(20_000))  # ~4 MB
    (env.root / "big.csv.gz").write_bytes(gzip.compress(b"region,plan,age\n" + rows))
    err = env.refused(env.fit(**{"--data": "big.csv.gz"}), env={_limits.INPUT_ENV: "1M"},
                      names=("'big.csv.gz'", "decompresses to more than the limit of 1,048,576 bytes",
                             "compressed byte offset", _limits.INPUT_ENV))
    assert "docs/limits.md" in err


def test_a_plain_csv_over_the_limit_is_refused_before_reading(env):
    (env.root / "plain.csv").write_text("region,plan,age\n" + "north,basic,3\n" * 100_000, encoding="utf-8")
    env.refused(env.fit(**{"--data": "plain.csv"}), env={_limits.INPUT_ENV: "100000"},
                names=("'plain.csv'", "is 1,400,016 bytes, more than the limit of 100,000 bytes"))


def test_many_small_cells_are_bounded_by_their_memory(env):
    """A bomb of short lines: its text is small, but every cell costs pandas a pointer and dpsynth a code."""
    (env.root / "cells.csv.gz").write_bytes(gzip.compress(b"region,plan,age\n" + b",,\n" * 1_000_000))
    env.refused(env.fit(**{"--data": "cells.csv.gz"}), env={_limits.INPUT_ENV: "8M"},
                names=("'cells.csv.gz'", "too many cells for the limit of 8,388,608 bytes", "16 bytes each"))


def test_a_parquet_table_with_too_many_cells_is_refused_from_its_footer(env):
    n = 200_000
    pd.DataFrame({"region": ["north"] * n, "plan": ["basic"] * n, "age": np.arange(n) % 90}).to_parquet(
        env.root / "cells.parquet")
    assert (env.root / "cells.parquet").stat().st_size < 1 << 20
    env.refused(env.fit(**{"--data": "cells.parquet"}), env={_limits.INPUT_ENV: "1M"},
                names=("'cells.parquet'", "200,000 rows of 3 columns", "limit of 1,048,576 bytes"))


def test_a_parquet_dictionary_bomb_is_refused_before_it_is_expanded(env):
    """One long value and a dictionary index per row: a few KB of Parquet, 2 GB of text once decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, value = 20_000, SECRET + "x" * 100_000
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))
    pq.write_table(pa.table({"region": column, "plan": pa.array(["basic"] * n), "age": pa.array([3] * n)}),
                   env.root / "bomb.parquet", compression="zstd")
    assert (env.root / "bomb.parquet").stat().st_size < 100_000
    env.refused(env.fit(**{"--data": "bomb.parquet"}), env={_limits.INPUT_ENV: "100M"},
                names=("'bomb.parquet'", "decodes to more than the limit of 104,857,600 bytes", "column 'region'"))


@pytest.mark.parametrize("case", ["not-utf8", "truncated-gzip", "not-gzip", "directory"])
def test_an_unreadable_table_is_one_line(env, case):
    if case == "not-utf8":
        name = "latin1.csv"
        (env.root / name).write_bytes(b"region,plan,age\n" + "Zoë".encode("latin-1") + SECRET.encode() + b",a,1\n")
        want = "cannot be read as csv: it is not UTF-8 text"
    elif case == "truncated-gzip":
        name = "cut.csv.gz"
        (env.root / name).write_bytes(gzip.compress(b"region,plan,age\n" + b"north,basic,3\n" * 5000)[:-200])
        want = "it is not a complete gzip file"
    elif case == "not-gzip":
        name = "plain.csv.gz"
        (env.root / name).write_text(f"region,plan,age\n{SECRET},a,1\n", encoding="utf-8")
        want = "it is not a complete gzip file"
    else:
        name = "folder.csv"
        (env.root / name).mkdir()
        want = "is not a file"
    env.refused(env.fit(**{"--data": name}), names=(f"'{name}'", want))


def test_a_bad_limit_in_the_environment_is_one_line(env):
    env.refused(env.fit(), env={_limits.INPUT_ENV: "lots"}, names=(_limits.INPUT_ENV, "must be a number of bytes"))


def test_limits_from_the_environment_take_binary_suffixes(monkeypatch):
    for text, value in (("512", 512), ("4K", 4096), ("64g", 64 << 30), ("1GiB", 1 << 30), ("2 MB", 2 << 20)):
        monkeypatch.setenv(_limits.LINE_ENV, text)
        assert _limits.max_line_bytes() == value
    monkeypatch.setenv(_limits.LINE_ENV, "0")
    with pytest.raises(ParameterError):
        _limits.max_line_bytes()
    monkeypatch.delenv(_limits.LINE_ENV)
    assert _limits.max_line_bytes() == _limits.MAX_LINE_BYTES
    monkeypatch.delenv(_limits.INPUT_ENV, raising=False)
    assert _limits.max_input_bytes() >= _limits.MIN_INPUT_BYTES


def test_tables_under_the_limits_read_as_before(tmp_path, monkeypatch):
    """CRLF and CR line ends, a gzip of several members, a line exactly at the limit."""
    from dpsynth.io import read_table

    for k in LIMIT_ENV:
        monkeypatch.delenv(k, raising=False)
    (tmp_path / "crlf.csv").write_bytes(b"a,b\r\n1,x\r\n2,y\r\n")
    (tmp_path / "cr.csv").write_bytes(b"a,b\r1,x\r2,y\r")
    (tmp_path / "multi.csv.gz").write_bytes(gzip.compress(b"a,b\n1,x\n") + gzip.compress(b"2,y\n"))
    for name in ("crlf.csv", "cr.csv", "multi.csv.gz"):
        assert read_table(tmp_path / name).to_dict("list") == {"a": ["1", "2"], "b": ["x", "y"]}, name
    monkeypatch.setenv(_limits.LINE_ENV, "10")
    (tmp_path / "edge.csv").write_bytes(b"a,b\n" + b"1," + b"x" * 8 + b"\n")  # a line of exactly 10 bytes
    assert read_table(tmp_path / "edge.csv")["b"].tolist() == ["x" * 8]
    (tmp_path / "over.csv").write_bytes(b"a,b\n" + b"1," + b"x" * 9 + b"\n")
    with pytest.raises(ParameterError, match="line 2, from byte offset 4"):
        read_table(tmp_path / "over.csv")


# -- 2. schema sizes ------------------------------------------------------------------------------

def _numeric(**column: object) -> dict:
    return {"version": 1, "columns": [*SCHEMA["columns"][:2], {"name": "age", **column}]}


@pytest.mark.parametrize("case", ["bins", "integer-bins", "huge-bins", "dp-quantiles", "edges", "levels",
                                  "domain-levels", "domain-total"])
def test_a_schema_over_its_size_limits_is_refused_at_load(env, case):
    """Refused when the schema is read: no MemoryError later, no allocation of the levels or bins."""
    name, what = "big-schema.json", "'age'"
    if case == "bins":
        spec, limit = _numeric(kind="continuous", bounds=[0, 100], bins=1_000_000_000), "1,000,000 (docs/limits.md)"
    elif case == "integer-bins":
        spec, limit = _numeric(kind="integer", bounds=[0, 10**12], bins=10**9), "1,000,000"
    elif case == "huge-bins":
        spec, limit = _numeric(kind="continuous", bounds=[0, 1], bins=10**30), "1,000,000"
    elif case == "dp-quantiles":
        spec, limit = _numeric(kind="integer", bounds=[0, 100], bins={"dp_quantiles": 10**9}), "1,024"
    elif case == "edges":
        spec, limit = _numeric(kind="continuous", edges=list(range(1_000_002))), "1,000,000"
    elif case == "levels":
        spec = {"version": 1, "columns": [*SCHEMA["columns"][1:], {"name": "region", "kind": "categorical",
                                                                   "levels": [f"r{i}" for i in range(1_000_000)],
                                                                   "other": "elsewhere"}]}
        what, limit = "'region'", "1,000,001 levels, more than the limit of 1,000,000"
    elif case == "domain-levels":
        spec, what, limit = {"region": 3, "plan": 2, "age": 10**9}, "'age'", "1,000,000,000 levels"
    else:
        spec = {f"c{i}": 1_000_000 for i in range(11)}
        what, limit = "together", "11,000,000 values (levels and bins) together, more than the limit of 10,000,000"
    (env.root / name).write_text(json.dumps(spec), encoding="utf-8")
    env.refused(env.fit(**{"--schema": name}), names=(f"'{name}'", what, limit))
    (env.root / name).unlink()


def test_hints_over_the_size_limits_are_refused_before_any_charge(env):
    hints = {"version": 1, "columns": [{"name": "age", "kind": "integer", "bins": 10**9}]}
    (env.root / "hints.yaml").write_text(yaml.safe_dump(hints), encoding="utf-8")
    env.refused(env.infer(**{"--hints": "hints.yaml"}), names=("'hints.yaml'", "'age'", "1,000,000"))


def test_the_limits_keep_realistic_tables_and_schemas(monkeypatch):
    for k in LIMIT_ENV:
        monkeypatch.delenv(k, raising=False)
    from dpsynth.datasets import adult_path, adult_schema_path
    from dpsynth.io import read_table
    from dpsynth.schema import Schema, load_schema

    adult = load_schema(adult_schema_path())
    assert max(adult.sizes) < _limits.MAX_LEVELS and sum(adult.sizes) < _limits.MAX_SCHEMA_VALUES
    expected = pd.read_csv(adult_path(), dtype=str, keep_default_na=False, skipinitialspace=True)
    pd.testing.assert_frame_equal(read_table(adult_path()), expected)  # read through the limits, unchanged
    at_limit = Schema.from_dict({"version": 1, "columns": [
        {"name": "zip", "kind": "categorical", "levels": list(range(_limits.MAX_LEVELS - 1)), "other": "other"},
        {"name": "spend", "kind": "continuous", "bounds": [0, 1], "bins": _limits.MAX_BINS},
        {"name": "q", "kind": "integer", "bounds": [0, 10**6], "bins": {"dp_quantiles": _limits.MAX_DP_QUANTILE_BINS}},
    ]})
    assert at_limit.sizes == [_limits.MAX_LEVELS, _limits.MAX_BINS, _limits.MAX_DP_QUANTILE_BINS]
    with pytest.raises(SchemaError, match="'zip'"):
        Schema.from_dict({"version": 1, "columns": [
            {"name": "zip", "kind": "categorical", "levels": list(range(_limits.MAX_LEVELS)), "other": "other"}]})


def test_the_quantile_limit_is_the_candidate_grid():
    from dpsynth.schema import dp_bins

    assert _limits.MAX_DP_QUANTILE_BINS == dp_bins.GRID_POINTS


def test_marginals_of_wide_columns_are_counted_sparsely():
    """eval and the release's fidelity check: two columns of 100,000 levels (10^10 cells together) give
    the same statistics as small dense ones would, without a dense 2- or 3-way table."""
    from dpsynth.marginals import marginal_counts, numpy_backend, paired_counts
    from dpsynth.quality.distances import _cramers_v, _cramers_v_sparse
    from dpsynth.quality.fidelity import workload_errors

    rng = np.random.default_rng(0)
    real = rng.integers(0, 40, size=(3000, 3))
    synthetic = rng.integers(0, 40, size=(2000, 3))
    dense = [marginal_counts(real, [0, 1, 2], [40, 40, 40]), marginal_counts(synthetic, [0, 1, 2], [40, 40, 40])]
    sparse = paired_counts(real, synthetic, [0, 1, 2], [numpy_backend.DENSE_CELLS, 40, 40])
    assert len(sparse[0]) <= len(real) + len(synthetic)
    for d, s in zip(dense, sparse, strict=True):
        assert sorted(d[d > 0].tolist()) == sorted(s[s > 0].tolist())
    assert abs(_cramers_v(real[:, 0], real[:, 1], 40, 40) - _cramers_v_sparse(real[:, 0], real[:, 1])) < 1e-12
    wide = rng.integers(0, 100_000, size=(5000, 3))
    errors, _ = workload_errors(wide, wide[::-1], [100_000, 100_000, 100_000], 3)
    assert errors.tolist() == [0.0]
    assert _cramers_v(wide[:, 0], wide[:, 1], 100_000, 100_000) > 0.9  # almost every row its own cell


# -- 3. config files --------------------------------------------------------------------------------

KINDS = ["suite", "policy", "workload", "schema", "hints"]


def _config_argv(env: Env, kind: str, path: str) -> tuple[list[str], bool]:
    if kind == "suite":
        return env.audit(path), False
    if kind == "policy":
        return env.release(**{"--policy": path}), True
    if kind == "workload":
        return env.fit(**{"--synthesizer": "aim", "--workload": path}), True
    if kind == "schema":
        return env.fit(**{"--schema": path}), True
    return env.infer(**{"--hints": path}), True


@pytest.mark.parametrize(("kind", "problem"), [
    *[(kind, problem) for problem in ("missing", "directory", "too-large") for kind in KINDS],
    ("hints", "not-utf8"),  # the other kinds: tests/integration/test_bad_input_hygiene.py
])
def test_a_config_file_that_cannot_be_read_is_one_line(env, kind, problem):
    name = f"{kind}-{problem}.yaml"
    path = env.root / name
    extra = None
    if problem == "directory":
        path.mkdir()
    elif problem == "too-large":
        path.write_text(f"# {SECRET}\n" + "x: 1\n" * 300, encoding="utf-8")
        extra = {_limits.CONFIG_ENV: "1K"}
    elif problem == "not-utf8":
        path.write_bytes(b"version: 1\n# \xff\xfe " + SECRET.encode() + b"\n")
    argv, charged = _config_argv(env, kind, name)
    err = env.refused(argv, env=extra, charged=charged, names=(f"'{name}'",))
    if problem == "too-large":
        assert "limit of 1,024 bytes" in err and _limits.CONFIG_ENV in err, err
    elif problem == "not-utf8":
        assert "not UTF-8" in err, err
    elif problem == "directory":  # policy and --workload look for a file first: "does not exist"
        assert ("does not exist" if kind in ("policy", "workload") else "is a directory") in err, err
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()


def test_an_endless_config_file_is_read_no_further_than_its_limit(env):
    """``--schema /dev/zero``: the read stops at the config limit instead of filling the memory."""
    env.refused(env.fit(**{"--schema": "/dev/zero"}), names=("'/dev/zero'", "limit of 33,554,432 bytes"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_files_are_one_line(env):
    locked = {"locked.yaml": yaml.safe_dump(SCHEMA), "locked.csv": "region,plan,age\nnorth,basic,3\n"}
    for name, text in locked.items():
        (env.root / name).write_text(text, encoding="utf-8")
        (env.root / name).chmod(0)
    try:
        for kind in KINDS:
            argv, charged = _config_argv(env, kind, "locked.yaml")
            env.refused(argv, charged=charged, names=("'locked.yaml'", "permission denied"))
        env.refused(env.fit(**{"--data": "locked.csv"}), names=("'locked.csv'", "permission denied"))
    finally:
        for name in locked:
            (env.root / name).chmod(0o600)


def test_zlib_errors_are_caught(tmp_path):
    """A gzip whose deflate stream is corrupt (not only cut short) is a DataError, not a zlib.error."""
    from dpsynth.exceptions import DataError
    from dpsynth.io import read_table

    good = bytearray(gzip.compress(b"a,b\n" + b"1,x\n" * 10_000, compresslevel=1))
    good[30:60] = bytes(30)
    (tmp_path / "bad.csv.gz").write_bytes(bytes(good))
    with pytest.raises(DataError, match="gzip"):
        read_table(tmp_path / "bad.csv.gz")


def test_permission_denied_is_one_line_even_as_root(env, monkeypatch, capsys):
    """Root reads any file, so the test above is skipped there: here the denial is simulated where dpsynth
    opens its inputs, and the command runs in this process."""
    import builtins

    import dpsynth.io.config
    import dpsynth.io.limited_read
    from dpsynth.cli import main

    def denied(file, *args, **kwargs):
        if Path(str(file)).name.startswith("locked"):
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    (env.root / "locked.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    (env.root / "locked.csv").write_text(f"region,plan,age\n{SECRET},basic,3\n", encoding="utf-8")
    for module in (dpsynth.io.config, dpsynth.io.limited_read):  # where dpsynth opens configs and tables
        monkeypatch.setattr(module, "open", denied, raising=False)
    monkeypatch.chdir(env.root)
    for argv, name in ((env.fit(**{"--schema": "locked.yaml"}), "locked.yaml"),
                       (env.fit(**{"--data": "locked.csv"}), "locked.csv"),
                       (env.infer(**{"--hints": "locked.yaml"}), "locked.yaml")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"'{name}'" in err and "permission denied" in err, err
        assert "Alice" not in err
