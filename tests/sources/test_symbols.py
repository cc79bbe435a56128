"""Symbols from gdb on the FILE + zero-stop reads, against a live target we compile here.

The target is our own small C++ program (the demo engine is built elsewhere): a global
struct with the "HFTMEM01" magic, a char[8] followed by an int64, an array, a counter a
thread keeps incrementing, and a 4 MiB anonymous mapping. A monitor thread samples the
target's /proc status all along: it must never be traced or stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hftmem_tui.errors import (
    NoDebugInfo,
    NoSuchProcess,
    SymbolNotFound,
    ToolMissing,
    UnmappedAddress,
)
from hftmem_tui.model.decode import decode
from hftmem_tui.sources import symbols as symbols_mod
from hftmem_tui.sources.gdb.file_session import FileGdbSession
from hftmem_tui.sources.memory import format_x, read_memory
from hftmem_tui.sources.symbols import (
    InvalidExpression,
    SymbolTable,
    load_base,
    read_elf_info,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(
    not (shutil.which("g++") and shutil.which("gdb") and shutil.which("strip") and shutil.which("nm")),
    reason="needs g++, gdb, strip and nm",
)

TARGET_CPP = r"""
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

struct Quote { char symbol[8]; int64_t price; uint32_t qty; };
struct TargetStats {
  char magic[8];
  uint64_t version;
  Quote last;
  int32_t levels[6];
  uint64_t counter;
  uint64_t hist[16];
};
TargetStats hftmem_test_stats = {
  {'H','F','T','M','E','M','0','1'}, 1, {{'A','A','P','L',0,0,0,0}, -12345, 100},
  {-1, 2, -3, 4, -5, 6}, 0, {1, 2, 3}};
char hftmem_test_name[16] = "zero-stop";

int main() {
  std::printf("{\"magic\":%zu,\"version\":%zu,\"last\":%zu,\"last.symbol\":%zu,\"last.price\":%zu,"
              "\"last.qty\":%zu,\"levels\":%zu,\"counter\":%zu,\"hist\":%zu,\"size\":%zu,",
              offsetof(TargetStats, magic), offsetof(TargetStats, version), offsetof(TargetStats, last),
              offsetof(TargetStats, last) + offsetof(Quote, symbol), offsetof(TargetStats, last) + offsetof(Quote, price),
              offsetof(TargetStats, last) + offsetof(Quote, qty), offsetof(TargetStats, levels),
              offsetof(TargetStats, counter), offsetof(TargetStats, hist), sizeof(TargetStats));
  const size_t n = 4u << 20;
  unsigned char* anon = static_cast<unsigned char*>(
      mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (size_t i = 0; i < n; i++) anon[i] = static_cast<unsigned char>(i * 7);
  std::printf("\"anon\":%lu,\"anon_len\":%zu}\n", reinterpret_cast<unsigned long>(anon), n);
  std::fflush(stdout);
  std::thread([] {
    const timespec nap{0, 50000};
    for (;;) {
      __atomic_store_n(&hftmem_test_stats.counter, hftmem_test_stats.counter + 1, __ATOMIC_RELAXED);
      nanosleep(&nap, nullptr);
    }
  }).detach();
  for (;;) pause();
}
"""

STRUCT = "hftmem_test_stats"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The target compiled three ways: -g (PIE), -g0, and a stripped copy of -g."""
    d = tmp_path_factory.mktemp("target")
    src = d / "target.cpp"
    src.write_text(TARGET_CPP)
    exe, g0, stripped = d / "target", d / "target_g0", d / "target_stripped"
    common = ["g++", "-std=c++17", "-O2", "-fno-omit-frame-pointer", "-pthread", str(src)]
    procs = [
        subprocess.Popen([*common, "-g", "-o", str(exe)]),
        subprocess.Popen([*common, "-g0", "-o", str(g0)]),
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    shutil.copy(exe, stripped)
    subprocess.run(["strip", str(stripped)], check=True, timeout=30)
    return {"exe": str(exe), "g0": str(g0), "stripped": str(stripped), "dir": d}


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the symbol cache of these tests out of the user's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


class StatusMonitor(threading.Thread):
    """Samples TracerPid and State of every thread of the target every millisecond."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = 0
        self.bad: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                tids = os.listdir(f"/proc/{self.pid}/task")
            except OSError:
                return
            for tid in tids:
                try:
                    text = Path(f"/proc/{self.pid}/task/{tid}/status").read_text()
                except OSError:
                    continue
                state = re.search(r"^State:\s+(\S)", text, re.M).group(1)
                tracer = int(re.search(r"^TracerPid:\s+(\d+)", text, re.M).group(1))
                if state in "tT" or tracer != 0:
                    self.bad.append(f"tid {tid}: State {state} TracerPid {tracer}")
            self.samples += 1
            time.sleep(0.001)


@pytest.fixture(scope="module")
def target(build):
    proc = subprocess.Popen([build["exe"]], stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    monitor = StatusMonitor(proc.pid)
    monitor.start()
    yield {"pid": proc.pid, "proc": proc, "info": info, "monitor": monitor}
    monitor.stop.set()
    monitor.join(timeout=2)
    proc.kill()
    proc.wait(timeout=5)


@pytest.fixture(scope="module")
def table(build):
    with SymbolTable(build["exe"]) as t:  # one gdb for the whole module
        yield t


def nm_address(exe: str, name: str) -> tuple[int, int]:
    out = subprocess.run(["nm", "-S", exe], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[0], 16), int(parts[1], 16)
    raise AssertionError(f"{name} not in nm output")


def maps_base(pid: int, exe: str) -> int:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5] == exe and int(parts[2], 16) == 0:
            return int(parts[0].split("-")[0], 16)
    raise AssertionError("exe not mapped")


def test_addresses_match_nm_and_maps(table, target, build):
    sym = table.resolve(STRUCT)
    nm_addr, nm_size = nm_address(build["exe"], STRUCT)
    assert (sym.address, sym.size, sym.type_name) == (nm_addr, nm_size, "TargetStats")
    assert read_elf_info(build["exe"]).is_pie
    base = maps_base(target["pid"], build["exe"])
    assert load_base(target["pid"], build["exe"]) == base
    assert table.runtime_address(sym, target["pid"]) == base + nm_addr


def test_layout_offsets_equal_offsetof(table, target):
    lay = table.layout(STRUCT)
    info = target["info"]
    for path in ("magic", "version", "last", "last.symbol", "last.price", "last.qty", "levels", "counter", "hist"):
        assert lay.field(path).offset == info[path], path
    assert lay.size == info["size"]
    hist = lay.field("hist")
    assert (hist.dims, hist.elem_size, hist.elem_type) == ((16,), 8, "uint64_t")
    assert lay.field("last.symbol").type_name == "char [8]"


def test_read_struct_and_decode(table, target):
    pid = target["pid"]
    sym = table.resolve(STRUCT)
    data = read_memory(pid, table.runtime_address(sym, pid), sym.size)
    assert data[:8] == b"HFTMEM01"
    values = decode(table.layout(STRUCT), data)
    assert values["last.symbol"] == b"AAPL\0\0\0\0"
    assert values["last.price"] == -12345
    assert values["levels"] == [-1, 2, -3, 4, -5, 6]
    assert values["hist"][:4] == [1, 2, 3, 0]


def test_resolve_expr_and_live_counter(table, target):
    pid = target["pid"]
    sym = table.resolve(STRUCT)
    counter = table.resolve_expr(f"{STRUCT}.counter")
    assert counter.address == sym.address + target["info"]["counter"] and counter.size == 8
    price = table.resolve_expr(f"{STRUCT}.last.price")
    assert (price.address - sym.address, price.type_name) == (target["info"]["last.price"], "int64_t")
    assert table.resolve_expr(f"{STRUCT}.hist[3]").address == sym.address + target["info"]["hist"] + 24
    addr = table.runtime_address(counter, pid)
    first = int.from_bytes(read_memory(pid, addr, 8), "little")
    assert first > 0
    wait_for(lambda: int.from_bytes(read_memory(pid, addr, 8), "little") > first, 5, "the target's counter to move")


def test_user_expressions_are_checked_before_gdb(table):
    for bad in (f"{STRUCT}.counter = 1", f"{STRUCT}.counter++", "abort()", "$pc", f"*{STRUCT}"):
        with pytest.raises(InvalidExpression):
            table.resolve_expr(bad)
    with pytest.raises(SymbolNotFound, match="no symbol 'nosuch_symbol'"):
        table.resolve("nosuch_symbol")
    with pytest.raises(SymbolNotFound, match="out of range"):
        table.resolve_expr(f"{STRUCT}.hist[16]")


def test_bad_addresses_and_dead_pid(target, build):
    with pytest.raises(UnmappedAddress):
        read_memory(target["pid"], 0x10, 8)
    short = subprocess.Popen([build["exe"]], stdout=subprocess.DEVNULL)
    short.kill()
    short.wait()
    with pytest.raises(NoSuchProcess):
        read_memory(short.pid, 0x1000, 8)
    with pytest.raises(NoSuchProcess):
        load_base(short.pid)


def test_one_mib_from_anonymous_mapping(target):
    info = target["info"]
    data = read_memory(target["pid"], info["anon"], 1 << 20)
    assert len(data) == 1 << 20
    assert data == bytes((i * 7) & 0xFF for i in range(1 << 20))
    whole = read_memory(target["pid"], info["anon"], info["anon_len"])  # 4 chunks of 1 MiB
    assert whole[(3 << 20) + 5] == (((3 << 20) + 5) * 7) & 0xFF
    with pytest.raises(UnmappedAddress) as exc:  # runs off the end of the mapping
        read_memory(target["pid"], info["anon"] + info["anon_len"] - 4096, 2 * 4096)
    assert exc.value.first_unreadable == info["anon"] + info["anon_len"]


def test_format_x_matches_gdb_on_the_file(table, target, build):
    """Bytes read from the live process, formatted at link addresses == gdb x/ on the file."""
    pid = target["pid"]
    sym = table.resolve(STRUCT)
    name = table.resolve("hftmem_test_name")
    data = read_memory(pid, table.runtime_address(sym, pid), 32)  # constant part of the struct
    text = read_memory(pid, table.runtime_address(name, pid), 16)
    cmds = [f"x/16xb &{STRUCT}", f"x/4xw &{STRUCT}", f"x/2xg &{STRUCT}", "x/2s &hftmem_test_name"]
    argv = ["gdb", "--nx", "-batch", "-iex", "set debuginfod enabled off"]
    for c in cmds:
        argv += ["-ex", c]
    out = subprocess.run([*argv, build["exe"]], capture_output=True, text=True, timeout=60).stdout.splitlines()
    label = (STRUCT, sym.address)
    ours = (
        format_x(data[:16], sym.address, "xb", symbol=label)
        + format_x(data[:16], sym.address, "xw", symbol=label)
        + format_x(data[:16], sym.address, "xg", symbol=label)
        + format_x(text[:11], name.address, "s", symbol=("hftmem_test_name", name.address))
    )
    assert ours == out


def test_no_debug_info_still_gives_addresses(build):
    nm_addr, nm_size = nm_address(build["g0"], STRUCT)
    with SymbolTable(build["g0"]) as t:
        sym = t.resolve(STRUCT)
        assert (sym.address, sym.size, sym.type_name) == (nm_addr, nm_size, None)
        with pytest.raises(NoDebugInfo, match="no debug info"):
            t.layout(STRUCT)
        with pytest.raises(NoDebugInfo):
            t.resolve_expr(f"{STRUCT}.counter")
        with pytest.raises(SymbolNotFound):
            t.resolve("nosuch_symbol")
    with SymbolTable(build["stripped"]) as t:
        with pytest.raises(NoDebugInfo, match="stripped"):
            t.resolve(STRUCT)


def test_second_run_uses_disk_cache_without_gdb(table, build):
    table.resolve(STRUCT)
    table.layout(STRUCT)
    files = list(symbols_mod.cache_dir().glob("build-*.json"))
    assert files, "no cache file written"
    symbols_mod._MEMORY_CACHE.clear()  # a fresh process: only the disk cache is left
    with SymbolTable(build["exe"]) as again:
        assert again.resolve(STRUCT) == table.resolve(STRUCT)
        assert again.layout(STRUCT) == table.layout(STRUCT)
        assert again.gdb_starts == 0


def test_gdb_session_never_attaches_and_reports_missing_gdb(build):
    with FileGdbSession(build["exe"], timeout=20) as gdb:
        for cmd in ("-target-attach 1", '-interpreter-exec console "attach 1"', "-exec-run"):
            with pytest.raises(ValueError):
                gdb.request(cmd)
        answers = [gdb.evaluate(f"sizeof({STRUCT}) + {i}") for i in range(20)]  # tokens stay in step
        assert answers == [str(int(answers[0]) + i) for i in range(20)]
    with pytest.raises(ToolMissing, match="gdb"):
        FileGdbSession(gdb="gdb-not-installed-here")


def test_zz_target_was_never_stopped_or_traced(target):
    """Runs last in this module: every sample of every thread stayed running and untraced."""
    monitor = target["monitor"]
    assert monitor.is_alive() and monitor.samples > 10
    assert monitor.bad == []
    assert target["proc"].poll() is None
