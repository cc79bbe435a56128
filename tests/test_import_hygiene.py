"""Headless layers never pull in Textual or Rich, and the model loads no source at run time.

The same rules are import-linter contracts (pyproject.toml, run by tests/test_architecture.py);
this checks what really lands in sys.modules when each module is imported alone.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import hftmem_tui.demo
import hftmem_tui.feeds
import hftmem_tui.model
import hftmem_tui.probes
import hftmem_tui.sources
import hftmem_tui.watch


def _modules(*packages) -> list[str]:
    return sorted(m.name for pkg in packages for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."))


HEADLESS = _modules(hftmem_tui.sources, hftmem_tui.model, hftmem_tui.feeds, hftmem_tui.demo, hftmem_tui.watch,
                    hftmem_tui.probes) + [
    "hftmem_tui.cli", "hftmem_tui.commands.record", "hftmem_tui.commands.export", "hftmem_tui.commands.watch",
    "hftmem_tui.commands.allocs"]


def _loaded_after_import(module: str, prefixes: tuple[str, ...]) -> list[str]:
    code = (f"import sys, {module}; "
            f"print(','.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [m for m in r.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_does_not_import_textual(module):
    assert _loaded_after_import(module, ("textual", "rich")) == []


@pytest.mark.parametrize("module", _modules(hftmem_tui.model))
def test_model_module_loads_no_source(module):
    """The model is pure: importing it loads nothing of sources/ or feeds/ (types are annotations only)."""
    assert _loaded_after_import(module, ("hftmem_tui.sources", "hftmem_tui.feeds")) == []
