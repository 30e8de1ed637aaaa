"""Graphical-model estimation with Private-PGM (``mbi`` 2.0): dpsynth's one compatibility module for mbi.

Everything here is post-processing of noisy measurements. Every use of mbi in ``dpsynth`` goes
through this module, and the first use checks (:func:`require_mbi`) that the installed mbi is the
version range pyproject.toml declares and still has every function, class and parameter used here
(some are mbi internals: ``MirrorDescent._oracle``, ``marginal_loss._l2_loss``); if not, it raises
:class:`MbiChangedError` naming what changed upstream, instead of computing something else.
Sampling from the fitted marginals is in :mod:`dpsynth.synth._sampling`.

Where the time goes: on mbi 2.0 a fit of a small model is dominated by JAX compilation, not by
the mirror-descent iterations. ``MirrorDescent.estimate`` initialises its state eagerly (which
compiles ~100 tiny XLA programs one by one), and jitting that initialisation makes XLA
constant-fold message passing over the all-zero starting potentials (seconds per fit on Adult).
:func:`estimate_model` runs mbi's mirror descent (its ``MirrorDescent`` step, Armijo line search
and block-wise ``tol`` test) from a starting state built without compiling anything
(:func:`_initial_state`), compiles only the fused iteration, and reads the marginals from the
final state. Its step (:func:`_descent_step`) carries the current marginals instead of
recomputing them, so each iteration runs the marginal oracle once where mbi's runs it twice: the
same iterates (``tests/unit/test_pgm.py`` checks them step by step against mbi's), about half the
time per iteration on large models and a smaller program to compile. If a future mbi changes the
pieces used here, :func:`require_mbi` says so at first use; a change it cannot see (an error inside
the fast path) falls back to ``estimate`` (slower, same result) and ``tests/unit/test_pgm.py`` fails.

The fused iteration is compiled with per-program XLA options, passed to that one compilation only,
so no other JAX program in the process is affected. Small models (most of AIM's rounds, every MST
model on Adult) are dominated by compilation: :data:`COMPILER_OPTIONS` (LLVM at optimisation level
0, XLA's older loop emitter instead of its fusion emitters, no module splitting) compile the step
about five times faster (4.7 → 0.95 CPU-s for MST's model on Adult) while each iteration runs a few times
slower. Large models (AIM's later rounds at larger ε, up to its 80 MB limit) are dominated by the
iterations, so from :data:`LARGE_MODEL_CELLS` junction-tree cells :data:`LARGE_MODEL_OPTIONS`
(LLVM level 1, fusion emitters) spend 2-4.5 CPU-s more on compiling for iterations 2.5-5 times
faster. Figures in ``benchmarks/RESULTS.md``. An option the user names in ``XLA_FLAGS`` is left to
the user's value (``XLA_FLAGS="--xla_backend_optimization_level=3 --xla_cpu_use_fusion_emitters=true"``
restores XLA's optimisation level and emitters for every model).

Precision: JAX computes in float32 by default, and mirror descent in float32 stalls at a relative
error of about 2-3·10⁻⁵ of the total in every cell, however many iterations it runs (its loss
differences fall below float32's resolution; mbi warns of it above 100K rows). Below a total of
:data:`FLOAT64_TOTAL` that is far below the noise (about 1 count on the bundled Adult), and the fit
runs in float32 as before. From that total on (a DP estimate: post-processing), the whole fit (the
measurements, the potentials, the step) runs in float64 (``jax.enable_x64`` for that fit only):
at totals of 10⁸ and 10⁹ it keeps converging (3·10⁻⁹ of the total a cell after 10,000 iterations
on noise-free measurements, MST's fit within 4·10⁻⁷ of the true counts) and its marginals sum to
the total within 10⁻¹⁵ (``tests/unit/test_pgm_precision.py``). Counts and noise are int64 before
the fit, and the fitted marginals and potentials are returned as float64 numpy.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import re
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from dpsynth.exceptions import InternalError

#: the mbi releases this module is written against (pyproject.toml pins the same range)
MBI_VERSIONS = ((2, 0), (2, 1))


class MbiChangedError(InternalError):
    """The installed mbi is not the one ``dpsynth.synth._pgm`` was written against (another version,
    or a function, class or parameter it uses is gone): the message names the upstream change."""


def _mbi_changed(what: str) -> MbiChangedError:
    low, high = (".".join(map(str, v)) for v in MBI_VERSIONS)
    return MbiChangedError(f"mbi changed upstream: {what}; dpsynth.synth._pgm is written against mbi >={low},<{high} "
                           f"(install that range, or update dpsynth/synth/_pgm.py to the new mbi)")


with warnings.catch_warnings():
    # mbi warns on import that JAX runs in float32 and about JAX's compilation cache; both are
    # known and handled here (a fit of a large total runs in float64: FLOAT64_TOTAL).
    warnings.simplefilter("ignore")
    import jax

    try:
        import mbi
        from mbi import CliqueVector, Domain, Factor, LinearMeasurement, estimation, junction_tree, marginal_loss
        from mbi.clique_vector import reverse_clique_mapping
    except ImportError as exc:  # pragma: no cover - depends on the installed mbi
        raise _mbi_changed(f"'{exc.name or exc}' no longer imports ({exc})") from exc

Clique = tuple[str, ...]

#: what this module uses from mbi, by path inside the package, with the parameters it passes by name
MBI_API: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Domain", ()),
    ("LinearMeasurement", ("stddev",)),
    ("CliqueVector", ()),
    ("Factor", ()),
    ("estimation.MirrorDescent", ()),
    ("estimation.MirrorDescent.estimate", ("known_total", "iters", "tol", "warm_start")),
    ("estimation.MirrorDescent._oracle", ()),
    ("estimation.minimum_variance_unbiased_total", ()),
    ("estimation.CALLBACK_EVERY", ()),
    ("marginal_loss.from_linear_measurements", ()),
    ("marginal_loss._l2_loss", ()),
    ("marginal_loss.DatavectorQuery", ()),
    ("junction_tree.make_junction_tree", ()),
    ("junction_tree.maximal_cliques", ()),
    ("clique_vector.reverse_clique_mapping", ("domain",)),
)


def _version(text: str) -> tuple[int, ...]:
    """The leading numeric components of a version string (``"2.0.0rc1"`` → ``(2, 0, 0)``)."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


@functools.cache
def require_mbi() -> None:
    """Check once that the installed mbi is the one this module is written against.

    Raises:
        MbiChangedError: mbi's version is outside :data:`MBI_VERSIONS`, or a name of
            :data:`MBI_API` is gone, or no longer takes a parameter this module passes.
    """
    from importlib import metadata

    try:
        installed = metadata.version("mbi")
    except metadata.PackageNotFoundError:  # pragma: no cover - an mbi without metadata
        installed = str(getattr(mbi, "__version__", "unknown"))
    low, high = MBI_VERSIONS
    if not low <= _version(installed)[:2] < high:
        raise _mbi_changed(f"version {installed} is installed")
    for path, parameters in MBI_API:
        found: Any = mbi
        for name in path.split("."):
            if not hasattr(found, name):
                raise _mbi_changed(f"mbi.{path} is gone")
            found = getattr(found, name)
        try:
            accepted = inspect.signature(found).parameters if parameters else {}
        except (TypeError, ValueError):  # pragma: no cover - not introspectable
            continue
        missing = [p for p in parameters if p not in accepted]
        if missing:
            raise _mbi_changed(f"mbi.{path} no longer takes {', '.join(missing)}")


def make_domain(names: Sequence[str], sizes: Sequence[int]) -> Any:
    """mbi's ``Domain`` of the named columns (the first use of mbi in every fit: checks it)."""
    require_mbi()
    return Domain(list(names), [int(s) for s in sizes])


def linear_measurement(noisy: np.ndarray, clique: Clique, stddev: float) -> Any:
    """mbi's ``LinearMeasurement`` of a marginal of ``clique`` with Gaussian noise of ``stddev``."""
    return LinearMeasurement(np.asarray(noisy, dtype=float), tuple(clique), stddev=float(stddev))


def compress_measurement(measurement: Any, mapping: dict[str, np.ndarray], domain: Any) -> Any:
    """A measurement on the compressed domain (levels merged by ``mapping``), by mbi's ``compress``."""
    return measurement.compress(mapping, domain)


def estimate_marginals(
    domain: Any, measurements: list[Any], *, iters: int, tol: float | None = 1e-7
) -> tuple[dict[Clique, np.ndarray], float]:
    """Fit a graphical model to noisy measurements by mirror descent (mbi); return its marginals.

    Returns the model's marginal (as float64 counts, axes in clique order) for every measured
    clique, and the model's total.
    """
    fit = estimate_model(domain, measurements, iters=iters, tol=tol)
    return fit.marginals, fit.total


class ModelFit:
    """A fitted graphical model: marginals and log-potentials (numpy), total, and mbi's potentials
    (for warm-starting the next fit)."""

    def __init__(self, marginals: dict[Clique, np.ndarray], potentials: dict[Clique, np.ndarray], total: float,
                 state_potentials: Any):
        self.marginals = marginals
        self.potentials = potentials
        self.total = total
        self.state_potentials = state_potentials


def _as_numpy(vector: Any, cliques: list[Any]) -> dict[Clique, np.ndarray]:
    out: dict[Clique, np.ndarray] = {}
    for cl in cliques:
        factor = vector[cl]
        values = np.asarray(factor.values, dtype=np.float64)
        attrs = tuple(factor.domain.attributes)
        out[tuple(cl)] = np.transpose(values, [attrs.index(a) for a in cl])
    return out


#: From this estimated total on, a fit runs in float64 (see the module's docstring): 2^17 rows, where
#: float32's stall (~3·10⁻⁵ of the total a cell) reaches a few counts, the order of the noise.
FLOAT64_TOTAL = 2.0**17


def float64_for(total: float) -> bool:
    """Whether a fit of this (estimated) total runs in float64."""
    return total >= FLOAT64_TOTAL


def estimate_model(
    domain: Any, measurements: list[Any], *, iters: int, tol: float | None = 1e-7, warm_start: Any = None
) -> ModelFit:
    """Mirror descent (mbi's Algorithm 1 with its Armijo line search) on the measurements, optionally
    warm-started from earlier potentials; see :func:`_descent_step` for how the iterations run.

    In float64 from a total of :data:`FLOAT64_TOTAL`, in JAX's float32 below it."""
    require_mbi()
    total = float(estimation.minimum_variance_unbiased_total(measurements))
    precision = jax.enable_x64(True) if float64_for(total) else contextlib.nullcontext()
    with precision:
        return _estimate(domain, measurements, total, iters=iters, tol=tol, warm_start=warm_start)


def _estimate(domain: Any, measurements: list[Any], total: float, *, iters: int, tol: float | None,
              warm_start: Any) -> ModelFit:
    est = estimation.MirrorDescent()
    try:
        loss_fn = marginal_loss.from_linear_measurements(measurements, domain)
        state = _initial_state(domain, loss_fn, total, warm_start)
        step = compile_lowered(_descent_block.lower(state, loss_fn, total),
                               model_cells(domain, list(loss_fn.cliques)))
        prev, stalls = math.inf, 0
        for _ in range(math.ceil(iters / estimation.CALLBACK_EVERY)):
            state = step(state, loss_fn, total)
            if tol is not None:
                loss = float(state.loss)
                stalls = stalls + 1 if prev - loss <= tol * max(abs(loss), 1.0) else 0
                prev = loss
                if stalls >= 2:
                    break
        mu, potentials = state.mu, state.potentials
        cliques = list(loss_fn.cliques)
    except (AttributeError, TypeError):  # pragma: no cover - mbi changed its estimator hooks
        model = est.estimate(domain, measurements, known_total=total, iters=iters, tol=tol, warm_start=warm_start)
        mu, potentials = model.marginals, model.potentials
        cliques = list(model.cliques)
    return ModelFit(_as_numpy(mu, cliques), _as_numpy(potentials, list(potentials.cliques)), total, potentials)


class DescentState(NamedTuple):
    """Mirror descent's state, with the marginals and loss gradient of the current potentials.

    Before the first step ``loss`` is infinite, ``grad`` is zero and ``mu`` is a placeholder.
    """

    potentials: Any
    mu: Any
    grad: Any
    alpha: Any
    loss: Any


def _descent_step(state: DescentState, loss_fn: Any, known_total: Any, oracle: Any) -> DescentState:
    """One step of mbi's ``MirrorDescent`` (Armijo line search), computing one set of marginals.

    mbi's step runs the marginal oracle twice: on the current potentials and on the trial point.
    The first is always known already: it is the trial point's marginals of the previous step if
    that step was accepted, or the previous step's current marginals if not. So the state carries
    the current marginals and loss gradient, and each step runs the oracle once; the iterates are
    mbi's. The first step only computes them for the starting potentials (its trial point is the
    starting point, accepted, the step size unchanged).
    """
    theta = state.potentials - state.alpha * state.grad
    mu = oracle(theta, known_total)
    loss, grad = loss_and_gradient(loss_fn, mu)
    accept = state.loss - loss >= 0.5 * state.alpha * state.grad.dot(state.mu - mu)
    started = jax.numpy.isfinite(state.loss)
    alpha = jax.numpy.where(started, jax.numpy.where(accept, 1.01 * state.alpha, 0.5 * state.alpha), state.alpha)
    kept = jax.tree.map(lambda new, old: jax.numpy.where(accept, new, old),
                        (theta, mu, grad, loss), (state.potentials, state.mu, state.grad, state.loss))
    return DescentState(kept[0], kept[1], kept[2], alpha, kept[3])


def loss_and_gradient(loss_fn: Any, mu: Any) -> tuple[Any, Any]:
    """``jax.value_and_grad(loss_fn)(mu)``, written out for mbi's plain L2 loss.

    For measurements of plain marginals (mbi's ``DatavectorQuery``) the gradient of
    ``Σ ½‖(μ_c − y)/σ‖²`` with respect to the marginal of a model clique ``C ⊇ c`` is the
    residual ``(μ_c − y)/σ²`` broadcast over the axes of ``C`` not in ``c``. Each ``c`` is projected
    from the clique mbi's ``CliqueVector.project`` would use (the smallest containing it), so the
    value and gradient are autodiff's up to float rounding. Spelt out, the step's program is a few
    operations per measurement instead of autodiff's forward and transposed passes: less to trace,
    lower and compile in every AIM round. Any other loss goes through ``jax.value_and_grad``.
    """
    measurements = loss_fn.data
    plain = loss_fn.loss_fn is marginal_loss._l2_loss and all(
        isinstance(m.query, marginal_loss.DatavectorQuery) for m in measurements)
    if not plain:
        return jax.value_and_grad(loss_fn)(mu)
    jnp = jax.numpy
    loss: Any = 0.0
    residuals: dict[tuple[Clique, Clique], Any] = {}  # (model clique, measured clique) -> Σ (μ_c − y)/σ²
    for m in measurements:
        parent = mu.parent(m.clique)  # the clique itself when measured whole, as in mbi's project
        marginal = mu[parent].project(m.clique).values
        stddev = jnp.maximum(m.stddev, 1e-12)
        diff = (marginal - jnp.reshape(jnp.asarray(m.noisy_measurement), marginal.shape)) / stddev
        loss += 0.5 * jnp.vdot(diff, diff)
        residuals[(parent, m.clique)] = residuals.get((parent, m.clique), 0.0) + diff / stddev
    grads: dict[Clique, Any] = {}
    for (parent, clique), residual in residuals.items():
        attrs = tuple(mu[parent].domain.attributes)
        table = jnp.transpose(residual, [clique.index(a) for a in attrs if a in clique])
        table = jnp.reshape(table, [mu[parent].domain[a] if a in clique else 1 for a in attrs])
        grads[parent] = grads.get(parent, 0.0) + jnp.broadcast_to(table, mu[parent].values.shape)
    tables = {cl: Factor(mu[cl].domain, grads[cl] if cl in grads else jnp.zeros_like(mu[cl].values))
              for cl in mu.cliques}
    return loss, CliqueVector(mu.domain, mu.cliques, tables)


@functools.partial(jax.jit, donate_argnums=0)
def _descent_block(state: DescentState, loss_fn: Any, known_total: Any) -> DescentState:
    """``CALLBACK_EVERY`` steps of :func:`_descent_step` as one fused scan (as mbi's ``_multi_step``)."""
    oracle = estimation.MirrorDescent()._oracle(loss_fn.cliques, state.potentials.domain)
    return jax.lax.scan(lambda s, _: (_descent_step(s, loss_fn, known_total, oracle), None), state, None,
                        length=estimation.CALLBACK_EVERY)[0]


def _initial_state(domain: Any, loss_fn: Any, total: float, warm_start: Any) -> DescentState:
    """Mirror descent's starting state, built without compiling anything.

    Under ``jax.jit`` the all-zero potentials of a cold start (and of every new clique of a warm
    start) would be compile-time constants, and XLA spends seconds constant-folding message passing
    over them; mbi's eager initialisation compiles ~100 small programs one by one. Here the
    potentials are built in numpy and the first step computes their marginals (see
    :func:`_descent_step`).
    """
    potentials = _expand(warm_start, domain, list(loss_fn.cliques))
    # Separate buffers for every leaf (the step donates its state), made in numpy (no XLA program
    # for a new shape).
    def zeros() -> Any:
        return jax.tree.map(lambda x: _to_device(np.zeros(x.shape, x.dtype)), potentials)

    real = np.dtype(jax.numpy.result_type(float))
    alpha = _to_device(np.asarray(2.0 / (loss_fn.lipschitz * total), real))  # MirrorDescent's own first step size
    return DescentState(potentials, zeros(), zeros(), alpha, _to_device(np.asarray(np.inf, real)))


def _to_device(values: np.ndarray) -> Any:
    """A JAX array holding ``values``, by a plain transfer: on jax 0.10 ``jnp.asarray`` of a numpy
    array compiles a small program for each new shape (after every ``forget_compiled`` again)."""
    return jax.device_put(values)


def _expand(warm_start: Any, domain: Any, cliques: list[Clique]) -> Any:
    """``CliqueVector.expand`` (mbi's warm start onto a larger set of cliques) in numpy.

    mbi's own version runs eagerly in JAX, compiling a small program for every new pair of shapes
    (tens of seconds over an AIM run); this computes the same tables with numpy broadcasting.
    """
    real = np.dtype(jax.numpy.result_type(float))
    tables = {}
    mapping = reverse_clique_mapping(cliques, warm_start.cliques, domain=domain) if warm_start is not None else {}
    for cl in cliques:
        target = domain.project(cl)
        values = np.zeros(target.shape, dtype=real)
        for old in mapping.get(cl, ()):
            factor = warm_start[old]
            attrs = list(factor.domain.attributes)
            present = [a for a in target.attributes if a in attrs]
            table = np.transpose(np.asarray(factor.values), [attrs.index(a) for a in present])
            values += table.reshape([target.shape[i] if a in attrs else 1 for i, a in enumerate(target.attributes)])
        tables[cl] = Factor(target, _to_device(values))
    return CliqueVector(domain, cliques, tables)


#: XLA options for the estimation programs of small models (see :func:`compiler_options`): their
#: fits are dominated by compilation, so LLVM runs at level 0, XLA's older loop emitter replaces
#: its fusion emitters, and the module is not split for parallel code generation.
COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False,
                                    "xla_cpu_parallel_codegen_split_count": 1}
#: XLA options for large models, whose fits are dominated by the iterations: LLVM level 1 with the
#: fusion emitters compiles 2-4.5 CPU-s more and runs each iteration 2.5-5 times faster.
LARGE_MODEL_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 1,
                                       "xla_cpu_parallel_codegen_split_count": 1}
#: A model is large from this many cells in its junction tree (AIM's 1 MB at 8 bytes a cell): about
#: where the faster iterations repay the longer compilation (~4 CPU-s more in AIM's fits) over a
#: warm-started fit's 10-20 calls of 50 iterations, with dpsynth's one-oracle step (figures in
#: ``benchmarks/RESULTS.md``; 2^16 before that step halved the iterations' cost).
LARGE_MODEL_CELLS = 2**17


def model_cells(domain: Any, cliques: Sequence[Clique]) -> int:
    """Cells of the junction tree mbi builds for ``cliques`` (what one message-passing sweep touches)."""
    tree = junction_tree.make_junction_tree(domain, [tuple(c) for c in cliques])[0]
    return int(sum(domain.size(cl) for cl in junction_tree.maximal_cliques(tree)))


def compiler_options(cells: int | None = None) -> dict[str, Any]:
    """The per-program XLA options for a model of ``cells`` junction-tree cells (small if not
    given), less any option the user set in ``XLA_FLAGS`` (theirs win)."""
    chosen = LARGE_MODEL_OPTIONS if cells is not None and cells >= LARGE_MODEL_CELLS else COMPILER_OPTIONS
    user = os.environ.get("XLA_FLAGS", "")
    return {k: v for k, v in chosen.items() if not re.search(rf"--{k}(=|\s|$)", user)}


def compile_lowered(lowered: Any, cells: int | None = None) -> Any:
    """Compile a lowered estimation program with :func:`compiler_options` for its model size."""
    return lowered.compile(compiler_options=compiler_options(cells) or None)


def forget_compiled() -> None:
    """Drop JAX's compiled programs (AIM compiles one per round and never reuses the old ones)."""
    jax.clear_caches()


def junction_tree_order(domain: Any, cliques: Sequence[Clique]) -> tuple[list[Clique], list[str]]:
    """The cliques of the junction tree mbi builds for ``cliques`` and its elimination order."""
    require_mbi()
    tree, elimination = junction_tree.make_junction_tree(domain, [tuple(c) for c in cliques])
    return [tuple(c) for c in tree.nodes], list(elimination)
