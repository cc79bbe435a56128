// Log-linear histogram of loop gaps (ns), HdrHistogram style.
//
// Values 0..15 ns get one bucket each. Above that, every power of two
// [2^k, 2^(k+1)) is split into 16 equal sub-buckets, so a bucket is at most
// 1/16 = 6.25% of its lower bound wide (e.g. 1.00-1.06 us, 1.00-1.06 ms).
// 976 buckets cover the whole uint64 range. record() is a clz, a shift and an
// increment: cheap enough for every iteration of the strategy loop.
// percentile() reports the UPPER bound of the bucket holding the quantile
// (conservative, never under-reports), clamped to the exact max.
#pragma once

#include <cstdint>
#include <cstring>

namespace engine {

class GapHistogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits + 1) * kSub;  // 976

  static int index(std::uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int k = 63 - __builtin_clzll(v);  // >= kSubBits
    return (k - kSubBits + 1) * kSub + static_cast<int>((v >> (k - kSubBits)) & (kSub - 1));
  }
  static std::uint64_t upper_bound(int idx) {
    if (idx < kSub) return static_cast<std::uint64_t>(idx);
    const int k = idx / kSub + kSubBits - 1;
    const std::uint64_t sub = static_cast<std::uint64_t>(idx % kSub);
    const std::uint64_t width = std::uint64_t{1} << (k - kSubBits);
    return ((kSub + sub) << (k - kSubBits)) + (width - 1);
  }

  void record(std::uint64_t v) {
    ++counts_[index(v)];
    ++total_;
    if (v > max_) max_ = v;
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }
  // q in (0,1], e.g. 0.999.
  std::uint64_t percentile(double q) const {
    if (total_ == 0) return 0;
    std::uint64_t target = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (target == 0) target = 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= target) {
        const std::uint64_t ub = upper_bound(i);
        return ub < max_ ? ub : max_;
      }
    }
    return max_;
  }
  void reset() {
    std::memset(counts_, 0, sizeof(counts_));
    total_ = 0;
    max_ = 0;
  }

 private:
  std::uint64_t counts_[kBuckets] = {};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace engine
