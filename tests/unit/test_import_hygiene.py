"""sources/ and model/ must never pull in Textual or Rich: they run headless (CLI, record, export)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import hftmem_tui.model
import hftmem_tui.sources

HEADLESS = sorted(
    f"{pkg.__name__}.{m.name}"
    for pkg in (hftmem_tui.sources, hftmem_tui.model)
    for m in pkgutil.iter_modules(pkg.__path__)
) + ["hftmem_tui.cli", "hftmem_tui.recorder", "hftmem_tui.exporter",
     "hftmem_tui.demo.chapters", "hftmem_tui.demo.progress", "hftmem_tui.demo.script",
     "hftmem_tui.demo.tour"]


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_does_not_import_textual(module):
    code = (f"import sys, {module}; "
            "bad = [m for m in ('textual', 'rich') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{module} imports {r.stdout.strip() or r.stderr}"
