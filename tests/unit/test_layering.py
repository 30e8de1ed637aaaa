"""The layering of DESIGN.md, enforced: the import contracts of ``.importlinter`` hold, and no
module imports a private name (``_name``, or anything from a ``_module``) of another subpackage.

Top-level private modules (``dpsynth._validation``, ``dpsynth._limits``, ``dpsynth._threads``, …)
are project-wide helpers, importable from everywhere; a subpackage's private names are its own.
Nothing is on an allow-list: a private name another package needs becomes public where it lives.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dpsynth"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _subpackage(module: str) -> str | None:
    """``dpsynth.x`` for a module inside the subpackage ``dpsynth/x/``; None for a top-level module."""
    parts = module.split(".")
    if len(parts) < 2 or not (PACKAGE / parts[1]).is_dir():
        return None
    return ".".join(parts[:2])


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_part(module: str) -> str | None:
    """The first private component of ``module`` below its subpackage (``dpsynth.x._y`` → ``_y``)."""
    return next((p for p in module.split(".")[2:] if _is_private(p)), None)


def private_imports(path: Path) -> list[str]:
    """Every import in ``path`` of a private name or module of another dpsynth subpackage."""
    importer = _module_name(path)
    home = _subpackage(importer)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            targets = [(_resolve(importer, path.name == "__init__.py", node), [a.name for a in node.names])]
        elif isinstance(node, ast.Import):
            targets = [(a.name, []) for a in node.names]
        else:
            continue
        for module, names in targets:
            owner = _subpackage(module) if module.startswith("dpsynth.") else None
            if owner is None or owner == home:
                continue  # outside dpsynth, a top-level module (a project-wide helper), or its own subpackage
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            private = _private_part(module)
            if private:
                found.append(f"{where}: {importer} imports the private module {module} ({private})")
            found += [f"{where}: {importer} imports the private name {n} from {module}"
                      for n in names if _is_private(n)]
    return found


def test_no_module_imports_a_private_name_of_another_subpackage():
    found = [f for path in sorted(PACKAGE.rglob("*.py")) for f in private_imports(path)]
    assert not found, "private names imported across subpackages (make them public where they live):\n" + \
        "\n".join(found)


def test_the_ban_sees_the_forms_of_import(tmp_path, monkeypatch):
    """The checker itself: absolute, relative and plain imports of private names and modules."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "dpsynth")
    for sub in ("a", "b"):
        (tmp_path / "dpsynth" / sub).mkdir(parents=True)
        (tmp_path / "dpsynth" / sub / "__init__.py").write_text("")
    module = tmp_path / "dpsynth" / "a" / "m.py"
    module.write_text(
        "from dpsynth.b.x import _hidden, shown\n"          # a private name of another subpackage
        "from dpsynth.b._impl import thing\n"               # a private module of another subpackage
        "import dpsynth.b._impl\n"
        "from ..b.x import _relative\n"                     # relative, resolved to dpsynth.b.x
        "from dpsynth.a._own import _mine\n"                # its own subpackage: allowed
        "from dpsynth._validation import positive_int\n"    # a top-level helper: allowed
        "from dpsynth import __version__\n"                 # a dunder is not private
        "from dpsynth.b import _x\n")                       # a private submodule or name of dpsynth.b
    found = private_imports(module)
    assert [f.split(": ", 1)[1] for f in found] == [
        "dpsynth.a.m imports the private name _hidden from dpsynth.b.x",
        "dpsynth.a.m imports the private module dpsynth.b._impl (_impl)",
        "dpsynth.a.m imports the private module dpsynth.b._impl (_impl)",
        "dpsynth.a.m imports the private name _relative from dpsynth.b.x",
        "dpsynth.a.m imports the private name _x from dpsynth.b",
    ]


@pytest.mark.skipif(importlib.util.find_spec("importlinter") is None,
                    reason="import-linter is not installed (pip install 'dpsynth[dev]'): the import contracts of "
                           ".importlinter are not checked here")
def test_the_import_contracts_hold(capsys):
    """The contracts of ``.importlinter`` (synth → mechanisms → privacy; release → (audit, pii,
    quality); nothing imports dpsynth.cli), as ``lint-imports`` checks them."""
    from importlinter.application.use_cases import lint_imports
    from importlinter.configuration import configure

    configure()
    config = (ROOT / ".importlinter").read_text(encoding="utf-8")
    for contract in ("noise", "release", "cli"):
        assert f"[importlinter:contract:{contract}]" in config
    kept = lint_imports(config_filename=str(ROOT / ".importlinter"), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, f"an import contract of .importlinter is broken:\n{report}"
    assert " 0 broken." in report
