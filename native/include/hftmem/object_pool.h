// hftmem/object_pool.h - fixed-capacity object pool with an intrusive free list.
//
// Invariants (checked by native/tests/test_object_pool.cpp):
//  * Storage is N slots inside the object itself (no heap). Slot i lives at
//    slots_ + i * sizeof(Slot); sizeof(Slot) >= max(sizeof(T), sizeof(void*)).
//  * A FREE slot holds, at offset 0, the address of the next free slot (or
//    nullptr): the free list is intrusive. Every byte after that pointer is
//    kPoisonByte (0xDD). A LIVE slot holds a T constructed by allocate().
//  * state_[i] is kFree (0) or kLive (1) and always agrees with free-list
//    membership. live_ == number of kLive slots; live_ + free slots == N.
//  * high_water_ == max(live_) since construction.
//  * free(p) on a pointer that is not a slot start of this pool, or on a slot
//    that is already free, does nothing to the list: it returns false and
//    increments double_frees_ (a double free or a foreign pointer).
//  * allocate() on an empty pool returns nullptr and increments rejects_.
//  * allocate() verifies the poison of the slot it hands out; if any byte
//    after the next pointer is not kPoisonByte somebody wrote to the slot
//    while it was free (use-after-free): poison_violations_ is incremented
//    (the slot is still handed out; the pool never aborts).
//
// Threading: single-threaded. All calls must come from one owner thread.
// Other threads (or a debugger / /proc/PID/mem reader) may READ the counters
// racily; they are plain integers so DWARF shows them as such.
//
// Debugger-visible member names (stable, decoded by name from DWARF):
//   free_head_, live_, high_water_, rejects_, double_frees_,
//   poison_violations_, capacity_, state_[N], slots_[N].
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

namespace hftmem {

// Byte written over every free slot after its next pointer. 0xDD ("dead")
// is the same pattern MSVC's debug heap uses for freed memory.
inline constexpr unsigned char kPoisonByte = 0xDD;
inline constexpr std::size_t kCacheLineSize = 64;

template <typename T, std::size_t N>
class ObjectPool {
  static_assert(N > 0, "ObjectPool needs at least one slot");

 public:
  static constexpr std::uint8_t kFree = 0;
  static constexpr std::uint8_t kLive = 1;
  static constexpr std::size_t kSlotAlign =
      alignof(T) > alignof(void*) ? alignof(T) : alignof(void*);
  static constexpr std::size_t kSlotBytes =
      ((sizeof(T) > sizeof(void*) ? sizeof(T) : sizeof(void*)) + kSlotAlign - 1) /
      kSlotAlign * kSlotAlign;

  struct alignas(kSlotAlign) Slot {
    unsigned char bytes[kSlotBytes];
  };

  ObjectPool() noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      state_[i] = kFree;
      Slot* next = (i + 1 < N) ? &slots_[i + 1] : nullptr;
      poison_and_link(&slots_[i], next);
    }
    free_head_ = &slots_[0];
  }
  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;

  // Returns a default-initialised T, or nullptr (rejects_++) when exhausted.
  T* allocate() noexcept {
    Slot* s = free_head_;
    if (s == nullptr) {
      ++rejects_;
      return nullptr;
    }
    Slot* next;
    std::memcpy(&next, s->bytes, sizeof(next));
    for (std::size_t i = sizeof(void*); i < kSlotBytes; ++i) {
      if (s->bytes[i] != kPoisonByte) {
        ++poison_violations_;
        break;
      }
    }
    free_head_ = next;
    state_[index_of(s)] = kLive;
    if (++live_ > high_water_) high_water_ = live_;
    return ::new (static_cast<void*>(s->bytes)) T;
  }

  // Returns false (double_frees_++) for a double free or a foreign pointer.
  bool free(T* p) noexcept {
    const std::size_t i = slot_index(p);
    if (i == kNotASlot || state_[i] != kLive) {
      ++double_frees_;
      return false;
    }
    p->~T();
    state_[i] = kFree;
    poison_and_link(&slots_[i], free_head_);
    free_head_ = &slots_[i];
    --live_;
    return true;
  }

  // True if p is the start of a live slot of this pool.
  bool owns_live(const T* p) const noexcept {
    const std::size_t i = slot_index(p);
    return i != kNotASlot && state_[i] == kLive;
  }

  static constexpr std::size_t capacity() noexcept { return N; }
  std::size_t live() const noexcept { return live_; }
  std::size_t available() const noexcept { return N - live_; }

 private:
  static constexpr std::size_t kNotASlot = ~std::size_t{0};

  std::size_t index_of(const Slot* s) const noexcept {
    return static_cast<std::size_t>(s - slots_);
  }
  std::size_t slot_index(const void* p) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto b = reinterpret_cast<std::uintptr_t>(&slots_[0]);
    if (a < b || a >= b + sizeof(slots_)) return kNotASlot;
    if ((a - b) % sizeof(Slot) != 0) return kNotASlot;
    return (a - b) / sizeof(Slot);
  }
  static void poison_and_link(Slot* s, Slot* next) noexcept {
    std::memcpy(s->bytes, &next, sizeof(next));
    std::memset(s->bytes + sizeof(void*), kPoisonByte, kSlotBytes - sizeof(void*));
  }

 public:
  // ---- owner-thread written, racily readable by observers ----------------
  // Hot line: free list head and the counters touched on every call.
  alignas(kCacheLineSize) Slot* free_head_ = nullptr;
  std::size_t live_ = 0;
  std::size_t high_water_ = 0;
  std::uint64_t rejects_ = 0;
  std::uint64_t double_frees_ = 0;
  std::uint64_t poison_violations_ = 0;
  std::size_t capacity_ = N;  // == capacity(); a plain copy for debuggers
  // Per-slot state bytes (kFree / kLive), then the slots themselves.
  alignas(kCacheLineSize) std::uint8_t state_[N];
  alignas(kCacheLineSize) Slot slots_[N];
};

}  // namespace hftmem
