"""Privacy events: what one mechanism invocation costs, declared before it runs.

A synthesizer's plan is a list of events; the plan is data-independent (it depends only on the
public schema and the parameters), is reserved in full before any private row is read, and each
mechanism spends its own event from that reservation at the moment it draws noise.

Every event's ``rho`` is an upper bound of its exact cost: computed in exact rational arithmetic
from the parameters the mechanism actually uses and rounded up to a float (equal, to the last bit,
to OpenDP's own privacy map for the Gaussian and for report-noisy-max), and :func:`total_rho` rounds
the exact sum up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from dpsynth.privacy import accounting
from dpsynth.privacy.budgets import RDP


class _Event:
    kind: ClassVar[str]

    @property
    def rho(self) -> float:
        """ρ of the event (zCDP), an upper bound of its exact cost; every event defines it."""
        raise NotImplementedError

    @property
    def delta(self) -> float:
        """Additive δ of the event (approximate zCDP); 0 for a pure zCDP mechanism."""
        return 0.0

    @property
    def rdp(self) -> RDP | None:
        """The event's Rényi-DP curve when it is accounted in RDP (DP-SGD); None for zCDP events."""
        return None

    @property
    def additive_epsilon(self) -> float:
        """ε that composes by plain addition (an (ε, δ) claim taken as given); 0 for the others."""
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        """The event as stored in reports and the ledger, with its ρ (and its δ when it has one)."""
        out = {"kind": self.kind, **asdict(self), "rho": self.rho}  # type: ignore[call-overload]
        if self.delta:
            out["delta"] = self.delta
        return out


@dataclass(frozen=True)
class GaussianEvent(_Event):
    """Discrete Gaussian noise of ``scale`` on a query of L2 sensitivity ``l2_sensitivity``.

    Privacy: (Δ₂² / 2σ²)-zCDP (Canonne, Kamath, Steinke 2020, Theorem 14); ``rho`` is that value
    computed exactly and rounded up (:func:`~dpsynth.privacy.accounting.gaussian_rho`, the same
    value as OpenDP's privacy map).
    """

    scale: float
    l2_sensitivity: float
    label: str = ""

    kind: ClassVar[str] = "gaussian"

    @property
    def rho(self) -> float:
        """Δ₂² / (2σ²), exact and rounded up."""
        return accounting.gaussian_rho(self.scale, self.l2_sensitivity)


@dataclass(frozen=True)
class ExponentialEvent(_Event):
    """One exponential-mechanism selection at ``epsilon`` (scores of sensitivity Δ), run as
    report-noisy-max with Gumbel noise of scale :attr:`gumbel_scale` = 2Δ/ε (as a float).

    Privacy: ε'-DP and ε'-bounded range, hence (ε'²/8)-zCDP (Cesar and Rogers 2021), where
    ε' = 2Δ / gumbel_scale is the ε of the noise actually drawn (float rounding of the scale may
    put it an ulp above ``epsilon``). ``rho`` is that cost, rounded up step by step as OpenDP's
    map for ``make_noisy_max`` does (:func:`~dpsynth.privacy.accounting.noisy_max_rho`).
    """

    epsilon: float
    sensitivity: float
    label: str = ""

    kind: ClassVar[str] = "exponential"

    @property
    def gumbel_scale(self) -> float:
        """The scale of the Gumbel noise that the selection draws: 2Δ/ε (infinite for ε = 0)."""
        if self.epsilon == 0:
            return math.inf
        return 2.0 * self.sensitivity / self.epsilon

    @property
    def rho(self) -> float:
        """ρ of the selection, exact and rounded up."""
        return accounting.noisy_max_rho(self.gumbel_scale, self.sensitivity)


@dataclass(frozen=True)
class ZCDPFilterEvent(_Event):
    """A budget of ``rho_budget`` for an adaptive sequence of zCDP mechanisms (e.g. AIM's rounds).

    The mechanisms, their number and their costs are chosen as the computation goes; an odometer
    refuses any that would take the sum past ``rho_budget``. Privacy: at most ρ-zCDP in total
    (zCDP composes under fully adaptive choice of the costs with a fixed total; Whitehouse et al.
    2023, "Fully adaptive composition in differential privacy").
    """

    rho_budget: float
    max_rounds: int
    label: str = ""

    kind: ClassVar[str] = "zcdp_filter"

    @property
    def rho(self) -> float:
        """The whole budget of the filter: what the adaptive sequence may spend at most."""
        return self.rho_budget


@dataclass(frozen=True)
class PartitionSelectionEvent(_Event):
    """Thresholded noisy counts over keys found in the data (DP partition selection).

    Discrete Gaussian noise of ``scale`` σ on the count of every key the data holds; a key is
    released only if its noisy count exceeds ``threshold`` τ. One row touches at most
    ``max_partitions`` L0 keys (one per group, e.g. one value per column).

    Privacy: δ-approximately ρ-zCDP (Bun–Steinke 2016, Definition 8.1) with ρ = L0 / (2σ²)
    (the noisy counts of keys both neighbours hold; CKS20 Theorem 14, Δ₂ = √L0) and
    δ = L0 · P[1 + Z > τ] = L0 · P[Z ≥ τ] (a key only one neighbour holds has count 1 and is
    released with that probability; union bound over at most L0 such keys), computed from the
    exact discrete Gaussian tail and rounded up. ρ is computed exactly and rounded up
    (:func:`~dpsynth.privacy.accounting.gaussian_rho_squared` with Δ₂² = L0).
    """

    scale: float
    threshold: int
    max_partitions: int
    label: str = ""

    kind: ClassVar[str] = "partition_selection"

    @property
    def rho(self) -> float:
        """ρ of the noisy counts of at most ``max_partitions`` keys (Δ₂² = L0)."""
        return accounting.gaussian_rho_squared(self.scale, self.max_partitions)

    @property
    def delta(self) -> float:
        """The additive δ of the thresholding (0 when no key can be released)."""
        if self.max_partitions == 0:
            return 0.0
        p = self.max_partitions * accounting.discrete_gaussian_tail(self.scale, self.threshold)
        return min(1.0, math.nextafter(p, math.inf))


@dataclass(frozen=True)
class SubsampledGaussianEvent(_Event):
    """``steps`` steps of DP-SGD: Poisson subsampling at ``sample_rate`` (each row joins each batch
    independently with that probability), per-sample gradients clipped to L2 norm C, Gaussian noise
    of standard deviation ``noise_multiplier`` · C on their sum.

    Sensitivity: adding or removing one row changes the sum of clipped gradients of a step by at
    most C in L2 (only when the row is sampled).

    Privacy: the Rényi-DP curve of the Poisson-subsampled Gaussian mechanism composed over
    ``steps`` (Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
    Mechanism"), stored at ``orders`` as computed by Opacus's ``analysis.rdp.compute_rdp`` when
    the event was planned (see :mod:`dpsynth.synth.dpsgd.accounting`), so that the ledger never
    needs Opacus to add curves up. It is not zCDP with a finite ρ: its ``rho`` is 0 and its cost
    is the curve.
    """

    noise_multiplier: float
    sample_rate: float
    steps: int
    orders: tuple[float, ...]
    rdp_values: tuple[float, ...]
    label: str = ""

    kind: ClassVar[str] = "subsampled_gaussian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "orders", tuple(float(a) for a in self.orders))
        object.__setattr__(self, "rdp_values", RDP(self.orders, self.rdp_values).epsilons)

    @property
    def rho(self) -> float:
        """0: the cost is the Rényi-DP curve."""
        return 0.0

    @property
    def rdp(self) -> RDP:
        """The Rényi-DP curve of the event."""
        return RDP(self.orders, self.rdp_values)


@dataclass(frozen=True)
class ApproxDPEvent(_Event):
    """A whole computation whose (``epsilon``, ``epsilon_delta``)-DP is claimed, not derived: a
    generator dpsynth did not write and that offers no plan of its own (``docs/plugins.md``).

    Privacy: taken as given, it composes with everything else by basic composition (the ε add up,
    the δ add up; Dwork and Roth 2014, Theorem 3.16): it has no ρ and no Rényi curve, its ε is
    :attr:`additive_epsilon` and its δ :attr:`delta`. The ledger charges it in full before the
    generator reads a row; nothing checks the claim but the release's audit.
    """

    epsilon: float
    epsilon_delta: float
    label: str = ""

    kind: ClassVar[str] = "approx_dp"

    def __post_init__(self) -> None:
        from dpsynth.exceptions import ParameterError

        for name in ("epsilon", "epsilon_delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ParameterError(f"{name} ({value!r}) of an (ε, δ) claim must be a finite number >= 0")
        if self.epsilon_delta >= 1:
            raise ParameterError(f"epsilon_delta ({self.epsilon_delta!r}) of an (ε, δ) claim must be below 1")

    @property
    def rho(self) -> float:
        """0: the claim is charged as (ε, δ)."""
        return 0.0

    @property
    def delta(self) -> float:
        """The claim's δ, charged as additive δ."""
        return float(self.epsilon_delta)

    @property
    def additive_epsilon(self) -> float:
        """The claim's ε, charged as additive ε (basic composition)."""
        return float(self.epsilon)


PrivacyEvent = (GaussianEvent | ExponentialEvent | ZCDPFilterEvent | PartitionSelectionEvent | SubsampledGaussianEvent
                | ApproxDPEvent)


def total_rho(events: list[PrivacyEvent]) -> float:
    """ρ of the composition of ``events`` (zCDP composes additively): the exact sum of their ρ,
    rounded up (:func:`~dpsynth.privacy.accounting.sum_up`), whatever their order."""
    return accounting.sum_up(e.rho for e in events)


def total_delta(events: list[PrivacyEvent]) -> float:
    """Additive δ of the composition of ``events`` (approximate zCDP: the δ add up), rounded up."""
    total = math.fsum(e.delta for e in events)
    return math.nextafter(total, math.inf) if total > 0 else 0.0


def total_epsilon(events: list[PrivacyEvent]) -> float:
    """Additive ε of the composition of ``events`` (the (ε, δ) claims add up): the exact sum
    rounded up (:func:`~dpsynth.privacy.accounting.sum_up`), so claims that fill a cap exactly fit."""
    return accounting.sum_up(e.additive_epsilon for e in events)


def total_rdp(events: list[PrivacyEvent]) -> RDP | None:
    """The Rényi-DP curve of the events accounted in RDP, added up (None when there is none).

    The zCDP events are not in it: callers compose Σρ with it (the curve ρα + this).
    """
    return RDP.total([e.rdp for e in events if e.rdp is not None])
