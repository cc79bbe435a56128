// hftmem/arena.h - bump allocator over a caller-provided buffer.
//
// Invariants (checked by native/tests/test_arena.cpp):
//  * The arena never owns memory: it carves [base_, base_ + capacity_) which
//    the caller provides and keeps alive. Nothing is ever freed individually.
//  * Every pointer returned by allocate() is kAlign (64) byte aligned (an
//    absolute address alignment, whatever the alignment of the buffer) and
//    lies entirely inside the buffer.
//  * 0 <= used_ <= capacity_; used_ counts bytes consumed from base_,
//    including alignment padding. high_water_ == max(used_) ever.
//  * allocate() that does not fit returns nullptr, increments failed_, and
//    leaves used_ unchanged. allocate(0) is treated as allocate(1).
//  * reset() sets used_ = 0 and increments resets_; previously returned
//    pointers become dangling (they are reused by the next allocations).
//
// Threading: single-threaded (owner thread). Observers may read the plain
// counters racily. Debugger-visible member names (stable):
//   base_, capacity_, used_, high_water_, resets_, failed_.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hftmem {

class Arena {
 public:
  static constexpr std::size_t kAlign = 64;

  Arena(void* buffer, std::size_t size) noexcept
      : base_(static_cast<unsigned char*>(buffer)), capacity_(buffer ? size : 0) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(std::size_t n) noexcept {
    if (n == 0) n = 1;
    const auto base = reinterpret_cast<std::uintptr_t>(base_);
    const std::uintptr_t cur = base + used_;
    const std::uintptr_t aligned = (cur + (kAlign - 1)) & ~std::uintptr_t{kAlign - 1};
    const std::size_t start = static_cast<std::size_t>(aligned - base);
    if (start > capacity_ || n > capacity_ - start) {
      ++failed_;
      return nullptr;
    }
    used_ = start + n;
    if (used_ > high_water_) high_water_ = used_;
    return base_ + start;
  }

  void reset() noexcept {
    used_ = 0;
    ++resets_;
  }

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t used() const noexcept { return used_; }

  // ---- owner-thread written, racily readable by observers ----------------
  alignas(64) unsigned char* base_;
  std::size_t capacity_;
  std::size_t used_ = 0;
  std::size_t high_water_ = 0;
  std::uint64_t resets_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace hftmem
