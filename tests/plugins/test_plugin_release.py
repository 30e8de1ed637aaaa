"""A plug-in through the road: its claim charged as one (ε, δ) event before its fit (or its own
plan), an overdraft refused before the fit, failures after the charge blocked without a traceback
(the reservation stays spent, no table written), `dpsynth fit`, and the documented example (a plain
class wrapping MST) released with the claim stated as the generator's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from plugin_fixtures import MODULE, ROOT, SECRET

from dpsynth.cli import main
from dpsynth.exceptions import BudgetExceededError, ParameterError
from dpsynth.release import release
from dpsynth.schema import load_schema
from dpsynth.synth.plugin import PLUGIN_STATEMENT, load_generator


def _release(files, name: str, **kwargs):
    args = dict(data=files.data, schema=files.schema, synthesizer=f"{MODULE}:{name}", epsilon=1.0, delta=1e-6,
                ledger=files.url, dataset="crm", policy=kwargs.pop("policy", None) or files.policy(),
                out=files.root / kwargs.pop("out", "out"), rows=50, progress=False, workers=1)
    args.update(kwargs)
    return release(**args)


def _check(result, cid: str) -> dict:
    return next(c for c in result.report["checks"] if c["id"] == cid)


def test_the_claim_is_charged_once_as_one_event_before_the_fit(files):
    result = _release(files, "ChecksReservation")
    assert result.status == "released", result.reasons
    (seen,) = files.calls("reserved_before_fit")
    assert seen["synthesizer"] == f"{MODULE}:ChecksReservation"
    assert [(e["kind"], e["epsilon"], e["epsilon_delta"]) for e in seen["events"]] == [("approx_dp", 1.0, 1e-6)]
    (reservation,) = files.reservations()
    assert reservation.status == "completed" and len(reservation.events) == 1
    assert (reservation.epsilon, reservation.delta) == (1.0, 1e-6)
    assert result.report["ledger"]["entry_ids"] == [reservation.id]
    claim = result.report["release"]["claim"]
    assert claim["source"] == "generator" and claim["verified"] is False and claim["statement"] == PLUGIN_STATEMENT
    assert claim["plan"] == "charged by dpsynth as one (ε, δ) event"
    synthetic = pd.read_csv(result.publish / "synthetic.csv")
    assert len(synthetic) == 50 and list(synthetic.columns) == ["region", "plan", "churn", "tenure"]


def test_a_plugin_with_its_own_plan_is_charged_with_that_plan(files):
    result = _release(files, "OwnPlan")
    assert result.status == "released", result.reasons
    (reservation,) = files.reservations()
    assert [(e["kind"], e["label"]) for e in reservation.events] == [("gaussian", "my noisy count")]
    assert reservation.rho == pytest.approx(1 / (2 * 20.0**2))
    assert result.report["release"]["claim"]["plan"] == "the generator's own plan()"


def test_an_overdraft_is_refused_before_the_fit(files):
    result = _release(files, "Uniform", epsilon=4.5, policy=files.policy(privacy={"max_epsilon": 10.0}),
                      out="big")
    assert result.status == "refused" and result.exit_code == 3
    assert _check(result, "budget.ledger")["status"] == "fail"
    assert files.calls("fit") == [] and files.reservations() == []
    assert not (result.publish / "synthetic.csv").exists()
    # the ledger refuses it too, before the fit, when called directly (BudgetExceededError)
    synth = load_generator(f"{MODULE}:Uniform")(epsilon=4.5, delta=1e-6)
    with pytest.raises(BudgetExceededError):
        synth.fit(pd.read_csv(files.data), schema=load_schema(files.schema), ledger=files.ledger(), dataset="crm")
    assert files.calls("fit") == [] and files.reservations() == []


@pytest.mark.parametrize("name, fragment", [
    ("FitRaises", "its fit() raised ValueError after its claim was charged"),
])
def test_a_fit_that_raises_blocks_and_keeps_the_reservation_spent(files, name, fragment):
    result = _release(files, name)
    assert result.status == "blocked" and result.exit_code == 1
    check = _check(result, "release.fit")
    assert check["status"] == "error" and fragment in check["detail"] and "\n" not in check["detail"]
    assert "119" not in check["detail"]  # the exception's message quoted a private value: it is left out
    (reservation,) = files.reservations()
    assert reservation.status == "failed" and result.report["ledger"]["entry_ids"] == [reservation.id]
    assert result.report["release"]["secure_noise"] is None
    assert not (result.publish / "synthetic.csv").exists() and result.report["artifacts"]["synthetic"] is None


@pytest.mark.parametrize("name, fragment", [
    ("SampleRaises", "its sample(50) raised RuntimeError"),
    ("SampleList", "returned a list, not a pandas DataFrame"),
    ("SampleFewerRows", "returned 49 rows, not 50"),
    ("SampleMissingColumn", "without the schema's column(s) churn"),
    ("SampleOutOfSchema", "does not fit the schema"),
])
def test_a_bad_sample_blocks_without_writing_the_table(files, name, fragment):
    result = _release(files, name)
    assert result.status == "blocked" and result.exit_code == 1
    check = _check(result, "release.sample")
    assert check["status"] == "error" and fragment in check["detail"] and "\n" not in check["detail"]
    assert str(SECRET) not in json.dumps(result.report) and "mars" not in json.dumps(result.report)
    assert not (result.publish / "synthetic.csv").exists()
    (reservation,) = files.reservations()
    assert reservation.status == "completed"  # the fit ran; what it spent stays spent


def test_the_cli_blocks_a_failed_fit_with_exit_1_and_no_traceback(files):
    env = {**os.environ, "PYTHONPATH": f"{files.root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-m", "dpsynth", "release", "--data", str(files.data), "--schema",
                          str(files.schema), "--synthesizer", f"{MODULE}:FitRaises", "--epsilon", "1", "--delta",
                          "1e-6", "--ledger", files.url, "--dataset", "crm", "--policy", str(files.policy()),
                          "--out", str(files.root / "out"), "--rows", "50"],
                         capture_output=True, text=True, cwd=files.root, timeout=300, env=env)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "BLOCKED" in out.stdout and "release.fit" in out.stdout
    assert not (files.root / "out" / "publish" / "synthetic.csv").exists()


def test_seeds_secure_noise_and_the_row_estimate_are_the_generators(files):
    strict = files.policy("strict", privacy={"require_secure_noise": True})
    secure = _release(files, "Seeded", rows=None, policy=strict, out="secure")
    assert secure.status == "released", secure.reasons
    assert secure.report["release"]["secure_noise"] is True
    assert "its own claim, unverified" in _check(secure, "privacy.secure_noise")["detail"]
    assert secure.report["release"]["rows"] == 321 and secure.report["release"]["rows_source"] == "dp_estimate"
    assert secure.report["release"]["claim"]["secure_noise_reported"] is True
    # a seeded release passes the seed to __init__ (random_state) and to sample
    seeded = _release(files, "Seeded", insecure_seed=7, out="seeded")
    assert seeded.status == "released" and seeded.report["release"]["secure_noise"] is False
    assert files.calls("seed")[-1]["random_state"] == 7 and files.calls("sample")[-1]["random_state"] == 8


def test_a_plugin_without_a_row_estimate_needs_rows_before_the_charge(files):
    with pytest.raises(ParameterError, match="no DP estimate of the private row count"):
        _release(files, "Uniform", rows=None)
    assert files.reservations() == [] and files.calls("fit") == []


def test_dpsynth_fit_of_a_plugin(files, capsys):
    base = ["fit", "--data", str(files.data), "--schema", str(files.schema), "--epsilon", "1", "--delta", "1e-6",
            "--rows", "40", "--ledger", files.url, "--dataset", "crm", "--json"]
    out = files.root / "synthetic.csv"
    assert main([*base, "--synthesizer", f"{MODULE}:Seeded", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["synthesizer"] == f"{MODULE}:Seeded" and result["secure_noise"] is True
    assert result["claim"]["source"] == "generator" and len(pd.read_csv(out)) == 40
    (reservation,) = files.reservations()
    assert [e["kind"] for e in reservation.events] == ["approx_dp"]
    # a fit that raises after the charge: exit 2, one line, the reservation stays spent (failed)
    code = main([*base, "--synthesizer", f"{MODULE}:FitRaises", "--out", str(files.root / "other.csv")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "fit() raised ValueError" in captured.err and "119" not in captured.err
    assert [r.status for r in files.reservations()] == ["completed", "failed"]
    assert not (files.root / "other.csv").exists()
    code = main([*base, "--synthesizer", f"{MODULE}:SampleList", "--out", str(files.root / "third.csv")])
    captured = capsys.readouterr()
    assert code == 2 and "not a pandas DataFrame" in captured.err and len(captured.err.strip().splitlines()) == 1
    code = main([*base, "--synthesizer", f"{MODULE}:Uniform", "--param", "nosuch=1", "--out",
                 str(files.root / "fourth.csv")])  # a new path: an existing --out needs --overwrite
    assert code == 2 and "is not a parameter of" in capsys.readouterr().err


def test_the_documented_example_wrapping_mst_is_released(files, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    policy = files.policy("example", privacy={"require_secure_noise": True})
    result = release(data=files.data, schema=files.schema, synthesizer="plugin_generator:MyGenerator", epsilon=1.0,
                     delta=1e-6, ledger=files.url, dataset="crm", policy=policy, out=files.root / "example",
                     rows=120, synthesizer_params={"estimation_iters": 50}, progress=False, workers=1)
    assert result.status == "released", result.reasons
    report = result.report
    assert report["release"]["claim"]["source"] == "generator" and report["release"]["secure_noise"] is True
    (reservation,) = files.reservations()
    assert [(e["kind"], e["epsilon"]) for e in reservation.events] == [("approx_dp", 1.0)]
    assert len(pd.read_csv(result.publish / "synthetic.csv")) == 120
    public = json.loads((result.publish / "report.json").read_text(encoding="utf-8"))
    assert public["release"]["claim"] == report["release"]["claim"]
    page = (result.publish / "report.html").read_text(encoding="utf-8")
    assert "Unverified claim" in page and "unverified by construction" in page


def test_dpsynth_own_synthesizers_state_their_claim(files):
    result = release(data=files.data, schema=files.schema, synthesizer="mst", epsilon=1.0, delta=1e-6,
                     ledger=files.url, dataset="crm", policy=files.policy(), out=files.root / "mst", rows=50,
                     insecure_seed=1, synthesizer_params={"estimation_iters": 50}, progress=False, workers=1)
    assert result.status == "released", result.reasons
    claim = result.report["release"]["claim"]
    assert claim["source"] == "dpsynth" and claim["verified"] is True
    assert claim["plan"] == "dpsynth's plan, each mechanism's cost derived from its noise"
