"""``manifest.json``: the SHA-256 of every artifact of one folder of a release, and what it is.

The publishable manifest (``publish/manifest.json``) lists the artifacts that may travel with the
table, says in words whether the decision to release was DP, names the internal artifacts without
their hashes (a hash of evidence computed from the private data is a fingerprint of it), and gives
the private input only as a keyed fingerprint (HMAC with the ledger's secret). The internal
manifest (``internal/manifest.json``) lists the internal artifacts and the publishable ones.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from dpsynth.exceptions import DPSynthError
from dpsynth.io import sha256_file as sha256_path

MANIFEST_VERSION = "2"


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 of ``data``, in hexadecimal."""
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


class ManifestError(DPSynthError):
    """A ``manifest.json`` that cannot be verified: missing, not JSON, of the wrong shape, or naming a
    path outside its release. One line naming the file and the field, never the file's content."""


#: what an artifact's name may be: a plain file name of this folder (no folder, no ``..``, not hidden)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the largest manifest read (a real one is a few kilobytes)
MAX_MANIFEST_BYTES = 1 << 20


def verify_manifest(folder: str | Path) -> list[str]:
    """Problems found when re-hashing the artifacts a manifest lists (empty when all match).

    ``folder`` is a release's ``publish/`` or ``internal/`` folder. Raises :class:`ManifestError`
    (exit code 2) for a manifest that cannot be verified: ``manifest.json`` missing, a symbolic
    link, not a file, too large, not UTF-8 JSON, of the wrong shape (``manifest_version``, ``scope``,
    ``artifacts`` and ``publishable`` are checked), or naming a path that leaves the release (an
    absolute path, ``..``, a folder: ``artifacts`` holds plain file names of ``folder``,
    ``publishable`` only ``../publish/NAME``). A listed artifact that is missing, a symbolic link
    or not a regular file, or whose SHA-256 differs, is a problem.
    """
    folder = Path(folder)
    path = folder / "manifest.json"
    where = f"manifest {str(path)!r}"
    manifest = _read_manifest(path, where)
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: expected a JSON object at the top, found {_kind(manifest)}")
    for key in ("manifest_version", "scope", "artifacts"):
        if key not in manifest:
            raise ManifestError(f"{where}: the key {key!r} is missing")
    if manifest["manifest_version"] != MANIFEST_VERSION:
        raise ManifestError(f"{where}: manifest_version must be the string {MANIFEST_VERSION!r} "
                            "(a manifest of this version of dpsynth)")
    if manifest["scope"] not in ("publishable", "internal"):
        raise ManifestError(f"{where}: scope must be 'publishable' or 'internal'")
    listed = _listed(manifest["artifacts"], "artifacts", where, prefix="")
    if "publishable" in manifest:
        if manifest["scope"] != "internal":
            raise ManifestError(f"{where}: only an internal manifest lists publishable artifacts (key 'publishable')")
        listed.update(_listed(manifest["publishable"], "publishable", where, prefix="../publish/"))
    problems = []
    for name, digest in listed.items():
        problem = _artifact_problem(folder, name)
        if problem is not None:
            problems.append(f"{name}: {problem}")
        elif sha256_path(folder / name) != digest:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems


def _read_manifest(path: Path, where: str) -> Any:
    import json
    import stat

    try:
        st = path.lstat()
    except FileNotFoundError:
        raise ManifestError(f"{where} does not exist (give a release's publish/ or internal/ folder)") from None
    except OSError as exc:
        raise ManifestError(f"{where} cannot be read ({exc.__class__.__name__})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ManifestError(f"{where} is a symbolic link: a release's manifest is a file of its folder")
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError(f"{where} is not a regular file")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{where} is larger than {MAX_MANIFEST_BYTES:,} bytes: not a release's manifest")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"{where} cannot be read ({exc.__class__.__name__})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where} is not valid JSON at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise ManifestError(f"{where} is nested too deeply") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), "a value")


def _listed(entries: Any, key: str, where: str, *, prefix: str) -> dict[str, str]:
    """The ``{name: sha256}`` of one key of a manifest, every name checked to stay inside the release."""
    if not isinstance(entries, dict):
        raise ManifestError(f"{where}: {key} must be an object of file name to SHA-256, found {_kind(entries)}")
    out: dict[str, str] = {}
    for position, (name, digest) in enumerate(entries.items(), start=1):
        which = f"{key} entry {position} of {len(entries)}"
        inner = name[len(prefix):] if name.startswith(prefix) else None
        if inner is None or not _NAME.fullmatch(inner) or inner == "manifest.json" and not prefix:
            expected = (f"'{prefix}' and a file name" if prefix else "a plain file name of this folder")
            raise ManifestError(f"{where}: {which} is not {expected} (no absolute path, no '..', no folder, "
                                "not hidden)")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ManifestError(f"{where}: {which} must have a SHA-256 of 64 lower-case hex digits")
        out[name] = digest
    return out


def _artifact_problem(folder: Path, name: str) -> str | None:
    """Why the artifact ``name`` of ``folder`` cannot be hashed (missing, a link, not a file), or None."""
    import stat

    path = folder / name
    # what the name adds below the folder, each refused as a link: NAME, or ../publish and ../publish/NAME
    steps = [folder / ".." / name.split("/")[1], path] if name.startswith("../") else [path]
    mode = 0
    for step in steps:
        try:
            mode = step.lstat().st_mode
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            return f"cannot be read ({exc.__class__.__name__})"
        if stat.S_ISLNK(mode):
            return "a symbolic link (refused: an artifact is a file of the release)"
    return None if stat.S_ISREG(mode) else "not a regular file"
