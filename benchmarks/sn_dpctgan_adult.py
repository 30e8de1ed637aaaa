#!/usr/bin/env python3
"""smartnoise-synth's DPCTGAN on raw UCI Adult: timed fit for a fixed number of epochs, then as many
synthetic rows as the input, written to a CSV. Runs in smartnoise-synth's own virtual environment
(it needs its Opacus 0.14); used by ``benchmarks/dpsgd_adult.py``.

    .peers/sn/bin/python benchmarks/sn_dpctgan_adult.py ADULT_DATA OUT.csv [--epochs 3] [--epsilon 3]
        [--delta 1e-6] [--preprocessor-eps 0.5] [--seed 0]

Same set-up as ``shared/peers/sn_dpctgan.py`` (6 numeric columns declared continuous, their bounds
estimated by smartnoise's preprocessor with ``--preprocessor-eps`` taken from ε, batch 500, one
torch thread), plus: an explicit δ (smartnoise's default is 1/(n·√n), a function of the row
count), the preprocessing timed apart from training, and the ε of every step taken, read from
the privacy engine smartnoise attached (its own ``epsilon_list`` is measured BEFORE each epoch,
so it never shows the last epoch). Numeric outputs are rounded to integers (post-processing) so
the table reads with the public schema. Prints one JSON line.
"""
import argparse
import json
import time

import numpy as np
import opacus
import pandas as pd
import torch
from snsynth import Synthesizer
from snsynth.pytorch.nn import dpctgan as sn_dpctgan

COLS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
        "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
        "hours-per-week", "native-country", "income"]
NUM = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=3.0)
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument("--preprocessor-eps", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    engines = []
    attach = opacus.PrivacyEngine.attach

    def recording_attach(self, optimizer):
        engines.append(self)
        return attach(self, optimizer)

    opacus.PrivacyEngine.attach = recording_attach
    prep = {"s": 0.0, "cpu": 0.0}
    get_train_data = sn_dpctgan.DPCTGAN._get_train_data

    def timed_get_train_data(self, *a, **k):
        t, c = time.perf_counter(), time.process_time()
        out = get_train_data(self, *a, **k)
        prep["s"] += time.perf_counter() - t
        prep["cpu"] += time.process_time() - c
        return out

    sn_dpctgan.DPCTGAN._get_train_data = timed_get_train_data

    df = pd.read_csv(args.data, header=None, names=COLS, skipinitialspace=True)
    cat = [c for c in COLS if c not in NUM]
    synth = Synthesizer.create("dpctgan", epsilon=args.epsilon, epochs=args.epochs, batch_size=args.batch_size,
                               delta=args.delta, verbose=False)
    t, c = time.perf_counter(), time.process_time()
    synth.fit(df, categorical_columns=cat, continuous_columns=NUM, preprocessor_eps=args.preprocessor_eps)
    fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - c
    gan = synth  # smartnoise's DPCTGAN is the synthesizer and the GAN in one object
    epochs_run = len(gan.epsilon_list)
    engine = engines[0]
    eps_final, alpha = engine.get_privacy_spent(args.delta)
    t = time.perf_counter()
    out = synth.sample(len(df))
    sample_s = time.perf_counter() - t
    if not isinstance(out, pd.DataFrame):
        out = pd.DataFrame(out, columns=COLS)
    for col in NUM:
        out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")
    out.to_csv(args.out, index=False, na_rep="?")
    print(json.dumps({
        "system": "smartnoise-dpctgan", "snsynth_opacus": opacus.__version__, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "rows": len(df), "epochs_requested": args.epochs,
        "epochs_trained": epochs_run, "epsilon": args.epsilon, "preprocessor_eps": args.preprocessor_eps,
        "delta": gan.delta, "sigma": gan.sigma, "batch_size": args.batch_size,
        "sample_rate": engine.sample_rate, "steps": engine.steps,
        "epsilon_for_training": gan.epsilon,
        "epsilon_list_before_each_epoch": [round(float(e), 4) for e in gan.epsilon_list],
        "epsilon_after_all_steps": float(eps_final), "best_alpha": float(alpha),
        "fit_s": fit_s, "fit_cpu_s": fit_cpu, "prep_s": prep["s"], "prep_cpu_s": prep["cpu"],
        "train_s": fit_s - prep["s"], "train_cpu_s": fit_cpu - prep["cpu"], "sample_s": sample_s,
    }))


if __name__ == "__main__":
    main()
