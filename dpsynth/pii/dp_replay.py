"""Replay checks in a DP form: counts of copied real rows of bounded sensitivity, against a
real-vs-real chance baseline, for the discrete Gaussian mechanism.

The non-DP check (:mod:`dpsynth.pii.replay`) compares the share of synthetic rows equal to a real
row with the same share for held-out real rows. Counted over rows, one real row can make every
synthetic copy of it a match (sensitivity up to the synthetic length), and the random holdout split
moves when a row is added. This form fixes both:

* **Split.** Each real row goes to the reference R or the baseline H (share ``HOLDOUT_SHARE``) by a
  keyed hash of its raw values together with its occurrence rank among identical rows (the j-th
  copy of a row gets rank j). The multiset of (value, rank) pairs does not depend on the row order,
  and adding a row x with c identical rows already present adds exactly the pair (x, c): every
  other row keeps its side, and only x's side is new. The key comes from ``seed``; the split is a
  fixed function whatever the key, so the key need not be secret. (The rank is what lets copies of
  one row fall on both sides: split by value alone, no baseline row could ever match R, and the
  chance baseline would be 0.)
* **Keys and counts.** Rows are compared by raw values (as :mod:`dpsynth.pii.replay` does: text for
  categorical columns, levels outside the schema included; numbers clamped to the public bounds):
  all schema columns for ``exact_rows``; for ``quasi_identifiers`` the schema's quasi-identifier
  columns, where a match is a combination held by exactly one row of R (the re-identifying case).
  Over the synthetic sample Ŝ (public: a seeded sample of the DP synthetic table) and H:

  - a   = #distinct keys of Ŝ that match in R;
  - b   = #distinct keys of H that match in R;
  - d_H = #distinct keys of H;  d_S = #distinct keys of Ŝ (public).

Sensitivity (add or remove one row x, key k): if x joins R, the key set of R gains at most k
(exact_rows), or only k's uniqueness in R changes (quasi_identifiers: count_R(k) c → c + 1 moves k
into U = {count = 1} when c = 0, out of it when c = 1, and nothing otherwise); so a and b move by at
most 1 each (the distinct key k of Ŝ or of H), and d_H not at all. If x joins H, R is unchanged, so
a is unchanged, and H's distinct keys gain at most k: b and d_H move by at most 1 each. The vector
(a, b, d_H) has L2 sensitivity √2, measured as two vectors of sensitivity 1 each, (a, d_H) and (b):
one of a, d_H moves, never both. At equal noise σ the cost is 1/(2σ²) + 1/(2σ²) = (√2)²/(2σ²), the
√2-sensitivity cost, with integer sensitivities. The same holds for any deterministic key function
(64-bit hash collisions change the statistic's accuracy, never its sensitivity).

Decision: rates r_S = â/d_S and r_H = b̂/d̂_H (clipped to [0, 1]); flagged when r_S − r_H > z_{1−α}·
√V, with V = p̄(1 − p̄)(1/d_S + 1/d̂_H) + σ_A²/d_S² + σ_B²/d̂_H² + r_H²·σ_A²/d̂_H² and p̄ the pooled rate.
Approximations: each distinct key finds a match independently with the same probability p̄ under the
null (binomial sampling variance), normal approximation to the difference, delta method for the
ratio b̂/d̂_H, d_H replaced by its noisy estimate.

Privacy: the functions here compute exact statistics of the real table; only their noisy release
through :mod:`dpsynth.mechanisms` (see :mod:`dpsynth.release.dp_checks`) is DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError
from dpsynth.pii.encoding import encode_tables
from dpsynth.schema.schema import Schema

CHECKS = ("exact_rows", "quasi_identifiers")
HOLDOUT_SHARE = 0.2
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (a bijective mixer; wraps modulo 2^64)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def value_frame(table: pd.DataFrame, schema: Schema, names: list[str]) -> pd.DataFrame:
    """The raw values of ``names`` that rows are compared on: per categorical column its text and
    a missing flag, per numeric column its value scaled by the public bounds and a missing flag.
    A function of each row's values alone (no codes learned from the table)."""
    (enc,) = encode_tables([table], schema, names)
    cats = [c for c in schema.columns if c.name in names and c.kind == "categorical"]
    nums = [c for c in schema.columns if c.name in names and c.kind != "categorical"]
    parts: dict[str, Any] = {}
    for j, col in enumerate(cats):
        missing = enc.cat[:, j] == -1
        text = table[col.name].astype("string").fillna("").to_numpy(dtype=object)
        text[missing] = ""
        parts[f"c{j}"] = text
        parts[f"cm{j}"] = missing
    for j, _col in enumerate(nums):
        values = enc.num[:, j]
        missing = np.isnan(values)
        # + 0.0 turns −0.0 into 0.0, so that equal values are equal bit for bit (hashing) as well as
        # by comparison (grouping for the occurrence rank).
        parts[f"n{j}"] = (np.where(missing, np.float32(0.0), values) + np.float32(0.0)).astype(np.float32)
        parts[f"nm{j}"] = missing
    return pd.DataFrame(parts, index=pd.RangeIndex(len(table)))


def row_keys(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row of a :func:`value_frame` (equal rows, equal keys)."""
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=np.uint64)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def occurrence_ranks(frame: pd.DataFrame) -> np.ndarray:
    """The rank of each row among the rows identical to it (0 for the first copy, 1 for the
    second …), grouping on the exact values (not on hashes)."""
    if frame.shape[1] == 0:
        return np.arange(len(frame), dtype=np.int64)
    return frame.groupby(list(frame.columns), sort=False, dropna=False).cumcount().to_numpy(dtype=np.int64)


def baseline_sides(frame: pd.DataFrame, seed: int, share: float = HOLDOUT_SHARE) -> np.ndarray:
    """True for the rows of the baseline H, False for the reference R: a keyed hash of each row's
    values (all schema columns) and its occurrence rank, below ``share`` of the hash range."""
    if not 0.0 < share < 1.0:
        raise ParameterError(f"share ({share!r}) must be in (0, 1)")
    key = _splitmix64(np.array([int(seed) & _MASK64], dtype=np.uint64))[0]
    values = row_keys(frame)
    ranks = occurrence_ranks(frame).astype(np.uint64)
    mixed = _splitmix64(_splitmix64(values ^ key) ^ ranks)
    return (mixed >> np.uint64(11)) < np.uint64(int(share * 2**53))


def synthetic_sample_size(n_hat: float, synthetic_rows: int, share: float = HOLDOUT_SHARE) -> int:
    """m' = min(len(S), max(1, round(share·n̂))): the synthetic sample is about as large as H."""
    return int(min(synthetic_rows, max(1, round(share * float(n_hat)))))


def synthetic_sample(synthetic_rows: int, size: int, seed: int) -> np.ndarray:
    """Row indices (sorted) of a seeded sample without replacement of the synthetic table."""
    rng = np.random.default_rng([int(seed) & _MASK64, 0x5EED])
    return np.sort(rng.choice(synthetic_rows, size=size, replace=False))


@dataclass(frozen=True)
class ReplayCounts:
    """The exact (pre-noise) statistics of one check; see the module docstring."""

    check: str
    a: int    # distinct keys of the synthetic sample that match in R
    b: int    # distinct keys of H that match in R
    d_h: int  # distinct keys of H
    d_s: int  # distinct keys of the synthetic sample (public)

    def reference_vector(self) -> np.ndarray:
        """(a, d_H): L2 sensitivity 1 (a row joins R or H, never both)."""
        return np.array([self.a, self.d_h], dtype=np.int64)

    def baseline_vector(self) -> np.ndarray:
        """(b,): sensitivity 1."""
        return np.array([self.b], dtype=np.int64)


def quasi_identifier_names(schema: Schema) -> list[str]:
    return [c.name for c in schema.columns if c.quasi_identifier]


def replay_counts(real: pd.DataFrame, synthetic_sample_table: pd.DataFrame, schema: Schema, checks: tuple[str, ...],
                  *, seed: int, share: float = HOLDOUT_SHARE) -> dict[str, ReplayCounts]:
    """(a, b, d_H, d_S) of every check in ``checks`` for the real table and a synthetic sample."""
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ParameterError(f"replay checks ({unknown!r}) must be among {CHECKS}")
    names = schema.names
    real_frame = value_frame(real, schema, names)
    synth_frame = value_frame(synthetic_sample_table, schema, names)
    baseline = baseline_sides(real_frame, seed, share)
    out: dict[str, ReplayCounts] = {}
    if "exact_rows" in checks:
        keys, s_keys = row_keys(real_frame), row_keys(synth_frame)
        in_r = np.unique(keys[~baseline])
        out["exact_rows"] = _counts("exact_rows", in_r, np.unique(keys[baseline]), np.unique(s_keys))
    if "quasi_identifiers" in checks:
        qis = quasi_identifier_names(schema)
        if not qis:
            raise ParameterError("the quasi_identifiers replay check needs columns marked quasi_identifier: true "
                                 "in the schema")
        keys = row_keys(value_frame(real, schema, qis))
        s_keys = row_keys(value_frame(synthetic_sample_table, schema, qis))
        uniq, counts = np.unique(keys[~baseline], return_counts=True)
        unique_in_r = uniq[counts == 1]
        out["quasi_identifiers"] = _counts("quasi_identifiers", unique_in_r, np.unique(keys[baseline]),
                                           np.unique(s_keys))
    return out


def _counts(check: str, matchable: np.ndarray, h_keys: np.ndarray, s_keys: np.ndarray) -> ReplayCounts:
    return ReplayCounts(check=check, a=int(np.isin(s_keys, matchable).sum()), b=int(np.isin(h_keys, matchable).sum()),
                        d_h=int(len(h_keys)), d_s=int(len(s_keys)))


def replay_decision(a_hat: float, b_hat: float, d_h_hat: float, d_s: int, *, sigma_reference: float,
                    sigma_baseline: float, alpha: float) -> dict[str, Any]:
    """Rates, margin and flag from the noisy (â, d̂_H), b̂ and the public d_S (post-processing).

    One-sided test at level ``alpha`` of "the synthetic rate is not above the baseline rate"; see
    the module docstring for the variance and its approximations.
    """
    d_s = max(int(d_s), 1)
    d_h = max(float(d_h_hat), 1.0)
    r_s = min(max(a_hat / d_s, 0.0), 1.0)
    r_h = min(max(b_hat / d_h, 0.0), 1.0)
    pooled = min(max((a_hat + b_hat) / (d_s + d_h), 0.0), 1.0)
    var_sampling = pooled * (1.0 - pooled) * (1.0 / d_s + 1.0 / d_h)
    var_noise = (sigma_reference**2 / d_s**2 + sigma_baseline**2 / d_h**2 + r_h**2 * sigma_reference**2 / d_h**2)
    z = NormalDist().inv_cdf(1.0 - alpha)
    margin = z * math.sqrt(var_sampling + var_noise)
    return {"synthetic_rate": r_s, "baseline_rate": r_h, "margin": margin, "flagged": bool(r_s - r_h > margin),
            "pooled_rate": pooled, "sd_sampling": math.sqrt(var_sampling), "sd_noise": math.sqrt(var_noise)}


__all__ = ["CHECKS", "HOLDOUT_SHARE", "ReplayCounts", "baseline_sides", "occurrence_ranks", "replay_counts",
           "replay_decision", "row_keys", "synthetic_sample", "synthetic_sample_size", "value_frame"]
