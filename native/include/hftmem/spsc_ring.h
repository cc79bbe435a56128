// hftmem/spsc_ring.h - bounded lock-free single-producer single-consumer ring.
//
// Invariants (checked by native/tests/test_spsc_ring.cpp):
//  * N is a power of two; the ring holds up to N elements (all slots usable).
//  * tail_ (next write) and head_ (next read) are free-running counters; slot
//    = index & (N - 1). Always head_ <= tail_ <= head_ + N.
//  * Only the producer writes tail_, head_cache_ and push_failures_; only the
//    consumer writes head_ and tail_cache_. tail_ is published with release
//    after the slot is written; head_ is published with release after the
//    slot is read. Each side acquires the other's index.
//  * head_cache_ / tail_cache_ are each side's possibly-stale copy of the
//    other side's index (rigtorp/SPSCQueue style): the shared line is only
//    read when the cached value says full / empty.
//  * try_push() on a full ring returns false and increments push_failures_;
//    try_pop() on an empty ring returns false. Nothing is lost or duplicated.
//
// Layout. SpscRing (Padded = true): the producer's fields (tail_,
// head_cache_, push_failures_) share one 64-byte line, the consumer's fields
// (head_, tail_cache_) a second line, the slots start on a third. No false
// sharing between the two sides except for the genuine index handoff.
// PackedSpscRing (Padded = false): head_ and tail_ and the caches deliberately
// share ONE cache line, so every push and every pop invalidates the other
// core's copy of the line (the false-sharing demo).
//
// Indices are plain std::size_t accessed with GCC/Clang __atomic builtins
// (not std::atomic), so gdb and DWARF show plain integers. Debugger-visible
// member names (stable): tail_, head_cache_, push_failures_, head_,
// tail_cache_, capacity_, slots_[N].
//
// Threading: exactly one producer thread calls try_push(), exactly one
// consumer thread calls try_pop(). size()/empty() are approximate from any
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace hftmem {

template <typename T, std::size_t N, bool Padded = true>
class alignas(64) BasicSpscRing {
  static_assert(N >= 2 && (N & (N - 1)) == 0, "N must be a power of two");
  static_assert(std::is_trivially_copyable<T>::value,
                "slots are copied by assignment from both threads");
  static constexpr std::size_t kLine = Padded ? 64 : alignof(std::size_t);
  static constexpr std::size_t kMask = N - 1;

 public:
  static constexpr bool kPadded = Padded;

  BasicSpscRing() noexcept = default;
  BasicSpscRing(const BasicSpscRing&) = delete;
  BasicSpscRing& operator=(const BasicSpscRing&) = delete;

  // Producer only.
  bool try_push(const T& v) noexcept {
    const std::size_t t = tail_;  // only we write it
    if (t - head_cache_ >= N) {
      head_cache_ = __atomic_load_n(&head_, __ATOMIC_ACQUIRE);
      if (t - head_cache_ >= N) {
        ++push_failures_;
        return false;
      }
    }
    slots_[t & kMask] = v;
    __atomic_store_n(&tail_, t + 1, __ATOMIC_RELEASE);
    return true;
  }

  // Consumer only.
  bool try_pop(T& out) noexcept {
    const std::size_t h = head_;  // only we write it
    if (h == tail_cache_) {
      tail_cache_ = __atomic_load_n(&tail_, __ATOMIC_ACQUIRE);
      if (h == tail_cache_) return false;
    }
    out = slots_[h & kMask];
    __atomic_store_n(&head_, h + 1, __ATOMIC_RELEASE);
    return true;
  }

  // Approximate when called concurrently.
  std::size_t size() const noexcept {
    const std::size_t h = __atomic_load_n(&head_, __ATOMIC_ACQUIRE);
    const std::size_t t = __atomic_load_n(&tail_, __ATOMIC_ACQUIRE);
    return t >= h ? (t - h > N ? N : t - h) : 0;
  }
  bool empty() const noexcept { return size() == 0; }
  static constexpr std::size_t capacity() noexcept { return N; }

  // ---- producer line ------------------------------------------------------
  alignas(kLine) std::size_t tail_ = 0;     // next index to write
  std::size_t head_cache_ = 0;              // producer's copy of head_
  std::uint64_t push_failures_ = 0;         // try_push() on a full ring
  // ---- consumer line ------------------------------------------------------
  alignas(kLine) std::size_t head_ = 0;     // next index to read
  std::size_t tail_cache_ = 0;              // consumer's copy of tail_
  // ---- cold / slots --------------------------------------------------------
  alignas(64) std::size_t capacity_ = N;    // == capacity(), for debuggers
  alignas(64) T slots_[N];
};

template <typename T, std::size_t N>
using SpscRing = BasicSpscRing<T, N, true>;

// Head and tail deliberately on one cache line: the false-sharing scenario.
template <typename T, std::size_t N>
using PackedSpscRing = BasicSpscRing<T, N, false>;

}  // namespace hftmem
