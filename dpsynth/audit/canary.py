"""The release gate's canary audit: one-run membership inference on canaries from the public
domain, scored from the synthetic output only (any generator, dpsynth's or not).

It generalises the one-run audit of Steinke, Nasr and Jagielski (NeurIPS 2023, "Privacy auditing
with one (1) training run") to a black box that is fitted at most ``fits`` times (three by default)
and never reads a private row: every table it fits is generated from the public schema.

**The tables.** Each fit gets its own table, drawn with the audit's seeded generator:

* every column with at least three values *reserves* half of them (chosen at random, public);
* ``base_rows`` *base rows* take every column uniformly among its unreserved values; numeric columns
  a value drawn uniformly inside the public bin (an integer for integer columns);
* one *key canary* per reserved value (its key): that value in its column, the other columns drawn
  as a base row's. A reserved value appears in no other row of the table, so the key canary is the
  only record that can put it into the output. A schema with fewer than ``MIN_KEYS`` reserved values
  adds canaries keyed by pairs, then triples, of reserved values (then a value is shared by several
  canaries and only its combination is a canary's own);
* every key canary is included with probability ½ (an independent, seeded coin); the base rows
  always are. The table is shuffled.

**The scores** (of the first ``sample_factor`` × training rows of one sample of the fitted
generator, post-processing of its output):

* ``key``: a counting query on the canary's rare values: output rows carrying its key, plus, as a
  tie-break, the most columns one of them shares with the canary, divided by (columns + 1);
* ``nearest``: minus the distance to the closest output record: the most columns (codes) an output
  row shares with the canary, plus the share of output rows at that distance.

**Bound 1: one run (SNJ 2023, Theorem 3.1 with δ).** For each score the audit ranks the canaries of
all fits together (fits are independent and every canary is in one fit only, so the fits are one
mechanism that is (ε, δ)-DP in each canary) and makes r guesses: "in" for the r highest scores
(``in``), or "in" for the r/2 highest and "out" for the r/2 lowest (``both``), for r in a fixed
ladder (2 %, 5 %, 10 %, 20 %, 50 % and 100 % of the canaries). The number of correct guesses of an
(ε, δ)-DP mechanism exceeds a Binomial(r, e^ε/(1 + e^ε)) only with the small probability of
:func:`dpsynth.audit.bounds.one_run_p_value`; the bound is the largest ε refuted, each test at level
α/(2·T) (Bonferroni over the T = scores × rungs × modes tests, α = 1 − confidence), so the
headline holds at the stated confidence together with bound 2. ``max_provable_epsilon`` is the bound
of a perfect attack with the same canaries: the audit is *conclusive* when it exceeds the claim.

**Bound 2: verbatim copies.** Every row of a fitted table (base rows and included canaries) holds
values the generator cannot know unless it reads that row: its codes were drawn uniformly among
q₁ · q₂ · … choices and its integers uniformly inside their bins. If the row had been left out, any
output of N distinct rows would contain it with probability at most N · Q, Q = 1 / (the number of
equally likely tuples it was drawn from); with it, (ε, δ)-DP allows at most e^ε · N · Q + δ. By the
union bound, one or more rows copied verbatim, in all the fits together, has probability at most
p = Σ (e^ε · N · Q_row + δ) under the claim. A copy refutes the claim when p ≤ α/2; the ε it refutes
is the largest ε' with Σ (e^ε' · N · Q_row + δ) ≤ α/2. Categorical and float columns add no entropy
when they have one unreserved value; float columns are taken to add none at all (a float may be
rounded by a generator). What one copy shows is a broken δ: one real record in the output.

**At a user privacy unit** (one person with up to K rows) the claim is about people, so each fitted
table gets the unit's key column: every base row is its own person and every included key canary a
person of K identical rows (:func:`_fitted_table`). The scores and both bounds are unchanged: each
canary is still one unit, now the unit of the claim.

What it can and cannot show is in ``docs/audit.md``. The audit reads only the public schema, the
claim and the generator's outputs on tables it made itself: it is data-independent, and so is its
verdict (a release may gate on it and stay DP). Its fits are internal evidence on an untracked
ledger; they are never released. The result holds no data row.
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.audit.bounds import one_run_epsilon_lower_bound
from dpsynth.audit.defaults import CANARY
from dpsynth.audit.onerun import _ladder as one_run_ladder
from dpsynth.audit.transcript import AuditLedger
from dpsynth.audit.whitebox import AuditError
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.schema.column import integer_bin
from dpsynth.schema.encode import decode, encode
from dpsynth.schema.schema import Schema

METHOD = "canary_one_run_blackbox"
SCORES = ("key", "nearest")
MODES = ("in", "both")
#: Below this many reserved values per fit, canaries keyed by pairs of reserved values are added.
MIN_KEYS = 60
#: At most this many canaries per fit.
MAX_KEYS = 400
NOTICE = ("audit evidence computed from tables generated from the public schema only, never from the private "
          "rows; contains no data row")


@dataclass(frozen=True)
class CanaryAuditResult:
    """Evidence of the canary audit (data-independent; holds no data row)."""

    claimed_epsilon: float
    claimed_delta: float
    confidence: float
    epsilon_lower_bound: float
    max_provable_epsilon: float
    fits: int
    canaries: int
    scores: dict[str, dict[str, Any]]
    copy_test: dict[str, Any]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    notice: str = NOTICE

    @property
    def violation(self) -> bool:
        """Whether the headline lower bound exceeds the claimed ε."""
        return self.epsilon_lower_bound > self.claimed_epsilon

    @property
    def conclusive(self) -> bool:
        """Whether the one-run bound could refute the claim at all (its maximum exceeds it)."""
        return self.max_provable_epsilon > self.claimed_epsilon

    @property
    def caught_by(self) -> str | None:
        """What refuted the claim: ``copies`` (bound 2) or the name of a score (bound 1), or None."""
        if not self.violation:
            return None
        if self.copy_test["refutes_claim"] and self.copy_test["epsilon_lower_bound"] >= self.epsilon_lower_bound:
            return "copies"
        return max(self.scores, key=lambda s: self.scores[s]["epsilon_lower_bound"])

    @property
    def auc(self) -> float:
        """The best score's AUC (canaries in against canaries out)."""
        return max(s["auc"] for s in self.scores.values())

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (no data row)."""
        return {
            "method": METHOD,
            "claimed_epsilon": self.claimed_epsilon,
            "claimed_delta": self.claimed_delta,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "max_provable_epsilon": self.max_provable_epsilon,
            "confidence": self.confidence,
            "trials": self.fits,
            "fits": self.fits,
            "canaries": self.canaries,
            "violation": self.violation,
            "conclusive": self.conclusive,
            "caught_by": self.caught_by,
            "auc": self.auc,
            "scores": {k: dict(v) for k, v in self.scores.items()},
            "copy_test": dict(self.copy_test),
            "seconds": self.seconds,
            "details": dict(self.details),
            "notice": self.notice,
        }


# -- the tables -----------------------------------------------------------------------------------


@dataclass
class _Run:
    """One fit's table: codes and values of every row, which rows are key canaries, their keys."""

    table: pd.DataFrame  # the fitted table, shuffled
    codes: np.ndarray  # its codes
    canary: np.ndarray  # row index of each key canary in ``table`` (−1 when left out)
    canary_codes: np.ndarray
    keys: list[tuple[tuple[int, ...], tuple[int, ...]]]
    included: np.ndarray
    log_q: np.ndarray  # per row of ``table``: log of the probability of its exact values (bound 2)


def _reserve(schema: Schema, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for col in schema.columns:
        k = col.n_values
        out.append(np.sort(rng.choice(k, k // 2, replace=False)) if k >= 3 else np.array([], dtype=np.int64))
    return out


def _keys(reserved: list[np.ndarray], rng: np.random.Generator) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Single reserved values; then, while fewer than MIN_KEYS, pairs and triples of them (random
    order, at most MAX_KEYS in all)."""
    keys: list[tuple[tuple[int, ...], tuple[int, ...]]] = [((j,), (int(v),)) for j, r in enumerate(reserved) for v in r]
    cols = [j for j, r in enumerate(reserved) if len(r)]
    for size in (2, 3):
        if len(keys) >= MIN_KEYS:
            break
        combos = [(group, tuple(int(v) for v in values)) for group in itertools.combinations(cols, size)
                  for values in itertools.product(*(reserved[j] for j in group))]
        order = rng.permutation(len(combos))
        keys += [combos[i] for i in order[: MAX_KEYS - len(keys)]]
    return keys[:MAX_KEYS]


def _bin_integers(col: Any) -> np.ndarray | None:
    """Per code of an integral numeric column: how many integers its bin holds (None otherwise)."""
    if col.kind == "categorical" or not col.integral:
        return None
    assert col.bounds is not None
    return np.array([max(1, hi - lo + 1) for lo, hi in (integer_bin(col.edges, b, col.bounds[1])
                                                          for b in range(col.n_values))], dtype=float)


def _make_run(schema: Schema, base_rows: int, rng: np.random.Generator) -> _Run:
    reserved = _reserve(schema, rng)
    free = [np.setdiff1d(np.arange(c.n_values), r) for c, r in zip(schema.columns, reserved, strict=True)]
    keys = _keys(reserved, rng)
    m = len(keys)
    n = base_rows + m
    codes = np.stack([f[rng.integers(len(f), size=n)] for f in free], axis=1).astype(np.int64)
    secret = np.ones(codes.shape, dtype=bool)  # which values were drawn at random (not a key)
    for i, (cols, vals) in enumerate(keys):
        for j, v in zip(cols, vals, strict=True):
            codes[base_rows + i, j] = v
            secret[base_rows + i, j] = False
    log_q = np.zeros(n)
    for j, (col, f) in enumerate(zip(schema.columns, free, strict=True)):
        log_q -= np.where(secret[:, j], math.log(len(f)), 0.0)
        widths = _bin_integers(col)
        if widths is not None:
            log_q -= np.log(widths[codes[:, j]])
    values = decode(codes, schema, rng)
    included = rng.random(m) < 0.5
    rows = np.concatenate([np.arange(base_rows), base_rows + np.flatnonzero(included)])
    order = rng.permutation(len(rows))
    chosen = rows[order]
    position = np.full(n, -1)
    position[chosen] = np.arange(len(chosen))
    table = values.iloc[chosen].reset_index(drop=True)
    return _Run(table, codes[chosen], position[base_rows:], codes[base_rows:], keys, included, log_q[chosen])


# -- fitting and scoring --------------------------------------------------------------------------


def _fitted_table(run: _Run, schema: Schema) -> pd.DataFrame:
    """The table a fit reads: ``run.table``; at a user privacy unit, with the unit's key column: every base
    row its own person, and every included key canary a person of K identical rows (the canary is then a
    whole person, the unit the claim is about, and the worst case: K rows in one cell of every marginal)."""
    unit = schema.privacy_unit
    if unit.column is None:
        return run.table
    people = np.array([f"r{i}" for i in range(len(run.table))], dtype=object)
    extra = np.repeat(run.canary[run.canary >= 0], unit.max_rows - 1)
    out = pd.concat([run.table, run.table.iloc[extra]], ignore_index=True)
    out[unit.column] = np.concatenate([people, people[extra]])
    return out


def _fit_sample(make: Callable[[], Any], table: pd.DataFrame, schema: Schema, rows: int) -> pd.DataFrame:
    synthesizer = make()
    fit = synthesizer.fit
    try:
        params = inspect.signature(fit).parameters
        takes_ledger = "ledger" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        takes_ledger = False
    if takes_ledger:
        fit(table, schema=schema, ledger=AuditLedger())
    else:
        fit(table, schema=schema)
    out = synthesizer.sample(rows)
    if not isinstance(out, pd.DataFrame) or len(out) == 0:
        raise AuditError("a synthesizer's sample() did not return a non-empty pandas DataFrame")
    return out


def _value_keys(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """One hashable key per row of exact values (integers compared as integers, text as text)."""
    cols = []
    for col in schema.columns:
        s = frame[col.name]
        if col.kind != "categorical" and col.kind != "datetime":
            s = pd.to_numeric(s, errors="coerce").astype("Float64")
        cols.append([repr(x) if isinstance(x, float) else str(x) for x in s.tolist()])
    return np.array(["\x1f".join(t) for t in zip(*cols, strict=True)], dtype=object)


def _scores(run: _Run, synthetic: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    try:
        sc = encode(synthetic, schema)
    except DataError as exc:
        raise AuditError(f"a synthetic table does not fit the schema: {exc}") from None
    n, d = sc.shape
    m = len(run.keys)
    key = np.zeros(m)
    nearest = np.zeros(m)
    for i, (cols, vals) in enumerate(run.keys):
        eq = (sc == run.canary_codes[i][None, :]).sum(axis=1)
        top = int(eq.max())
        nearest[i] = top + (eq == top).sum() / (n + 1.0)
        hit = np.all(sc[:, list(cols)] == np.asarray(vals)[None, :], axis=1)
        key[i] = hit.sum() + (eq[hit].max() / (d + 1.0) if hit.any() else 0.0)
    return {"key": key, "nearest": nearest}


def _copies(run: _Run, synthetic: pd.DataFrame, schema: Schema) -> tuple[int, int]:
    """Rows of the fitted table found verbatim in the output, and the output's distinct rows."""
    out = set(_value_keys(synthetic, schema).tolist())
    mine = _value_keys(run.table, schema)
    return int(sum(k in out for k in mine)), len(out)


# -- bounds -----------------------------------------------------------------------------------------


def _ladder(m: int) -> list[int]:
    """The one-run audit's fixed ladder of guess counts (2 % … 100 % of the canaries;
    :data:`dpsynth.audit.onerun.GUESS_LADDER`)."""
    return one_run_ladder(m, None)


def _one_run(score: np.ndarray, included: np.ndarray, *, epsilon: float, delta: float, level: float,
             seed: int) -> dict[str, Any]:
    m = len(score)
    order = np.random.default_rng([seed, 11]).permutation(m)  # ties broken independently of the coins
    ranked = order[np.argsort(-score[order], kind="stable")]
    tests: list[dict[str, Any]] = []
    for r in _ladder(m):
        for mode in MODES:
            if mode == "in":
                v = int(included[ranked[:r]].sum())
            else:
                k = r // 2
                v = int(included[ranked[:k]].sum() + (~included[ranked[m - k:]]).sum())
            b = one_run_epsilon_lower_bound(m, r, v, claimed_epsilon=epsilon, delta=delta, confidence=1.0 - level)
            tests.append({"guesses": r, "mode": mode, "correct": v, "epsilon_lower_bound": b.epsilon_lower_bound,
                          "max_provable_epsilon": b.max_provable_epsilon})
    best = max(tests, key=lambda t: (t["epsilon_lower_bound"], -t["guesses"]))
    from dpsynth.audit.blackbox import auc

    return {"epsilon_lower_bound": best["epsilon_lower_bound"],
            "max_provable_epsilon": max(t["max_provable_epsilon"] for t in tests),
            "auc": round(auc(score[~included], score[included]), 6) if 0 < included.sum() < m else 0.5,
            "best": {k: best[k] for k in ("guesses", "mode", "correct")},
            "tests": tests}


def _copy_bound(copies: int, log_q: list[np.ndarray], distinct: list[int], *, epsilon: float, delta: float,
                level: float) -> dict[str, Any]:
    # Σ_rows (e^ε · N_fit · Q_row + δ), summed in log space per fit
    log_mass = np.logaddexp.reduce(np.concatenate([lq + math.log(max(n, 1)) for lq, n in zip(
        log_q, distinct, strict=True)])) if log_q else -math.inf
    rows = int(sum(len(lq) for lq in log_q))
    p = min(1.0, math.exp(min(epsilon + log_mass, 700.0)) + rows * delta)
    room = level - rows * delta
    provable = math.floor((math.log(room) - log_mass) * 1e6) / 1e6 if room > 0 and math.isfinite(log_mass) else 0.0
    provable = max(0.0, provable)
    refutes = copies > 0 and p <= level
    return {"rows_checked": rows, "copies": copies, "p_value_bound": p, "level": level,
            "refutes_claim": refutes, "epsilon_lower_bound": provable if copies > 0 and provable > 0 else 0.0,
            "max_provable_epsilon": provable,
            "what": "rows of the audit's own tables reproduced verbatim in the output; under the claim, one or more "
                    "has probability at most p_value_bound"}


def canary_audit(
    make: Callable[[], Any],
    schema: Schema,
    *,
    claimed_epsilon: float,
    claimed_delta: float,
    fits: int = CANARY.fits,
    base_rows: int = CANARY.base_rows,
    sample_factor: int = CANARY.sample_factor,
    confidence: float = CANARY.confidence,
    seed: int = CANARY.seed,
    progress: Callable[[int, int], None] | None = None,
) -> CanaryAuditResult:
    """Audit a generator's (ε, δ) claim with canaries from the public domain (module docstring).

    Args:
        make: returns a fresh, unfitted generator at the claim (``fit(data, schema=)`` and
            ``sample(n_rows)``; ``fit`` gets an untracked ``ledger=`` when it takes one).
        schema: the public schema the tables are drawn from.
        claimed_epsilon: the ε of the claim under audit.
        claimed_delta: the δ of the claim under audit.
        fits: fits of the generator (1 to 3), each on its own table.
        base_rows: base rows per table (besides the key canaries; at least 20).
        sample_factor: output rows sampled per fit, as a multiple of the fitted table's rows.
        confidence: of the headline bound (both bounds together), in [0.5, 0.999999]
            (:data:`dpsynth.audit.defaults.CONFIDENCE`).
        seed: seeds the tables, the coins and the tie-breaks (the generator draws its own noise).
        progress: called as ``progress(done, fits)`` after every fit.

    Raises:
        ParameterError: a bad argument (nothing is fitted).
        AuditError: a fit or a sample failed, or an output does not fit the schema.
    """
    start = time.perf_counter()
    if not callable(make):
        raise ParameterError(f"make ({make!r}) must be a callable returning a fresh, unfitted synthesizer")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema (a {type(schema).__name__}) must be a dpsynth Schema")
    claimed_epsilon = check.positive_finite("claimed_epsilon", claimed_epsilon)
    claimed_delta = check.half_open_unit("claimed_delta", claimed_delta)
    fits = CANARY.check("fits", fits)
    base_rows = CANARY.check("base_rows", base_rows)
    sample_factor = CANARY.check("sample_factor", sample_factor)
    confidence = CANARY.check("confidence", confidence)
    seed = CANARY.check("seed", seed)
    if not any(c.n_values >= 3 for c in schema.columns):
        raise ParameterError("the canary audit needs a column with at least 3 values to reserve for its canaries")
    rng = np.random.default_rng([int(seed), 2023])
    runs = [_make_run(schema, base_rows, rng) for _ in range(int(fits))]
    all_scores: dict[str, list[np.ndarray]] = {s: [] for s in SCORES}
    copies, distinct, fit_seconds = 0, [], []
    for i, run in enumerate(runs):
        t = time.perf_counter()
        try:
            synthetic = _fit_sample(make, _fitted_table(run, schema), schema, sample_factor * len(run.table))
        except AuditError:
            raise
        except Exception as exc:  # noqa: BLE001 - an audited generator may fail in any way; the audit reports it
            raise AuditError(f"fit {i + 1} of the canary audit failed: {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
        fit_seconds.append(round(time.perf_counter() - t, 3))
        synthetic = synthetic.iloc[: sample_factor * len(run.table)]
        for name, values in _scores(run, synthetic, schema).items():
            all_scores[name].append(values)
        c, n_distinct = _copies(run, synthetic, schema)
        copies += c
        distinct.append(n_distinct)
        if progress is not None:
            progress(i + 1, int(fits))
    included = np.concatenate([r.included for r in runs])
    alpha = 1.0 - confidence
    tests = len(SCORES) * len(_ladder(len(included))) * len(MODES)
    level = alpha / 2.0 / tests
    scores = {name: _one_run(np.concatenate(v), included, epsilon=claimed_epsilon, delta=claimed_delta, level=level,
                             seed=int(seed)) for name, v in all_scores.items()}
    copy_test = _copy_bound(copies, [r.log_q for r in runs], distinct, epsilon=claimed_epsilon,
                            delta=claimed_delta, level=alpha / 2.0)
    lower = max([s["epsilon_lower_bound"] for s in scores.values()]
                + ([copy_test["epsilon_lower_bound"]] if copy_test["refutes_claim"] else []))
    provable = max(s["max_provable_epsilon"] for s in scores.values())
    keys = [len(r.keys) for r in runs]
    details = {
        "tables": "generated from the public schema: every column with 3 or more values reserves half of them for "
                  "the key canaries; the other rows draw their values uniformly among the unreserved ones",
        "base_rows_per_fit": base_rows,
        "key_canaries_per_fit": keys,
        "keys": "single reserved values" if all(len(k) == 1 for r in runs for k, _ in r.keys) else
                "single reserved values, then pairs and triples of them (few reserved values)",
        "included": int(included.sum()),
        "training_rows_per_fit": [len(r.table) for r in runs],
        "synthetic_rows_per_fit": [sample_factor * len(r.table) for r in runs],
        "fit_seconds": fit_seconds,
        "multiple_testing": f"α = {alpha:g}: half for the copy test, half over the {tests} one-run tests "
                            f"({len(SCORES)} scores × {len(_ladder(len(included)))} guess counts × {len(MODES)} modes, "
                            f"each at level {level:.3g})",
        "ledger": "untracked: audit fits are internal evidence, never released or charged",
    }
    return CanaryAuditResult(
        claimed_epsilon=float(claimed_epsilon), claimed_delta=float(claimed_delta), confidence=float(confidence),
        epsilon_lower_bound=float(lower), max_provable_epsilon=float(provable), fits=int(fits),
        canaries=int(len(included)), scores=scores, copy_test=copy_test,
        seconds=round(time.perf_counter() - start, 2), details=details,
    )


__all__ = ["METHOD", "CanaryAuditResult", "canary_audit"]
