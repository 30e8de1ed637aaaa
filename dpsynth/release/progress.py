"""Progress of a release's long steps (the fit, the audit's fits, the checks) on stderr, drawn by
``rich`` when asked for (by default: when stderr is a terminal), or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """Progress of the long steps on a terminal (rich), or nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                          MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                                          transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    @contextmanager
    def step(self, description: str, total: int = 1) -> Iterator[Callable[[int, int], None]]:
        """A step of ``total`` units: yields ``update(done, total)``; the step shows complete when it ends."""
        if self._progress is None:
            yield lambda done, total: None
            return
        task = self._progress.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            self._progress.update(task, completed=done, total=total_)

        try:
            yield update
        finally:
            self._progress.update(task, completed=self._progress.tasks[task].total)
