"""``manifest.json``: the SHA-256 of every artifact of a release, of its input and of its policy."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dpsynth.io import sha256_file as sha256_path

MANIFEST_VERSION = "1"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(folder: Path, artifacts: list[str], report: dict[str, Any]) -> dict[str, Any]:
    """The manifest of ``artifacts`` (file names inside ``folder``) for the release ``report``."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "dpsynth": report["versions"]["dpsynth"],
        "decision": report["decision"]["status"],
        "dataset": report["release"]["dataset"],
        "ledger_entry_id": report["ledger"]["entry_id"],
        "artifacts": {name: sha256_path(folder / name) for name in sorted(artifacts)},
        "input": dict(report["inputs"]["data"]),
        "schema": dict(report["inputs"]["schema"]),
        "policy": dict(report["policy"]["file"]),
    }


def verify_manifest(folder: str | Path) -> list[str]:
    """Problems found when re-hashing the artifacts a manifest lists (empty when all match)."""
    import json

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    problems = []
    for name, digest in manifest["artifacts"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_path(path) != digest:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
