"""The layers in pyproject.toml's import-linter contracts hold: a violation fails the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_import_contracts_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "lint-imports missing: it is in the test extras (pip install -e '.[test]')"
    r = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def _package_sources():
    import ast

    for path in sorted((ROOT / "hftmem_tui").rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_modules_and_functions_stay_small():
    """No module over 500 lines, no function over 80: one concept a module, one job a function."""
    import ast

    too_big = []
    for path, tree in _package_sources():
        lines = path.read_text().count("\n")
        if lines > 500:
            too_big.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): {length} lines")
    assert not too_big, "\n".join(too_big)


def test_no_private_name_imported_across_modules():
    """A name shared between modules is public: `from x import _y` across modules is not allowed."""
    import ast

    found = []
    for path, tree in _package_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hftmem_tui"):
                found += [f"{path.relative_to(ROOT)}: from {node.module} import {a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "\n".join(found)


def test_no_test_module_imports_another_test_module():
    """Test modules share code through tests/helpers.py and conftest fixtures, never by importing each other
    (a test module's helpers would otherwise be a second helpers module nobody looks for)."""
    import ast

    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
                       if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if isinstance(node, ast.ImportFrom) and node.level:
                found.append(f"{rel}: relative import from {'.' * node.level}{node.module or ''}")
            found += [f"{rel}: imports {m}" for m in modules
                      if m.startswith("tests.") and m.rsplit(".", 1)[-1].startswith("test_")]
    assert not found, "\n".join(found)
