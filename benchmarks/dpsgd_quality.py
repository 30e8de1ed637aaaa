#!/usr/bin/env python3
r"""DP-SGD generators (dpvae, dpctgan) beside MST on the raw UCI Adult table: quality (issue 22).

For each repetition and each ε, alternating, every system in its own process pinned to one thread
(OMP/MKL/OpenBLAS and torch): fit on the bundled training split (32,561 rows, bundled schema,
untracked ledger), sample as many rows, and report

* the AIM workload errors (``dpsynth.quality.evaluate``: l1_1way, l1_2way, l1_3way) against the
  training split, and TSTR accuracy / ROC-AUC for ``income`` on UCI's test split;
* SDMetrics' QualityReport (holdout-free: real = the training split, synthetic = the output;
  overall, Column Shapes, Column Pair Trends, and the overall score with both tables' numeric
  columns binned on the real table's edges), computed by ``benchmarks/sdmetrics_quality.py`` in
  its OWN virtual environment (``--sdmetrics-python``; set-up and the reason in that file's docstring);
* the fit's CPU seconds (``time.process_time`` around ``fit`` in the child) and the child's.

Repetition r seeds every fit with ``insecure_seed = r`` (reproducible; the record says the noise
was torch's seeded generator, not the secure source) and samples with ``random_state = r``.
``--secure`` fits with the secure noise source instead (not reproducible).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dpsgd_quality.py --test ../shared/data/adult/adult.test \
        --epsilon 1 3 --reps 2 --systems dpvae dpctgan mst [--json out.jsonl]

Variants: ``--systems dpvae dpvae@big --param dpvae@big:compress_dims=[128,128]`` (``name@label``
runs ``name`` with the ``--param`` values given for that label; values are JSON, else strings).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
os.environ.update(THREAD_ENV)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def worker_fit(args: argparse.Namespace) -> dict:
    import warnings

    import torch

    torch.set_num_threads(1)
    from dpsynth import UNTRACKED
    from dpsynth.datasets import load_adult
    from dpsynth.io import write_table
    from dpsynth.synth import MST
    from dpsynth.synth.dpsgd import DPCTGAN, DPVAE

    data, schema = load_adult()
    params = json.loads(args.params)
    seed = None if args.secure else args.seed
    warnings.simplefilter("ignore")  # the insecure-seed and untracked warnings: recorded in the output instead
    name = args.worker.split("@")[0]
    if name == "mst":
        synth = MST(epsilon=args.epsilon, delta=args.delta, insecure_seed=seed, **params)
    else:
        cls = {"dpctgan": DPCTGAN, "dpvae": DPVAE}[name]
        synth = cls(epsilon=args.epsilon, delta=args.delta, device="cpu", insecure_seed=seed, **params)
    c = time.process_time()
    synth.fit(data, schema=schema, ledger=UNTRACKED)
    fit_cpu = time.process_time() - c
    synthetic = synth.sample(len(data), random_state=args.seed)
    write_table(synthetic, Path(args.out_csv), na_rep=schema.missing_values[0])
    out: dict = {"system": args.worker, "rows": len(data), "fit_cpu_s": fit_cpu, "epsilon": args.epsilon,
                 "delta": args.delta, "params": params, "insecure_seed": seed}
    if name != "mst":
        d = synth.dpsgd_
        out.update(train_cpu_s=synth.timings_["train_cpu"], secure_noise=bool(getattr(synth, "secure_noise_", False)),
                   sigma=d["noise_multiplier"], q=d["sample_rate"], steps=d["steps_taken"],
                   eps_rdp=d["opacus_epsilon_rdp"], eps_prv=d["opacus_epsilon_prv"])
    return out


def run_child(cmd: list[str], tmp: Path, tag: str, timeout: float) -> tuple[dict | None, float]:
    """Run a child; its last stdout line that starts with ``{`` is JSON. Returns (result, child CPU s)."""
    env = {**os.environ, **THREAD_ENV}
    with open(tmp / f"{tag}.out", "w") as so, open(tmp / f"{tag}.err", "w") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in (tmp / f"{tag}.out").read_text().splitlines() if ln.startswith("{")]
    if code != 0 or not lines:
        print(f"  {tag} failed (exit {code}): {(tmp / f'{tag}.err').read_text()[-2000:]}", file=sys.stderr, flush=True)
        return None, usage.ru_utime + usage.ru_stime
    return json.loads(lines[-1]), usage.ru_utime + usage.ru_stime


def sdmetrics_inputs(data, schema, tmp: Path) -> tuple[Path, Path]:
    """The real table as CSV and SDMetrics' metadata from the public schema."""
    from dpsynth.io import write_table

    real = tmp / "real.csv"
    write_table(data, real, na_rep=schema.missing_values[0])
    numeric = {"integer", "numeric", "float"}
    meta = {"columns": {c.name: {"sdtype": "numerical" if c.kind in numeric else "categorical"}
                        for c in schema.columns},
            "missing_values": list(schema.missing_values)}
    meta_path = tmp / "sdmetrics_metadata.json"
    meta_path.write_text(json.dumps(meta))
    return real, meta_path


def sdmetrics(python: str, real: Path, meta: Path, synth: Path, timeout: float) -> dict | None:
    if not python:
        return None
    proc = subprocess.run([python, str(HERE / "sdmetrics_quality.py"), str(real), str(meta), str(synth)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **THREAD_ENV})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  sdmetrics failed: {proc.stderr[-2000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", default=str(ROOT.parent / "shared/data/adult/adult.test"), help="UCI adult.test")
    ap.add_argument("--epsilon", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument("--delta", type=float, default=1e-6, help="δ of the DP-SGD fits")
    ap.add_argument("--mst-delta", type=float, default=1e-9, help="δ of MST (dpsynth's MST benchmarks use 1e-9)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--systems", nargs="+", default=["dpvae", "dpctgan", "mst"])
    ap.add_argument("--param", action="append", default=[], metavar="SYSTEM:KEY=VALUE")
    ap.add_argument("--secure", action="store_true", help="secure noise (no insecure_seed; not reproducible)")
    ap.add_argument("--sdmetrics-python", default=str(ROOT / ".peers/sdmetrics/bin/python"),
                    help="python of the SDMetrics venv ('' to skip)")
    ap.add_argument("--timeout", type=float, default=1200, help="per-process wall limit (s)")
    ap.add_argument("--json", help="append every run as a JSON line to this file")
    ap.add_argument("--keep", help="keep the synthetic CSVs in this folder")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--out-csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.epsilon = args.epsilon[0]
        print(json.dumps(worker_fit(args)))
        return
    run_all(args)


def system_params(args: argparse.Namespace) -> dict[str, dict]:
    params: dict[str, dict] = {s: {} for s in args.systems}
    for item in args.param:
        system, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        if system not in params:
            raise SystemExit(f"--param {item}: {system} is not in --systems")
        params[system][key] = parse_value(value)
    return params


def run_all(args: argparse.Namespace) -> None:
    from raw_adult import evaluate_csv, read_test_split  # benchmarks/raw_adult.py: the raw Adult's figures

    from dpsynth.datasets import load_adult

    data, schema = load_adult()
    test = read_test_split(args.test, list(data.columns))
    params = system_params(args)
    me = [sys.executable, str(Path(__file__).resolve())]
    sdm_python = args.sdmetrics_python if args.sdmetrics_python and Path(args.sdmetrics_python).exists() else ""
    if not sdm_python:
        print("SDMetrics venv not found: SDMetrics figures skipped", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    print(f"# commit {commit.strip()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load "
          f"{os.getloadavg()[0]:.1f}; noise: {'secure' if args.secure else 'insecure_seed = rep (torch)'}", flush=True)
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        real, meta = sdmetrics_inputs(data, schema, tmp)
        for rep in range(args.first_seed, args.first_seed + args.reps):
            for eps in args.epsilon:
                for system in args.systems:
                    tag = f"{system}-{eps:g}-{rep}"
                    csv = tmp / f"{tag}.csv"
                    delta = args.mst_delta if system.split("@")[0] == "mst" else args.delta
                    cmd = [*me, "--worker", system, "--epsilon", str(eps), "--delta", str(delta), "--seed", str(rep),
                           "--params", json.dumps(params[system]), "--out-csv", str(csv),
                           *(["--secure"] if args.secure else [])]
                    load = os.getloadavg()[0]
                    res, cpu = run_child(cmd, tmp, tag, args.timeout)
                    rec = {"system": system, "epsilon": eps, "rep": rep, "ok": res is not None, "result": res,
                           "child_cpu_s": cpu, "load": load}
                    if res is not None:
                        rec["quality"] = evaluate_csv(csv, data, schema, test)
                        rec["sdmetrics"] = sdmetrics(sdm_python, real, meta, csv, args.timeout)
                    records.append(rec)
                    if args.json:
                        with open(args.json, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                    print(tag, json.dumps({k: rec.get(k) for k in ("child_cpu_s", "quality", "sdmetrics")}),
                          flush=True)
    summarize(records, args)


def _med(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def summarize(records: list[dict], args: argparse.Namespace) -> None:
    print(f"\nMedians over {args.reps} seeds; DP-SGD δ = {args.delta:g}, MST δ = {args.mst_delta:g}\n")
    print("| system | ε | SDMetrics | shapes | pairs | SDMetrics, real edges | TSTR AUC | TSTR acc | l1_1way | "
          "l1_2way | l1_3way | fit CPU s | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for eps in args.epsilon:
        for system in args.systems:
            runs = [r for r in records if r["system"] == system and r["epsilon"] == eps]
            ok = [r for r in runs if r["ok"]]
            q = [r["quality"] for r in ok]
            s = [r["sdmetrics"] or {} for r in ok]
            cells = [_med([x.get(k) for x in s]) for k in ("overall", "column_shapes", "column_pair_trends",
                                                          "overall_real_edges")]
            cells += [_med([x[k] for x in q]) for k in ("tstr_auc", "tstr_accuracy", "l1_1way", "l1_2way", "l1_3way")]
            cells.append(_med([r["result"]["fit_cpu_s"] for r in ok]))
            print(f"| {system} | {eps:g} | " + " | ".join(f"{c:.3f}" for c in cells[:-1])
                  + f" | {cells[-1]:.1f} | {len(runs) - len(ok)} |")
    ok = [r for r in records if r["ok"]]
    if ok:
        print(f"\nTRTR: accuracy {ok[0]['quality']['trtr_accuracy']:.3f}, ROC-AUC {ok[0]['quality']['trtr_auc']:.3f}")
    for r in ok:
        res = r["result"]
        if "sigma" in res:
            print(f"{r['system']} ε={r['epsilon']:g} seed {r['rep']}: σ {res['sigma']:.3f}, q {res['q']}, "
                  f"steps {res['steps']}, Opacus ε RDP {res['eps_rdp']:.3f} PRV {res['eps_prv']:.3f}, "
                  f"secure noise {res['secure_noise']}")


if __name__ == "__main__":
    main()
