"""``dpsynth.synth._pgm`` is the one module that uses mbi, and it refuses an mbi it was not written for.

The fakes (another version, a function gone, a parameter renamed) are monkeypatched here only.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

import dpsynth
from dpsynth.exceptions import DPSynthError, InternalError
from dpsynth.synth import _pgm


@pytest.fixture(autouse=True)
def _fresh_check() -> Iterator[None]:
    """Each test checks anew; the next user of ``_pgm`` checks the real mbi again."""
    _pgm.require_mbi.cache_clear()
    yield
    _pgm.require_mbi.cache_clear()


def test_the_installed_mbi_passes() -> None:
    _pgm.require_mbi()
    assert _pgm.make_domain(["a", "b"], [2, 3]).shape == (2, 3)


@pytest.mark.parametrize("version", ["2.1.0", "1.9.9", "3.0"])
def test_another_mbi_version_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: version if name == "mbi" else real(name))
    with pytest.raises(_pgm.MbiChangedError, match=rf"mbi changed upstream: version {version} is installed; "
                       r".*mbi >=2\.0,<2\.1"):
        _pgm.require_mbi()
    with pytest.raises(_pgm.MbiChangedError):
        _pgm.make_domain(["a"], [2])  # the first use in every fit checks


def test_a_function_gone_upstream_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from mbi import estimation

    monkeypatch.delattr(estimation.Estimator, "_oracle")  # MirrorDescent inherits it
    with pytest.raises(_pgm.MbiChangedError, match=r"mbi\.estimation\.MirrorDescent\._oracle is gone"):
        _pgm.require_mbi()


def test_a_parameter_renamed_upstream_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from mbi import estimation

    def estimate(self: object, domain: object, measurements: object, *, total: float = 0.0, iters: int = 1,
                 tol: float = 0.0, warm_start: object = None) -> None:
        raise AssertionError("not called")

    monkeypatch.setattr(estimation.MirrorDescent, "estimate", estimate)
    with pytest.raises(_pgm.MbiChangedError, match=r"mbi\.estimation\.MirrorDescent\.estimate no longer takes "
                       r"known_total"):
        _pgm.estimate_model(_pgm.make_domain(["a"], [2]), [], iters=1)


def test_the_error_is_dpsynths_internal_error() -> None:
    assert issubclass(_pgm.MbiChangedError, InternalError)
    assert issubclass(_pgm.MbiChangedError, DPSynthError)


def test_the_declared_range_is_the_checked_one() -> None:
    """pyproject.toml's pin of mbi and ``MBI_VERSIONS`` say the same."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    (pin,) = [r for r in pyproject["project"]["dependencies"] if re.match(r"mbi\b", r)]
    low, high = (".".join(map(str, v)) for v in _pgm.MBI_VERSIONS)
    assert pin.replace(" ", "") == f"mbi>={low},<{high}"


def test_no_other_module_imports_mbi() -> None:
    root = Path(dpsynth.__file__).parent
    users = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "mbi" or n.startswith("mbi.") for n in names):
                users.append(path.relative_to(root).as_posix())
    assert sorted(set(users)) == ["synth/_pgm.py"]
