// Small throughput benchmark: padded SpscRing vs PackedSpscRing (head and
// tail on one cache line). Not run by the tests. Usage: bench_spsc_ring [items]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "hftmem/spsc_ring.h"

template <typename Ring>
double run(std::uint64_t n) {
  static Ring r;
  std::uint64_t sum = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < n; ++i)
      while (!r.try_push(i)) {
      }
  });
  std::uint64_t v = 0, got = 0;
  while (got < n)
    if (r.try_pop(v)) {
      sum += v;
      ++got;
    }
  producer.join();
  auto t1 = std::chrono::steady_clock::now();
  if (sum != n * (n - 1) / 2) std::abort();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
}

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20'000'000;
  for (int rep = 0; rep < 3; ++rep) {
    double padded = run<hftmem::SpscRing<std::uint64_t, 4096>>(n);
    double packed = run<hftmem::PackedSpscRing<std::uint64_t, 4096>>(n);
    std::printf("padded %.2f ns/op   packed %.2f ns/op   ratio %.2fx\n", padded, packed,
                packed / padded);
  }
  return 0;
}
