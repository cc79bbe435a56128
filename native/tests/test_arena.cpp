#include "hftmem/arena.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "check.h"

namespace {

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

void test_alignment_and_bounds() {
  alignas(64) static unsigned char buf[4096 + 64];
  // Deliberately misaligned buffer: results must still be 64-byte aligned.
  hftmem::Arena a(buf + 8, 4096);
  CHECK_EQ(a.capacity_, 4096u);
  void* p1 = a.allocate(1);
  void* p2 = a.allocate(100);
  void* p3 = a.allocate(0);
  CHECK(p1 && p2 && p3);
  CHECK(aligned64(p1) && aligned64(p2) && aligned64(p3));
  CHECK(p1 != p2 && p2 != p3);
  CHECK(static_cast<unsigned char*>(p2) >= static_cast<unsigned char*>(p1) + 1);
  CHECK(static_cast<unsigned char*>(p3) >= static_cast<unsigned char*>(p2) + 100);
  for (void* p : {p1, p2, p3}) {
    CHECK(static_cast<unsigned char*>(p) >= buf + 8);
    CHECK(static_cast<unsigned char*>(p) < buf + 8 + 4096);
  }
  std::memset(p2, 0xAB, 100);  // usable (ASan would flag out-of-buffer)
  CHECK(a.used_ <= a.capacity_);
  CHECK_EQ(a.failed_, 0u);
}

void test_full_and_reset() {
  alignas(64) static unsigned char buf[1024];
  hftmem::Arena a(buf, sizeof(buf));
  int n = 0;
  while (a.allocate(64) != nullptr) ++n;
  CHECK_EQ(n, 16);
  CHECK_EQ(a.used_, 1024u);
  CHECK_EQ(a.failed_, 1u);
  CHECK(a.allocate(1) == nullptr);
  CHECK_EQ(a.failed_, 2u);
  CHECK_EQ(a.used_, 1024u);  // unchanged by a failure
  CHECK(a.allocate(static_cast<std::size_t>(-1)) == nullptr);  // no overflow
  CHECK_EQ(a.failed_, 3u);
  a.reset();
  CHECK_EQ(a.resets_, 1u);
  CHECK_EQ(a.used_, 0u);
  CHECK_EQ(a.high_water_, 1024u);
  void* p = a.allocate(10);
  CHECK(p == buf);  // reuse from the start
  CHECK_EQ(a.used_, 10u);
  CHECK_EQ(a.high_water_, 1024u);
  CHECK(a.allocate(2000) == nullptr);
  a.reset();
  CHECK_EQ(a.resets_, 2u);
}

void test_high_water() {
  alignas(64) static unsigned char buf[4096];
  hftmem::Arena a(buf, sizeof(buf));
  a.allocate(300);
  CHECK_EQ(a.high_water_, 300u);
  a.reset();
  a.allocate(100);
  CHECK_EQ(a.used_, 100u);
  CHECK_EQ(a.high_water_, 300u);
  a.allocate(1);  // pads 100 -> 128
  CHECK_EQ(a.used_, 129u);
}

void test_null_buffer() {
  hftmem::Arena a(nullptr, 1000);
  CHECK_EQ(a.capacity_, 0u);
  CHECK(a.allocate(1) == nullptr);
  CHECK_EQ(a.failed_, 1u);
}

}  // namespace

int main() {
  test_alignment_and_bounds();
  test_full_and_reset();
  test_high_water();
  test_null_buffer();
  std::puts("test_arena: ok");
  return 0;
}
