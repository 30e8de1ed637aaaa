"""No floating-point noise sampler in code that touches private data (DESIGN.md rule 3)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dpsynth"
SCANNED = ["mechanisms", "synth", "marginals", "schema", "privacy"]
FLOAT_SAMPLERS = {
    "normal", "laplace", "gumbel", "standard_normal", "randn", "exponential", "standard_exponential",
    "logistic", "wald", "standard_cauchy", "standard_t", "gauss", "normalvariate", "expovariate",
    "lognormvariate", "normal_", "randn_like",
}


def float_noise_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in FLOAT_SAMPLERS:
                found.append(f"line {node.lineno}: {name}()")
    return found


def test_scanner_catches_float_noise():
    assert float_noise_calls("import numpy as np\nx = np.random.normal(0, 1, 3)\n")
    assert float_noise_calls("y = rng.laplace(x)\n")
    assert float_noise_calls("from random import gauss\nz = gauss(0, 1)\n")
    assert not float_noise_calls("y = rng.integers(0, 3)\nz = rng.choice(4)\n")


def test_no_float_noise_sampler_in_private_code():
    offenders = []
    for folder in SCANNED:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            offenders += [f"{path.relative_to(PACKAGE.parent)} {hit}" for hit in float_noise_calls(path.read_text())]
    assert not offenders, "float noise samplers found:\n" + "\n".join(offenders)
