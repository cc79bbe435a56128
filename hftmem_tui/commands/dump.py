"""`hftmem dump PID ADDR|SYMBOL`: target memory as gdb x/ lines, read without stopping the target."""

from __future__ import annotations

import argparse

from hftmem_tui.commands.args import parse_address
from hftmem_tui.errors import SourceError
from hftmem_tui.sources import procfs
from hftmem_tui.sources.memory import format_x, read_memory
from hftmem_tui.sources.symbols import SymbolTable, check_symbol_expr, exe_path_of
from hftmem_tui.textsafe import visible


def check_gdb_path(pid: int) -> None:
    """Refuse, before gdb starts, an executable whose path gdb cannot be given in one MI line.

    Raises SourceError (a newline or control character in the path), NoSuchProcess, AccessDenied.
    """
    path = exe_path_of(pid)
    if visible(path) != path:
        raise SourceError(f"the executable of process {pid} is '{visible(path)}': its path holds a control "
                          "character (a newline?) that cannot be passed to gdb, so its symbols cannot be read; "
                          "give an address instead, or run the program from a plain path")


def run(args: argparse.Namespace) -> int:
    """Resolve the address (a symbol through the ELF tables), read it, print x/ lines.

    Raises NoSuchProcess/AccessDenied for the target, SourceError for a refused or unknown symbol
    expression or an unreadable range.
    """
    procfs.check_target(args.pid)
    address = parse_address(args.what)
    label = None
    length = args.len
    if address is None:
        check_symbol_expr(args.what)  # refuse anything but a plain symbol path before gdb sees it
        check_gdb_path(args.pid)
        with SymbolTable.for_pid(args.pid) as table:
            resolved = table.resolve_expr(args.what)
            address = table.runtime_address(resolved, args.pid)
            label = (resolved.symbol.name, address - resolved.offset)
            length = length or resolved.size
    length = length or 64
    data = read_memory(args.pid, address, length)
    for line in format_x(data, address, args.format, symbol=label):
        print("\t".join(visible(part) for part in line.split("\t")))  # gdb's tabs kept; the symbol is the target's
    return 0
