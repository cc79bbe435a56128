"""Hardware watchpoints as a feature, headless: backend choice, arm/disarm, hit threads, hit text.

Used alike by `hftmem watch` (commands/watch.py), the Watch pane and the tour's watch key; the
backends themselves (perf breakpoints, a gdb session) live in sources/.
"""
