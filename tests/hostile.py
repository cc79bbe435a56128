"""A hostile target for the text-safety tests: its comm, thread names and mapped file names are
escapes and Rich markup (tests/commands/test_hostile_text.py, tests/ui/test_hostile_text.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hftmem_tui.sources.process import die_with_parent

COMM = "\x1b]0;pwned\x07"
THREADS = ("[/]", "[bold red]x")
# "/" cannot be in a file name: the hostile path is three levels, read back as one mapping name.
MARKUP_PATH = ("\x1b[2J[", "][link=file:", "]a\x1b[?1049l")  # the CLI shows the base name
BAD_UTF8 = b"bad\xff\xfe\x9b[31m\xe2\x80\xaename"  # \xe2\x80\xae: U+202E, right-to-left override

CHILD = r"""
import ctypes, mmap, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def name(b):  # PR_SET_NAME names the calling thread (the main thread's name is the comm)
    libc.prctl(15, ctypes.c_char_p(b), 0, 0, 0)
maps = []
for hexpath in sys.argv[2:]:
    fd = os.open(bytes.fromhex(hexpath), os.O_RDONLY)
    maps.append(mmap.mmap(fd, 4096, prot=mmap.PROT_READ))
started = []
def worker(n):
    name(n)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.3:  # CPU time once: the audit lists it as a "busy" thread
        pass
    started.append(n)
    threading.Event().wait()
for n in sys.argv[1].split("\x1f"):
    threading.Thread(target=worker, args=(n.encode(),), daemon=True).start()
while len(started) < len(sys.argv[1].split("\x1f")):
    pass
name(%r)
print("ready", flush=True)
sys.stdin.read()
""" % COMM.encode()


def hostile_paths(tmp: Path) -> list[bytes]:
    """Create the two hostile files (4 KiB each) under ``tmp``; their paths as bytes."""
    d = tmp / MARKUP_PATH[0] / MARKUP_PATH[1]
    d.mkdir(parents=True)
    paths = [os.fsencode(d / MARKUP_PATH[2]), os.fsencode(tmp) + b"/" + BAD_UTF8]
    for p in paths:
        with open(p, "wb") as f:
            f.write(b"\0" * 4096)
    return paths


def start_hostile(tmp: Path) -> tuple[subprocess.Popen, list[bytes]]:
    """The hostile target, running, with its threads named and its files mapped."""
    paths = hostile_paths(tmp)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "\x1f".join(THREADS), *(p.hex() for p in paths)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent)
    assert proc.stdout.readline() == b"ready\n"
    return proc, paths
