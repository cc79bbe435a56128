"""hftmem_tui/services.py: a recording's services refuse every request with its one refusal; the
live memory reader reads and resolves on the real demo engine, zero-stop."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import subprocess
import sys

import pytest

from hftmem_tui.errors import SourceError, SymbolNotFound, UnmappedAddress
from hftmem_tui.feeds.recording import RecordedFeed
from hftmem_tui.services import (
    REFUSALS,
    LiveServices,
    MemoryReader,
    NotLive,
    RecordedServices,
    offered,
)
from hftmem_tui.sources.symbols import InvalidExpression, SymbolTable
from tests.conftest import FIXTURES, proc_status

RECORDING = FIXTURES / "recordings" / "leak_40s.jsonl"

REQUESTS = {  # every request of TargetServices, and the feature a recording names when it refuses it
    "memory_reader": ((), "memory"),
    "watch_controller": ((), "watch"),
    "first_hit_watch": (("hftmem_engine_stats.ticks",), "watch"),
    "alloc_probes": ((), "allocs"),
    "facts_reader": ((), "audit"),
    "engine_control": ((), "engine"),
}


def recorded() -> RecordedServices:
    return RecordedServices(RecordedFeed(str(RECORDING)).start())


@pytest.mark.parametrize("request_name", sorted(REQUESTS))
def test_a_recording_refuses_every_request_with_its_refusal(request_name):
    """Each request raises NotLive (a SourceError: the CLI and the panes say it in one line), with the
    feature's line of REFUSALS; nothing is asked of the recorded pid."""
    services = recorded()
    args, feature = REQUESTS[request_name]
    with pytest.raises(NotLive) as info:
        getattr(services, request_name)(*args)
    assert isinstance(info.value, SourceError)
    assert info.value.feature == feature and str(info.value) == REFUSALS[feature]
    assert "recording" in str(info.value)
    assert not services.live and services.pid == services.target.pid > 0


def test_every_request_is_covered_and_refused_in_one_place():
    """The table above names every request (a new one must be refused too), and RecordedServices has
    one place that raises."""
    public = {n for n in vars(LiveServices) if not n.startswith("_") and callable(getattr(LiveServices, n))}
    assert public == set(REQUESTS)
    import inspect

    import hftmem_tui.services as services

    source = inspect.getsource(services)
    assert source.count("raise NotLive(") == 1


def test_offered_gives_the_service_or_the_refusal(engine):
    """What the App hands a pane: the live service, or the recording's refusal in its place."""
    pid = engine()
    refusal = offered(recorded().memory_reader)
    assert isinstance(refusal, NotLive) and refusal.feature == "memory"
    live = LiveServices(dataclasses.replace(recorded().target, pid=pid))
    assert live.live and live.pid == pid
    reader = offered(live.memory_reader)
    assert isinstance(reader, MemoryReader) and reader.pid == pid
    reader.close()


def test_live_memory_reader_on_the_demo_engine(engine):
    """locate() resolves a global and a member on the ELF file (as gdb's x/ would), read() copies the
    bytes while the engine runs; refusals and unmapped addresses are typed errors."""
    pid = engine()
    with SymbolTable.for_pid(pid) as table:
        expected = table.runtime_address(table.resolve("hftmem_engine_stats"), pid)
    reader = MemoryReader(pid)
    try:
        where = reader.locate("hftmem_engine_stats")
        assert (where.address, where.symbol, where.symbol_start) == (expected, "hftmem_engine_stats", expected)
        assert reader.read(where.address, 8) == b"HFTMEM01"  # the stats block's magic
        member = reader.locate("hftmem_engine_stats.ticks")
        assert member.symbol == "hftmem_engine_stats" and member.symbol_start == expected
        assert member.address > expected
        with pytest.raises(InvalidExpression):
            reader.check("hftmem_engine_stats.ticks = 0")
        with pytest.raises(SymbolNotFound):
            reader.locate("hftmem_no_such_symbol")
        with pytest.raises(UnmappedAddress):
            reader.read(0x10, 8)
    finally:
        reader.close()
        reader.close()  # idempotent
    st = proc_status(pid)
    assert st["TracerPid"] == "0" and st["State"][0] in "RS"  # zero-stop: never traced, never stopped


def test_memory_reader_reads_this_process_without_an_engine():
    """The reader on any process: the bytes of a buffer of our own, read with process_vm_readv."""
    buf = ctypes.create_string_buffer(b"hftmem-services\xdd\xdd", 17)
    reader = MemoryReader(os.getpid())
    assert reader.read(ctypes.addressof(buf), 17) == b"hftmem-services\xdd\xdd"
    reader.close()  # no symbol was asked for: no gdb to stop


def test_services_module_loads_no_textual():
    """The services layer is headless (the App is above it): importing it pulls in no Textual or Rich."""
    code = "import sys, hftmem_tui.services; print(sorted(m for m in sys.modules if m.startswith(('textual', 'rich'))))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
