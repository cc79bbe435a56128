"""Separate debug info and containers, on a C++ program built here, with gdb's answers as the oracle.

The program is built ``g++ -O2 -g``; its debug info is split off as distributions do it
(``objcopy --only-keep-debug`` + ``strip --strip-debug`` + ``objcopy --add-gnu-debuglink``) and
found (a) beside the file through the debuglink, (b) at a build-id path of a temporary
debug-file directory; (c) it runs inside ``unshare --mount --pid --fork`` from a tmpfs only that
namespace sees, with a decoy program at the same path on the host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hftmem_tui.errors import NoDebugInfo
from hftmem_tui.sources.codemap import CodeMap
from hftmem_tui.sources.debuginfo import debuglink_of, find_debug_file
from hftmem_tui.sources.elf import read_elf_info
from hftmem_tui.sources.gdb.preflight import check_attach
from hftmem_tui.sources.process import die_with_parent
from hftmem_tui.sources.symbols import SymbolTable, exe_path_of, load_base
from tests.conftest import run_cli
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("g++") and shutil.which("gdb") and shutil.which("objcopy")),
                                reason="needs g++, gdb and binutils")

PROGRAM = r"""
#include <unistd.h>
struct Stats { long orders; long fills; };
Stats g_stats;
__attribute__((noinline)) void on_fill(long n) {
    g_stats.fills += n;
    asm volatile("" ::: "memory");
}
int main() { for (;;) { on_fill(1); usleep(1000); } }
"""
DECOY = r"""
#include <unistd.h>
char pad[4096] = {1};
long other_global;
__attribute__((noinline)) void decoy_function() { other_global++; asm volatile("" ::: "memory"); }
int main() { for (;;) { decoy_function(); usleep(1000); } }
"""


def _build(src: str, out: Path, flags: tuple[str, ...] = ("-O2", "-g")) -> Path:
    cpp = out.with_suffix(".cpp")
    cpp.write_text(src)
    subprocess.run(["g++", *flags, "-o", str(out), str(cpp)], check=True)
    return out


def _split(exe: Path, debug: Path) -> None:
    """Split the debug info of ``exe`` into ``debug`` the way distributions ship it."""
    subprocess.run(["objcopy", "--only-keep-debug", str(exe), str(debug)], check=True)
    subprocess.run(["strip", "--strip-debug", str(exe)], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(exe)], cwd=debug.parent, check=True)


def _gdb(exe: str, *commands: str, debug_dir: str | None = None) -> str:
    args = ["gdb", "-nx", "-batch"]
    if debug_dir is not None:
        args += ["-iex", f"set debug-file-directory {debug_dir}"]
    for c in commands:
        args += ["-ex", c]
    return subprocess.run([*args, exe], capture_output=True, text=True, timeout=60).stdout


def _gdb_line(exe: str, vaddr: int, debug_dir: str | None = None) -> tuple[str, int]:
    out = _gdb(exe, f"info line *{vaddr:#x}", debug_dir=debug_dir)
    m = re.search(r'Line (\d+) of "([^"]+)"', out)
    assert m, out
    return os.path.basename(m.group(2)), int(m.group(1))


def _nm(exe: str, name: str) -> int:
    out = subprocess.run(["nm", exe], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(" " + name))


@pytest.fixture
def split(tmp_path, monkeypatch):
    """(stripped exe, its debug file kept aside, its running pid); the symbol cache is this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "bin").mkdir()
    exe = _build(PROGRAM, tmp_path / "bin" / "prog")
    store = tmp_path / "store"
    store.mkdir()
    _split(exe, store / "prog.debug")
    proc = subprocess.Popen([str(exe)], preexec_fn=die_with_parent)
    try:
        wait_for(lambda: str(exe) in Path(f"/proc/{proc.pid}/maps").read_text(), what="the program mapped")
        yield exe, store / "prog.debug", proc.pid
    finally:
        proc.kill()
        proc.wait()


def _frame_line(pid: int, exe: Path, debug_dirs=None) -> tuple[str | None, str | None, int | None]:
    addr = load_base(pid, str(exe)) + _nm(str(exe), "_Z7on_filll") - read_elf_info(str(exe)).first_load_vaddr
    with CodeMap(pid, debug_dirs=debug_dirs) as code:
        f = code.frame(addr)
    return f.function, f.file and os.path.basename(f.file), f.line


def test_debuglink_beside_the_file_and_the_cache_retries(split):
    exe, debug, pid = split
    env = {**os.environ}
    # Before the debug file is installed: refused, as gdb has no type either.
    r = run_cli("dump", str(pid), "g_stats.fills", env=env)
    assert r.returncode != 0 and "no debug info" in r.stderr, r
    assert "compiled without debugging" in _gdb(str(exe), "info address g_stats")
    assert _frame_line(pid, exe, debug_dirs=())[2] is None
    shutil.copy(debug, exe.parent / "prog.debug")
    assert find_debug_file(str(exe), ()) == str(exe.parent / "prog.debug")
    # Installed: the cached "no debug info" answer is not reused; dump finds what gdb finds.
    r = run_cli("dump", str(pid), "g_stats.fills", env=env)
    assert r.returncode == 0, r.stderr
    gdb_addr = int(re.search(r"static storage at address (0x[0-9a-f]+)",
                             _gdb(str(exe), "info address g_stats")).group(1), 16)
    with SymbolTable(str(exe)) as table:
        assert table.resolve_expr("g_stats.fills").address == gdb_addr + 8
    vaddr = _nm(str(exe), "_Z7on_filll")
    assert _frame_line(pid, exe, debug_dirs=()) == ("on_fill(long)", *_gdb_line(str(exe), vaddr))
    check_attach(pid)  # the gdb backend accepts the separate debug info


def test_debuglink_crc_is_checked(split, tmp_path):
    exe, debug, pid = split
    other = _build(PROGRAM.replace("n;", "2 * n;"), tmp_path / "other")
    _split(other, tmp_path / "other.debug")
    shutil.copy(tmp_path / "other.debug", exe.parent / debuglink_of(str(exe))[0])  # same name, other file
    assert find_debug_file(str(exe), ()) is None
    with pytest.raises(NoDebugInfo):
        check_attach(pid)


def test_build_id_path_in_a_debug_file_directory(split, tmp_path):
    exe, debug, pid = split
    ddir = tmp_path / "debugdir"
    bid = read_elf_info(str(exe)).build_id
    assert find_debug_file(str(exe), (str(ddir),)) is None
    with SymbolTable(str(exe), debug_dirs=(str(ddir),)) as table, pytest.raises(NoDebugInfo):
        table.resolve_expr("g_stats.fills")
    target = ddir / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
    target.parent.mkdir(parents=True)
    shutil.copy(debug, target)
    assert find_debug_file(str(exe), (str(ddir),)) == str(target)
    out = _gdb(str(exe), "info address g_stats", debug_dir=str(ddir))
    gdb_addr = int(re.search(r"static storage at address (0x[0-9a-f]+)", out).group(1), 16)
    with SymbolTable(str(exe), debug_dirs=(str(ddir),)) as table:
        hit = table.resolve_expr("g_stats.fills")
        assert (hit.address, hit.type_name) == (gdb_addr + 8, "long")
    vaddr = _nm(str(exe), "_Z7on_filll")
    want = ("on_fill(long)", *_gdb_line(str(exe), vaddr, debug_dir=str(ddir)))
    assert _frame_line(pid, exe, debug_dirs=(str(ddir),)) == want
    # A debug file of another build at that build-id path is not used (its build-id differs).
    other = _build(PROGRAM.replace("n;", "2 * n;"), tmp_path / "other")
    assert read_elf_info(str(other)).build_id != bid
    shutil.copy(other, target)
    assert find_debug_file(str(exe), (str(ddir),)) is None


def _child_of(pid: int) -> int | None:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_container_files_read_through_proc_root_never_the_decoy(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real = _build(PROGRAM, tmp_path / "real")
    mnt = tmp_path / "x"
    mnt.mkdir()
    inside = mnt / "prog"
    script = f"mount -t tmpfs none {mnt} && cp {real} {inside} && exec {inside}"
    ns = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script],
                          preexec_fn=die_with_parent)
    try:
        def started() -> int | None:
            kid = _child_of(ns.pid)
            try:
                return kid if kid and os.readlink(f"/proc/{kid}/exe") == str(inside) else None
            except OSError:
                return None
        pid = wait_for(started, what="the program running inside the namespace")
        assert not inside.exists()  # only the namespace sees it
        shutil.copy(_build(DECOY, tmp_path / "decoy"), inside)  # a different file at that path here
        path = exe_path_of(pid)
        assert path == f"/proc/{pid}/root{inside}", path
        vaddr = _nm(str(real), "_Z7on_filll")
        addr = load_base(pid, path) + vaddr - read_elf_info(path).first_load_vaddr
        with CodeMap(pid) as code:
            f = code.frame(addr)
        assert (f.function, os.path.basename(f.file or ""), f.line) == ("on_fill(long)", *_gdb_line(str(real), vaddr))
        with SymbolTable.for_pid(pid) as table:
            assert table.resolve("g_stats").address == _nm(str(real), "g_stats")
        assert _nm(str(inside), "other_global")  # the decoy really is another program
    finally:
        inner = _child_of(ns.pid)
        ns.kill()  # --kill-child: the program dies with it
        ns.wait()
        if inner:
            wait_for(lambda: not os.path.exists(f"/proc/{inner}"), what="the program gone")
