"""DP-SGD accounting on Opacus: the planned run's Rényi-DP curve and the calibration of its noise.

Two accountants, two jobs:

* **PRV** (Gopi, Lee and Wutschitz 2021; Opacus's ``PRVAccountant``) is the tightest numerical
  accountant Opacus has. It gives the noise multiplier σ_PRV that the target (ε, δ) needs for the
  planned run alone, and the ε reported for the run.
* **RDP** (Mironov, Talwar and Zhang 2019; Opacus's ``analysis.rdp.compute_rdp``) gives a curve
  that composes by addition with every other release of the dataset (zCDP ρ is the curve ρα).
  The ledger reserves this curve, so the **reserved** cost must fit the target too.

PRV is tighter than RDP: a σ calibrated with PRV alone usually has an RDP ε above the target. We
therefore take σ = max(σ_PRV, σ_RDP), where σ_RDP is the smallest σ (found by bisection, rounded
up) whose curve, composed with the fit's other (zCDP) events, converts to at most the target ε at
δ. The reservation then never exceeds the target, the PRV ε of the run is at most the target, and
both are recorded. The price is a slightly larger σ than a PRV-only calibration (a few percent on
typical runs), paid for a ledger that composes exactly what it reserved.

Every function here is pure: each calibration uses fresh accountants, never a live one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

from dpsynth.exceptions import ParameterError
from dpsynth.privacy.accounting import RDP_ORDERS, composed_epsilon
from dpsynth.privacy.events import SubsampledGaussianEvent

#: RDP values from Opacus are raised by this relative margin (far above their float error).
_RDP_MARGIN = 1.0 + 1e-9
#: Bisection on σ stops when the bracket is this narrow (relative); the high end is taken.
_SIGMA_PRECISION = 1e-6
#: Opacus's PRV accountant warns about its internal RDP domain estimate; that is not ours.
_PRV_WARNING = "Optimal order is the largest alpha"


def steps_for(epochs: float, sample_rate: float) -> int:
    """Planned DP-SGD steps: ⌈epochs / sample_rate⌉ (an epoch is 1/q Poisson batches)."""
    return max(1, math.ceil(epochs / sample_rate - 1e-9))


@lru_cache(maxsize=1024)
def _rdp_curve(noise_multiplier: float, sample_rate: float, steps: int) -> tuple[float, ...]:
    from opacus.accountants.analysis.rdp import compute_rdp

    values = compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=steps, orders=list(RDP_ORDERS))
    return tuple(float(v) * _RDP_MARGIN for v in values)


def subsampled_gaussian_event(
    noise_multiplier: float, sample_rate: float, steps: int, *, label: str = "dp_sgd"
) -> SubsampledGaussianEvent:
    """The privacy event of ``steps`` Poisson-subsampled Gaussian steps (its RDP curve at
    :data:`~dpsynth.privacy.accounting.RDP_ORDERS`, from Opacus, rounded up)."""
    return SubsampledGaussianEvent(
        noise_multiplier=float(noise_multiplier), sample_rate=float(sample_rate), steps=int(steps),
        orders=RDP_ORDERS, rdp_values=_rdp_curve(float(noise_multiplier), float(sample_rate), int(steps)), label=label,
    )


def rdp_epsilon_of_run(noise_multiplier: float, sample_rate: float, steps: int, delta: float, rho_other: float = 0.0
                       ) -> float:
    """ε at ``delta`` of the run's RDP curve composed with ``rho_other``-zCDP (dpsynth's conversion)."""
    return composed_epsilon(rho_other, RDP_ORDERS, _rdp_curve(noise_multiplier, sample_rate, steps), delta)


@lru_cache(maxsize=256)
def opacus_epsilons(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> dict[str, float | None]:
    """Opacus's own ε for a run (fresh accountants): RDP (at dpsynth's orders) and PRV.

    PRV can fail numerically far outside its comfort zone; its ε is then ``None`` (the RDP figure,
    which the ledger reserves, is always there).
    """
    from opacus.accountants import PRVAccountant, RDPAccountant

    rdp = RDPAccountant()
    rdp.history = [(noise_multiplier, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PRV_WARNING)
        epsilon_rdp = float(rdp.get_epsilon(delta=delta, alphas=list(RDP_ORDERS)))
        prv = PRVAccountant()
        prv.history = [(noise_multiplier, sample_rate, steps)]
        try:
            epsilon_prv: float | None = float(prv.get_epsilon(delta=delta))
        except (ValueError, RuntimeError, OverflowError, FloatingPointError):
            epsilon_prv = None
    return {"rdp": epsilon_rdp, "prv": epsilon_prv}


@dataclass(frozen=True)
class Calibration:
    """The noise of a planned DP-SGD run and why (see the module docstring)."""

    noise_multiplier: float
    noise_multiplier_prv: float | None  # what PRV alone needs for the target (None: PRV failed)
    noise_multiplier_rdp: float  # what the reserved RDP curve (with the other events) needs
    sample_rate: float
    steps: int
    epsilon: float  # the target
    delta: float
    rho_other: float  # zCDP ρ of the fit's other events, composed with the curve
    epsilon_reserved: float  # ε of the reserved composition (RDP conversion); <= epsilon
    epsilon_prv: float | None  # PRV ε of the DP-SGD run alone at the chosen σ; <= epsilon

    @property
    def event(self) -> SubsampledGaussianEvent:
        """The planned run as the ledger reserves it (σ, q, T)."""
        return subsampled_gaussian_event(self.noise_multiplier, self.sample_rate, self.steps)

    def to_dict(self) -> dict[str, float | int | None]:
        """Every field, by name (JSON-ready)."""
        return dict(vars(self))


def _too_small(epsilon: float, delta: float, sample_rate: float, steps: int, rho_other: float,
               max_noise_multiplier: float) -> ParameterError:
    one_step = rdp_epsilon_of_run(max_noise_multiplier, sample_rate, 1, delta, rho_other)
    if one_step > epsilon:
        return ParameterError(
            f"epsilon ({epsilon!r}) is too small to train even one DP-SGD step at sample_rate {sample_rate:g} "
            f"and delta {delta:g}: one step with noise_multiplier {max_noise_multiplier:g} (max_noise_multiplier) "
            f"already costs epsilon={one_step:.4g}"
        )
    return ParameterError(
        f"epsilon ({epsilon!r}) is too small for {steps} DP-SGD steps at sample_rate {sample_rate:g} and delta "
        f"{delta:g}: they would need noise_multiplier > {max_noise_multiplier:g} (max_noise_multiplier); "
        "train fewer epochs or give a larger epsilon"
    )


@lru_cache(maxsize=256)
def calibrate(
    *, epsilon: float, delta: float, sample_rate: float, steps: int, rho_other: float = 0.0,
    max_noise_multiplier: float = 50.0,
) -> Calibration:
    """The noise multiplier for ``steps`` Poisson-subsampled steps at ``sample_rate`` such that the
    run (composed with ``rho_other``-zCDP) is (``epsilon``, ``delta``)-DP in RDP, and PRV alone
    would not ask for more. Pure; never overshoots the target (property-tested).

    Raises:
        ParameterError: the target cannot be met with σ <= ``max_noise_multiplier`` (ε too small
            for the planned steps, or for even one step).
    """
    if not (0.0 < sample_rate <= 1.0):
        raise ParameterError(f"sample_rate ({sample_rate!r}) must be in (0, 1]")

    def fits(sigma: float) -> bool:
        return rdp_epsilon_of_run(sigma, sample_rate, steps, delta, rho_other) <= epsilon

    if not fits(max_noise_multiplier):
        raise _too_small(epsilon, delta, sample_rate, steps, rho_other, max_noise_multiplier)
    lo, hi = 0.0, max_noise_multiplier
    # Narrow from above by halving first (most targets need σ of a few units), then bisect.
    while hi / 2 > 1e-3 and fits(hi / 2):
        hi /= 2
    lo = hi / 2 if hi / 2 > 1e-3 else 0.0
    while hi - lo > _SIGMA_PRECISION * hi:
        mid = 0.5 * (lo + hi)
        if fits(mid):
            hi = mid
        else:
            lo = mid
    sigma_rdp = hi

    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PRV_WARNING)
        try:
            sigma_prv: float | None = float(get_noise_multiplier(
                target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps, accountant="prv",
                epsilon_tolerance=0.005 * epsilon,
            ))
        except (ValueError, RuntimeError, OverflowError, FloatingPointError):
            sigma_prv = None  # recorded; the RDP calibration (which is what is reserved) stands
    sigma = max(sigma_rdp, sigma_prv or 0.0)
    epsilons = opacus_epsilons(sigma, sample_rate, steps, delta)
    return Calibration(
        noise_multiplier=sigma, noise_multiplier_prv=sigma_prv, noise_multiplier_rdp=sigma_rdp,
        sample_rate=sample_rate, steps=steps, epsilon=epsilon, delta=delta, rho_other=rho_other,
        epsilon_reserved=rdp_epsilon_of_run(sigma, sample_rate, steps, delta, rho_other),
        epsilon_prv=epsilons["prv"],
    )
