"""The package root: every built-in synthesizer, exported lazily; one version; no heavy import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import dpsynth

ROOT = Path(__file__).resolve().parents[2]
SYNTHESIZERS = ("AIM", "DPCTGAN", "DPVAE", "MST")


def _fresh(code: str) -> object:
    """Run ``code`` in a fresh interpreter and return what it prints as JSON."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_builtin_synthesizer_is_exported_from_the_root() -> None:
    from dpsynth.synth import registered

    exported = {name: getattr(dpsynth, name) for name in SYNTHESIZERS}
    assert set(SYNTHESIZERS) <= set(dpsynth.__all__) and set(SYNTHESIZERS) <= set(dir(dpsynth))
    assert {cls.name: cls for cls in exported.values()} == registered()
    import dpsynth.synth as synth

    assert all(exported[name] is getattr(synth, name) for name in SYNTHESIZERS)


def test_everything_in_all_resolves() -> None:
    for name in dpsynth.__all__:
        assert getattr(dpsynth, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="module 'dpsynth' has no attribute 'NoSuchSynth'"):
        dpsynth.NoSuchSynth  # noqa: B018


def test_import_dpsynth_loads_no_synthesizer_backend() -> None:
    """``import dpsynth`` imports neither JAX and mbi (MST, AIM) nor PyTorch and Opacus (DP-SGD); the DP-SGD
    classes themselves load without torch (it is imported by their fit)."""
    heavy = ["torch", "opacus", "jax", "mbi", "presidio_analyzer", "spacy", "psycopg"]
    loaded = _fresh(f"import json, sys, dpsynth; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")
    assert loaded == []
    loaded = _fresh("import json, sys; from dpsynth import DPCTGAN, DPVAE; "
                    "print(json.dumps([m for m in ('torch', 'opacus') if m in sys.modules]))")
    assert loaded == []


def test_one_version() -> None:
    """The version is written once, as a literal ``__version__`` in dpsynth/_version.py; pyproject.toml reads it
    from there (so the installed metadata says the same) and states none of its own."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dpsynth._version.__version__"}
    tree = ast.parse((ROOT / "dpsynth" / "_version.py").read_text(encoding="utf-8"))
    (literal,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                  and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
                  and isinstance(node.value, ast.Constant)]
    assert dpsynth.__version__ == literal == metadata.version("dpsynth")
