"""No floating-point noise sampler in the code that handles private data (DESIGN.md rule 3).

All privacy noise comes from exact samplers in dpsynth/mechanisms. This scans the syntax tree of
every module under the private-data path and fails on any call to a floating-point sampler,
whatever object it is called on (``np.random.normal``, ``rng.laplace``, ``torch.randn`` ...), and
on the float samplers of the standard ``random`` module, including when imported by name.
Deterministic: no failure probability.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dpsynth"
SCANNED = ["mechanisms", "synth", "marginals", "schema", "privacy"]

# Called as an attribute of anything: np.random.X, rng.X, torch.X, generator.X ...
FLOAT_SAMPLER_ATTRIBUTES = frozenset(
    {
        "normal",
        "laplace",
        "gumbel",
        "standard_normal",
        "randn",
        "exponential",
        "standard_exponential",
        "logistic",
        "wald",
        # the float samplers of Python's random module (random.X or a random.Random instance)
        "gauss",
        "normalvariate",
        "expovariate",
        "lognormvariate",
    }
)
RANDOM_MODULE_SAMPLERS = frozenset({"gauss", "normalvariate", "expovariate", "lognormvariate"})
# Modules whose sampler functions are flagged when imported by name (from X import normal).
SAMPLER_MODULES = ("random", "numpy.random", "torch", "scipy.stats")


def float_noise_calls(source: str, filename: str = "<snippet>") -> list[str]:
    """Every call to a floating-point noise sampler in ``source``, as ``file:line: name``."""
    tree = ast.parse(source, filename=filename)
    imported: dict[str, str] = {}  # local name -> sampler it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(SAMPLER_MODULES):
            for alias in node.names:
                if alias.name in FLOAT_SAMPLER_ATTRIBUTES:
                    imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in FLOAT_SAMPLER_ATTRIBUTES:
            found.append(f"{filename}:{node.lineno}: {ast.unparse(func)}()")
        elif isinstance(func, ast.Name) and func.id in imported:
            found.append(f"{filename}:{node.lineno}: {func.id}() (= {imported[func.id]})")
        elif (
            isinstance(func, ast.Call)
            and isinstance(func.func, ast.Name)
            and func.func.id == "getattr"
            and len(func.args) >= 2
            and isinstance(func.args[1], ast.Constant)
            and func.args[1].value in FLOAT_SAMPLER_ATTRIBUTES
        ):
            found.append(f"{filename}:{node.lineno}: getattr(..., {func.args[1].value!r})()")
    return found


def scanned_files() -> list[Path]:
    files = []
    for sub in SCANNED:
        files.extend(sorted((PACKAGE / sub).rglob("*.py")))
    return files


# --------------------------------------------------------------------------- self-tests


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nx = np.random.normal(0, 1, 3)\n",
        "y = rng.laplace(x)\n",
        "noise = torch.randn(10)\n",
        "g = np.random.default_rng(0).gumbel(size=4)\n",
        "z = self._rng.standard_normal(5)\n",
        "e = gen.exponential(2.0)\n",
        "w = np.random.wald(1, 1)\n",
        "l = rng.logistic()\n",
        "s = gen.standard_exponential(3)\n",
        "import random\nv = random.gauss(0, 1)\n",
        "import random\nv = random.normalvariate(0, 1)\n",
        "import random\nv = random.expovariate(1.0)\n",
        "import random\nv = random.lognormvariate(0, 1)\n",
        "from random import gauss\nv = gauss(0, 1)\n",
        "from numpy.random import laplace as lap\nv = lap(0, 1)\n",
        "v = getattr(np.random, 'normal')(0, 1)\n",
        "def f(data):\n    return data + np.random.normal(scale=2.0, size=data.shape)\n",
    ],
)
def test_scanner_flags_float_noise(snippet):
    assert float_noise_calls(snippet), f"scanner missed: {snippet!r}"


def test_scanner_reports_the_line():
    found = float_noise_calls("a = 1\nb = 2\nx = np.random.normal(0, 1, 3)\n", "m.py")
    assert found == ["m.py:3: np.random.normal()"]


@pytest.mark.parametrize(
    "snippet",
    [
        "x = rng.integers(0, 10)\n",
        "x = random.Random(3).randrange(10)\n",
        "x = np.random.default_rng(0).choice(5)\n",
        "x = _exact.discrete_gaussian(s, r)\n",
        "normal = 3\n",  # a name, not a call
        "x = rng.normal\n",  # an attribute that is not called
        "from random import randrange\nrandrange(5)\n",
    ],
)
def test_scanner_does_not_flag_exact_or_integer_randomness(snippet):
    assert float_noise_calls(snippet) == []


# --------------------------------------------------------------------------- the scan


def test_scan_covers_the_private_data_path():
    files = scanned_files()
    names = {p.relative_to(PACKAGE).as_posix() for p in files}
    # The scan must actually look at the modules that draw noise and spend budget.
    assert {"mechanisms/noise.py", "mechanisms/_exact.py", "mechanisms/gaussian.py", "privacy/accounting.py"} <= names
    # DP category discovery and the schema inference that drives it
    assert {"mechanisms/partition.py", "schema/infer.py", "schema/dp_bins.py"} <= names
    assert any(n.startswith("synth/") for n in names)
    assert any(n.startswith("schema/") for n in names)
    assert any(n.startswith("marginals/") for n in names)


def test_no_float_noise_in_private_data_path():
    found = []
    for path in scanned_files():
        found.extend(float_noise_calls(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent))))
    assert found == [], "floating-point noise sampler(s) found:\n" + "\n".join(found)
