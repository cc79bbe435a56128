"""What one `record`/`export` sample and one `/metrics` scrape cost, against the live demo engine.

    python benchmarks/bench_record_export.py --fast

- "sample, cheap path": status + stat + psutil + smaps_rollup + the engine's stats and allocator
  counters by process_vm_readv (what every --interval costs);
- "sample + full smaps": the same plus every mapping (what one sample in --smaps-every costs);
- "encode a sample line": Sample -> JSON line, as `record` writes it;
- "collect a scrape": the exporter's Collector formatting the latest sample (no /proc read).
perf is off here: it runs as one separate `perf stat` process, not per sample.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
from pathlib import Path

import pyperf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client.exposition import generate_latest  # noqa: E402
from prometheus_client.registry import CollectorRegistry  # noqa: E402

from hftmem_tui.commands.export import TargetCollector, TargetState  # noqa: E402
from hftmem_tui.sources.engine import find_engine  # noqa: E402
from hftmem_tui.feeds.recording_writer import SampleEncoder, encode_line  # noqa: E402
from hftmem_tui.feeds.sampler import LiveSampler  # noqa: E402


def start_engine() -> int:
    proc = subprocess.Popen([str(find_engine())], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    atexit.register(stop)
    return proc.pid


def main() -> None:
    runner = pyperf.Runner()
    runner.parse_args()
    names = ("sample, cheap path (live engine)", "sample + full smaps (live engine)",
             "encode a sample line", "collect a scrape (no /proc read)")
    if not runner.args.worker:  # the manager only spawns workers (it never calls the functions)
        for name in names:
            runner.bench_func(name, lambda: None)
        return
    pid = start_engine()  # each worker starts (and stops) its own engine
    cheap = LiveSampler(pid, smaps_every=10**9, budget=1.0, perf=False)
    cheap.start()
    cheap.sample()  # the first sample always reads full smaps
    full = LiveSampler(pid, smaps_every=1, budget=1.0, perf=False)
    full.start()
    s = full.sample()
    enc = SampleEncoder()
    enc.encode(s, first_in_file=True)
    state = TargetState(cheap.info, 1.0)
    state.update(s, 0.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TargetCollector(state))
    funcs = (cheap.sample, full.sample, lambda: encode_line(enc.encode(s, first_in_file=False)),
             lambda: generate_latest(registry))
    for name, fn in zip(names, funcs):
        runner.bench_func(name, fn)


if __name__ == "__main__":
    main()
