"""The fits of the black-box audit, serial or in a pool of worker processes.

Every fit is one job ``(target index, world, fit seed)``: fit a fresh synthesizer in that world
with the audit's silent untracked ledger and secure or seeded noise (injected with
:func:`dpsynth.mechanisms.noise_source`), sample it once and score the target by every attack.

Parallel fits (``workers`` > 1): the fits are independent (each has its own seed), so they run in a
:class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` fresh Python processes (the ``spawn``
start method: JAX is not fork-safe), each limited to one BLAS/OpenMP/XLA thread so that N workers
on N cores do not oversubscribe them. A worker draws the same noise as the serial audit (a fresh
OpenDP sampler, or ``SeededNoise(fit_seed)``), scores the synthetic table itself (only the scores
come back) and prints nothing: its stdout and stderr go to the null device, and the warnings a fit
raises are sent back and re-issued, once each, in the parent. The scores are gathered in the order
of the jobs, so the result is identical to the serial one with seeded noise.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import inspect
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from dpsynth.audit.blackbox_attacks import score
from dpsynth.audit.blackbox_targets import Target
from dpsynth.audit.transcript import AuditLedger
from dpsynth.audit.whitebox import AuditError
from dpsynth.mechanisms.noise import NoiseSource, OpenDPNoise, SeededNoise, noise_source
from dpsynth.schema.schema import Schema

#: Environment of a worker process: one thread per BLAS / OpenMP / XLA pool.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: A worker process's state (set by :func:`_worker_init`): make, targets, schema, attacks, noise, ledger.
_WORKER: tuple[Any, ...] | None = None


def _sample(model: Any, n: int, random_state: int | None) -> Any:
    if random_state is not None:
        try:
            if "random_state" in inspect.signature(model.sample).parameters:
                return model.sample(n, random_state=random_state)
        except (TypeError, ValueError):
            pass
    return model.sample(n)


def fit_and_score(make: Callable[[], Any], target: Target, world: int, fit_seed: int, noise: str,
                  names: Sequence[str], schema: Schema, ledger: AuditLedger) -> dict[str, float]:
    """One fit in ``world`` for ``target``, sampled once and scored by every attack."""
    data = target.base if world == 0 else pd.concat([target.base, target.row], ignore_index=True)
    source: NoiseSource = OpenDPNoise() if noise == "secure" else SeededNoise(fit_seed, _warn=False)
    model = make()
    try:
        with noise_source(source):  # this thread's fits only
            model.fit(data, schema=schema, ledger=ledger)
        synthetic = _sample(model, len(target.base), fit_seed if noise == "seeded" else None)
    except Exception as exc:  # noqa: BLE001 - an audited fit may fail in any way; the audit reports it
        raise AuditError(f"a fit in world {world} for {target.kind} {target.index} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    return score(names, target, synthetic, schema)


def _worker_env() -> dict[str, str]:
    env = dict(_WORKER_ENV)
    xla = os.environ.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{xla} {_XLA_FLAGS}".strip() if _XLA_FLAGS not in xla else xla
    return env


@contextlib.contextmanager
def _spawn_environment() -> Iterator[None]:
    """Spawned workers inherit the environment at their start: limit their thread pools there
    (before they import numpy or JAX), and restore this process's environment afterwards."""
    saved = {k: os.environ.get(k) for k in (*_WORKER_ENV, "XLA_FLAGS")}
    os.environ.update(_worker_env())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_init(make: Callable[[], Any], targets: list[Target], schema: Schema, names: tuple[str, ...],
                 noise: str) -> None:
    """Start a worker: silent (stdout and stderr to the null device, Python's and the C level's),
    one thread per pool, the audit's state kept for its fits."""
    global _WORKER
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
    os.environ.update(_worker_env())
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    _WORKER = (make, targets, schema, names, noise, AuditLedger())


def _worker_fit(ti: int, world: int, fit_seed: int) -> tuple[dict[str, float], list[tuple[Any, ...]]]:
    """One fit in a worker: its scores, and the warnings it raised (re-issued by the parent)."""
    assert _WORKER is not None
    make, targets, schema, names, noise, ledger = _WORKER
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = fit_and_score(make, targets[ti], world, fit_seed, noise, names, schema, ledger)
    return scores, [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


def run_fits(jobs: list[tuple[int, int, int]], make: Callable[[], Any], targets: list[Target], schema: Schema,
             names: tuple[str, ...], noise: str, workers: int,
             progress: Callable[[int, int], None] | None) -> list[dict[str, float]]:
    """Every job's scores, in the order of ``jobs`` (``(target index, world, fit seed)``)."""
    total = len(jobs)
    out: list[dict[str, float] | None] = [None] * total
    if workers <= 1:
        ledger = AuditLedger()
        for i, (ti, world, fit_seed) in enumerate(jobs):
            out[i] = fit_and_score(make, targets[ti], world, fit_seed, noise, names, schema, ledger)
            if progress is not None:
                progress(i + 1, total)
        return out  # type: ignore[return-value]
    seen: set[tuple[Any, ...]] = set()
    context = multiprocessing.get_context("spawn")
    with _spawn_environment():
        pool = concurrent.futures.ProcessPoolExecutor(min(workers, total), mp_context=context,
                                                      initializer=_worker_init,
                                                      initargs=(make, targets, schema, names, noise))
        try:
            futures = {pool.submit(_worker_fit, *job): i for i, job in enumerate(jobs)}
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    try:
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            try:
                scores, caught = future.result()
            except concurrent.futures.BrokenExecutor as exc:
                raise AuditError(f"a worker process of the audit stopped ({exc}); a class that a fresh Python "
                                 "process cannot import cannot be fitted there: use workers=1") from None
            except Exception as exc:  # noqa: BLE001 - re-raised as the serial audit raises it (no remote chain)
                raise exc from None
            for w in caught:
                if w not in seen:
                    seen.add(w)
                    warnings.warn_explicit(w[1], w[0], w[2], w[3])
            out[futures[future]] = scores
            if progress is not None:
                progress(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out  # type: ignore[return-value]
