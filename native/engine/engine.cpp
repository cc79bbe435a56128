// Demo engine: market-data producer -> SPSC ring -> strategy -> order pool,
// per-message scratch arena, latency histogram, and the eight scenarios.
#include "engine.h"

#include <malloc.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "latency_histogram.h"

// ---- globals found by plain name -------------------------------------------
__attribute__((used)) EngineStats hftmem_engine_stats;
__attribute__((used)) hftmem::ObjectPool<Order, kPoolSize> hftmem_order_pool;
__attribute__((used)) alignas(64) unsigned char hftmem_arena_buffer[kArenaBytes];
__attribute__((used)) hftmem::Arena hftmem_scratch_arena(hftmem_arena_buffer, kArenaBytes);
__attribute__((used)) hftmem::SpscRing<Tick, kRingSize> hftmem_md_ring;
__attribute__((used)) hftmem::PackedSpscRing<Tick, kRingSize> hftmem_md_ring_packed;
__attribute__((used)) Order hftmem_last_order;
__attribute__((used)) Order* hftmem_stale_order = nullptr;

namespace engine {

const ScenarioInfo kScenarios[kNumScenarios] = {
    {"leak", "orders allocated with new and never freed (~2 MiB/s, RSS grows)"},
    {"use-after-free", "every ~1000 msgs write through a pointer to a freed pool slot"},
    {"overflow", "symbol[8] <- \"AAPL.NASDAQ\" overruns into price"},
    {"double-free", "every ~1000 msgs free an order twice (pool detects it)"},
    {"hot-alloc", "std::string + new/delete per message on the hot path"},
    {"fragmentation", "malloc/free churn grows the heap while live bytes stay small"},
    {"false-sharing", "switch to the ring whose head and tail share one cache line"},
    {"pool-exhaustion", "stop retiring orders until the pool is empty"},
};

namespace {
EngineStats& S = hftmem_engine_stats;
volatile bool g_running = true;  // written by main, read by workers (relaxed atomics)

constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kSec = 1'000'000'000;
constexpr std::size_t kOpenOrders = 64;
constexpr std::uint64_t kLeakBytesPerSec = 2u << 20;
constexpr std::uint64_t kFragBytesPerSec = 4u << 20;
constexpr std::uint64_t kFragCapBytes = 256u << 20;
constexpr std::size_t kFragPinBytes = 48;
constexpr std::size_t kFragMaxPins = 4096;
}  // namespace

std::uint64_t now_ns() {
  // CLOCK_MONOTONIC through the vDSO: ~20 ns here (clocksource tsc), already in
  // ns, no calibration, and it stays right if the VM migrates or the TSC
  // frequency is misreported. rdtsc would save ~10 ns per iteration but needs
  // calibration and an invariant-TSC check; not worth it at these gap sizes.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * kSec + static_cast<std::uint64_t>(ts.tv_nsec);
}

int scenario_index(const char* name) {
  for (int i = 0; i < kNumScenarios; ++i)
    if (std::strcmp(name, kScenarios[i].name) == 0) return i;
  return -1;
}
std::uint64_t scenarios_now() { return load(S.scenarios); }
void set_scenario(int index, bool on) {
  const std::uint64_t bit = std::uint64_t{1} << index;
  if (on)
    __atomic_fetch_or(&S.scenarios, bit, __ATOMIC_RELAXED);
  else
    __atomic_fetch_and(&S.scenarios, ~bit, __ATOMIC_RELAXED);
}

bool running() { return __atomic_load_n(&g_running, __ATOMIC_RELAXED); }
void request_stop() { __atomic_store_n(&g_running, false, __ATOMIC_RELAXED); }

void init_stats() {
  std::memcpy(S.magic, "HFTMEM01", 8);
  store(S.version, 1);
  store(S.pid, static_cast<std::uint64_t>(getpid()));
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  store(S.start_time_ns,
        static_cast<std::uint64_t>(ts.tv_sec) * kSec + static_cast<std::uint64_t>(ts.tv_nsec));
  store(S.pool_capacity, kPoolSize);
  store(S.arena_capacity, hftmem_scratch_arena.capacity_);
  store(S.ring_capacity, kRingSize);
}

// ============================================================================
// Producer
// ============================================================================
namespace {
template <typename Ring>
bool push_retry(Ring& r, const Tick& t) {
  while (!r.try_push(t)) {
    if (!running()) return false;
    cpu_relax();
  }
  return true;
}
}  // namespace

void run_producer(const Config& cfg) {
  pthread_setname_np(pthread_self(), "hftmem-md");
  const std::uint64_t per_burst =
      cfg.spin ? 64 : (cfg.tick_rate / 1000 ? cfg.tick_rate / 1000 : 1);
  const std::uint16_t burst_len = static_cast<std::uint16_t>(per_burst > 4096 ? 4096 : per_burst);
  std::uint64_t seq = 0, drops = 0;
  bool packed = false;
  timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  const std::uint64_t bit_fs = std::uint64_t{1} << kFalseSharing;

  while (running()) {
    if (!cfg.spin) {
      next.tv_nsec += 1'000'000;
      if (next.tv_nsec >= 1'000'000'000) {
        next.tv_nsec -= 1'000'000'000;
        ++next.tv_sec;
      }
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
      // Fell far behind (stopped, overloaded): resynchronise instead of bursting.
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec > next.tv_sec + 1) next = now;
    }
    // False-sharing handover: tell the consumer, through the OLD ring, that
    // everything after this marker is in the other ring. The ring is FIFO, so
    // the consumer drains the old ring completely before it switches: no tick
    // is lost or duplicated and each side only ever uses one ring at a time.
    const bool want = (scenarios_now() & bit_fs) != 0;
    if (want != packed) {
      Tick marker{};
      marker.kind = kTickSwitchRing;
      const bool ok = packed ? push_retry(hftmem_md_ring_packed, marker)
                             : push_retry(hftmem_md_ring, marker);
      if (!ok) break;
      packed = want;
    }
    const std::uint64_t t0 = now_ns();
    for (std::uint16_t i = 0; i < burst_len; ++i) {
      Tick t;
      t.seq = seq;
      t.price = 1'000'000 + static_cast<std::int64_t>((seq * 2654435761u) % 1000);
      t.burst_start_ns = t0;
      t.qty = 100 + static_cast<std::uint32_t>(seq % 10) * 100;
      t.burst_len = burst_len;
      t.last_in_burst = (i + 1 == burst_len) ? 1 : 0;
      t.kind = kTickData;
      ++seq;
      bool ok;
      if (cfg.spin) {
        // Flat out: wait (spin) for room instead of dropping.
        ok = packed ? push_retry(hftmem_md_ring_packed, t) : push_retry(hftmem_md_ring, t);
        if (!ok) break;
      } else {
        ok = packed ? hftmem_md_ring_packed.try_push(t) : hftmem_md_ring.try_push(t);
        if (!ok) ++drops;
      }
    }
    store(S.ticks, seq);
    store(S.ring_drops, drops);
  }
}

// ============================================================================
// Strategy
// ============================================================================
namespace {

struct OrderNote {  // the hot-alloc scenario's per-message heap object
  std::uint64_t id;
  char text[56];
};

class Strategy {
 public:
  explicit Strategy(const Config& cfg) : cfg_(cfg) {}
  void run();

 private:
  void on_tick(const Tick& t, std::uint64_t now);
  void housekeeping(std::uint64_t now);
  void publish_window(std::uint64_t now);
  void mirror_stats();
  void retire_oldest();
  Order* pop_oldest();
  void leak_step(std::uint64_t now);
  void frag_step(std::uint64_t now);
  void frag_release();

  bool on(int s) const { return (scen_ & (std::uint64_t{1} << s)) != 0; }

  const Config& cfg_;
  std::uint64_t scen_ = 0;  // snapshot refreshed every housekeeping tick
  std::uint64_t messages_ = 0;
  std::uint64_t next_order_id_ = 1;
  std::uint64_t corrupted_ = 0;

  // FIFO of open orders (each new order retires the oldest beyond 64).
  Order* open_[kPoolSize] = {};
  std::size_t open_head_ = 0, open_count_ = 0;

  // Latency window.
  GapHistogram hist_;
  std::uint64_t window_start_ = 0, window_msgs_ = 0, window_index_ = 0;
  // Per burst: (consumer pops its last tick - producer starts pushing it) /
  // burst length, ns per message. Published as the window's MEDIAN, which
  // shrugs off bursts that straddle a preemption of either thread.
  GapHistogram burst_hist_;
  std::uint64_t next_hk_ = 0;
  bool packed_ = false;

  // leak
  std::uint64_t leak_last_ = 0, leak_credit_ = 0, leaked_ = 0;
  // fragmentation
  std::uint64_t frag_last_ = 0, frag_credit_ = 0, frag_grown_ = 0, frag_round_ = 0;
  void* frag_pins_[kFragMaxPins] = {};
  std::size_t frag_npins_ = 0;
  void* frag_block_ = nullptr;
  std::size_t frag_block_size_ = 0;
};

Order* Strategy::pop_oldest() {
  if (open_count_ == 0) return nullptr;
  Order* o = open_[open_head_];
  open_[open_head_] = nullptr;
  open_head_ = (open_head_ + 1) % kPoolSize;
  --open_count_;
  return o;
}

void Strategy::retire_oldest() {
  if (Order* o = pop_oldest()) hftmem_order_pool.free(o);
}

void Strategy::on_tick(const Tick& t, std::uint64_t now) {
  ++messages_;
  ++window_msgs_;
  store(S.messages, messages_);
  if (t.last_in_burst && t.burst_len != 0 && now > t.burst_start_ns)
    burst_hist_.record((now - t.burst_start_ns) / t.burst_len);

  // Per-message scratch: features + a text buffer, from the arena.
  hftmem::Arena& arena = hftmem_scratch_arena;
  arena.reset();
  auto* features = static_cast<std::int64_t*>(arena.allocate(128 + (t.seq & 3) * 64));
  if (features) {
    features[0] = t.price;
    features[1] = static_cast<std::int64_t>(t.qty);
  }
  if (auto* text = static_cast<char*>(arena.allocate(96))) std::memcpy(text, "signal", 7);

  Order* o = hftmem_order_pool.allocate();
  if (o != nullptr) {
    const std::int64_t intended = t.price;
    o->id = next_order_id_++;
    o->price = intended;
    o->qty = t.qty;
    o->side = static_cast<std::uint32_t>(t.seq & 1);
    o->tick_seq = t.seq;
    o->created_ns = now;
    o->flags = 0;
    o->strategy_id = 7;
    o->reserved = 0;
    if (on(kOverflow)) {
      // The bug: a naive strcpy of an 11-char venue symbol into char[8]. It
      // goes through a char* derived from the Order's base address, like a
      // real memcpy/strcpy bug would, so it overruns into price instead of
      // tripping a compile-time or UBSan array-bounds check.
      char* dst = reinterpret_cast<char*>(o) + offsetof(Order, symbol);
      const char* src = "AAPL.NASDAQ";
      std::size_t i = 0;
      do {
        dst[i] = src[i];
      } while (src[i++] != '\0');
    } else {
      std::memcpy(o->symbol, "AAPL\0\0\0\0", 8);
    }
    hftmem_last_order = *o;  // watchpoint target: rewritten every message
    // Risk check.
    if (o->price != intended) {  // flagged (and counted), still kept open
      ++corrupted_;
      store(S.corrupted_orders, corrupted_);
    }
    open_[(open_head_ + open_count_) % kPoolSize] = o;
    ++open_count_;
  }
  if (!on(kPoolExhaustion))
    while (open_count_ > kOpenOrders) retire_oldest();

  if (on(kHotAlloc)) {
    // Longer than the SSO buffer: one heap allocation, plus concatenations.
    std::string note = "order " + std::to_string(next_order_id_) + " AAPL.NASDAQ momentum";
    auto* n = new OrderNote;
    n->id = next_order_id_;
    std::memcpy(n->text, note.data(), note.size() < sizeof(n->text) ? note.size() : 8);
    asm volatile("" : : "r"(n) : "memory");  // keep new/delete from being elided
    delete n;
  }
  if (on(kUseAfterFree) && messages_ % 1000 == 0) {
    if (Order* victim = pop_oldest()) {
      hftmem_order_pool.free(victim);
      // The bug: a stale pointer still used after the order went back to the
      // pool. Writes land in the poison (not at offset 0: the free-list link
      // survives), and the pool notices when it hands the slot out again.
      *reinterpret_cast<volatile std::uint32_t*>(&victim->qty) = 0xBADu;
      *reinterpret_cast<volatile std::int64_t*>(&victim->price) = -1;
      __atomic_store_n(&hftmem_stale_order, victim, __ATOMIC_RELAXED);
    }
  }
  if (on(kDoubleFree) && messages_ % 1000 == 500) {
    if (Order* victim = pop_oldest()) {
      hftmem_order_pool.free(victim);
      hftmem_order_pool.free(victim);  // detected: returns false, list intact
    }
  }
}

void Strategy::leak_step(std::uint64_t now) {
  // Rate-limited by wall time: ~2 MiB/s whatever the tick rate.
  const std::uint64_t dt = now - leak_last_;
  leak_last_ = now;
  leak_credit_ += dt * kLeakBytesPerSec / kSec;
  if (leak_credit_ > (64u << 10)) leak_credit_ = 64u << 10;
  while (leak_credit_ >= 64 * sizeof(Order)) {
    Order* leaked = new Order[64];               // never freed
    std::memset(leaked, 0x4C, 64 * sizeof(Order));  // touch: RSS really grows
    asm volatile("" : : "r"(leaked) : "memory");
    leak_credit_ -= 64 * sizeof(Order);
    leaked_ += 64 * sizeof(Order);
  }
  store(S.leaked_bytes, leaked_);
}

// Fragmentation: each step mallocs a block strictly larger than every hole
// left so far, touches it, then shrinks the PREVIOUS block in place with
// realloc() to a 48-byte "pin". The pin's tail becomes a hole that is bounded
// by the pin below and the live block above, so holes never coalesce and are
// never big enough for the next request: the heap (brk, [heap] with
// M_ARENA_MAX=1) and RSS grow by ~4 MiB/s while live bytes are pins + one
// block (tens of KiB). A little mixed-size transient churn rides along.
// Capped at 256 MiB of growth; switching off frees everything (and trims).
void Strategy::frag_step(std::uint64_t now) {
  const std::uint64_t dt = now - frag_last_;
  frag_last_ = now;
  frag_credit_ += dt * kFragBytesPerSec / kSec;
  if (frag_credit_ > (1u << 20)) frag_credit_ = 1u << 20;
  for (int k = 0; k < 4; ++k) {  // transient mixed sizes, freed at once
    void* p = std::malloc(16 + ((frag_round_ * 131 + k * 977) % 2000));
    asm volatile("" : : "r"(p) : "memory");
    std::free(p);
  }
  while (frag_grown_ < kFragCapBytes && frag_npins_ < kFragMaxPins) {
    const std::size_t size = 4096 + frag_round_ * 128 + (frag_round_ * 37) % 128;
    if (frag_credit_ < size) break;
    void* b = std::malloc(size);
    if (b == nullptr) break;
    std::memset(b, 0x46, size);
    if (frag_block_ != nullptr) {
      void* pin = std::realloc(frag_block_, kFragPinBytes);
      frag_pins_[frag_npins_++] = pin ? pin : frag_block_;
    }
    frag_block_ = b;
    frag_block_size_ = size;
    frag_credit_ -= size;
    frag_grown_ += size;
    ++frag_round_;
  }
  store(S.frag_live_bytes, frag_npins_ * kFragPinBytes + frag_block_size_);
}

void Strategy::frag_release() {
  for (std::size_t i = 0; i < frag_npins_; ++i) std::free(frag_pins_[i]);
  std::free(frag_block_);
  frag_npins_ = 0;
  frag_block_ = nullptr;
  frag_block_size_ = 0;
  frag_grown_ = 0;
  frag_round_ = 0;
  frag_credit_ = 0;
  malloc_trim(0);
  store(S.frag_live_bytes, 0);
}

void Strategy::mirror_stats() {
  const auto& p = hftmem_order_pool;
  const auto& a = hftmem_scratch_arena;
  store(S.pool_live, p.live_);
  store(S.pool_high_water, p.high_water_);
  store(S.pool_rejects, p.rejects_);
  store(S.pool_double_frees, p.double_frees_);
  store(S.pool_poison_violations, p.poison_violations_);
  store(S.arena_used, a.used_);
  store(S.arena_high_water, a.high_water_);
  store(S.arena_resets, a.resets_);
  store(S.arena_failed, a.failed_);
  store(S.ring_depth, packed_ ? hftmem_md_ring_packed.size() : hftmem_md_ring.size());
}

void Strategy::housekeeping(std::uint64_t now) {
  const std::uint64_t prev = scen_;
  scen_ = scenarios_now();
  const std::uint64_t turned_off = prev & ~scen_;
  const std::uint64_t turned_on = scen_ & ~prev;
  if (turned_off & (std::uint64_t{1} << kPoolExhaustion))
    while (open_count_ > kOpenOrders) retire_oldest();  // release held orders
  if (turned_off & (std::uint64_t{1} << kFragmentation)) frag_release();
  if (turned_off & (std::uint64_t{1} << kUseAfterFree))
    __atomic_store_n(&hftmem_stale_order, nullptr, __ATOMIC_RELAXED);
  if (turned_on & (std::uint64_t{1} << kLeak)) leak_last_ = now;
  if (turned_on & (std::uint64_t{1} << kFragmentation)) frag_last_ = now;
  if (on(kLeak)) leak_step(now);
  if (on(kFragmentation)) frag_step(now);
  mirror_stats();
}

void Strategy::publish_window(std::uint64_t now) {
  const std::uint64_t dur = now - window_start_;
  const std::uint64_t w = window_index_;
  const std::uint64_t max_gap = hist_.max();
  const std::uint64_t p999 = hist_.percentile(0.999);
  store(S.last_max_gap_ns, max_gap);
  store(S.last_p999_gap_ns, p999);
  store(S.last_iterations, hist_.total());
  store(S.max_gap_hist[w % 64], max_gap);
  store(S.p999_gap_hist[w % 64], p999);
  store(S.msgs_per_sec, dur ? window_msgs_ * kSec / dur : 0);
  store(S.ring_ns_per_msg, burst_hist_.percentile(0.5));
  __atomic_thread_fence(__ATOMIC_RELEASE);
  store(S.window_index, w + 1);  // last: readers see a complete window
  window_index_ = w + 1;
  hist_.reset();
  window_msgs_ = 0;
  burst_hist_.reset();
  window_start_ = now;
}

void Strategy::run() {
  pthread_setname_np(pthread_self(), "hftmem-strat");
  set_on_hot_path(true);
  std::uint64_t prev = now_ns();
  window_start_ = prev;
  next_hk_ = prev;
  while (running()) {
    const std::uint64_t now = now_ns();
    hist_.record(now - prev);  // gap between consecutive loop iterations
    prev = now;
    if (now >= next_hk_) {
      housekeeping(now);
      next_hk_ = now + kMs;
    }
    if (now - window_start_ >= kSec) publish_window(now);

    Tick t;
    const bool got = packed_ ? hftmem_md_ring_packed.try_pop(t) : hftmem_md_ring.try_pop(t);
    if (!got) {
      cpu_relax();
      continue;
    }
    if (t.kind == kTickSwitchRing) {
      packed_ = !packed_;  // old ring is drained up to the marker
      continue;
    }
    on_tick(t, now);
  }
  set_on_hot_path(false);
  if (frag_npins_ || frag_block_) frag_release();
  while (open_count_ > 0) retire_oldest();
  mirror_stats();
}

}  // namespace

void run_strategy(const Config& cfg) {
  // ~32 KiB object (open FIFO, frag pins, histogram): keep it off the stack.
  auto* s = new Strategy(cfg);
  s->run();
  delete s;
}

}  // namespace engine
