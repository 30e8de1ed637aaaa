#!/usr/bin/env python3
r"""DP-SGD generators (dpctgan, dpvae) beside smartnoise-synth's DPCTGAN and MST on the raw UCI Adult table.

For each repetition and each ε, alternating, every system in its own process pinned to one
thread (OMP/MKL/OpenBLAS and torch): fit on the bundled training split (32,561 rows) for the same
number of epochs, sample as many rows, and evaluate with `dpsynth.quality.evaluate` against the
training split, with train-on-synthetic-test-on-real utility for `income` on UCI's test split.
Measured per run: training seconds (wall and CPU of the training loop), rows/s = epochs × rows /
training seconds, the child process's CPU seconds and peak RSS (`os.wait4`). Before the fits, one
process measures the cost of one DP-SGD step against the same non-private step (same model, same
batch, plain Adam) for both generators, with fused clipping (the default), Opacus's ghost
clipping and Opacus's hooks.

    python benchmarks/dpsgd_adult.py --test ../shared/data/adult/adult.test --epsilon 1 3 --delta 1e-6 \
        --epochs 3 --reps 2 --smartnoise-python .peers/sn/bin/python \
        --adult-data ../shared/data/adult/adult.data [--json results.jsonl]

smartnoise-synth runs `benchmarks/sn_dpctgan_adult.py` in its own virtual environment.
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

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------
# workers (each in its own process)
# ------------------------------------------------------------------------------------------------


def worker_fit(args: argparse.Namespace) -> dict:
    import warnings

    import torch

    torch.set_num_threads(1)
    from dpsynth.datasets import load_adult
    from dpsynth.io import write_table
    from dpsynth.privacy import ApproxDP
    from dpsynth.privacy.ledger import Ledger
    from dpsynth.synth import MST
    from dpsynth.synth.dpsgd import DPCTGAN, DPVAE

    data, schema = load_adult()
    warnings.simplefilter("ignore")  # the insecure-RNG warning is recorded in the output instead
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/ledger.db", create=True)
        ledger.create_dataset("adult", ApproxDP(1000.0, 1e-3))
        t, c = time.perf_counter(), time.process_time()
        if args.worker == "mst":
            synth = MST(epsilon=args.epsilon, delta=args.delta)
        else:
            cls = {"dpctgan": DPCTGAN, "dpvae": DPVAE}[args.worker]
            extra = {} if args.epochs is None else {"epochs": args.epochs}  # None: the generator's default
            synth = cls(epsilon=args.epsilon, delta=args.delta, device="cpu", clipping=args.clipping, **extra)
        synth.fit(data, schema=schema, ledger=ledger, dataset="adult")
        fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - c
        t = time.perf_counter()
        synthetic = synth.sample(len(data))
        sample_s = time.perf_counter() - t
    write_table(synthetic, Path(args.out_csv), na_rep=schema.missing_values[0])
    out = {"system": args.worker, "rows": len(data), "fit_s": fit_s, "fit_cpu_s": fit_cpu, "sample_s": sample_s,
           "epsilon": args.epsilon, "delta": args.delta}
    if args.worker != "mst":
        out.update(train_s=synth.timings_["train"], train_cpu_s=synth.timings_["train_cpu"],
                   epochs=float(synth.epochs), dpsgd=synth.dpsgd_)
    return out


def _median_ms(fn, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        c = time.process_time()
        fn()
        times.append(time.process_time() - c)
    return 1000 * statistics.median(times)


def worker_stepcost(args: argparse.Namespace) -> dict:
    """CPU milliseconds of one step: non-private (plain Adam, mean of the same per-sample losses)
    vs DP-SGD (per-sample clipping + noise) in each clipping mode; same
    model, same batch (the expected Poisson batch q·n of the default sample rate)."""
    import warnings

    import torch
    from torch.nn import functional as F

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from dpsynth.datasets import load_adult
    from dpsynth.schema.encode import encode
    from dpsynth.synth.dpsgd import common
    from dpsynth.synth.dpsgd.common import DEFAULT_SAMPLE_RATE, TableTransformer
    from dpsynth.synth.dpsgd.ctgan_conditions import Conditions
    from dpsynth.synth.dpsgd.ctgan_networks import activate, build_networks
    from dpsynth.synth.dpsgd.vae import build_vae, reconstruction_loss

    data, schema = load_adult()
    transformer = TableTransformer(schema, max_levels=1000, synthesizer="benchmark")
    matrix = torch.from_numpy(transformer.transform(data, encode(data, schema)))
    batch_size = round(DEFAULT_SAMPLE_RATE * len(data))
    gen = torch.Generator().manual_seed(0)
    real = matrix[torch.randperm(len(matrix), generator=gen)[:batch_size]]
    randomness = common.make_randomness(torch.device("cpu"), insecure_seed=0, secure_mode=False)
    cpu = torch.device("cpu")

    # dpctgan's DP step: the discriminator on (real, fake) pairs
    uniform = [torch.full((s.width,), 1.0 / s.width).numpy() for s in transformer.categorical_spans]
    conditions = Conditions(transformer, uniform, cpu)
    generator, _ = build_networks(transformer.output_dim, conditions.dim, 128, (256, 256), (256, 256))
    with torch.no_grad():
        cond_fake, _, _ = conditions.sample(batch_size, gen)
        fake = activate(generator(common.latent_noise((batch_size, 128), gen, cpu), cond_fake), transformer,
                        gumbel=True)
    cond_real = conditions.of_rows(real, gen)
    pairs = torch.stack([torch.cat([real, cond_real], 1), torch.cat([fake, cond_fake], 1)], 1)

    def d_loss(model):
        logits = model(pairs)
        return F.softplus(-logits[:, 0]) + F.softplus(logits[:, 1])

    def vae_loss(model):
        eps = common.latent_noise((batch_size, 128), gen, cpu)
        out, mu, logvar = model(real, eps)
        kl = -0.5 * (1.0 + logvar - mu * mu - logvar.exp()).sum(dim=1)
        return 2.0 * reconstruction_loss(out, real, transformer, 0.1) + kl

    builders = {
        "dpctgan": (lambda: build_networks(transformer.output_dim, conditions.dim, 128, (256, 256), (256, 256))[1],
                    d_loss, (0.5, 0.9), 2e-4),
        "dpvae": (lambda: build_vae(transformer.output_dim, (128, 128), 128, (128, 128)), vae_loss, (0.9, 0.999),
                  1e-3),
    }
    out: dict = {"batch_size": batch_size, "steps_timed": args.steps}
    for name, (build, loss_fn, betas, lr) in builders.items():
        torch.manual_seed(0)
        plain = build()
        adam = torch.optim.Adam(plain.parameters(), lr=lr, betas=betas)

        def plain_step(plain=plain, adam=adam, loss_fn=loss_fn):
            adam.zero_grad(set_to_none=True)
            loss_fn(plain).sum().backward()
            adam.step()

        res = {"plain_ms": _median_ms(plain_step, args.steps, 5)}
        for mode in common.CLIPPING:
            torch.manual_seed(0)
            private, optimizer, _ = common.private_parts(
                build(), matrix, learning_rate=lr, betas=betas, weight_decay=0.0, noise_multiplier=1.0,
                max_grad_norm=1.0, sample_rate=DEFAULT_SAMPLE_RATE, randomness=randomness, clipping=mode)

            def dp_step(private=private, optimizer=optimizer, loss_fn=loss_fn):
                optimizer.zero_grad(set_to_none=True)
                common.dp_backward(private, optimizer, loss_fn(private))
                optimizer.step()

            res[f"dp_{mode}_ms"] = _median_ms(dp_step, args.steps, 5)
            res[f"dp_{mode}_ratio"] = res[f"dp_{mode}_ms"] / res["plain_ms"]
        out[name] = res
    return out


# ------------------------------------------------------------------------------------------------
# the driver
# ------------------------------------------------------------------------------------------------


def run_child(cmd: list[str], tmp: Path, tag: str, timeout: float) -> tuple[dict | None, dict]:
    """Run a child process; its last stdout line is JSON. Returns (result, {cpu_s, peak_rss_mb, wall_s})."""
    env = {**os.environ, **THREAD_ENV}
    stdout, stderr = tmp / f"{tag}.out", tmp / f"{tag}.err"
    t = time.perf_counter()
    with open(stdout, "w") as so, open(stderr, "w") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env)
        deadline = time.monotonic() + timeout
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
    meta = {"wall_s": time.perf_counter() - t, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "returncode": proc.returncode}
    lines = [ln for ln in stdout.read_text().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  {tag} failed (exit {proc.returncode}): {stderr.read_text()[-2000:]}", file=sys.stderr, flush=True)
        return None, meta
    return json.loads(lines[-1]), meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", help="UCI adult.test")
    ap.add_argument("--adult-data", help="UCI adult.data (raw) for smartnoise")
    ap.add_argument("--epsilon", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument("--epochs", type=float, default=None,
                    help="epochs for every system (default: each dpsynth generator's own default; smartnoise 3)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--systems", nargs="+", default=["dpctgan", "dpvae", "smartnoise", "mst"])
    ap.add_argument("--smartnoise-python", default=".peers/sn/bin/python")
    ap.add_argument("--smartnoise-preprocessor-eps", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=40, help="steps timed per mode in the step-cost measurement")
    ap.add_argument("--timeout", type=float, default=900, help="per-process wall limit (s)")
    ap.add_argument("--json", help="append every run as a JSON line to this file")
    ap.add_argument("--worker", choices=["dpctgan", "dpvae", "mst", "stepcost"], help=argparse.SUPPRESS)
    ap.add_argument("--out-csv", help=argparse.SUPPRESS)
    ap.add_argument("--clipping", default="fused", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if args.worker == "stepcost":
            print(json.dumps(worker_stepcost(args)))
        else:
            args.epsilon = args.epsilon[0]
            print(json.dumps(worker_fit(args)))
        return

    from raw_adult import evaluate_csv, read_test_split  # benchmarks/raw_adult.py: the raw Adult's figures

    from dpsynth.datasets import load_adult

    data, schema = load_adult()
    test = read_test_split(args.test, list(data.columns))
    me = [sys.executable, str(Path(__file__).resolve())]
    records: list[dict] = []

    def record(rec: dict) -> None:
        records.append(rec)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(rec) + "\n")

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if any(s in args.systems for s in ("dpctgan", "dpvae")):
            res, meta = run_child([*me, "--worker", "stepcost", "--steps", str(args.steps)], tmp, "stepcost",
                                  args.timeout)
            record({"kind": "stepcost", **(res or {}), **meta})
            print("step cost:", json.dumps(res), flush=True)
        for rep in range(args.reps):
            for eps in args.epsilon:
                for system in args.systems:
                    tag = f"{system}-{eps:g}-{rep}"
                    csv = tmp / f"{tag}.csv"
                    if system == "smartnoise":
                        cmd = [args.smartnoise_python, str(HERE / "sn_dpctgan_adult.py"), args.adult_data, str(csv),
                               "--epochs", str(int(args.epochs or 3)), "--epsilon", str(eps),
                               "--delta", str(args.delta),
                               "--preprocessor-eps", str(args.smartnoise_preprocessor_eps), "--seed", str(rep)]
                    else:
                        cmd = [*me, "--worker", system, "--epsilon", str(eps), "--delta", str(args.delta),
                               *([] if args.epochs is None else ["--epochs", str(args.epochs)]), "--out-csv", str(csv)]
                    res, meta = run_child(cmd, tmp, tag, args.timeout)
                    rec = {"kind": "fit", "system": system, "epsilon": eps, "rep": rep, "ok": res is not None,
                           "result": res, **meta}
                    if res is not None:
                        if system != "mst":
                            epochs = res.get("epochs_trained", res.get("epochs"))
                            rec["rows_per_s"] = epochs * res["rows"] / res["train_s"]
                            rec["rows_per_cpu_s"] = epochs * res["rows"] / res["train_cpu_s"]
                        rec["quality"] = evaluate_csv(csv, data, schema, test)
                    record(rec)
                    brief = {k: rec.get(k) for k in ("wall_s", "cpu_s", "peak_rss_mb", "rows_per_s",
                                                     "rows_per_cpu_s")}
                    print(tag, json.dumps(brief), json.dumps(rec.get("quality")), flush=True)
    summarize(records, args)


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(records: list[dict], args: argparse.Namespace) -> None:
    for rec in records:
        if rec["kind"] == "stepcost" and "dpctgan" in rec:
            print(f"\nStep cost, CPU ms per step (median of {rec['steps_timed']}), batch {rec['batch_size']}:\n")
            print("| generator (DP-SGD part) | non-private | DP fused (default) | ratio | DP ghost | ratio | "
                  "DP hooks | ratio |")
            print("|---|---|---|---|---|---|---|---|")
            for name in ("dpctgan", "dpvae"):
                r = rec[name]
                print(f"| {name} | {r['plain_ms']:.2f} | " + " | ".join(
                    f"{r[f'dp_{m}_ms']:.2f} | {r[f'dp_{m}_ratio']:.2f}×" for m in ("fused", "ghost", "hooks")) + " |")
    fits = [r for r in records if r["kind"] == "fit"]
    print(f"\nFits: {args.epochs or 'default'} epochs, δ = {args.delta:g}, medians over {args.reps} runs\n")
    print("| system | ε | rows/s (train wall) | rows/CPU-s (train) | process CPU s | peak RSS MB | 2-way L1 | "
          "3-way L1 | TSTR acc | TSTR AUC | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for eps in args.epsilon:
        for system in args.systems:
            runs = [r for r in fits if r["system"] == system and r["epsilon"] == eps]
            ok = [r for r in runs if r["ok"]]
            q = [r["quality"] for r in ok]
            def col(key, rows=ok):
                return _med([r[key] for r in rows if r.get(key) is not None])
            print(f"| {system} | {eps:g} | {col('rows_per_s'):,.0f} | {col('rows_per_cpu_s'):,.0f} | "
                  f"{col('cpu_s'):.1f} | {col('peak_rss_mb'):,.0f} | {_med([x['l1_2way'] for x in q]):.3f} | "
                  f"{_med([x['l1_3way'] for x in q]):.3f} | {_med([x['tstr_accuracy'] for x in q]):.3f} | "
                  f"{_med([x['tstr_auc'] for x in q]):.3f} | {len(runs) - len(ok)} |")
    trtr = [r["quality"] for r in fits if r["ok"]]
    if trtr:
        print(f"\nTRTR: accuracy {trtr[0]['trtr_accuracy']:.3f}, ROC-AUC {trtr[0]['trtr_auc']:.3f}")
    for eps in args.epsilon:
        sn = [r for r in fits if r["system"] == "smartnoise" and r["epsilon"] == eps and r["ok"]]
        for system in ("dpctgan", "dpvae"):
            mine = [r for r in fits if r["system"] == system and r["epsilon"] == eps and r["ok"]]
            if sn and mine:
                ratio = _med([r["rows_per_s"] for r in mine]) / _med([r["rows_per_s"] for r in sn])
                ratio_cpu = _med([r["rows_per_cpu_s"] for r in mine]) / _med([r["rows_per_cpu_s"] for r in sn])
                print(f"ε = {eps:g}: {system} throughput vs smartnoise DPCTGAN: {ratio:.1f}× (wall), "
                      f"{ratio_cpu:.1f}× (CPU)")
        for r in sn:
            res = r["result"]
            print(f"ε = {eps:g} smartnoise rep {r['rep']}: epochs {res['epochs_trained']}/{res['epochs_requested']}, "
                  f"σ {res['sigma']}, q {res['sample_rate']:.4f}, steps {res['steps']}, δ {res['delta']:g}, "
                  f"ε before each epoch {res['epsilon_list_before_each_epoch']}, ε after all steps "
                  f"{res['epsilon_after_all_steps']:.4f} (+ preprocessor {res['preprocessor_eps']})")
        for system in ("dpctgan", "dpvae"):
            for r in fits:
                if r["system"] == system and r["epsilon"] == eps and r["ok"]:
                    d = r["result"]["dpsgd"]
                    print(f"ε = {eps:g} {system} rep {r['rep']}: σ {d['noise_multiplier']:.3f}, q {d['sample_rate']}, "
                          f"steps {d['steps_taken']}/{d['steps_planned']}, Opacus ε RDP {d['opacus_epsilon_rdp']:.3f} "
                          f"PRV {d['opacus_epsilon_prv']:.3f}")


if __name__ == "__main__":
    main()
