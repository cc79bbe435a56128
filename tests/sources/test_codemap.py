"""CodeMap reads the very file a process maps: never another file put at the same path.

A program built here keeps running while its file is replaced on disk by a different program
(what an upgrade or a container's host path does); frames must still name the running code,
with addr2line's answer on the original file as the oracle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hftmem_tui.sources.codemap import CodeMap, open_path, read_exec_mappings
from hftmem_tui.sources.process import die_with_parent
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("g++") or not shutil.which("addr2line"), reason="needs g++, binutils")

PROGRAM = r"""
#include <unistd.h>
long g_count;
__attribute__((noinline)) void tick_once() { g_count++; asm volatile("" ::: "memory"); }
int main() { for (;;) { tick_once(); usleep(1000); } }
"""
OTHER = r"""
#include <unistd.h>
char pad[8192] = {1};
__attribute__((noinline)) void something_else() { pad[1]++; asm volatile("" ::: "memory"); }
int main() { for (;;) { something_else(); usleep(1000); } }
"""


def _build(src: str, out: Path) -> Path:
    out.with_suffix(".cpp").write_text(src)
    subprocess.run(["g++", "-O2", "-g", "-o", str(out), str(out.with_suffix(".cpp"))], check=True)
    return out


def _nm(exe: str, name: str) -> int:
    out = subprocess.run(["nm", exe], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(" " + name))


@pytest.fixture
def replaced(tmp_path):
    """(pid, path, a copy of the file it runs) after the file at ``path`` was replaced by another program."""
    exe = _build(PROGRAM, tmp_path / "prog")
    keep = tmp_path / "original"
    shutil.copy(exe, keep)
    proc = subprocess.Popen([str(exe)], preexec_fn=die_with_parent)
    try:
        wait_for(lambda: str(exe) in Path(f"/proc/{proc.pid}/maps").read_text(), what="the program mapped")
        exe.unlink()  # a new file at the same path: another inode
        shutil.copy(_build(OTHER, tmp_path / "other"), exe)
        yield proc.pid, exe, keep
    finally:
        proc.kill()
        proc.wait()


def test_open_path_never_returns_another_file_at_the_path(replaced):
    pid, exe, _keep = replaced
    maps = [m for m in read_exec_mappings(pid) if m.path == str(exe)]
    assert maps and maps[0].inode != os.stat(exe).st_ino
    opened = open_path(pid, maps[0])
    if opened is not None:  # /proc/PID/map_files (root), or nothing: never the new file
        st = os.stat(opened)
        assert (st.st_ino, os.major(st.st_dev), os.minor(st.st_dev)) == (maps[0].inode, *maps[0].dev)


def test_frames_name_the_running_code_not_the_replacement(replaced):
    pid, exe, keep = replaced
    m = next(m for m in read_exec_mappings(pid) if m.path == str(exe))
    if open_path(pid, m) is None:
        pytest.skip("/proc/PID/map_files is not readable here")
    first = min(x.start - x.offset for x in read_exec_mappings(pid) if x.path == str(exe))
    vaddr = _nm(str(keep), "_Z9tick_oncev")
    with CodeMap(pid) as code:
        f = code.frame(first + vaddr)
    a2l = subprocess.run(["addr2line", "-f", "-C", "-e", str(keep), hex(vaddr)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert f.function == a2l[0] == "tick_once()"
    assert (os.path.basename(f.file), f.line) == (os.path.basename(a2l[1].split(":")[0]),
                                                  int(a2l[1].split(":")[1].split()[0]))
