"""A refresh killed with SIGKILL during its fit, then run again (acceptance of issue 21).

The killed process has reserved the fit's budget and is inside ``MST._fit_counts`` (a harness makes
the fit wait, and says when it has started): the reservation stays spent and shows as not completed;
no version is written. The next ``dpsynth refresh`` says what happened, records the attempt in
``interrupted.jsonl`` and writes the version once: no duplicate, no gap in the numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpsynth.cli import main
from dpsynth.refresh.history import read_interrupted
from tests.refresh.conftest import Series

#: a refresh whose MST fit starts, says so in a file, and waits to be killed
HARNESS = """
import sys, time
from pathlib import Path
from dpsynth.synth.mst import MST

def waiting_fit(self, *args, **kwargs):
    Path(sys.argv[2]).write_text("fitting")
    time.sleep(600)

MST._fit_counts = waiting_fit
from dpsynth.cli import main
sys.exit(main(["refresh", sys.argv[1]]))
"""


def _kill_during_fit(series: Series, tmp_path: Path) -> None:
    marker = tmp_path / "fitting"
    script = tmp_path / "harness.py"
    script.write_text(HARNESS, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script), str(series.plan_path), str(marker)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, "the refresh ended before its fit started"
            assert time.monotonic() < deadline, "the refresh's fit did not start"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_a_refresh_killed_during_its_fit(series: Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led = series.register()
    series.arrive(1)
    assert main(["refresh", str(series.plan_path)]) == 0
    series.arrive(2)
    before = {int(r.id) for r in led.statement("adult").reservations}

    _kill_during_fit(series, tmp_path)
    killed = [r for r in led.statement("adult").reservations if int(r.id) not in before]
    assert len(killed) == 1 and killed[0].status == "reserved"  # spent, not completed
    assert series.versions() == ["v0001"]
    assert (series.folder / "attempt.json").is_file()

    capsys.readouterr()
    assert main(["refresh", str(series.plan_path)]) == 0
    captured = capsys.readouterr()
    assert "did not finish" in captured.err and f"#{killed[0].id}" in captured.err
    assert "v0002 released" in captured.out
    assert series.versions() == ["v0001", "v0002"]  # no duplicate, no gap
    assert not (series.folder / "attempt.json").exists()
    record = json.loads((series.folder / "v0002" / "version.json").read_text(encoding="utf-8"))
    assert record["snapshot"]["name"] == series.months[1].name

    # the killed reservation stays visible as not completed, in the ledger and in the history
    statement = led.statement("adult")
    assert [r.status for r in statement.reservations if int(r.id) == killed[0].id] == ["reserved"]
    assert statement.to_dict()["not_completed"] == 1
    interrupted = read_interrupted(series.root / "releases", "adult")
    assert len(interrupted) == 1
    assert list(interrupted[0].ledger_entries) == [killed[0].id]
    assert interrupted[0].snapshot["name"] == series.months[1].name

    # and running again does nothing more
    assert main(["refresh", str(series.plan_path)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(read_interrupted(series.root / "releases", "adult")) == 1
