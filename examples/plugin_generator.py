r"""A generator dpsynth did not write, plugged in with the plain contract (docs/plugins.md).

``MyGenerator`` is a plain class (not a subclass of ``dpsynth.synth.base.Synthesizer``): it wraps
dpsynth's own MST to stand for any third-party generator. dpsynth charges its claim (ε, δ) in the
ledger as one event BEFORE calling ``fit``, reads ``secure_noise_`` and ``total_estimate_`` after it,
checks what ``sample`` returns against the schema, and says in the report that the claim is the
generator's own.

    PYTHONPATH=examples dpsynth release --data dpsynth/datasets/adult/adult.csv.gz \
        --schema dpsynth/datasets/adult/schema.yaml --synthesizer plugin_generator:MyGenerator \
        --epsilon 1 --delta 1e-9 --rows 30000 --ledger sqlite:///ledger.db --dataset adult \
        --policy default --out my-release
"""

from __future__ import annotations

import warnings

import pandas as pd

from dpsynth import UNTRACKED, UntrackedPrivacyWarning
from dpsynth.schema import Schema
from dpsynth.synth.mst import MST


class MyGenerator:
    """An (ε, δ)-DP generator of synthetic tables with the plain estimator contract.

    Optional extras it offers: a seed (``random_state``), ``secure_noise_`` after ``fit`` (its own
    claim, here MST's), and ``estimates_rows = True`` with ``total_estimate_`` after ``fit`` (its own
    DP estimate of the private row count, here the total of MST's noisy marginals).
    """

    #: it leaves ``total_estimate_`` after fit: a release may sample that many rows without --rows
    estimates_rows = True

    def __init__(self, *, epsilon: float, delta: float, random_state: int | None = None,
                 estimation_iters: int = 1000):
        self.epsilon = epsilon
        self.delta = delta
        # dpsynth passes its insecure_seed here, for tests only; None (secure noise) otherwise
        self.random_state = random_state
        self.estimation_iters = estimation_iters

    def fit(self, data: pd.DataFrame, *, schema: Schema) -> MyGenerator:
        """Fit on the private ``data`` (dpsynth has charged the claim in its ledger already)."""
        model = MST(epsilon=self.epsilon, delta=self.delta, estimation_iters=self.estimation_iters,
                    insecure_seed=self.random_state)
        with warnings.catch_warnings():
            # dpsynth has already charged this generator's (ε, δ) in its ledger before calling fit():
            # the inner MST records nothing, or the same privacy loss would be charged twice.
            warnings.simplefilter("ignore", UntrackedPrivacyWarning)
            model.fit(data, schema=schema, ledger=UNTRACKED)
        self.model_ = model
        self.secure_noise_ = model.secure_noise_      # True: MST drew OpenDP's exact, secure noise
        self.total_estimate_ = model.total_estimate_  # a DP estimate, covered by the same (ε, δ)
        return self

    def sample(self, n_rows: int, *, random_state: int | None = None) -> pd.DataFrame:
        """``n_rows`` synthetic rows (post-processing: no further privacy cost)."""
        return self.model_.sample(n_rows, random_state=random_state)
