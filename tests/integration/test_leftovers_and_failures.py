"""Leftovers and failures (issue 17).

A. A temporary (``.NAME.dpsynth-HOST-BOOT-PID-START.RANDOM.partial``, a release's staging folder
   ``.OUT.dpsynth-…``) names the process that made it: a killed run's is removed by the next write of
   the same target; a living run's, a symbolic link, another machine's, another target's or an
   older-format name is never touched. SIGTERM and Ctrl-C remove a run's own temporaries.
B. A failure after the charge keeps what the release had in ``OUT.failed-TIMESTAMP`` beside ``--out``
   (``failure.json``, the report, the table) and ends in one line (exit 4) saying where; the ledger's
   reservations are closed (completed or failed), never left open.
C. ``dpsynth verify-manifest`` on a malformed manifest: one line, exit 2, no content quoted; paths
   that leave the release and symbolic links are refused.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_inputs import POLICY as BASE_POLICY
from cli_inputs import SCHEMA

from dpsynth import io
from dpsynth.cli import main
from dpsynth.privacy.ledger import Ledger
from dpsynth.release import release, verify_manifest
from dpsynth.release.artifacts import ReleaseFailed
from dpsynth.release.manifest import ManifestError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Alice Smith 123-45-6789"
#: a value of the private table that must never reach a message or failure.json
PLANTED = 87
POLICY = {**BASE_POLICY, "description": "no audit, one DP fidelity check (a second reservation)",
          "fidelity": {"max_l1_1way": 2.0}}


# -- helpers -------------------------------------------------------------------------------------


def _start_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def tag(pid: int, start: int | None = None, *, host: str | None = None, boot: str | None = None) -> str:
    """The owner part of a temporary's name for process ``pid`` (as dpsynth.io writes it)."""
    host = host or _h(f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}")
    boot = boot or _h(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    return f"dpsynth-{host}-{boot}-{pid}-{_start_ticks(pid) if start is None else start}"


def dead_pid() -> tuple[int, int]:
    """A pid and start time of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = _start_ticks(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, start


def one_line(text: str) -> None:
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert "Traceback" not in text, text


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


@pytest.fixture
def env(tmp_path: Path):
    table = pd.DataFrame({"region": ["north", "south", "east"] * 40, "plan": ["basic", "plus"] * 60,
                          "age": [i % 90 for i in range(120)]})
    table.loc[5, "age"] = PLANTED
    table.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    # the CLI creates the ledger's file and its dataset (Ledger(url, create=True) may soon refuse a missing file)
    assert main(["ledger", "create", "--ledger", url, "--dataset", "crm", "--epsilon", "10", "--delta", "1e-5"]) == 0
    return tmp_path, url


def run_release(root: Path, url: str, out: str = "rel") -> object:
    return release(data=root / "data.csv", schema=root / "schema.yaml", synthesizer="mst", epsilon=1.0, delta=1e-6,
                   ledger=url, dataset="crm", policy=root / "policy.yaml", out=root / out, insecure_seed=1,
                   progress=False, synthesizer_params={"estimation_iters": 50}, workers=1)


def cli_release(root: Path, url: str, out: str = "rel") -> list[str]:
    return ["release", "--data", str(root / "data.csv"), "--schema", str(root / "schema.yaml"), "--synthesizer", "mst",
            "--epsilon", "1", "--delta", "1e-6", "--ledger", url, "--dataset", "crm", "--policy",
            str(root / "policy.yaml"), "--out", str(root / out), "--insecure-seed", "1", "--workers", "1",
            "--param", "estimation_iters=50", "--json"]


def reservations(url: str) -> list[tuple[int, str]]:
    return [(int(r.id), r.status) for r in Ledger(url, create=True).statement("crm").reservations]


def failed_folders(root: Path, out: str = "rel") -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name.startswith(f"{out}.failed-"))


def hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


# -- A. leftovers of a killed run ------------------------------------------------------------------


def _writer(target: Path) -> tuple[subprocess.Popen, Path]:
    """A child process in the middle of writing ``target`` (its temporary is on disk), and its temporary."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from dpsynth.io import staged_file
        with staged_file({str(target)!r}) as tmp:
            open(tmp, "w").write("half a table")
            print(tmp, flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    tmp = Path(child.stdout.readline().strip())
    child.stdout.close()
    return child, tmp


@needs_proc
def test_a_kill_9_mid_write_leaves_a_temporary_the_next_write_removes_and_a_live_one_stays(tmp_path):
    target = tmp_path / "synthetic.csv"
    child, killed = _writer(target)
    running, live_tmp = _writer(target)  # a concurrent run still writing the same target
    child.kill()
    child.wait()
    assert killed.is_file() and killed.parent == tmp_path and not target.exists()  # the kill left it

    pid, start = os.getpid(), _start_ticks(os.getpid())
    dpid, dstart = dead_pid()
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not a temporary", encoding="utf-8")
    names = {
        "live": f".synthetic.csv.{tag(pid)}.live1234.partial",  # this process: alive
        "other_host": f".synthetic.csv.{tag(dpid, dstart, host='0badc0de')}.host1234.partial",
        "other_target": f".other.csv.{tag(dpid, dstart)}.othr1234.partial",
        "old_format": ".synthetic.csv.abcd1234.partial",  # before the owner was named: nobody can tell
        "no_suffix": f".synthetic.csv.{tag(dpid, dstart)}.nosu1234",
    }
    for name in names.values():
        (tmp_path / name).write_text("x", encoding="utf-8")
    link = tmp_path / f".synthetic.csv.{tag(dpid, dstart)}.link1234.partial"
    link.symlink_to(outside)
    folder = tmp_path / f".synthetic.csv.{tag(dpid, dstart)}.fold1234.partial"  # a folder where a file is expected
    folder.mkdir()
    gone = {
        "dead": f".synthetic.csv.{tag(dpid, dstart)}.dead1234.partial",
        "pid_reused": f".synthetic.csv.{tag(pid, start + 1)}.reus1234.partial",  # this pid, another start time
        "rebooted": f".synthetic.csv.{tag(pid, start, boot='00c0ffee')}.boot1234.partial",
    }
    for name in gone.values():
        (tmp_path / name).write_text("x", encoding="utf-8")

    io.write_table(pd.DataFrame({"a": [1, 2]}), target)

    assert pd.read_csv(target)["a"].tolist() == [1, 2]
    assert not killed.exists()
    for name in gone.values():
        assert not (tmp_path / name).exists(), name
    for name in names.values():
        assert (tmp_path / name).exists(), name
    assert link.is_symlink() and outside.read_text(encoding="utf-8") == "not a temporary"
    assert folder.is_dir()
    assert live_tmp.is_file()  # the living run's temporary
    running.terminate()  # SIGTERM: it removes its own
    assert running.wait(timeout=60) == 128 + signal.SIGTERM
    assert not live_tmp.exists()
    leftovers = {p.name for p in tmp_path.iterdir() if p.name.startswith(".synthetic.csv.")}
    assert leftovers == {names["live"], names["old_format"], names["other_host"], names["no_suffix"], link.name,
                         folder.name}


@needs_proc
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_mid_streaming_write_removes_its_own_temporary(tmp_path, how):
    target = tmp_path / "synthetic.csv.gz"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import glob, time
        import pandas as pd
        from dpsynth.synth.streaming import write_sampled

        class Slow:
            name, insecure_seed, calls = "slow", None, 0

            def sample(self, n):
                self.calls += 1
                if self.calls == 2:  # the first chunk is on disk in the temporary
                    print(glob.glob({str(tmp_path)!r} + "/.synthetic.csv.gz.*.partial")[0], flush=True)
                    time.sleep(120)
                return pd.DataFrame({{"a": range(n)}})

        write_sampled(Slow(), 20, {str(target)!r}, chunk_rows=10)
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    tmp = Path(child.stdout.readline().strip())
    assert tmp.is_file()
    child.send_signal(how)
    _, err = child.communicate(timeout=60)
    # SIGTERM: SystemExit(128 + 15) once the cleanup ran; Ctrl-C: Python's own death by SIGINT after it
    assert child.returncode == (128 + signal.SIGTERM if how == signal.SIGTERM else -signal.SIGINT), err
    assert not tmp.exists() and not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@needs_proc
def test_the_next_release_removes_a_killed_releases_staging_folder_only(env):
    root, url = env
    dpid, dstart = dead_pid()
    dead = root / f".rel.{tag(dpid, dstart)}.dead1234"
    (dead / "publish").mkdir(parents=True)
    (dead / "publish" / "synthetic.csv").write_text("a,b\n", encoding="utf-8")
    live = root / f".rel.{tag(os.getpid())}.live1234"
    live.mkdir()
    marked = root / f".rel.{tag(dpid, dstart)}.kept1234"  # a failed release kept in place: never a leftover
    marked.mkdir()
    (marked / "failure.json").write_text("{}", encoding="utf-8")
    other = root / f".other.{tag(dpid, dstart)}.othr1234"
    other.mkdir()
    outside = root / "keep-me"
    outside.mkdir()
    (outside / "file").write_text("x", encoding="utf-8")
    link = root / f".rel.{tag(dpid, dstart)}.link1234"
    link.symlink_to(outside, target_is_directory=True)

    result = run_release(root, url)

    assert result.out.is_dir() and verify_manifest(result.publish) == []
    assert not dead.exists()
    assert live.is_dir() and marked.is_dir() and other.is_dir()
    assert link.is_symlink() and (outside / "file").is_file()


# -- B. a failure after the charge keeps what the release had ----------------------------------------


def test_a_failed_final_move_keeps_the_complete_release_and_says_where(env, monkeypatch, capsys):
    root, url = env

    def refuse(tmp, out_dir):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr("dpsynth.release.artifacts._move_into_place", refuse)
    capsys.readouterr()
    assert main(cli_release(root, url)) == 4
    out, err = capsys.readouterr()
    one_line(err)
    assert out == ""
    [kept] = failed_folders(root)
    assert f"kept in {str(kept)!r}" in err and "Invalid cross-device link" in err
    assert not (root / "rel").exists() and hidden(root) == []
    assert {p.name for p in kept.iterdir()} == {"publish", "internal", "failure.json"}
    assert verify_manifest(kept / "publish") == [] and verify_manifest(kept / "internal") == []
    record = json.loads((kept / "failure.json").read_text(encoding="utf-8"))
    assert record["complete"] is True and record["stage"] == "moving the release into place"
    assert record["error"] == "OSError: Invalid cross-device link"
    ids = [i for i, _ in reservations(url)]
    assert len(ids) == 2 and record["ledger"]["entry_ids"] == ids
    assert {s for _, s in reservations(url)} == {"completed"}
    assert f"ledger entries {ids[0]}, {ids[1]} stay spent" in err
    assert main(["verify-manifest", str(kept / "publish")]) == 0


def test_a_check_that_raises_after_the_fit_keeps_the_report_and_the_table(env, monkeypatch, capsys):
    root, url = env

    def broken(*args, **kwargs):
        raise RuntimeError(f"a message quoting a row: {SECRET}, age {PLANTED}")

    monkeypatch.setattr("dpsynth.release.pipeline.exact_quality_checks", broken)
    assert main(cli_release(root, url)) == 4
    _, err = capsys.readouterr()
    one_line(err)
    assert SECRET not in err and "quoting" not in err
    [kept] = failed_folders(root)
    assert f"kept in {str(kept)!r}" in err and "while running the checks (RuntimeError)" in err
    assert not (root / "rel").exists() and hidden(root) == []
    # nothing in publish/, and no table: one not every check approved may copy real rows (a broken generator's)
    assert {str(p.relative_to(kept)) for p in kept.rglob("*")} == {"failure.json", "internal", "internal/report.json"}
    record = json.loads((kept / "failure.json").read_text(encoding="utf-8"))
    text = (kept / "failure.json").read_text(encoding="utf-8")
    assert SECRET not in text and "quoting" not in text
    assert record["complete"] is False and record["error"] == "RuntimeError"
    assert record["files"] == ["internal/report.json"] and "no synthetic table is kept" in record["note"]
    assert any("broken" in frame for frame in record["where"])
    report = json.loads((kept / "internal" / "report.json").read_text(encoding="utf-8"))
    assert report["failure"]["stage"] == "running the checks" and report["scope"] == "internal"
    assert record["ledger"]["entry_ids"] == [i for i, _ in reservations(url)]
    assert {s for _, s in reservations(url)} == {"completed"}


def test_disk_full_while_writing_the_artifacts_keeps_what_still_fits(env, monkeypatch):
    root, url = env
    real_write_table = io.write_table

    def full_disk(df, path, **kwargs):
        if Path(path).parent.name == "publish":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_table(df, path, **kwargs)

    monkeypatch.setattr("dpsynth.io.write_table", full_disk)
    policy = {**POLICY, "fidelity": None}  # no DP check: one reservation, and the table is released
    (root / "policy.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    with pytest.raises(ReleaseFailed) as caught:
        run_release(root, url)
    exc = caught.value
    assert exc.exit_code == 4 and "\n" not in str(exc)
    assert "while writing the artifacts (OSError: No space left on device)" in str(exc)
    [kept] = failed_folders(root)
    assert exc.kept == kept and hidden(root) == []  # the half-written staging folder is gone
    assert (kept / "internal" / "synthetic.csv").is_file() and not (kept / "publish").exists()
    record = json.loads((kept / "failure.json").read_text(encoding="utf-8"))
    assert record["decision"] == "released" and record["stage"] == "writing the artifacts"
    assert record["files"] == ["internal/report.json", "internal/synthetic.csv"]
    assert "which every check had approved" in record["note"]
    synthetic = pd.read_csv(kept / "internal" / "synthetic.csv")
    report = json.loads((kept / "internal" / "report.json").read_text(encoding="utf-8"))
    assert list(synthetic.columns) == ["region", "plan", "age"] and len(synthetic) == report["release"]["rows"]
    assert exc.entry_ids == [i for i, _ in reservations(url)] and len(exc.entry_ids) == 1
    assert f"ledger entry {exc.entry_ids[0]} stays spent" in str(exc)


def test_an_interrupt_during_the_dp_checks_closes_their_reservation_and_keeps_the_run(env, monkeypatch, capsys):
    root, url = env

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dpsynth.release.dp_checks.run_dp_checks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_release(root, url)
    err = capsys.readouterr().err
    one_line(err)
    [kept] = failed_folders(root)
    assert err.startswith("dpsynth release: the release failed after its budget was charged") and str(kept) in err
    assert [s for _, s in reservations(url)] == ["completed", "failed"]  # the fit's, then the DP checks'
    assert (kept / "internal" / "report.json").is_file() and not (kept / "internal" / "synthetic.csv").exists()


def test_bad_input_before_the_charge_still_keeps_nothing(env, capsys):
    root, url = env
    argv = cli_release(root, url)
    argv[argv.index("--schema") + 1] = str(root / "missing.yaml")
    assert main(argv) == 2
    one_line(capsys.readouterr().err)
    assert failed_folders(root) == [] and reservations(url) == [] and hidden(root) == []


# -- C. dpsynth verify-manifest on a malformed manifest -----------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A release's publish/ folder with one artifact and its manifest, and an internal/ beside it."""
    pub = tmp_path / "publish"
    pub.mkdir()
    (pub / "report.json").write_bytes(b"{}\n")
    (pub / "manifest.json").write_text(json.dumps({"manifest_version": "2", "scope": "publishable",
                                                   "artifacts": {"report.json": _sha(b"{}\n")}}), encoding="utf-8")
    internal = tmp_path / "internal"
    internal.mkdir()
    (internal / "manifest.json").write_text(json.dumps({
        "manifest_version": "2", "scope": "internal", "artifacts": {},
        "publishable": {"../publish/report.json": _sha(b"{}\n")}}), encoding="utf-8")
    (tmp_path / "passwd").write_bytes(b"root:x:0:0\n")
    return pub


def test_a_well_formed_manifest_verifies_and_a_changed_file_is_exit_1(folder, capsys):
    assert main(["verify-manifest", str(folder)]) == 0
    assert main(["verify-manifest", str(folder.parent / "internal")]) == 0
    (folder / "report.json").write_bytes(b"[]\n")
    capsys.readouterr()
    assert main(["verify-manifest", str(folder), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == ["report.json: SHA-256 differs from the manifest"]
    (folder / "report.json").unlink()
    assert verify_manifest(folder) == ["report.json: missing"]


def _good(sha: str) -> dict:
    return {"manifest_version": "2", "scope": "publishable", "artifacts": {"report.json": sha}}


SHA = _sha(b"{}\n")
MALFORMED = {
    "not_json": (f"{SECRET}, x\n", "is not valid JSON at line 1, column 1"),
    "not_utf8": (b"\xff\xfe" + SECRET.encode(), "is not UTF-8 text"),
    "empty": ("", "is not valid JSON"),
    "array": (json.dumps([SECRET]), "expected a JSON object at the top, found an array"),
    "missing_artifacts": (json.dumps({"manifest_version": "2", "scope": "publishable", SECRET: 1}),
                          "the key 'artifacts' is missing"),
    "missing_version": (json.dumps({"scope": "publishable", "artifacts": {}}), "the key 'manifest_version' is missing"),
    "wrong_version": (json.dumps({**_good(SHA), "manifest_version": 2}), "manifest_version must be the string '2'"),
    "wrong_scope": (json.dumps({**_good(SHA), "scope": SECRET}), "scope must be 'publishable' or 'internal'"),
    "artifacts_list": (json.dumps({**_good(SHA), "artifacts": [SECRET]}),
                       "artifacts must be an object of file name to SHA-256, found an array"),
    "digest_number": (json.dumps({**_good(SHA), "artifacts": {"report.json": 12}}),
                      "artifacts entry 1 of 1 must have a SHA-256 of 64 lower-case hex digits"),
    "digest_text": (json.dumps({**_good(SHA), "artifacts": {"report.json": SECRET}}),
                    "artifacts entry 1 of 1 must have a SHA-256"),
    "dotdot": (json.dumps({**_good(SHA), "artifacts": {"../../etc/passwd": SHA}}),
               "artifacts entry 1 of 1 is not a plain file name of this folder"),
    "dotdot_sibling": (json.dumps({**_good(SHA), "artifacts": {"../passwd": SHA}}), "is not a plain file name"),
    "absolute": (json.dumps({**_good(SHA), "artifacts": {"report.json": SHA, "/etc/passwd": SHA}}),
                 "artifacts entry 2 of 2 is not a plain file name"),
    "subfolder": (json.dumps({**_good(SHA), "artifacts": {"sub/report.json": SHA}}), "is not a plain file name"),
    "hidden": (json.dumps({**_good(SHA), "artifacts": {".report.json": SHA}}), "is not a plain file name"),
    "secret_name": (json.dumps({**_good(SHA), "artifacts": {SECRET: SHA}}), "is not a plain file name"),
    "publishable_in_public": (json.dumps({**_good(SHA), "publishable": {}}), "only an internal manifest lists"),
    "publishable_escape": (json.dumps({**_good(SHA), "scope": "internal",
                                       "publishable": {"../publish/../../etc/passwd": SHA}}),
                           "publishable entry 1 of 1 is not '../publish/' and a file name"),
    "publishable_other": (json.dumps({**_good(SHA), "scope": "internal", "publishable": {"../internal/x": SHA}}),
                          "publishable entry 1 of 1 is not '../publish/' and a file name"),
    "deep": ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_manifest_is_one_line_and_exit_2(folder, capsys, case):
    content, words = MALFORMED[case]
    path = folder / "manifest.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    assert main(["verify-manifest", str(folder)]) == 2
    out, err = capsys.readouterr()
    one_line(err)
    assert out == "" and words in err, err
    assert err.startswith(f"dpsynth verify-manifest: error: manifest {str(path)!r}")
    for secret in ("Alice", "123-45-6789", "etc/passwd"):
        assert secret not in err, err
    with pytest.raises(ManifestError):
        verify_manifest(folder)


@pytest.mark.parametrize("case", ["symlink", "missing", "directory", "too_large"])
def test_a_manifest_that_is_not_a_plain_file_is_refused(folder, tmp_path, capsys, case):
    path = folder / "manifest.json"
    words = {"symlink": "is a symbolic link", "missing": "does not exist", "directory": "is not a regular file",
             "too_large": "is larger than 1,048,576 bytes"}[case]
    if case == "symlink":
        elsewhere = tmp_path / "other.json"
        elsewhere.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(elsewhere)
    elif case == "missing":
        path.unlink()
    elif case == "directory":
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(b" " * (1 << 20) + b"{}")
    assert main(["verify-manifest", str(folder)]) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert words in err, err


def test_a_listed_artifact_that_is_a_link_or_not_a_file_is_a_problem_never_followed(folder, tmp_path, capsys):
    (folder / "report.json").unlink()
    (folder / "report.json").symlink_to(tmp_path / "passwd")
    os.mkfifo(folder / "pipe.json")  # hashing a FIFO would block forever
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["artifacts"]["pipe.json"] = SHA
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert verify_manifest(folder) == ["report.json: a symbolic link (refused: an artifact is a file of the release)",
                                       "pipe.json: not a regular file"]
    assert main(["verify-manifest", str(folder)]) == 1
    # ../publish itself a link: the internal manifest's publishable files are refused too
    internal = folder.parent / "internal"
    folder.rename(tmp_path / "real-publish")
    (tmp_path / "publish").symlink_to(tmp_path / "real-publish", target_is_directory=True)
    assert verify_manifest(internal) == ["../publish/report.json: a symbolic link (refused: an artifact is a file "
                                         "of the release)"]
