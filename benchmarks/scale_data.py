#!/usr/bin/env python3
r"""An N-row table shaped like the bundled UCI Adult, resampled in DuckDB and written as Parquet (issue 19).

Row i of the output is row ``hash(i, seed) mod 32,561`` of the bundled training split
(``dpsynth/datasets/adult/adult.csv.gz``): rows drawn uniformly with replacement, so every
marginal of the output is, up to sampling noise, the bundled table's. The work happens in DuckDB
(a join of ``range(N)`` with the 32,561 source rows, streamed into ``COPY ... TO``): nothing of
the N rows passes through pandas or Python, so 100 million rows take DuckDB's memory limit, not
the table's size.

Column types are those of a real Parquet extract: the schema's integer columns as ``INTEGER``, its
categorical columns as ``VARCHAR``, and the schema's missing-value token (``"?"``) as SQL NULL;
``--as-text`` keeps the CSV's text instead (every column ``VARCHAR``, ``"?"`` kept).

The draw is seeded: the same seed, N and DuckDB version give the same file (DuckDB's ``hash``
is not promised stable across its versions; the version is written to the manifest beside the
data, with the row count and a checksum of the output's encoded 1-way counts).

    python benchmarks/scale_data.py --rows 1000000 10000000 100000000 --out scale-data
    python benchmarks/scale_data.py --rows 100000000 --out scale-data --folder   # a folder of ~256 MB files

Writes ``OUT/adult_<N>.parquet`` (a file, or with ``--folder`` a folder of files) and
``OUT/adult_<N>.json`` (the manifest: rows, seed, DuckDB version, bytes, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb

from dpsynth.datasets import adult_path, adult_schema_path
from dpsynth.schema import load_schema


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_select(as_text: bool) -> str:
    """SELECT list turning the bundled CSV's text into the output's column types."""
    schema = load_schema(adult_schema_path())
    missing = ", ".join(_literal(m) for m in schema.missing_values) or "NULL"
    parts = []
    for col in schema.columns:
        q = _quote(col.name)
        if as_text:
            parts.append(q)
        elif col.kind == "categorical":
            parts.append(f"CASE WHEN {q} IN ({missing}) THEN NULL ELSE {q} END AS {q}")
        else:
            parts.append(f"CASE WHEN {q} IN ({missing}) THEN NULL ELSE CAST({q} AS INTEGER) END AS {q}")
    return ", ".join(parts)


def write(
    con: duckdb.DuckDBPyConnection, rows: int, seed: int, n_source: int, target: Path, folder: bool, row_group: int,
    mix: float = 0.0,
) -> None:
    """Write ``rows`` resampled rows to ``target`` (a Parquet file, or a folder of them); with ``mix``,
    each cell is replaced, with that probability, by the same column of another random source row."""
    columns = load_schema(adult_schema_path()).names
    options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group}"
    if folder:
        options += ", FILE_SIZE_BYTES '256MB', OVERWRITE_OR_IGNORE true"
    # hash(i, seed) is uniform over 64 bits; mod 32,561 its bias is below 32,561 / 2^64.
    pick = f"CAST(hash(r.i, {int(seed)}) % {int(n_source)} AS BIGINT)"
    if mix <= 0:
        select = ", ".join(_quote(c) for c in columns)
        joins = f"JOIN src ON src.k = {pick}"
    else:
        threshold = int(round(mix * 2**32))
        parts, joined = [], [f"JOIN src ON src.k = {pick}"]
        for j, c in enumerate(columns):
            draw = f"hash(r.i, {int(seed)}, {j + 1})"
            mixed = f"({draw} >> 32) < {threshold}"
            key = f"CASE WHEN {mixed} THEN CAST(({draw} & 4294967295) % {int(n_source)} AS BIGINT) END"
            joined.append(f"LEFT JOIN (SELECT k, {_quote(c)} AS v FROM src) m{j} ON m{j}.k = {key}")
            parts.append(f"CASE WHEN {mixed} THEN m{j}.v ELSE src.{_quote(c)} END AS {_quote(c)}")
        select, joins = ", ".join(parts), " ".join(joined)
    con.execute(
        f"COPY (SELECT {select} FROM range({int(rows)}) r(i) {joins}) TO {_literal(str(target))} ({options})"
    )


def checksum(con: duckdb.DuckDBPyConnection, target: Path, folder: bool) -> tuple[int, str]:
    """(row count, a short digest of every column's value counts) of the written data."""
    pattern = str(target / "*.parquet") if folder else str(target)
    names = load_schema(adult_schema_path()).names
    sets = ", ".join(f"({_quote(c)})" for c in names)
    all_names = ", ".join(_quote(c) for c in names)
    total = int(con.execute(f"SELECT count(*) FROM read_parquet({_literal(pattern)})").fetchall()[0][0])
    digest = con.execute(
        f"SELECT md5(string_agg(k || ':' || n, ',' ORDER BY k)) FROM ("
        f"SELECT concat_ws('|', grouping({all_names}), "
        f"{', '.join(f'coalesce(CAST({_quote(c)} AS VARCHAR), chr(0))' for c in names)}) AS k, "
        f"count(*) AS n FROM read_parquet({_literal(pattern)}) GROUP BY GROUPING SETS ({sets}))"
    ).fetchall()[0][0]
    return total, str(digest)


def main(argv: list[str] | None = None) -> int:
    """Generate the tables named by ``--rows`` into ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", required=True, help="row counts, one table each")
    ap.add_argument("--out", type=Path, required=True, help="folder for the tables (never the repository)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folder", action="store_true", help="write a folder of ~256 MB Parquet files per table")
    ap.add_argument("--mix", type=float, default=0.0, metavar="P",
                    help="replace each cell with probability P by the same column of another random source row "
                         "(more distinct rows; 1-way marginals kept, 2-way pulled toward independence)")
    ap.add_argument("--as-text", action="store_true", help="keep the CSV's text (all VARCHAR, '?' kept)")
    ap.add_argument("--row-group", type=int, default=1_000_000, help="Parquet row-group size (1,000,000)")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (2)")
    ap.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit (4GB; it spills beyond)")
    ap.add_argument("--no-checksum", action="store_true", help="skip the manifest's checksum (one more scan)")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": args.threads, "memory_limit": args.memory_limit,
                                 "preserve_insertion_order": False,
                                 "temp_directory": str(args.out / ".duckdb_tmp")})
    # Number the source rows in an order fixed by their content (identical rows are interchangeable),
    # not by the order of a parallel scan.
    every = ", ".join(_quote(c) for c in load_schema(adult_schema_path()).names)
    con.execute(
        f"CREATE TEMP TABLE src AS SELECT row_number() OVER (ORDER BY {every}) - 1 AS k, * FROM ("
        f"SELECT {source_select(args.as_text)} "
        f"FROM read_csv({_literal(str(adult_path()))}, header = true, all_varchar = true))"
    )
    n_source = int(con.execute("SELECT count(*) FROM src").fetchall()[0][0])
    for rows in args.rows:
        stem = f"adult_{rows}" + (f"_mix{args.mix:g}" if args.mix > 0 else "")
        target = args.out / f"{stem}.parquet"
        start = time.perf_counter()
        cpu0 = os.times()
        write(con, rows, args.seed, n_source, target, args.folder, args.row_group, args.mix)
        cpu1 = os.times()
        seconds = time.perf_counter() - start
        files = sorted(target.glob("*.parquet")) if args.folder else [target]
        manifest = {
            "rows": rows, "seed": args.seed, "mix": args.mix, "folder": args.folder, "as_text": args.as_text,
            "duckdb": duckdb.__version__, "files": len(files), "bytes": sum(f.stat().st_size for f in files),
            "write_wall_s": round(seconds, 1),
            "write_cpu_s": round(cpu1.user - cpu0.user + cpu1.system - cpu0.system, 1),
            "source": "dpsynth/datasets/adult/adult.csv.gz (32,561 rows), resampled with replacement",
        }
        if not args.no_checksum:
            manifest["rows_read_back"], manifest["value_counts_md5"] = checksum(con, target, args.folder)
        (args.out / f"{stem}.json").write_text(json.dumps(manifest, indent=1) + "\n")
        print(json.dumps(manifest), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
