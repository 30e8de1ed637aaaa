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

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

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
                  na_rep: str = "") -> tuple[list[str], list[str]]:
    """Write ``publish/`` and ``internal/`` atomically (a temporary folder renamed to ``out_dir``).

    ``report`` is the full report; its publishable part is derived here. Returns the artifact
    names written in each folder (manifests included).
    """
    from dpsynth.io import write_table
    from dpsynth.release.html import render_html
    from dpsynth.release.schema import validate_report

    public = publishable(report)
    validate_report(report)
    validate_report(public)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.resolve().parent))
    try:
        pub, internal = tmp / PUBLISH, tmp / INTERNAL
        pub.mkdir()
        internal.mkdir()
        pub_files, internal_files = [], []
        if synthetic is not None:
            write_table(synthetic, pub / "synthetic.csv", na_rep=na_rep)
            pub_files.append("synthetic.csv")
        for folder, rep, names in ((pub, public, pub_files), (internal, report, internal_files)):
            (folder / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True, allow_nan=False) + "\n",
                                                encoding="utf-8")
            (folder / "report.html").write_text(render_html(rep), encoding="utf-8")
            names += ["report.json", "report.html"]
        manifest = build_manifest(pub, pub_files, public, internal=internal_files)
        (pub / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        inner = build_manifest(internal, internal_files, report, publishable={
            f"../{PUBLISH}/{k}": v for k, v in manifest["artifacts"].items()} | {
            f"../{PUBLISH}/manifest.json": _digest(pub / "manifest.json")})
        (internal / "manifest.json").write_text(json.dumps(inner, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()  # checked empty before anything was computed
        umask = os.umask(0)
        os.umask(umask)
        for folder in (tmp, pub, internal):
            folder.chmod(0o777 & ~umask)  # mkdtemp's folder is private to its creator; a release folder is not
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pub_files + ["manifest.json"], internal_files + ["manifest.json"]


def _digest(path: Path) -> str:
    from dpsynth.io import sha256_file

    return sha256_file(path)
