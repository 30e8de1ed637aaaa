"""The privacy-budget ledger on SQLite and on a real PostgreSQL server.

Covers: tight composition, overdraft refusal before anything is spent, final reservations (a
process killed after reserving), tamper evidence, and 8 processes racing for a cap that admits 3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ledger_sql import raw_execute, raw_query

from dpsynth.exceptions import BudgetExceededError, ParameterError
from dpsynth.mechanisms import PartitionSelection
from dpsynth.privacy import ApproxDP, GaussianEvent, approx_dp_to_rho, total_delta, zcdp_epsilon
from dpsynth.privacy.accounting import thresholding_delta
from dpsynth.privacy.ledger import SCHEMA_VERSION, Ledger, LedgerError, canonical
from dpsynth.schema import Schema
from dpsynth.synth import MST

SCHEMA = Schema.from_domain({"a": 3, "b": 4, "c": 2})
CLAIM = ApproxDP(1.0, 1e-9)


def mst_events():
    return MST(epsilon=CLAIM.epsilon, delta=CLAIM.delta).plan(SCHEMA)


def test_ten_releases_compose_tightly(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("adult", ApproxDP(5.0, 1e-6))
    events = mst_events()
    rho = sum(e.rho for e in events)
    for _ in range(10):
        ledger.reserve("adult", events, synthesizer="mst", claimed=CLAIM).complete(rows=10)
    st = ledger.statement("adult")
    assert st.rho_spent == pytest.approx(10 * rho, rel=1e-12)
    assert rho == pytest.approx(0.0149731, abs=1e-7)
    # Ten releases at ε = 1 each: plain sum ε = 10, but composed in zCDP ρ = 0.1497, which is
    # ε = 2.670 at δ = 1e-6 (Canonne–Kamath–Steinke).
    assert st.epsilon_spent_plain_sum == pytest.approx(10.0)
    assert st.epsilon_spent_tight == pytest.approx(2.6703, abs=1e-3)
    assert st.epsilon_spent_tight == pytest.approx(zcdp_epsilon(10 * rho, 1e-6), rel=1e-9)
    assert [r.status for r in st.reservations] == ["completed"] * 10
    report = st.to_dict()
    assert report["remaining"]["rho"] == pytest.approx(approx_dp_to_rho(5.0, 1e-6) - 10 * rho)
    assert report["releases"] == 10 and report["not_completed"] == 0
    assert Ledger(ledger_url, create=True).verify().ok  # persistent: a new handle sees the same chain


def test_overdraft_is_refused_with_both_numbers_and_changes_nothing(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    events = mst_events()
    rho = sum(e.rho for e in events)
    # A cap whose ρ admits exactly two releases.
    ledger.create_dataset("d", ApproxDP(zcdp_epsilon(2.5 * rho, 1e-6), 1e-6))
    for _ in range(2):
        ledger.reserve("d", events, synthesizer="mst", claimed=CLAIM)
    before = ledger.verify().entries
    with pytest.raises(BudgetExceededError) as err:
        ledger.reserve("d", events, synthesizer="mst", claimed=CLAIM)
    message = str(err.value)
    assert f"requested rho={rho:.6g}" in message
    assert f"remaining rho={0.5 * rho:.6g}" in message and "dataset 'd'" in message
    assert err.value.requested == pytest.approx(rho) and err.value.remaining == pytest.approx(0.5 * rho)
    assert ledger.verify().entries == before
    assert len(ledger.statement("d").reservations) == 2


def test_reservations_are_final_and_their_status_shown(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    a = ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM, input_sha256="ab" * 32)
    b = ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    a.complete(rows=5)
    b.fail("KeyboardInterrupt")
    st = ledger.statement("d")
    assert [r.status for r in st.reservations] == ["completed", "failed", "reserved"]
    assert st.rho_spent == pytest.approx(3 * sum(e.rho for e in mst_events()))  # failed ones stay spent
    assert st.reservations[0].input_sha256 == "ab" * 32
    assert st.reservations[0].events[0]["kind"] == "gaussian"
    assert st.to_dict()["not_completed"] == 1


def test_caps_change_only_with_a_reason_and_never_below_spending(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    with pytest.raises(ParameterError, match="reason"):
        ledger.set_cap("d", ApproxDP(2.0, 1e-6), reason="  ")
    with pytest.raises(LedgerError, match="below what dataset 'd' has already spent"):
        ledger.set_cap("d", ApproxDP(0.1, 1e-6), reason="tighten")
    ledger.set_cap("d", ApproxDP(2.0, 1e-6), reason="approved by the DPO, ticket 42")
    st = ledger.statement("d")
    assert st.cap == ApproxDP(2.0, 1e-6)
    assert [h["reason"] for h in st.cap_history] == ["created", "approved by the DPO, ticket 42"]


def test_bad_requests(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    with pytest.raises(LedgerError, match="dataset 'nope' is not registered"):
        ledger.statement("nope")
    with pytest.raises(LedgerError, match="not registered"):
        ledger.reserve("nope", mst_events(), synthesizer="mst", claimed=CLAIM)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    with pytest.raises(LedgerError, match="already registered"):
        ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    with pytest.raises(ParameterError, match="must be 1–128 letters"):
        ledger.create_dataset("no spaces", ApproxDP(1.0, 1e-6))
    with pytest.raises(ParameterError, match="unit"):
        ledger.create_dataset("e", ApproxDP(1.0, 1e-6), unit="household")
    with pytest.raises(ParameterError, match="epsilon"):
        ledger.create_dataset("e", ApproxDP(0.0, 1e-6))
    ledger.create_dataset("users", ApproxDP(1.0, 1e-6), unit="user:5")
    with pytest.raises(LedgerError, match="privacy unit 'user:5'"):
        ledger.reserve("users", mst_events(), synthesizer="mst", claimed=CLAIM)
    assert ledger.verify().entries == 2


@pytest.mark.parametrize("url,message", [
    ("mysql://x", "must be sqlite:///PATH or postgresql://"),
    ("sqlite:///", "must name a file"),
    ("sqlite:///no/such/dir/l.db", "must be in an existing directory"),
    ("", "must be sqlite:///PATH"),
])
def test_malformed_urls(url, message):
    with pytest.raises(ParameterError, match=message):
        Ledger(url, create=True)


def test_unreachable_server():
    start = time.perf_counter()
    with pytest.raises(LedgerError, match="cannot connect to ledger 'postgresql://dpsynth:\\*\\*\\*@127.0.0.1:1/x'"):
        Ledger("postgresql://dpsynth:secret@127.0.0.1:1/x", create=True)
    assert time.perf_counter() - start < 15


TAMPERING = {
    "edit": ("UPDATE dpsynth_ledger_entries SET rho = 0.0001 WHERE seq = 3", 3, "does not match its hash"),
    "edit content": (
        "UPDATE dpsynth_ledger_entries SET content = REPLACE(content, '\"mst\"', '\"aim\"') WHERE seq = 4",
        4, "does not match its hash"),
    "delete": ("DELETE FROM dpsynth_ledger_entries WHERE seq = 3", 3, "missing"),
    "delete last": ("DELETE FROM dpsynth_ledger_entries WHERE seq = 5", 5, "were deleted"),
    "reorder": (
        "UPDATE dpsynth_ledger_entries SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 END + 100 WHERE seq IN (2, 3);"
        "UPDATE dpsynth_ledger_entries SET seq = seq - 100 WHERE seq > 100", 2, "does not follow entry 1"),
    "give an additive delta": (
        "UPDATE dpsynth_ledger_entries SET additive_delta = 0.5 WHERE seq = 3", 3, "does not match its hash"),
    "give an additive epsilon": (
        "UPDATE dpsynth_ledger_entries SET additive_epsilon = 0.5 WHERE seq = 3", 3, "does not match its hash"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_is_found_at_the_first_bad_entry(ledger_url, how):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    for _ in range(4):
        ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    assert ledger.verify().ok and ledger.verify().entries == 5
    sql, first_bad, problem = TAMPERING[how]
    raw_execute(ledger_url, *[s for s in sql.split(";") if s.strip()])
    result = ledger.verify()
    assert not result.ok
    assert result.first_bad == first_bad, result.problem
    assert problem in result.problem


def _race_worker(args):
    url, start_at = args
    while time.time() < start_at:
        time.sleep(0.001)
    try:
        Ledger(url, create=True).reserve("race", [GaussianEvent(scale=1.0, l2_sensitivity=1.0)], synthesizer="mst",
                            claimed=ApproxDP(1.0, 1e-6))
        return "reserved"
    except BudgetExceededError:
        return "refused"


def test_eight_processes_race_for_a_cap_that_admits_three(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    # Each reservation is ρ = 0.5; a cap of ρ = 1.75 admits exactly three.
    ledger.create_dataset("race", ApproxDP(zcdp_epsilon(1.75, 1e-6), 1e-6))
    start_at = time.time() + 2.0
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        outcomes = pool.map(_race_worker, [(ledger_url, start_at)] * 8)
    assert sorted(outcomes) == ["refused"] * 5 + ["reserved"] * 3
    st = ledger.statement("race")
    assert len(st.reservations) == 3 and st.rho_spent == pytest.approx(1.5)
    assert ledger.verify().ok


CRASH = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    import dpsynth.synth._pgm as pgm
    from dpsynth.privacy.ledger import Ledger
    from dpsynth.schema import Schema
    from dpsynth.synth import MST

    def die(*args, **kwargs):  # the noise has been drawn; now the process dies hard
        os.kill(os.getpid(), signal.SIGKILL)

    pgm.estimate_marginals = die
    data = pd.DataFrame({"a": ["0", "1", "2"] * 20, "b": ["1", "2", "3"] * 20, "c": ["0", "1", "1"] * 20})
    MST(epsilon=1.0, delta=1e-9).fit(data, schema=Schema.from_domain({"a": 3, "b": 4, "c": 2}),
                                     ledger=Ledger(sys.argv[1], create=True), dataset="d")
""")


def test_a_process_killed_after_reserving_leaves_the_budget_spent(ledger_url, tmp_path):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(10.0, 1e-6))
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    proc = subprocess.run([sys.executable, str(script), ledger_url], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    st = ledger.statement("d")
    assert len(st.reservations) == 1
    assert st.reservations[0].status == "reserved"  # shown as not completed
    assert st.rho_spent == pytest.approx(sum(e.rho for e in mst_events()))
    assert st.to_dict()["not_completed"] == 1
    assert ledger.verify().ok


# -- the command line ------------------------------------------------------------------------------

def dpsynth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def coded(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data.csv"
    data.write_text("a,b,c\n" + "0,1,0\n1,2,1\n2,3,1\n" * 30)
    domain = tmp_path / "domain.json"
    domain.write_text(json.dumps({"a": 3, "b": 4, "c": 2}))
    return data, domain


def test_cli_charges_refuses_with_exit_3_and_shows(ledger_url, tmp_path, coded):
    data, domain = coded
    rho = sum(e.rho for e in mst_events())
    cap_epsilon = zcdp_epsilon(1.5 * rho, 1e-6)
    proc = dpsynth("ledger", "create", "--ledger", ledger_url, "--dataset", "adult", "--epsilon", repr(cap_epsilon),
                   "--delta", "1e-6")
    assert proc.returncode == 0, proc.stderr
    fit = ["fit", "--data", str(data), "--schema", str(domain), "--epsilon", "1", "--delta", "1e-9", "--rows", "20",
           "--ledger", ledger_url, "--dataset", "adult", "--json"]
    proc = dpsynth(*fit, "--out", str(tmp_path / "one.csv"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ledger_entry"] == 2

    proc = dpsynth(*fit, "--out", str(tmp_path / "two.csv"))
    assert proc.returncode == 3
    assert "requested rho=" in proc.stderr and "exceeds the remaining rho=" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "two.csv").exists()

    shown = json.loads(dpsynth("ledger", "show", "--ledger", ledger_url, "--json").stdout)
    (adult,) = shown["datasets"]
    assert adult["releases"] == 1 and adult["entries"][0]["status"] == "completed"
    assert len(adult["entries"][0]["input_sha256"]) == 64
    assert "0,1,0" not in json.dumps(shown)  # never any data
    human = dpsynth("ledger", "show", "--ledger", ledger_url, "--dataset", "adult")
    assert human.returncode == 0 and "plain sum of releases" in human.stdout

    assert dpsynth("ledger", "verify", "--ledger", ledger_url).returncode == 0
    raw_execute(ledger_url, "UPDATE dpsynth_ledger_entries SET rho = 0 WHERE seq = 2")
    proc = dpsynth("ledger", "verify", "--ledger", ledger_url)
    assert proc.returncode == 1 and "entry 2" in proc.stdout


def test_cli_bad_ledger_input_exits_2_and_changes_nothing(tmp_path, coded):
    data, domain = coded
    url = f"sqlite:///{tmp_path / 'l.db'}"
    created = dpsynth("ledger", "create", "--ledger", url, "--dataset", "d", "--epsilon", "1", "--delta", "1e-6")
    assert created.returncode == 0
    base = ["fit", "--data", str(data), "--schema", str(domain), "--epsilon", "0.5", "--delta", "1e-9", "--rows",
            "10", "--out", str(tmp_path / "o.csv")]
    cases = [
        (base + ["--ledger", url, "--dataset", "unknown"], "dataset 'unknown' is not registered"),
        (base + ["--ledger", "oracle://db", "--dataset", "d"], "must be sqlite:///PATH or postgresql://"),
        (base + ["--ledger", "postgresql://u@127.0.0.1:1/db", "--dataset", "d"], "cannot connect to ledger"),
        (base, "fit needs --ledger URL --dataset NAME"),
        (base + ["--ledger", url, "--dataset", "d", "--no-ledger"], "not both"),
        (["ledger", "set-cap", "--ledger", url, "--dataset", "d", "--epsilon", "nan", "--delta", "1e-6",
          "--reason", "x"], "epsilon (nan) must be a finite number > 0"),
        (["ledger", "create", "--ledger", url, "--dataset", "e", "--epsilon", "-1", "--delta", "1e-6"],
         "epsilon (-1.0) must be a finite number > 0"),
        (["ledger", "show", "--ledger", url, "--dataset", "zzz"], "dataset 'zzz' is not registered"),
    ]
    for args, message in cases:
        proc = dpsynth(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "o.csv").exists()
    # spend something, then a cap below it is refused
    assert dpsynth(*base, "--ledger", url, "--dataset", "d").returncode == 0
    proc = dpsynth("ledger", "set-cap", "--ledger", url, "--dataset", "d", "--epsilon", "0.01", "--delta", "1e-6",
                   "--reason", "tighten")
    assert proc.returncode == 2 and "below what dataset 'd' has already spent" in proc.stderr
    st = Ledger(url, create=True).statement("d")
    assert st.cap == ApproxDP(1.0, 1e-6) and len(st.reservations) == 1
    assert Ledger(url, create=True).verify().entries == 3  # create, reserve, complete: nothing else was written


def test_cli_no_ledger_warns_loudly(tmp_path, coded):
    data, domain = coded
    proc = dpsynth("fit", "--data", str(data), "--schema", str(domain), "--epsilon", "1", "--delta", "1e-9",
                   "--rows", "5", "--out", str(tmp_path / "o.csv"), "--no-ledger")
    assert proc.returncode == 0
    assert "WARNING: fitting WITHOUT a privacy ledger" in proc.stderr


# -- additive δ (thresholding events: DP partition selection) ---------------------------------------

def levels_event(delta: float = 1e-7, rho: float = 0.01):
    """The event of a DP partition selection over 3 columns: ρ and an additive δ."""
    return PartitionSelection.calibrate(rho, delta, max_partitions=3, label="schema_levels").event


def test_additive_delta_composes_and_is_shown(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    levels, gauss = levels_event(), GaussianEvent(scale=5.0, l2_sensitivity=1.0)
    assert 0 < levels.delta <= 1e-7
    for _ in range(3):
        ledger.reserve("d", [gauss, levels], synthesizer="schema_infer", claimed=ApproxDP(0.5, 2e-7)).complete()
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM).complete()
    st = ledger.statement("d")
    rho = 3 * (levels.rho + gauss.rho) + sum(e.rho for e in mst_events())
    assert st.rho_spent == pytest.approx(rho, rel=1e-12)
    assert st.delta_spent == pytest.approx(3 * levels.delta, rel=1e-12)
    assert [r.additive_delta for r in st.reservations] == [total_delta([levels])] * 3 + [0.0]
    # ε at the cap's δ, of which Σδ_thr/(1 − Σδ_thr) goes to the thresholding
    rest = 1e-6 - thresholding_delta(3 * levels.delta)
    assert st.epsilon_spent_tight == pytest.approx(zcdp_epsilon(rho, rest), rel=1e-9)
    assert st.epsilon_spent_tight > zcdp_epsilon(rho, 1e-6)
    report = st.to_dict()
    assert report["spent"]["additive_delta"] == pytest.approx(3 * levels.delta)
    assert report["remaining"]["rho"] == pytest.approx(approx_dp_to_rho(5.0, rest) - rho)
    assert report["remaining"]["additive_delta"] == pytest.approx(1e-6 - 3 * levels.delta, rel=1e-6)
    assert report["entries"][0]["events"][1]["delta"] == levels.delta
    assert ledger.verify().ok and Ledger(ledger_url, create=True).verify().entries == 9


def test_additive_delta_overdraft_is_refused_with_both_numbers(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    levels = levels_event(delta=4e-7)
    cap_delta = 2.5 * levels.delta  # admits two of them
    ledger.create_dataset("d", ApproxDP(10.0, cap_delta))
    for _ in range(2):
        ledger.reserve("d", [levels], synthesizer="schema_infer", claimed=ApproxDP(1.0, 5e-7))
    before = ledger.verify().entries
    # ρ is plentiful, but a third δ would pass the cap's δ
    with pytest.raises(BudgetExceededError) as err:
        ledger.reserve("d", [levels], synthesizer="schema_infer", claimed=ApproxDP(1.0, 5e-7))
    message = str(err.value)
    assert f"requested rho={levels.rho:.6g} and additive delta={levels.delta:.6g}" in message
    assert f"additive delta={cap_delta - thresholding_delta(2 * levels.delta):.6g} of dataset 'd'" in message
    assert "remaining rho=0 " in message
    assert ledger.verify().entries == before and len(ledger.statement("d").reservations) == 2
    with pytest.raises(BudgetExceededError):
        ledger.check("d", [levels], claimed=ApproxDP(1.0, 5e-7))


def test_additive_delta_leaves_less_rho(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    big = levels_event(delta=9e-7, rho=0.05)
    # A cap whose ρ admits the request at δ = 1e-6 but not once 9e-7 of it goes to thresholding.
    epsilon = zcdp_epsilon(big.rho, 5e-7)
    assert approx_dp_to_rho(epsilon, 1e-6) > big.rho > approx_dp_to_rho(epsilon, 1e-6 - big.delta / (1 - big.delta))
    ledger.create_dataset("d", ApproxDP(epsilon, 1e-6))
    with pytest.raises(BudgetExceededError) as err:
        ledger.reserve("d", [big], synthesizer="schema_infer", claimed=ApproxDP(1.0, 1e-6))
    remaining = approx_dp_to_rho(epsilon, 1e-6 - thresholding_delta(big.delta))
    assert f"exceeds the remaining rho={remaining:.6g} (with this additive delta taken)" in str(err.value)
    assert err.value.requested == pytest.approx(big.rho) and err.value.remaining == pytest.approx(remaining)
    assert ledger.verify().entries == 1
    # the same ρ without the δ fits
    ledger.reserve("d", [GaussianEvent(scale=(1.5 / (2 * big.rho)) ** 0.5, l2_sensitivity=1.0)],
                   synthesizer="mst", claimed=CLAIM)


def test_cap_change_keeps_the_additive_delta_spent(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", [levels_event(delta=5e-7)], synthesizer="schema_infer", claimed=ApproxDP(1.0, 1e-6))
    with pytest.raises(LedgerError, match="additive delta="):
        ledger.set_cap("d", ApproxDP(5.0, 4e-7), reason="tighten δ below what thresholding spent")
    ledger.set_cap("d", ApproxDP(5.0, 2e-6), reason="more δ")
    assert ledger.statement("d").cap == ApproxDP(5.0, 2e-6)


def _v1_hash(seq, created_at, kind, dataset, rho, content, prev):
    """The entry hash as dpsynth computed it before entries had an additive δ."""
    body = canonical({"seq": seq, "created_at": created_at, "kind": kind, "dataset": dataset, "rho": rho,
                      "content": content, "prev_hash": prev})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def test_a_version_1_ledger_gains_the_column_and_its_entries_still_verify(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM).complete(rows=1)
    # Turn the database back into a version-1 ledger: no additive_delta column, the old index.
    raw_execute(ledger_url,
                "DROP INDEX IF EXISTS dpsynth_ledger_spending_v2",
                "DROP INDEX IF EXISTS dpsynth_ledger_spending_v3",
                "ALTER TABLE dpsynth_ledger_entries DROP COLUMN additive_epsilon",
                "ALTER TABLE dpsynth_ledger_entries DROP COLUMN additive_delta",
                "ALTER TABLE dpsynth_ledger_entries DROP COLUMN rdp",
                "CREATE INDEX dpsynth_ledger_spending ON dpsynth_ledger_entries (dataset, kind, rho)",
                "UPDATE dpsynth_ledger_head SET version = 1")
    old = Ledger(ledger_url, create=True)  # migrates
    assert old.verify().ok and old.verify().entries == 3
    entries = old.statement("d")
    assert entries.delta_spent == 0.0 and len(entries.reservations) == 1
    with old._db.read() as cur:
        cur.execute("SELECT seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta "
                    "FROM dpsynth_ledger_entries ORDER BY seq")
        rows = cur.fetchall()
        cur.execute("SELECT version FROM dpsynth_ledger_head")
        assert cur.fetchone()[0] == SCHEMA_VERSION
    for seq, created_at, kind, dataset, rho, content, prev, digest, additive in rows:
        assert additive == 0.0 and _v1_hash(int(seq), created_at, kind, dataset, float(rho), content, prev) == digest
    old.reserve("d", [levels_event()], synthesizer="schema_infer", claimed=ApproxDP(1.0, 1e-7))
    assert Ledger(ledger_url, create=True).verify().ok


def test_removing_an_additive_delta_is_found(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", [levels_event()], synthesizer="schema_infer", claimed=ApproxDP(1.0, 1e-7))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    raw_execute(ledger_url, "UPDATE dpsynth_ledger_entries SET additive_delta = 0 WHERE seq = 2")
    result = ledger.verify()
    assert not result.ok and result.first_bad == 2 and "does not match its hash" in result.problem


# -- Rényi-DP curves (DP-SGD) -------------------------------------------------------------------


def rdp_event(epsilon_scale: float = 1.0):
    """A DP-SGD-shaped event with a closed-form curve (a Gaussian: α/(2σ²)), no Opacus needed."""
    from dpsynth.privacy.accounting import RDP_ORDERS
    from dpsynth.privacy.events import SubsampledGaussianEvent

    sigma = 3.0 / epsilon_scale
    return SubsampledGaussianEvent(noise_multiplier=sigma, sample_rate=1.0, steps=1, orders=RDP_ORDERS,
                                   rdp_values=tuple(a / (2 * sigma**2) for a in RDP_ORDERS), label="dp_sgd")


def test_rdp_curves_compose_with_zcdp_and_are_refused_over_the_cap(ledger_url):
    from dpsynth.privacy.accounting import zcdp_epsilon

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(3.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM).complete()
    before = ledger.statement("d")
    assert before.composition == "zcdp"
    ledger.reserve("d", [rdp_event()], synthesizer="dpvae", claimed=ApproxDP(1.0, 1e-6)).complete()
    statement = ledger.statement("d")
    # The Gaussian curve α/(2σ²) is ρ-zCDP with ρ = 1/(2σ²): the total is (ρ_mst + ρ) converted on the grid,
    # within the grid's loss of the continuous CKS20 figure.
    exact = zcdp_epsilon(before.rho_spent + 1 / 18, 1e-6)
    assert exact <= statement.epsilon_spent_tight <= exact * 1.01
    assert statement.composition == "rdp" and statement.to_dict()["spent"]["composition"] == "rdp"
    assert statement.rho_remaining > 0
    with pytest.raises(BudgetExceededError, match="exceeds the remaining") as err:
        ledger.reserve("d", [rdp_event(3.0)], synthesizer="dpvae", claimed=ApproxDP(3.0, 1e-6))
    assert err.value.requested > 0 and err.value.remaining > 0
    assert len(ledger.statement("d").reservations) == 2
    assert ledger.verify().ok


def test_editing_or_removing_an_rdp_curve_is_found(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", [rdp_event()], synthesizer="dpvae", claimed=ApproxDP(1.0, 1e-6))
    assert ledger.verify().ok
    raw_execute(ledger_url, "UPDATE dpsynth_ledger_entries SET rdp = '' WHERE seq = 2")
    result = ledger.verify()
    assert not result.ok and result.first_bad == 2 and "does not match its hash" in result.problem


def test_a_version_2_ledger_gains_the_rdp_column_and_still_verifies(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM).complete(rows=1)
    raw_execute(ledger_url, "ALTER TABLE dpsynth_ledger_entries DROP COLUMN rdp",
                "UPDATE dpsynth_ledger_head SET version = 2")
    old = Ledger(ledger_url, create=True)  # migrates
    assert old.verify().ok
    old.reserve("d", [rdp_event()], synthesizer="dpvae", claimed=ApproxDP(1.0, 1e-6))
    assert Ledger(ledger_url).verify().ok and Ledger(ledger_url).statement("d").composition == "rdp"


# -- (ε, δ) claims of plug-in generators (ApproxDPEvent) ----------------------------------------


def cks_epsilon(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ (CKS20 Corollary 13) minimised numerically over α, independently of dpsynth."""
    from scipy.optimize import minimize_scalar

    def at(t: float) -> float:  # α = 1 + e^t
        alpha = 1.0 + math.exp(t)
        return alpha * rho + (math.log(1.0 / delta) - math.log(alpha)) / (alpha - 1.0) + math.log1p(-1.0 / alpha)

    return float(minimize_scalar(at, bounds=(-30.0, 30.0), method="bounded", options={"xatol": 1e-12}).fun)


def test_claims_compose_with_zcdp_and_persist(ledger_url):
    from dpsynth.privacy import ApproxDPEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    g = GaussianEvent(scale=5.0, l2_sensitivity=1.0)  # ρ = 1/50
    ledger.reserve("d", [g], synthesizer="mst", claimed=CLAIM).complete()
    claim = ApproxDPEvent(0.6, 1e-7, label="plugin")
    reservation = ledger.reserve("d", [claim], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7))
    reservation.odometer.spend(claim)
    reservation.complete(rows=7)
    ledger.reserve("d", [ApproxDPEvent(0.3, 2e-7), g], synthesizer="plugin", claimed=ApproxDP(0.5, 2e-7))
    expected = 0.9 + cks_epsilon(0.04, 1e-6 - 3e-7 / (1 - 3e-7))
    for handle in (ledger, Ledger(ledger_url, create=True)):  # persistent: a new handle reads the same account
        st = handle.statement("d")
        assert st.rho_spent == pytest.approx(0.04, rel=1e-15) and st.delta_spent == pytest.approx(3e-7, rel=1e-15)
        assert st.epsilon_additive_spent == pytest.approx(0.9, rel=1e-15)
        assert st.epsilon_spent_tight == pytest.approx(expected, rel=1e-7)
        assert st.epsilon_spent_plain_sum == pytest.approx(2.1)
        assert [r.additive_epsilon for r in st.reservations] == [0.0, 0.6, 0.3]
        assert st.reservations[1].detail == {"spent_rho": 0.0, "spent_epsilon": 0.6, "spent_delta": 1e-7, "rows": 7}
        assert st.reservations[1].events == [claim.to_dict()]
        report = st.to_dict()
        assert report["spent"]["additive_epsilon"] == pytest.approx(0.9)
        assert report["remaining"]["additive_epsilon"] == pytest.approx(5.0 - expected, rel=1e-7)
        assert report["remaining"]["rho"] == pytest.approx(
            approx_dp_to_rho(5.0 - 0.9, 1e-6 - thresholding_delta(3e-7)) - 0.04, rel=1e-9)
    assert Ledger(ledger_url, create=True).verify().ok and ledger.verify().entries == 6
    # the charge reads the same figures from the columns
    with ledger._db.read() as cur:
        account = ledger._account(cur, "d")
    assert account.epsilon_spent == pytest.approx(0.9, rel=1e-15) and account.releases == 3


def test_a_claim_overdraft_is_refused_with_both_numbers_and_changes_nothing(ledger_url):
    from dpsynth.privacy import ApproxDPEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7)).complete()
    before = ledger.verify().entries
    with pytest.raises(BudgetExceededError) as err:
        Ledger(ledger_url, create=True).reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin",
                                   claimed=ApproxDP(0.6, 1e-7))
    assert "requested epsilon=0.6" in str(err.value) and "remaining epsilon=0.4 of dataset 'd'" in str(err.value)
    assert err.value.requested == 0.6 and err.value.remaining == pytest.approx(0.4)
    # an MST release that the remaining ε cannot hold beside the claim is refused too
    with pytest.raises(BudgetExceededError, match="remaining epsilon=0.4"):
        ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    assert ledger.verify().entries == before and len(ledger.statement("d").reservations) == 1
    # what fits exactly still fits
    ledger.reserve("d", [ApproxDPEvent(0.4, 9e-7)], synthesizer="plugin", claimed=ApproxDP(0.4, 9e-7))
    assert ledger.statement("d").epsilon_spent_tight == 1.0 and ledger.verify().ok


@pytest.mark.parametrize("sql,first_bad", [
    ("UPDATE dpsynth_ledger_entries SET additive_epsilon = 0 WHERE seq = 3", 3),  # hide the claim
    ("UPDATE dpsynth_ledger_entries SET additive_epsilon = 0.01 WHERE seq = 3", 3),  # shrink it
    ("UPDATE dpsynth_ledger_entries SET additive_epsilon = 0.5 WHERE seq = 2", 2),  # give an entry one
])
def test_editing_an_additive_epsilon_is_found(ledger_url, sql, first_bad):
    from dpsynth.privacy import ApproxDPEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM)
    ledger.reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7))
    assert ledger.verify().ok
    raw_execute(ledger_url, sql)
    result = ledger.verify()
    assert not result.ok and result.first_bad == first_bad and "does not match its hash" in result.problem


# The previous dpsynth's table (schema version 3: no additive_epsilon column) and its covering index.
_V3_TABLES = [
    """CREATE TABLE dpsynth_ledger_entries (
        seq INTEGER PRIMARY KEY, created_at TEXT NOT NULL, kind TEXT NOT NULL, dataset TEXT NOT NULL,
        rho DOUBLE PRECISION NOT NULL, content TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
        additive_delta DOUBLE PRECISION NOT NULL DEFAULT 0, rdp TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE dpsynth_ledger_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, version INTEGER NOT NULL)""",
    "CREATE INDEX dpsynth_ledger_spending_v2 ON dpsynth_ledger_entries (dataset, kind, rho, additive_delta)",
]


def _v3_hash(seq, created_at, kind, dataset, rho, content, prev, additive_delta=0.0, rdp=""):
    """The entry hash as the previous dpsynth computed it (additive δ and curve only when present)."""
    fields = {"seq": seq, "created_at": created_at, "kind": kind, "dataset": dataset, "rho": rho,
              "content": content, "prev_hash": prev}
    if additive_delta:
        fields["additive_delta"] = additive_delta
    if rdp:
        fields["rdp"] = rdp
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


def test_a_version_3_ledger_made_by_hand_gains_the_additive_epsilon_column(ledger_url):
    from dpsynth.privacy import ApproxDPEvent

    # Values exact in binary, so that the SQL literals below store exactly the hashed floats.
    rho, additive_delta = 0.03125, 2.0**-24
    rows, prev = [], "0" * 64
    contents = [("dataset", 0.0, 0.0, {"epsilon": 5.0, "delta": 1e-6, "unit": "row", "rho_cap": 0.0}),
                ("reserve", rho, additive_delta, {
                    "synthesizer": "schema_infer", "claimed": {"epsilon": 1.0, "delta": 1e-7}, "events": [],
                    "dpsynth_version": "0.0.old", "input_sha256": None, "parameters": {}, "opt_ins": []}),
                ("complete", 0.0, 0.0, {"reservation": 2, "spent_rho": rho})]
    for seq, (kind, r, a, content) in enumerate(contents, start=1):
        created = f"2024-01-0{seq}T00:00:00.000000+00:00"
        text = canonical(content)
        digest = _v3_hash(seq, created, kind, "d", r, text, prev, a)
        rows.append(f"INSERT INTO dpsynth_ledger_entries (seq, created_at, kind, dataset, rho, content, prev_hash, "
                    f"hash, additive_delta, rdp) VALUES ({seq}, '{created}', '{kind}', 'd', {r!r}, '{text}', "
                    f"'{prev}', '{digest}', {a!r}, '')")
        prev = digest
    raw_execute(ledger_url, *_V3_TABLES, *rows,
                f"INSERT INTO dpsynth_ledger_head (id, seq, hash, version) VALUES (1, 3, '{prev}', 3)")

    old = Ledger(ledger_url, create=True)  # migrates
    assert old.verify().ok and old.verify().entries == 3
    st = old.statement("d")
    assert st.rho_spent == rho and st.delta_spent == additive_delta and st.epsilon_additive_spent == 0.0
    assert st.reservations[0].additive_epsilon == 0.0 and st.reservations[0].status == "completed"
    assert raw_query(ledger_url, "SELECT additive_epsilon FROM dpsynth_ledger_entries ORDER BY seq") == [(0.0,)] * 3
    assert raw_query(ledger_url, "SELECT version FROM dpsynth_ledger_head") == [(SCHEMA_VERSION,)]
    if ledger_url.startswith("sqlite:///"):
        indexes = {row[1] for row in raw_query(ledger_url, "PRAGMA index_list(dpsynth_ledger_entries)")}
    else:
        indexes = {row[0] for row in raw_query(
            ledger_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'dpsynth_ledger_entries'")}
    assert "dpsynth_ledger_spending_v3" in indexes and "dpsynth_ledger_spending_v2" not in indexes

    # An old ledger has no seal: nothing is charged on it until it is sealed (its chain checked first).
    with pytest.raises(LedgerError, match="not sealed: run 'dpsynth ledger seal'"):
        old.reserve("d", [ApproxDPEvent(0.5, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.5, 1e-7))
    assert old.seal() == 3 and old.verify().sealed
    old.reserve("d", [ApproxDPEvent(0.5, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.5, 1e-7))
    again = Ledger(ledger_url, create=True)  # opening a migrated ledger changes nothing
    assert again.verify().ok and again.verify().entries == 4
    st = again.statement("d")
    assert st.epsilon_additive_spent == 0.5
    assert st.epsilon_spent_tight == pytest.approx(0.5 + cks_epsilon(rho, 1e-6 - thresholding_delta(
        additive_delta + 1e-7)), rel=1e-7)


def test_cli_shows_the_claims(ledger_url):
    from dpsynth.privacy import ApproxDPEvent

    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7)).complete()
    human = dpsynth("ledger", "show", "--ledger", ledger_url, "--dataset", "d")
    assert human.returncode == 0, human.stderr
    assert "claim (epsilon, delta)=(0.6, 1e-07)" in human.stdout and "claims epsilon=0.6" in human.stdout
    shown = json.loads(dpsynth("ledger", "show", "--ledger", ledger_url, "--json").stdout)
    (d,) = shown["datasets"]
    assert d["spent"]["additive_epsilon"] == 0.6 and d["spent"]["epsilon_tight"] == 0.6
    assert d["entries"][0]["additive_epsilon"] == 0.6 and d["entries"][0]["events"][0]["kind"] == "approx_dp"
    assert dpsynth("ledger", "verify", "--ledger", ledger_url).returncode == 0


# -- keyed fingerprints of the input ------------------------------------------------------------

INPUT_SHA = hashlib.sha256(b"a private table").hexdigest()
OTHER_SHA = hashlib.sha256(b"another private table").hexdigest()
FINGERPRINT = re.compile(r"hmac-sha256:[0-9a-f]{64}")


FINGERPRINT_IN_A_PROCESS = ("import sys; from dpsynth.privacy.ledger import Ledger; "
                            "print(Ledger(sys.argv[1], create=True).keyed_fingerprint(sys.argv[2]))")


def test_keyed_fingerprint_is_stable_for_a_ledger_and_hides_the_plain_hash(ledger_url, tmp_path):
    ledger = Ledger(ledger_url, create=True)
    keyed = ledger.keyed_fingerprint(INPUT_SHA)
    assert FINGERPRINT.fullmatch(keyed)
    # Stable: the same object, a new object, another process, and upper-case hex of the same bytes.
    assert ledger.keyed_fingerprint(INPUT_SHA) == keyed
    assert Ledger(ledger_url, create=True).keyed_fingerprint(INPUT_SHA) == keyed
    assert Ledger(ledger_url, create=True).keyed_fingerprint(INPUT_SHA.upper()) == keyed
    proc = subprocess.run([sys.executable, "-c", FINGERPRINT_IN_A_PROCESS, ledger_url, INPUT_SHA],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == keyed
    # Not the plain hash, not containing it, and not a plain hash of it either.
    assert INPUT_SHA not in keyed and keyed.split(":", 1)[1] != INPUT_SHA
    assert keyed.split(":", 1)[1] != hashlib.sha256(bytes.fromhex(INPUT_SHA)).hexdigest()
    assert ledger.keyed_fingerprint(OTHER_SHA) != keyed
    # Another ledger keys the same input differently.
    other = Ledger(f"sqlite:///{tmp_path / 'other.db'}", create=True)
    assert other.keyed_fingerprint(INPUT_SHA) != keyed
    # It is the HMAC-SHA256 of the digest's bytes under the ledger's 32-byte secret.
    (secret,) = raw_query(ledger_url, "SELECT secret FROM dpsynth_ledger_secret")[0]
    assert len(bytes.fromhex(secret)) == 32
    assert keyed == "hmac-sha256:" + hmac.new(bytes.fromhex(secret), bytes.fromhex(INPUT_SHA), "sha256").hexdigest()
    assert raw_query(ledger_url, "SELECT COUNT(*) FROM dpsynth_ledger_secret")[0][0] == 1


def test_the_secret_is_in_no_statement_and_the_chain_still_verifies(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM, input_sha256=INPUT_SHA).complete(rows=1)
    entries_before = ledger.verify().entries
    keyed = ledger.keyed_fingerprint(INPUT_SHA)
    (secret,) = raw_query(ledger_url, "SELECT secret FROM dpsynth_ledger_secret")[0]
    # Creating the secret appends no entry and leaves the chain intact.
    result = ledger.verify()
    assert result.ok and result.entries == entries_before
    statement = json.dumps(ledger.statement("d").to_dict())
    assert INPUT_SHA in statement  # the ledger keeps the plain hash
    assert secret not in statement and secret.upper() not in statement and keyed not in statement
    assert secret not in repr(ledger)
    shown = dpsynth("ledger", "show", "--ledger", ledger_url, "--json")
    verified = dpsynth("ledger", "verify", "--ledger", ledger_url, "--json")
    assert shown.returncode == 0 and verified.returncode == 0, (shown.stderr, verified.stdout)
    for out in (shown.stdout + shown.stderr, verified.stdout + verified.stderr):
        assert secret not in out and secret.upper() not in out
    assert dpsynth("ledger", "verify", "--ledger", ledger_url).returncode == 0


def test_a_ledger_made_before_the_secret_table_gains_it_and_still_verifies(ledger_url):
    ledger = Ledger(ledger_url, create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    ledger.reserve("d", mst_events(), synthesizer="mst", claimed=CLAIM).complete(rows=1)
    raw_execute(ledger_url, "DROP TABLE dpsynth_ledger_secret")
    old = Ledger(ledger_url, create=True)
    assert old.verify().ok and old.verify().entries == 3
    assert FINGERPRINT.fullmatch(old.keyed_fingerprint(INPUT_SHA))
    assert old.verify().ok


@pytest.mark.parametrize("bad", ["", "ab", INPUT_SHA[:-1], INPUT_SHA + "0", "g" * 64, INPUT_SHA + "\n",
                                 " " + INPUT_SHA[1:], "sha256:" + INPUT_SHA, None, INPUT_SHA.encode(), 42])
def test_keyed_fingerprint_needs_64_hex_characters_and_never_echoes_them(bad, tmp_path):
    from dpsynth.privacy.ledger import UNTRACKED

    for target in (Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True), UNTRACKED):
        with pytest.raises(ParameterError) as err:
            target.keyed_fingerprint(bad)
        assert str(err.value) == "input_sha256 must be 64 hexadecimal characters"


def _fingerprint_worker(args):
    url, start_at = args
    while time.time() < start_at:
        time.sleep(0.001)
    return Ledger(url, create=True).keyed_fingerprint(INPUT_SHA)


def test_concurrent_first_use_creates_one_secret(ledger_url):
    import concurrent.futures

    # Processes and threads race to create the secret of a fresh ledger: all get the same one.
    start_at = time.time() + 2.0
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = pool.map(_fingerprint_worker, [(ledger_url, start_at)] * 4)
    assert len(set(outcomes)) == 1
    url = ledger_url
    if url.startswith("sqlite:///"):  # and threads on a second fresh file
        url = url.replace("ledger.db", "threads.db")
    else:
        raw_execute(url, "DELETE FROM dpsynth_ledger_secret")
    start_at = time.time() + 0.5
    with concurrent.futures.ThreadPoolExecutor(8) as threads:
        from_threads = list(threads.map(_fingerprint_worker, [(url, start_at)] * 8))
    assert len(set(from_threads)) == 1
    assert raw_query(url, "SELECT COUNT(*) FROM dpsynth_ledger_secret")[0][0] == 1
    assert raw_query(ledger_url, "SELECT COUNT(*) FROM dpsynth_ledger_secret")[0][0] == 1
    assert Ledger(url, create=True).keyed_fingerprint(INPUT_SHA) == from_threads[0]


def test_untracked_fingerprints_are_keyed_by_a_fresh_secret_per_process():
    from dpsynth.privacy.ledger import UNTRACKED

    keyed = UNTRACKED.keyed_fingerprint(INPUT_SHA)
    assert FINGERPRINT.fullmatch(keyed) and INPUT_SHA not in keyed
    assert UNTRACKED.keyed_fingerprint(INPUT_SHA) == keyed  # the same within one process
    assert UNTRACKED.keyed_fingerprint(OTHER_SHA) != keyed
    code = "import sys; from dpsynth.privacy.ledger import UNTRACKED; print(UNTRACKED.keyed_fingerprint(sys.argv[1]))"
    runs = [subprocess.run([sys.executable, "-c", code, INPUT_SHA], capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    others = {r.stdout.strip() for r in runs}
    assert len(others) == 2 and keyed not in others  # not stable: a new secret in every process
