"""The membership-inference attacks of the black-box audit: each scores a target from one synthetic
table alone (higher score: the target was in the training data, world 1).

* ``counting``: synthetic rows equal to the target on every column (encoded under the schema,
  numeric columns by their public bin), with ties broken by the rows equal to it on its three
  rarest columns: ``exact + rare / (n + 1)``;
* ``dcr``: minus the Gower distance from the target to the closest synthetic record (the mixed-type
  distance of :mod:`dpsynth.pii.encoding`: public bounds scale numeric columns);
* ``domias``: a density ratio in the spirit of DOMIAS (van Breugel et al., AISTATS 2023):
  log p_synthetic(target) − log p_reference(target), both densities product-kernel estimates over
  the encoded domain (Aitchison–Aitken kernel, mismatch mass ``KERNEL_MISMATCH`` per column). The
  reference density is chosen by the audit (:mod:`dpsynth.audit.blackbox`) and stored in the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from dpsynth.audit.blackbox_targets import Target
from dpsynth.audit.defaults import ATTACKS
from dpsynth.audit.whitebox import AuditError
from dpsynth.exceptions import DataError
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

__all__ = ["ATTACKS", "KERNEL_MISMATCH", "log_kernel_density", "score"]

#: Aitchison–Aitken kernel of the DOMIAS densities: the probability mass a column puts on the
#: values other than the target's (spread evenly over them).
KERNEL_MISMATCH = 0.1


def log_kernel_density(target: np.ndarray, rows: np.ndarray, sizes: np.ndarray) -> float:
    """log of the product-kernel density (Aitchison–Aitken) of ``rows`` at ``target`` (codes)."""
    match = np.log1p(-KERNEL_MISMATCH)
    with np.errstate(divide="ignore"):
        miss = np.where(sizes > 1, np.log(KERNEL_MISMATCH) - np.log(np.maximum(sizes - 1, 1)), -np.inf)
    eq = rows == target[None, :]
    logk = np.where(eq, match, miss[None, :]).sum(axis=1)
    return float(logsumexp(logk) - math.log(len(rows)))


def score(names: Sequence[str], target: Target, synthetic: Any, schema: Schema) -> dict[str, float]:
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
        from dpsynth.pii.encoding import encode_tables, nearest_distances

        try:
            t_enc, s_enc = encode_tables([target.row, synthetic], schema, schema.names)
        except DataError as exc:
            raise AuditError(f"a synthetic table does not fit the schema: {exc}") from None
        out["dcr"] = -float(nearest_distances(t_enc, s_enc)[0])
    if codes is not None and "domias" in names:
        sizes = np.asarray(schema.sizes, dtype=np.int64)
        out["domias"] = log_kernel_density(target.codes, codes, sizes) - target.log_reference
    return out
