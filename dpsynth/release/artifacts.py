"""The artifacts of a release, split by who may see them.

``OUT/publish/`` is the folder meant to travel with the table: ``synthetic.csv`` (only when
released), the publishable ``report.json`` and ``report.html``, and ``manifest.json``. Everything in
it is DP or public: the table, its row count (public input or a charged DP estimate), the decision
and every check value it was taken from (unless the policy's named opt-in
``decision_read_private_data_without_privacy`` is set, which every artifact states in words), and
input fingerprints keyed with the ledger's secret (HMAC), never a plain hash of the private data.

``OUT/internal/`` stays with the team: the full report (exact fidelity, marginals of the real table,
exact replay and utility figures, timings) and its manifest. It is NOT differentially private.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dpsynth.exceptions import DPSynthError
from dpsynth.io import KEPT_RECORD
from dpsynth.release.manifest import build_manifest

PUBLISH, INTERNAL = "publish", "internal"

#: the notice of the publishable report
PUBLIC_NOTICE = ("This report may be published with the synthetic table. Everything in it is differentially private "
                 "or public: the table and its row count, the decision to release and the values of the checks it "
                 "was taken from (each check names what it read), the privacy audit (run on the synthetic table, "
                 "post-processing) and the PII scan of the synthetic table. The private data's fingerprint is keyed "
                 "with the ledger's secret. Exact figures against the private table are in the internal report.")
#: the notice of the internal report
INTERNAL_NOTICE = ("INTERNAL: this report holds figures computed from the private data WITHOUT differential privacy "
                   "(exact fidelity and marginals of the real table, exact replay and utility figures, timings). It "
                   "contains no row of the private data, but it must not leave the team: publish ../publish/ only.")
#: what the decision read, in the words the reports and the manifests use
DECISION_DP = ("The decision to release is differentially private: every check read only public input, the DP "
               "output, or the private rows through a DP measurement charged to the ledger; the stated ε covers "
               "the table and the decision.")
DECISION_NOT_DP = ("The decision to release read private data without privacy (opt-in "
                   "decision_read_private_data_without_privacy): whether this table exists is not covered by the "
                   "stated ε.")
#: evidence that reads the private rows without DP: internal only
_INTERNAL_EVIDENCE = ("fidelity", "replay", "utility")


def publishable(report: dict[str, Any]) -> dict[str, Any]:
    """The part of the full (internal) ``report`` that may travel with the table."""
    out = copy.deepcopy(report)
    out["scope"] = "publishable"
    out["notice"] = PUBLIC_NOTICE
    out["release"].pop("seconds", None)
    out["release"].pop("engine", None)  # where the figures were computed: internal evidence
    for key in _INTERNAL_EVIDENCE:
        out["evidence"].pop(key, None)
    _drop_timings(out["evidence"])
    for check in out["checks"]:
        if check["reads"] == "private_not_dp" and check["status"] in ("pass", "fail"):
            check["value"] = None
            check["detail"] = "value in the internal report (read without privacy)"
    for key in ("before", "after"):
        statement = out["ledger"].get(key)
        for entry in (statement or {}).get("entries", []):
            entry.pop("completed_at", None)
            (entry.get("detail") or {}).pop("seconds", None)
    return out


def _drop_timings(obj: Any) -> None:
    """Remove every ``seconds`` entry: running time is a side channel of the private table's size."""
    if isinstance(obj, dict):
        obj.pop("seconds", None)
        for value in obj.values():
            _drop_timings(value)
    elif isinstance(obj, list):
        for value in obj:
            _drop_timings(value)


def write_release(out_dir: Path, report: dict[str, Any], synthetic: pd.DataFrame | None, *,
                  na_rep: str = "", extra: dict[str, pd.DataFrame] | None = None) -> tuple[list[str], list[str]]:
    """Write ``publish/`` and ``internal/`` atomically (a temporary folder renamed to ``out_dir``).

    ``report`` is the full report; its publishable part is derived here; ``extra`` are further tables of
    the released fit written beside ``synthetic.csv`` (the targeted tables, by file name). Returns the artifact
    names written in each folder (manifests included). A staging folder a killed run left for the
    same ``out_dir`` is removed first (:func:`dpsynth.io.remove_stale_leftovers`). A failure while
    writing removes this run's staging folder and raises as it came; a failure once every artifact
    is written (moving the folder into place) keeps the complete release beside ``out_dir`` and
    raises :class:`ReleaseFailed` saying where.
    """
    from dpsynth.io import leftover_prefix, remove_stale_leftovers, terminate_as_exit, write_table
    from dpsynth.release.html import render_html
    from dpsynth.release.report_schema import validate_report

    public = publishable(report)
    validate_report(report)
    validate_report(public)
    parent = out_dir.resolve().parent
    remove_stale_leftovers(parent, out_dir.name, folder=True)
    tmp: Path | None = None
    complete = False
    with terminate_as_exit():
        try:
            tmp = Path(tempfile.mkdtemp(prefix=leftover_prefix(out_dir.name), dir=parent))
            pub, internal = tmp / PUBLISH, tmp / INTERNAL
            pub.mkdir()
            internal.mkdir()
            pub_files: list[str] = []
            internal_files: list[str] = []
            if synthetic is not None:
                write_table(synthetic, pub / "synthetic.csv", na_rep=na_rep)
                pub_files.append("synthetic.csv")
                for name, table in (extra or {}).items():
                    write_table(table, pub / name, na_rep=na_rep)
                    pub_files.append(name)
            for folder, rep, names in ((pub, public, pub_files), (internal, report, internal_files)):
                (folder / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True, allow_nan=False)
                                                    + "\n", encoding="utf-8")
                (folder / "report.html").write_text(render_html(rep), encoding="utf-8")
                names += ["report.json", "report.html"]
            manifest = build_manifest(pub, pub_files, public, internal=internal_files)
            (pub / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
            inner = build_manifest(internal, internal_files, report, publishable={
                f"../{PUBLISH}/{k}": v for k, v in manifest["artifacts"].items()} | {
                f"../{PUBLISH}/manifest.json": _digest(pub / "manifest.json")})
            (internal / "manifest.json").write_text(json.dumps(inner, indent=2, sort_keys=True) + "\n",
                                                    encoding="utf-8")
            umask = os.umask(0)
            os.umask(umask)
            for folder in (tmp, pub, internal):
                folder.chmod(0o777 & ~umask)  # mkdtemp's folder is private to its creator; a release folder is not
            complete = True
            _move_into_place(tmp, out_dir)
        except BaseException as exc:
            if tmp is None:
                raise
            if not complete:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            kept = _keep_complete(tmp, out_dir, report, exc)
            raise ReleaseFailed(failed_message(report, exc, "moving the release into place", kept, complete=True),
                                kept=kept, entry_ids=_entry_ids(report)) from exc
    return pub_files + ["manifest.json"], internal_files + ["manifest.json"]


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """The last step of a release: the staging folder becomes ``out_dir`` (empty or absent, checked
    before anything was computed)."""
    if out_dir.exists():
        out_dir.rmdir()
    tmp.rename(out_dir)


# -- a release that failed after its budget was charged: what it has is kept ----------------------


class ReleaseFailed(DPSynthError):
    """A release failed once its budget could be charged (its reservations stay spent, marked
    completed or failed in the ledger), or its complete artifacts could not be moved into ``--out``.
    What it produced is kept in ``kept`` (a folder ``OUT.failed-TIMESTAMP`` beside ``--out``, with
    ``failure.json`` saying what failed), or ``kept`` is None when nothing could be written. Exit
    code 4 (one line on stderr, no traceback)."""

    exit_code = 4

    def __init__(self, message: str, *, kept: Path | None, entry_ids: list[int]):
        super().__init__(message)
        self.kept = kept
        self.entry_ids = entry_ids


def describe_error(exc: BaseException) -> str:
    """An error in words that quote no data: its class; for an OSError the system's reason; for a
    DPSynthError its own one-line message (written never to quote data)."""
    name = type(exc).__name__
    if isinstance(exc, DPSynthError):
        text = str(exc).strip()
        return f"{name}: {text.splitlines()[0]}" if text else name
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    if isinstance(exc, SystemExit) and isinstance(exc.code, int) and exc.code > 128:
        return f"terminated by signal {exc.code - 128}"
    return name


def _frames(exc: BaseException) -> list[str]:
    """Where the error was raised: files, lines and functions only (no message, no variable)."""
    import traceback

    return [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)][-12:]


def _entry_ids(report: dict[str, Any]) -> list[int]:
    ids = (report.get("ledger") or {}).get("entry_ids") or []
    return [int(i) for i in ids]


def _failure_record(report: dict[str, Any], exc: BaseException, stage: str, *, complete: bool,
                    files: list[str]) -> dict[str, Any]:
    ids = _entry_ids(report)
    decision = (report.get("decision") or {}).get("status")
    if complete:
        note = (f"Every artifact was written (decision: {decision}); only moving this folder into place failed. "
                "Move it to the --out folder yourself; verify it with dpsynth verify-manifest publish/ and "
                "internal/.")
    else:
        table = (f"{INTERNAL}/synthetic.csv" in files)
        note = ("This release did not finish: nothing here was released. internal/ holds the full report as far "
                "as it got (NOT DP: never publish it)" + (
                    " and the synthetic table, which every check had approved (DP output), kept there because its "
                    "publishable report and manifest could not be written." if table else
                    "; no synthetic table is kept: one that not every check approved may hold copies of real rows "
                    "(a broken generator's)."))
    return {"status": "failed", "stage": stage, "error": describe_error(exc), "where": _frames(exc),
            "complete": complete, "decision": decision, "files": sorted(files),
            "ledger": {"dataset": (report.get("release") or {}).get("dataset"), "entry_ids": ids,
                       "note": "the budget of these reservations is spent (marked completed or failed in the "
                               "ledger): a rerun is charged again"},
            "failed_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "note": note}


def _claim_failed_folder(out_dir: Path) -> Path:
    """A new folder ``OUT.failed-TIMESTAMP`` (``-2``, ``-3`` … when taken) beside ``out_dir``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir.resolve().parent / f"{out_dir.name}.failed-{stamp}"
    for i in range(1, 1000):
        candidate = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{str(base)!r} and 998 more names are taken")


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    from dpsynth.io import write_text

    write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", folder / KEPT_RECORD)


def _keep_complete(tmp: Path, out_dir: Path, report: dict[str, Any], exc: BaseException) -> Path | None:
    """Keep a complete staging folder whose move into place failed: renamed ``OUT.failed-TIMESTAMP``,
    or left where it is (its ``failure.json`` keeps it from being removed as a leftover)."""
    files = [f"{sub}/{p.name}" for sub in (PUBLISH, INTERNAL) for p in sorted((tmp / sub).iterdir())]
    try:
        _write_record(tmp, _failure_record(report, exc, "moving the release into place", complete=True,
                                           files=files))
    except OSError:
        pass  # the rename below still keeps the folder out of the leftovers' pattern
    claimed: Path | None = None
    try:
        claimed = _claim_failed_folder(out_dir)
        os.rename(tmp, claimed)  # onto the empty folder just claimed
        return claimed
    except OSError:
        if claimed is not None:
            with contextlib.suppress(OSError):
                claimed.rmdir()
    if (tmp / KEPT_RECORD).is_file():
        return tmp
    shutil.rmtree(tmp, ignore_errors=True)  # neither named nor marked: it would look like a killed run's leftover
    return None


def keep_failed(out_dir: Path, report: dict[str, Any], synthetic: pd.DataFrame | None, exc: BaseException,
                stage: str, *, na_rep: str = "") -> tuple[Path | None, BaseException | None]:
    """Keep what a release that failed after its charge has, in a new folder ``OUT.failed-TIMESTAMP``
    beside ``out_dir``: ``internal/report.json`` (the full report as far as it got, with a
    ``failure`` key; NOT DP), ``internal/synthetic.csv`` when ``synthetic`` is given (the caller
    gives only a table every check approved) and ``failure.json`` (stage, error class,
    ledger entries; no message that could quote data). Best effort: returns the folder (None when
    nothing could be written) and the error that stopped it, if any."""
    from dpsynth.io import write_table, write_text

    try:
        folder = _claim_failed_folder(out_dir)
    except OSError as err:
        return None, err
    try:
        (folder / INTERNAL).mkdir()
    except OSError as err:
        with contextlib.suppress(OSError):
            folder.rmdir()
        return None, err
    files: list[str] = []
    problem: BaseException | None = None
    planned = [f"{INTERNAL}/report.json"] + ([f"{INTERNAL}/synthetic.csv"] if synthetic is not None else [])
    record = _failure_record(report, exc, stage, complete=False, files=planned)
    try:
        full = {**report, "failure": record}
        write_text(json.dumps(full, indent=2, sort_keys=True, default=str) + "\n", folder / INTERNAL / "report.json")
        files.append(f"{INTERNAL}/report.json")
    except (OSError, TypeError, ValueError) as err:
        problem = err
    if synthetic is not None:
        try:
            write_table(synthetic, folder / INTERNAL / "synthetic.csv", na_rep=na_rep)
            files.append(f"{INTERNAL}/synthetic.csv")
        except (OSError, ValueError) as err:
            problem = problem or err
    try:
        _write_record(folder, _failure_record(report, exc, stage, complete=False, files=files))
    except OSError as err:
        problem = problem or err
        if not files:
            shutil.rmtree(folder, ignore_errors=True)
            return None, problem
    return folder, problem


def failed_message(report: dict[str, Any], exc: BaseException, stage: str, kept: Path | None, *,
                    complete: bool = False, problem: BaseException | None = None) -> str:
    """The one line a failed release ends with: what failed, what stays spent, where its files are."""
    ids = _entry_ids(report)
    if ids:
        spent = (f"; ledger entry {ids[0]} stays spent" if len(ids) == 1 else
                 f"; ledger entries {', '.join(map(str, ids))} stay spent")
    else:  # a complete report lists every entry: none were made; otherwise the fit's is not known here
        spent = "" if complete else "; its reservation stays spent (dpsynth ledger show)"
    if kept is None:
        where = "nothing could be kept" + (f" ({describe_error(problem)})" if problem is not None else "")
    elif complete:
        where = (f"the complete release is kept in {str(kept)!r} ({KEPT_RECORD} says what failed): move it to --out "
                 "yourself")
    else:
        where = (f"what it produced is kept in {str(kept)!r} ({KEPT_RECORD} says what failed; internal/ is NOT DP: "
                 "never publish it)")
    if complete:
        return f"the release was written but could not be moved into --out ({describe_error(exc)}){spent}; {where}"
    return f"the release failed after its budget was charged, while {stage} ({describe_error(exc)}){spent}; {where}"


def _digest(path: Path) -> str:
    from dpsynth.io import sha256_file

    return sha256_file(path)
