"""Whether a charge fits a dataset's cap: the account a charge needs, and the refusals.

The cap (ε, δ) holds what is spent, composed as the ledger's docstring says: zCDP ρ add up and
convert with CKS20; thresholding and claims add their δ (and claims their ε, basic composition);
once a release carries a Rényi-DP curve, the curves add order by order and convert with the
improved RDP conversion. Every refusal names what was requested and what remains.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpsynth.exceptions import BudgetExceededError, InternalError
from dpsynth.privacy.accounting import rho_within, rho_within_claims, sum_up, thresholding_delta, total_epsilon_within
from dpsynth.privacy.budgets import RDP, ApproxDP


@dataclass(frozen=True)
class Account:
    """The part of a dataset's statement that a charge needs."""

    dataset: str
    unit: str
    cap: ApproxDP
    rho_spent: float
    releases: int
    delta_spent: float = 0.0
    rdp_spent: RDP | None = None
    #: Σ of the additive ε of (ε, δ) claims
    epsilon_spent: float = 0.0

    @property
    def rho_cap(self) -> float:
        """The ρ the cap admits once the additive ε and δ and the curves already spent are set aside."""
        return rho_cap(self.cap, self.delta_spent, self.rdp_spent, self.epsilon_spent)


def rho_cap(cap: ApproxDP, delta_spent: float, rdp: RDP | None, epsilon_spent: float = 0.0) -> float:
    """The ρ ``cap`` still admits beside the additive δ and ε and the Rényi-DP curve spent."""
    return rho_within_claims(cap.epsilon, cap.delta, epsilon_spent, delta_spent, rdp.orders if rdp else (),
                             rdp.epsilons if rdp else None)


def spent_epsilon(rho: float, rdp: RDP | None, delta: float, additive_delta: float,
                   additive_epsilon: float = 0.0) -> float:
    """ε at ``delta`` of what was spent: the additive ε of claims + the conversion of (ρ, curve)."""
    if rdp is None and rho <= 0 and not additive_epsilon:
        return 0.0
    return total_epsilon_within(additive_epsilon, rho, rdp.orders if rdp else (), rdp.epsilons if rdp else None,
                                delta, additive_delta)


def refuse_overdraft(
    statement: Account, rho: float, delta: float, claimed: ApproxDP, rdp: RDP | None = None, epsilon: float = 0.0
) -> None:
    """Refuse a request of ``rho``, additive ``delta``, Rényi-DP curve ``rdp`` and additive
    ``epsilon`` ((ε, δ) claims) that the cap cannot hold, naming both the requested and the
    remaining numbers.

    With additive δ (thresholding) the cap holds iff Σδ_thr < δ_cap and
    Σρ ≤ approx_dp_to_rho(ε_cap, δ_cap − Σδ_thr/(1 − Σδ_thr)), Σ over what was spent and this request.
    Once a curve is involved (spent or requested), it holds iff Σδ_thr < δ_cap and the curve
    Σρ·α + Σ curves converts to at most ε_cap at δ_cap − Σδ_thr/(1 − Σδ_thr).
    Once a claim is involved (spent or requested), it holds iff Σε_claim + that conversion is at
    most ε_cap (with no ρ and no curve: Σε_claim ≤ ε_cap and Σδ ≤ δ_cap).
    """
    cap = statement.cap
    if epsilon or statement.epsilon_spent:
        _refuse_claim_overdraft(statement, rho, delta, claimed, rdp, epsilon)
        return
    if rdp is not None or statement.rdp_spent is not None:
        _refuse_rdp_overdraft(statement, rho, delta, claimed, rdp)
        return
    if not delta and not statement.delta_spent:
        remaining = statement.rho_cap - statement.rho_spent
        if rho > remaining:
            raise BudgetExceededError(
                f"requested rho={rho:.6g} (epsilon={claimed.epsilon:g}, delta={claimed.delta:g}) exceeds the "
                f"remaining rho={max(remaining, 0.0):.6g} of dataset {statement.dataset!r} (cap "
                f"epsilon={cap.epsilon:g}, delta={cap.delta:g}; spent rho={statement.rho_spent:.6g} in "
                f"{statement.releases} release(s))",
                requested=rho,
                remaining=max(remaining, 0.0),
            )
        return
    delta_after = statement.delta_spent + delta
    remaining_delta = max(0.0, cap.delta - thresholding_delta(statement.delta_spent))
    # The ρ left if this request's additive δ is taken as well (0 when the δ alone does not fit).
    remaining = rho_within(cap.epsilon, cap.delta, delta_after) - statement.rho_spent
    if thresholding_delta(delta_after) >= cap.delta or rho > remaining:
        raise BudgetExceededError(
            f"requested rho={rho:.6g} and additive delta={delta:.6g} (epsilon={claimed.epsilon:g}, "
            f"delta={claimed.delta:g}) exceeds the remaining rho={max(remaining, 0.0):.6g} (with this additive delta "
            f"taken) and additive delta={remaining_delta:.6g} of dataset {statement.dataset!r} (cap "
            f"epsilon={cap.epsilon:g}, delta={cap.delta:g}; spent rho={statement.rho_spent:.6g}, additive "
            f"delta={statement.delta_spent:.6g} in {statement.releases} release(s))",
            requested=rho,
            remaining=max(remaining, 0.0),
        )


def _refuse_rdp_overdraft(statement: Account, rho: float, delta: float, claimed: ApproxDP, rdp: RDP | None) -> None:
    cap = statement.cap
    spent_eps = spent_epsilon(statement.rho_spent, statement.rdp_spent, cap.delta, statement.delta_spent)
    curves = [c for c in (statement.rdp_spent, rdp) if c is not None]
    after_curve = RDP.total(curves)
    if after_curve is None:  # refuse_overdraft comes here only with a curve spent or requested
        raise InternalError(f"the Rényi-DP cap check of dataset {statement.dataset!r} has no curve to compose")
    delta_after = statement.delta_spent + delta
    total = spent_epsilon(statement.rho_spent + rho, after_curve, cap.delta, delta_after)
    if thresholding_delta(delta_after) < cap.delta and total <= cap.epsilon:
        return
    alone_curve = rdp if rdp is not None else RDP.zero(after_curve.orders)
    requested = spent_epsilon(rho, alone_curve, cap.delta, delta)
    remaining = max(0.0, cap.epsilon - spent_eps)
    additive = f" and additive delta={delta:.6g}" if delta else ""
    raise BudgetExceededError(
        f"requested epsilon={requested:.6g}{additive} at delta={cap.delta:g} (rho={rho:.6g} with a Rényi-DP "
        f"curve; claimed epsilon={claimed.epsilon:g}, delta={claimed.delta:g}) exceeds the remaining "
        f"epsilon={remaining:.6g} of dataset {statement.dataset!r}: composed in RDP the total would be "
        f"epsilon={total:.6g} > cap epsilon={cap.epsilon:g} at delta={cap.delta:g} (spent epsilon={spent_eps:.6g} "
        f"in {statement.releases} release(s))",
        requested=requested,
        remaining=remaining,
    )


def _refuse_claim_overdraft(
    statement: Account, rho: float, delta: float, claimed: ApproxDP, rdp: RDP | None, epsilon: float
) -> None:
    """The cap check once (ε, δ) claims are involved; the numbers in the message are ε at the cap's δ."""
    cap = statement.cap
    spent_eps = spent_epsilon(statement.rho_spent, statement.rdp_spent, cap.delta, statement.delta_spent,
                               statement.epsilon_spent)
    curves = [c for c in (statement.rdp_spent, rdp) if c is not None]
    delta_after = sum_up([statement.delta_spent, delta])
    epsilon_after = sum_up([statement.epsilon_spent, epsilon])
    total = spent_epsilon(sum_up([statement.rho_spent, rho]), RDP.total(curves), cap.delta, delta_after,
                           epsilon_after)
    if total <= cap.epsilon:
        return
    requested = spent_epsilon(rho, rdp, cap.delta, delta, epsilon)
    remaining = max(0.0, cap.epsilon - spent_eps)
    parts = ([f"additive epsilon={epsilon:.6g}"] if epsilon else []) + ([f"rho={rho:.6g}"] if rho else []) + (
        ["a Rényi-DP curve"] if rdp is not None else []) + ([f"additive delta={delta:.6g}"] if delta else [])
    parts = parts or ["no cost"]
    spent = [f"additive epsilon={statement.epsilon_spent:.6g}", f"rho={statement.rho_spent:.6g}"] + (
        [f"additive delta={statement.delta_spent:.6g}"] if statement.delta_spent else [])
    raise BudgetExceededError(
        f"requested epsilon={requested:.6g} at delta={cap.delta:g} ({', '.join(parts)}; claimed "
        f"epsilon={claimed.epsilon:g}, delta={claimed.delta:g}) exceeds the remaining epsilon={remaining:.6g} of "
        f"dataset {statement.dataset!r}: composed with the (epsilon, delta) claims the total would be "
        f"epsilon={total:.6g} (additive delta={delta_after:.6g}) > cap epsilon={cap.epsilon:g} at "
        f"delta={cap.delta:g} (spent epsilon={spent_eps:.6g}: {', '.join(spent)} in {statement.releases} "
        "release(s))",
        requested=requested,
        remaining=remaining,
    )
