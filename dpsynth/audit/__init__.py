"""Privacy audits: empirical lower bounds on ε (and μ) next to the claimed guarantee.

Audits read the private data (or worst-case stand-ins for it) and are NOT differentially
private: their results are internal evidence, never released, and they never contain a data row.
"""

from dpsynth.audit.blackbox import BlackboxResult, blackbox_audit
from dpsynth.audit.bounds import (
    NOT_DP_NOTICE,
    AuditResult,
    ErrorCounts,
    clopper_pearson_upper,
    epsilon_lower_bound,
    max_provable_epsilon,
    max_provable_mu,
    mu_for_claim,
    mu_from_rho,
    mu_lower_bound,
    one_run_epsilon_lower_bound,
    one_run_p_value,
    split_trials,
    threshold_audit,
)
from dpsynth.audit.onerun import one_run_audit

__all__ = [
    "NOT_DP_NOTICE",
    "AuditResult",
    "BlackboxResult",
    "blackbox_audit",
    "one_run_audit",
    "ErrorCounts",
    "clopper_pearson_upper",
    "epsilon_lower_bound",
    "max_provable_epsilon",
    "max_provable_mu",
    "mu_for_claim",
    "mu_from_rho",
    "mu_lower_bound",
    "one_run_epsilon_lower_bound",
    "one_run_p_value",
    "split_trials",
    "threshold_audit",
]
