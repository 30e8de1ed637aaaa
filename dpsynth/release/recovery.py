"""What a release keeps when it fails once its budget may have been charged.

:func:`keeps_what_it_has` wraps the road (:func:`dpsynth.release.pipeline.release`): the road
records in :func:`current_kept` what it has so far (the report, the out folder, the stage, and the
synthetic table only once every check passed); on a failure after the charge that is kept beside
``out`` (:func:`~dpsynth.release.artifacts.keep_failed`) and :class:`ReleaseFailed` says where.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from dpsynth.io import terminate_as_exit
from dpsynth.release.artifacts import ReleaseFailed, failed_message, keep_failed

R = TypeVar("R")


@dataclass
class Kept:
    """What a release has so far, kept when a step after the charge fails (:func:`keeps_what_it_has`)."""

    out_dir: Path | None = None
    report: dict[str, Any] | None = None
    synthetic: pd.DataFrame | None = None  # set only once every check passed (released)
    charged: bool = False
    stage: str = "fitting"
    na_rep: str = ""


_KEPT: ContextVar[Kept] = ContextVar("dpsynth_release_kept")


def current_kept() -> Kept:
    """The record of the release running in this context (a throwaway one outside :func:`keeps_what_it_has`)."""
    return _KEPT.get(Kept())


def keeps_what_it_has(road: Callable[..., R]) -> Callable[..., R]:
    """A failure once the budget may have been charged never discards the run: the report as far as it
    got and the synthetic table (only when every check passed: an unchecked table from a broken
    generator may hold real rows) are kept beside ``out`` (``OUT.failed-TIMESTAMP``,
    :func:`~dpsynth.release.artifacts.keep_failed`) and :class:`ReleaseFailed` (exit code 4) says where
    in one line. An interruption (Ctrl-C, SIGTERM) keeps them too, says where on stderr and goes on
    stopping the process. Before the charge, errors pass as they are (bad input: nothing written)."""

    @functools.wraps(road)
    def release(**kwargs: Any) -> R:
        kept = Kept()
        token = _KEPT.set(kept)
        try:
            with terminate_as_exit():
                return road(**kwargs)
        except ReleaseFailed:
            raise
        except BaseException as exc:
            if not kept.charged or kept.report is None or kept.out_dir is None:
                raise
            folder, problem = keep_failed(kept.out_dir, kept.report, kept.synthetic, exc, kept.stage,
                                          na_rep=kept.na_rep)
            message = failed_message(kept.report, exc, kept.stage, folder, problem=problem)
            if isinstance(exc, Exception):
                raise ReleaseFailed(message, kept=folder,
                                    entry_ids=list(kept.report["ledger"]["entry_ids"])) from exc
            sys.stderr.write(f"dpsynth release: {message}\n")
            raise
        finally:
            _KEPT.reset(token)

    return release
