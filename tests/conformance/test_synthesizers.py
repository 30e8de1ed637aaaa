"""One conformance suite for every registered synthesizer (the estimator contract + privacy plan)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.exceptions import NotFittedError, ParameterError
from dpsynth.privacy import total_rho
from dpsynth.privacy.accounting import composed_epsilon
from dpsynth.privacy.events import total_rdp
from dpsynth.synth import registered

SYNTHESIZERS = sorted(registered())


FAST = {
    "aim": {"max_rounds": 8},  # fewer, larger rounds keep the suite fast; same code path
    # DP-SGD: small networks and 10 Poisson steps, same code path as a release
    "dpctgan": {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "generator_dims": (16,),
                "discriminator_dims": (16,), "generator_batch_size": 32, "device": "cpu"},
    "dpvae": {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,),
              "device": "cpu"},
}


def make(name: str, **kwargs):
    params = {**FAST.get(name, {}), **kwargs}
    return registered()[name](epsilon=params.pop("epsilon", 1.0), delta=params.pop("delta", 1e-6), **params)


def spends_exactly_its_plan(synth) -> bool:
    """Non-adaptive synthesizers spend exactly their planned events; adaptive ones (AIM) reserve
    a zCDP filter and record the events they actually ran."""
    return not getattr(synth, "adaptive", False)


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_init_only_stores_parameters(name):
    synth = make(name, epsilon=float("nan"))  # validation happens in plan/fit, as in scikit-learn
    assert synth.get_params()["epsilon"] != synth.get_params()["epsilon"]  # NaN stored as given
    assert not [k for k in vars(synth) if k.endswith("_")]


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_privacy_parameters_are_keyword_only(name):
    params = inspect.signature(registered()[name].__init__).parameters
    for p in ("epsilon", "delta", "insecure_seed"):
        assert params[p].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_sample_before_fit_raises(name):
    with pytest.raises(NotFittedError):
        make(name).sample(10)


@pytest.mark.parametrize("name", SYNTHESIZERS)
@pytest.mark.parametrize(
    "epsilon,delta,message",
    [
        (0.0, 1e-6, "epsilon (0.0) must be a finite number > 0"),
        (-1.0, 1e-6, "epsilon (-1.0) must be a finite number > 0"),
        (float("inf"), 1e-6, "epsilon (inf) must be a finite number > 0"),
        (float("nan"), 1e-6, "epsilon (nan) must be a finite number > 0"),
        (1.0, 0.0, "delta (0.0) must be in the open interval (0, 1)"),
        (1.0, 1.0, "delta (1.0) must be in the open interval (0, 1)"),
    ],
)
def test_bad_privacy_parameters(name, epsilon, delta, message, small_schema):
    with pytest.raises(ParameterError) as err:
        make(name, epsilon=epsilon, delta=delta).plan(small_schema)
    assert str(err.value) == message


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_plan_fits_the_budget_and_is_what_fit_spends(name, small_schema, small_data):
    synth = make(name, epsilon=1.0, delta=1e-6, insecure_seed=3)
    planned = synth.plan(small_schema)
    rdp = total_rdp(planned)
    if rdp is None:  # zCDP plans: ρ of the target
        rho = synth.zcdp_budget().rho
        assert total_rho(planned) <= rho * (1 + 1e-12)
        assert total_rho(planned) >= rho * (1 - 1e-6)  # the budget is used, not wasted
    else:  # plans with a Rényi-DP curve (DP-SGD): the composed ε of the target
        epsilon = composed_epsilon(total_rho(planned), rdp.orders, rdp.epsilons, 1e-6)
        assert epsilon <= 1.0
        assert epsilon >= 1.0 * (1 - 1e-4)  # the budget is used, not wasted
    assert synth.fit(small_data, schema=small_schema, ledger=UNTRACKED) is synth
    if spends_exactly_its_plan(synth):
        assert [e.to_dict() for e in synth.privacy_events_] == [e.to_dict() for e in planned]
        assert synth.privacy_spent_.rho == pytest.approx(total_rho(planned), rel=1e-12)
    else:
        assert synth.privacy_spent_.rho <= total_rho(planned) * (1 + 1e-12)
        assert synth.privacy_spent_.rho >= total_rho(planned) * (1 - 1e-6)  # an adaptive run uses it all
    assert synth.privacy_spent_.rho == pytest.approx(total_rho(synth.privacy_events_), rel=1e-12)


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_plan_is_data_independent(name, small_schema, small_data):
    a = make(name, insecure_seed=1).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    b = make(name, insecure_seed=1).fit(small_data.iloc[:50], schema=small_schema, ledger=UNTRACKED)
    assert [e.to_dict() for e in a.plan(small_schema)] == [e.to_dict() for e in b.plan(small_schema)]
    if spends_exactly_its_plan(a):
        assert [e.to_dict() for e in a.privacy_events_] == [e.to_dict() for e in b.privacy_events_]


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_sample_has_schema_columns_and_values(name, small_schema, small_data):
    synth = make(name, insecure_seed=5).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    out = synth.sample(123)
    assert list(out.columns) == small_schema.names
    assert len(out) == 123
    assert set(out["color"].dropna()) <= {"red", "green", "blue"}
    assert set(out["size"]) <= {"S", "M", "L", "XL"}
    assert out["age"].between(0, 99).all()
    assert out["score"].between(0.0, 1.0).all()


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_seeded_fit_is_reproducible_and_marked_insecure(name, small_schema, small_data):
    a = make(name, insecure_seed=11).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    b = make(name, insecure_seed=11).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    pd.testing.assert_frame_equal(a.sample(50), b.sample(50))
    assert a.secure_noise_ is False


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_default_noise_is_secure(name, small_schema, small_data):
    """Secure by default, DP-SGD included (issue 22: its noise and sampling from a ChaCha20 keystream keyed
    from os.urandom; tests/privacy/test_secure_noise.py checks that nothing is drawn from torch), and every
    synthesizer names its noise source; seeded fits say so."""
    synth = make(name).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert synth.secure_noise_ is True
    assert isinstance(synth.noise_source_, str) and "seeded" not in synth.noise_source_
    seeded = make(name, insecure_seed=5).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert seeded.secure_noise_ is False and "seeded" in seeded.noise_source_


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_sample_rows_validated(name, small_schema, small_data):
    synth = make(name, insecure_seed=2).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    for bad in (0, -3, 2.5):
        with pytest.raises(ParameterError):
            synth.sample(bad)


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_refit_replaces_state(name, small_schema, small_data):
    synth = make(name, insecure_seed=4).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    first = synth.privacy_events_
    synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert len(synth.privacy_events_) == len(first)
    assert np.isfinite(synth.privacy_spent_.rho)


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_fit_charges_the_ledger_exactly_the_plan(name, small_schema, small_data, tmp_path):
    from dpsynth.privacy import ApproxDP
    from dpsynth.privacy.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    synth = make(name, insecure_seed=8).fit(small_data, schema=small_schema, ledger=ledger, dataset="d")
    (entry,) = ledger.statement("d").reservations
    assert entry.id == synth.ledger_entry_ and entry.status == "completed"
    assert entry.rho == pytest.approx(total_rho(synth.plan(small_schema)), rel=1e-12)  # the reservation
    assert synth.privacy_spent_.rho <= entry.rho * (1 + 1e-12)
    assert entry.synthesizer == name and len(entry.input_sha256) == 64
    # a declared schema carries no opt-in, and every report says so
    assert entry.opt_ins == [] and entry.detail["opt_ins"] == [] and synth.privacy_statement()["opt_ins"] == []


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_a_schema_read_without_privacy_is_carried_by_every_report(name, small_schema, small_data, tmp_path):
    import dataclasses

    from dpsynth.exceptions import SchemaWithoutPrivacyWarning
    from dpsynth.privacy import ApproxDP
    from dpsynth.privacy.ledger import Ledger

    public = dataclasses.replace(
        small_schema, provenance={"method": "public", "opt_in": "schema_read_from_data_without_privacy"}
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    with pytest.warns(SchemaWithoutPrivacyWarning, match="schema_read_from_data_without_privacy"):
        synth = make(name, insecure_seed=8).fit(small_data, schema=public, ledger=ledger, dataset="d")
    opt_ins = ["schema_read_from_data_without_privacy"]
    assert synth.opt_ins_ == opt_ins and synth.privacy_statement()["opt_ins"] == opt_ins
    (entry,) = ledger.statement("d").reservations
    assert entry.opt_ins == opt_ins and entry.detail["opt_ins"] == opt_ins
    assert ledger.statement("d").to_dict()["entries"][0]["opt_ins"] == opt_ins


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_overdraft_is_refused_before_anything_is_fitted(name, small_schema, small_data, tmp_path):
    from dpsynth.exceptions import BudgetExceededError
    from dpsynth.privacy import ApproxDP
    from dpsynth.privacy.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(0.01, 1e-6))
    synth = make(name, epsilon=1.0)
    with pytest.raises(BudgetExceededError, match="exceeds the remaining"):
        synth.fit(small_data, schema=small_schema, ledger=ledger, dataset="d")
    assert not [k for k in vars(synth) if k.endswith("_")]
    assert ledger.statement("d").reservations == []


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_fit_without_a_ledger_is_refused_unless_untracked(name, small_schema, small_data):
    from dpsynth.privacy.ledger import UntrackedPrivacyWarning

    with pytest.raises(ParameterError, match="must be a dpsynth Ledger"):
        make(name).fit(small_data, schema=small_schema)
    with pytest.warns(UntrackedPrivacyWarning, match="WITHOUT a privacy ledger"):
        make(name, insecure_seed=1).fit(small_data, schema=small_schema, ledger=UNTRACKED)


BINNING = {"mst", "aim"}  # marginal synthesizers: numeric columns are binned, so DP quantile bins are spent


@pytest.fixture
def raw_schema():
    """A raw-table schema whose preprocessing is DP: quantile bins chosen with DP, and a categorical
    column whose rare values fall into an explicit ``other`` level (as `dpsynth schema infer` writes)."""
    from dpsynth.schema import Schema

    return Schema.from_dict({"version": 1, "columns": [
        {"name": "city", "kind": "categorical", "levels": ["north", "south"], "other": "<other>"},
        {"name": "income", "kind": "continuous", "bounds": [0, 100000], "bins": {"dp_quantiles": 4}},
        {"name": "age", "kind": "integer", "bounds": [18, 90], "bins": 6},
    ]})


def raw_table(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["north", "south", "east-rare", "west-rare"], size=n, p=[0.5, 0.4, 0.05, 0.05])
    income = rng.lognormal(10, 0.5, n).clip(0, 100000).round(2)
    return pd.DataFrame({"city": city, "income": income.astype(str), "age": rng.integers(18, 91, n).astype(str)})


@pytest.mark.parametrize("name", SYNTHESIZERS)
def test_dp_preprocessing_is_planned_reserved_and_spent(name, raw_schema, tmp_path):
    from dpsynth.privacy import ApproxDP
    from dpsynth.privacy.ledger import Ledger

    plan = make(name).plan(raw_schema)
    assert [e.to_dict() for e in plan] == [e.to_dict() for e in make(name).plan(raw_schema)]  # data-independent
    quantiles = [e for e in plan if e.label == "dp_quantile"]
    if name in BINNING:
        assert len(quantiles) == 3  # K − 1 inner edges, each an exponential-mechanism quantile
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    synth = make(name, insecure_seed=5).fit(raw_table(1), schema=raw_schema, ledger=ledger, dataset="d")
    (entry,) = ledger.statement("d").reservations
    assert entry.rho == pytest.approx(total_rho(plan), rel=1e-12)
    spent = [e for e in synth.privacy_events_ if e.label == "dp_quantile"]
    assert [e.to_dict() for e in spent] == [e.to_dict() for e in quantiles]
    if name in BINNING:
        assert synth.schema_["income"].edges_from == "dp_quantiles"
    out = synth.sample(200)
    assert set(out["city"]) <= {"north", "south", "<other>"}  # rare values were never learned
    assert pd.to_numeric(out["income"]).between(0, 100000).all()
    assert pd.to_numeric(out["age"]).between(18, 90).all()
