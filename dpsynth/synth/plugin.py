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
claim as the plan. The plug-in is never given the ledger: dpsynth charges it.

Privacy: without a plan of its own, a plug-in's (ε, δ) is charged as ONE
:class:`~dpsynth.privacy.events.ApproxDPEvent` before its ``fit`` reads a row. The claim is the
generator's: dpsynth does not verify it (it cannot see the mechanisms); a release audits the output
as a black box, and the report says so.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError, NotFittedError, ParameterError, PluginError, SchemaError
from dpsynth.privacy.events import ApproxDPEvent, PrivacyEvent
from dpsynth.synth.base import Synthesizer

if TYPE_CHECKING:
    from dpsynth.mechanisms import NoiseSource
    from dpsynth.privacy.odometer import Odometer
    from dpsynth.schema.schema import Schema

#: names a plug-in may take its seed under, in ``__init__`` (given ``insecure_seed``), in this order
SEED_NAMES = ("random_state", "seed")
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


# -- loading ----------------------------------------------------------------------------------------


def load_generator(spec: str) -> Any:
    """The synthesizer named by ``spec``.

    A registered name (``mst``, ``aim``, ``dpctgan``, ``dpvae``) gives dpsynth's class; an import path
    ``package.module:Class`` gives that class when it subclasses
    :class:`~dpsynth.synth.base.Synthesizer` (dpsynth's contract, checked as before), else a
    :class:`PluginClass` wrapping it (the plain contract, checked here).

    Raises:
        ParameterError: an unknown name, a module that does not import, a missing class, or a class
            that breaks its contract (one line naming every missing piece).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ParameterError(f"synthesizer ({spec!r}) must be a registered name or an import path package.module:Class")
    if ":" not in spec:
        import dpsynth.synth  # noqa: F401 - registers the built-in synthesizers
        from dpsynth.synth.base import get_synthesizer

        return get_synthesizer(spec)
    cls = _import_class(spec)
    if issubclass(cls, Synthesizer):
        _check_dpsynth_contract(cls, spec)
        return cls
    _check_plain_contract(cls, spec)
    return PluginClass(spec, cls)


def _import_class(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ParameterError(f"synthesizer ({spec!r}): cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a user's module may fail in any way on import
        raise ParameterError(f"synthesizer ({spec!r}): importing module {module_name!r} raised "
                             f"{type(exc).__name__}") from None
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ParameterError(f"synthesizer ({spec!r}): module {module_name!r} has no class {class_name!r}")
    return cls


def _contract_error(spec: str, problems: list[str]) -> ParameterError:
    return ParameterError(f"synthesizer ({spec!r}) does not follow the estimator contract: " + "; ".join(problems)
                          + " (docs/plugins.md)")


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _method_parameters(cls: type, name: str) -> list[inspect.Parameter] | None:
    """The parameters of ``cls.name`` as called on an instance (``self`` left out); None when the
    signature cannot be read."""
    raw = inspect.getattr_static(cls, name, None)
    func = getattr(cls, name)
    sig = _signature(func)
    if sig is None:
        return None
    params = list(sig.parameters.values())
    if isinstance(raw, (staticmethod, classmethod)):
        return params
    return params[1:] if inspect.isfunction(func) and params else params


def _takes(params: list[inspect.Parameter], name: str, *, var_keyword: bool = True) -> bool:
    """Whether ``name=`` can be passed (by name, or to ``**kwargs`` when ``var_keyword``)."""
    for p in params:
        if p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return True
    return var_keyword and any(p.kind is p.VAR_KEYWORD for p in params)


def _takes_positional(params: list[inspect.Parameter]) -> bool:
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _init_problems(cls: type) -> list[str]:
    """What ``__init__`` lacks of ``epsilon=`` and ``delta=`` (both contracts need them)."""
    init = _signature(cls)
    if init is None:
        return ["__init__ has no inspectable signature"]
    params = list(init.parameters.values())
    return [f"__init__ does not take {k}=" for k in ("epsilon", "delta") if not _takes(params, k)]


def _check_dpsynth_contract(cls: type, spec: str) -> None:
    """dpsynth's own contract, for a subclass of Synthesizer: plan/fit/sample, ε and δ, fit(ledger=)."""
    problems = [f"no {m}() method" for m in ("plan", "fit", "sample") if not callable(getattr(cls, m, None))]
    problems += _init_problems(cls)
    if callable(getattr(cls, "fit", None)):
        fit = _method_parameters(cls, "fit")
        if fit is None:
            problems.append("fit() has no inspectable signature")
        else:
            problems += [f"fit() does not take {k}=" for k in ("schema", "ledger") if not _takes(fit, k)]
    if problems:
        raise _contract_error(spec, problems)


def _check_plain_contract(cls: type, spec: str) -> None:
    """The plain contract: ``__init__(epsilon=, delta=)``, ``fit(data, schema=)``, ``sample(n_rows)``;
    and the optional extras, when present, of the right shape."""
    problems = _init_problems(cls)
    if not callable(getattr(cls, "fit", None)):
        problems.append("no fit() method")
    else:
        fit = _method_parameters(cls, "fit")
        if fit is None:
            problems.append("fit() has no inspectable signature")
        else:
            if not _takes_positional(fit):
                problems.append("fit() does not take the table as its first argument")
            if not _takes(fit, "schema"):
                problems.append("fit() does not take schema=")
    if not callable(getattr(cls, "sample", None)):
        problems.append("no sample() method")
    else:
        sample = _method_parameters(cls, "sample")
        if sample is None:
            problems.append("sample() has no inspectable signature")
        elif not _takes_positional(sample):
            problems.append("sample() does not take the number of rows as its first argument")
    if hasattr(cls, "plan") and not callable(cls.plan):
        problems.append("plan is not a method")
    if not isinstance(getattr(cls, "estimates_rows", False), (bool, np.bool_)):
        problems.append("estimates_rows is not True or False")
    if problems:
        raise _contract_error(spec, problems)


def _rebuild(spec: str) -> Any:
    """Unpickle a :class:`PluginClass`: import the user's class again (a spawned worker process)."""
    return load_generator(spec)


class PluginClass:
    """A factory of :class:`PluginSynthesizer` for the user's class at ``spec``, callable like a
    synthesizer class: ``PluginClass(spec)(epsilon=..., delta=..., insecure_seed=None, **params)``.

    It pickles as its spec string and imports the class again on unpickle (the audit's spawned
    worker processes rebuild it), and carries what the release reads from a class: ``name`` (the
    spec), ``estimates_rows`` (the user's class attribute, default False), ``unit`` ("row"),
    ``uses_bins`` (False) and ``plugin`` (True).
    """

    plugin = True
    unit = "row"
    uses_bins = False

    def __init__(self, spec: str, cls: type | None = None):
        if cls is None:
            cls = _import_class(spec)
            _check_plain_contract(cls, spec)
        self.spec = spec
        self.cls = cls
        self.name = spec
        self.estimates_rows = bool(getattr(cls, "estimates_rows", False))

    def __call__(self, *, epsilon: float, delta: float, insecure_seed: int | None = None,
                 **params: Any) -> PluginSynthesizer:
        return PluginSynthesizer(self, epsilon=epsilon, delta=delta, insecure_seed=insecure_seed, params=params)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _rebuild, (self.spec,)

    def __repr__(self) -> str:
        return f"PluginClass({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginClass) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(("PluginClass", self.spec))

    @property
    def seed_parameter(self) -> str | None:
        """The name the user's ``__init__`` takes a seed under (``random_state`` or ``seed``), if any."""
        init = _signature(self.cls)
        params = list(init.parameters.values()) if init is not None else []
        return next((n for n in SEED_NAMES if _takes(params, n, var_keyword=False)), None)

    def parameters(self) -> tuple[set[str], bool]:
        """The user's ``__init__`` parameters a caller may set (ε, δ and the seed left out: dpsynth
        sets them), and whether it also takes any other name (``**kwargs``)."""
        init = _signature(self.cls)
        params = list(init.parameters.values()) if init is not None else []
        names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return names - {"epsilon", "delta", *SEED_NAMES}, any(p.kind is p.VAR_KEYWORD for p in params)


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
        return self._generator

    @property
    def inner(self) -> Any:
        """The user's generator instance."""
        return self._inner

    def get_params(self) -> dict[str, Any]:
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
        return {**super().privacy_statement(), "claim": self.claim()}

    # -- sampling (post-processing) ---------------------------------------------------------------
    def sample(self, n_rows: int, *, random_state: int | None = None) -> pd.DataFrame:
        """``n_rows`` rows from the plug-in, checked against the schema and in its column order.

        Raises:
            PluginError: its ``sample`` raised, or returned something that is not a DataFrame of
                ``n_rows`` rows with the schema's columns fitting the schema (one line; no value).
        """
        from dpsynth import _validation as check
        from dpsynth.schema.encode import encode

        n_rows = check.positive_int("rows", n_rows)
        if not hasattr(self, "schema_"):
            raise NotFittedError(f"this {self._generator.spec} is not fitted yet; call fit() first")
        spec, schema = self._generator.spec, self.schema_
        if random_state is None and self.insecure_seed is not None:
            random_state = int(self.insecure_seed) + 1
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
            encode(out, schema)
        except DataError as exc:  # its messages name the column and a count, never a value
            raise PluginError(f"{where} a table that does not fit the schema: {_first(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - any other failure to read it is the same problem, said without a value
            raise PluginError(f"{where} a table that does not fit the schema ({type(exc).__name__})") from None
        return out


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
