// Global operator new/new[] replacement that counts heap allocations made
// while the calling thread is "on the hot path" (the strategy thread sets
// the flag). std::string & co allocate through operator new, so they are
// counted too. Delegates to malloc/free, so ASan (which intercepts malloc)
// still sees and checks every block.
#include <cstdlib>
#include <new>

#include "engine.h"

namespace {
thread_local bool t_on_hot_path = false;

inline void count() {
  if (t_on_hot_path)
    __atomic_fetch_add(&hftmem_engine_stats.hot_path_allocs, 1, __ATOMIC_RELAXED);
}

void* checked_alloc(std::size_t n) {
  count();
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

namespace engine {
void set_on_hot_path(bool on) { t_on_hot_path = on; }
}  // namespace engine

void* operator new(std::size_t n) { return checked_alloc(n); }
void* operator new[](std::size_t n) { return checked_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  count();
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  count();
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
