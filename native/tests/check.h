// Minimal test helper: CHECK never vanishes under NDEBUG (unlike assert).
#pragma once
#include <cstdio>
#include <cstdlib>

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                   \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

#define CHECK_EQ(a, b) CHECK((a) == (b))
