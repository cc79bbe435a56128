"""`hftmem export`: Prometheus/OpenMetrics metrics of one live process, zero-stop.

A background thread samples the target with feeds.sampler at ``--interval``; a custom
Collector turns the latest sample into metric families. A scrape never reads /proc or the
target: it only formats what the sampler already has, so scrape rate cannot raise the cost
to the target. Every target metric is labelled pid, command and host.

A vanished target: sampling stops, ``hftmem_target_up`` becomes 0 and every other target
metric disappears (no stale values), one line goes to stderr, and the endpoint keeps serving
until SIGTERM/SIGINT, so Prometheus alerts on "target down" rather than "exporter down".
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from hftmem_tui import __version__
from hftmem_tui.errors import SourceError
from hftmem_tui.feeds.sample import Sample, TargetInfo
from hftmem_tui.feeds.sampler import LiveSampler, ProcessReplaced, TargetGone
from hftmem_tui.model.allocators import ArenaView, PoolView, RingView
from hftmem_tui.model.deltas import summarize_by_kind
from hftmem_tui.model.series import TimeSeries
from hftmem_tui.model.trend import MIB, fit_leak
from hftmem_tui.sources import procfs
from hftmem_tui.sources.engine import SCENARIOS
from hftmem_tui.sources.shutdown import paced, stop_on_signals
from hftmem_tui.textsafe import visible

KIB = 1024
TREND_WINDOW_S = 600.0  # the leak fit's window (model.trend default): 10 min of RSS history
RATE_WINDOW_S = 10.0  # page-fault rates are averaged over this much history


class ExportError(SourceError):
    """The endpoint cannot be served (address in use, not available, not allowed)."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    interval_s: float = 1.0
    smaps_every: int = 30
    budget: float = 0.01
    perf: bool = True
    engine: bool = True


class TargetState:
    """What the collector shows: written by the sampler thread, read by scrapes, under one lock."""

    def __init__(self, info: TargetInfo, interval_s: float) -> None:
        self.info = info
        self.lock = threading.Lock()
        self.up = True
        self.latest: Sample | None = None
        self.kinds: dict | None = None
        self.kinds_time: float | None = None
        self.rollup: procfs.Rollup | None = None
        n = int(TREND_WINDOW_S / interval_s) + 2
        self.rss = TimeSeries(capacity=max(16, n))
        self._faults: deque[tuple[float, int, int]] = deque(maxlen=max(4, int(RATE_WINDOW_S / interval_s) + 2))
        self.perf_totals: dict[str, float] = {}
        self.perf_unsupported: frozenset[str] = frozenset()
        self.samples = 0
        self.sample_seconds = 0.0
        self.verdict = fit_leak([])

    def update(self, s: Sample, took_s: float) -> None:
        kinds = summarize_by_kind(s.mappings) if s.mappings is not None else None
        verdict = None
        with self.lock:
            self.latest = s
            if kinds is not None:
                self.kinds, self.kinds_time = kinds, s.time
            if s.rollup is not None:
                self.rollup = s.rollup
            self.rss.append(s.time, s.status.vm_rss_kb * KIB)
            self._faults.append((s.time, s.stat.minflt, s.stat.majflt))
            if s.perf is not None:
                for k, v in s.perf.values.items():
                    self.perf_totals[k] = self.perf_totals.get(k, 0.0) + v
                self.perf_unsupported = s.perf.unsupported
            self.samples += 1
            self.sample_seconds = took_s
            points = list(self.rss)
        verdict = fit_leak(points, window_s=TREND_WINDOW_S)  # outside the lock: scrapes never wait on it
        with self.lock:
            self.verdict = verdict

    def fault_rates(self) -> tuple[float, float] | None:
        """(minor, major) faults per second over the rate window; call under the lock."""
        if len(self._faults) < 2:
            return None
        (t0, mi0, ma0), (t1, mi1, ma1) = self._faults[0], self._faults[-1]
        if t1 <= t0:
            return None
        return (mi1 - mi0) / (t1 - t0), (ma1 - ma0) / (t1 - t0)


class TargetCollector(Collector):
    """Metric families from TargetState. collect() does no I/O."""

    def __init__(self, state: TargetState) -> None:
        self.state = state
        info = state.info
        self.label_names = ["pid", "command", "host"]
        self.labels = [str(info.pid), info.comm, info.host]

    def _g(self, name: str, doc: str, value: float | None, extra: dict[str, str] | None = None):
        fam = GaugeMetricFamily(name, doc, labels=self.label_names + list(extra or {}))
        if value is not None:
            fam.add_metric(self.labels + list((extra or {}).values()), value)
        return fam

    def collect(self):
        st = self.state
        with st.lock:
            up, s, kinds, rollup = st.up, st.latest, st.kinds, st.rollup
            verdict, rates = st.verdict, st.fault_rates()
            perf_totals, unsupported = dict(st.perf_totals), st.perf_unsupported
            samples, took, kinds_time = st.samples, st.sample_seconds, st.kinds_time
        L, names = self.labels, self.label_names
        yield self._g("hftmem_target_up", "1 while the target process is alive and sampled, 0 once it is gone",
                      1.0 if up else 0.0)
        fam = CounterMetricFamily("hftmem_exporter_samples", "samples taken of the target since the exporter started",
                                  labels=self.label_names)
        fam.add_metric(self.labels, samples)
        yield fam
        if not up or s is None:
            return
        yield self._g("hftmem_target_start_time_seconds", "target process start time, epoch seconds",
                      st.info.create_time)
        yield self._g("hftmem_sample_timestamp_seconds", "when the sample these metrics come from was taken",
                      s.time)
        yield self._g("hftmem_sample_duration_seconds", "how long the exporter's last sample of the target took",
                      took)
        status = s.status
        yield self._g("hftmem_rss_bytes", "resident set size (VmRSS from /proc/PID/status)", status.vm_rss_kb * KIB)
        yield self._g("hftmem_rss_peak_bytes", "peak resident set size (VmHWM)", status.vm_hwm_kb * KIB)
        yield self._g("hftmem_swap_bytes", "swapped-out anonymous memory (VmSwap)", status.vm_swap_kb * KIB)
        yield self._g("hftmem_virtual_memory_bytes", "virtual size (VmSize)", status.vm_size_kb * KIB)
        fam = GaugeMetricFamily("hftmem_rss_by_type_bytes", "resident memory by type (RssAnon/RssFile/RssShmem)",
                                labels=names + ["type"])
        for typ, kb in (("anon", status.rss_anon_kb), ("file", status.rss_file_kb), ("shmem", status.rss_shmem_kb)):
            fam.add_metric(L + [typ], kb * KIB)
        yield fam
        if rollup is not None:
            yield self._g("hftmem_pss_bytes", "proportional set size (smaps_rollup Pss)", rollup.pss_kb * KIB)
        faults = CounterMetricFamily("hftmem_page_faults", "page faults of the target (/proc/PID/stat)",
                                     labels=names + ["type"])
        faults.add_metric(L + ["minor"], s.stat.minflt)
        faults.add_metric(L + ["major"], s.stat.majflt)
        yield faults
        if rates is not None:
            fam = GaugeMetricFamily("hftmem_page_fault_rate", f"page faults per second over the last {RATE_WINDOW_S:.0f} s",
                                    labels=names + ["type"])
            fam.add_metric(L + ["minor"], rates[0])
            fam.add_metric(L + ["major"], rates[1])
            yield fam
        if kinds is not None:
            size = GaugeMetricFamily("hftmem_mapping_size_bytes", "virtual size of the target's mappings, by kind",
                                     labels=names + ["kind"])
            rss = GaugeMetricFamily("hftmem_mapping_rss_bytes", "resident memory of the target's mappings, by kind",
                                    labels=names + ["kind"])
            count = GaugeMetricFamily("hftmem_mappings", "number of mappings, by kind", labels=names + ["kind"])
            for k, v in kinds.items():
                size.add_metric(L + [k], v.size_kb * KIB)
                rss.add_metric(L + [k], v.rss_kb * KIB)
                count.add_metric(L + [k], v.count)
            yield size
            yield rss
            yield count
            yield self._g("hftmem_mappings_timestamp_seconds", "when the mapping table (full smaps) was last read",
                          kinds_time)
        yield self._g("hftmem_rss_slope_bytes_per_second",
                      f"leak trend: Theil-Sen slope of RSS over the last {TREND_WINDOW_S:.0f} s (0 until enough data)",
                      verdict.slope_mib_per_min * MIB / 60)
        yield self._g("hftmem_rss_slope_confidence", "confidence of the leak verdict, 0..1", verdict.confidence)
        fam = GaugeMetricFamily("hftmem_rss_trend", "leak verdict: 1 for the current one",
                                labels=names + ["verdict"])
        for v in ("growing", "flat", "shrinking", "insufficient data"):
            fam.add_metric(L + [v], 1.0 if verdict.verdict == v else 0.0)
        yield fam
        if perf_totals:
            fam = CounterMetricFamily("hftmem_perf_events", "perf stat counts on the target since the exporter started",
                                      labels=names + ["event"])
            for k, v in sorted(perf_totals.items()):
                if k not in unsupported:
                    fam.add_metric(L + [k], v)
            yield fam
        yield from self._allocators(s)
        yield from self._engine(s)

    def _allocators(self, s: Sample):
        names, L = self.label_names + ["symbol"], self.labels
        specs = {
            PoolView: (("live", "hftmem_pool_live_objects", "objects allocated from the pool", False),
                       ("capacity", "hftmem_pool_capacity_objects", "pool capacity", False),
                       ("high_water", "hftmem_pool_high_water_objects", "most objects ever live at once", False),
                       ("rejects", "hftmem_pool_rejects", "allocations refused: pool empty", True),
                       ("double_frees", "hftmem_pool_double_frees", "frees of an already free slot", True),
                       ("poison_violations", "hftmem_pool_poison_violations", "free slots found written to", True)),
            ArenaView: (("used", "hftmem_arena_used_bytes", "bytes handed out since the last reset", False),
                        ("capacity", "hftmem_arena_capacity_bytes", "arena capacity", False),
                        ("high_water", "hftmem_arena_high_water_bytes", "most bytes ever in use", False),
                        ("resets", "hftmem_arena_resets", "arena resets", True),
                        ("failed", "hftmem_arena_failures", "allocations refused: arena full", True)),
            RingView: (("depth", "hftmem_ring_depth_slots", "slots filled (tail - head)", False),
                       ("capacity", "hftmem_ring_capacity_slots", "ring capacity", False),
                       ("push_failures", "hftmem_ring_push_failures", "pushes refused: ring full", True)),
        }
        for cls, fields in specs.items():
            views = [v for v in s.allocators if isinstance(v, cls)]
            if not views:
                continue
            for attr, name, doc, counter in fields:
                fam = (CounterMetricFamily if counter else GaugeMetricFamily)(name, doc, labels=names)
                for v in views:
                    fam.add_metric(L + [v.symbol], getattr(v, attr))
                yield fam

    def _engine(self, s: Sample):
        e = s.engine
        if e is None:
            return
        L, names = self.labels, self.label_names

        def c(name, doc, value):
            fam = CounterMetricFamily(name, doc, labels=names)
            fam.add_metric(L, value)
            return fam

        yield c("hftmem_engine_ticks", "market-data ticks generated", e.ticks)
        yield c("hftmem_engine_messages", "messages consumed by the strategy", e.messages)
        yield c("hftmem_engine_ring_drops", "ticks dropped on a full ring (paced mode)", e.ring_drops)
        yield c("hftmem_engine_hot_path_allocs", "heap allocations on the hot path", e.hot_path_allocs)
        yield c("hftmem_engine_corrupted_orders", "orders whose price an overflow corrupted", e.corrupted_orders)
        yield self._g("hftmem_engine_messages_per_second", "messages per second in the last completed 1-s window",
                      e.msgs_per_sec)
        yield self._g("hftmem_engine_loop_gap_max_seconds", "largest gap between strategy-loop iterations, last 1-s window",
                      e.last_max_gap_ns / 1e9)
        yield self._g("hftmem_engine_loop_gap_p999_seconds", "p99.9 gap between strategy-loop iterations, last 1-s window",
                      e.last_p999_gap_ns / 1e9)
        yield self._g("hftmem_engine_ring_latency_seconds", "median ring transit per message, last window",
                      e.ring_ns_per_msg / 1e9)
        yield self._g("hftmem_engine_leaked_bytes", "bytes the leak scenario never freed", e.leaked_bytes)
        yield self._g("hftmem_engine_frag_live_bytes", "live bytes of the fragmentation scenario", e.frag_live_bytes)
        fam = GaugeMetricFamily("hftmem_engine_scenario_active", "1 when the bug scenario is switched on",
                                labels=names + ["scenario"])
        active = set(e.active_scenarios)
        for name in SCENARIOS:
            fam.add_metric(L + [name], 1.0 if name in active else 0.0)
        yield fam


class _BuildInfo(Collector):
    def collect(self):
        fam = GaugeMetricFamily("hftmem_exporter_build_info", "hftmem version serving these metrics",
                                labels=["version"])
        fam.add_metric([__version__], 1.0)
        yield fam


def _sample_loop(sampler: LiveSampler, state: TargetState, stop: threading.Event, interval_s: float, log) -> None:
    for _ in paced(interval_s, stop):
        start = time.monotonic()
        try:
            s = sampler.sample()
        except TargetGone as e:
            with state.lock:
                state.up = False
            if isinstance(e, ProcessReplaced):  # a newcomer's memory is never served under the old labels
                log(f"{e}: its metrics stop here; serving hftmem_target_up 0 until stopped")
            else:
                log(f"target {sampler.pid} exited: serving hftmem_target_up 0 until stopped")
            return
        except SourceError as e:  # e.g. permission lost: say it once, keep serving what we have
            log(f"sampling {sampler.pid} failed: {e}")
            with state.lock:
                state.up = False
            return
        for note in sampler.fresh_notes(s):  # perf killed, the target exec'd...: said once
            log(note)
        state.update(s, time.monotonic() - start)


def _bind(host: str, port: int, registry: CollectorRegistry):
    try:
        return start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        why = {errno.EADDRINUSE: "address already in use", errno.EADDRNOTAVAIL: "no such local address",
               errno.EACCES: "permission denied"}.get(e.errno or 0, e.strerror or str(e))
        raise ExportError(f"cannot listen on {host}:{port}: {why}") from None
    except (ValueError, UnicodeError) as e:  # a host name that does not resolve or parse
        raise ExportError(f"cannot listen on {host}:{port}: {e}") from None


def is_loopback(host: str, port: int) -> bool:
    """Whether every address ``host`` resolves to is a loopback one (127/8, ::1): only this
    machine can connect. 0.0.0.0, ::, a LAN address or a name that resolves outward are not."""
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except OSError:
        return False
    try:
        return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)
    except ValueError:
        return False


def serve(pid: int, host: str, port: int, opts: ExportOptions, *, stop: threading.Event | None = None,
          log=None) -> None:
    """Serve /metrics for ``pid`` on host:port until ``stop`` is set (SIGTERM/SIGINT set it when
    called from the main thread). A non-loopback address is served after one warning line
    saying what it exposes. Raises the sampler's typed errors for a bad target and ExportError
    when the address cannot be bound."""
    log = log or (lambda line: sys.stderr.write(f"hftmem: {visible(line)}\n"))  # paths and names are outside text
    stop = stop or threading.Event()
    status = procfs.check_target(pid)  # a bad pid fails before we bind anything
    sampler = LiveSampler(pid, interval_s=opts.interval_s, smaps_every=opts.smaps_every,
                          budget=opts.budget, perf=opts.perf, engine=opts.engine)
    server = None

    def close_server() -> None:
        if server is not None:
            server.shutdown()
            server.server_close()

    # SIGTERM/SIGINT/SIGHUP set the flag (handlers restored at the end); the server and the
    # sampler close on every way out.
    with stop_on_signals(stop) as stop, contextlib.ExitStack() as cleanup:
        cleanup.callback(sampler.close)
        cleanup.callback(close_server)
        registry = CollectorRegistry(auto_describe=False)
        # Bind first: a port in use must fail before perf or gdb start. The target collector is
        # registered once the first sample exists, so every scrape sees a whole picture.
        try:
            socket.getaddrinfo(host, port)
        except OSError as e:
            raise ExportError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        registry.register(_BuildInfo())
        registry.register(ProcessCollector(namespace="hftmem_exporter", registry=None))
        server, _thread = _bind(host, port, registry)
        if not is_loopback(host, port):
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            log(f"warning: {where} is not a loopback address: the memory metrics of process {pid} "
                f"({status.name!a}) are served, without authentication, to anyone who can reach {where}")
        info = sampler.start()  # perf starts from this (main) thread: it dies with us
        for note in sampler.notes:
            log(note)
        state = TargetState(info, opts.interval_s)
        first = time.monotonic()
        state.update(sampler.sample(), time.monotonic() - first)
        registry.register(TargetCollector(state))
        worker = threading.Thread(target=_sample_loop, args=(sampler, state, stop, opts.interval_s, log),
                                  name="hftmem-sampler", daemon=True)
        worker.start()
        while not stop.wait(3600):
            pass
        worker.join(timeout=5)


def run(args: argparse.Namespace) -> int:
    """`hftmem export PID --listen HOST:PORT ...`: serve until SIGTERM/SIGINT; 0. Raises what
    ``serve`` raises."""
    host, port = args.listen
    opts = ExportOptions(interval_s=args.interval, smaps_every=max(1, args.smaps_every),
                         perf=not args.no_perf, engine=not args.no_engine)
    serve(args.pid, host, port, opts)
    return 0
