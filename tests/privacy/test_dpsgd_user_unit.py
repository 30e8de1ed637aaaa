"""Person-level DP-SGD (``dpvae``, ``dpctgan`` at a user unit: one person with up to K rows).

The analysis needs three things, each checked on the code that runs:

* the clipped unit is a PERSON: a step's sum is Σ_people clip_C(Σ_{person's rows} g_i), so adding
  a person moves it by at most C, even when the person's K rows all push the same way (a per-row
  clip would let them move it by K·C); checked on the step code directly, and on one step of a
  real fit with a person of K identical rows added to a batch, for both generators; the mutant that
  clips each row instead is caught by the same checks;
* the Poisson sample is over people: a person's rows are all in a step's batch or none are, and the
  people sampled are exactly Opacus's draw ``torch.rand(P, generator) < q`` from the fit's sampling
  generator at the planned q; a row-level sampler (the mutant) splits people and is caught;
* the accounting: the reserved DP-SGD event is the subsampled Gaussian at q over people (the same
  calibration as at the row unit), the noisy row count has L2 sensitivity K, and the ledger records
  exactly these events and the unit.

Deterministic (seeded generators, CPU, one thread): no false-failure probability.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from dpsynth import UNTRACKED, PrivacyUnit  # noqa: E402
from dpsynth.exceptions import ParameterError  # noqa: E402
from dpsynth.privacy.budgets import ApproxDP  # noqa: E402
from dpsynth.privacy.ledger import Ledger  # noqa: E402
from dpsynth.synth.dpsgd import DPCTGAN, DPVAE, accounting, clipping, ctgan, loop, vae  # noqa: E402
from dpsynth.synth.dpsgd.randomness import make_randomness  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning"),
              pytest.mark.filterwarnings("ignore::dpsynth.exceptions.InsecureNoiseWarning")]

K = 4
CLIP = 0.01  # small: every row's gradient is longer than C, so a per-row clip reaches C per row
SMALL_VAE = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,),
             "device": "cpu", "max_grad_norm": CLIP}
SMALL_CTGAN = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "generator_dims": (16, 16),
               "discriminator_dims": (16,), "generator_batch_size": 16, "device": "cpu", "max_grad_norm": CLIP}


def people_table(small_data: pd.DataFrame) -> pd.DataFrame:
    """396 rows of people with 1-3 rows each, then one person ``x`` with K identical rows (the last
    rows of the table, so the only person with K rows)."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 4, size=396)
    keys = np.repeat(np.arange(len(sizes)), sizes)[:396]
    base = small_data.iloc[:396].assign(pid=[f"p{k}" for k in keys])
    same = pd.concat([small_data.iloc[[396]]] * K).assign(pid="x")
    return pd.concat([base, same], ignore_index=True)


@pytest.fixture
def user_schema(small_schema):
    return small_schema.with_unit(PrivacyUnit.users("pid", max_rows=K))


def _distance(a, b) -> float:
    return math.sqrt(sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b, strict=True)))


def _per_row_mutant(monkeypatch):
    """The mutant: every row its own person, i.e. each ROW's gradient clipped to C."""
    real = clipping.sum_per_person

    def per_row(optimizer, people, n_people):
        real(optimizer, torch.arange(people.shape[0]), people.shape[0])

    monkeypatch.setattr(clipping, "sum_per_person", per_row)


# -- (a) the per-person clipped sum ---------------------------------------------------------------

def _step_sum(people: np.ndarray, chosen: list[int]) -> list[torch.Tensor]:
    """The clipped sum (before noise) that Opacus's optimizer forms for the people ``chosen`` of a
    batch, through the fit's own parts: :func:`loop.private_parts` (hooks, per-person loader) and
    :func:`clipping.dp_backward`. Rows are 3-vectors; every row of person 0 is the same, so their
    gradients point exactly the same way."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.ones((len(people), 3))
    x[people != 0] = torch.linspace(-1, 1, int((people != 0).sum()) * 3).reshape(-1, 3)
    private, optimizer, loader = loop.private_parts(
        model, x, learning_rate=0.1, betas=(0.9, 0.999), weight_decay=0.0, noise_multiplier=1.0,
        max_grad_norm=CLIP, sample_rate=0.5, randomness=make_randomness("cpu", insecure_seed=1, secure_mode=None),
        clipping="hooks", people=people)
    assert isinstance(loader, loop.PersonPoissonLoader)
    batch, local = loader.batch(torch.as_tensor(chosen))
    loss = (private(batch) ** 2).sum(dim=1) * 100.0  # per row; each row's gradient is far longer than C
    clipping.dp_backward(private, optimizer, loss, people=local)
    optimizer.clip_and_accumulate()  # Opacus's clipping, exactly as in optimizer.step(), before the noise
    return [p.summed_grad.detach().clone() for p in optimizer.params]


def _person_moves_the_sum_by(people: np.ndarray) -> float:
    return _distance(_step_sum(people, [0, 1, 2]), _step_sum(people, [1, 2])) / CLIP


def test_a_person_of_k_aligned_rows_moves_the_step_sum_by_at_most_c(monkeypatch):
    """Person 0 has K identical rows (gradients exactly aligned, each far above C): adding them to
    a step moves the clipped sum by C (their summed gradient clipped), not K·C. The mutant that
    clips per row moves it by K·C and fails the same bound."""
    people = np.array([1, 0, 2, 0, 0, 1, 0], dtype=np.int64)  # person 0's rows interleaved with others
    moved = _person_moves_the_sum_by(people)
    assert moved <= 1 + 1e-5 and moved == pytest.approx(1.0, rel=1e-4)
    _per_row_mutant(monkeypatch)
    mutant = _person_moves_the_sum_by(people)
    assert mutant == pytest.approx(K, rel=1e-4) and mutant > 1 + 1e-5  # the bound above catches it


def _one_step(module, cls, params, data, schema, monkeypatch, *, with_x: bool):
    """Fit on ONE batch: the first 30 people, and person ``x`` (K identical rows, the last rows)
    when ``with_x``; what the step saw and the clipped sum Opacus's optimizer formed before noise."""
    from opacus.optimizers import DPOptimizer

    seen: dict = {}
    real_clip = DPOptimizer.clip_and_accumulate

    def clip_and_accumulate(self):
        real_clip(self)
        seen.setdefault("sum", [p.summed_grad.detach().clone() for p in self.params])

    def observe(model):
        def record(mod, args):
            if mod.training and torch.is_grad_enabled() and "inputs" not in seen:
                seen["inputs"] = [a.detach().clone() for a in args]
        model.register_forward_pre_hook(record)

    def one_batch(loader, budget):
        sizes = torch.bincount(loader.people)
        (x,) = (sizes == K).nonzero().reshape(-1).tolist()  # the only person with K rows
        assert x == loader.n_people - 1 and bool((loader.rows_of(torch.tensor([x])) >= loader.people.shape[0] - K)
                                                 .all())
        chosen = list(range(30)) + ([x] if with_x else [])
        seen["rows"] = int(loader.rows_of(torch.as_tensor(chosen)).shape[0])
        yield loader.batch(torch.as_tensor(chosen))

    monkeypatch.setattr(DPOptimizer, "clip_and_accumulate", clip_and_accumulate)
    monkeypatch.setattr(module, "person_batches", one_batch)
    synth = cls(epsilon=1.0, delta=1e-6, insecure_seed=11, **params)
    with synth.observe_training(observe):
        synth.fit(data, schema=schema, ledger=UNTRACKED)
    assert synth.dpsgd_["steps_taken"] == 1 and synth.dpsgd_["clipped"] == "person's summed gradient"
    return seen


def _x_moves_the_sum_by(module, cls, params, data, schema, monkeypatch) -> float:
    small = _one_step(module, cls, params, data, schema, monkeypatch, with_x=False)
    large = _one_step(module, cls, params, data, schema, monkeypatch, with_x=True)
    n = small["rows"]
    assert large["rows"] == n + K
    for a, b in zip(small["inputs"], large["inputs"], strict=True):  # the other rows' inputs are the same
        torch.testing.assert_close(b[:n], a, rtol=0, atol=0)
    return _distance(small["sum"], large["sum"]) / CLIP


@pytest.mark.parametrize("module,cls,params", [(vae, DPVAE, SMALL_VAE), (ctgan, DPCTGAN, SMALL_CTGAN)],
                         ids=["dpvae", "dpctgan"])
def test_adding_a_person_to_a_real_step_moves_its_clipped_sum_by_at_most_c(module, cls, params, small_data,
                                                                          user_schema, monkeypatch):
    """One DP step of a real fit, on the first 30 people with and without person ``x`` (K
    identical rows; in DP-CTGAN K (real, fake) pairs): the other rows' inputs are unchanged and
    the clipped sum moves by at most C. With per-row clipping (the mutant) the same check fails:
    ``x``'s K rows move it by more than C."""
    data = people_table(small_data)
    moved = _x_moves_the_sum_by(module, cls, params, data, user_schema, monkeypatch)
    assert moved <= 1 + 1e-5, f"adding one person moved the clipped sum by {moved:.3f}·C"
    _per_row_mutant(monkeypatch)
    mutant = _x_moves_the_sum_by(module, cls, params, data, user_schema, monkeypatch)
    assert mutant > 1.5, f"the per-row mutant moved the clipped sum by only {mutant:.3f}·C"


# -- (b) Poisson sampling over people -------------------------------------------------------------

def _whole_people(rows: torch.Tensor, people: torch.Tensor) -> bool:
    """Whether the rows ``rows`` are every row of the people they touch."""
    touched = torch.zeros(int(people.max()) + 1, dtype=torch.bool)
    touched[people[rows]] = True
    return int(touched[people].sum()) == int(rows.shape[0]) and len(set(rows.tolist())) == rows.shape[0]


def test_a_step_samples_people_with_all_their_rows_from_the_fit_generator():
    """60 people of 1-4 rows, interleaved in the table: every batch of the person loader holds all
    the rows of the people it samples, and those people are exactly Opacus's Poisson draw
    ``torch.rand(P, generator) < q`` from the same seeded generator. Opacus's row-level sampler
    (the mutant) splits people, which the same check sees."""
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    rng = np.random.default_rng(0)
    people = rng.permutation(np.repeat(np.arange(60), rng.integers(1, 5, size=60)))
    matrix = torch.arange(len(people), dtype=torch.float32)[:, None]  # row i holds i
    q = 0.3
    loader = loop.PersonPoissonLoader(matrix, people, sample_rate=q, generator=torch.Generator().manual_seed(5))
    replay = torch.Generator().manual_seed(5)
    labels = torch.from_numpy(people)
    sizes = []
    for _ in range(10):  # 10 passes of 1/q steps
        for batch, local in loader:
            mask = torch.rand(60, generator=replay) < q
            rows = batch[:, 0].to(torch.int64)
            assert _whole_people(rows, labels)
            assert torch.equal(torch.unique(labels[rows]), mask.nonzero().reshape(-1))
            assert torch.equal(local, torch.unique(labels[rows], return_inverse=True)[1])
            sizes.append(int(mask.sum()))
    assert len(sizes) == 10 * int(1 / q) and 0 < min(sizes) and max(sizes) < 60
    rows_sampler = UniformWithReplacementSampler(num_samples=len(people), sample_rate=q,
                                                 generator=torch.Generator().manual_seed(5))
    assert not all(_whole_people(torch.as_tensor(b, dtype=torch.int64), labels) for b in rows_sampler)


def test_a_fit_at_the_user_unit_samples_whole_people_at_rate_q(small_data, user_schema, monkeypatch):
    """In a real DP-VAE fit every step's batch is the people of Opacus's draw at the planned q from
    the fit's sampling generator (``insecure_seed`` seeds it), with all their rows."""
    recorded = []
    real_rows_of = loop.PersonPoissonLoader.rows_of

    def rows_of(self, chosen):
        rows = real_rows_of(self, chosen)
        recorded.append((self.people, self.n_people, chosen.clone(), rows.clone()))
        return rows

    monkeypatch.setattr(loop.PersonPoissonLoader, "rows_of", rows_of)
    synth = DPVAE(epsilon=1.0, delta=1e-6, insecure_seed=4, **SMALL_VAE).fit(
        people_table(small_data), schema=user_schema, ledger=UNTRACKED)
    assert len(recorded) == synth.dpsgd_["steps_taken"] == 10
    replay = torch.Generator().manual_seed(4)  # make_randomness: the sampling generator is seeded with the seed
    for people, n_people, chosen, rows in recorded:
        assert _whole_people(rows, people)
        assert torch.equal(chosen, (torch.rand(n_people, generator=replay) < 0.1).nonzero().reshape(-1))
        assert torch.equal(torch.unique(people[rows]), chosen)


# -- (c) the plan, the accounting and the ledger --------------------------------------------------

def test_the_user_unit_plan_is_the_subsampled_gaussian_over_people_and_the_ledger_records_it(
        small_schema, user_schema, small_data, tmp_path):
    """The plan at the user unit: the row count's discrete Gaussian has L2 sensitivity K (scale K
    times the row unit's, same ρ), and the DP-SGD event is the subsampled Gaussian at the planned
    rate q, now over people, with the same σ and steps as at the row unit. The fit spends exactly
    these events, Opacus's ε is computed at q for the steps taken, and the ledger records the
    events, the unit and the record."""
    # without the DP marginals (on by default; their sensitivity at the unit is checked below)
    params = {**SMALL_VAE, "max_grad_norm": 1.0, "split_marginals": 0.0}
    rows_plan = DPVAE(epsilon=1.0, delta=1e-6, **params).plan(small_schema)
    plan = DPVAE(epsilon=1.0, delta=1e-6, **params).plan(user_schema)
    assert [e.label for e in plan] == ["row_count", "dp_sgd"]
    assert plan[0].l2_sensitivity == K and plan[0].scale == pytest.approx(K * rows_plan[0].scale, rel=1e-12)
    assert plan[0].rho == pytest.approx(rows_plan[0].rho, rel=1e-9)
    assert (plan[1].sample_rate, plan[1].steps) == (0.1, 10) and plan[1] == rows_plan[1]
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("people", ApproxDP(3.0, 1e-6), unit=f"user:{K}")
    synth = DPVAE(epsilon=1.0, delta=1e-6, insecure_seed=2, **params).fit(
        people_table(small_data), schema=user_schema, ledger=ledger, dataset="people")
    assert synth.privacy_events_ == plan
    record = synth.dpsgd_
    assert (record["unit"], record["sampled"], record["clipping"]) == (f"user:{K}", "people", "hooks")
    assert record["sample_rate"] == 0.1 and record["steps_taken"] == 10
    sigma = plan[1].noise_multiplier
    assert record["opacus_epsilon_rdp"] == accounting.opacus_epsilons(sigma, 0.1, 10, 1e-6)["rdp"] <= 1.0
    statement = ledger.statement("people")
    assert statement.unit == f"user:{K}"
    (entry,) = statement.reservations
    assert entry.status == "completed" and len(entry.events) == 2
    for stored, event in zip(entry.events, plan, strict=True):  # the curve is stored as the ledger's rdp
        assert {k: v for k, v in stored.items() if k not in ("orders", "rdp_values")} == \
            {k: v for k, v in event.to_dict().items() if k not in ("orders", "rdp_values")}
    assert entry.rdp["rdp"] == pytest.approx(list(plan[1].rdp_values), rel=1e-12)
    assert entry.detail["dpsgd"]["sample_rate"] == 0.1 and entry.detail["dpsgd"]["unit"] == f"user:{K}"
    assert ledger.verify().ok


@pytest.mark.parametrize("cls,params,label", [
    (DPCTGAN, {**SMALL_CTGAN, "conditional": "dp_frequencies"}, "cond_frequency"),
    (DPVAE, {**SMALL_VAE, "split_marginals": 0.1}, "vae_marginal"),
], ids=["dpctgan-frequencies", "dpvae-marginals"])
def test_the_1way_histograms_beside_dp_sgd_have_sensitivity_k_at_the_user_unit(cls, params, label, small_schema,
                                                                              user_schema):
    """A person's K bounded rows add up to K to each 1-way histogram: at the user unit every such
    discrete Gaussian has L2 sensitivity K and K times the row unit's scale (the same ρ), so the
    ledger's ρ is the noise actually drawn. (A scale left at sensitivity 1 would charge ρ while
    drawing K times too little noise.) Deterministic."""
    rows_plan = [e for e in cls(epsilon=1.0, delta=1e-6, **params).plan(small_schema) if e.label == label]
    plan = [e for e in cls(epsilon=1.0, delta=1e-6, **params).plan(user_schema) if e.label == label]
    assert rows_plan and len(plan) == len(rows_plan)
    for person, row in zip(plan, rows_plan, strict=True):
        assert (row.l2_sensitivity, person.l2_sensitivity) == (1, K)
        assert person.scale == pytest.approx(K * row.scale, rel=1e-12)
        assert person.rho == pytest.approx(row.rho, rel=1e-9)


def test_batch_size_is_refused_at_the_user_unit_before_anything_is_reserved(user_schema, small_data, tmp_path):
    """batch_size / rows is a rate over rows; at the user unit the rate is over people: refused."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("people", ApproxDP(3.0, 1e-6), unit=f"user:{K}")
    with pytest.raises(ParameterError, match=r"batch_size \(10\) cannot be used at the privacy unit user:4"):
        DPVAE(epsilon=1.0, delta=1e-6, batch_size=10, rows=400, device="cpu").fit(
            people_table(small_data), schema=user_schema, ledger=ledger, dataset="people")
    assert ledger.statement("people").reservations == []


# -- (d) end to end ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls,params", [(DPVAE, SMALL_VAE), (DPCTGAN, SMALL_CTGAN)], ids=["dpvae", "dpctgan"])
def test_a_user_level_fit_samples_a_table_without_the_key(cls, params, small_data, user_schema):
    """A seeded fit at the user unit samples the schema's columns (never the key); the same seed
    gives the same table."""
    data = people_table(small_data)
    tables = [cls(epsilon=1.0, delta=1e-6, insecure_seed=9, **params).fit(data, schema=user_schema,
                                                                         ledger=UNTRACKED).sample(50, random_state=0)
              for _ in range(2)]
    assert list(tables[0].columns) == [c.name for c in user_schema.columns] and "pid" not in tables[0].columns
    assert len(tables[0]) == 50
    pd.testing.assert_frame_equal(tables[0], tables[1])
