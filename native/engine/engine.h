// Demo engine shared declarations: wire types, the stats block, the globals
// the inspector finds by name, and the scenario table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hftmem/arena.h"
#include "hftmem/object_pool.h"
#include "hftmem/spsc_ring.h"

// One market-data message. kind != 0 are control markers inside the stream.
struct Tick {
  std::uint64_t seq;
  std::int64_t price;          // 1e-4 units
  std::uint64_t burst_start_ns;  // CLOCK_MONOTONIC when the producer began this burst
  std::uint32_t qty;
  std::uint16_t burst_len;     // ticks in this burst
  std::uint8_t last_in_burst;  // 1 on the last tick of a burst
  std::uint8_t kind;           // kTickData or kTickSwitchRing
};
static_assert(sizeof(Tick) == 32, "Tick layout");
constexpr std::uint8_t kTickData = 0;
constexpr std::uint8_t kTickSwitchRing = 1;  // "the producer now writes the other ring"

// 64 bytes. The overflow scenario relies on price directly following symbol.
struct Order {
  std::uint64_t id;
  char symbol[8];
  std::int64_t price;
  std::uint32_t qty;
  std::uint32_t side;  // 0 buy, 1 sell
  std::uint64_t tick_seq;
  std::uint64_t created_ns;
  std::uint32_t flags;
  std::uint32_t strategy_id;
  std::uint64_t reserved;
};
static_assert(sizeof(Order) == 64, "Order is one cache line");
static_assert(offsetof(Order, price) == offsetof(Order, symbol) + sizeof(Order::symbol),
              "overflow scenario: price must follow symbol");

// Stats block, layout version 1. Every field is a plain uint64_t written with
// __atomic_store_n(..., __ATOMIC_RELAXED) so the inspector can read it from
// /proc/PID/mem at any time and DWARF shows plain integers. Do not reorder.
struct alignas(64) EngineStats {
  char magic[8];  // "HFTMEM01", no NUL
  std::uint64_t version;
  std::uint64_t pid;
  std::uint64_t start_time_ns;  // CLOCK_REALTIME
  std::uint64_t ticks;          // produced
  std::uint64_t messages;       // consumed
  std::uint64_t scenarios;      // bit i = kScenarios[i] enabled
  std::uint64_t pool_live;
  std::uint64_t pool_high_water;
  std::uint64_t pool_capacity;
  std::uint64_t pool_rejects;
  std::uint64_t pool_double_frees;
  std::uint64_t pool_poison_violations;
  std::uint64_t arena_used;
  std::uint64_t arena_high_water;
  std::uint64_t arena_capacity;
  std::uint64_t arena_resets;
  std::uint64_t arena_failed;
  std::uint64_t ring_depth;
  std::uint64_t ring_capacity;
  std::uint64_t ring_drops;
  std::uint64_t hot_path_allocs;
  std::uint64_t leaked_bytes;
  std::uint64_t corrupted_orders;
  std::uint64_t frag_live_bytes;
  std::uint64_t ring_ns_per_msg;
  std::uint64_t msgs_per_sec;
  std::uint64_t window_index;
  std::uint64_t last_max_gap_ns;
  std::uint64_t last_p999_gap_ns;
  std::uint64_t last_iterations;
  std::uint64_t max_gap_hist[64];  // [w % 64] = window w (0-based)
  std::uint64_t p999_gap_hist[64];
};
static_assert(offsetof(EngineStats, window_index) == 27 * 8, "stats layout v1");
static_assert(offsetof(EngineStats, max_gap_hist) == 31 * 8, "stats layout v1");

constexpr std::size_t kPoolSize = 4096;
constexpr std::size_t kRingSize = 4096;
constexpr std::size_t kArenaBytes = 1u << 20;

// ---- globals found by plain name (gdb / nm); defined in engine.cpp ----------
extern EngineStats hftmem_engine_stats;
extern hftmem::ObjectPool<Order, kPoolSize> hftmem_order_pool;
extern unsigned char hftmem_arena_buffer[kArenaBytes];
extern hftmem::Arena hftmem_scratch_arena;
extern hftmem::SpscRing<Tick, kRingSize> hftmem_md_ring;
extern hftmem::PackedSpscRing<Tick, kRingSize> hftmem_md_ring_packed;
extern Order hftmem_last_order;
extern Order* hftmem_stale_order;

namespace engine {

struct ScenarioInfo {
  const char* name;
  const char* description;
};
constexpr int kNumScenarios = 8;
extern const ScenarioInfo kScenarios[kNumScenarios];
enum Scenario : int {
  kLeak = 0,
  kUseAfterFree,
  kOverflow,
  kDoubleFree,
  kHotAlloc,
  kFragmentation,
  kFalseSharing,
  kPoolExhaustion,
};

int scenario_index(const char* name);  // -1 if unknown
std::uint64_t scenarios_now();         // relaxed load of the bit set
void set_scenario(int index, bool on);

struct Config {
  std::uint64_t tick_rate = 100000;  // ticks per second when paced
  bool spin = false;
};

void init_stats();
bool running();
void request_stop();
void run_producer(const Config& cfg);
void run_strategy(const Config& cfg);

// Heap-allocation counting (hot_alloc_counter.cpp).
void set_on_hot_path(bool on);

std::uint64_t now_ns();  // CLOCK_MONOTONIC

inline void store(std::uint64_t& field, std::uint64_t v) {
  __atomic_store_n(&field, v, __ATOMIC_RELAXED);
}
inline std::uint64_t load(const std::uint64_t& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

}  // namespace engine
