"""The parameters the DP-SGD generators share: one keyword-only dataclass (scikit-learn style:
``__init__`` only stores them; they are checked by ``plan`` and ``fit``), each parameter defined
once, with its default, its meaning (the class docstring) and its check (:meth:`DPSGDParameters.
_validate_common`, in a fixed order, so that the first problem reported is always the same).

A generator adds its own model parameters as fields of its own keyword-only dataclass, and may
give a shared one another default (``epochs``); ``get_params`` lists them in field order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.synth.dpsgd.clipping import CLIPPING

#: Used when neither ``sample_rate`` nor ``batch_size`` is given.
DEFAULT_SAMPLE_RATE = 0.01
#: Default share of ρ = approx_dp_to_rho(ε, δ) for the noisy row count (σ ≈ 45 rows at ε = 1, δ = 1e-6).
DEFAULT_COUNT_SPLIT = 0.01


def check_dims(name: str, dims: Any, *, non_empty: bool) -> None:
    """Refuse layer widths that are not a (non-empty, when asked) sequence of integers > 0."""
    if not isinstance(dims, (tuple, list)) or (non_empty and not dims):
        what = "a non-empty sequence" if non_empty else "a sequence"
        raise ParameterError(f"{name} ({dims!r}) must be {what} of integers > 0")
    for d in dims:
        check.positive_int(name, d)


def check_share(name: str, value: Any) -> float:
    """A share of the budget's ρ, in the open interval (0, 1)."""
    if check.positive_finite(name, value) >= 1.0:
        raise ParameterError(f"{name} ({value!r}) must be in (0, 1)")
    return float(value)


def check_window(name: str, value: Any) -> float:
    """A moving average's time constant as a share of the training steps, in [0, 1] (0: none)."""
    if check.nonnegative_finite(name, value) > 1.0:
        raise ParameterError(f"{name} ({value!r}) must be in [0, 1]")
    return float(value)


@dataclass(kw_only=True, eq=False)
class DPSGDParameters:
    """The parameters shared by ``dpctgan`` and ``dpvae`` (keyword-only).

    Args:
        epsilon, delta: the (ε, δ) target of the whole fit (δ never derived from the data).
        insecure_seed: seed every generator (INSECURE, tests only; warns and is recorded).
        count_split: share of ρ = approx_dp_to_rho(ε, δ) for the noisy row count (exact discrete
            Gaussian, L2 sensitivity 1), the DP estimate ``total_estimate_`` a release samples
            when it is given no public row count. Default 0.01: σ ≈ 45 rows at ε = 1, δ = 1e-6.
            σ of DP-SGD is calibrated for what the count (and any other zCDP event) leaves.
        epochs: expected passes over the data; the plan takes ⌈epochs / q⌉ Poisson steps (each
            generator has its own default).
        sample_rate: Poisson sample rate q (each row joins each batch with probability q; at a
            user privacy unit each PERSON, with all their rows). Public and data-independent: it
            is what the accounting uses. When neither it nor
            ``batch_size`` is given: the generator's ``default_sample_rate`` (dpvae 0.1, dpctgan 0.01).
        batch_size: expected batch size, as an alternative to ``sample_rate``: needs ``rows``, the
            PUBLIC row count the data owner declares (q = batch_size / rows). The private row count
            is never used for the accounting. Refused at a user unit (q is over people there).
        rows: the public row count that goes with ``batch_size``.
        max_grad_norm: per-sample clipping norm C.
        max_noise_multiplier: the largest σ the calibration may choose; a target that needs more
            is refused (ε too small for the planned steps).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        secure_mode: cryptographically secure noise and Poisson sampling (:mod:`.secure_noise`: a
            ChaCha20 keystream keyed from ``os.urandom``, with Opacus's floating-point mitigation).
            None (the default) or True: on. False: torch's non-cryptographic generator, with a loud
            warning and ``secure_noise_`` False.
        max_levels: widest categorical column modelled one-hot.
        clipping: ``fused`` (default: ghost norms and the clipped sum from one backward pass, for
            models of linear layers; :class:`~.clipping.FusedLinearClipping`), ``ghost`` (Opacus's
            ghost clipping: norms without per-sample gradients, two backward passes) or ``hooks``
            (Opacus's per-sample gradients, materialised). Same clipped sum, same privacy
            analysis; fused is the fastest, hooks the slowest. At a user unit the step always
            uses hooks: each person's summed gradient is clipped (``docs/dpsgd.md``).
        numeric_encoding: ``bins`` (default: a numeric column is one-hot over its public bins plus
            the position inside the bin), ``subbins`` (the position one-hot over 5 equal parts of
            the bin, sampled, and the value drawn uniformly in its part) or ``scaled`` (the value
            scaled with the bounds); see
            :class:`~.transform.TableTransformer`. Public either way.
    """

    epsilon: float
    delta: float
    insecure_seed: int | None = None
    count_split: float = DEFAULT_COUNT_SPLIT
    epochs: float
    sample_rate: float | None = None
    batch_size: int | None = None
    rows: int | None = None
    max_grad_norm: float = 1.0
    max_noise_multiplier: float = 50.0
    device: str = "auto"
    secure_mode: bool | None = None
    max_levels: int = 1000
    clipping: str = "fused"
    numeric_encoding: str = "bins"

    #: q when neither ``sample_rate`` nor ``batch_size`` is given (a generator may choose its own)
    default_sample_rate: ClassVar[float] = DEFAULT_SAMPLE_RATE

    def _validate_common(self) -> None:
        """Check the shared parameters (``sample_rate``, ``batch_size`` and ``rows``: :meth:`_sample_rate`;
        ``numeric_encoding``: the transformer)."""
        check.positive_finite("epochs", self.epochs)
        check.positive_finite("max_grad_norm", self.max_grad_norm)
        check.positive_finite("max_noise_multiplier", self.max_noise_multiplier)
        check.positive_int("max_levels", self.max_levels)
        if self.secure_mode not in (None, True, False):
            raise ParameterError(f"secure_mode ({self.secure_mode!r}) must be True, False or None (auto)")
        if not isinstance(self.device, str):
            raise ParameterError(f"device ({self.device!r}) must be 'auto', 'cpu' or 'cuda'")
        if self.clipping not in CLIPPING:
            raise ParameterError(f"clipping ({self.clipping!r}) must be one of: {', '.join(CLIPPING)}")
        check_share("count_split", self.count_split)

    def _sample_rate(self) -> float:
        """The Poisson sample rate q: ``sample_rate``, ``batch_size`` / ``rows`` (both public), or the default."""
        if self.sample_rate is not None and self.batch_size is not None:
            raise ParameterError("give sample_rate or batch_size (with the public row count rows), not both")
        if self.batch_size is not None:
            batch = check.positive_int("batch_size", self.batch_size)
            if self.rows is None:
                raise ParameterError(
                    f"batch_size ({batch}) needs the public row count rows=N (the sample rate is batch_size / rows; "
                    "the private row count is never used), or give sample_rate instead"
                )
            rows = check.positive_int("rows", self.rows)
            if batch > rows:
                raise ParameterError(f"batch_size ({batch}) must be at most rows ({rows})")
            return batch / rows
        if self.sample_rate is None:
            return float(self.default_sample_rate)
        q = check.positive_finite("sample_rate", self.sample_rate)
        if q > 1.0:
            raise ParameterError(f"sample_rate ({self.sample_rate!r}) must be in (0, 1]")
        return q
