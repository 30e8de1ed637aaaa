"""``manifest.json``: the SHA-256 of every artifact of one folder of a release, and what it is.

The publishable manifest (``publish/manifest.json``) lists the artifacts that may travel with the
table, says in words whether the decision to release was DP, names the internal artifacts without
their hashes (a hash of evidence computed from the private data is a fingerprint of it), and gives
the private input only as a keyed fingerprint (HMAC with the ledger's secret). The internal
manifest (``internal/manifest.json``) lists the internal artifacts and the publishable ones.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dpsynth.io import sha256_file as sha256_path

MANIFEST_VERSION = "2"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(folder: Path, artifacts: list[str], report: dict[str, Any], *,
                   internal: list[str] | None = None, publishable: dict[str, str] | None = None) -> dict[str, Any]:
    """The manifest of ``artifacts`` (file names inside ``folder``) for ``report`` (publishable or
    internal, by its ``scope``)."""
    from dpsynth.release.artifacts import DECISION_DP, DECISION_NOT_DP, INTERNAL

    dp = report["decision"]["privacy"] == "dp"
    out: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "scope": report["scope"],
        "dpsynth": report["versions"]["dpsynth"],
        "decision": report["decision"]["status"],
        "decision_privacy": report["decision"]["privacy"],
        "decision_statement": DECISION_DP if dp else DECISION_NOT_DP,
        "privacy": report["release"]["privacy"],
        "rows": report["release"]["rows"],
        "rows_source": report["release"]["rows_source"],
        "dataset": report["release"]["dataset"],
        "ledger_entry_ids": report["ledger"]["entry_ids"],
        "artifacts": {name: sha256_path(folder / name) for name in sorted(artifacts)},
        "input": dict(report["inputs"]["data"]),
        "schema": dict(report["inputs"]["schema"]),
        "policy": dict(report["policy"]["file"]),
    }
    if internal is not None:
        out["internal"] = {"folder": f"../{INTERNAL}/", "files": sorted(internal) + ["manifest.json"],
                           "publish": False,
                           "note": "internal evidence, NOT differentially private: never publish it with the table"}
    if publishable is not None:
        out["publishable"] = dict(sorted(publishable.items()))
    return out


def verify_manifest(folder: str | Path) -> list[str]:
    """Problems found when re-hashing the artifacts a manifest lists (empty when all match)."""
    import json

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    problems = []
    listed = dict(manifest["artifacts"])
    listed.update(manifest.get("publishable", {}))
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_path(path) != digest:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
