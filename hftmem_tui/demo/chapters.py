"""The guided tour's chapters: one per demo-engine scenario, each with a predicate on live data.

A chapter says what the bug is (with the offending line of native/engine/engine.cpp), where to
look, how to confirm it and how it is fixed. ``Chapter.observed(baseline, samples)`` decides from
real samples whether the engine showed the effect, so the tour never claims what did not happen:
``baseline`` is the sample taken just before the bug was switched on, ``samples`` those taken
after. Predicates are pure (no process, no I/O): the script and the TUI feed them TourSamples
built from LiveSamples; the unit tests feed them synthetic ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hftmem_tui.model.decode import EngineStats
from hftmem_tui.model.deltas import mapping_deltas
from hftmem_tui.model.trend import fit_leak
from hftmem_tui.sources.procfs import Mapping

MIB = 1024 * 1024
PLAIN_RING = "hftmem_md_ring"
PACKED_RING = "hftmem_md_ring_packed"
PANES = ("overview", "mappings", "perf", "allocators", "latency", "memory", "audit", "watch")


@dataclass(frozen=True, slots=True)
class TourSample:
    """What the predicates read from one sample. ``t`` in seconds (only differences matter)."""

    t: float
    rss_kb: int
    minflt: int
    engine: EngineStats | None
    ring_pushed: tuple[tuple[str, int | None], ...] = ()  # (ring symbol, items ever pushed)
    mappings: tuple[Mapping, ...] | None = None  # when this sample read full smaps

    @classmethod
    def from_live(cls, s) -> TourSample:
        """From a feeds.sample.Sample, live or recorded."""
        rings = tuple((a.symbol, a.pushed) for a in s.allocators if hasattr(a, "pushed"))
        return cls(s.time, s.status.vm_rss_kb, s.stat.minflt, s.engine, rings, s.mappings)

    def pushed(self, ring: str) -> int | None:
        return next((n for sym, n in self.ring_pushed if sym == ring), None)


@dataclass(frozen=True, slots=True)
class Observation:
    """A predicate's answer: observed or not, one line saying what with numbers, and the numbers."""

    observed: bool
    summary: str
    numbers: dict[str, float] = field(default_factory=dict)


Predicate = Callable[[TourSample, Sequence[TourSample]], Observation]


@dataclass(frozen=True, slots=True)
class Chapter:
    """One tour chapter. ``name`` is also the scenario it switches on."""

    name: str
    title: str
    bug: str  # what the bug is in a trading engine, 2-3 sentences
    code: str  # the offending C++ line, verbatim from ``source``
    where: str  # function it sits in
    pane: str  # pane id to focus (see PANES)
    highlight: str  # row or gauge to highlight in that pane
    gauge: str  # the EngineStats counter the tour panel shows live beside the chapter
    look: str  # what to look at there
    confirm: str  # how to confirm it
    watch: str | None  # suggested watch target (SYMBOL[.field]) for corruption chapters
    fix: str
    predicate: Predicate
    timeout_s: float = 10.0  # how long the script waits for the effect before giving up
    source: str = "native/engine/engine.cpp"

    @property
    def scenario(self) -> str:
        return self.name

    def gauge_value(self, sample: TourSample | None) -> int | None:
        """The chapter's gauge in ``sample`` (None without engine data)."""
        if sample is None or sample.engine is None:
            return None
        return getattr(sample.engine, self.gauge)

    def observed(self, baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
        """Whether ``samples`` (taken with the bug on) show the effect against ``baseline``."""
        return self.predicate(baseline, samples)


# --------------------------------------------------------------------------- helpers


def _with_bug(scenario: str, samples: Sequence[TourSample]) -> list[TourSample]:
    """Only the samples where the engine's own stats block says the scenario is on."""
    return [s for s in samples if s.engine is not None and scenario in s.engine.active_scenarios]


def _delta(baseline: TourSample, last: TourSample, name: str) -> int:
    if baseline.engine is None or last.engine is None:
        return 0
    return getattr(last.engine, name) - getattr(baseline.engine, name)


def _no_bug(scenario: str) -> Observation:
    return Observation(False, f"not yet: the engine does not report '{scenario}' on")


def _mib(n: float) -> str:
    return f"{n / MIB:.1f} MiB"


def _growing_mapping(samples: Sequence[TourSample]) -> tuple[str, int] | None:
    """(name, RSS growth kB) of the mapping that grew most between the first and last full smaps."""
    full = [s.mappings for s in samples if s.mappings is not None]
    if len(full) < 2:
        return None
    changed = mapping_deltas(full[0], full[-1]).changed
    if not changed or changed[0].rss_delta_kb <= 0:
        return None
    top = changed[0]
    return (top.path or f"anon {top.start:#x}", top.rss_delta_kb)


def _counter_chapter(scenario: str, counter: str, what: str) -> Predicate:
    """Observed when an engine counter rose while the engine had the scenario on."""

    def predicate(baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
        on = _with_bug(scenario, samples)
        if not on:
            return _no_bug(scenario)
        last = on[-1]
        d = _delta(baseline, last, counter)
        dt = last.t - baseline.t
        numbers = {counter: float(d), "seconds": round(dt, 2)}
        if d <= 0:
            return Observation(False, f"not yet: {counter} unchanged after {dt:.1f} s", numbers)
        return Observation(True, f"{counter} +{d} in {dt:.1f} s ({what})", numbers)

    return predicate


def _rss_fit(points: Sequence[TourSample]):
    # The tour shows seconds of data, not minutes: no warm-up to drop, a short span is enough.
    return fit_leak([(s.t, s.rss_kb * 1024) for s in points], warmup_s=0.0, min_points=5,
                    min_span_s=1.5)


# --------------------------------------------------------------------------- predicates


def observe_leak(baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
    """RSS trend says "growing" and the engine's leaked_bytes rose; names the growing mapping."""
    on = _with_bug("leak", samples)
    if not on:
        return _no_bug("leak")
    fit = _rss_fit([baseline, *on])
    leaked = _delta(baseline, on[-1], "leaked_bytes")
    rss = (on[-1].rss_kb - baseline.rss_kb) * 1024
    numbers = {"slope_mib_per_min": round(fit.slope_mib_per_min, 1), "confidence": fit.confidence,
               "rss_growth_bytes": float(rss), "leaked_bytes": float(leaked), "points": float(fit.points)}
    grown = _growing_mapping([baseline, *on])
    where = f", {grown[0]} +{grown[1] / 1024:.1f} MiB" if grown else ""
    if grown:
        numbers["mapping_growth_kb"] = float(grown[1])
    if fit.verdict != "growing" or leaked <= 0:
        return Observation(False, f"not yet: RSS trend {fit.verdict} ({fit.points} points), "
                                  f"leaked_bytes +{leaked}", numbers)
    return Observation(True, f"RSS growing {fit.slope_mib_per_min:.0f} MiB/min "
                             f"(95% {fit.low_mib_per_min:.0f}..{fit.high_mib_per_min:.0f}), "
                             f"RSS +{_mib(rss)}, leaked_bytes +{_mib(leaked)}{where}", numbers)


def observe_hot_alloc(baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
    """The hot thread allocates at least once per message (counted by the engine's operator new)."""
    on = _with_bug("hot-alloc", samples)
    if not on:
        return _no_bug("hot-alloc")
    last = on[-1]
    allocs = _delta(baseline, last, "hot_path_allocs")
    msgs = _delta(baseline, last, "messages")
    dt = last.t - baseline.t
    per_msg = allocs / msgs if msgs > 0 else 0.0
    numbers = {"hot_path_allocs": float(allocs), "messages": float(msgs), "allocs_per_message": round(per_msg, 2),
               "allocs_per_second": round(allocs / dt) if dt > 0 else 0.0}
    if msgs <= 0 or per_msg < 1.0:
        return Observation(False, f"not yet: {allocs} hot-path allocations for {msgs} messages", numbers)
    return Observation(True, f"hot_path_allocs +{allocs} in {dt:.1f} s: {per_msg:.1f} per message, "
                             f"{numbers['allocs_per_second']:.0f}/s on the strategy thread", numbers)


def observe_fragmentation(baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
    """RSS grows and page faults climb while the live bytes the engine holds stay far smaller."""
    on = _with_bug("fragmentation", samples)
    if not on:
        return _no_bug("fragmentation")
    last = on[-1]
    fit = _rss_fit([baseline, *on])
    rss = (last.rss_kb - baseline.rss_kb) * 1024
    live = max(s.engine.frag_live_bytes for s in on if s.engine is not None)
    faults = last.minflt - baseline.minflt
    numbers = {"rss_growth_bytes": float(rss), "frag_live_bytes": float(live), "minor_faults": float(faults),
               "slope_mib_per_min": round(fit.slope_mib_per_min, 1)}
    grown = _growing_mapping([baseline, *on])
    where = f", {grown[0]} +{grown[1] / 1024:.1f} MiB" if grown else ""
    if grown:
        numbers["mapping_growth_kb"] = float(grown[1])
    if fit.verdict != "growing" or live <= 0 or rss < 4 * live or faults <= 0:
        return Observation(False, f"not yet: RSS {fit.verdict} +{_mib(rss)}, live {live / 1024:.0f} KiB, "
                                  f"minor faults +{faults}", numbers)
    return Observation(True, f"RSS +{_mib(rss)} ({fit.slope_mib_per_min:.0f} MiB/min) while live bytes stay "
                             f"{live / 1024:.0f} KiB ({rss / live:.0f}x), minor faults +{faults}{where}", numbers)


def observe_false_sharing(baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
    """Traffic moved to the packed ring (head and tail on one cache line); reports the ring's cost.

    Observed = the packed ring carries the messages while the padded one is idle, and one full
    1-s stats window has completed since, so the throughput and ns/msg figures are post-switch.
    Whether that costs anything is reported as measured, never assumed: on a small VM whose two
    threads share a core the ~300 ns of strategy work per message hides it.
    """
    on = _with_bug("false-sharing", samples)
    if not on:
        return _no_bug("false-sharing")
    last = on[-1]
    packed = (last.pushed(PACKED_RING) or 0) - (baseline.pushed(PACKED_RING) or 0)
    plain_moved = None
    if len(on) >= 2:
        a, b = on[-2].pushed(PLAIN_RING), last.pushed(PLAIN_RING)
        plain_moved = None if a is None or b is None else b - a
    windows = _delta(baseline, last, "window_index")
    numbers = {"packed_ring_pushed": float(packed), "windows": float(windows)}
    if last.engine is None or baseline.engine is None:
        return _no_bug("false-sharing")
    before_rate, after_rate = baseline.engine.msgs_per_sec, last.engine.msgs_per_sec
    before_ns, after_ns = baseline.engine.ring_ns_per_msg, last.engine.ring_ns_per_msg
    numbers.update(msgs_per_sec_before=float(before_rate), msgs_per_sec_after=float(after_rate),
                   ring_ns_per_msg_before=float(before_ns), ring_ns_per_msg_after=float(after_ns))
    if packed <= 0 or plain_moved is None or plain_moved != 0 or windows < 2:
        return Observation(False, f"not yet: packed ring +{packed} pushes, padded ring "
                                  f"{'?' if plain_moved is None else f'+{plain_moved}'}, {windows} windows", numbers)
    change = (after_rate - before_rate) / before_rate * 100 if before_rate else 0.0
    return Observation(True, f"{packed} messages through {PACKED_RING} (padded ring idle); "
                             f"msgs/s {before_rate} -> {after_rate} ({change:+.1f}%), "
                             f"ring ns/msg {before_ns} -> {after_ns}", numbers)


def observe_pool_exhaustion(baseline: TourSample, samples: Sequence[TourSample]) -> Observation:
    """The pool is full (live == capacity) and new orders are rejected."""
    on = _with_bug("pool-exhaustion", samples)
    if not on:
        return _no_bug("pool-exhaustion")
    last = on[-1]
    rejects = _delta(baseline, last, "pool_rejects")
    e = last.engine
    assert e is not None
    full = any(s.engine is not None and s.engine.pool_live >= s.engine.pool_capacity for s in on)
    numbers = {"pool_rejects": float(rejects), "pool_live": float(e.pool_live), "pool_capacity": float(e.pool_capacity)}
    if not full or rejects <= 0:
        return Observation(False, f"not yet: pool {e.pool_live}/{e.pool_capacity}, rejects +{rejects}", numbers)
    return Observation(True, f"pool {e.pool_live}/{e.pool_capacity} full, pool_rejects +{rejects} "
                             f"in {last.t - baseline.t:.1f} s (orders refused)", numbers)


# --------------------------------------------------------------------------- the tour

CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        name="leak", title="1. A leak on the order path",
        bug="Every message the strategy allocates a batch of orders with new[] and nobody ever "
            "deletes them. Nothing crashes: RSS just grows until the box swaps or the OOM killer "
            "takes the engine down in the middle of the session.",
        code="Order* leaked = new Order[64];               // never freed", where="Strategy::leak_step",
        pane="overview", highlight="leak-verdict", gauge="leaked_bytes",
        look="The RSS graph climbs in a straight line and, once it has 20 s of data, the leak "
             "verdict turns 'growing'; in Mappings the [heap] row grows (the engine allocates from brk).",
        confirm="The trend fit's slope and its 95% interval exclude zero; the growing mapping is "
                "[heap]; the engine's own leaked_bytes counter agrees.",
        watch=None,
        fix="Give the orders an owner: a std::unique_ptr<Order[]> (or better, take them from the "
            "ObjectPool and return them) so every allocation has exactly one release.",
        predicate=observe_leak, timeout_s=12.0),
    Chapter(
        name="use-after-free", title="2. Use after free of a pooled order",
        bug="An order is returned to the pool while another code path still holds its pointer and "
            "later writes the quantity and price through it. The slot now belongs to the next "
            "order: its fields change under the strategy's feet.",
        code="*reinterpret_cast<volatile std::uint32_t*>(&victim->qty) = 0xBADu;",
        where="Strategy::on_tick",
        pane="allocators", highlight="hftmem_order_pool.poison_violations", gauge="pool_poison_violations",
        look="The order pool's poison_violations counter rises: the pool fills free slots with 0xDD "
             "and finds the poison overwritten when it hands the slot out again.",
        confirm="Watch hftmem_stale_order (write): each hit's backtrace is the line that keeps the "
                "stale pointer, right beside the writes through it; the Memory pane shows the slot.",
        watch="hftmem_stale_order",
        fix="Do not keep raw pointers to pooled orders: hand out a handle with a generation count, "
            "or a unique_ptr with the pool as deleter, so a stale use is impossible or caught.",
        predicate=_counter_chapter("use-after-free", "pool_poison_violations",
                                   "poison of freed slots overwritten, caught at reuse"),
        timeout_s=8.0),
    Chapter(
        name="overflow", title="3. A symbol that does not fit",
        bug="The venue symbol \"AAPL.NASDAQ\" (11 chars + NUL) is copied into char symbol[8]. The "
            "extra bytes land in the next field, price: the order goes out at a corrupted price "
            "and only the risk check notices.",
        code="dst[i] = src[i];", where="Strategy::on_tick (naive strcpy into Order::symbol)",
        pane="memory", highlight="hftmem_last_order.price", gauge="corrupted_orders",
        look="In Memory, hftmem_last_order: the bytes after symbol[8] read 'DAQ' where the price "
             "should be; the engine's corrupted_orders counter climbs.",
        confirm="Watch hftmem_last_order.price (the field after symbol[8]): the new value's low bytes "
                "are 'DAQ\\0' and the backtrace is Strategy::on_tick.",
        watch="hftmem_last_order.price",
        fix="Bounded copy: std::memcpy(o->symbol, src, std::min(len, sizeof o->symbol)) or a "
            "fixed-size symbol type that refuses longer input, checked at the gateway.",
        predicate=_counter_chapter("overflow", "corrupted_orders", "price overwritten by the symbol's tail"),
        timeout_s=8.0),
    Chapter(
        name="double-free", title="4. Double free",
        bug="A cancel path and a fill path both release the same order. With malloc this corrupts "
            "the heap; the engine's pool refuses the second free and counts it.",
        code="hftmem_order_pool.free(victim);  // detected: returns false, list intact",
        where="Strategy::on_tick",
        pane="allocators", highlight="hftmem_order_pool.double_frees", gauge="pool_double_frees",
        look="The order pool's double_frees counter rises while live stays steady.",
        confirm="Watch hftmem_order_pool.double_frees_: each hit's backtrace is ObjectPool::free "
                "called twice from Strategy::on_tick.",
        watch="hftmem_order_pool.double_frees_",
        fix="One owner per order: release it in exactly one place (a unique_ptr with the pool as "
            "deleter, or a state machine that frees only on the terminal state).",
        predicate=_counter_chapter("double-free", "pool_double_frees", "second free refused by the pool"),
        timeout_s=8.0),
    Chapter(
        name="hot-alloc", title="5. Allocation on the hot path",
        bug="A log note is built with std::string and a helper object is new'd and deleted for "
            "every message. Each malloc can take a lock, fault in a page or trim the heap: a "
            "microsecond spike in the middle of the critical path.",
        code="auto* n = new OrderNote;", where="Strategy::on_tick",
        pane="latency", highlight="hot_path_allocs", gauge="hot_path_allocs",
        look="The engine's hot_path_allocs counter grows with every message; the latency pane's "
             "max gap shows the occasional spike the allocator adds.",
        confirm="`hftmem allocs PID --hot auto` counts the malloc/operator new calls per thread "
                "(uprobes, no ptrace) and shows the call chain on the strategy thread.",
        watch=None,
        fix="Reserve up front and reuse: a fixed char buffer (or a std::string reserved once), and "
            "per-message objects from the arena or the pool, never from the heap.",
        predicate=observe_hot_alloc, timeout_s=8.0),
    Chapter(
        name="fragmentation", title="6. Heap fragmentation",
        bug="Growing buffers are malloc'd and the previous one is shrunk in place with realloc to "
            "a small pin. The holes between the pins can never be reused, so the heap grows while "
            "the engine holds only tens of KiB.",
        code="void* pin = std::realloc(frag_block_, kFragPinBytes);", where="Strategy::frag_step",
        pane="mappings", highlight="[heap]", gauge="frag_live_bytes",
        look="The [heap] mapping grows and the minor-fault rate climbs, yet frag_live_bytes stays "
             "around 100 KiB: memory used is not memory held.",
        confirm="Compare the [heap] growth in Mappings with frag_live_bytes in the engine stats: a "
                "leak has them grow together, fragmentation does not.",
        watch=None,
        fix="Size classes that do not mix: an arena per message (reset, not freed) and pools for "
            "fixed-size objects; reserve buffers once instead of growing them.",
        predicate=observe_fragmentation, timeout_s=12.0),
    Chapter(
        name="false-sharing", title="7. False sharing in the market-data ring",
        bug="The producer's tail and the consumer's head sit on one cache line, so every push and "
            "every pop steal the line from the other core. On separate physical cores this costs "
            "tens of ns per message; threads sharing a core hide it.",
        code="static constexpr std::size_t kLine = Padded ? 64 : alignof(std::size_t);",
        where="BasicSpscRing (PackedSpscRing = Padded false)", source="native/include/hftmem/spsc_ring.h",
        pane="latency", highlight="ring_ns_per_msg", gauge="ring_ns_per_msg",
        look="Allocators: hftmem_md_ring_packed now carries the messages; Latency: msgs/s and "
             "ring ns/msg before and after (the cost shows on bare metal, little on a small VM).",
        confirm="The packed ring's tail index advances while the padded ring's stays put; compare "
                "ring_ns_per_msg across the switch.",
        watch=None,
        fix="Padding: alignas(64) on the producer and consumer indices (SpscRing does this), each "
            "side keeping a cached copy of the other's index.",
        predicate=observe_false_sharing, timeout_s=8.0),
    Chapter(
        name="pool-exhaustion", title="8. Order pool exhaustion",
        bug="Orders are never retired (a lost cancel ack, a stuck venue), so the fixed-size order "
            "pool fills up. From then on every new order is rejected: the strategy goes silent.",
        code="if (!on(kPoolExhaustion))", where="Strategy::on_tick (the retire loop it guards is skipped)",
        pane="allocators", highlight="hftmem_order_pool.live", gauge="pool_rejects",
        look="The order pool's live gauge goes to 4096/4096 and rejects starts counting.",
        confirm="Watch hftmem_order_pool.rejects_: each hit is an order the strategy could not send.",
        watch="hftmem_order_pool.rejects_",
        fix="Bound what is open (time out unacknowledged orders) and alarm on the pool's high-water "
            "mark long before it is full; size the pool from the venue's order limits.",
        predicate=observe_pool_exhaustion, timeout_s=8.0),
)


def chapter_names() -> tuple[str, ...]:
    return tuple(c.name for c in CHAPTERS)


def find_chapter(name: str) -> Chapter:
    """The chapter called ``name``; raises KeyError listing the known ones."""
    for c in CHAPTERS:
        if c.name == name:
            return c
    raise KeyError(f"unknown chapter '{name}' (known: {', '.join(chapter_names())})")
