"""read_memory (zero-stop) vs gdb's -data-read-memory-bytes (ptrace, target stopped).

    python benchmarks/bench_memory.py --fast
    python benchmarks/bench_memory.py --best-of 200   # read_memory vs raw process_vm_readv, 1 MiB

Reads 4 KiB and 1 MiB from a live throwaway target. For comparison, gdb ATTACHED to a
second throwaway target (this is the one place we ptrace: our own disposable process,
never an engine) reads the same sizes over MI. The attached target is stopped the whole
time gdb holds it; that pause is the real cost the zero-stop path avoids.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import pyperf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hftmem_tui.sources import memory  # noqa: E402
from hftmem_tui.sources.memory import read_into, read_memory  # noqa: E402

# A throwaway target: a buffer (4 MiB unless told), prints its address, then sleeps.
TARGET = (
    "import ctypes, sys, time\n"
    "b = bytearray(b'x' * int(sys.argv[1]))\n"
    "a = (ctypes.c_char * len(b)).from_buffer(b)\n"
    "print(ctypes.addressof(a), flush=True)\n"
    "time.sleep(3600)\n"
)
SIZES = {"4KiB": 4096, "1MiB": 1 << 20}


def start_target(size: int = 4 << 20) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", TARGET, str(size)], stdout=subprocess.PIPE, text=True)
    addr = int(proc.stdout.readline())
    return proc, addr


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


class AttachedGdb:
    """gdb/MI attached (ptrace) to a throwaway target; waits for each token's result record.

    Raw pipes rather than pygdbmi: pygdbmi parses each response character by character in
    Python (about a minute for a 64 MiB read), which would measure pygdbmi, not gdb.
    """

    def __init__(self, pid: int) -> None:
        self.proc = subprocess.Popen(
            ["gdb", "--nx", "--quiet", "--interpreter=mi3", "-iex", "set debuginfod enabled off"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.token = 0
        self.request(f"-target-attach {pid}", timeout=30)

    def request(self, cmd: str, timeout: float = 60.0) -> bytes:
        """Send ``cmd``; return its ^done result line (bytes). Raises RuntimeError on ^error."""
        self.token += 1
        self.proc.stdin.write(f"{self.token}{cmd}\n".encode())
        self.proc.stdin.flush()
        prefix = str(self.token).encode() + b"^"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"gdb exited during {cmd}")
            if line.startswith(prefix):
                if line.startswith(prefix + b"error"):
                    raise RuntimeError(line.decode(errors="replace").strip())
                return line
        raise TimeoutError(cmd)

    def read(self, addr: int, size: int) -> bytes:
        line = self.request(f"-data-read-memory-bytes {addr} {size}")
        start = line.index(b'contents="') + len(b'contents="')
        return bytes.fromhex(line[start:line.index(b'"', start)].decode())

    def close(self) -> None:
        try:
            self.request("-target-detach", timeout=5)
        finally:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def raw_readv(pid: int, addr: int, size: int):
    """One bare process_vm_readv call into a prebuilt buffer: what read_memory is measured against."""
    buf = ctypes.create_string_buffer(size)
    local = (memory._IoVec * 1)(memory._IoVec(ctypes.addressof(buf), size))
    remote = (memory._IoVec * 1)(memory._IoVec(addr, size))
    readv = memory._process_vm_readv

    def read() -> int:  # holds buf: the iovec only has its address
        return readv(pid, local, 1, remote, 1, 0) if buf else 0

    return (read,)


def best_of(rounds: int, size: int = 1 << 20) -> None:
    """Interleaved rounds in this process, best time of each (the machine's load shifts pyperf's
    means more than the difference between the three): raw readv, read_memory, read_into."""
    src = bytearray(b"x" * size)
    addr = ctypes.addressof((ctypes.c_char * size).from_buffer(src))
    pid, out = os.getpid(), bytearray(size)
    contenders = {"raw process_vm_readv (the floor)": raw_readv(os.getpid(), addr, size)[0],
                  "read_memory (bytes)": lambda: read_memory(pid, addr, size),
                  "read_into (reused bytearray)": lambda: read_into(pid, addr, out)}
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for label, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            best[label] = min(best[label], time.perf_counter() - t0)
    for label, t in best.items():
        print(f"{label}, {size >> 10} KiB: {t * 1e6:.0f} us = {size / t / 1e9:.1f} GB/s (best of {rounds})")


def main() -> None:
    if "--best-of" in sys.argv:  # python benchmarks/bench_memory.py --best-of 200
        best_of(int(sys.argv[sys.argv.index("--best-of") + 1]))
        return
    def pass_target(cmd: list[str], args) -> None:
        cmd.extend(["--target-pid", str(args.target_pid), "--target-addr", str(args.target_addr)])

    runner = pyperf.Runner(add_cmdline_args=pass_target)
    runner.argparser.add_argument("--target-pid", type=int)
    runner.argparser.add_argument("--target-addr", type=int)
    args = runner.parse_args()
    if args.target_pid is None:  # the parent: one zero-stop target for every worker
        proc, addr = start_target()
        atexit.register(stop, proc)
        args.target_pid, args.target_addr = proc.pid, addr
    pid, addr = args.target_pid, args.target_addr

    for label, size in SIZES.items():
        assert len(read_memory(pid, addr, size)) == size
        runner.bench_func(f"read_memory {label} (process_vm_readv, no stop)", read_memory, pid, addr, size)
        runner.bench_func(f"read_into {label} (reused bytearray)", read_into, pid, addr, bytearray(size))
        runner.bench_func(f"raw process_vm_readv {label} (ctypes, iovecs prebuilt: the floor)", *raw_readv(pid, addr, size))

    # gdb's way, on its own throwaway target: attach (stops it), read, detach.
    gdb_holder: dict[str, object] = {}

    def gdb_read(size: int) -> bytes:
        if "gdb" not in gdb_holder:
            victim, vaddr = start_target()
            atexit.register(stop, victim)
            gdb = AttachedGdb(victim.pid)
            atexit.register(gdb.close)
            gdb_holder.update(gdb=gdb, addr=vaddr)
        return gdb_holder["gdb"].read(gdb_holder["addr"], size)  # type: ignore[union-attr]

    for label, size in SIZES.items():
        runner.bench_func(f"gdb -data-read-memory-bytes {label} (attached, target stopped)", gdb_read, size)


if __name__ == "__main__":
    main()
