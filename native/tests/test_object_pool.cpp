#include "hftmem/object_pool.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "check.h"

namespace {

struct Obj {
  std::uint64_t id;
  std::uint32_t qty;
  std::uint32_t side;
  char pad[48];
};
static_assert(sizeof(Obj) == 64, "");

using Pool = hftmem::ObjectPool<Obj, 16>;

void test_exhaustion_and_high_water() {
  static Pool pool;
  CHECK_EQ(pool.capacity(), 16u);
  CHECK_EQ(pool.capacity_, 16u);
  CHECK_EQ(pool.live_, 0u);
  std::vector<Obj*> got;
  for (int i = 0; i < 16; ++i) {
    Obj* o = pool.allocate();
    CHECK(o != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(o) % alignof(Obj) == 0);
    for (Obj* p : got) CHECK(p != o);  // distinct slots
    got.push_back(o);
  }
  CHECK_EQ(pool.live_, 16u);
  CHECK_EQ(pool.high_water_, 16u);
  CHECK(pool.allocate() == nullptr);
  CHECK(pool.allocate() == nullptr);
  CHECK_EQ(pool.rejects_, 2u);
  for (int i = 0; i < 10; ++i) CHECK(pool.free(got[i]));
  CHECK_EQ(pool.live_, 6u);
  CHECK_EQ(pool.high_water_, 16u);  // high water is sticky
  for (int i = 0; i < 10; ++i) CHECK(pool.allocate() != nullptr);
  CHECK(pool.allocate() == nullptr);
  CHECK_EQ(pool.rejects_, 3u);
  CHECK_EQ(pool.poison_violations_, 0u);
  CHECK_EQ(pool.double_frees_, 0u);
}

void test_free_list_is_intrusive_and_poisoned() {
  static Pool pool;
  Obj* a = pool.allocate();
  Obj* b = pool.allocate();
  CHECK(pool.free(a));
  // The free slot holds the next free slot's address at offset 0 ...
  void* next = nullptr;
  std::memcpy(&next, a, sizeof(next));
  CHECK(next == static_cast<void*>(&pool.slots_[2]));
  CHECK(pool.free_head_ == reinterpret_cast<Pool::Slot*>(a));
  // ... and kPoisonByte in every byte after it.
  const auto* bytes = reinterpret_cast<const unsigned char*>(a);
  for (std::size_t i = sizeof(void*); i < sizeof(Obj); ++i)
    CHECK_EQ(bytes[i], hftmem::kPoisonByte);
  CHECK_EQ(hftmem::kPoisonByte, 0xDD);
  CHECK_EQ(pool.state_[0], Pool::kFree);
  CHECK_EQ(pool.state_[1], Pool::kLive);
  CHECK(pool.owns_live(b));
  CHECK(!pool.owns_live(a));
  // LIFO reuse
  CHECK(pool.allocate() == a);
  CHECK_EQ(pool.poison_violations_, 0u);
}

void test_double_free_and_foreign_pointer() {
  static Pool pool;
  Obj* a = pool.allocate();
  Obj* b = pool.allocate();
  CHECK(pool.free(a));
  CHECK(!pool.free(a));  // double free detected
  CHECK_EQ(pool.double_frees_, 1u);
  CHECK_EQ(pool.live_, 1u);
  Obj foreign{};
  CHECK(!pool.free(&foreign));  // not ours
  CHECK(!pool.free(reinterpret_cast<Obj*>(reinterpret_cast<char*>(b) + 8)));  // mid-slot
  CHECK(!pool.free(nullptr));
  CHECK_EQ(pool.double_frees_, 4u);
  CHECK_EQ(pool.live_, 1u);
  // The list is intact: exactly 15 more allocations succeed, all distinct.
  std::vector<Obj*> got{b};
  for (int i = 0; i < 15; ++i) {
    Obj* o = pool.allocate();
    CHECK(o != nullptr);
    for (Obj* p : got) CHECK(p != o);
    got.push_back(o);
  }
  CHECK(pool.allocate() == nullptr);
  CHECK_EQ(pool.poison_violations_, 0u);
}

void test_use_after_free_detected() {
  static Pool pool;
  Obj* a = pool.allocate();
  CHECK(pool.free(a));
  // Write through the stale pointer to a field NOT at offset 0.
  *reinterpret_cast<volatile std::uint32_t*>(&a->qty) = 0xBADu;
  CHECK_EQ(pool.poison_violations_, 0u);
  Obj* again = pool.allocate();  // same slot handed out (LIFO)
  CHECK(again == a);
  CHECK_EQ(pool.poison_violations_, 1u);
  // A clean slot does not count.
  Obj* other = pool.allocate();
  CHECK(other != nullptr);
  CHECK_EQ(pool.poison_violations_, 1u);
  CHECK_EQ(pool.live_, 2u);
}

void test_small_type() {
  static hftmem::ObjectPool<std::uint8_t, 4> tiny;  // slot grows to hold the next pointer
  CHECK(sizeof(tiny.slots_[0]) >= sizeof(void*));
  std::uint8_t* p[4];
  for (auto& x : p) CHECK((x = tiny.allocate()) != nullptr);
  CHECK(tiny.allocate() == nullptr);
  for (auto& x : p) CHECK(tiny.free(x));
  CHECK_EQ(tiny.live_, 0u);
  CHECK_EQ(tiny.poison_violations_, 0u);
}

}  // namespace

int main() {
  test_exhaustion_and_high_water();
  test_free_list_is_intrusive_and_poisoned();
  test_double_free_and_foreign_pointer();
  test_use_after_free_detected();
  test_small_type();
  std::puts("test_object_pool: ok");
  return 0;
}
