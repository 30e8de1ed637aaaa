"""`dpsynth audit`: JSON fields, exit codes (0 pass, 1 violation, 2 bad input), user classes by
import path, suite validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dpsynth.audit.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]

SMALL_SUITE = """
version: 1
synthesizer_params: {estimation_iters: 50}
data: {generator: worst_case_pair, columns: {a: 2, b: 2, c: 2}, rows: 10}
audits:
  - kind: replay
    pairs: [constant_plus_outlier]
  - kind: whitebox
    trials_per_world: 15
    noise: seeded
"""

USER_MODULE = '''
import numpy as np
from dpsynth.synth.mst import MST


class DoubledMST(MST):
    """Counts every row twice: the declared sensitivity 1 is half the real one."""

    def _fit_codes(self, codes, schema, odometer, noise):
        return super()._fit_codes(np.concatenate([codes, codes]), schema, odometer, noise)


class PlainMST(MST):
    pass


class NotASynthesizer:
    def __init__(self, *, epsilon, delta):
        self.epsilon = epsilon
'''


def run(*args: str, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if extra_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": f"{extra_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dpsynth", "audit", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SMALL_SUITE)
    (tmp_path / "user_synths.py").write_text(USER_MODULE)
    return path


def test_builtin_mst_passes_with_json(suite, tmp_path):
    out = run("--synthesizer", "mst", "--epsilon", "1", "--delta", "1e-2", "--suite", str(suite), "--json",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("claimed_epsilon", "epsilon_lower_bound", "confidence", "trials", "method", "violation",
                "max_provable_epsilon", "notice", "audits", "command"):
        assert key in result
    assert result["violation"] is False and result["claimed_epsilon"] == 1.0 and result["trials"] == 30
    assert "NOT differentially private" in result["notice"]
    assert [a["method"] for a in result["audits"]] == ["record_replay", "whitebox_transcript_likelihood_ratio"]


def test_user_class_by_import_path_is_audited_and_a_violation_exits_1(suite, tmp_path):
    out = run("--synthesizer", "user_synths:DoubledMST", "--epsilon", "1", "--delta", "1e-2", "--suite",
              str(suite), cwd=tmp_path, extra_path=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "sensitivity" in out.stdout and "VIOLATION" in out.stdout
    ok = run("--synthesizer", "user_synths:PlainMST", "--epsilon", "1", "--delta", "1e-2", "--suite", str(suite),
             "--json", cwd=tmp_path, extra_path=tmp_path)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("spec, message", [
    ("user_synths:NotASynthesizer", "does not follow the estimator contract: no fit() method; no sample() method"),
    ("user_synths:Missing", "has no class 'Missing'"),
    ("no_such_module_xyz:Cls", "cannot import module 'no_such_module_xyz'"),
    ("nosuchname", "must be one of"),
])
def test_bad_synthesizer_exits_2_with_one_line(suite, tmp_path, spec, message):
    out = run("--synthesizer", spec, "--epsilon", "1", "--delta", "1e-2", "--suite", str(suite), cwd=tmp_path,
              extra_path=tmp_path)
    assert out.returncode == 2
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


def test_bad_suite_lists_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 2\ndata: {generator: real, columns: {a: 1}}\naudits:\n  - kind: whitebox\n"
                    "    trials_per_world: 0\n    noise: loud\n")
    out = run("--synthesizer", "mst", "--epsilon", "1", "--delta", "1e-2", "--suite", str(path), cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    for fragment in ("version (2) must be 1", "data.generator ('real')", "data.columns",
                     "audits[0].trials_per_world (0)", "audits[0].noise ('loud')"):
        assert fragment in out.stderr


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_shipped_suites_are_valid(name):
    suite = load_suite(name)  # a shipped suite, by name
    assert {a["kind"] for a in suite["audits"]} == {"replay", "whitebox"}


def test_the_plugin_suite_is_valid_and_holds_the_gates_canary_audit():
    suite = load_suite("plugin")
    assert [a["kind"] for a in suite["audits"]] == ["canary"]
    assert suite["audits"][0]["fits"] == 3 and suite["audits"][0]["schema"] == "adult"


def test_a_plain_plugin_runs_the_canary_suite_and_a_copier_is_refuted(tmp_path):
    (tmp_path / "plain_gens.py").write_text('''
import numpy as np
import pandas as pd


class Uniform:
    """Ignores its data: samples the public domain uniformly (0-DP)."""

    def __init__(self, *, epsilon, delta):
        self.epsilon, self.delta = epsilon, delta

    def fit(self, data, *, schema):
        self.data, self.schema = data.reset_index(drop=True), schema
        return self

    def sample(self, n_rows):
        from dpsynth.schema.encode import decode

        rng = np.random.default_rng()
        codes = np.stack([rng.integers(0, c.n_values, n_rows) for c in self.schema.columns], axis=1)
        return decode(codes, self.schema, rng)


class Copier(Uniform):
    def sample(self, n_rows):
        return self.data.iloc[np.arange(n_rows) % len(self.data)].reset_index(drop=True)
''')
    suite = tmp_path / "canary.yaml"
    suite.write_text("version: 1\ndata: {generator: worst_case_pair, columns: {a: 2, b: 2}, rows: 10}\n"
                     "audits:\n  - kind: canary\n    fits: 1\n    base_rows: 200\n")
    ok = run("--synthesizer", "plain_gens:Uniform", "--epsilon", "1", "--delta", "1e-6", "--suite", str(suite),
             "--json", cwd=tmp_path, extra_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["audits"][0]["method"] == "canary_one_run_blackbox"
    bad = run("--synthesizer", "plain_gens:Copier", "--epsilon", "1", "--delta", "1e-6", "--suite", str(suite),
              cwd=tmp_path, extra_path=tmp_path)
    assert bad.returncode == 1 and "VIOLATION" in bad.stdout, bad.stderr
    whitebox = tmp_path / "whitebox.yaml"
    whitebox.write_text(SMALL_SUITE)
    refused = run("--synthesizer", "plain_gens:Uniform", "--epsilon", "1", "--delta", "1e-6", "--suite",
                  str(whitebox), cwd=tmp_path, extra_path=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "canary, blackbox, onerun" in refused.stderr
