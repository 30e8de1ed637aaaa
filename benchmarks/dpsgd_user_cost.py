"""CPU seconds per DP step of a DP-VAE fit on the bundled people table: the user unit (each person's summed
gradient clipped, Opacus hooks) against the row unit (fused clipping, the default, and hooks).

    OMP_NUM_THREADS=1 python benchmarks/dpsgd_user_cost.py [EPOCHS] [SEEDS]

One line per fit, seeded (INSECURE noise: a benchmark), untracked, on the CPU with one thread. The row
unit fits the table without its person id. The figures and the command are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import sys
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from dpsynth import UNTRACKED, PrivacyUnit  # noqa: E402
from dpsynth.datasets import load_people  # noqa: E402
from dpsynth.synth.dpsgd import DPVAE  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # untracked, seeded fits: expected in a benchmark
    epochs = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    people, schema = load_people()
    rows_schema, rows_frame = schema.with_unit(PrivacyUnit.rows()), people.drop(columns=["person_id"])
    cases = [("user:4, per-person (hooks)", people, schema, {}),
             ("row, fused (default)", rows_frame, rows_schema, {}),
             ("row, hooks", rows_frame, rows_schema, {"clipping": "hooks"})]
    for seed in range(seeds):
        for name, frame, sch, extra in cases:  # alternate the cases within each seed
            model = DPVAE(epsilon=1.0, delta=1e-6, insecure_seed=seed, epochs=epochs, device="cpu", **extra).fit(
                frame, schema=sch, ledger=UNTRACKED, threads=1)
            steps, t = model.dpsgd_["steps_taken"], model.timings_
            print(f"{name:28s} seed {seed}: steps {steps}, sigma {model.dpsgd_['noise_multiplier']:.4f}, "
                  f"train CPU-s {t['train_cpu']:.2f}, CPU-s/step {t['train_cpu'] / steps:.3f}", flush=True)


if __name__ == "__main__":
    main()
