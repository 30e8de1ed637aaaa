"""The ledger proves its own integrity (issue 17).

Each attack the probe found passes a plain hash chain: deleting the newest entries and setting the
head back, deleting every entry, deleting the ledger file (or mistyping its path), raising the cap
with one UPDATE, and rebuilding the chain after an edit. Against a sealed ledger each one shows in
``ledger verify`` (exit 1) and makes every charge (``fit``, ``schema infer``, ``release``) refuse with
exit 2 and one line naming the damage, before anything is read or charged.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_inputs import POLICY
from cli_inputs import SCHEMA as BASE_SCHEMA
from ledger_sql import raw_execute, raw_query

from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import GENESIS, Ledger, LedgerError, LedgerTamperedError, canonical
from dpsynth.privacy.ledger_verify import entry_hash

SCHEMA = {"version": 1, "columns": BASE_SCHEMA["columns"][:2]}  # region × plan


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI in this process (a fresh interpreter per command would take most of this file's time);
    ``test_the_cli_in_its_own_process_says_the_same`` runs the real command line once."""
    from dpsynth.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def sql(db: Path, *statements: str) -> None:
    """Edit the database behind the ledger's back, as an attacker with plain SQL does."""
    raw_execute(f"sqlite:///{db}", *statements)


def rows(db: Path) -> list[tuple]:
    return raw_query(f"sqlite:///{db}", "SELECT seq, created_at, kind, dataset, rho, content, prev_hash, hash, "
                     "additive_delta, rdp, additive_epsilon FROM dpsynth_ledger_entries ORDER BY seq")


def rebuild_chain(db: Path) -> None:
    """Recompute every entry's hash and the head, as someone who knows the (public) algorithm can."""
    prev = GENESIS
    statements = []
    for seq, created, kind, dataset, rho, content, _p, _h, add_delta, rdp, add_eps in rows(db):
        digest = entry_hash(seq, created, kind, dataset, rho, content, prev, add_delta, rdp, add_eps)
        statements.append(f"UPDATE dpsynth_ledger_entries SET prev_hash = '{prev}', hash = '{digest}' "
                          f"WHERE seq = {seq}")
        prev = digest
    n = len(statements)
    sql(db, *statements, f"UPDATE dpsynth_ledger_head SET seq = {n}, hash = '{prev}'")


@pytest.fixture
def env(tmp_path: Path):
    table = pd.DataFrame({"region": ["north", "south", "east"] * 40, "plan": ["basic", "plus"] * 60})
    table.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY), encoding="utf-8")
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    proc = run("ledger", "create", "--ledger", url, "--dataset", "crm", "--epsilon", "1.2", "--delta", "1e-5",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path, db, url


def fit(url: str, out: str = "synthetic.csv") -> list[str]:
    return ["fit", "--data", "data.csv", "--schema", "schema.yaml", "--synthesizer", "mst", "--epsilon", "1",
            "--delta", "1e-6", "--rows", "50", "--out", out, "--ledger", url, "--dataset", "crm"]


def charge_commands(url: str) -> dict[str, list[str]]:
    return {
        "fit": fit(url),
        "schema infer": ["schema", "infer", "--data", "data.csv", "--out", "inferred.yaml", "--epsilon", "0.5",
                         "--delta", "1e-6", "--ledger", url, "--dataset", "crm"],
        "release": ["release", "--data", "data.csv", "--schema", "schema.yaml", "--synthesizer", "mst",
                    "--epsilon", "1", "--delta", "1e-6", "--rows", "50", "--out", "rel", "--ledger", url,
                    "--dataset", "crm", "--policy", "policy.yaml", "--insecure-seed", "1"],
    }


def assert_every_charge_refused(root: Path, db: Path, url: str, names: str) -> None:
    before = rows(db)
    for command, argv in charge_commands(url).items():
        proc = run(*argv, cwd=root)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert names in proc.stderr, (command, proc.stderr)
        assert not any((root / p).exists() for p in ("synthetic.csv", "inferred.yaml", "rel")), command
    assert rows(db) == before  # nothing appended


def one_fit(root: Path, url: str, out: str) -> None:
    proc = run(*fit(url, out), cwd=root)
    assert proc.returncode == 0, proc.stderr


def test_setting_the_head_back_after_deleting_the_newest_entries_is_found(env):
    root, db, url = env
    one_fit(root, url, "one.csv")  # entries 2 (reserve) and 3 (complete)
    # The probe's attack: delete the fit's entries and point the head at entry 1 again.
    sql(db, "DELETE FROM dpsynth_ledger_entries WHERE seq > 1",
        "UPDATE dpsynth_ledger_head SET seq = 1, hash = (SELECT hash FROM dpsynth_ledger_entries WHERE seq = 1)")
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 1 and "head does not match its seal" in proc.stdout, proc.stdout
    assert_every_charge_refused(root, db, url, "its head does not match its seal")


def test_deleting_every_entry_is_found(env):
    root, db, url = env
    one_fit(root, url, "one.csv")
    sql(db, "DELETE FROM dpsynth_ledger_entries", f"UPDATE dpsynth_ledger_head SET seq = 0, hash = '{GENESIS}'")
    proc = run("ledger", "verify", "--ledger", url, "--json", cwd=root)
    assert proc.returncode == 1 and json.loads(proc.stdout)["ok"] is False
    assert_every_charge_refused(root, db, url, "its head does not match its seal")
    sql(db, "DELETE FROM dpsynth_ledger_head")  # and the head row too
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 2 and "lost its head row" in proc.stderr, proc.stderr


def test_raising_the_cap_with_one_update_is_refused_before_the_charge(env):
    root, db, url = env
    one_fit(root, url, "one.csv")  # the cap of ε = 1.2 holds one fit at ε = 1, not two
    raised = canonical({"epsilon": 100.0, "delta": 1e-5, "unit": "row", "rho_cap": 50.0})
    sql(db, f"UPDATE dpsynth_ledger_entries SET content = '{raised}' WHERE seq = 1")
    assert_every_charge_refused(root, db, url, "entry 1 (dataset, dataset 'crm') does not match its hash")
    rebuild_chain(db)  # an attacker who also recomputes the hashes: the seal still shows it
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 1 and "entry 1 (dataset, dataset 'crm') does not match its seal" in proc.stdout
    assert_every_charge_refused(root, db, url, "does not match its seal")


def test_lowering_a_reservation_and_rebuilding_the_chain_is_found(env):
    root, db, url = env
    one_fit(root, url, "one.csv")
    sql(db, "UPDATE dpsynth_ledger_entries SET rho = 1e-9 WHERE seq = 2")
    rebuild_chain(db)
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 1 and "entry 2 (reserve, dataset 'crm') does not match its seal" in proc.stdout
    assert_every_charge_refused(root, db, url, "is damaged: its head does not match its seal")


def test_removing_the_seal_is_found(env):
    root, db, url = env
    one_fit(root, url, "one.csv")
    sql(db, "UPDATE dpsynth_ledger_entries SET mac = ''", "UPDATE dpsynth_ledger_head SET key_id = '', mac = ''")
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 1 and "its seal was removed" in proc.stdout, proc.stdout
    assert_every_charge_refused(root, db, url, "its seal was removed")
    proc = run("ledger", "seal", "--ledger", url, cwd=root)  # and it cannot be resealed quietly
    assert proc.returncode == 2 and "its seal was removed" in proc.stderr


def test_a_deleted_ledger_is_an_error_and_not_recreated(env):
    root, db, url = env
    db.unlink()
    for argv in (["ledger", "show", "--ledger", url], ["ledger", "verify", "--ledger", url], fit(url),
                 ["ledger", "create", "--ledger", url, "--dataset", "crm", "--epsilon", "9", "--delta", "1e-5"]):
        proc = run(*argv, cwd=root)
        assert proc.returncode == 2 and "deleted or moved" in proc.stderr, (argv, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert not db.exists()


def test_a_mistyped_ledger_path_creates_nothing(env):
    root, _db, _url = env
    typo = f"sqlite:///{root / 'ledgr.db'}"
    for argv in (["ledger", "show", "--ledger", typo], ["ledger", "verify", "--ledger", typo], fit(typo),
                 ["ledger", "set-cap", "--ledger", typo, "--dataset", "crm", "--epsilon", "2", "--delta", "1e-5",
                  "--reason", "x"]):
        proc = run(*argv, cwd=root)
        assert proc.returncode == 2 and "does not exist (dpsynth ledger create makes one" in proc.stderr, proc.stderr
        assert not (root / "ledgr.db").exists() and not (root / "ledgr.db.key").exists()
        assert not (root / "synthetic.csv").exists()
    # A file that is not a ledger is not turned into one either.
    (root / "notes.db").write_text("not a database")
    proc = run("ledger", "show", "--ledger", f"sqlite:///{root / 'notes.db'}", cwd=root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (root / "notes.db").read_text() == "not a database"


def test_verify_prints_the_head_and_an_anchor_finds_a_rollback(env):
    root, db, url = env
    proc = run("ledger", "verify", "--ledger", url, "--json", cwd=root)
    first = json.loads(proc.stdout)
    assert proc.returncode == 0 and first["ok"] and first["sealed"] and first["entries"] == 1
    assert first["head"]["seq"] == 1 and len(first["head"]["hash"]) == 64
    shutil.copy(db, root / "copy.db")  # an earlier copy of the whole ledger
    one_fit(root, url, "one.csv")
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 0 and "hash chain and seal verified" in proc.stdout
    head_line = [line for line in proc.stdout.splitlines() if line.startswith("head")][0]
    anchor = head_line.rsplit(" ", 1)[1]
    assert anchor.startswith("3:") and len(anchor) == 2 + 64
    # Put back the earlier copy: every row of it verifies, but the anchor copied aside is gone.
    shutil.copy(root / "copy.db", db)
    assert run("ledger", "verify", "--ledger", url, cwd=root).returncode == 0
    proc = run("ledger", "verify", "--ledger", url, "--anchor", anchor, cwd=root)
    assert proc.returncode == 1 and "the anchor names entry 3 but the ledger has 1" in proc.stdout
    proc = run("ledger", "verify", "--ledger", url, "--anchor", f"1:{'0' * 64}", cwd=root)
    assert proc.returncode == 1 and "entry 1 is not the anchor's" in proc.stdout
    for bad in ("3", "x:y", f"0:{'a' * 64}", f"3:{'a' * 63}"):
        proc = run("ledger", "verify", "--ledger", url, "--anchor", bad, cwd=root)
        assert proc.returncode == 2 and "--anchor must be SEQ:HASH" in proc.stderr, proc.stderr


def test_the_key_must_be_the_ledgers(env):
    root, db, url = env
    key = (root / "ledger.db.key").read_text().strip()
    other = {"DPSYNTH_LEDGER_KEY": "ab" * 32}
    before = rows(db)
    for argv in (fit(url), ["ledger", "verify", "--ledger", url]):
        proc = run(*argv, cwd=root, env=other)
        assert proc.returncode == 2 and "is not the key of ledger" in proc.stderr, proc.stderr
        assert "ab" * 32 not in proc.stderr and key not in proc.stderr  # a key is never printed
    (root / "ledger.db.key").rename(root / "elsewhere.key")  # a key kept elsewhere, named by the variable
    proc = run(*fit(url), cwd=root)
    assert proc.returncode == 2 and "was not found" in proc.stderr, proc.stderr
    shown = run("ledger", "show", "--ledger", url, "--json", cwd=root)  # shown, said unchecked
    assert shown.returncode == 0 and json.loads(shown.stdout)["integrity"]["checked"] is False
    assert rows(db) == before
    proc = run(*fit(url), cwd=root, env={"DPSYNTH_LEDGER_KEY_FILE": str(root / "elsewhere.key")})
    assert proc.returncode == 0, proc.stderr


def test_a_key_in_the_environment_makes_no_key_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'team.db'}"
    key = {"DPSYNTH_LEDGER_KEY": "5e" * 32}
    proc = run("ledger", "create", "--ledger", url, "--dataset", "d", "--epsilon", "1", "--delta", "1e-6",
               cwd=tmp_path, env=key)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "team.db.key").exists()
    assert run("ledger", "verify", "--ledger", url, cwd=tmp_path, env=key).returncode == 0
    proc = run("ledger", "verify", "--ledger", url, cwd=tmp_path)
    assert proc.returncode == 2 and "was not found" in proc.stderr
    proc = run("ledger", "verify", "--ledger", url, cwd=tmp_path, env={"DPSYNTH_LEDGER_KEY": "not hex"})
    assert proc.returncode == 2 and "64 hexadecimal characters" in proc.stderr and "not hex" not in proc.stderr


def test_a_read_only_ledger_is_shown_and_verified_but_not_charged(env, monkeypatch, capsys):
    from dpsynth.cli import main

    root, db, url = env
    one_fit(root, url, "one.csv")
    before = rows(db)
    if os.geteuid() == 0:  # root may write any file: this process is told the ledger's file and folder are not
        real_access = os.access

        def access(path, mode, **kw):
            if mode & os.W_OK and Path(path).resolve() in (db.resolve(), root.resolve()):
                return False
            return real_access(path, mode, **kw)

        monkeypatch.setattr(os, "access", access)
    else:
        db.chmod(0o444)
    (root / "out").mkdir()
    monkeypatch.chdir(root)
    assert main(["ledger", "show", "--ledger", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["integrity"]["ok"] and shown["datasets"][0]["releases"] == 1
    assert main(["ledger", "verify", "--ledger", url]) == 0
    assert "hash chain and seal verified" in capsys.readouterr().out
    assert Ledger(url).read_only
    assert main(fit(url, "out/two.csv")) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and err.count("\n") == 1, err
    assert rows(db) == before and not (root / "out" / "two.csv").exists()
    with pytest.raises(LedgerError, match="read-only"):  # and the Python API refuses every write
        Ledger(url).create_dataset("other", ApproxDP(1.0, 1e-6))


def test_an_old_ledger_is_sealed_once_after_its_chain_is_checked(env):
    root, db, url = env
    one_fit(root, url, "one.csv")
    # What an older dpsynth left: no seal and no key file.
    sql(db, "UPDATE dpsynth_ledger_entries SET mac = ''", "UPDATE dpsynth_ledger_head SET key_id = '', mac = ''")
    (root / "ledger.db.key").unlink()
    proc = run("ledger", "verify", "--ledger", url, cwd=root)
    assert proc.returncode == 0 and "NOT sealed" in proc.stdout
    proc = run(*fit(url, "two.csv"), cwd=root)
    assert proc.returncode == 2 and "dpsynth ledger seal" in proc.stderr
    proc = run("ledger", "seal", "--ledger", url, cwd=root)
    assert proc.returncode == 0 and "3 entries keyed" in proc.stdout, proc.stderr
    assert (root / "ledger.db.key").stat().st_mode & 0o077 == 0  # the key is private to its owner
    assert run("ledger", "verify", "--ledger", url, cwd=root).returncode == 0
    proc = run("ledger", "seal", "--ledger", url, cwd=root)
    assert proc.returncode == 2 and "sealed already" in proc.stderr


def test_an_old_ledger_whose_chain_is_broken_is_not_sealed(env):
    root, db, url = env
    sql(db, "UPDATE dpsynth_ledger_entries SET mac = ''", "UPDATE dpsynth_ledger_head SET key_id = '', mac = ''",
        "UPDATE dpsynth_ledger_entries SET rho = 5 WHERE seq = 1")
    (root / "ledger.db.key").unlink()
    ledger = Ledger(url)
    with pytest.raises(LedgerTamperedError, match="cannot be sealed: entry 1"):
        ledger.seal()
    assert not (root / "ledger.db.key").exists()


def test_python_api_opens_only_what_exists(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger(url)
    assert not (tmp_path / "l.db").exists()
    Ledger(url, create=True).create_dataset("d", ApproxDP(1.0, 1e-6))
    assert Ledger(url).verify().ok and Ledger(url, create=True).verify().entries == 1  # create opens an existing one


def test_the_cli_in_its_own_process_says_the_same(env):
    root, db, url = env
    sql(db, "DELETE FROM dpsynth_ledger_entries", f"UPDATE dpsynth_ledger_head SET seq = 0, hash = '{GENESIS}'")
    proc = subprocess.run([sys.executable, "-m", "dpsynth", *fit(url)], capture_output=True, text=True, cwd=root,
                          timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "is damaged: its head does not match its seal" in proc.stderr, proc.stderr
    assert not (root / "synthetic.csv").exists()


@pytest.mark.parametrize("attack", ["head set back", "emptied", "cap raised", "seal removed"])
def test_both_backends_refuse_a_charge_on_a_damaged_ledger(ledger_url, attack):
    from dpsynth.privacy import GaussianEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    events = [GaussianEvent(20.0, 1.0)]
    ledger.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6)).complete()
    statements = {
        "head set back": ["DELETE FROM dpsynth_ledger_entries WHERE seq > 1",
                          "UPDATE dpsynth_ledger_head SET seq = 1, hash = (SELECT hash FROM dpsynth_ledger_entries "
                          "WHERE seq = 1)"],
        "emptied": ["DELETE FROM dpsynth_ledger_entries",
                    f"UPDATE dpsynth_ledger_head SET seq = 0, hash = '{GENESIS}'"],
        "cap raised": ["UPDATE dpsynth_ledger_entries SET content = REPLACE(content, '\"epsilon\":1.0', "
                       "'\"epsilon\":50.0') WHERE seq = 1"],
        "seal removed": ["UPDATE dpsynth_ledger_head SET key_id = '', mac = ''"],
    }[attack]
    raw_execute(ledger_url, *statements)
    again = Ledger(ledger_url)
    result = again.verify()
    # Without a seal, a ledger whose key is its own file (SQLite here) says its seal was removed; one
    # with a key named elsewhere (PostgreSQL here) is an unsealed one, and charges nothing either.
    assert not result.ok or (attack == "seal removed" and not result.sealed)
    refusal = LedgerTamperedError if result.sealed or not result.ok else LedgerError
    with pytest.raises(refusal, match="nothing was charged|its seal was removed|not sealed"):
        again.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6))
    with pytest.raises(refusal):
        again.set_cap("d", ApproxDP(2.0, 1e-6), reason="more")
    if attack != "emptied":
        assert len(again.statement("d").reservations) == (0 if attack == "head set back" else 1)


@pytest.mark.parametrize("attack", ["reservation lowered", "cap raised"])
def test_a_ledger_object_that_charged_before_still_sees_a_later_edit(ledger_url, attack):
    """A ledger object that has charged (and sealed the dataset's account) before still finds an
    edit made afterwards, behind its back, on its next charge."""
    from dpsynth.privacy import GaussianEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    events = [GaussianEvent(20.0, 1.0)]
    for _ in range(3):  # entries 2-7; every charge seals the dataset's account
        ledger.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6)).complete()
    statement = {"reservation lowered": "UPDATE dpsynth_ledger_entries SET rho = 1e-9 WHERE seq = 4",
                 "cap raised": "UPDATE dpsynth_ledger_entries SET content = REPLACE(content, '\"epsilon\":1.0', "
                               "'\"epsilon\":50.0') WHERE seq = 1"}[attack]
    raw_execute(ledger_url, statement)
    damage = {"reservation lowered": "entry 4 (reserve, dataset 'd') does not match its seal",
              "cap raised": "entry 1 (dataset, dataset 'd') does not match its hash"}[attack]
    with pytest.raises(LedgerTamperedError, match=re.escape(damage)):
        ledger.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6))


@pytest.mark.parametrize("attack", ["account rewritten", "account dropped"])
def test_the_sealed_account_cannot_be_rewritten_to_hide_a_lowered_reservation(ledger_url, attack):
    """A charge skips the entry-by-entry MAC check only when what it adds up equals the dataset's
    sealed account (its MAC keyed like the entries'); an account rewritten or removed without the
    key sends it back to checking every entry, which finds the lowered reservation."""
    from dpsynth.privacy import GaussianEvent
    from dpsynth.privacy.ledger_charge import account_digest, read_account

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    events = [GaussianEvent(20.0, 1.0)]
    for _ in range(2):
        ledger.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6)).complete()
    raw_execute(ledger_url, "UPDATE dpsynth_ledger_entries SET rho = 1e-9 WHERE seq = 2")
    with ledger._db.read() as cur:
        forged = account_digest(cur, ledger._db.sql, read_account(cur, ledger._db.sql, "d"))  # what it now adds up
    statement = {"account rewritten": f"UPDATE dpsynth_ledger_accounts SET digest = '{forged}'",
                 "account dropped": "DROP TABLE dpsynth_ledger_accounts"}[attack]
    raw_execute(ledger_url, statement)
    for fresh in (ledger, Ledger(ledger_url)):  # the same object, and a new process's
        with pytest.raises(LedgerTamperedError, match=re.escape("entry 2 (reserve, dataset 'd') does not match")):
            fresh.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6))


def test_a_ledger_without_sealed_accounts_gains_them_on_its_next_charge(ledger_url):
    """A ledger made before accounts were sealed (no accounts table) is checked entry by entry on
    its next charge, which then seals the account."""
    from dpsynth.privacy import GaussianEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    events = [GaussianEvent(20.0, 1.0)]
    ledger.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6)).complete()
    raw_execute(ledger_url, "DROP TABLE dpsynth_ledger_accounts")
    again = Ledger(ledger_url)
    again.reserve("d", events, synthesizer="t", claimed=ApproxDP(0.1, 1e-6)).complete()
    assert raw_query(ledger_url, "SELECT dataset FROM dpsynth_ledger_accounts") == [("d",)]
    assert again.verify().ok and len(again.statement("d").reservations) == 2
