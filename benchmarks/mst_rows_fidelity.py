"""MST's exact workload errors on raw Adult when the synthetic table has len(data) rows (the old
release default) or MST's own DP estimate of the count (the release default since issue 15).

    python benchmarks/mst_rows_fidelity.py TREE REPS [dp]

TREE is a dpsynth checkout (put first on sys.path, e.g. an earlier commit's worktree); with ``dp``
the fit samples round(total_estimate_) rows. One line per fit: rows, 1-, 2- and 3-way mean L1, CPU
seconds. Fits are untracked (no ledger) and draw secure noise. Pin one thread per process
(OMP_NUM_THREADS=1) and alternate trees between calls.
"""

import sys
import time
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])

from dpsynth import MST, load_schema  # noqa: E402
from dpsynth.datasets import adult_path, adult_schema_path  # noqa: E402
from dpsynth.io import read_table  # noqa: E402
from dpsynth.privacy.ledger import UNTRACKED  # noqa: E402
from dpsynth.quality import evaluate  # noqa: E402

schema = load_schema(adult_schema_path())
data = read_table(adult_path())
for _ in range(int(sys.argv[2])):
    start = time.process_time()
    model = MST(epsilon=1.0, delta=1e-9).fit(data, schema=schema, ledger=UNTRACKED)
    n = int(round(model.total_estimate_)) if len(sys.argv) > 3 else len(data)
    q = evaluate(data, model.sample(n), schema)
    print(f"rows {n} l1_1way {q['l1_1way']:.4f} l1_2way {q['l1_2way']:.4f} l1_3way {q['l1_3way']:.4f} "
          f"cpu {time.process_time() - start:.1f}", flush=True)
