"""One validation vocabulary: the audit defaults and bounds (dpsynth.audit.defaults), the JSON Schemas
of the files a user writes, the files shipped inside the package, and the one error tree."""

from __future__ import annotations

import ast
import functools
import json
from importlib import resources
from pathlib import Path

import pytest

from dpsynth.audit import defaults as D
from dpsynth.exceptions import DPSynthError, DPSynthWarning, InternalError, ParameterError

PACKAGE = Path(__file__).resolve().parents[2] / "dpsynth"
SMALL_SUITE = "version: 1\ndata: {generator: worst_case_pair, columns: {a: 2, b: 2}}\naudits:\n"


# -- files shipped inside the package ------------------------------------------------------------------


def test_policies_and_suites_resolve_through_importlib_resources():
    from dpsynth.audit.suite import load_suite, shipped_suite
    from dpsynth.release import load_policy, shipped_policy

    policies = resources.files("dpsynth.release").joinpath("policies")
    suites = resources.files("dpsynth.audit").joinpath("suites")
    assert sorted(p.name for p in policies.iterdir() if p.name.endswith(".yaml")) == [
        "default.yaml", "permissive.yaml", "strict.yaml"]
    assert {"mst.yaml", "aim.yaml", "mst_blackbox.yaml", "dpctgan.yaml", "dpvae.yaml", "plugin.yaml"} <= {
        p.name for p in suites.iterdir()}
    for name in ("default", "strict", "permissive"):
        assert shipped_policy(name) == Path(str(policies.joinpath(f"{name}.yaml")))
        assert load_policy(name).name == name  # a shipped policy by name
    for name in ("mst", "aim", "mst_blackbox", "dpctgan", "dpvae", "plugin"):
        assert shipped_suite(name) == Path(str(suites.joinpath(f"{name}.yaml")))
        assert load_suite(name)["audits"]  # a shipped suite by name
    assert load_suite(shipped_suite("mst"))["version"] == 1  # and a path still works


def test_an_unknown_builtin_name_is_refused_with_the_shipped_names():
    from dpsynth.audit.suite import SuiteError, load_suite
    from dpsynth.release import PolicyError, shipped_policy

    with pytest.raises(SuiteError, match="suite 'nope' is not a shipped suite .*mst_blackbox"):
        load_suite("nope")
    with pytest.raises(PolicyError, match="policy 'lax' is not a shipped policy .*permissive"):
        shipped_policy("lax")
    with pytest.raises(PolicyError):
        shipped_policy("../policies/default")


def test_the_package_data_names_the_shipped_files():
    text = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("dpsynth = ["))
    for pattern in ('"*/*.schema.json"', '"release/policies/*.yaml"', '"audit/suites/*.yaml"'):
        assert pattern in line


# -- JSON Schemas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["SCHEMA_FILE", "POLICY_FILE", "SUITE_FILE"])
def test_the_json_schemas_are_draft_2020_12(which):
    import jsonschema

    from dpsynth import _file_schema
    from dpsynth._shipped import json_schema

    schema = json_schema(*getattr(_file_schema, which))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_shipped_file_follows_its_json_schema():
    import yaml

    from dpsynth._file_schema import POLICY_FILE, SCHEMA_FILE, SUITE_FILE, schema_problems
    from dpsynth._shipped import POLICIES, SUITES, shipped_file, shipped_names
    from dpsynth.datasets import adult_schema_path

    for name in shipped_names(POLICIES):
        assert schema_problems(yaml.safe_load(shipped_file(POLICIES, name).read_text()), POLICY_FILE) == [], name
    for name in shipped_names(SUITES):
        assert schema_problems(yaml.safe_load(shipped_file(SUITES, name).read_text()), SUITE_FILE) == [], name
    assert schema_problems(yaml.safe_load(Path(adult_schema_path()).read_text()), SCHEMA_FILE) == []


def test_the_json_schemas_hold_the_bounds_of_the_defaults():
    """The bounds are defined once (dpsynth.audit.defaults); the JSON Schemas repeat them and must agree."""
    from dpsynth._shipped import json_schema

    suite = json_schema("dpsynth.audit", "suite.schema.json")
    policy = json_schema("dpsynth.release", "policy.schema.json")
    kinds = {entry["then"]["properties"]["kind"]["const"]: entry["then"]["properties"]
             for entry in suite["properties"]["audits"]["items"]["allOf"]}
    audit = policy["properties"]["audit"]["properties"]
    for defaults, props in ((D.BLACKBOX, [kinds["blackbox"], audit]), (D.CANARY, [kinds["canary"], audit]),
                            (D.ONERUN, [kinds["onerun"]]), (D.WHITEBOX, [kinds["whitebox"]])):
        for key, bound in defaults.BOUNDS.items():
            for where in props:
                if key not in where or (where is audit and key in ("seed", "workers")):
                    continue
                low = where[key].get("minimum", where[key].get("exclusiveMinimum"))
                assert low == bound.low, (defaults, key)
                assert where[key].get("maximum", where[key].get("exclusiveMaximum")) == bound.high, (defaults, key)


def test_a_problem_only_the_json_schema_sees_names_the_key_and_never_the_value(tmp_path):
    from dpsynth.audit.suite import SuiteError, load_suite

    path = tmp_path / "suite.yaml"
    path.write_text("description: 987654321\n" + SMALL_SUITE + "  - kind: replay\n", encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    message = str(info.value)
    assert message == f"suite file {str(path)!r} is invalid: description: expected a string"
    assert "987654321" not in message


def test_an_unknown_key_of_the_data_section_is_refused(tmp_path):
    """A typo in the worst-case pair's section used to be ignored silently (the default was used)."""
    from dpsynth.audit.suite import SuiteError, load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(SMALL_SUITE.replace("b: 2}", "b: 2}, row: 20") + "  - kind: replay\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"data: has unknown key\(s\) row \(known: columns, generator, rows\)"):
        load_suite(path)


# -- one bound per parameter -----------------------------------------------------------------------------


def test_the_bounds_speak_in_the_one_shape():
    assert D.IntBound(2).constraint == "an integer >= 2"
    assert D.IntBound(1, 3).constraint == "an integer from 1 to 3"
    assert D.IntBound(20, nullable=True).constraint == "an integer >= 20 or null"
    assert D.CONFIDENCE.constraint == "in [0.5, 0.999999]"
    assert D.RealBound(0, 1, low_open=True, high_open=True).constraint == "in the open interval (0, 1)"
    with pytest.raises(ParameterError, match=r"^fits \(4\) must be an integer from 1 to 3$"):
        D.CANARY.check("fits", 4)
    assert D.BLACKBOX.check("reference_rows", None) is None and D.CANARY.check("confidence", 0.5) == 0.5
    for bad in (True, 2.0, "3", None):
        assert not D.IntBound(1).accepts(bad)
    assert not D.CONFIDENCE.accepts(float("nan")) and not D.CONFIDENCE.accepts(True)


@pytest.mark.parametrize("audit, words", [
    ("{kind: blackbox, reference_rows: 15}", "audits[0].reference_rows (15) must be an integer >= 20 or null"),
    ("{kind: canary, base_rows: 10}", "audits[0].base_rows (10) must be an integer >= 20"),
    ("{kind: canary, confidence: 0.3}", "audits[0].confidence (0.3) must be in [0.5, 0.999999]"),
    ("{kind: onerun, confidence: 0.9999999}", "audits[0].confidence (0.9999999) must be in [0.5, 0.999999]"),
    ("{kind: whitebox, trials_per_world: 5, confidence: 0.1}", "audits[0].confidence (0.1)"),
    ("{kind: whitebox, trials_per_world: 5, seed: -1}", "audits[0].seed (-1) must be an integer >= 0"),
])
def test_a_suite_refuses_what_the_unified_bounds_refuse(tmp_path, audit, words):
    """Each was accepted before the bounds were unified: the stricter bound of the two places won."""
    from dpsynth.audit.suite import SuiteError, load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(SMALL_SUITE + f"  - {audit}\n", encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, words", [
    ({"base_rows": 19}, "base_rows (19) must be an integer >= 20"),
    ({"confidence": 0.25}, "confidence (0.25) must be in [0.5, 0.999999]"),
    ({"seed": -1}, "seed (-1) must be an integer >= 0"),
])
def test_the_canary_audit_refuses_what_its_policy_refuses(kwargs, words):
    """The canary audit used to take 1 base row, any confidence in (0, 1) and negative seeds (which
    numpy then refused with a traceback); the policy's bounds now hold for the function too."""
    from dpsynth.audit.canary import canary_audit
    from dpsynth.schema import Schema

    schema = Schema.from_domain({"a": 4, "b": 4})
    with pytest.raises(ParameterError) as info:
        canary_audit(functools.partial(dict), schema, claimed_epsilon=1.0, claimed_delta=1e-6, **kwargs)
    assert str(info.value) == words


def test_the_policy_and_the_suite_read_the_same_defaults():
    from dpsynth.audit.suite import load_suite
    from dpsynth.release import parse_policy

    base = {"version": 1, "name": "p", "privacy": {"max_epsilon": 1, "max_delta": 1e-6}}
    canary = parse_policy({**base, "audit": {}}).audit
    blackbox = parse_policy({**base, "audit": {"method": "multi_fit"}}).audit
    assert (canary.fits, canary.base_rows, canary.sample_factor, canary.confidence) == (
        D.CANARY.fits, D.CANARY.base_rows, D.CANARY.sample_factor, D.CANARY.confidence)
    assert (blackbox.fits_per_world, blackbox.reference_rows, blackbox.attacks) == (
        D.BLACKBOX.fits_per_world, D.BLACKBOX.reference_rows, D.ATTACKS)
    suite = load_suite("plugin")["audits"][0]
    assert {k: suite[k] for k in ("fits", "base_rows", "sample_factor", "confidence")} == {
        "fits": D.CANARY.fits, "base_rows": D.CANARY.base_rows, "sample_factor": D.CANARY.sample_factor,
        "confidence": D.CANARY.confidence}


# -- one error tree --------------------------------------------------------------------------------------

#: exception classes defined outside exceptions.py that do not derive from its classes yet (other files)
KNOWN_OUTSIDE = {"ReplayDivergence", "TranscriptComplete", "UntrackedPrivacyWarning"}


def test_every_dpsynth_exception_lives_in_the_one_tree():
    import dpsynth.exceptions as tree

    roots = {name for name, obj in vars(tree).items() if isinstance(obj, type) and issubclass(obj, BaseException)}
    outside = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "exceptions.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            builtin = bases & {"Exception", "BaseException", "RuntimeError", "ValueError", "UserWarning", "Warning"}
            if builtin and not bases & roots and node.name not in KNOWN_OUTSIDE:
                outside.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert outside == []
    assert issubclass(InternalError, DPSynthError) and InternalError.__doc__ == (
        "A broken invariant inside dpsynth: a bug, never bad input.")
    assert issubclass(tree.InsecureNoiseWarning, DPSynthWarning)
    assert issubclass(tree.SchemaWithoutPrivacyWarning, DPSynthWarning)


def test_a_broken_inference_plan_raises_an_internal_error_not_an_assert(monkeypatch):
    """The plan's cost within its budget is a privacy invariant: it holds under ``python -O`` too."""
    from dpsynth.privacy.budgets import ApproxDP
    from dpsynth.schema import infer_plan
    from dpsynth.schema.infer_hints import ColumnTask

    monkeypatch.setattr(infer_plan, "total_rho", lambda events: 1e9)
    with pytest.raises(InternalError, match="exceeds the budget"):
        infer_plan.plan_inference([ColumnTask(name="a")], ApproxDP(1.0, 1e-6), split_kinds=0.1,
                                  split_categories=0.6, split_bounds=0.3, split_delta_threshold=0.5)
    source = (PACKAGE / "schema" / "infer_plan.py").read_text(encoding="utf-8")
    assert "assert plan" not in source


def test_the_schema_helpers_others_read_are_public():
    import pandas as pd

    from dpsynth.schema.column import integer_bin
    from dpsynth.schema.encode import missing_mask, numbers_of

    values = pd.Series(["1", "?", None, "x"])
    assert missing_mask(values, ["?"]).tolist() == [False, True, True, False]
    numbers = numbers_of(values, missing_mask(values, ["?"]))
    assert numbers[0] == 1.0 and all(n != n for n in numbers[1:])
    assert integer_bin([0.0, 2.5, 5.0], 0, 5.0) == (0, 2) and integer_bin([0.0, 2.5, 5.0], 1, 5.0) == (3, 5)
    assert json.loads(json.dumps(D.ATTACKS)) == ["counting", "dcr", "domias"]
