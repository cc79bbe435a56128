"""gdb, the one ptrace path: connection (the MI connection both sessions use), file_session (gdb
on an executable file: symbols, types), preflight (why an attach would fail), attached (gdb
attached in non-stop mode), guardian (run with -m: cleans up when hftmem or gdb dies), records
(MI records -> thread states and hits), session (GdbSession: watchpoints that stop the engine)."""
