"""gdb: the MI connection, and the attached session for stop-and-inspect watchpoints."""
