"""Black-box release audit: membership inference from the synthetic output only.

This is the audit a release gate prints. It treats the synthesizer as a black box (``make()``
returns a fresh, unfitted estimator; only ``fit`` and ``sample`` are used) and asks: can an
attacker who sees one synthetic table tell whether a given record was in the training data?

Targets (the records whose membership is attacked):

* **canaries** built from the public schema domain: every column at one of its rarest levels in
  the base data (canary 0 at the rarest; further canaries at random among the rarest quarter),
  numeric columns at a value drawn inside the chosen bin's public bounds. A rare combination of
  rare levels is where a marginal-based synthesizer is most exposed. (Choosing the rarest levels
  reads the base data's level counts: the audit is not DP.)
* **outliers**: the real records most isolated by their nearest-neighbour Gower distance in the
  (possibly subsampled) real data, the most vulnerable real people.

For each target, world 0 is the base data without the target and world 1 the same plus the target
(one row added: add/remove neighbours). ``fits_per_world`` fits are made in each world, each with
an untracked ledger (audit fits are internal evidence, never released or charged) and secure or
seeded noise; each fit is sampled (as many rows as the base data, in both worlds) and every attack
scores the target from that synthetic table alone:

* ``counting``: synthetic rows equal to the target on every column (encoded under the schema,
  numeric columns by their public bin), with ties broken by the rows equal to it on its three
  rarest columns: ``exact + rare / (n + 1)``;
* ``dcr``: minus the Gower distance from the target to the closest synthetic record (the mixed-type
  distance of :mod:`dpsynth.pii.replay`: public bounds scale numeric columns);
* ``domias``: a density ratio in the spirit of DOMIAS (van Breugel et al., AISTATS 2023):
  log p_synthetic(target) − log p_reference(target), both densities product-kernel estimates over
  the encoded domain (Aitchison–Aitken kernel, mismatch mass ``KERNEL_MISMATCH`` per column). The
  reference is a sample of real rows held out of the audited data (disjoint from it) when the real
  table has more rows than ``reference_rows``, otherwise the public domain's uniform density.

Statistics, per attack, over the pooled trials of all targets (higher score: world 1): AUC, TPR at
1% FPR and the ROC curve (descriptive, from every trial), and the Clopper–Pearson ε lower bound of
:func:`dpsynth.audit.bounds.threshold_audit` with the threshold chosen on a random half of the
trials and the errors counted on the other half. Pooling targets is valid: every neighbouring pair
satisfies FPRⱼ + e^ε·FNRⱼ ≥ 1 − δ, hence so do the averages over targets, and the error counts
are sums of independent Bernoulli trials whose lower tail is no heavier than the binomial's with
the same mean (Hoeffding 1956), so the Clopper–Pearson bounds stay valid. With several attacks,
each bound is computed at confidence 1 − (1 − confidence)/k (Bonferroni over the k attacks), so the
headline, the strongest attack's bound, holds at the stated confidence.

Parallel fits (``workers`` > 1): the fits are independent (each (repetition, target, world) has its
own seed), so they run in a pool of ``workers`` fresh Python processes (the ``spawn`` start method:
JAX is not fork-safe), each limited to one BLAS/OpenMP/XLA thread so that N workers on N cores do
not oversubscribe them. A worker draws the same noise as the serial audit (a fresh OpenDP sampler,
or ``SeededNoise(fit_seed)``), fits with the same silent untracked ledger, scores the synthetic
table itself (only the scores come back) and prints nothing: its stdout and stderr go to the null
device, and the warnings a fit raises are sent back and re-issued, once each, in the parent. The
scores are gathered in the serial order, so the result is identical to the serial one with seeded
noise (only ``seconds`` and ``details.workers`` differ). ``make`` must then be picklable (a class,
or ``functools.partial(cls, epsilon=..., delta=..., **params)``, importable in a fresh process); an
unpicklable ``make`` (a lambda, a local function) is refused with a :class:`ParameterError` before
any fit, rather than silently run serially.

The audit reads the real data and is NOT differentially private. Its result describes targets by
kind and index (and an outlier's nearest-neighbour distance), never by their values.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import inspect
import math
import multiprocessing
import os
import pickle
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

from dpsynth import _validation as check
from dpsynth.audit.bounds import NOT_DP_NOTICE, AuditResult, threshold_audit
from dpsynth.audit.transcript import AuditLedger
from dpsynth.audit.whitebox import AuditError
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.mechanisms.noise import NoiseSource, OpenDPNoise, SeededNoise
from dpsynth.schema.encode import decode, encode
from dpsynth.schema.schema import Schema

METHOD = "blackbox_membership_inference"
ATTACKS = ("counting", "dcr", "domias")
#: Aitchison–Aitken kernel of the DOMIAS densities: the probability mass a column puts on the
#: values other than the target's (spread evenly over them).
KERNEL_MISMATCH = 0.1
#: Columns of a target's rarest values matched by the counting attack's tie-break.
RARE_COLUMNS = 3
#: The ROC curve is reported at no more than this many points.
ROC_POINTS = 101
_CHUNK_CELLS = 4_000_000


@contextlib.contextmanager
def _noise(source: NoiseSource) -> Iterator[None]:
    """Make every dpsynth synthesizer fitted inside draw from ``source``."""
    import dpsynth.synth.base as base
    from dpsynth.audit.transcript import _LOCK

    with _LOCK:
        original = base.make_noise
        base.make_noise = lambda _seed: source  # type: ignore[assignment]
        try:
            yield
        finally:
            base.make_noise = original


@dataclass(frozen=True)
class AttackResult:
    """One attack's statistics over the pooled trials (higher score: world 1)."""

    name: str
    auc: float
    tpr_at_1pct_fpr: float
    roc_fpr: list[float]
    roc_tpr: list[float]
    bound: AuditResult

    def to_dict(self) -> dict[str, Any]:
        d = self.bound.details
        return {
            "auc": self.auc,
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "epsilon_lower_bound": self.bound.epsilon_lower_bound,
            "max_provable_epsilon": self.bound.max_provable_epsilon,
            "roc": {"fpr": list(self.roc_fpr), "tpr": list(self.roc_tpr)},
            "threshold": _finite_or_none(d["epsilon_threshold"]),
            "threshold_chosen_on": d["threshold_chosen_on"],
            "evaluation_trials": d["evaluation_trials"],
            "errors": d["epsilon_errors"],
            "confidence": d["confidence_per_test"],
        }


@dataclass(frozen=True)
class BlackboxResult:
    """Evidence of the black-box release audit. NOT differentially private (see ``notice``);
    holds no data row: targets are described by kind and index."""

    claimed_epsilon: float
    claimed_delta: float
    confidence: float
    attacks: dict[str, AttackResult]
    targets: list[dict[str, Any]]
    fits: int
    seconds: float
    reference_rows: int | None
    details: dict[str, Any] = field(default_factory=dict)
    notice: str = NOT_DP_NOTICE

    @property
    def strongest(self) -> AttackResult:
        """The attack with the largest ε bound (then the largest AUC)."""
        return max(self.attacks.values(), key=lambda a: (a.bound.epsilon_lower_bound, a.auc))

    @property
    def epsilon_lower_bound(self) -> float:
        return self.strongest.bound.epsilon_lower_bound

    @property
    def max_provable_epsilon(self) -> float:
        return max(a.bound.max_provable_epsilon for a in self.attacks.values())

    @property
    def trials(self) -> int:
        return self.fits

    @property
    def auc(self) -> float:
        return max(a.auc for a in self.attacks.values())

    @property
    def tpr_at_1pct_fpr(self) -> float:
        return max(a.tpr_at_1pct_fpr for a in self.attacks.values())

    @property
    def violation(self) -> bool:
        return self.epsilon_lower_bound > self.claimed_epsilon

    @property
    def conclusive(self) -> bool:
        """Whether the audit could have shown a violation at all (its maximum exceeds the claim)."""
        return self.max_provable_epsilon > self.claimed_epsilon

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "claimed_epsilon": self.claimed_epsilon,
            "claimed_delta": self.claimed_delta,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "max_provable_epsilon": self.max_provable_epsilon,
            "confidence": self.confidence,
            "trials": self.trials,
            "violation": self.violation,
            "conclusive": self.conclusive,
            "auc": self.auc,
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "strongest_attack": self.strongest.name,
            "attacks": {name: a.to_dict() for name, a in self.attacks.items()},
            "targets": [dict(t) for t in self.targets],
            "fits": self.fits,
            "seconds": self.seconds,
            "reference_rows": self.reference_rows,
            "details": dict(self.details),
            "notice": self.notice,
        }


# -- statistics ---------------------------------------------------------------------------------------


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def roc(scores_0: np.ndarray, scores_1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The empirical ROC curve of the test "world 1 iff score ≥ t", from (0, 0) to (1, 1)."""
    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    thresholds = np.unique(np.concatenate([s0, s1]))[::-1]
    fpr = np.concatenate([[0.0], [(s0 >= t).mean() for t in thresholds]])
    tpr = np.concatenate([[0.0], [(s1 >= t).mean() for t in thresholds]])
    return fpr, tpr


def auc(scores_0: np.ndarray, scores_1: np.ndarray) -> float:
    """P[score₁ > score₀] + ½·P[tie] (Mann–Whitney), the area under the ROC curve."""
    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    ranks = stats.rankdata(np.concatenate([s0, s1]))
    return float((ranks[len(s0):].sum() - len(s1) * (len(s1) + 1) / 2) / (len(s0) * len(s1)))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float = 0.01) -> float:
    """The largest TPR of a threshold whose FPR is at most ``level``."""
    return float(tpr[fpr <= level + 1e-12].max())


def _downsample(fpr: np.ndarray, tpr: np.ndarray, points: int = ROC_POINTS) -> tuple[list[float], list[float]]:
    if len(fpr) > points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, points)).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [round(float(x), 6) for x in fpr], [round(float(x), 6) for x in tpr]


# -- distances and densities --------------------------------------------------------------------------


def _gower_block(query: Any, reference: Any, q: slice) -> np.ndarray:
    """Gower distances (× number of columns) of query rows ``q`` to every reference row, with
    :func:`dpsynth.pii.replay.nearest_distances`'s conventions (missing equal to missing)."""
    qc, qn = query.cat[q], query.num[q]
    dist = np.zeros((len(qc), len(reference)), dtype=np.float32)
    for j in range(qc.shape[1]):
        dist += qc[:, j, None] != reference.cat[None, :, j]
    for j in range(qn.shape[1]):
        q_missing, r_missing = np.isnan(qn[:, j]), np.isnan(reference.num[:, j])
        diff = np.abs(np.nan_to_num(qn[:, j])[:, None] - np.nan_to_num(reference.num[:, j])[None, :])
        one = q_missing[:, None] ^ r_missing[None, :]
        both = q_missing[:, None] & r_missing[None, :]
        dist += np.where(both, 0.0, np.where(one, 1.0, diff))
    return dist


def isolation(table: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Each row's Gower distance to its nearest *other* row (0 for a row with a duplicate)."""
    from dpsynth.pii.replay import _encode

    (enc,) = _encode([table], schema, schema.names)
    n, n_cols = len(enc), enc.cat.shape[1] + enc.num.shape[1]
    out = np.zeros(n, dtype=float)
    if n < 2 or n_cols == 0:
        return out
    chunk = max(1, _CHUNK_CELLS // (n * n_cols))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        dist = _gower_block(enc, enc, slice(start, stop))
        dist[np.arange(stop - start), np.arange(start, stop)] = np.inf
        out[start:stop] = dist.min(axis=1) / n_cols
    return out


def _log_kernel_density(target: np.ndarray, rows: np.ndarray, sizes: np.ndarray) -> float:
    """log of the product-kernel density (Aitchison–Aitken) of ``rows`` at ``target`` (codes)."""
    match = np.log1p(-KERNEL_MISMATCH)
    with np.errstate(divide="ignore"):
        miss = np.where(sizes > 1, np.log(KERNEL_MISMATCH) - np.log(np.maximum(sizes - 1, 1)), -np.inf)
    eq = rows == target[None, :]
    logk = np.where(eq, match, miss[None, :]).sum(axis=1)
    return float(logsumexp(logk) - math.log(len(rows)))


# -- the audit ----------------------------------------------------------------------------------------


@dataclass
class _Target:
    kind: str
    index: int
    row: pd.DataFrame  # one row (private for an outlier: never reported)
    base: pd.DataFrame  # world 0
    codes: np.ndarray
    rare_columns: np.ndarray
    log_reference: float
    nn_distance: float | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "index": self.index}
        if self.nn_distance is not None:
            out["nn_distance"] = round(self.nn_distance, 6)
        return out


def _check_arguments(make: Any, real: Any, schema: Any, claimed_epsilon: Any, claimed_delta: Any,
                     fits_per_world: Any, canaries: Any, outliers: Any, reference_rows: Any, attacks: Any,
                     confidence: Any, noise: Any, seed: Any, progress: Any, workers: Any) -> tuple[str, ...]:
    if not callable(make):
        raise ParameterError(f"make ({make!r}) must be a callable returning a fresh, unfitted synthesizer")
    if not isinstance(real, pd.DataFrame):
        raise ParameterError(f"real (a {type(real).__name__}) must be a pandas DataFrame")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema (a {type(schema).__name__}) must be a dpsynth Schema")
    check.positive_finite("claimed_epsilon", claimed_epsilon)
    check.half_open_unit("claimed_delta", claimed_delta)

    def integer(name: str, value: Any, low: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ParameterError(f"{name} ({value!r}) must be an integer >= {low}")

    integer("fits_per_world", fits_per_world, 2)
    integer("canaries", canaries, 0)
    integer("outliers", outliers, 0)
    if canaries + outliers < 1:
        raise ParameterError(f"canaries ({canaries!r}) + outliers ({outliers!r}) must be at least 1 target")
    if reference_rows is not None:
        integer("reference_rows", reference_rows, 10)
    integer("seed", seed, 0)
    if workers is not None:
        integer("workers", workers, 1)
        if workers > 1:
            try:
                pickle.dumps(make)
            except Exception as exc:  # noqa: BLE001 - pickling may fail in many ways; all mean "cannot send"
                raise ParameterError(
                    f"make ({make!r}) cannot be pickled for workers={workers} ({type(exc).__name__}: {exc}); pass "
                    "a class or functools.partial(cls, epsilon=..., delta=..., **params) of a class importable "
                    "from a module, or workers=1 to fit in this process") from None
    names = (attacks,) if isinstance(attacks, str) else attacks
    if not isinstance(names, (list, tuple)) or not names:
        raise ParameterError(f"attacks ({attacks!r}) must be a non-empty list of {', '.join(ATTACKS)}")
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        raise ParameterError(f"attacks ({attacks!r}): unknown attack {unknown[0]!r}; expected some of "
                             f"{', '.join(ATTACKS)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"attacks ({attacks!r}) must not name an attack twice")
    confidence = check.real("confidence", confidence)
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence ({confidence!r}) must be in the open interval (0, 1)")
    if noise not in ("secure", "seeded"):
        raise ParameterError(f"noise ({noise!r}) must be 'secure' or 'seeded'")
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress ({progress!r}) must be None or a callable(done, total)")
    return tuple(names)


def _as_like(values: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """A decoded canary row with the real table's column types (text stays text)."""
    out = {}
    for name in like.columns:
        if name not in values.columns:
            out[name] = [None]
            continue
        v = values[name].iloc[0]
        if v is not None and not pd.isna(v) and not pd.api.types.is_numeric_dtype(like[name].dtype):
            v = str(v)
        out[name] = [v]
    return pd.DataFrame(out)


def _canary_codes(codes: np.ndarray, schema: Schema, k: int, rng: np.random.Generator) -> np.ndarray:
    """Canary ``k``: every column at one of its rarest (non-missing, non-``other``) values in the
    base data; canary 0 at the rarest, the others at random among the rarest quarter."""
    out = np.empty(len(schema), dtype=np.int64)
    for j, col in enumerate(schema.columns):
        n_values = len(col.levels) if col.kind == "categorical" else col.n_values
        counts = np.bincount(codes[:, j], minlength=col.size)[:n_values]
        order = np.argsort(counts, kind="stable")
        pool = order[: max(1, n_values // 4)]
        out[j] = pool[0] if k == 0 else rng.choice(pool)
    return out


def _rare_columns(target: np.ndarray, base_codes: np.ndarray) -> np.ndarray:
    freq = (base_codes == target[None, :]).sum(axis=0)
    return np.argsort(freq, kind="stable")[: min(RARE_COLUMNS, len(target))]


def _sample(model: Any, n: int, random_state: int | None) -> Any:
    if random_state is not None:
        try:
            if "random_state" in inspect.signature(model.sample).parameters:
                return model.sample(n, random_state=random_state)
        except (TypeError, ValueError):
            pass
    return model.sample(n)


#: Environment of a worker process: one thread per BLAS / OpenMP / XLA pool.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: A worker process's state (set by :func:`_worker_init`): make, targets, schema, attacks, noise, ledger.
_WORKER: tuple[Any, ...] | None = None


def _fit_and_score(make: Callable[[], Any], target: _Target, world: int, fit_seed: int, noise: str,
                   names: Sequence[str], schema: Schema, ledger: AuditLedger) -> dict[str, float]:
    """One fit in ``world`` for ``target``, sampled once and scored by every attack."""
    data = target.base if world == 0 else pd.concat([target.base, target.row], ignore_index=True)
    source: NoiseSource = OpenDPNoise() if noise == "secure" else SeededNoise(fit_seed, _warn=False)
    model = make()
    try:
        with _noise(source):
            model.fit(data, schema=schema, ledger=ledger)
        synthetic = _sample(model, len(target.base), fit_seed if noise == "seeded" else None)
    except Exception as exc:  # noqa: BLE001 - an audited fit may fail in any way; the audit reports it
        raise AuditError(f"a fit in world {world} for {target.kind} {target.index} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    return _score(names, target, synthetic, schema)


def _worker_env() -> dict[str, str]:
    env = dict(_WORKER_ENV)
    xla = os.environ.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{xla} {_XLA_FLAGS}".strip() if _XLA_FLAGS not in xla else xla
    return env


@contextlib.contextmanager
def _spawn_environment() -> Iterator[None]:
    """Spawned workers inherit the environment at their start: limit their thread pools there
    (before they import numpy or JAX), and restore this process's environment afterwards."""
    saved = {k: os.environ.get(k) for k in (*_WORKER_ENV, "XLA_FLAGS")}
    os.environ.update(_worker_env())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_init(make: Callable[[], Any], targets: list[_Target], schema: Schema, names: tuple[str, ...],
                 noise: str) -> None:
    """Start a worker: silent (stdout and stderr to the null device, Python's and the C level's),
    one thread per pool, the audit's state kept for its fits."""
    global _WORKER
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
    os.environ.update(_worker_env())
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    _WORKER = (make, targets, schema, names, noise, AuditLedger())


def _worker_fit(ti: int, world: int, fit_seed: int) -> tuple[dict[str, float], list[tuple[Any, ...]]]:
    """One fit in a worker: its scores, and the warnings it raised (re-issued by the parent)."""
    assert _WORKER is not None
    make, targets, schema, names, noise, ledger = _WORKER
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = _fit_and_score(make, targets[ti], world, fit_seed, noise, names, schema, ledger)
    return scores, [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


def _run_fits(jobs: list[tuple[int, int, int]], make: Callable[[], Any], targets: list[_Target], schema: Schema,
              names: tuple[str, ...], noise: str, workers: int,
              progress: Callable[[int, int], None] | None) -> list[dict[str, float]]:
    """Every job's scores, in the order of ``jobs`` (``(target index, world, fit seed)``)."""
    total = len(jobs)
    out: list[dict[str, float] | None] = [None] * total
    if workers <= 1:
        ledger = AuditLedger()
        for i, (ti, world, fit_seed) in enumerate(jobs):
            out[i] = _fit_and_score(make, targets[ti], world, fit_seed, noise, names, schema, ledger)
            if progress is not None:
                progress(i + 1, total)
        return out  # type: ignore[return-value]
    seen: set[tuple[Any, ...]] = set()
    context = multiprocessing.get_context("spawn")
    with _spawn_environment():
        pool = concurrent.futures.ProcessPoolExecutor(min(workers, total), mp_context=context,
                                                      initializer=_worker_init,
                                                      initargs=(make, targets, schema, names, noise))
        try:
            futures = {pool.submit(_worker_fit, *job): i for i, job in enumerate(jobs)}
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    try:
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            try:
                scores, caught = future.result()
            except concurrent.futures.BrokenExecutor as exc:
                raise AuditError(f"a worker process of the audit stopped ({exc}); a class that a fresh Python "
                                 "process cannot import cannot be fitted there: use workers=1") from None
            except Exception as exc:  # noqa: BLE001 - re-raised as the serial audit raises it (no remote chain)
                raise exc from None
            for w in caught:
                if w not in seen:
                    seen.add(w)
                    warnings.warn_explicit(w[1], w[0], w[2], w[3])
            out[futures[future]] = scores
            if progress is not None:
                progress(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out  # type: ignore[return-value]


def blackbox_audit(
    make: Callable[[], Any],
    real: pd.DataFrame,
    schema: Schema,
    *,
    claimed_epsilon: float,
    claimed_delta: float,
    fits_per_world: int = 8,
    canaries: int = 1,
    outliers: int = 1,
    reference_rows: int | None = 2000,
    attacks: Sequence[str] = ATTACKS,
    confidence: float = 0.95,
    noise: str = "secure",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    rows_are: str = "real",
) -> BlackboxResult:
    """Membership inference on canaries and outliers from the synthetic output only.

    Args:
        make: returns a fresh, unfitted synthesizer (the estimator contract).
        real: the real (private) table; ``schema`` its public schema.
        claimed_epsilon, claimed_delta: the claim the ε lower bound is compared with.
        fits_per_world: fits per world and per target (each sampled once).
        canaries: targets built from the public domain; ``outliers``: the most isolated real rows.
        reference_rows: the audit fits on a seeded random subsample of this many real rows (all
            rows when ``None`` or when the table is smaller); the DOMIAS reference is as many
            other real rows when the table has them, else the public domain's uniform.
        attacks: some of ``counting``, ``dcr``, ``domias``.
        confidence: of the headline bound (Bonferroni over the attacks).
        noise: "secure" (OpenDP, the noise of a release) or "seeded" (reproducible, insecure); a
            class that does not draw through ``dpsynth.mechanisms`` draws its own noise.
        seed: seeds the subsample, the canaries, the threshold split (and the noise when seeded).
        progress: called as ``progress(done, total)`` after every fit (in this process, as fits
            complete).
        workers: ``None`` or 1: fit in this process; N > 1: fit in N spawned processes (one thread
            each), with a result identical to the serial one under seeded noise. ``make`` must
            then be picklable (a class, or ``functools.partial(cls, epsilon=..., **params)``).
        rows_are: what ``real`` is, in the result's words: ``"real"`` (the private table: the result
            is NOT DP) or e.g. ``"synthetic"`` (a DP output: the audit is post-processing of it).

    Raises:
        ParameterError: a bad argument, or a ``make`` that cannot be pickled with workers > 1
            (nothing is fitted).
        DataError: the real table does not fit the schema.
        AuditError: a fit failed, a synthetic table does not fit the schema, or a worker process
            stopped.

    Privacy: NOT differentially private; reads ``real``. The result holds no data row.
    """
    start = time.perf_counter()
    names = _check_arguments(make, real, schema, claimed_epsilon, claimed_delta, fits_per_world, canaries,
                             outliers, reference_rows, attacks, confidence, noise, seed, progress, workers)
    claimed_epsilon, claimed_delta = float(claimed_epsilon), float(claimed_delta)
    fits_per_world, canaries, outliers, seed = int(fits_per_world), int(canaries), int(outliers), int(seed)
    workers = 1 if workers is None else int(workers)
    rng = np.random.default_rng(seed)
    real = real.reset_index(drop=True)
    absent = [c for c in schema.names if c not in real.columns]
    if absent:
        raise DataError(f"the real table has no column(s) {', '.join(map(repr, absent))} that the schema declares")
    real = real[schema.names]
    all_codes = encode(real, schema)  # validates the whole table; learns nothing

    # the audited data (a seeded subsample) and the DOMIAS reference (other real rows, or uniform)
    order = rng.permutation(len(real))
    if reference_rows is not None and len(real) > reference_rows:
        pool_idx = np.sort(order[:reference_rows])
        held_idx = order[reference_rows:2 * reference_rows]
        subsample = f"a seeded random {reference_rows:,} of the {len(real):,} {rows_are} rows (seed {seed})"
    else:
        pool_idx, held_idx = np.arange(len(real)), np.arange(0)
        subsample = f"all {len(real):,} {rows_are} rows"
    if len(pool_idx) < 2 + outliers:
        raise ParameterError(f"outliers ({outliers}) must leave at least 2 rows of the {len(pool_idx)} audited rows")
    pool, pool_codes = real.iloc[pool_idx].reset_index(drop=True), all_codes[pool_idx]
    sizes = np.asarray(schema.sizes, dtype=np.int64)
    if len(held_idx):
        held_codes = all_codes[held_idx]
        domias_reference = f"{len(held_idx):,} held-out {rows_are} rows (not in the audited data)"

        def log_reference(codes: np.ndarray) -> float:
            return _log_kernel_density(codes, held_codes, sizes)
    else:
        domias_reference = f"the public domain's uniform density (no {rows_are} rows left to hold out)"

        def log_reference(codes: np.ndarray) -> float:
            return -float(np.log(sizes).sum())

    targets: list[_Target] = []
    if outliers:
        distances = isolation(pool, schema)
        for p in np.argsort(-distances, kind="stable")[:outliers]:
            base = pool.drop(index=int(p)).reset_index(drop=True)
            codes = pool_codes[p]
            base_codes = np.delete(pool_codes, p, axis=0)
            targets.append(_Target("outlier", int(pool_idx[p]), pool.iloc[[int(p)]].reset_index(drop=True), base,
                                   codes, _rare_columns(codes, base_codes), log_reference(codes),
                                   float(distances[p])))
    for k in range(canaries):
        codes = _canary_codes(pool_codes, schema, k, rng)
        row = _as_like(decode(codes[None, :], schema, rng), pool)
        targets.append(_Target("canary", k, row, pool, encode(row, schema)[0], _rare_columns(codes, pool_codes),
                               log_reference(codes)))
    targets.sort(key=lambda t: (t.kind != "canary", t.index))

    scores: dict[str, dict[int, list[float]]] = {a: {0: [], 1: []} for a in names}
    jobs = [(ti, world, seed + 1 + ((t * len(targets) + ti) * 2 + world))
            for t in range(fits_per_world) for ti in range(len(targets)) for world in (0, 1)]
    total = len(jobs)
    for (_, world, _), fit_scores in zip(jobs, _run_fits(jobs, make, targets, schema, names, noise, workers,
                                                         progress), strict=True):
        for name, value in fit_scores.items():
            scores[name][world].append(value)

    per_attack = 1.0 - (1.0 - confidence) / len(names)
    results: dict[str, AttackResult] = {}
    for name in names:
        s0, s1 = np.asarray(scores[name][0]), np.asarray(scores[name][1])
        bound = threshold_audit(s0, s1, claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta,
                                confidence=per_attack, method=f"{METHOD}:{name}", threshold=None, seed=seed)
        fpr, tpr = roc(s0, s1)
        rf, rt = _downsample(fpr, tpr)
        results[name] = AttackResult(name, round(auc(s0, s1), 6), round(tpr_at_fpr(fpr, tpr), 6), rf, rt, bound)
    details = {
        "noise": "secure (OpenDP)" if noise == "secure" else "seeded (insecure, audit only)",
        "fits_per_world": fits_per_world,
        "audited_rows": len(pool),
        "subsample": subsample,
        "domias_reference": domias_reference,
        "synthetic_rows_per_fit": "as many as the base data (world 0) in both worlds",
        "multiple_testing": (f"Bonferroni over {len(names)} attacks: each bound at confidence {per_attack:.6g}"
                             if len(names) > 1 else "one attack: no correction"),
        "pooling": "trials of every target pooled per world; one threshold per attack, chosen on a random half",
        "ledger": "untracked: audit fits are internal evidence, never released or charged",
        "workers": ("1 (fits in this process)" if workers == 1 else
                    f"{min(workers, total)} spawned processes (one thread each; same seeds and order as serial)"),
    }
    return BlackboxResult(
        claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta, confidence=float(confidence),
        attacks=results, targets=[t.describe() for t in targets], fits=total,
        seconds=round(time.perf_counter() - start, 2), reference_rows=reference_rows, details=details,
        **({} if rows_are == "real" else {
            "notice": f"audit evidence computed from the {rows_are} table only, never from the private rows "
                      "(post-processing of a DP output); contains no private row"}),
    )


def _score(names: Sequence[str], target: _Target, synthetic: Any, schema: Schema) -> dict[str, float]:
    """Every attack's score of ``target`` from one synthetic table (higher: world 1)."""
    if not isinstance(synthetic, pd.DataFrame) or len(synthetic) == 0:
        raise AuditError("a synthesizer's sample() did not return a non-empty pandas DataFrame")
    try:
        codes = encode(synthetic, schema) if {"counting", "domias"} & set(names) else None
    except DataError as exc:
        raise AuditError(f"a synthetic table does not fit the schema: {exc}") from None
    out: dict[str, float] = {}
    if codes is not None and "counting" in names:
        eq = codes == target.codes[None, :]
        exact = int(eq.all(axis=1).sum())
        rare = int(eq[:, target.rare_columns].all(axis=1).sum())
        out["counting"] = exact + rare / (len(codes) + 1)
    if "dcr" in names:
        from dpsynth.pii.replay import _encode, nearest_distances

        try:
            t_enc, s_enc = _encode([target.row, synthetic], schema, schema.names)
        except DataError as exc:
            raise AuditError(f"a synthetic table does not fit the schema: {exc}") from None
        out["dcr"] = -float(nearest_distances(t_enc, s_enc)[0])
    if codes is not None and "domias" in names:
        sizes = np.asarray(schema.sizes, dtype=np.int64)
        out["domias"] = _log_kernel_density(target.codes, codes, sizes) - target.log_reference
    return out
