"""`dpsynth eval` against an independent implementation of the same metric (shared/peers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth.quality import fidelity
from dpsynth.schema import Schema

PEER = Path(__file__).resolve().parents[2].parent / "shared" / "peers" / "workload_error.py"


@pytest.mark.skipif(not PEER.exists(), reason="shared/peers/workload_error.py is not beside the checkout")
def test_workload_errors_match_the_peer_script(tmp_path):
    rng = np.random.default_rng(0)
    domain = {"a": 3, "b": 5, "c": 2, "d": 4}
    real = pd.DataFrame({c: rng.integers(0, k, 500) for c, k in domain.items()})
    fake = pd.DataFrame({c: rng.integers(0, k, 300) for c, k in domain.items()})
    paths = {name: tmp_path / f"{name}.csv" for name in ("real", "fake")}
    real.to_csv(paths["real"], index=False)
    fake.to_csv(paths["fake"], index=False)
    (tmp_path / "domain.json").write_text(json.dumps(domain))
    proc = subprocess.run(
        [sys.executable, str(PEER), str(paths["real"]), str(tmp_path / "domain.json"), str(paths["fake"]), "--json"],
        capture_output=True, text=True, check=True,
    )
    theirs = json.loads(proc.stdout)
    ours = fidelity(real.astype(str), fake.astype(str), Schema.from_domain(domain))
    for k in (1, 2, 3):
        assert ours[f"l1_{k}way"] == pytest.approx(theirs[f"l1_{k}way_mean"], rel=1e-12)
        assert ours[f"n_{k}way"] == theirs[f"n_{k}way"]
