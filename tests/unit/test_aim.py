"""AIM specifics: 3-way structure MST cannot see, workload validation, budget use, rounds recorded."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.exceptions import ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import Schema
from dpsynth.synth import AIM, MST
from dpsynth.synth.aim import downward_closure

XOR = Schema.from_domain({"a": 2, "b": 2, "c": 2, "d": 3})


def xor_table(n: int, seed: int) -> pd.DataFrame:
    """c = a XOR b: every pair of a, b, c is independent; only the 3-way marginal shows the rule."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    return pd.DataFrame({"a": a, "b": b, "c": a ^ b, "d": rng.integers(0, 3, n)}).astype(str)


def xor_share(table: pd.DataFrame) -> float:
    t = table.astype(int)
    return float(((t["a"] ^ t["b"]) == t["c"]).mean())


def test_aim_learns_a_three_way_rule_that_mst_cannot():
    data = xor_table(3000, 0)
    aim = AIM(epsilon=5.0, delta=1e-6, insecure_seed=1).fit(data, schema=XOR, ledger=UNTRACKED)
    assert any(set(r["clique"]) == {"a", "b", "c"} for r in aim.rounds_)
    assert xor_share(aim.sample(3000, random_state=0)) > 0.9
    mst = MST(epsilon=5.0, delta=1e-6, insecure_seed=1).fit(data, schema=XOR, ledger=UNTRACKED)
    assert 0.35 < xor_share(mst.sample(3000, random_state=0)) < 0.65  # a tree of pairs sees no rule


def test_budget_is_used_in_rounds_and_recorded(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    aim = AIM(epsilon=1.0, delta=1e-6, insecure_seed=2).fit(xor_table(500, 1), schema=XOR, ledger=ledger,
                                                              dataset="d")
    assert aim.privacy_spent_.rho == pytest.approx(aim.zcdp_budget().rho, rel=1e-6)
    labels = {e.label for e in aim.privacy_events_}
    assert labels == {"aim_one_way", "aim_select", "aim_measure"}
    weights = {cl: sum(len(set(cl) & set(w)) for w in aim._workload(XOR)) for cl in downward_closure(
        aim._workload(XOR))}
    assert {e.sensitivity for e in aim.privacy_events_ if e.label == "aim_select"} == {max(weights.values())}
    (entry,) = ledger.statement("d").reservations
    assert entry.events[0]["kind"] == "zcdp_filter" and entry.status == "completed"
    assert entry.detail["rounds"] == [r["clique"] for r in aim.rounds_] and len(entry.detail["rounds"]) >= 1
    assert entry.detail["events_run"] == len(aim.privacy_events_)


def test_workload_is_validated_before_anything_is_read():
    with pytest.raises(ParameterError, match=r"workload\[1\] \(\['a', 'zzz'\]\) must name distinct columns.*'zzz'"):
        AIM(epsilon=1.0, delta=1e-6, workload=[("a", "b"), ("a", "zzz")]).plan(XOR)
    big = Schema.from_domain({"x": 300, "y": 300, "z": 300})
    with pytest.raises(ParameterError, match=r"workload marginal \['x', 'y', 'z'\] \(27,000,000 cells\) is larger"):
        AIM(epsilon=1.0, delta=1e-6).plan(big)
    with pytest.raises(ParameterError, match="max_rounds"):
        AIM(epsilon=1.0, delta=1e-6, max_rounds=0).plan(XOR)


def test_a_user_workload_steers_the_rounds():
    data = xor_table(2000, 3)
    aim = AIM(epsilon=3.0, delta=1e-6, workload=[("a", "d"), ("b", "d")], insecure_seed=4)
    aim.fit(data, schema=XOR, ledger=UNTRACKED)
    allowed = set(downward_closure([("a", "d"), ("b", "d")]))
    assert all(tuple(r["clique"]) in allowed for r in aim.rounds_)


def test_cli_fits_aim(tmp_path):
    data, domain, out = tmp_path / "d.csv", tmp_path / "domain.json", tmp_path / "s.csv"
    xor_table(300, 5).to_csv(data, index=False)
    domain.write_text(json.dumps({"a": 2, "b": 2, "c": 2, "d": 3}))
    proc = subprocess.run([sys.executable, "-m", "dpsynth", "fit", "--data", str(data), "--schema", str(domain),
                           "--synthesizer", "aim", "--epsilon", "1", "--delta", "1e-6", "--rows", "50", "--out",
                           str(out), "--no-ledger", "--json", "--workload", "a,b,c;c,d", "--param", "max_rounds=6"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["synthesizer"] == "aim" and len(pd.read_csv(out)) == 50


def test_candidate_estimates_are_the_model_marginals():
    from dpsynth.synth import _inference, _pgm

    rng = np.random.default_rng(3)
    sizes = {"a": 2, "b": 3, "c": 4, "d": 2}
    domain = _pgm.make_domain(list(sizes), list(sizes.values()))
    measured = [("a", "b", "c"), ("c", "d"), ("a",), ("b",), ("c",), ("d",)]
    ms = [_pgm.linear_measurement(rng.integers(5, 50, int(np.prod([sizes[a] for a in cl]))).astype(float), cl, 1.0)
          for cl in measured]
    fit = _pgm.estimate_model(domain, ms, iters=2000, tol=None)
    model = _inference.Model(fit.potentials, sizes)
    allowed = downward_closure([("a", "b", "c"), ("b", "c", "d"), ("a", "c", "d"), ("d", "a", "b")])
    estimates = AIM._estimates(allowed, model, fit)
    assert list(estimates) == allowed
    for cl in allowed:
        np.testing.assert_allclose(estimates[cl], model.marginal(cl, fit.total).ravel(), rtol=2e-3, atol=1e-2)
