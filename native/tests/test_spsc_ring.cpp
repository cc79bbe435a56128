#include "hftmem/spsc_ring.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "check.h"

namespace {

void test_layout() {
  using R = hftmem::SpscRing<std::uint64_t, 8>;
  using P = hftmem::PackedSpscRing<std::uint64_t, 8>;
  static R r;
  static P p;
  auto line = [](const void* x) { return reinterpret_cast<std::uintptr_t>(x) / 64; };
  CHECK(line(&r.head_) != line(&r.tail_));
  CHECK(line(&r.head_) == line(&r.tail_cache_));
  CHECK(line(&r.tail_) == line(&r.head_cache_));
  CHECK(line(&r.slots_[0]) != line(&r.head_));
  CHECK(line(&p.head_) == line(&p.tail_));  // deliberately shared
  CHECK(line(&p.head_cache_) == line(&p.tail_cache_));
  CHECK(line(&p.slots_[0]) != line(&p.head_));
  CHECK_EQ(r.capacity(), 8u);
  CHECK_EQ(r.capacity_, 8u);
}

template <typename Ring>
void test_full_and_wrap() {
  static Ring r;
  std::uint64_t v = 0;
  CHECK(!r.try_pop(v));
  CHECK(r.empty());
  for (std::uint64_t i = 0; i < 8; ++i) CHECK(r.try_push(i));
  CHECK_EQ(r.size(), 8u);
  CHECK(!r.try_push(99));
  CHECK(!r.try_push(99));
  CHECK_EQ(r.push_failures_, 2u);
  // Wrap around many times with a varying fill level.
  std::uint64_t next_out = 0, next_in = 8;
  for (int round = 0; round < 1000; ++round) {
    int pops = 1 + round % 8;
    for (int k = 0; k < pops && !r.empty(); ++k) {
      CHECK(r.try_pop(v));
      CHECK_EQ(v, next_out);
      ++next_out;
    }
    while (r.try_push(next_in)) ++next_in;
    CHECK_EQ(r.size(), 8u);
  }
  CHECK(r.tail_ > 4000u);  // indices are free running, far past N
  CHECK_EQ(r.tail_ - r.head_, 8u);
  while (r.try_pop(v)) {
    CHECK_EQ(v, next_out);
    ++next_out;
  }
  CHECK_EQ(next_out, next_in);
  CHECK(r.empty());
}

template <typename Ring>
void stress(std::uint64_t n) {
  static Ring r;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < n; ++i)
      while (!r.try_push(i)) {
      }
  });
  std::uint64_t expect = 0, v = 0;
  while (expect < n) {
    if (r.try_pop(v)) {
      CHECK_EQ(v, expect);  // in order, nothing lost, nothing duplicated
      ++expect;
    }
  }
  producer.join();
  CHECK(!r.try_pop(v));
  CHECK_EQ(r.head_, n);
  CHECK_EQ(r.tail_, n);
}

}  // namespace

int main() {
  test_layout();
  test_full_and_wrap<hftmem::SpscRing<std::uint64_t, 8>>();
  test_full_and_wrap<hftmem::PackedSpscRing<std::uint64_t, 8>>();
  stress<hftmem::SpscRing<std::uint64_t, 1024>>(10'000'000);
  stress<hftmem::PackedSpscRing<std::uint64_t, 1024>>(1'000'000);
  stress<hftmem::SpscRing<std::uint64_t, 2>>(1'000'000);  // tiny ring: constant contention
  std::puts("test_spsc_ring: ok");
  return 0;
}
