"""Loading a generator by name or import path, and checking its contract before anything is charged.

:func:`load_generator` gives dpsynth's own class for a registered name or a subclass of
:class:`~dpsynth.synth.base.Synthesizer`, and a :class:`PluginClass` (a picklable factory of
:class:`~dpsynth.synth.plugin.PluginSynthesizer`) for a class with the plain contract
(``docs/plugins.md``). Nothing here reads data or spends privacy.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from dpsynth.exceptions import ParameterError
from dpsynth.synth.base import Synthesizer

if TYPE_CHECKING:
    from dpsynth.synth.plugin import PluginSynthesizer

#: names a plug-in may take its seed under, in ``__init__`` (given ``insecure_seed``), in this order
SEED_NAMES = ("random_state", "seed")


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
        """A :class:`PluginSynthesizer` for this generator with these parameters."""
        from dpsynth.synth.plugin import PluginSynthesizer

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
