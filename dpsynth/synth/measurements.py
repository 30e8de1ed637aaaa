"""The noisy measurements a marginal synthesizer (MST, AIM) took, as plain published values.

A fitted MST or AIM keeps them in ``measurements_``: one :class:`Measurement` per Gaussian
measurement, in the order they were taken. They are the mechanisms' DP output (post-processing
only), so publishing them, e.g. to compare two releases (:mod:`dpsynth.quality.drift`), costs no
privacy.

Which domain the values are on: the schema's original codes of the measured columns wherever the
synthesizer measured them there (every AIM measurement, MST's 1-way marginals). MST measures its
2-way marginals on the *compressed* domain (values whose noisy 1-way count is below 3σ merged into
one code; the merge is itself post-processing of the noisy 1-way marginals). Spreading such a merged
cell back over the original codes would invent a split the fit never measured, so the values stay on
the measured cells and ``compression`` says, for each column, which measured cell each original code
fell into (``None``: measured on the original codes). Two fits compressed differently are compared
honestly on the coarsest partition both refine (:func:`dpsynth.quality.drift.measurement_drift`),
where every cell is a sum of measured cells and its noise is known exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpsynth.exceptions import ParameterError


@dataclass(frozen=True, eq=False)
class Measurement:
    """One Gaussian measurement of a marginal: ``values`` = exact counts + N_Z(0, ``sigma``²) in each cell.

    Attributes:
        columns: the measured columns, in the order of the table's axes.
        values: the noisy counts, flattened in C order over ``shape``.
        sigma: the Gaussian noise scale of every cell (independent across cells and measurements).
        shape: the number of measured cells of each column.
        compression: for each column, the measured cell of each of the schema's original codes (its
            length is the column's size in the schema), or ``None`` where the column was measured on
            its original codes (then its ``shape`` entry is the schema's size).
    """

    columns: tuple[str, ...]
    values: np.ndarray
    sigma: float
    shape: tuple[int, ...]
    compression: tuple[tuple[int, ...] | None, ...]

    def __post_init__(self) -> None:
        k = len(self.columns)
        if not k or len(self.shape) != k or len(self.compression) != k:
            raise ParameterError(f"a measurement needs one shape and one compression entry per column "
                                 f"(columns {list(self.columns)!r}, shape {list(self.shape)!r})")
        if self.values.ndim != 1 or self.values.size != math.prod(self.shape):
            raise ParameterError(f"a measurement of shape {list(self.shape)!r} needs {math.prod(self.shape)} "
                                 f"values, not {self.values.size}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ParameterError(f"a measurement's sigma ({self.sigma!r}) must be positive and finite")
        for col, cells, groups in zip(self.columns, self.shape, self.compression, strict=True):
            if groups is not None and (min(groups) < 0 or max(groups) >= cells):
                raise ParameterError(f"the compression of {col!r} must map into its {cells} measured cells")

    @classmethod
    def of(cls, columns: Sequence[str], values: np.ndarray, sigma: float, *, shape: Sequence[int],
           compression: Sequence[np.ndarray | None] | None = None) -> Measurement:
        """A measurement from arrays (the fitted synthesizers' form): ``compression`` one original→measured
        code map per column, ``None`` (or omitted) for a column measured on its original codes."""
        groups = compression if compression is not None else [None] * len(columns)
        return cls(
            columns=tuple(columns),
            values=np.array(values).ravel(),
            sigma=float(sigma),
            shape=tuple(int(s) for s in shape),
            compression=tuple(None if g is None else tuple(int(c) for c in g) for g in groups),
        )

    @property
    def total(self) -> float:
        """The noisy total (the sum of the noisy cells: an unbiased DP estimate of the row count)."""
        return float(self.values.sum())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists and plain numbers); :meth:`from_dict` reads it back."""
        return {
            "columns": list(self.columns),
            "values": self.values.tolist(),
            "sigma": float(self.sigma),
            "shape": list(self.shape),
            "compression": [None if g is None else list(g) for g in self.compression],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """The measurement :meth:`to_dict` wrote."""
        try:
            return cls.of(data["columns"], np.asarray(data["values"]), data["sigma"], shape=data["shape"],
                          compression=[None if g is None else np.asarray(g) for g in data["compression"]])
        except (KeyError, TypeError) as err:
            raise ParameterError(f"not a measurement: {err}") from err

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Measurement):
            return NotImplemented
        return (self.columns, self.sigma, self.shape, self.compression) == (
            other.columns, other.sigma, other.shape, other.compression) and np.array_equal(self.values, other.values)

    __hash__ = None  # type: ignore[assignment]
