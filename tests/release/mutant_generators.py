"""Generators with the plain estimator contract (``__init__(epsilon=, delta=)``, ``fit(data,
schema=)``, ``sample(n_rows)``), written as a user outside dpsynth would: one correct, four broken
on purpose. The release gate's default policy must release the first and block the others.

They live in the test tree only (issue 16): the package must never ship them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dpsynth.privacy.ledger import UNTRACKED
from dpsynth.synth.mst import MST


class PlainMST:
    """Correct: dpsynth's MST behind the plain contract, reporting MST's secure noise as its own."""

    epsilon_factor = 1.0

    def __init__(self, *, epsilon: float, delta: float):
        self.epsilon, self.delta = epsilon, delta

    def fit(self, data: pd.DataFrame, *, schema) -> PlainMST:
        # the plug-in's own accounting is its business: dpsynth charged the claim before this call
        self.model_ = MST(epsilon=self.epsilon * self.epsilon_factor, delta=self.delta).fit(
            data, schema=schema, ledger=UNTRACKED)
        self.secure_noise_ = bool(self.model_.secure_noise_)
        self.training_ = data.reset_index(drop=True)
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        return self.model_.sample(n_rows)


class OverspentMST(PlainMST):
    """Broken: runs MST at a thousand times the ε it claims (a thousandth of the noise)."""

    epsilon_factor = 1000.0


class CopiesRealRows(PlainMST):
    """Broken: one output row in ten is a training row, copied verbatim."""

    def sample(self, n_rows: int) -> pd.DataFrame:
        out = self.model_.sample(n_rows)
        k = max(1, n_rows // 10)
        picked = np.random.default_rng().choice(len(self.training_), min(k, len(self.training_)), replace=False)
        out.iloc[: len(picked)] = self.training_.iloc[picked].to_numpy()
        return out


class AppendsOneRecord(PlainMST):
    """Broken: appends one training record, at random, to an otherwise correct output."""

    def sample(self, n_rows: int) -> pd.DataFrame:
        row = self.training_.iloc[[int(np.random.default_rng().integers(len(self.training_)))]]
        return pd.concat([self.model_.sample(max(1, n_rows - 1)), row], ignore_index=True)


class LearnsDomain:
    """Broken: learns every column's values from the data (no public domain) and adds a thousandth of
    the noise its marginals need; samples the columns independently."""

    def __init__(self, *, epsilon: float, delta: float):
        self.epsilon, self.delta = epsilon, delta

    def fit(self, data: pd.DataFrame, *, schema) -> LearnsDomain:
        rng = np.random.default_rng()
        self.columns_ = list(data.columns)
        self.marginals_ = {}
        for name in self.columns_:
            counts = data[name].value_counts(dropna=False)
            noisy = np.maximum(counts.to_numpy(dtype=float) + rng.normal(0.0, 1e-3 / self.epsilon, len(counts)), 0.0)
            self.marginals_[name] = (counts.index.to_numpy(), noisy / noisy.sum())
        self.secure_noise_ = True  # its own claim
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        rng = np.random.default_rng()
        return pd.DataFrame({n: rng.choice(v, n_rows, p=p) for n, (v, p) in self.marginals_.items()})
