"""Loading a generator dpsynth did not write: the plain contract, what breaks it (one line, exit 2,
nothing charged), dpsynth's own classes unchanged, and the audits a plug-in cannot run."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_fixtures import MODULE, ROOT

from dpsynth.cli import main
from dpsynth.exceptions import ParameterError
from dpsynth.schema import load_schema
from dpsynth.synth.mst import MST
from dpsynth.synth.plugin import PluginClass, PluginSynthesizer, load_generator


def _cli(*args: str, cwd: Path, extra_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{extra_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_a_registered_name_and_a_dpsynth_subclass_load_as_today(files):
    assert load_generator("mst") is MST
    assert load_generator("dpsynth.synth.mst:MST") is MST
    with pytest.raises(ParameterError, match="must be one of"):
        load_generator("nosuch")


def test_a_plain_class_is_wrapped_and_pickles_as_its_spec(files):
    cls = load_generator(f"{MODULE}:Seeded")
    assert isinstance(cls, PluginClass)
    assert (cls.name, cls.plugin, cls.unit, cls.uses_bins, cls.estimates_rows) == (f"{MODULE}:Seeded", True, "row",
                                                                                   False, True)
    assert load_generator(f"{MODULE}:Uniform").estimates_rows is False
    again = pickle.loads(pickle.dumps(cls))
    assert isinstance(again, PluginClass) and again == cls and again.cls is cls.cls
    synth = cls(epsilon=1.0, delta=1e-6, insecure_seed=5)
    assert isinstance(synth, PluginSynthesizer) and synth.inner.random_state == 5  # the seed went to __init__
    events = synth.plan(load_schema(files.schema))
    assert [(e.kind, e.epsilon, e.epsilon_delta) for e in events] == [("approx_dp", 1.0, 1e-6)]


@pytest.mark.parametrize("name, missing", [
    ("NoFit", "no fit() method"),
    ("NoDelta", "__init__ does not take delta="),
    ("FitWithoutSchema", "fit() does not take schema="),
    ("NoSample", "no sample() method"),
])
def test_each_missing_piece_is_named_in_one_line(files, name, missing):
    with pytest.raises(ParameterError) as info:
        load_generator(f"{MODULE}:{name}")
    message = str(info.value)
    assert missing in message and "does not follow the estimator contract" in message and "\n" not in message


@pytest.mark.parametrize("name, problem", [
    ("EmptyPlan", "plan() returned something that is not a non-empty list of dpsynth privacy events"),
    ("StringPlan", "plan() returned something that is not a non-empty list of dpsynth privacy events"),
])
def test_a_bad_plan_is_refused_at_the_probe(files, name, problem):
    synth = load_generator(f"{MODULE}:{name}")(epsilon=1.0, delta=1e-6)
    with pytest.raises(ParameterError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        synth.plan(load_schema(files.schema))


def test_unknown_parameters_and_dp_chosen_bins_are_refused_before_the_charge(files, tmp_path):
    cls = load_generator(f"{MODULE}:Uniform")
    with pytest.raises(ParameterError, match="Uniform\\(\\) does not accept these parameters"):
        cls(epsilon=1.0, delta=1e-6, nosuch=3)
    with pytest.raises(ParameterError, match="epsilon"):
        cls(epsilon=-1.0, delta=1e-6)
    binned = tmp_path / "binned.yaml"
    binned.write_text("version: 1\ncolumns:\n  - {name: a, kind: categorical, levels: [x, y]}\n"
                      "  - {name: b, kind: integer, bounds: [0, 100], bins: {dp_quantiles: 4}}\n")
    with pytest.raises(ParameterError, match="cannot use bins dpsynth would have to choose"):
        cls(epsilon=1.0, delta=1e-6).plan(load_schema(binned))


@pytest.mark.parametrize("name, missing", [
    ("NoDelta", "__init__ does not take delta="),
    ("NoFit", "no fit() method"),
    ("StringPlan", "plan() returned something that is not a non-empty list of dpsynth privacy events"),
])
def test_release_cli_exits_2_with_one_line_and_charges_nothing(files, capsys, name, missing):
    code = main(["release", "--data", str(files.data), "--schema", str(files.schema), "--synthesizer",
                 f"{MODULE}:{name}", "--epsilon", "1", "--delta", "1e-6", "--ledger", files.url, "--dataset", "crm",
                 "--policy", str(files.policy()), "--out", str(files.root / "out"), "--rows", "50"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and missing in captured.err
    assert files.reservations() == [] and not (files.root / "out").exists()
    assert files.calls("fit") == []


def test_release_cli_in_a_subprocess_names_the_missing_piece_without_a_traceback(files):
    out = _cli("release", "--data", str(files.data), "--schema", str(files.schema), "--synthesizer",
               f"{MODULE}:FitWithoutSchema", "--epsilon", "1", "--delta", "1e-6", "--ledger", files.url, "--dataset",
               "crm", "--policy", str(files.policy()), "--out", str(files.root / "out"), "--rows", "50",
               cwd=files.root, extra_path=files.root)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "fit() does not take schema=" in out.stderr
    assert "Traceback" not in out.stderr and files.reservations() == []


def test_whitebox_and_replay_audits_are_refused_for_a_plugin_before_any_fit(files):
    suite = files.root / "suite.yaml"
    suite.write_text("version: 1\ndata: {generator: worst_case_pair, columns: {a: 2, b: 2, c: 2}, rows: 10}\n"
                     "audits:\n  - kind: replay\n  - kind: whitebox\n    trials_per_world: 5\n")
    out = _cli("audit", "--synthesizer", f"{MODULE}:Uniform", "--epsilon", "1", "--delta", "1e-2", "--suite",
               str(suite), cwd=files.root, extra_path=files.root)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "whitebox, replay" in out.stderr.replace("replay, whitebox", "whitebox, replay")
    assert "blackbox, onerun" in out.stderr and "Traceback" not in out.stderr
    assert files.calls("fit") == []


def test_a_plugin_runs_the_onerun_audit(files):
    from dpsynth.audit.suite import run_suite

    suite = {"version": 1, "synthesizer_params": {}, "data": {"generator": "worst_case_pair",
             "columns": {f"c{i}": 4 for i in range(8)}, "rows": 10},
             "audits": [{"kind": "onerun", "canaries": 20, "guesses": None, "base_rows": 50, "seed": 0,
                         "scoring": "blackbox", "confidence": 0.95}]}
    summary = run_suite(f"{MODULE}:Seeded", epsilon=1.0, delta=1e-5, suite=suite)
    assert summary["violation"] is False and len(files.calls("fit")) == 1


def test_the_example_module_loads(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    cls = load_generator("plugin_generator:MyGenerator")
    assert isinstance(cls, PluginClass) and cls.estimates_rows is True
    assert "estimation_iters" in cls.parameters()[0]
