"""dpsynth.schema.infer: the DP schema inference (plan, hints, charging, bad input) and the loud
``read_schema_without_privacy`` opt-in.

Noise is seeded (deterministic); the assertions on DP outputs hold with overwhelming probability
for the parameters used (e.g. a value held by one row is released with probability below 1e-8),
and a fixed seed makes them reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.exceptions import BudgetExceededError, DataError, ParameterError, SchemaError, SchemaWithoutPrivacyWarning
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.accounting import epsilon_within, rho_within
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import encode, infer_hints, infer_schema, infer_steps, load_schema, read_schema_without_privacy
from dpsynth.schema import infer as inference

SECRET = "SECRET-PERSON-42"


def raw_table(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    job = rng.choice(["clerk", "nurse", "farmer", "?"], size=n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    job[7] = SECRET  # one person's unique value: must never become a level
    return pd.DataFrame(
        {
            "job": job,
            "age": rng.integers(18, 80, size=n).astype(str),
            "income": np.round(rng.lognormal(10, 0.7, size=n), 2).astype(str),
            "team": rng.choice(["a", "b"], size=n),
        }
    )


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    return ledger


# --------------------------------------------------------------------------- the plan


def tasks(header, hints=None):
    return infer_hints.parse_hints(header, hints, bins={"dp_quantiles": 8}).tasks


def test_plan_covers_the_worst_case_and_fits_the_budget():
    budget = ApproxDP(1.0, 1e-7)
    plan = inference.plan_inference(
        tasks(["a", "b", "c"]),
        budget,
        split_kinds=0.1,
        split_categories=0.6,
        split_bounds=0.3,
        split_delta_threshold=0.5,
    )
    labels = [e.label for e in plan.events()]
    assert labels == ["schema_kind"] * 3 + ["schema_levels"] + ["schema_bounds"] * 3
    assert plan.levels.max_partitions == 3
    assert 0 < plan.additive_delta <= 0.5e-7
    assert plan.rho <= rho_within(1.0, 1e-7, 0.5e-7) * (1 + 1e-12)
    # the (ε, δ) asked for holds: ρ-zCDP plus the thresholding's additive δ
    assert epsilon_within(plan.rho, 1e-7, plan.additive_delta) <= 1.0 + 1e-9
    shares = [plan.kinds.rho * 3, plan.levels.rho, plan.bounds.rho * 3]
    assert np.allclose(np.array(shares) / sum(shares), [0.1, 0.6, 0.3], rtol=1e-6)


def test_plan_leaves_out_what_the_hints_declare():
    hints = {
        "columns": [
            {"name": "a", "kind": "categorical", "levels": ["x", "y"]},
            {"name": "b", "kind": "categorical"},
            {"name": "c", "kind": "integer", "bounds": [0, 9]},
        ]
    }
    plan = inference.plan_inference(
        tasks(["a", "b", "c"], hints),
        ApproxDP(1.0, 1e-7),
        split_kinds=0.1,
        split_categories=0.6,
        split_bounds=0.3,
        split_delta_threshold=0.5,
    )
    assert [e.label for e in plan.events()] == ["schema_levels"]
    assert plan.levels.max_partitions == 1
    assert plan.rho == pytest.approx(rho_within(1.0, 1e-7, 0.5e-7), rel=1e-6)  # all of ρ goes to the levels
    numeric = inference.plan_inference(
        tasks(["c"], {"columns": [{"name": "c", "kind": "continuous"}]}),
        ApproxDP(1.0, 1e-7),
        split_kinds=0.1,
        split_categories=0.6,
        split_bounds=0.3,
        split_delta_threshold=0.5,
    )
    assert [e.label for e in numeric.events()] == ["schema_bounds"] and numeric.additive_delta == 0.0
    assert numeric.rho == pytest.approx(rho_within(1.0, 1e-7, 0.0), rel=1e-6)  # no thresholding: all of δ


def test_the_reservation_depends_on_the_header_only(ledger):
    first = raw_table(3000, seed=1)
    second = raw_table(500, seed=2).assign(age="x", income="7")  # other values, other kinds, other size
    infer_schema(first, epsilon=1.0, delta=1e-7, ledger=ledger, dataset="d", insecure_seed=1)
    infer_schema(second, epsilon=1.0, delta=1e-7, ledger=ledger, dataset="d", insecure_seed=1)
    a, b = ledger.statement("d").reservations
    assert a.events == b.events and a.rho == b.rho and a.additive_delta == b.additive_delta > 0


# --------------------------------------------------------------------------- the DP inference


def test_dp_schema_learns_kinds_levels_and_bounds_and_encodes_the_data(ledger, tmp_path):
    data = raw_table()
    schema = infer_schema(
        data, epsilon=2.0, delta=1e-7, ledger=ledger, dataset="d", hints={"missing_values": ["?"]}, insecure_seed=3
    )
    assert [c.kind for c in schema.columns] == ["categorical", "integer", "continuous", "categorical"]
    job = schema["job"]
    assert set(job.levels) == {"clerk", "nurse", "farmer"} and SECRET not in job.levels
    assert job.other == "<other>" and job.nullable
    assert set(schema["team"].levels) == {"a", "b"}
    low, high = schema["age"].bounds
    assert low <= 20 and 79 <= high <= 100 and schema["age"].dp_quantiles == 8
    low, high = schema["income"].bounds
    incomes = data["income"].astype(float)
    # on the log-scale grid (bins [4000, 5000), [5000, 6000) …), sparse end bins are cut off
    assert low <= incomes.quantile(0.05) and high >= incomes.quantile(0.95) and high <= 10 * incomes.max()
    # the data (with its unique value) encodes: the rare value goes to the other level
    codes = encode(data, schema)
    assert codes[7, 0] == job.other_code
    # provenance: how, how much, where it was charged
    (entry,) = ledger.statement("d").reservations
    prov = schema.provenance
    assert prov["method"] == "dp" and prov["ledger_entry"] == entry.id and prov["dataset"] == "d"
    assert prov["epsilon"] == 2.0 and prov["delta"] == 1e-7 and prov["insecure_seed"] == 3
    assert prov["rho"] == pytest.approx(entry.rho) and prov["additive_delta"] == pytest.approx(entry.additive_delta)
    assert schema.opt_ins == [] and entry.synthesizer == "schema_infer" and entry.status == "completed"
    # planned for the worst case (each open column categorical and numeric): 4 kinds, the levels of
    # up to 4 columns, 4 bounds; run: 4 kinds, the levels of 2, the bounds of 2. The reservation stays.
    assert len(entry.events) == 9 and entry.detail["events_run"] == 7
    assert entry.detail["spent_rho"] < entry.rho
    # written and read back unchanged
    path = inference.dump_schema(schema, tmp_path / "schema.yaml")
    again = load_schema(path)
    assert again == schema and again.provenance == schema.provenance
    assert load_schema(inference.dump_schema(schema, tmp_path / "schema.json")) == schema


def test_hints_declare_columns_kinds_and_missing_values(ledger):
    data = raw_table(2000)
    hints = {
        "name": "people",
        "missing_values": ["?"],
        "columns": [
            {"name": "team", "kind": "categorical", "levels": ["a", "b", "c"], "description": "declared"},
            {"name": "age", "kind": "integer", "bins": 4},
            {"name": "job", "kind": "categorical", "other": "OTHER", "nullable": False},
            {"name": "income", "kind": "continuous", "bounds": [0, 500000]},
        ],
    }
    schema = infer_schema(data, epsilon=2.0, delta=1e-7, ledger=ledger, dataset="d", hints=hints, insecure_seed=4)
    assert schema.name == "people" and schema.missing_values == ("?",)
    assert schema["team"].levels == ("a", "b", "c") and schema["team"].other is None  # as declared
    assert schema["income"].bounds == (0, 500000) and schema["income"].dp_quantiles == 8  # default bins added
    assert schema["age"].kind == "integer" and schema["age"].n_values == 4 and schema["age"].dp_quantiles is None
    assert schema["job"].other == "OTHER" and not schema["job"].nullable
    assert schema.provenance["columns"] == {"job": "dp", "age": "dp", "income": "declared", "team": "declared"}
    (entry,) = ledger.statement("d").reservations
    assert [e["label"] for e in entry.events] == ["schema_levels", "schema_bounds"]


def test_uniform_bins_and_few_integers(ledger):
    data = pd.DataFrame({"n": np.tile(["1", "2", "3"], 1000), "x": np.linspace(0, 50, 3000).astype(str)})
    schema = infer_schema(data, epsilon=2.0, delta=1e-7, ledger=UNTRACKED, bins=5, bin_edges="uniform", insecure_seed=2)
    assert schema["n"].kind == "integer" and schema["n"].bounds == (1, 4)  # one level per integer
    assert schema["n"].n_values == 4 and schema["n"].dp_quantiles is None
    assert schema["x"].kind == "continuous" and schema["x"].n_values == 5 and schema["x"].dp_quantiles is None


def test_kinds_and_bounds_are_post_processing_of_noisy_counts():
    assert infer_steps.decide_kind(np.array([1000, 0, 2]), 10.0) == "integer"
    assert infer_steps.decide_kind(np.array([600, 400, -5]), 10.0) == "continuous"
    assert infer_steps.decide_kind(np.array([1000, 0, 31]), 10.0) == "categorical"
    assert infer_steps.decide_kind(np.array([12, 0, 0]), 10.0) == "categorical"  # too few numbers to tell
    values = np.array(["1", "2.5", "x", "?", "inf", "", "-3"], dtype=object)
    counts = infer_steps.cell_counts(pd.Series(values), ["?", ""])
    assert counts.tolist() == [2, 1, 2]  # integers 1, -3; other number 2.5; text x, inf
    edges = inference.bounds_grid()
    assert edges[0] == -9e12 and edges[-1] == 1e13 and np.all(np.diff(edges) > 0) and 0.0 in edges
    hist = inference.bounds_histogram(np.array([17.0, 25.0, 89.0, 89.5, -0.5, 1e20]))
    assert hist.sum() == 6 and hist[-1] == 1  # beyond the grid: the outermost bin
    noisy = inference.bounds_histogram(np.repeat([17.0, 35.0, 60.0, 89.0], 100))
    noisy[3] += 30  # noise below 5σ in an empty bin far away is not taken for data
    assert inference.bounds_from_histogram(noisy, 10.0, 0.01) == (10.0, 90.0)
    assert inference.bounds_from_histogram(noisy, 10.0, 0.3) == (30.0, 70.0)  # a larger share is cut off
    assert inference.bounds_from_histogram(np.zeros(len(edges) - 1), 1.0, 0.01) is None


# --------------------------------------------------------------------------- bad input: nothing read, nothing charged


@pytest.fixture
def no_rows_read(monkeypatch):
    """Fail the test if the private rows are read (the header alone may be)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the private rows were read")

    monkeypatch.setattr("dpsynth.io.read_table", refuse)


@pytest.mark.parametrize(
    "override,error,message",
    [
        ({"epsilon": 0.0}, ParameterError, "epsilon (0.0) must be a finite number > 0"),
        ({"epsilon": math.nan}, ParameterError, "epsilon (nan) must be a finite number > 0"),
        ({"delta": 1.0}, ParameterError, "delta (1.0) must be in the open interval (0, 1)"),
        ({"split_kinds": 1.5}, ParameterError, "split_kinds (1.5) must be at most 1 (a share of the budget)"),
        ({"split_bounds": 0}, ParameterError, "split_bounds (0) must be a finite number > 0"),
        ({"split_delta_threshold": 1.0}, ParameterError, "split_delta_threshold (1.0) must be below 1"),
        ({"bins": 0}, ParameterError, "bins (0) must be an integer > 0"),
        ({"bin_edges": "quantiles"}, ParameterError, "bin_edges ('quantiles') must be one of dp_quantiles, uniform"),
        ({"bounds_quantile": 0.5}, ParameterError, "bounds_quantile (0.5) must be below 0.5"),
        ({"ledger": None}, ParameterError, "ledger (None) must be a dpsynth Ledger"),
        ({"dataset": "no such"}, ParameterError, "dataset ('no such') must be 1–128 letters"),
        ({"dataset": "unknown"}, Exception, "dataset 'unknown' is not registered"),
        (
            {"hints": {"columns": [{"name": "salary", "kind": "integer"}]}},
            SchemaError,
            "column 'salary' is not in the data (its columns: job, age, income, team)",
        ),
        (
            {"hints": {"columns": [{"name": "age", "kind": "datetime"}]}},
            SchemaError,
            "column 'age': a datetime column needs declared bounds",
        ),
        (
            {"hints": {"columns": [{"name": "age", "kind": "integer", "bins": {"dp_quantiles": 1}}]}},
            SchemaError,
            "column 'age': bins ({'dp_quantiles': 1}) must be",
        ),
        ({"hints": {"columns": [{"name": "age", "levels": ["1"]}]}}, SchemaError, "give the kind to hint ['levels']"),
        ({"hints": {"columns": [{"name": "age"}, {"name": "age"}]}}, SchemaError, "column 'age' is hinted twice"),
        ({"hints": "/no/such/hints.yaml"}, SchemaError, "hints file '/no/such/hints.yaml' does not exist"),
        ({"epsilon": 50.0}, BudgetExceededError, "exceeds the remaining rho="),
    ],
)
def test_bad_input_reads_and_charges_nothing(tmp_path, ledger, no_rows_read, override, error, message):
    path = tmp_path / "data.csv"
    raw_table(50).to_csv(path, index=False)
    args = {"epsilon": 1.0, "delta": 1e-7, "ledger": ledger, "dataset": "d", **override}
    with pytest.raises(error) as info:
        infer_schema(path, **args)
    assert message in str(info.value)
    assert ledger.statement("d").reservations == [] and ledger.verify().entries == 1


def test_unreadable_rows_charge_nothing(tmp_path, ledger):
    path = tmp_path / "data.csv"
    path.write_text('job,age\nclerk,3\n"unclosed,4\n')
    with pytest.raises(DataError, match="cannot be read as csv"):
        infer_schema(path, epsilon=1.0, delta=1e-7, ledger=ledger, dataset="d")
    with pytest.raises(DataError, match="does not exist"):
        infer_schema(tmp_path / "absent.csv", epsilon=1.0, delta=1e-7, ledger=ledger, dataset="d")
    with pytest.raises(DataError, match="column names must be distinct"):
        infer_schema(pd.DataFrame([[1, 2]], columns=["a", "a"]), epsilon=1.0, delta=1e-7, ledger=ledger, dataset="d")
    with pytest.raises(DataError, match="has no rows"):
        infer_schema(raw_table(50).iloc[:0], epsilon=1.0, delta=1e-7, ledger=ledger, dataset="d")
    assert ledger.statement("d").reservations == []


def test_untracked_inference_warns():
    from dpsynth.privacy.ledger import UntrackedPrivacyWarning

    with pytest.warns(UntrackedPrivacyWarning):
        schema = infer_schema(raw_table(500), epsilon=1.0, delta=1e-7, ledger=UNTRACKED, insecure_seed=1)
    assert schema.provenance["ledger_entry"] is None and schema.provenance["secure_noise"] is False


# --------------------------------------------------------------------------- the loud opt-in


def test_reading_a_schema_without_privacy_is_a_loud_named_opt_in(tmp_path):
    data = raw_table(300)
    with pytest.warns(SchemaWithoutPrivacyWarning, match="the schema was read from the data without privacy"):
        schema = read_schema_without_privacy(data, hints={"missing_values": ["?"]})
    assert schema.provenance == {"method": "public", "opt_in": "schema_read_from_data_without_privacy"}
    assert schema.opt_ins == ["schema_read_from_data_without_privacy"]
    assert SECRET in schema["job"].levels  # that is exactly the leak the opt-in names
    ages = data["age"].astype(int)
    assert schema["age"].kind == "integer" and schema["age"].bounds == (ages.min(), ages.max())
    assert schema["income"].kind == "continuous" and schema["job"].nullable and not schema["team"].nullable
    assert load_schema(inference.dump_schema(schema, tmp_path / "s.yaml")).opt_ins == schema.opt_ins
    encode(data, schema)
    # a DP inference from hints that carry the opt-in still carries it
    with pytest.warns(SchemaWithoutPrivacyWarning):
        public = read_schema_without_privacy(data[["team", "age"]])
    hinted = infer_schema(data, epsilon=1.0, delta=1e-7, ledger=UNTRACKED, hints=public, insecure_seed=1)
    assert hinted.opt_ins == ["schema_read_from_data_without_privacy"] and hinted.provenance["method"] == "dp"
