"""perf_event_open: the event ABI, perf stat streams, hardware breakpoints, uprobes, cost calibration."""
