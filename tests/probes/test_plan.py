"""Which allocator entry points get a probe: the ones the target's dynamic linker really binds."""

from __future__ import annotations

import os
import subprocess

import pytest

from hftmem_tui.errors import NoSuchProcess
from hftmem_tui.probes import ALLOC_FUNCTIONS, plan_alloc_probes
from hftmem_tui.sources.perf.uprobes import probe_offset
from tests.helpers import wait_for


def test_engine_operators_are_probed_in_the_executable_libc_functions_in_libc(engine):
    """The demo engine replaces operator new/delete (to count hot-path allocations): probe its own."""
    pid = engine()
    specs, notes = plan_alloc_probes(pid)
    exe = os.readlink(f"/proc/{pid}/exe")
    by_function = {}
    for s in specs:
        by_function.setdefault(s.function, set()).add(s.where)
        assert probe_offset(s.path, s.symbol) == s.offset
    assert {f: by_function.get(f) for f in ("malloc", "free", "calloc", "realloc")} == dict.fromkeys(
        ("malloc", "free", "calloc", "realloc"), {"libc"})
    assert by_function["new"] == {"executable"} and by_function["delete"] == {"executable"}
    assert all(s.path == exe for s in specs if s.where == "executable")
    assert set(by_function) <= set(ALLOC_FUNCTIONS)
    assert all("\n" not in n for n in notes)


def test_a_c_program_gets_one_note_per_operator():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        wait_for(lambda: "libc" in open(f"/proc/{proc.pid}/maps").read(), 5, "libc mapped in sleep")
        specs, notes = plan_alloc_probes(proc.pid)
        assert {s.function for s in specs} == {"malloc", "free", "calloc", "realloc"}
        assert notes == [f"no libstdc++ mapped: operator {f} not probed" for f in ("new", "new[]", "delete", "delete[]")]
    finally:
        proc.kill()
        proc.wait()


def test_no_such_process():
    with pytest.raises(NoSuchProcess):
        plan_alloc_probes(99999999)
