from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dpsynth.quality import fidelity, workload_errors
from dpsynth.schema import Schema


def test_large_workloads_use_a_fixed_seeded_sample_of_1000():
    rng = np.random.default_rng(1)
    sizes = [2] * 20  # C(20, 3) = 1140 three-way marginals
    real = rng.integers(0, 2, (200, 20))
    fake = rng.integers(0, 2, (200, 20))
    errs, sampled = workload_errors(real, fake, sizes, 3)
    again, _ = workload_errors(real, fake, sizes, 3)
    assert sampled and len(errs) == 1000
    np.testing.assert_array_equal(errs, again)
    two, sampled2 = workload_errors(real, fake, sizes, 2)
    assert not sampled2 and len(two) == 190


def test_fidelity_of_disjoint_tables_is_maximal():
    schema = Schema.from_domain({"a": 2, "b": 2})
    real = pd.DataFrame({"a": ["0"] * 10, "b": ["0"] * 10})
    fake = pd.DataFrame({"a": ["1"] * 5, "b": ["1"] * 5})
    report = fidelity(real, fake, schema)
    assert report["l1_1way"] == pytest.approx(2.0)
    assert report["l1_2way"] == pytest.approx(2.0)
    assert report["l1_3way"] is None and report["n_3way"] == 0
    assert report["tvd"] == {"a": 1.0, "b": 1.0}
