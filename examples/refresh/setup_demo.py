"""The demo set-up of the scheduled refresh: what a data team's pipeline would deliver, beside plan.yaml.

    python examples/refresh/setup_demo.py

writes, in this folder (all of it ignored by git):

* ``incoming/adult-2026-01.csv``, ``-02``, ``-03``: three monthly snapshots of the bundled Adult
  table, the third with a planted drift of ``income`` (TVD about 0.196;
  :func:`dpsynth.datasets.adult_snapshots`), waiting to "arrive";
* ``snapshots/``: the empty folder the plan reads (``cp incoming/adult-2026-01.csv snapshots/`` makes
  a month arrive);
* ``adult.schema.yaml``: the bundled public schema of the table.

It registers nothing in a ledger (``dpsynth ledger create``, README.md) and reads no private data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dpsynth.datasets import adult_schema_path, adult_snapshots

HERE = Path(__file__).resolve().parent


def main(folder: Path = HERE) -> list[Path]:
    """Write the demo's inputs into ``folder``; return the snapshots written, oldest first."""
    months = adult_snapshots(folder / "incoming")
    (folder / "snapshots").mkdir(exist_ok=True)
    shutil.copy(adult_schema_path(), folder / "adult.schema.yaml")
    return months


if __name__ == "__main__":
    written = main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE)
    print("wrote", ", ".join(str(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p) for p in written))
