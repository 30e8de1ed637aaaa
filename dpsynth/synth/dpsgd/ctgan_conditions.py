"""DP-CTGAN's conditional vectors (CTGAN's cond vector, one column at a time): drawn for fakes
from public (uniform) or DP-measured frequencies, and for a real row from its own value in one
column chosen uniformly at random (a function of that row alone), plus the conditional loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dpsynth.synth.dpsgd.randomness import blocked
from dpsynth.synth.dpsgd.transform import TableTransformer

if TYPE_CHECKING:
    import torch


class Conditions:
    """Conditional vectors over the categorical columns (CTGAN's cond vector, one column at a time)."""

    def __init__(self, transformer: TableTransformer, probabilities: list[np.ndarray], device: Any,
                 spans: tuple[Any, ...] | None = None):
        import torch

        self.spans = transformer.categorical_spans if spans is None else spans
        self.device = device
        self.dim = sum(s.width for s in self.spans)
        self.offsets = np.cumsum([0] + [s.width for s in self.spans])[:-1].tolist()
        index = [i for s in self.spans for i in range(s.start, s.stop)]
        self.data_index = torch.tensor(index, dtype=torch.long, device=device)
        self.probabilities = [torch.tensor(p, dtype=torch.float32, device=device) for p in probabilities]

    def _chosen(self, n: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        return torch.randint(0, len(self.spans), (n,), generator=generator, device=self.device)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(cond vectors, chosen column per row, a value per row for every column) — no data."""
        import torch

        cond = torch.zeros((n, self.dim), device=self.device)
        if not self.spans or n == 0:
            return cond, torch.zeros(n, dtype=torch.long, device=self.device), []
        chosen = self._chosen(n, generator)
        values = [torch.multinomial(p, n, replacement=True, generator=generator) for p in self.probabilities]
        for k, (offset, v) in enumerate(zip(self.offsets, values, strict=True)):
            rows = torch.nonzero(chosen == k).squeeze(1)
            cond[rows, offset + v[rows]] = 1.0
        return cond, chosen, values

    def steered(self, n: int, generator: torch.Generator, targets: dict[int, np.ndarray]) -> torch.Tensor:
        """Cond vectors toward a condition (sampling only, no data): each row marks one of the
        ``targets`` columns (by span index, chosen uniformly), with a value among that column's allowed
        codes (``targets[k]``, a mask over the span) drawn by the sampling frequencies restricted to
        them (uniformly among them where those give them no mass)."""
        import torch

        cond = torch.zeros((n, self.dim), device=self.device)
        if not targets or n == 0:
            return cond
        spans = sorted(targets)
        pick = torch.randint(0, len(spans), (n,), generator=generator, device=self.device)
        for i, k in enumerate(spans):
            allowed = torch.tensor(targets[k], dtype=torch.float32, device=self.device)
            p = self.probabilities[k] * allowed
            p = p if float(p.sum()) > 0 else allowed
            values = torch.multinomial(p, n, replacement=True, generator=generator)
            rows = torch.nonzero(pick == i).squeeze(1)
            cond[rows, self.offsets[k] + values[rows]] = 1.0
        return cond

    def of_rows(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each real row's cond vector: its own value in one categorical column chosen uniformly.

        The choices are drawn in fixed-size blocks (:func:`~.randomness.blocked`): row i's choice
        does not depend on how many rows the batch has. Privacy: a function of row i alone
        (and public randomness), inside its own per-sample gradient.
        """
        import torch

        n = rows.shape[0]
        cond = torch.zeros((n, self.dim), device=self.device)
        if not self.spans or n == 0:
            return cond
        chosen = torch.cat(blocked(n, lambda size: self._chosen(size, generator)))[:n]
        mask = torch.zeros((n, self.dim), device=self.device)
        for k, (offset, span) in enumerate(zip(self.offsets, self.spans, strict=True)):
            mask[:, offset:offset + span.width] = (chosen == k).unsqueeze(1).float()
        return rows.index_select(1, self.data_index) * mask

    def loss(self, raw: torch.Tensor, chosen: torch.Tensor, values: list[torch.Tensor]) -> torch.Tensor:
        """CTGAN's conditional loss: cross-entropy of the generator's logits in the conditioned column."""
        import torch
        from torch.nn import functional as F

        if not self.spans or raw.shape[0] == 0:
            return torch.zeros((), device=self.device)
        total = torch.zeros((), device=self.device)
        for k, span in enumerate(self.spans):
            ce = F.cross_entropy(raw[:, span.start:span.stop], values[k], reduction="none")
            total = total + (ce * (chosen == k).float()).sum()
        return total / raw.shape[0]
