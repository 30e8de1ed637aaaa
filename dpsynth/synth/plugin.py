"""Generators dpsynth did not write: the plain estimator contract (``docs/plugins.md``).

A plug-in is any class with ``__init__(*, epsilon, delta, ...)``, ``fit(data, *, schema)`` and
``sample(n_rows)``, named by import path (``package.module:Class``). It may offer:

* ``plan(schema)``: a non-empty list of dpsynth privacy events, charged instead of its claim;
* ``secure_noise_`` set by its fit: its own claim that its noise is cryptographically secure;
* a seed: ``random_state=`` or ``seed=`` in ``__init__`` (given dpsynth's ``insecure_seed``) and/or
  ``sample(n, random_state=)`` (seeds the post-processing);
* ``estimates_rows = True`` with ``total_estimate_`` after its fit: its own DP estimate of the
  private row count.

:func:`load_generator` returns dpsynth's own class for a registered name or a subclass of
:class:`~dpsynth.synth.base.Synthesizer` (those plan and spend their own mechanisms), and a
:class:`PluginClass` otherwise: a picklable factory of :class:`PluginSynthesizer`, which takes the
road of every dpsynth fit (plan, check the data, reserve in the ledger, then fit) with the plug-in's
claim as the plan. The plug-in is never given the ledger: dpsynth charges it. Loading and the
contract check live in :mod:`dpsynth.synth.plugin_loading` (re-exported here).

Privacy: without a plan of its own, a plug-in's (ε, δ) is charged as ONE
:class:`~dpsynth.privacy.events.ApproxDPEvent` before its ``fit`` reads a row. The claim is the
generator's: dpsynth does not verify it (it cannot see the mechanisms); a release audits the output
as a black box, and the report says so.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError, NotFittedError, ParameterError, PluginError, SchemaError
from dpsynth.privacy.events import ApproxDPEvent, PrivacyEvent
from dpsynth.synth.base import Synthesizer
from dpsynth.synth.plugin_loading import SEED_NAMES, PluginClass, _contract_error, _signature, _takes, load_generator

if TYPE_CHECKING:
    from dpsynth.mechanisms import NoiseSource
    from dpsynth.privacy.odometer import Odometer
    from dpsynth.schema.schema import Schema

#: the report's statement for a plug-in's claim
PLUGIN_STATEMENT = ("the privacy claim is the generator's own; dpsynth charged it before the fit and audited the "
                    "generator as a black box; it is unverified by construction")
#: the report's statement for dpsynth's own synthesizers
DPSYNTH_STATEMENT = ("the privacy claim is dpsynth's: each mechanism declares its sensitivity and derives its cost "
                     "from the noise it draws; the whole plan is reserved in the ledger before the fit and spent "
                     "through it")
PLAN_OWN = "the generator's own plan()"
PLAN_CHARGED = "charged by dpsynth as one (ε, δ) event"
PLAN_DPSYNTH = "dpsynth's plan, each mechanism's cost derived from its noise"


# -- the wrapper ------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return type(exc).__name__


def _finite(value: Any) -> float | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


class PluginSynthesizer(Synthesizer):
    """One instance of a plug-in (the user's class, created here so that unknown parameters are
    refused before any charge), on the road of every dpsynth fit.

    Privacy: :meth:`plan` is the plug-in's own plan (validated) or ONE ``ApproxDPEvent(ε, δ)``; the
    base class's :meth:`~dpsynth.synth.base.Synthesizer.fit` reserves it in the ledger before the
    plug-in's ``fit`` reads a row, and it is spent from the reservation as the fit starts (the
    whole generator is one mechanism to dpsynth). A failure after the charge keeps the reservation
    spent (marked failed).
    """

    name = "plugin"
    unit = "row"
    uses_bins = False
    estimates_rows = False
    plugin = True

    def __init__(self, generator: PluginClass, *, epsilon: float, delta: float, insecure_seed: int | None = None,
                 params: dict[str, Any] | None = None):
        super().__init__(epsilon=epsilon, delta=delta, insecure_seed=insecure_seed)
        self.name = generator.spec  # type: ignore[misc]
        self.estimates_rows = generator.estimates_rows  # type: ignore[misc]
        self._generator = generator
        self._params = dict(params or {})
        self._planned: list[PrivacyEvent] | None = None
        spec, cls = generator.spec, generator.cls
        budget = self.budget()  # ε, δ and the seed, checked before the user's class sees them
        seed_name = generator.seed_parameter
        reserved = sorted({"epsilon", "delta", *SEED_NAMES} & set(self._params))
        if reserved:
            raise ParameterError(f"synthesizer ({spec!r}): {', '.join(reserved)} cannot be a parameter of a plug-in "
                                 "(dpsynth sets ε and δ, and the seed from insecure_seed)")
        kwargs = dict(self._params)
        if insecure_seed is not None and seed_name is not None:
            kwargs[seed_name] = int(insecure_seed)
        try:
            self._inner = cls(epsilon=budget.epsilon, delta=budget.delta, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"synthesizer ({spec!r}): {cls.__name__}() does not accept these parameters "
                                 f"({', '.join(sorted(kwargs)) or 'none'}): {_first(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - a user's class may fail in any way; nothing is charged yet
            raise ParameterError(f"synthesizer ({spec!r}): {cls.__name__}(epsilon=..., delta=...) raised "
                                 f"{type(exc).__name__}: {_first(exc)}") from None

    @property
    def generator(self) -> PluginClass:
        """The :class:`PluginClass` this synthesizer was made by."""
        return self._generator

    @property
    def inner(self) -> Any:
        """The user's generator instance."""
        return self._inner

    def get_params(self) -> dict[str, Any]:
        """The parameters it was made with, the plug-in's own included (scikit-learn's contract)."""
        return {"epsilon": self.epsilon, "delta": self.delta, "insecure_seed": self.insecure_seed, **self._params}

    # -- the plan (public information only) -------------------------------------------------------
    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        """The plug-in's own plan when it offers one (validated), else ONE ApproxDPEvent(ε, δ)."""
        from dpsynth.schema import dp_bins
        from dpsynth.schema.schema import Schema

        spec = self._generator.spec
        budget = self.budget()
        if not isinstance(schema, Schema):
            raise ParameterError(f"schema ({type(schema).__name__}) must be a dpsynth Schema")
        binned = dp_bins.dp_binned(schema)
        if binned:
            raise ParameterError(
                f"synthesizer ({spec!r}) is a plug-in: it cannot use bins dpsynth would have to choose with DP "
                f"(column(s) {', '.join(c.name for c in binned)} ask for DP quantile bins); declare their edges or "
                "a number of bins in the schema")
        own = getattr(self._inner, "plan", None)
        if own is None:
            events: list[PrivacyEvent] = [ApproxDPEvent(budget.epsilon, budget.delta, label=f"claim of {spec}")]
        else:
            try:
                events = own(schema)
            except (ParameterError, SchemaError):
                raise
            except Exception as exc:  # noqa: BLE001 - a user's plan may fail in any way; it is a contract problem
                raise _contract_error(spec, [f"plan(schema) raised {type(exc).__name__}"]) from None
            if not isinstance(events, list) or not events or not all(isinstance(e, PrivacyEvent) for e in events):
                raise _contract_error(spec, ["plan() returned something that is not a non-empty list of dpsynth "
                                             "privacy events"])
            events = list(events)
        self._planned = events
        return list(events)

    def claim(self) -> dict[str, Any]:
        """Whose privacy claim this is, for the report (public: from the class and its parameters)."""
        own = getattr(self._inner, "plan", None) is not None
        out: dict[str, Any] = {"source": "generator", "generator": self._generator.spec,
                               "plan": PLAN_OWN if own else PLAN_CHARGED, "verified": False,
                               "epsilon": float(self.epsilon), "delta": float(self.delta),
                               "secure_noise": "the generator's own claim (secure_noise_ after its fit)",
                               "rows_estimate": ("the generator's own (total_estimate_ after its fit)"
                                                 if self.estimates_rows else None),
                               "statement": PLUGIN_STATEMENT}
        if hasattr(self, "secure_noise_"):
            out["secure_noise_reported"] = bool(self.secure_noise_)
        return out

    # -- the fit (after the reservation) ----------------------------------------------------------
    def _fit_table(self, data: pd.DataFrame, codes: np.ndarray, schema: Schema, odometer: Odometer,
                   noise: NoiseSource) -> None:
        spec = self._generator.spec
        events = self._planned if self._planned is not None else self.plan(schema)
        for event in events:  # to dpsynth the whole generator is one mechanism: its claim is spent as it starts
            odometer.spend(event)
        try:
            self._inner.fit(data.copy(), schema=schema)
        except Exception as exc:  # noqa: BLE001 - a user's fit may fail in any way; the charge stays spent
            raise PluginError(f"synthesizer ({spec!r}): its fit() raised {_one_line(exc)} after its claim was charged "
                              "(the reservation is final; it is marked failed)") from None
        reported = getattr(self._inner, "secure_noise_", False)
        self.secure_noise_ = bool(isinstance(reported, (bool, np.bool_)) and reported and self.insecure_seed is None)
        self.noise_source_ = (f"the generator's own (its claim: secure_noise_ {bool(self.secure_noise_)}, "
                              "unverified)")
        if self.estimates_rows:
            self.total_estimate_ = _finite(getattr(self._inner, "total_estimate_", None))
        self.schema_ = schema
        self.privacy_events_ = list(odometer.events)
        self.privacy_spent_ = odometer.spent
        self.claim_ = self.claim()

    def _fit_codes(self, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        raise NotImplementedError("a plug-in fits on the table (_fit_table)")  # pragma: no cover

    def _sample_codes(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError("a plug-in samples a table (sample)")  # pragma: no cover

    def _ledger_detail(self) -> dict[str, Any]:
        return {"events_run": len(getattr(self, "privacy_events_", [])), "claim": "generator, unverified"}

    def privacy_statement(self) -> dict[str, Any]:
        """The base statement with the plug-in's claim (:meth:`claim`)."""
        return {**super().privacy_statement(), "claim": self.claim()}

    # -- sampling (post-processing) ---------------------------------------------------------------
    def sample(self, n_rows: int, *, random_state: int | None = None,
               conditions: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """``n_rows`` rows from the plug-in, checked against the schema and in its column order.

        ``conditions`` as for :meth:`Synthesizer.sample <dpsynth.synth.base.Synthesizer.sample>`, by
        rejection: the plug-in's ``sample`` is called in rounds and the rows that do not meet the
        condition are discarded (:func:`~dpsynth.synth.conditions.draw_until`; seeded runs give each
        round its own ``random_state``). The plug-in is never told the condition.

        Raises:
            PluginError: its ``sample`` raised, or returned something that is not a DataFrame of
                ``n_rows`` rows with the schema's columns fitting the schema (one line; no value).
            ParameterError: a condition outside the schema, or one too rare to reach ``n_rows`` rows.
        """
        from dpsynth import _validation as check

        n_rows = check.positive_int("rows", n_rows)
        if not hasattr(self, "schema_"):
            raise NotFittedError(f"this {self._generator.spec} is not fitted yet; call fit() first")
        if random_state is None and self.insecure_seed is not None:
            random_state = int(self.insecure_seed) + 1
        if conditions is None:
            return self._draw(n_rows, random_state)[0]
        from dpsynth.synth import conditions as cond

        parsed = cond.parse_conditions(conditions, self.schema_)
        rng = np.random.default_rng(random_state)
        seeded = random_state is not None

        def draw(m: int, evidence: Any) -> tuple[pd.DataFrame, np.ndarray]:
            return self._draw(m, int(rng.integers(0, 2**31 - 1)) if seeded else None)

        return cast(pd.DataFrame, cond.frames_by_rejection(parsed, n_rows, rng, draw))

    def _draw(self, n_rows: int, random_state: int | None) -> tuple[pd.DataFrame, np.ndarray]:
        """``n_rows`` rows from the plug-in's ``sample``, checked (see :meth:`sample`), and their codes."""
        from dpsynth.schema.encode import encode

        spec, schema = self._generator.spec, self.schema_
        sig = _signature(self._inner.sample)
        takes_state = sig is not None and _takes(list(sig.parameters.values()), "random_state", var_keyword=False)
        try:
            out = (self._inner.sample(n_rows, random_state=random_state) if takes_state and random_state is not None
                   else self._inner.sample(n_rows))
        except Exception as exc:  # noqa: BLE001 - a user's sample may fail in any way
            raise PluginError(f"synthesizer ({spec!r}): its sample({n_rows}) raised {_one_line(exc)}") from None
        where = f"synthesizer ({spec!r}): its sample({n_rows}) returned"
        if not isinstance(out, pd.DataFrame):
            raise PluginError(f"{where} a {type(out).__name__}, not a pandas DataFrame")
        columns = [str(c) for c in out.columns]
        if len(set(columns)) != len(columns):
            raise PluginError(f"{where} a table with duplicated column names")
        missing = [c for c in schema.names if c not in columns]
        if missing:
            raise PluginError(f"{where} a table without the schema's column(s) {', '.join(missing)}")
        extra = len(columns) - len(schema.names)
        if extra:
            raise PluginError(f"{where} a table with {extra} column(s) that are not in the schema")
        if len(out) != n_rows:
            raise PluginError(f"{where} {len(out)} rows, not {n_rows}")
        out = out.set_axis(columns, axis=1)[list(schema.names)].reset_index(drop=True)
        try:
            codes = encode(out, schema)
        except DataError as exc:  # its messages name the column and a count, never a value
            raise PluginError(f"{where} a table that does not fit the schema: {_first(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - any other failure to read it is the same problem, said without a value
            raise PluginError(f"{where} a table that does not fit the schema ({type(exc).__name__})") from None
        return out, codes


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def claim_of(synth: Any) -> dict[str, Any]:
    """The report's ``release.claim`` for a synthesizer instance: a plug-in's claim (unverified), or
    dpsynth's own for its synthesizers."""
    if isinstance(synth, PluginSynthesizer):
        return synth.claim()
    return {"source": "dpsynth", "generator": str(getattr(synth, "name", type(synth).__name__)),
            "plan": PLAN_DPSYNTH, "verified": True, "statement": DPSYNTH_STATEMENT}


__all__ = ["PLUGIN_STATEMENT", "PluginClass", "PluginSynthesizer", "claim_of", "load_generator"]
