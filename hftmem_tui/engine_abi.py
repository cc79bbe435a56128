"""What the native demo engine exports, as both sides agree on it: the scenario bit order.

A bottom module (imports nothing): the engine client in `sources` and the stats-block decoder
in `model` both read it, and neither may import the other.
"""

# Bit i of the stats block's `scenarios` field is SCENARIOS[i]; native/ uses the same order.
SCENARIOS: tuple[str, ...] = (
    "leak",
    "use-after-free",
    "overflow",
    "double-free",
    "hot-alloc",
    "fragmentation",
    "false-sharing",
    "pool-exhaustion",
)
