"""The notebooks in ``notebooks/`` run top to bottom on the bundled data, offline, in this virtualenv.

Each notebook is executed with nbclient in a ``python3`` kernel started from the current interpreter,
with ``notebooks/`` as its working directory (as a reader opens it). A cell that raises fails the test
(nbclient's ``CellExecutionError``), and so does an error output or a warning printed on stderr:
pytest's ``filterwarnings = error`` applies to this process, not to the kernel, so warnings are
checked in the outputs instead. The notebooks are stored without outputs.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01-quickstart.ipynb", "02-compliance-walkthrough.ipynb", "03-pipeline-gate.ipynb", "04-choosing-k.ipynb",
         "05-refresh-loop.ipynb"]

#: prepended before execution (never stored): the kernel must be this virtualenv's Python
KERNEL_CHECK = """\
import os, sys
assert os.path.realpath(sys.prefix) == {prefix!r}, f"kernel runs {{sys.executable}} ({{sys.prefix}}), not {prefix!r}"
"""


def test_the_notebooks_are_the_ones_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cell"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{name}: cells {dirty} hold outputs; clear them before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def _problems(nb) -> list[str]:
    """Error outputs and warnings or tracebacks printed on stderr, by cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                out.append(f"cell {i}: {o.ename}: {o.evalue}")
            elif o.output_type == "stream" and o.name == "stderr" and any(
                    word in o.text for word in ("Warning", "Traceback", "Error")):
                out.append(f"cell {i}: stderr: {o.text.strip()[:500]}")
    return out


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (the kernel, and what it ran and waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, monkeypatch, tmp_path):
    # One OpenMP thread: on a shared 2-core runner, scikit-learn's HistGradientBoosting (the utility
    # check) spends its time spinning between oversubscribed threads (measured 130 s against 4 s).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # The notebooks write to their own temporary folders; keep those under this test's folder.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    files_before = sorted(p.name for p in NOTEBOOKS.iterdir())
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    stored = len(nb.cells)
    nb.cells.insert(0, nbformat.v4.new_code_cell(KERNEL_CHECK.format(prefix=os.path.realpath(sys.prefix))))
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started, cpu = time.perf_counter(), _children_cpu()
    client.execute()
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    assert not _problems(nb), f"{name}: " + "; ".join(_problems(nb))
    ran = [c for c in nb.cells[1:] if c.cell_type == "code"]
    assert len(nb.cells) == stored + 1 and all(c.execution_count for c in ran)
    print(f"{name}: executed in {seconds:.1f} s ({cpu:.1f} s CPU in the kernel and its subprocesses)")
    # Nothing was written next to the notebooks (every file goes to a temporary folder).
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == files_before
