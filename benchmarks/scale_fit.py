#!/usr/bin/env python3
r"""MST and AIM fitted from tables in DuckDB and Spark, 1M to 100M rows, against DuckDB's own passes (issue 19).

Every run is a child process (``--child KIND``), so its figures are its own: wall seconds, CPU
seconds (user + sys from ``wait4``, DuckDB's threads included), peak RSS (``ru_maxrss``) and, for
Spark, whose JVM is a second process, the peak of the process tree's summed RSS and its CPU,
sampled every 0.2 s. Math libraries are pinned to one thread (OMP/BLAS/XLA); DuckDB runs with
``--duckdb-threads`` threads (2: the machine's two cores) and Spark in ``local[2]``. The data are
``benchmarks/scale_data.py``'s Parquet files (``DATA_DIR/adult_<N>.parquet``), in the page cache
(the reference runs a plain scan first).

Kinds of run:

* ``sql``: the physical reference, DuckDB alone, no dpsynth: one scan reading every column, the
  validation pass (per column: missing, non-numeric and out-of-domain cells) and one
  ``GROUPING SETS`` pass of MST's 15 one-way and 105 two-way marginals on the columns binned as
  the schema bins them, fetched and densified;
* ``mst-duckdb`` / ``aim-duckdb``: ``MST``/``AIM(epsilon, delta, insecure_seed=rep).fit(source,
  schema=..., ledger=UNTRACKED)`` with ``source = DuckDBSource(connection.read_parquet(path))``;
* ``mst-spark``: the same through ``SparkSource(spark.read.parquet(path))``, ``local[2]``;
* ``mst-pandas``: the path every command took before issue 19 (the Parquet read into pandas,
  then the in-memory fit);
* ``mst-adult``: the in-memory MST on the bundled Adult table (numpy path), for the before/after
  comparison of the refactor: ``--trees`` runs it once per tree per repetition, alternating, each
  tree by ``PYTHONPATH``.

Noise is seeded (``insecure_seed`` = the repetition number; INSECURE, for benchmarking only), so
runs of two trees or engines do the same work. AIM can take long at 10M rows: ``--cpu-cap``.

    python benchmarks/scale_fit.py --data-dir scale-data --rows 1000000 10000000 100000000 \
        --kinds sql mst-duckdb --json scale.jsonl
    python benchmarks/scale_fit.py --data-dir scale-data --rows 10000000 --kinds aim-duckdb mst-spark --cpu-cap 900
    python benchmarks/scale_fit.py --kinds mst-adult --trees ../before . --reps 3
    python benchmarks/scale_fit.py --summarize scale.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "TF_NUM_INTRAOP_THREADS": "1", "JAX_PLATFORMS": "cpu",
}
KINDS = ("sql", "sql-tuples", "mst-duckdb", "aim-duckdb", "mst-spark", "mst-pandas", "mst-adult")


# -- the physical reference: DuckDB alone ----------------------------------------------------------
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_missing(col: Any, text: bool, missing: list[str]) -> str:
    q = _q(col.name)
    tokens = f" OR {q} IN ({', '.join(map(_lit, missing))})" if text and missing else ""
    return f"({q} IS NULL{tokens})"


def code_sql(col: Any, text: bool, missing: list[str]) -> str:
    """The schema's code of one column as a SQL expression (the binning of ``schema.encode``);
    ``text``: the column is VARCHAR in the file (else a number, compared without a cast)."""
    q = _q(col.name)
    fallback = str(col.missing_code) if col.nullable else "0"
    if col.kind == "categorical":
        other = str(col.other_code) if col.other_code is not None else "NULL"
        whens = " ".join(f"WHEN {_lit(str(v))} THEN {i}" for i, v in enumerate(col.levels))
        value = q if text else f"CAST({q} AS VARCHAR)"
        return (f"CASE WHEN {_is_missing(col, text, missing)} THEN {fallback} "
                f"ELSE CASE {value} {whens} ELSE {other} END END")
    lo, hi = col.bounds
    v = f"least(greatest({f'TRY_CAST({q} AS DOUBLE)' if text else q}, {lo!r}), {hi!r})"
    whens = " ".join(f"WHEN {v} < {e!r} THEN {i}" for i, e in enumerate(col.edges[1:-1]))
    return (f"CASE WHEN {_is_missing(col, text, missing)} THEN {fallback} "
            f"ELSE CASE {whens} ELSE {len(col.edges) - 2} END END")


def validation_sql(schema: Any, text: dict[str, bool], table: str) -> str:
    """Per column: missing cells where the column is not nullable, and non-numeric text or values
    outside the levels (the problems ``schema.encode`` reports), as one aggregate pass."""
    missing = list(schema.missing_values)
    parts = []
    for col in schema.columns:
        q, miss = _q(col.name), _is_missing(col, text[col.name], missing)
        if not col.nullable:
            parts.append(f"count(*) FILTER (WHERE {miss})")
        if col.kind == "categorical":
            levels = ", ".join(_lit(str(v)) for v in col.levels)
            value = q if text[col.name] else f"CAST({q} AS VARCHAR)"
            parts.append(f"count(*) FILTER (WHERE NOT {miss} AND {value} NOT IN ({levels}))")
        elif text[col.name]:
            parts.append(f"count(*) FILTER (WHERE NOT {miss} AND TRY_CAST({q} AS DOUBLE) IS NULL)")
    return f"SELECT count(*), {', '.join(parts)} FROM {table}"


def encoded_sql(schema: Any, text: dict[str, bool], table: str) -> str:
    """One row of codes ``c0 .. c{d-1}`` per row of ``table``."""
    missing = list(schema.missing_values)
    return "SELECT " + ", ".join(f"{code_sql(c, text[c.name], missing)} AS c{j}"
                                 for j, c in enumerate(schema.columns)) + f" FROM {table}"


def grouping_sql(d: int, cliques: list[tuple[int, ...]], source: str, weight: str | None = None) -> str:
    """Every clique's counts in one GROUPING SETS query over ``source`` (rows, or tuples with a ``weight``)."""
    cols = ", ".join(f"c{j}" for j in range(d))
    sets = ", ".join("(" + ", ".join(f"c{j}" for j in cl) + ")" for cl in cliques)
    count = f"sum({weight})" if weight else "count(*)"
    return f"SELECT grouping({cols}) AS g, {cols}, {count} AS n FROM {source} GROUP BY GROUPING SETS ({sets})"


def run_sql(path: str, threads: int, memory_limit: str | None, tuples: bool, check: bool = False) -> dict[str, Any]:
    """The reference passes, each timed (wall, CPU of this process). ``tuples``: count the encoded rows'
    distinct tuples into a temporary table first (one GROUP BY of every code), then the GROUPING SETS
    over that table (weighted); else the GROUPING SETS over the rows themselves."""
    import duckdb
    import numpy as np

    from dpsynth.datasets import adult_schema_path
    from dpsynth.schema import load_schema

    schema = load_schema(adult_schema_path())
    con = duckdb.connect(config={"threads": threads, "preserve_insertion_order": False,
                                 "temp_directory": str(Path(path).parent / ".duckdb_spill"),
                                 **({"memory_limit": memory_limit} if memory_limit else {})})
    table = f"read_parquet({_lit(path)})"
    d = len(schema.columns)
    cliques: list[tuple[int, ...]] = [(i,) for i in range(d)]
    cliques += itertools.combinations(range(d), 2)
    passes: dict[str, dict[str, float]] = {}
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {table})").fetchall())
    text = {c: types[c] == "VARCHAR" for c in schema.names}

    def timed(name: str, sql: str) -> Any:
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        out = con.execute(sql).fetchnumpy() if name == "marginals" else con.execute(sql).fetchall()
        con.execute("SELECT 1").fetchall()  # the statement's result released
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        passes[name] = {"wall_s": round(time.perf_counter() - t0, 3),
                        "cpu_s": round(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime, 3)}
        return out

    # every value read (a count alone would be answered from the Parquet footer's statistics)
    reads = ", ".join(f"sum(strlen({_q(c)}))" if text[c] else f"sum({_q(c)})" for c in schema.names)
    timed("scan", f"SELECT {reads} FROM {table}")
    bad = timed("validate", validation_sql(schema, text, table))
    encoded = f"({encoded_sql(schema, text, table)})"
    extra: dict[str, Any] = {}
    if tuples:
        cols = ", ".join(f"c{j}" for j in range(d))
        timed("tuples", f"CREATE TEMP TABLE codes AS SELECT {cols}, count(*) AS w FROM {encoded} GROUP BY ALL")
        extra["distinct_tuples"] = int(con.execute("SELECT count(*) FROM codes").fetchall()[0][0])
        got = timed("marginals", grouping_sql(d, cliques, "codes", "w"))
    else:
        got = timed("marginals", grouping_sql(d, cliques, encoded))
    # densify: every clique's histogram over the public domain (the engine drops empty cells)
    t0 = time.perf_counter()
    sizes = schema.sizes
    g = got["g"]
    dense = []
    for cl in cliques:
        mask = sum(1 << (d - 1 - j) for j in range(d) if j not in cl)
        sel = g == mask
        shape = tuple(sizes[j] for j in cl)
        idx = np.ravel_multi_index(tuple(np.asarray(got[f"c{j}"][sel], dtype=np.int64) for j in cl), shape)
        dense.append(np.bincount(idx, weights=got["n"][sel], minlength=int(np.prod(shape))).astype(np.int64))
    passes["densify"] = {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": 0.0}
    rows = int(bad[0][0])
    assert all(int(h.sum()) == rows for h in dense), "a marginal does not sum to the row count"
    if check:
        _check_against_encode(path, schema, cliques, dense)
    return {"passes": passes, "rows": rows, "bad_cells": int(sum(bad[0][1:])), "grouping_sets": len(cliques),
            "cells": int(sum(h.size for h in dense)), "aggregate_rows": int(len(g)), "duckdb": duckdb.__version__,
            **extra}


def _check_against_encode(path: str, schema: Any, cliques: list[tuple[int, ...]], dense: list[Any]) -> None:
    """The SQL's histograms equal ``schema.encode``'s on the same table (small tables only: pandas)."""
    import pandas as pd

    from dpsynth.marginals import marginal_counts
    from dpsynth.schema.encode import encode

    codes = encode(pd.read_parquet(path), schema)
    for cl, h in zip(cliques, dense, strict=True):
        if not (marginal_counts(codes, list(cl), schema.sizes) == h).all():
            raise AssertionError(f"the SQL marginal of columns {cl} differs from encode's")


# -- fits ------------------------------------------------------------------------------------------
def _duckdb_source(path: str, threads: int, memory_limit: str | None) -> Any:
    """``DuckDBSource`` of the path, as the CLI opens it (its own connection, ``threads`` and memory limit)."""
    from dpsynth.marginals.duckdb_backend import DuckDBSource

    spill = Path(path).parent / ".duckdb_spill"
    return DuckDBSource(path, threads=threads, temp_directory=spill,
                        **({"memory_limit": memory_limit} if memory_limit else {}))


class EngineClock:
    """Wall seconds a source spends in its engine calls (validation, materialisation, fetches),
    counted at the outermost call only (``validate`` fetches, and is counted once)."""

    NAMES = ("validate", "materialize", "_fetch", "fetch")

    def __init__(self, source: Any):
        self.seconds: dict[str, float] = {}
        self.depth = 0
        for name in self.NAMES:
            if hasattr(source, name):
                setattr(source, name, self._wrap(name, getattr(source, name)))

    def _wrap(self, name: str, method: Any) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    key = "fetch" if name == "_fetch" else name
                    self.seconds[key] = round(self.seconds.get(key, 0.0) + time.perf_counter() - t0, 3)
        return timed


def _spark_source(path: str, threads: int, spark_conf: list[str]) -> Any:
    from pyspark.sql import SparkSession

    from dpsynth.marginals.spark_backend import SparkSource

    builder = SparkSession.builder.master(f"local[{threads}]").appName("dpsynth-scale")
    for item in ["spark.ui.enabled=false", *spark_conf]:
        key, _, value = item.partition("=")
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return SparkSource(spark.read.parquet(path))


def run_fit(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fit; the in-child figures (the fit's own wall and CPU, its phases)."""
    import dpsynth
    from dpsynth import UNTRACKED
    from dpsynth.datasets import adult_schema_path, load_adult
    from dpsynth.schema import load_schema

    schema = load_schema(adult_schema_path())
    t_load = time.perf_counter()
    if kind == "mst-adult":
        data, schema = load_adult()
    elif kind == "mst-pandas":
        import pandas as pd
        data = pd.read_parquet(args.path)
    elif kind == "mst-spark":
        data = _spark_source(args.path, args.spark_threads, args.spark_conf)
    else:
        data = _duckdb_source(args.path, args.duckdb_threads, args.duckdb_memory_limit)
    load_s = time.perf_counter() - t_load
    clock = EngineClock(data) if kind.endswith(("duckdb", "spark")) else None
    if kind.startswith("aim"):
        from dpsynth.synth.aim import AIM
        params = {k: json.loads(v) for k, v in (c.split("=", 1) for c in args.aim_param)}
        model: Any = AIM(epsilon=args.epsilon, delta=args.delta, insecure_seed=args.seed, **params)
    else:
        from dpsynth.synth.mst import MST
        model = MST(epsilon=args.epsilon, delta=args.delta, insecure_seed=args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the untracked-fit and insecure-seed warnings, expected here
        model.fit(data, schema=schema, ledger=UNTRACKED)
    out = {"fit_wall_s": round(time.perf_counter() - t0, 3), "fit_cpu_s": round(time.process_time() - c0, 3),
           "load_s": round(load_s, 3), "phases": getattr(model, "timings_", {}),
           "total_estimate": round(float(getattr(model, "total_estimate_", float("nan")))),
           "dpsynth_at": str(Path(dpsynth.__file__).parent.parent)}
    if clock is not None:
        out["engine"] = clock.seconds
        out["fetched_rows"] = int(sum(getattr(data, "fetched_rows", []) or [0]))
    if hasattr(model, "edges_"):
        out["edges"] = [list(e) for e in model.edges_]
    if hasattr(model, "rounds_"):
        out["rounds"] = len(model.rounds_)
    return out


def child(args: argparse.Namespace) -> None:
    """Run one measurement in this process and print it as the last line of stdout."""
    if args.child.startswith("sql"):
        result = run_sql(args.path, args.duckdb_threads, args.duckdb_memory_limit, args.child == "sql-tuples",
                         args.check)
    else:
        result = run_fit(args.child, args)
    print(json.dumps(result), flush=True)


# -- the parent: one child per run -----------------------------------------------------------------
class TreeSampler(threading.Thread):
    """Peak summed RSS and last-seen CPU of a process and its descendants, every ``period`` s."""

    def __init__(self, pid: int, period: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until ``done`` is set or the process is gone."""
        import psutil  # type: ignore[import-untyped]

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.done.is_set():
            rss = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self.done.wait(self.period)


def measure(cmd: list[str], env: dict[str, str], cpu_cap: int | None) -> dict[str, Any]:
    """Run ``cmd``; its wall, CPU (the larger of wait4's and the sampled tree's) and memory."""

    def limit() -> None:
        if cpu_cap:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_cap, cpu_cap + 10))

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=limit, cwd=ROOT)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout_box: list[str] = []
    stderr_box: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, stdout_box), (proc.stderr, stderr_box))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    for r in readers:
        r.join()
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    row: dict[str, Any] = {
        "wall_s": round(wall, 2), "cpu_s": round(max(cpu, sum(sampler.cpu.values())), 2),
        "cpu_wait4_s": round(cpu, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "peak_tree_rss_mb": round(sampler.peak_rss / 2**20), "exit": code,
        "capped": bool(cpu_cap) and code in (-signal.SIGXCPU, -signal.SIGKILL),
    }
    out = "".join(stdout_box).strip().splitlines()
    if code == 0 and out:
        row.update(json.loads(out[-1]))
    elif not row["capped"]:
        row["error"] = "".join(stderr_box)[-1500:]
    return row


def parent(args: argparse.Namespace) -> None:
    """Every (repetition, rows, kind, tree), alternating, one child each."""
    log = args.json.open("a") if args.json else None
    rows_list = args.rows or [0]
    trees = [Path(t).resolve() for t in (args.trees or [ROOT])]
    for rep in range(args.first_rep, args.first_rep + args.reps):
        for rows in rows_list:
            for kind in args.kinds:
                for tree in (trees if rep % 2 == 0 else trees[::-1]):
                    path = str(args.data_dir / f"adult_{rows}{args.suffix}.parquet") if kind != "mst-adult" else ""
                    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"}
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--path", path,
                           "--seed", str(rep), "--epsilon", str(args.epsilon), "--delta", str(args.delta),
                           "--duckdb-threads", str(args.duckdb_threads), "--spark-threads", str(args.spark_threads),
                           *(["--duckdb-memory-limit", args.duckdb_memory_limit] if args.duckdb_memory_limit else []),
                           *[f"--spark-conf={c}" for c in args.spark_conf],
                           *[f"--aim-param={c}" for c in args.aim_param]]
                    load = Path("/proc/loadavg").read_text().split()[0]
                    row = {"kind": kind, "rows": rows if kind != "mst-adult" else 32561, "rep": rep, "data": path,
                           "tree": str(tree), "load_at_start": load, "aim_params": args.aim_param,
                           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
                    cap = args.cpu_cap if kind.startswith("aim") or args.cap_all else None
                    row.update(measure(cmd, env, cap))
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    if log:
                        log.write(json.dumps(row) + "\n")
                        log.flush()
    if log:
        log.close()
        print(summary([json.loads(x) for x in args.json.read_text().splitlines() if x.strip()]))


def _timed_s(r: dict[str, Any]) -> float:
    """The seconds a run's rows/s is quoted against: the fit's own wall time, or the reference's group-by
    passes (distinct tuples, marginals, densification; the plain scan and the validation pass apart)."""
    if "passes" in r:
        return float(sum(v["wall_s"] for k, v in r["passes"].items() if k not in ("scan", "validate")))
    return float(r.get("fit_wall_s", r["wall_s"]))


def summary(runs: list[dict[str, Any]]) -> str:
    """Markdown: medians per (kind, rows, tree), rows per second, growth against the next smaller size."""
    lines = ["| run | rows | tree | runs | wall s (process) | CPU s (process) | timed s | peak RSS MB | rows/s "
             "| × time, × memory vs previous size | phases or passes (s, median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}

    def label(r: dict[str, Any]) -> str:
        mix = Path(r.get("data") or "").stem.partition("_mix")[2]
        return r["kind"] + (f" (mix {mix})" if mix else "")

    for r in sorted(runs, key=lambda r: (label(r), r["tree"], r["rows"])):
        groups.setdefault((label(r), r["rows"], r["tree"]), []).append(r)
    previous: dict[tuple[str, str], tuple[float, float]] = {}
    for (kind, rows, tree), rs in groups.items():
        ok = [r for r in rs if r.get("exit") == 0]
        head = f"| {kind} | {rows:,} | {Path(tree).name} | {len(rs)} |"
        if not ok:
            capped = [r for r in rs if r.get("capped")]
            lines.append(head + (f" > {max(r['wall_s'] for r in capped):.0f} | > {max(r['cpu_s'] for r in capped):.0f} "
                                 "(capped) |" if capped else " failed | |") + " | | | | | |")
            continue
        med = {k: statistics.median(r[k] for r in ok) for k in ("wall_s", "cpu_s", "peak_rss_mb", "peak_tree_rss_mb")}
        timed = statistics.median(_timed_s(r) for r in ok)
        names: dict[str, list[float]] = {}
        for r in ok:
            for name, v in {**(r.get("phases") or {}), **(r.get("passes") or {})}.items():
                if isinstance(v, (int, float, dict)):
                    names.setdefault(name, []).append(v["wall_s"] if isinstance(v, dict) else v)
        phases = ", ".join(f"{n} {statistics.median(v):.2f}" for n, v in names.items())
        rss = med["peak_tree_rss_mb"] if "spark" in kind else med["peak_rss_mb"]
        before = previous.get((kind, tree))
        growth = f"{timed / before[0]:.1f}×, {rss / before[1]:.1f}×" if before else ""
        previous[(kind, tree)] = (timed, rss)
        lines.append(f"{head} {med['wall_s']:.1f} | {med['cpu_s']:.1f} | {timed:.1f} | {rss:,.0f} | "
                     f"{rows / timed:,.0f} | {growth} | {phases} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line: a parent run (default), a child (``--child``) or ``--summarize``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("scale-data"), help="scale_data.py's --out")
    ap.add_argument("--rows", type=int, nargs="+", help="table sizes (files adult_<N>.parquet)")
    ap.add_argument("--suffix", default="", help="data file name suffix (scale_data.py --mix P: _mixP)")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=["sql", "mst-duckdb"])
    ap.add_argument("--trees", nargs="+", help="dpsynth trees to alternate (PYTHONPATH); default this one")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--first-rep", type=int, default=0)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-9)
    ap.add_argument("--duckdb-threads", type=int, default=2)
    ap.add_argument("--duckdb-memory-limit", default="2GB",
                    help="DuckDB memory_limit of the reference and of DuckDBSource (2GB, DuckDBSource's default)")
    ap.add_argument("--spark-threads", type=int, default=2)
    ap.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--aim-param", action="append", default=[], metavar="NAME=VALUE",
                    help="an AIM parameter (VALUE as JSON), e.g. max_rounds=15")
    ap.add_argument("--cpu-cap", type=int, default=900, help="CPU seconds after which an AIM run is stopped (900)")
    ap.add_argument("--cap-all", action="store_true", help="apply --cpu-cap to every run, not only AIM")
    ap.add_argument("--json", type=Path, help="append one JSON line per run; print the table of the whole file")
    ap.add_argument("--summarize", type=Path, nargs="+", help="only print the table of earlier runs")
    ap.add_argument("--check", action="store_true",
                    help="with --child sql: check the SQL's marginals against schema.encode (pandas; small tables)")
    ap.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.summarize:
        print(summary([json.loads(x) for f in args.summarize for x in f.read_text().splitlines() if x.strip()]))
    elif args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
