"""MST and AIM fit from a counting backend (marginal counts only): a table held by an engine never
enters pandas, and the seeded results are bit-identical to the fit on the DataFrame.

The engine here is a fake :class:`~dpsynth.marginals.backend.TableSource` wrapping a pandas table
(the encoding in numpy, the counts by :class:`~dpsynth.marginals.backend.CodesCounter`) that records
every request it answers. Its counter is a proxy, not a ``CodesCounter``, so the synthesizers take
the engine's road (MST: every 2-way marginal of the uncompressed domain, merged in numpy).
Deterministic (seeded noise): no false-failure probability.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.datasets import load_adult
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals import marginal_counts
from dpsynth.marginals.backend import CodesCounter, MarginalCounter, TableSource
from dpsynth.mechanisms import ExponentialSelection, GaussianCounts
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import Schema, dp_bins
from dpsynth.schema.encode import encode
from dpsynth.synth import AIM, MST
from dpsynth.synth import mst as mst_module
from dpsynth.synth.base import table_source
from dpsynth.synth.mst import compress_counts, compressed_pairs
from dpsynth.synth.plugin import PluginSynthesizer


class RecordingCounter:
    """A :class:`MarginalCounter` proxy that records every ``counts`` request (its cliques)."""

    def __init__(self, inner: CodesCounter, log: list[list[tuple[int, ...]]]):
        self.inner = inner
        self.schema = inner.schema
        self.log = log

    def counts(self, cliques: Sequence[Sequence[int]]) -> list[np.ndarray]:
        self.log.append([tuple(c) for c in cliques])
        return self.inner.counts(cliques)


class FakeSource:
    """A :class:`TableSource` over a pandas table, recording what it is asked."""

    engine = "fake"

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.calls: list[str] = []
        self.requests: list[list[tuple[int, ...]]] = []

    def validate(self, schema: Schema) -> None:
        self.calls.append("validate")
        encode(self.frame, schema)

    def below_counts(self, column: str, schema: Schema, grid: np.ndarray) -> tuple[np.ndarray, int]:
        self.calls.append(f"below_counts:{column}")
        return dp_bins.below_counts(self.frame[column], schema[column], schema, grid)

    def fingerprint(self, schema: Schema) -> str:
        self.calls.append("fingerprint")
        return hashlib.sha256(np.ascontiguousarray(encode(self.frame, schema)).tobytes()).hexdigest()

    def counter(self, schema: Schema) -> MarginalCounter:
        self.calls.append("counter")
        return RecordingCounter(CodesCounter(encode(self.frame, schema), schema), self.requests)


SMALL = Schema.from_dict({"version": 1, "columns": [
    {"name": "region", "kind": "categorical", "levels": ["north", "south", "east", "west"]},
    {"name": "plan", "kind": "categorical", "levels": ["basic", "plus", "pro"]},
    {"name": "churn", "kind": "categorical", "levels": ["no", "yes"]},
    {"name": "spend", "kind": "integer", "bounds": [0, 100000], "bins": {"dp_quantiles": 4}},
    {"name": "tenure", "kind": "integer", "bounds": [0, 120], "edges": [0, 12, 36, 60, 120]}]})


def small_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus"], n, p=[0.7, 0.3])
    return pd.DataFrame({"region": rng.choice(["north", "south", "east"], n), "plan": plan,
                         "churn": np.where(plan == "basic", rng.choice(["no", "yes"], n, p=[0.8, 0.2]), "no"),
                         "spend": rng.integers(0, 900, n), "tenure": rng.integers(0, 60, n)})


AIM_COLUMNS = ["age", "workclass", "education", "marital-status", "relationship", "sex", "hours-per-week"]


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, Schema]:
    data, schema = load_adult()
    return data.iloc[:3000].reset_index(drop=True), schema


def adult_columns(adult: tuple[pd.DataFrame, Schema], names: list[str]) -> tuple[pd.DataFrame, Schema]:
    data, schema = adult
    spec = schema.to_dict()
    return data[names], Schema.from_dict({**spec, "columns": [c for c in spec["columns"] if c["name"] in names]})


@pytest.fixture
def mechanism_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every noisy measurement and selection of a fit: (label, exact input, noisy output)."""
    log: list[tuple] = []
    gaussian, selection = GaussianCounts.__call__, ExponentialSelection.__call__

    def measured(self, counts, *, noise, odometer):
        out = gaussian(self, counts, noise=noise, odometer=odometer)
        log.append((self.label, np.array(counts, copy=True), np.array(out, copy=True)))
        return out

    def selected(self, scores, *, noise, odometer):
        out = selection(self, scores, noise=noise, odometer=odometer)
        log.append((self.label, list(scores), out))
        return out

    monkeypatch.setattr(GaussianCounts, "__call__", measured)
    monkeypatch.setattr(ExponentialSelection, "__call__", selected)
    return log


def assert_same_log(a: list[tuple], b: list[tuple]) -> None:
    assert [x[0] for x in a] == [x[0] for x in b]
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x[1:], y[1:], strict=True):
            if isinstance(u, np.ndarray):
                assert u.dtype == v.dtype and np.array_equal(u, v)
            else:
                assert u == v


def assert_same_tables(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def fit_both(make, data: pd.DataFrame, schema: Schema, log: list[tuple]):
    """The same seeded synthesizer fitted on the DataFrame and on the fake source over it."""
    frame = make().fit(data, schema=schema, ledger=UNTRACKED, dataset="t")
    frame_log = list(log)
    log.clear()
    source = FakeSource(data)
    counted = make().fit(source, schema=schema, ledger=UNTRACKED, dataset="t")
    return frame, frame_log, counted, list(log), source


MST_CASES = {
    "adult": (lambda: MST(epsilon=1.0, delta=1e-6, estimation_iters=300, insecure_seed=7), None),
    "small": (lambda: MST(epsilon=2.0, delta=1e-6, estimation_iters=200, insecure_seed=3), SMALL),
}


@pytest.mark.parametrize("case", sorted(MST_CASES))
def test_mst_from_counts_is_bit_identical(case, adult, mechanism_log):
    make, schema = MST_CASES[case]
    data, schema = adult if schema is None else (small_table(), schema)
    frame, frame_log, counted, counted_log, source = fit_both(make, data, schema, mechanism_log)
    assert_same_log(frame_log, counted_log)
    assert counted.edges_ == frame.edges_ and counted.compressed_sizes_ == frame.compressed_sizes_
    assert_same_tables(counted.compression_, frame.compression_)
    assert_same_tables(counted.marginals_, frame.marginals_)
    assert counted.total_estimate_ == frame.total_estimate_
    assert counted.schema_ == frame.schema_ and counted.privacy_events_ == frame.privacy_events_
    pd.testing.assert_frame_equal(counted.sample(500, random_state=5), frame.sample(500, random_state=5))
    # Two requests: the d 1-way marginals, then every pair (the selected pairs are not counted again).
    d = len(schema)
    assert source.requests == [[(i,) for i in range(d)], list(itertools.combinations(range(d), 2))]
    if case == "adult":
        assert frame.compression_, "the case should exercise the compression mapping"
    else:
        assert counted.schema_["spend"].edges_from == "dp_quantiles"
        assert [c for c in source.calls if c.startswith("below")] == ["below_counts:spend"]


AIM_CASES = {
    "adult": lambda: AIM(epsilon=1.0, delta=1e-6, max_rounds=16, estimation_iters=80, insecure_seed=11),
    "small": lambda: AIM(epsilon=2.0, delta=1e-6, max_rounds=14, estimation_iters=80, insecure_seed=5),
}


@pytest.mark.parametrize("case", sorted(AIM_CASES))
def test_aim_from_counts_is_bit_identical(case, adult, mechanism_log):
    data, schema = adult_columns(adult, AIM_COLUMNS) if case == "adult" else (small_table(), SMALL)
    frame, frame_log, counted, counted_log, source = fit_both(AIM_CASES[case], data, schema, mechanism_log)
    assert_same_log(frame_log, counted_log)
    assert len(frame.rounds_) >= 2 and counted.rounds_ == frame.rounds_ and counted.measured_ == frame.measured_
    assert_same_tables(counted.potentials_, frame.potentials_)
    assert counted.total_estimate_ == frame.total_estimate_
    assert counted.schema_ == frame.schema_ and counted.privacy_events_ == frame.privacy_events_
    pd.testing.assert_frame_equal(counted.sample(500, random_state=5), frame.sample(500, random_state=5))
    # One request: every 1-way marginal and every candidate of the default workload (all 3-way).
    names = counted.schema_.names
    expected = {tuple(sorted(c)) for k in (1, 2, 3) for c in itertools.combinations(range(len(names)), k)}
    assert len(source.requests) == 1 and len(source.requests[0]) == len(expected)
    assert {tuple(sorted(c)) for c in source.requests[0]} == expected


def test_the_road_reads_aggregates_in_order(tmp_path):
    """validate and fingerprint before the reservation, then the DP bins' counts, then the counter;
    the ledger records the same fingerprint as a fit on the DataFrame."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("t", ApproxDP(10.0, 1e-5))
    data = small_table()
    source = FakeSource(data)
    MST(epsilon=1.0, delta=1e-6, estimation_iters=50, insecure_seed=1).fit(source, schema=SMALL, ledger=ledger,
                                                                            dataset="t")
    MST(epsilon=1.0, delta=1e-6, estimation_iters=50, insecure_seed=1).fit(data, schema=SMALL, ledger=ledger,
                                                                            dataset="t")
    assert source.calls == ["validate", "fingerprint", "below_counts:spend", "counter"]
    first, second = ledger.statement("t").reservations
    assert first.input_sha256 == second.input_sha256 is not None
    assert [r.status for r in (first, second)] == ["completed", "completed"]


class BadSource(FakeSource):
    def validate(self, schema: Schema) -> None:
        self.calls.append("validate")
        raise DataError("column 'plan': a value outside the 3 declared levels in 2 rows")


def test_a_bad_table_costs_nothing(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("t", ApproxDP(10.0, 1e-5))
    source = BadSource(small_table())
    with pytest.raises(DataError, match="outside the 3 declared levels"):
        AIM(epsilon=1.0, delta=1e-6).fit(source, schema=SMALL, ledger=ledger, dataset="t")
    assert source.calls == ["validate"] and not source.requests
    assert ledger.statement("t").reservations == []


def test_synthesizers_that_train_on_rows_refuse_a_source_before_any_reservation(tmp_path):
    from dpsynth.synth.dpsgd import DPCTGAN

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("t", ApproxDP(10.0, 1e-5))
    schema = Schema.from_dict({**SMALL.to_dict(), "columns": [c for c in SMALL.to_dict()["columns"]
                                                              if c["name"] != "spend"]})
    source = FakeSource(small_table())
    with pytest.raises(ParameterError, match=r"trains on rows.*use the numpy engine") as err:
        DPCTGAN(epsilon=1.0, delta=1e-6, epochs=1).fit(source, schema=schema, ledger=ledger, dataset="t")
    assert "\n" not in str(err.value)
    assert source.calls == [] and ledger.statement("t").reservations == []
    assert PluginSynthesizer.fits_on_marginals is False and DPCTGAN.fits_on_marginals is False
    assert MST.fits_on_marginals and AIM.fits_on_marginals


def test_a_dataframe_is_never_taken_for_a_source():
    """A DataFrame whose columns carry the protocol's names still fits as a table in memory."""
    frame = pd.DataFrame({n: [1] for n in ("engine", "validate", "below_counts", "fingerprint", "counter")})
    assert isinstance(frame, TableSource)  # the runtime protocol check alone would be fooled
    assert table_source(frame) is None
    assert table_source(FakeSource(frame)) is not None


@pytest.mark.parametrize("seed", range(5))
def test_compressing_counts_equals_counting_compressed_codes(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(2, 9, size=3)]
    codes = np.stack([rng.integers(0, s, size=300) for s in sizes], axis=1)
    maps: list[np.ndarray | None] = [None] * 3
    for i in rng.choice(3, size=2, replace=False):
        keep = rng.random(sizes[i]) < 0.5
        m = np.full(sizes[i], int(keep.sum()), dtype=np.int64)
        m[keep] = np.arange(int(keep.sum()))
        maps[i] = m
    csizes = [int(m.max()) + 1 if m is not None else s for m, s in zip(maps, sizes, strict=True)]
    ccodes = np.stack([m[codes[:, i]] if m is not None else codes[:, i] for i, m in enumerate(maps)], axis=1)
    for pair in itertools.combinations(range(3), 2):
        got = compress_counts(marginal_counts(codes, list(pair), sizes), pair, sizes, maps, csizes)
        want = marginal_counts(ccodes, list(pair), csizes)
        assert got.dtype == want.dtype == np.int64 and np.array_equal(got, want)
    # the engine's road (one request, merged) and the in-memory road agree
    schema = Schema.from_domain({f"c{i}": s for i, s in enumerate(sizes)})
    mapping = {f"c{i}": m for i, m in enumerate(maps) if m is not None}
    pairs = list(itertools.combinations(range(3), 2))
    log: list[list[tuple[int, ...]]] = []
    engine = dict(compressed_pairs(RecordingCounter(CodesCounter(codes, schema), log), mapping, csizes, pairs))
    memory = dict(compressed_pairs(CodesCounter(codes, schema), mapping, csizes, pairs))
    assert log == [pairs] and list(engine) == list(memory) == pairs
    assert all(np.array_equal(engine[p], memory[p]) for p in engine)


def test_wide_pairs_take_more_requests_with_the_same_result(mechanism_log, monkeypatch):
    """Over REQUEST_CELLS the pairs are asked for in several requests; over KEPT_CELLS a selected
    pair is counted again: the fit is the same."""
    make, data = MST_CASES["small"][0], small_table()
    frame = make().fit(data, schema=SMALL, ledger=UNTRACKED, dataset="t")
    frame_log = list(mechanism_log)
    mechanism_log.clear()
    monkeypatch.setattr(mst_module, "REQUEST_CELLS", 40)
    monkeypatch.setattr(mst_module, "KEPT_CELLS", 30)
    source = FakeSource(data)
    counted = make().fit(source, schema=SMALL, ledger=UNTRACKED, dataset="t")
    assert_same_log(frame_log, mechanism_log)
    assert_same_tables(counted.marginals_, frame.marginals_)
    pairs = list(itertools.combinations(range(len(SMALL)), 2))
    asked = [c for request in source.requests[1:] for c in request]
    assert len(source.requests) > 3 and asked[:len(pairs)] == pairs
    assert all(sum(counted.schema_.sizes[a] * counted.schema_.sizes[b] for a, b in r) <= 40 or len(r) == 1
               for r in source.requests[1:])
    recounted = asked[len(pairs):]
    assert recounted and set(recounted) <= {(counted.schema_.names.index(a), counted.schema_.names.index(b))
                                            for a, b in counted.edges_}
