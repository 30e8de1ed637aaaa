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

The audit reads the real data and is NOT differentially private. Its result describes targets by
kind and index (and an outlier's nearest-neighbour distance), never by their values.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

from dpsynth import _validation as check
from dpsynth.audit.bounds import NOT_DP_NOTICE, AuditResult, threshold_audit
from dpsynth.audit.whitebox import AuditError
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.mechanisms.noise import NoiseSource, OpenDPNoise, SeededNoise
from dpsynth.privacy.budgets import ZCDP
from dpsynth.privacy.events import PrivacyEvent, total_delta, total_rdp, total_rho
from dpsynth.privacy.ledger import Reservation, _Untracked
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


class _AuditLedger(_Untracked):
    """The ledger of an audit fit: records nothing and does not warn (an audit fit is internal
    evidence, never released; the audit's result says so)."""

    def __repr__(self) -> str:
        return "dpsynth.audit.blackbox.AuditLedger"

    def reserve(self, dataset: str | None, events: Sequence[PrivacyEvent], **_: Any) -> Reservation:
        events = list(events)
        return Reservation(None, None, None, ZCDP(total_rho(events)), total_delta(events), total_rdp(events))


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
                     confidence: Any, noise: Any, seed: Any, progress: Any) -> tuple[str, ...]:
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
        progress: called as ``progress(done, total)`` after every fit.

    Raises:
        ParameterError: a bad argument (nothing is fitted).
        DataError: the real table does not fit the schema.
        AuditError: a fit failed or a synthetic table does not fit the schema.

    Privacy: NOT differentially private; reads ``real``. The result holds no data row.
    """
    start = time.perf_counter()
    names = _check_arguments(make, real, schema, claimed_epsilon, claimed_delta, fits_per_world, canaries,
                             outliers, reference_rows, attacks, confidence, noise, seed, progress)
    claimed_epsilon, claimed_delta = float(claimed_epsilon), float(claimed_delta)
    fits_per_world, canaries, outliers, seed = int(fits_per_world), int(canaries), int(outliers), int(seed)
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
        subsample = f"a seeded random {reference_rows:,} of the {len(real):,} real rows (seed {seed})"
    else:
        pool_idx, held_idx = np.arange(len(real)), np.arange(0)
        subsample = f"all {len(real):,} real rows"
    if len(pool_idx) < 2 + outliers:
        raise ParameterError(f"outliers ({outliers}) must leave at least 2 rows of the {len(pool_idx)} audited rows")
    pool, pool_codes = real.iloc[pool_idx].reset_index(drop=True), all_codes[pool_idx]
    sizes = np.asarray(schema.sizes, dtype=np.int64)
    if len(held_idx):
        held_codes = all_codes[held_idx]
        domias_reference = f"{len(held_idx):,} held-out real rows (not in the audited data)"

        def log_reference(codes: np.ndarray) -> float:
            return _log_kernel_density(codes, held_codes, sizes)
    else:
        domias_reference = "the public domain's uniform density (no real rows left to hold out)"

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
    total, done = 2 * fits_per_world * len(targets), 0
    ledger = _AuditLedger()
    for t in range(fits_per_world):
        for ti, target in enumerate(targets):
            for world in (0, 1):
                data = target.base if world == 0 else pd.concat([target.base, target.row], ignore_index=True)
                fit_seed = seed + 1 + ((t * len(targets) + ti) * 2 + world)
                source: NoiseSource = OpenDPNoise() if noise == "secure" else SeededNoise(fit_seed, _warn=False)
                model = make()
                try:
                    with _noise(source):
                        model.fit(data, schema=schema, ledger=ledger)
                    synthetic = _sample(model, len(target.base), fit_seed if noise == "seeded" else None)
                except Exception as exc:  # noqa: BLE001 - an audited fit may fail in any way; the audit reports it
                    raise AuditError(f"a fit in world {world} for {target.kind} {target.index} failed: "
                                     f"{type(exc).__name__}: {exc}") from None
                for name, value in _score(names, target, synthetic, schema).items():
                    scores[name][world].append(value)
                done += 1
                if progress is not None:
                    progress(done, total)

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
    }
    return BlackboxResult(
        claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta, confidence=float(confidence),
        attacks=results, targets=[t.describe() for t in targets], fits=total,
        seconds=round(time.perf_counter() - start, 2), reference_rows=reference_rows, details=details,
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
