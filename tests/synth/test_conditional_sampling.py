"""Conditional (targeted) sampling, issue 21 item 5: ``sample(n, conditions=...)`` on public values.

MST and AIM condition their graphical model exactly: on hand-built models of a small schema, the
sampled rows' joint distribution of the other columns is compared with the model's exact conditional,
computed by brute force over the whole domain. The other generators sample by rejection (DP-CTGAN
steered by its conditional vectors first); every one meets the conditions exactly, splits a stated mix
by the largest-remainder rule, and refuses a value outside the schema in one line.

Statistical tests here are seeded (deterministic); each states its false-failure probability: the
share of seeds on which a correct implementation would fail.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from dpsynth import AIM, MST, UNTRACKED
from dpsynth.exceptions import ParameterError
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema
from dpsynth.synth import conditions as cond
from dpsynth.synth import registered
from tests.small_tables import SMALL_SCHEMA, small_table

# -- a small schema and hand-built models ---------------------------------------------------------

SIZES = {"a": 3, "b": 2, "c": 4, "d": 3}
ALPHA = 0.4  # Dirichlet concentration of the hand-built MST's conditionals (small: strong dependence)


def abcd_schema() -> Schema:
    cols = [{"name": n, "kind": "categorical", "levels": [f"{n}{i}" for i in range(k)]} for n, k in SIZES.items()]
    return Schema.from_dict({"version": 1, "columns": cols})


def hand_built_mst(seed: int = 8) -> MST:
    """A fitted MST as its fit leaves it: the chain a - b - c - d on the compressed domain, where c's
    original values 2 and 3 are merged into one code (a "rare" code that decodes uniformly)."""
    rng = np.random.default_rng(seed)
    pa = rng.dirichlet([ALPHA] * 3)
    pba = rng.dirichlet([ALPHA] * 2, size=3)
    pcb = rng.dirichlet([ALPHA] * 3, size=2)
    pdc = rng.dirichlet([ALPHA] * 3, size=3)
    ab = pa[:, None] * pba
    bc = ab.sum(0)[:, None] * pcb
    cd = bc.sum(0)[:, None] * pdc
    m = MST(epsilon=1.0, delta=1e-6)
    m.schema_ = abcd_schema()
    m.edges_ = [("a", "b"), ("b", "c"), ("c", "d")]
    m.compressed_sizes_ = {"a": 3, "b": 2, "c": 3, "d": 3}
    m.compression_ = {"c": np.array([0, 1, 2, 2])}
    total = 1000.0  # mbi's marginals are counts
    m.marginals_ = {("a",): total * pa, ("b",): total * ab.sum(0), ("c",): total * bc.sum(0),
                    ("d",): total * cd.sum(0), ("a", "b"): total * ab, ("b", "c"): total * bc,
                    ("c", "d"): total * cd}
    return m


def mst_joint(m: MST) -> np.ndarray:
    """The MST model's distribution over the original codes (a, b, c, d), by brute force."""
    mg = m.marginals_
    merged = m.compression_["c"]
    group = np.bincount(merged)
    p = np.zeros(tuple(SIZES.values()))
    for a, b, c, d in itertools.product(*(range(k) for k in SIZES.values())):
        cc = merged[c]
        p[a, b, c, d] = (mg[("a", "b")][a, b] * mg[("b", "c")][b, cc] / mg[("b",)][b]
                         * mg[("c", "d")][cc, d] / mg[("c",)][cc] / group[cc])
    return p / p.sum()


def locally_conditioned(m: MST, evidence: cond.Evidence) -> np.ndarray:
    """What a sampler WITHOUT belief propagation would draw (the plausible bug): down the chain, each
    column from its conditional given its parent times its own evidence, normalised locally (as
    :func:`mst_joint`, over the original codes)."""
    mg = m.marginals_
    merged = m.compression_["c"]
    e = [evidence.get(j, np.ones(k, dtype=bool)).astype(float) for j, k in enumerate(SIZES.values())]
    weight_c = np.bincount(merged, weights=e[2]) / np.bincount(merged)

    def given(pair: tuple[str, str], weight: np.ndarray) -> np.ndarray:
        table = mg[pair] / mg[pair].sum(axis=1, keepdims=True) * weight
        return table / table.sum(axis=1, keepdims=True)

    pa = mg[("a",)] * e[0] / (mg[("a",)] * e[0]).sum()
    pba, pcb, pdc = given(("a", "b"), e[1]), given(("b", "c"), weight_c), given(("c", "d"), e[3])
    allowed = np.bincount(merged, weights=e[2])
    p = np.zeros(tuple(SIZES.values()))
    for a, b, c, d in itertools.product(*(range(k) for k in SIZES.values())):
        cc = merged[c]
        decoded = e[2][c] / allowed[cc] if allowed[cc] else 0.0
        p[a, b, c, d] = pa[a] * pba[a, b] * pcb[b, cc] * decoded * pdc[cc, d]
    return p


def hand_built_aim(seed: int = 9) -> AIM:
    """A fitted AIM as its fit leaves it: log-potentials on the cliques (a, b, c) and (c, d)."""
    rng = np.random.default_rng(seed)
    a = AIM(epsilon=1.0, delta=1e-6)
    a.schema_ = abcd_schema()
    a.measured_ = [("a",), ("b",), ("c",), ("d",), ("a", "b", "c"), ("c", "d")]
    a.potentials_ = {("a", "b", "c"): 1.5 * rng.normal(size=(3, 2, 4)), ("c", "d"): 1.5 * rng.normal(size=(4, 3))}
    return a


def aim_joint(a: AIM) -> np.ndarray:
    """The AIM model's distribution over (a, b, c, d), by brute force."""
    log = a.potentials_[("a", "b", "c")][:, :, :, None] + a.potentials_[("c", "d")][None, None, :, :]
    p = np.exp(log - log.max())
    return p / p.sum()


def restricted(joint: np.ndarray, evidence: cond.Evidence) -> np.ndarray:
    """The model's exact conditional over every column: the joint restricted to the evidence, normalised."""
    p = joint.copy()
    for j, allowed in evidence.items():
        shape = [1] * p.ndim
        shape[j] = -1
        p = p * allowed.reshape(shape)
    return p / p.sum()


def conditional(joint: np.ndarray, evidence: cond.Evidence) -> np.ndarray:
    """The exact conditional of the columns outside the evidence."""
    return restricted(joint, evidence).sum(axis=tuple(sorted(evidence)))


def empirical(codes: np.ndarray) -> np.ndarray:
    """The rows' joint frequencies over the whole domain."""
    shape = tuple(SIZES.values())
    flat = np.ravel_multi_index(tuple(codes.T), shape)
    return np.bincount(flat, minlength=math.prod(shape)).reshape(shape) / len(codes)


def tvd_threshold(n: int, cells: int, delta: float) -> float:
    """A TVD that the empirical distribution of n iid draws over ``cells`` cells exceeds with
    probability at most ``delta``: E[TVD] <= ½·√((k−1)/n) (Cauchy–Schwarz on Σ√(p(1−p)/n)), and one
    draw moves the TVD by at most 1/n, so McDiarmid gives P(TVD ≥ E + t) ≤ exp(−2nt²)."""
    return 0.5 * math.sqrt((cells - 1) / n) + math.sqrt(math.log(1 / delta) / (2 * n))


def mask(column: str, *values: int) -> tuple[int, np.ndarray]:
    j = list(SIZES).index(column)
    allowed = np.zeros(SIZES[column], dtype=bool)
    allowed[list(values)] = True
    return j, allowed


def iid_draws(synth, evidence: cond.Evidence, n: int, seed: int) -> np.ndarray:
    """n independent rows of the conditioned model: n one-row samples from one generator (a one-row
    sample is an exact draw: systematic rounding of one row picks a value with its probability)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([synth._sample_codes_given(1, rng, evidence) for _ in range(n)])


# -- exactness of the conditioned graphical models -----------------------------------------------

#: three statistical checks below, each failing a correct sampler with probability at most 1e-4 / 3
#: (the union: at most 1e-4 for the file)
CHECK_DELTA = 1e-4 / 3
DRAWS = 2500


def check_exact(joint: np.ndarray, codes: np.ndarray, evidence: cond.Evidence, wrong: np.ndarray) -> None:
    """The rows meet the evidence, and their joint over every column is within the TVD threshold of
    the exact conditional (cells: those the conditional gives mass). The test has power: ``wrong``, what
    a plausible bug would sample, is at least twice the threshold away from the exact conditional."""
    exact = restricted(joint, evidence)
    assert cond.satisfied(codes, evidence).all()
    threshold = tvd_threshold(len(codes), int((exact > 0).sum()), CHECK_DELTA)
    assert 0.5 * np.abs(wrong - exact).sum() > 2 * threshold
    assert 0.5 * np.abs(empirical(codes) - exact).sum() < threshold


@pytest.mark.parametrize("evidence", [
    dict([mask("a", 0, 2), mask("d", 0)]),  # the root and a leaf: belief propagation up the whole chain
    # c1 or c3, where MST merged c3 with c2: the merged code weighs ½ (one of its two values allowed),
    # and decodes to c3 only
    dict([mask("c", 1, 3), mask("d", 1, 2)]),
], ids=["root-and-leaf", "merged-value"])
def test_mst_conditioned_on_several_columns_samples_the_exact_conditional(evidence):
    """False-failure probability ≤ 1e-4/3 per case (see :func:`tvd_threshold`; seeded)."""
    m = hand_built_mst()
    check_exact(mst_joint(m), iid_draws(m, evidence, DRAWS, seed=1), evidence, locally_conditioned(m, evidence))


def test_aim_conditioned_on_two_cliques_samples_the_exact_conditional():
    """False-failure probability ≤ 1e-4/3 (see :func:`tvd_threshold`; seeded)."""
    a = hand_built_aim()
    evidence = dict([mask("a", 1), mask("d", 0, 2)])
    joint = aim_joint(a)
    # the plausible bug: the conditioned columns right, the others drawn as if there were no condition
    wrong = np.einsum("bc,ad->abcd", joint.sum(axis=(0, 3)), restricted(joint, evidence).sum(axis=(1, 2)))
    check_exact(joint, iid_draws(a, evidence, DRAWS, seed=2), evidence, wrong)


@pytest.mark.parametrize("conditions", [
    {"a": ["a0", "a2"], "d": "d0"},
    {"c": ["c1", "c3"], "d": ["d1", "d2"]},  # c3 merged with c2: its code weighs ½
], ids=["root-and-leaf", "merged-value"])
def test_mst_many_rows_follow_the_conditional_within_the_rounding_bound(conditions):
    """One sample of many rows (systematic rounding inside parent groups): every column's counts on
    the compressed domain are within a DETERMINISTIC bound of n times the exact conditional marginal
    (each group's rounding moves each count by less than one, and a child inherits its parent's
    error), so this fails a correct sampler with probability 0."""
    m = hand_built_mst()
    n = 20_000
    out = m.sample(n, random_state=3, conditions=conditions)
    evidence = cond.parse_conditions(conditions, m.schema_).restrict
    codes = encode(out, m.schema_)
    assert cond.satisfied(codes, evidence).all()
    exact = restricted(mst_joint(m), evidence)
    merged = m.compression_["c"]
    bound = 0.0
    parent_values = 1
    for j, name in enumerate(SIZES):  # the chain a - b - c - d, rooted at a
        one_way = exact.sum(axis=tuple(k for k in range(4) if k != j))
        values = codes[:, j]
        if name == "c":
            one_way, values = np.bincount(merged, weights=one_way), merged[values]
        k = len(one_way)
        bound += parent_values * k  # L1 error of the counts: < k at the root; a child adds < (parent's) · k
        parent_values = k
        assert np.abs(np.bincount(values, minlength=k) - n * one_way).sum() < bound


def test_a_merged_value_decodes_to_exactly_the_value_asked_for():
    m = hand_built_mst()
    out = m.sample(2_000, random_state=5, conditions={"c": "c3"})
    assert set(out["c"]) == {"c3"}  # never c2, the value it was merged with
    both = m.sample(2_000, random_state=5, conditions={"c": ["c1", "c3"]})
    assert set(both["c"]) == {"c1", "c3"}


def test_a_condition_the_model_gives_no_probability_is_refused():
    m = hand_built_mst()
    m.marginals_ = {k: v.copy() for k, v in m.marginals_.items()}
    m.marginals_[("c", "d")][:, 2] = 0.0
    with pytest.raises(ParameterError, match="probability zero"):
        m.sample(10, conditions={"d": "d2"})


# -- every synthesizer ----------------------------------------------------------------------------

FAST = {
    "aim": {"max_rounds": 8},
    "dpctgan": {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "generator_dims": (16,),
                "discriminator_dims": (16,), "generator_batch_size": 32, "device": "cpu"},
    "dpvae": {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,),
              "device": "cpu"},
}

TABLE_SCHEMA = SMALL_SCHEMA


def table() -> pd.DataFrame:
    return small_table()


@pytest.fixture(scope="module")
def fitted():
    schema = Schema.from_dict(TABLE_SCHEMA)
    data = table()
    out = {}
    for name in sorted(registered()):
        params = {**FAST.get(name, {})}
        out[name] = registered()[name](epsilon=1.0, delta=1e-6, insecure_seed=3, **params).fit(
            data, schema=schema, ledger=UNTRACKED)
    return out


@pytest.mark.parametrize("name", sorted(registered()))
def test_every_synthesizer_meets_conditions_on_several_columns(name, fitted):
    synth = fitted[name]
    out = synth.sample(300, random_state=1, conditions={"size": ["L", "XL"], "age": 20, "color": None})
    assert len(out) == 300 and list(out.columns) == synth.schema_.names
    assert set(out["size"]) <= {"L", "XL"}
    assert out["age"].between(18, 29).all()  # the bin [18, 30) that holds 20
    assert out["color"].isna().all()  # the missing code of a nullable column
    again = synth.sample(300, random_state=1, conditions={"size": ["L", "XL"], "age": 20, "color": None})
    pd.testing.assert_frame_equal(out, again)


@pytest.mark.parametrize("name", sorted(registered()))
def test_every_synthesizer_splits_a_mix_by_largest_remainder_and_shuffles(name, fitted):
    synth = fitted[name]
    out = synth.sample(301, random_state=2, conditions={"size": {"S": 0.5, "M": 0.25, "XL": 0.25},
                                                        "color": "blue"})
    assert out["size"].value_counts().to_dict() == {"S": 151, "M": 75, "XL": 75}  # 150.5 + 75.25 + 75.25
    assert set(out["color"]) == {"blue"}
    first = out["size"].iloc[:151]
    assert set(first) != {"S"}  # shuffled, not stratum after stratum (a sorted first stratum: 1 in ~1e80)


@pytest.mark.parametrize("name", sorted(registered()))
def test_a_value_outside_the_schema_is_one_line_naming_the_column(name, fitted):
    with pytest.raises(ParameterError) as err:
        fitted[name].sample(10, conditions={"size": "XXL"})
    text = str(err.value)
    assert "\n" not in text and "'size'" in text and "S, M, L, XL" in text


def test_conditions_on_a_table_sampled_in_chunks_keep_the_whole_tables_mix(fitted, tmp_path):
    from dpsynth.synth.streaming import write_sampled

    out = write_sampled(fitted["mst"], 50, tmp_path / "out.csv", chunk_rows=7,
                        conditions={"size": {"S": 1 / 3, "M": 1 / 3, "L": 1 / 3}, "color": "red"})
    frame = pd.read_csv(out, keep_default_na=False)
    assert len(frame) == 50 and set(frame["color"]) == {"red"}
    assert frame["size"].value_counts().to_dict() == {"S": 17, "M": 17, "L": 16}


# -- rejection sampling: DP-CTGAN's steering, plug-ins, the bounded loop --------------------------

def test_dpctgan_steers_its_conditional_vectors_to_the_allowed_values(fitted):
    import torch

    from dpsynth.synth.dpsgd.ctgan_conditions import Conditions

    synth = fitted["dpctgan"]
    spans = synth._condition_spans(synth.transformer_)
    probs = [np.full(s.width, 1.0 / s.width) for s in spans]
    conditions = Conditions(synth.transformer_, probs, "cpu", spans)
    size_allowed = np.array([False, False, True, True])
    color_allowed = np.array([True, False, False, False])  # red (the nullable column's 4th code: missing)
    k_size = next(k for k, s in enumerate(spans) if s.column == 1)
    k_color = next(k for k, s in enumerate(spans) if s.column == 0)
    cond_vectors = conditions.steered(1000, torch.Generator().manual_seed(0),
                                      {k_size: size_allowed, k_color: color_allowed}).numpy()
    assert (cond_vectors.sum(axis=1) == 1).all()  # one column marked per row, as in training
    on_size = cond_vectors[:, conditions.offsets[k_size]:conditions.offsets[k_size] + spans[k_size].width]
    on_color = cond_vectors[:, conditions.offsets[k_color]:conditions.offsets[k_color] + spans[k_color].width]
    assert on_size[:, ~size_allowed].sum() == 0 and on_color[:, ~color_allowed].sum() == 0
    assert on_size.sum() > 0 and on_color.sum() > 0


class _OnlySmall:
    """A plug-in (plain contract) whose rows always have size S, and which takes a seed."""

    def __init__(self, *, epsilon, delta):
        self.epsilon, self.delta = epsilon, delta

    def fit(self, data, *, schema):
        self.schema_ = schema
        return self

    def sample(self, n_rows, *, random_state=None):
        from dpsynth.schema.encode import decode

        rng = np.random.default_rng(random_state)
        codes = np.stack([rng.integers(0, c.size, n_rows) for c in self.schema_.columns], axis=1)
        codes[:, 1] = 0
        return decode(codes, self.schema_, rng)


def _plugin():
    from dpsynth.synth.plugin import PluginClass

    schema = Schema.from_dict(TABLE_SCHEMA)
    synth = PluginClass("test_conditional_sampling:_OnlySmall", _OnlySmall)(epsilon=1.0, delta=1e-6)
    return synth.fit(table(), schema=schema, ledger=UNTRACKED)


def test_a_plugin_is_conditioned_by_rejection_with_a_seed_per_round():
    synth = _plugin()
    out = synth.sample(200, random_state=4, conditions={"color": "green", "age": [5, 70]})
    assert len(out) == 200 and set(out["color"]) == {"green"}
    assert set(out["age"].map(lambda v: 0 if v < 18 else 5)) == {0, 5}  # bins [0, 18) and [65, 99]
    assert out["age"].between(0, 17).any() and out["age"].between(65, 99).any()
    assert not out.duplicated().all()  # rounds with their own seeds: not one round's rows repeated
    pd.testing.assert_frame_equal(out, synth.sample(200, random_state=4, conditions={"color": "green",
                                                                                     "age": [5, 70]}))


def test_a_condition_too_rare_for_rejection_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cond, "MIN_ROUND_CAP", 500)
    synth = _plugin()
    with pytest.raises(ParameterError) as err:
        synth.sample(10, random_state=1, conditions={"size": "XL"})
    text = str(err.value)
    assert "\n" not in text and "too rare" in text and "0 of" in text and f"{cond.MAX_ROUNDS} rounds" in text


def test_the_default_rejection_path_of_a_synthesizer_without_its_own():
    """A Synthesizer subclass that only samples codes gets conditions by rejection (the base default)."""
    from dpsynth.synth.base import Synthesizer

    class Uniform(Synthesizer):
        name = "uniform-test"

        def plan(self, schema):
            return []

        def _fit_codes(self, codes, schema, odometer, noise):  # pragma: no cover - not fitted here
            raise NotImplementedError

        def _sample_codes(self, n_rows, rng):
            return np.stack([rng.integers(0, k, n_rows) for k in self.schema_.sizes], axis=1)

    synth = Uniform(epsilon=1.0, delta=1e-6)
    synth.schema_ = abcd_schema()
    out = synth.sample(100, random_state=0, conditions={"a": "a1", "c": {"c0": 0.3, "c3": 0.7}})
    assert set(out["a"]) == {"a1"} and out["c"].value_counts().to_dict() == {"c3": 70, "c0": 30}


# -- parsing: public values only, one line -------------------------------------------------------

@pytest.mark.parametrize("conditions,message", [
    ({"shape": "round"}, "conditions: column ('shape') must be a column of the schema: color, size, age, score"),
    ({"size": "XXL"}, "conditions: column 'size': value ('XXL') must be one of its levels: S, M, L, XL"),
    ({"size": None}, "conditions: column 'size' is not nullable: it has no missing value to ask for"),
    ({"size": []}, "conditions: column 'size': a list of values must not be empty"),
    ({"age": 100}, "conditions: column 'age': value (100) must lie within its bounds [0, 99]"),
    ({"age": 20.5}, "conditions: column 'age' (integer): value (20.5) must be a whole number"),
    ({"age": "old"}, "conditions: column 'age' (integer): value ('old') must be a number"),
    ({"score": True}, "conditions: column 'score' (continuous): value (True) must be a finite number"),
    ({"size": {"S": 0.5, "M": 0.4}}, "conditions: column 'size': the mix's shares must sum to 1 (they sum to 0.9)"),
    ({"size": {"S": 1.5, "M": -0.5}},
     "conditions: column 'size': the share of 'M' (-0.5) must be a finite number >= 0"),
    ({"size": {"S": 0.5, "M": 0.5}, "color": {"red": 1.0}},
     "conditions: at most one column may state a mix ('size' and 'color' both do)"),
    ({"age": {20: 0.5, 25: 0.5}}, "conditions: column 'age': the mix's values 20 and 25 select the same level or bin"),
    ({}, "conditions ({}) must name at least one column (or be None)"),
    ([("size", "S")], "conditions (list) must be a mapping of column names to values"),
])
def test_bad_conditions_are_refused_in_one_line(conditions, message):
    with pytest.raises(ParameterError) as err:
        cond.parse_conditions(conditions, Schema.from_dict(TABLE_SCHEMA))
    assert str(err.value) == message


def test_values_are_the_schemas_public_values():
    schema = Schema.from_dict({"version": 1, "missing_values": ["", "NA"], "columns": [
        {"name": "n", "kind": "categorical", "levels": [1, 2, 3], "other": "rest"},
        {"name": "x", "kind": "continuous", "bounds": [0.0, 1.0], "edges": [0.0, 0.5, 1.0], "nullable": True},
        {"name": "day", "kind": "datetime", "resolution": "day", "bounds": ["2020-01-01", "2020-12-31"],
         "edges": ["2020-01-01", "2020-07-01", "2020-12-31"]},
    ]})
    code = cond.value_code
    n, x, day = schema.columns
    assert [code(n, v, schema) for v in (1, "2", "rest")] == [0, 1, 3]  # as text, as the encoder reads them
    assert [code(x, v, schema) for v in (0.0, 0.5, "0.7", 1.0, None, "NA")] == [0, 1, 1, 1, 2, 2]
    assert [code(day, v, schema) for v in ("2020-03-01", "2020-12-31")] == [0, 1]
    with pytest.raises(ParameterError, match=r"within its bounds \[2020-01-01, 2020-12-31\]"):
        code(day, "2021-01-01", schema)


def test_largest_remainder():
    assert cond.largest_remainder(501, [0.5, 0.25, 0.25]) == [251, 125, 125]
    assert cond.largest_remainder(10, [1 / 3] * 3) == [4, 3, 3]  # ties to the earlier share
    assert cond.largest_remainder(7, [0.0, 1.0]) == [0, 7]
    rng = np.random.default_rng(0)
    for _ in range(200):
        shares = rng.dirichlet(np.ones(5))
        n = int(rng.integers(1, 10_000))
        parts = cond.largest_remainder(n, shares)
        assert sum(parts) == n and all(abs(p - n * s) < 1 for p, s in zip(parts, shares, strict=True))
