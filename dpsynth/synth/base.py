"""The synthesizer contract and registry.

Every synthesizer follows the scikit-learn estimator contract: ``__init__`` only stores its
(keyword-only) parameters; ``plan(schema)`` lists the privacy events a fit will spend, from
public information only; ``fit(data, *, schema)`` reserves that plan, then reads the private data
and returns ``self``; learned state ends in ``_``; ``sample(n_rows)`` is post-processing and
raises :class:`~dpsynth.exceptions.NotFittedError` before ``fit``; ``sample(n_rows, conditions=...)``
restricts the rows to public schema values (:mod:`dpsynth.synth.conditions`), post-processing too.

A schema may carry named opt-ins (``Schema.opt_ins``, e.g. ``schema_read_from_data_without_privacy``
for a schema read from the data without DP). A fit on it records them in the ledger's reservation
and completion, in ``opt_ins_`` and in :meth:`Synthesizer.privacy_statement`: every report of the
release carries them.

A synthesizer that fits on marginal counts only (``fits_on_marginals``: MST, AIM) also fits a table
held by a counting engine (a :class:`~dpsynth.marginals.backend.TableSource`: DuckDB, Spark): the
same road, with validation, the input fingerprint, the DP bins' counts and every marginal computed
by the engine as aggregates, so the rows never reach pandas (``_fit_counts``).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.exceptions import NotFittedError, ParameterError, SchemaWithoutPrivacyWarning
from dpsynth.marginals import bounding, engines
from dpsynth.marginals.backend import CodesCounter, MarginalCounter, TableSource
from dpsynth.mechanisms import ExponentialSelection, NoiseSource, make_noise
from dpsynth.privacy.budgets import ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema import dp_bins
from dpsynth.schema.schema import Schema

if TYPE_CHECKING:
    from dpsynth.privacy.ledger import Ledger, Untracked
    from dpsynth.synth.conditions import Evidence

_REGISTRY: dict[str, type[Synthesizer]] = {}


def register(cls: type[Synthesizer]) -> type[Synthesizer]:
    """Class decorator: make a synthesizer available by its ``name`` (CLI ``--synthesizer``).

    Raises:
        ParameterError: another class is already registered under that name (registering the
            very same class again is a no-op).
    """
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ParameterError(
            f"synthesizer name ({cls.name!r}) must be unique: it is already registered to "
            f"{existing.__module__}.{existing.__qualname__}, so {cls.__module__}.{cls.__qualname__} needs another name"
        )
    _REGISTRY[cls.name] = cls
    return cls


def get_synthesizer(name: str) -> type[Synthesizer]:
    """The synthesizer class registered under ``name``.

    Raises:
        ParameterError: no synthesizer is registered under that name (the message lists them).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ParameterError(f"synthesizer ({name!r}) must be one of: {known}") from None


def registered() -> dict[str, type[Synthesizer]]:
    """A copy of the registry: every synthesizer class by its name."""
    return dict(_REGISTRY)


def table_source(data: object) -> TableSource | None:
    """``data`` as a counting engine's table, or None for a table in memory (a pandas DataFrame,
    whose columns could otherwise pass for the protocol's attributes)."""
    if isinstance(data, pd.DataFrame) or not isinstance(data, TableSource):
        return None
    return data


class CountsOf(CodesCounter):
    """:class:`~dpsynth.marginals.backend.CodesCounter` of codes in memory whose histograms come from
    ``count`` (``marginal_counts``' signature): the synthesizer's own module-level reference, so a
    test's mutant of it (counts doubled) reaches every count of the fit."""

    def __init__(self, codes: np.ndarray, schema: Schema,
                 count: Callable[[np.ndarray, Sequence[int], Sequence[int]], np.ndarray]):
        super().__init__(codes, schema)
        self.count = count

    def counts(self, cliques: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """One ``count`` pass per clique."""
        return [self.count(self.codes, list(cl), self.schema.sizes) for cl in cliques]


def _person_keys(frame: pd.DataFrame, schema: Schema) -> pd.Series | None:
    """The person keys of ``frame`` under the schema's user unit (checked: none missing); None for a row."""
    column = schema.privacy_unit.column
    return None if column is None else bounding.check_keys(frame, column)


def _bounded(data: Any, codes: np.ndarray | None, keys: pd.Series | None,
             schema: Schema) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """Contribution bounding (:mod:`dpsynth.marginals.bounding`): the table and its codes with at most K
    rows a person and without the key column, and the person of each kept row (``0 .. people-1``, a
    grouping only: for a synthesizer that samples people, e.g. DP-SGD); unchanged and None without
    keys (a row unit)."""
    if keys is None or codes is None:
        return data, codes, None
    unit = schema.privacy_unit
    kept = bounding.bound_contributions(keys, codes, unit.max_rows)
    frame = cast(pd.DataFrame, data).iloc[kept].drop(columns=[cast(str, unit.column)]).reset_index(drop=True)
    groups = pd.factorize(keys.iloc[kept], sort=False)[0].astype(np.int64)
    return frame, codes[kept], groups


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)) for k, v in params.items()}


class Synthesizer(ABC):
    """Base class: a differentially private generator of synthetic tables."""

    name: ClassVar[str]
    #: the public schema, set by ``fit`` (absent before: ``hasattr`` tells a fitted model)
    schema_: Schema

    def __init__(self, *, epsilon: float, delta: float, insecure_seed: int | None = None):
        self.epsilon = epsilon
        self.delta = delta
        self.insecure_seed = insecure_seed

    # -- parameters -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's contract): public attributes not ending in ``_``."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def budget(self) -> ApproxDP:
        """The validated (ε, δ) target of this synthesizer."""
        epsilon = check.positive_finite("epsilon", self.epsilon)
        delta = check.open_unit("delta", self.delta)
        if self.insecure_seed is not None and (
            isinstance(self.insecure_seed, bool) or not isinstance(self.insecure_seed, (int, np.integer))
        ):
            raise ParameterError(f"insecure_seed ({self.insecure_seed!r}) must be an integer or None")
        return ApproxDP(epsilon, delta)

    def zcdp_budget(self) -> ZCDP:
        """ρ = the largest zCDP budget whose tight (ε, δ) conversion fits the target."""
        return self.budget().to_zcdp()

    # -- the contract -----------------------------------------------------------------------
    @abstractmethod
    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        """The privacy events a fit on data of this schema spends (public information only)."""

    #: The privacy unit the synthesizer's sensitivities are computed for, when the schema declares none.
    unit: ClassVar[str] = "row"
    #: Whether the synthesizer scales its sensitivities by a user unit's K (the schema's ``privacy_unit``):
    #: one that does not refuses such a schema before anything is reserved.
    user_level: ClassVar[bool] = False
    #: During a fit at a user unit, the person (0 .. people-1) of each row the fit reads, after bounding;
    #: None otherwise and after the fit. Private data: a grouping of the rows, never stored or reported.
    _person_groups: np.ndarray | None = None
    #: Whether the model works on binned codes (DP quantile bins are chosen and charged by the fit);
    #: DP-SGD models numeric columns on their public bounds instead.
    uses_bins: ClassVar[bool] = True
    #: Whether a fit leaves ``total_estimate_``, a DP estimate of the private row count (from the
    #: fit's own noisy measurements, charged in its plan): the release samples that many rows when
    #: no public ``rows`` is given, never ``len(data)`` (DESIGN.md rule 8).
    estimates_rows: ClassVar[bool] = True
    #: Whether this wraps a generator dpsynth did not write (:mod:`dpsynth.synth.plugin`): it draws its
    #: own noise, and only its own claim says from what.
    plugin: ClassVar[bool] = False
    #: Whether the fit reads only marginal counts (``_fit_counts``), so that it also fits a table held
    #: by a counting engine (a :class:`~dpsynth.marginals.backend.TableSource`); one that trains on rows
    #: (DP-SGD, plug-ins) refuses such a table before anything is reserved.
    fits_on_marginals: ClassVar[bool] = False

    def fit(
        self,
        data: pd.DataFrame | TableSource,
        *,
        schema: Schema,
        ledger: Ledger | Untracked | None = None,
        dataset: str | None = None,
        input_sha256: str | None = None,
        threads: int | None = None,
    ) -> Synthesizer:
        """Learn a DP model of ``data``; returns ``self``.

        The road of every fit: plan the privacy events from public information (this validates
        the parameters), check the data against the schema (a user mistake costs nothing), reserve
        the whole plan in ``ledger`` for ``dataset`` (refused with
        :class:`~dpsynth.exceptions.BudgetExceededError` before any private computation if the
        cap would be exceeded), and only then measure the data, spending the reservation.

        Args:
            data: the private table: a pandas DataFrame, or (for a synthesizer that
                ``fits_on_marginals``) a table held by a counting engine, which validates,
                fingerprints and counts it where it lives: a ``duckdb.DuckDBPyRelation``, a
                ``pyspark.sql.DataFrame`` (each counted in its own connection or session, whose
                temporary tables or views are dropped after the fit) or a
                :class:`~dpsynth.marginals.backend.TableSource`.
            schema: its public schema.
            ledger: a :class:`~dpsynth.privacy.ledger.Ledger`, or ``dpsynth.UNTRACKED`` to fit
                without recording the privacy loss anywhere (warns).
            dataset: the dataset's name in the ledger.
            input_sha256: fingerprint of the input file for the ledger; by default the SHA-256 of
                the encoded table (a TableSource's ``fingerprint``).
            threads: threads of the math libraries (PyTorch, BLAS, OpenMP) during the fit. None
                (default): automatic, from the CPUs this process may use, the machine's load and
                the size of the work (see :mod:`dpsynth._threads`); ``OMP_NUM_THREADS`` in the
                environment is then respected. The pools are restored after the fit. It changes
                neither the privacy plan nor the results beyond floating-point rounding; what
                was chosen is in ``threads_``.

        Raises:
            ParameterError: an engine's table given to a synthesizer that trains on rows (before
                anything is reserved).

        Privacy: consumes the planned budget (``self.privacy_spent_``).
        """
        from dpsynth import _threads
        from dpsynth.privacy.ledger import Ledger, check_ledger_argument
        from dpsynth.schema.encode import encode

        if threads is not None:
            threads = _threads.check_threads(threads)  # a user mistake costs nothing
        self._check_unit(schema, data)
        events = self.plan(schema)
        opt_ins = list(schema.opt_ins)
        check_ledger_argument(ledger, dataset, doing="fit")
        source = table_source(data)
        held = engines.held_by(data)  # a DuckDB relation or a Spark DataFrame: counted where it lives
        if source is None and held is not None:
            return self._fit_held(data, held, schema=schema, ledger=ledger, dataset=dataset,
                                  input_sha256=input_sha256, threads=threads)
        codes: np.ndarray | None = None
        keys: pd.Series | None = None  # the person keys under a user unit (in memory only)
        if source is not None:
            if not self.fits_on_marginals:
                raise ParameterError(f"synthesizer {self.name!r} trains on rows, which a {source.engine} table "
                                     "never hands out; use the numpy engine (the table in memory)")
            source.validate(schema)  # per-column counts of bad cells, in the engine; a user mistake costs nothing
            if isinstance(ledger, Ledger) and input_sha256 is None:
                input_sha256 = source.fingerprint(schema)
        else:
            frame = cast(pd.DataFrame, data)
            keys = _person_keys(frame, schema)
            codes = encode(frame, schema)  # validates the data against the schema; learns nothing
            self._check_data(frame, codes, schema)  # a user mistake costs nothing
            if isinstance(ledger, Ledger) and input_sha256 is None:
                input_sha256 = hashlib.sha256(np.ascontiguousarray(codes).tobytes()).hexdigest()
        if opt_ins:
            warnings.warn(
                f"this release is built on a schema with the opt-in {', '.join(opt_ins)}: the schema was read from "
                "the data without privacy, and every report of the release carries the opt-in",
                SchemaWithoutPrivacyWarning,
                stacklevel=2,
            )
        booked = cast("Ledger | Untracked", ledger)  # check_ledger_argument refused None and anything else
        reservation = booked.reserve(
            cast(str, dataset), events, synthesizer=self.name, claimed=self.budget(), input_sha256=input_sha256,
            parameters=_jsonable(self.get_params()), unit=schema.privacy_unit, opt_ins=opt_ins,
        )
        start = time.perf_counter()
        noise = make_noise(self.insecure_seed)
        try:
            original = data
            data, codes, self._person_groups = _bounded(data, codes, keys, schema)  # first: each person keeps ≤ K rows
            choice = _threads.choose(threads, work=self._thread_work(schema))  # public sizes, never the data
            with _threads.limited(choice):
                fit_schema = schema
                if self.uses_bins and dp_bins.dp_binned(schema):  # DP-chosen bin edges: from the same reservation
                    fit_schema = self._dp_edges(data, source, schema, noise, reservation.odometer)
                    if source is None:
                        data, codes = self._encoded_again(original, data, keys, fit_schema)
                if source is not None:
                    self._fit_counts(source.counter(fit_schema), fit_schema, reservation.odometer, noise)
                else:
                    self._fit_table(cast(pd.DataFrame, data), cast(np.ndarray, codes), fit_schema,
                                    reservation.odometer, noise)
        except BaseException as exc:
            reservation.fail(type(exc).__name__)  # the budget stays spent: noise may have been drawn
            raise
        finally:
            self._person_groups = None  # private: never part of the fitted model
        self.ledger_entry_ = reservation.id
        self.unit_ = schema.privacy_unit
        self.threads_ = {"threads": choice.threads, "source": choice.source, "reason": choice.reason}
        self.dataset_ = dataset
        self.opt_ins_ = opt_ins
        reservation.complete(seconds=round(time.perf_counter() - start, 3), opt_ins=opt_ins, **self._ledger_detail())
        return self

    def _dp_edges(self, data: Any, source: TableSource | None, schema: Schema, noise: NoiseSource,
                  odometer: Odometer) -> Schema:
        """The schema with its DP-chosen bin edges, the quantiles measured on the rows the fit may read: at a
        user unit, the bounded rows (in an engine, its view of the kept rows: ``bounded``)."""
        mechanisms = self._preprocess_mechanisms(schema)
        if source is None or not schema.privacy_unit.is_user:
            return dp_bins.resolve(data, schema, mechanisms, noise=noise, odometer=odometer)
        view = cast(Any, source).bounded(schema)
        try:
            return dp_bins.resolve(view, schema, mechanisms, noise=noise, odometer=odometer)
        finally:
            view.close()

    def _encoded_again(self, original: Any, bounded: Any, keys: pd.Series | None,
                       fit_schema: Schema) -> tuple[Any, np.ndarray]:
        """The rows and codes a fit in memory reads once its DP edges are chosen: re-encoded; at a user unit
        bounded again, by the digest of the codes under the fitted schema (the rule an engine applies to the
        schema it counts, so that both keep the same rows)."""
        from dpsynth.schema.encode import encode

        if keys is None:
            return bounded, encode(cast(pd.DataFrame, bounded), fit_schema)
        data, codes, self._person_groups = _bounded(original, encode(cast(pd.DataFrame, original), fit_schema), keys,
                                                    fit_schema)
        return data, cast(np.ndarray, codes)

    def _check_unit(self, schema: Schema, data: Any) -> None:
        """Refuse a user privacy unit that this fit cannot honour, before anything is reserved."""
        unit = schema.privacy_unit
        if not unit.is_user:
            return
        if not self.user_level:
            raise ParameterError(f"synthesizer {self.name!r} does not support the privacy unit {unit.label} "
                                 f"({unit.describe()}) yet; MST, AIM, dpvae and dpctgan do")

    def _fit_held(self, data: Any, held: str, **fit: Any) -> Synthesizer:
        """:meth:`fit` on a table held by the ``held`` engine, through a source opened here and closed after."""
        if not self.fits_on_marginals:
            raise ParameterError(f"synthesizer {self.name!r} trains on rows, which a {held} table never hands "
                                 "out; pass a pandas DataFrame (the table in memory)")
        opened = engines.open_source(data, held)
        try:
            return self.fit(opened, **fit)
        finally:  # its temporary tables and views; the user's relation or DataFrame is left alone
            cast("engines.DuckDBSource | engines.SparkSource", opened).close()

    def privacy_statement(self) -> dict[str, Any]:
        """The guarantee of this fit: the (ε, δ) asked for, the ρ actually spent, and the named
        opt-ins the release is built on (empty when there are none)."""
        if not hasattr(self, "privacy_spent_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")
        spent = self.privacy_spent_
        return {
            "epsilon": float(self.epsilon),
            "delta": float(self.delta),
            "rho": spent.rho,
            "epsilon_from_rho": spent.to_approx_dp(float(self.delta)).epsilon if spent.rho > 0 else 0.0,
            "opt_ins": list(getattr(self, "opt_ins_", [])),
        }

    def noise_provenance(self) -> tuple[bool, str]:
        """(whether every privacy-noise draw of a fit comes from a cryptographically secure
        source, a one-line description of that source), from the parameters alone (public; no fit
        needed). A release whose policy requires secure noise gates on it.

        The base rule: seeded noise (``insecure_seed``) is insecure; a plug-in's noise is its own
        claim, reported after its fit; anything else draws through :mod:`dpsynth.mechanisms`,
        from OpenDP's secure exact samplers. A synthesizer that draws noise elsewhere (DP-SGD)
        overrides this.
        """
        if self.insecure_seed is not None:
            return False, "the noise is seeded (insecure_seed): for tests only"
        if self.plugin:
            return True, "the generator reports secure_noise_ after its fit (its own claim, unverified)"
        return True, "noise from OpenDP's exact samplers"

    def _ledger_detail(self) -> dict[str, Any]:
        """What the ledger's completion entry records about the run (never data)."""
        return {"events_run": len(getattr(self, "privacy_events_", []))}

    def _thread_work(self, schema: Schema) -> float | None:
        """Multiply-adds of the fit's largest matrix product, from public sizes only (parameters,
        schema; never the private data), for the automatic thread count; None: unknown."""
        return None

    def _check_data(self, data: pd.DataFrame, codes: np.ndarray, schema: Schema) -> None:
        """Refuse data the synthesizer cannot fit, before anything is reserved (none by default)."""
        return None

    def _fit_table(
        self, data: pd.DataFrame, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource
    ) -> None:
        """Fit on the table (``data`` checked and encoded as ``codes``); by default on the codes only."""
        self._fit_codes(codes, schema, odometer, noise)

    @abstractmethod
    def _fit_codes(self, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        """Fit on the encoded table, spending only through ``odometer`` (already reserved)."""

    def _fit_counts(self, counter: MarginalCounter, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        """Fit on the exact marginal counts ``counter`` answers (a synthesizer that ``fits_on_marginals``),
        spending only through ``odometer`` (already reserved)."""
        raise NotImplementedError(f"{type(self).__name__} does not fit on marginal counts")  # pragma: no cover

    def _preprocess_mechanisms(self, schema: Schema) -> list[ExponentialSelection]:
        """The mechanisms (in plan order) that choose DP bin edges for ``schema``; none by default."""
        return []

    @abstractmethod
    def _sample_codes(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """Integer codes of ``n_rows`` synthetic rows (post-processing of the fitted model)."""

    def _sample_codes_given(self, n_rows: int, rng: np.random.Generator, evidence: Evidence) -> np.ndarray:
        """Codes of ``n_rows`` rows of the model given ``evidence`` (each conditioned column's allowed
        codes). By default rejection sampling from :meth:`_sample_codes` (a bounded loop,
        :func:`~dpsynth.synth.conditions.draw_until`); MST and AIM condition their model instead."""
        from dpsynth.synth import conditions as cond

        names = [self.schema_.names[j] for j in sorted(evidence)]
        return cond.codes_by_rejection(n_rows, lambda m: self._sample_codes(m, rng), evidence, names)

    def sample(self, n_rows: int, *, random_state: int | None = None,
               conditions: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """``n_rows`` synthetic rows decoded to the schema's values. Privacy: post-processing.

        ``random_state`` seeds the post-processing only (sampling from the model, decoding bins);
        it does not touch privacy noise.

        ``conditions`` (public schema values only; see :mod:`dpsynth.synth.conditions` and
        ``docs/conditional-sampling.md``): ``{column: value}``, ``{column: [values]}`` (every row takes
        one of them) or one stated mix ``{column: {value: share, ...}}`` (shares summing to 1, the
        rows split by the largest-remainder rule and shuffled), on one column or several. Post-
        processing too: it costs nothing, but a rare condition amplifies the model's noise.

        Raises:
            ParameterError: a condition names a column or value outside the schema, or (for a
                generator sampled by rejection) is too rare to reach ``n_rows`` rows.
        """
        n_rows, rng = self._sampling(n_rows, random_state)
        from dpsynth.schema.encode import decode

        if conditions is None:
            return decode(self._sample_codes(n_rows, rng), self.schema_, rng)
        from dpsynth.synth import conditions as cond

        parsed = cond.parse_conditions(conditions, self.schema_)
        codes = cond.codes_by_strata(parsed, n_rows, rng, lambda n, ev: self._sample_codes_given(n, rng, ev))
        return decode(codes, self.schema_, rng)

    def _sampling(self, n_rows: int, random_state: int | None) -> tuple[int, np.random.Generator]:
        """The checked row count of a ``sample`` call of a fitted model, and its post-processing
        generator (``random_state``; else one after the insecure seed, in tests; else fresh)."""
        n_rows = check.positive_int("rows", n_rows)
        if not hasattr(self, "schema_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")
        if random_state is None and self.insecure_seed is not None:
            random_state = int(self.insecure_seed) + 1
        return n_rows, np.random.default_rng(random_state)
