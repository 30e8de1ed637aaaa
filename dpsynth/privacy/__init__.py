"""Budgets, privacy events, accounting and the odometer that mechanisms spend from."""

from dpsynth.privacy.accounting import approx_dp_to_rho, zcdp_delta, zcdp_epsilon
from dpsynth.privacy.budgets import ZCDP, ApproxDP
from dpsynth.privacy.events import (
    ApproxDPEvent,
    ExponentialEvent,
    GaussianEvent,
    PartitionSelectionEvent,
    PrivacyEvent,
    ZCDPFilterEvent,
    total_delta,
    total_epsilon,
    total_rho,
)
from dpsynth.privacy.odometer import Odometer
from dpsynth.privacy.unit import PrivacyUnit

__all__ = [
    "ApproxDP",
    "ApproxDPEvent",
    "ZCDP",
    "ExponentialEvent",
    "GaussianEvent",
    "Odometer",
    "PartitionSelectionEvent",
    "PrivacyEvent",
    "PrivacyUnit",
    "approx_dp_to_rho",
    "total_delta",
    "total_epsilon",
    "total_rho",
    "zcdp_delta",
    "zcdp_epsilon",
    "ZCDPFilterEvent",
]
