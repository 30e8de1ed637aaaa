"""The fast mbi driver: same estimator as ``MirrorDescent.estimate``, without its slow start."""

from __future__ import annotations

import numpy as np
import pytest

from dpsynth.synth import _pgm


def _measurements(rng):
    return [
        _pgm.linear_measurement(rng.integers(0, 100, 12).astype(float), ("a", "b"), 1.0),
        _pgm.linear_measurement(rng.integers(0, 100, 20).astype(float), ("b", "c"), 1.0),
        _pgm.linear_measurement(rng.integers(0, 100, 3).astype(float), ("a",), 2.0),
    ]


def test_fast_path_is_used_and_agrees_with_mbi(monkeypatch):
    from mbi import estimation

    rng = np.random.default_rng(0)
    domain = _pgm.make_domain(["a", "b", "c"], [3, 4, 5])
    ms = _measurements(rng)
    reference = estimation.MirrorDescent().estimate(domain, ms, iters=3000)

    def fallback(*args, **kwargs):
        raise AssertionError("mbi's hooks changed: estimate_model fell back to MirrorDescent.estimate")

    monkeypatch.setattr(estimation.MirrorDescent, "estimate", fallback)
    fit = _pgm.estimate_model(domain, ms, iters=3000, tol=None)
    warm = _pgm.estimate_model(domain, ms, iters=100, tol=None, warm_start=fit.state_potentials)
    for cl in [("a", "b"), ("b", "c")]:
        expected = np.asarray(reference.project(cl).datavector(flatten=False))
        np.testing.assert_allclose(fit.marginals[cl], expected, rtol=2e-3, atol=0.05)
        np.testing.assert_allclose(warm.marginals[cl], expected, rtol=2e-3, atol=0.05)
    assert fit.total == pytest.approx(warm.total)


def test_descent_step_is_mbis_mirror_descent():
    """Our step carries the current marginals instead of recomputing them: the same iterates as
    mbi's ``MirrorDescent._step``, accepted and rejected steps alike, one oracle call a step."""
    from mbi import CliqueVector, estimation, marginal_loss

    domain = _pgm.make_domain(["a", "b", "c"], [3, 4, 5])
    ms = _measurements(np.random.default_rng(3))
    loss_fn = marginal_loss.from_linear_measurements(ms, domain)
    total = float(estimation.minimum_variance_unbiased_total(ms))
    est = estimation.MirrorDescent()
    oracle = est._oracle(loss_fn.cliques, domain)
    start = CliqueVector.random(domain, loss_fn.cliques)
    theirs = est._init(domain, loss_fn, total, warm_start=start)
    ours = _pgm._initial_state(domain, loss_fn, total, start)
    ours = _pgm._descent_step(ours, loss_fn, total, oracle)  # computes the start's marginals only
    assert float(ours.alpha) == pytest.approx(float(theirs.alpha))
    assert float(ours.loss) == pytest.approx(float(theirs.loss), rel=1e-5)
    big = 40 * float(theirs.alpha)  # large enough that the line search rejects some steps
    theirs, ours = theirs._replace(alpha=big), ours._replace(alpha=big)
    calls = []

    def counting_oracle(*args):
        calls.append(1)
        return oracle(*args)

    alphas = []
    for _ in range(40):
        theirs = est._step(theirs, loss_fn, total)
        ours = _pgm._descent_step(ours, loss_fn, total, counting_oracle)
        alphas.append(float(ours.alpha))
        assert float(ours.alpha) == pytest.approx(float(theirs.alpha), rel=1e-5)
        assert float(ours.loss) == pytest.approx(float(theirs.loss), rel=1e-4)
        for cl in loss_fn.cliques:
            np.testing.assert_allclose(np.asarray(ours.potentials[cl].values),
                                       np.asarray(theirs.potentials[cl].values), rtol=1e-4, atol=1e-4)
    current = oracle(ours.potentials, total)  # the carried marginals are the current potentials'
    for cl in loss_fn.cliques:
        np.testing.assert_allclose(np.asarray(ours.mu[cl].values), np.asarray(current[cl].values), rtol=1e-5)
    assert len(calls) == 40
    changes = np.diff(alphas)
    assert (changes < 0).any() and (changes > 0).any()  # steps were rejected and accepted


def test_loss_and_gradient_is_autodiffs():
    """The written-out L2 loss and gradient equal ``jax.value_and_grad`` of mbi's loss: measured
    cliques in another axis order than the model's, sub-cliques with two containing cliques,
    repeated measurements of one clique; weighted (compressed) queries go through autodiff."""
    import jax
    from mbi import CliqueVector, marginal_loss

    rng = np.random.default_rng(4)
    domain = _pgm.make_domain(["a", "b", "c", "d"], [2, 3, 4, 5])

    def noisy(cl):
        return rng.normal(10, 3, int(np.prod([domain[a] for a in cl])))

    cliques = [("a", "b", "c"), ("c", "b", "d"), ("d", "a"), ("b", "c"), ("c",), ("b", "c"), ("d",), ("b", "d", "c")]
    ms = [_pgm.linear_measurement(noisy(cl), cl, float(rng.uniform(0.5, 3))) for cl in cliques]
    loss_fn = marginal_loss.from_linear_measurements(ms, domain)
    mu = CliqueVector.random(domain, loss_fn.cliques)
    ours = _pgm.loss_and_gradient(loss_fn, mu)
    theirs = jax.value_and_grad(loss_fn)(mu)
    assert float(ours[0]) == pytest.approx(float(theirs[0]), rel=1e-5)
    for cl in loss_fn.cliques:
        assert ours[1][cl].domain == theirs[1][cl].domain
        np.testing.assert_allclose(np.asarray(ours[1][cl].values), np.asarray(theirs[1][cl].values),
                                   rtol=1e-5, atol=1e-5)
    weighted = marginal_loss.LinearMeasurement(noisy(("d",)), ("d",), 2.0,
                                               query=marginal_loss.WeightedQuery(np.linspace(0.5, 1, 5)))
    weighted_fn = marginal_loss.from_linear_measurements([*ms, weighted], domain)
    expected = jax.value_and_grad(weighted_fn)(mu)
    got = _pgm.loss_and_gradient(weighted_fn, mu)
    assert float(got[0]) == pytest.approx(float(expected[0])) != pytest.approx(float(theirs[0]))


def test_expand_matches_mbi():
    from mbi import CliqueVector

    rng = np.random.default_rng(1)
    domain = _pgm.make_domain(["a", "b", "c", "d"], [2, 3, 4, 5])
    old = CliqueVector.random(domain, [("a", "b"), ("c",), ("b", "d")])
    new_cliques = [("b", "a", "c"), ("d", "b"), ("c", "d")]
    ours = _pgm._expand(old, domain, new_cliques)
    theirs = old.expand(new_cliques)
    for cl in new_cliques:
        np.testing.assert_allclose(np.asarray(ours[cl].values), np.asarray(theirs[cl].values), rtol=1e-6)
        assert ours[cl].domain == theirs[cl].domain
    cold = _pgm._expand(None, domain, new_cliques)
    assert all(float(np.abs(np.asarray(cold[cl].values)).max()) == 0.0 for cl in new_cliques)
    assert rng is not None


@pytest.fixture
def compiled_options(monkeypatch):
    """The compiler options of every XLA compilation in the test, in order (no XLA_FLAGS set)."""
    from jax.stages import Lowered

    seen = []
    real_compile = Lowered.compile

    def spy(self, compiler_options=None, **kwargs):
        seen.append(compiler_options)
        return real_compile(self, compiler_options, **kwargs)

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(Lowered, "compile", spy)
    return seen


def test_estimation_programs_compile_with_dpsynth_options(compiled_options):
    domain = _pgm.make_domain(["a", "b", "c"], [3, 4, 5])
    _pgm.estimate_model(domain, _measurements(np.random.default_rng(2)), iters=100, tol=None)
    assert compiled_options == [_pgm.COMPILER_OPTIONS]
    assert _pgm.COMPILER_OPTIONS["xla_backend_optimization_level"] == 0


def test_large_models_compile_with_faster_code(compiled_options, monkeypatch):
    """From LARGE_MODEL_CELLS junction-tree cells the step is compiled for speed, and the fit is
    the same up to float rounding."""
    domain = _pgm.make_domain(["a", "b", "c"], [3, 4, 5])
    assert _pgm.model_cells(domain, [("a", "b"), ("b", "c")]) == 12 + 20
    small = _pgm.estimate_model(domain, _measurements(np.random.default_rng(2)), iters=200, tol=None)
    monkeypatch.setattr(_pgm, "LARGE_MODEL_CELLS", 32)
    large = _pgm.estimate_model(domain, _measurements(np.random.default_rng(2)), iters=200, tol=None)
    assert compiled_options == [_pgm.COMPILER_OPTIONS, _pgm.LARGE_MODEL_OPTIONS]
    assert _pgm.LARGE_MODEL_OPTIONS["xla_backend_optimization_level"] > 0
    for cl, table in small.marginals.items():
        np.testing.assert_allclose(large.marginals[cl], table, rtol=1e-4, atol=1e-3)


def test_compiler_options_reach_xla(monkeypatch):
    """XLA rejects an unknown option: the options are passed to the compiler, not dropped."""
    import jax

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    lowered = jax.jit(lambda x: x * 2).lower(np.ones(3, np.float32))
    monkeypatch.setattr(_pgm, "COMPILER_OPTIONS", {"xla_no_such_option_dpsynth": 1})
    with pytest.raises(Exception, match="xla_no_such_option_dpsynth"):
        _pgm.compile_lowered(lowered)
    monkeypatch.setattr(_pgm, "COMPILER_OPTIONS", {"xla_backend_optimization_level": 0})
    np.testing.assert_array_equal(np.asarray(_pgm.compile_lowered(lowered)(np.ones(3, np.float32))), [2, 2, 2])


def test_users_xla_flags_win(monkeypatch):
    options = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    monkeypatch.setattr(_pgm, "COMPILER_OPTIONS", options)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=3")
    assert _pgm.compiler_options() == {"xla_cpu_use_fusion_emitters": False}
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level_typo=3 --xla_cpu_use_fusion_emitters")
    assert _pgm.compiler_options() == {"xla_backend_optimization_level": 0}
    monkeypatch.delenv("XLA_FLAGS")
    assert _pgm.compiler_options() == _pgm.COMPILER_OPTIONS
    large = {"xla_backend_optimization_level": 1, "xla_cpu_parallel_codegen_split_count": 1}
    monkeypatch.setattr(_pgm, "LARGE_MODEL_OPTIONS", large)
    assert _pgm.compiler_options(_pgm.LARGE_MODEL_CELLS) == large
    assert _pgm.compiler_options(_pgm.LARGE_MODEL_CELLS - 1) == options
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=2")
    assert _pgm.compiler_options(_pgm.LARGE_MODEL_CELLS) == {"xla_cpu_parallel_codegen_split_count": 1}
