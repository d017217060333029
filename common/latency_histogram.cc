#include "common/latency_histogram.h"

#include <algorithm>

namespace tq {

void LatencyHistogram::Record(std::chrono::nanoseconds elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const size_t bucket =
      size_t(std::lower_bound(kBounds.begin(), kBounds.end(), seconds) -
             kBounds.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(uint64_t(std::max<int64_t>(elapsed.count(), 0)),
                    std::memory_order_relaxed);
}

LatencyBuckets LatencyHistogram::Snapshot() const {
  LatencyBuckets out;
  out.upper_bounds_s.assign(kBounds.begin(), kBounds.end());
  out.counts.reserve(counts_.size());
  for (const auto& c : counts_) {
    const uint64_t n = c.load(std::memory_order_relaxed);
    out.counts.push_back(n);
    out.count += n;
  }
  out.sum_s = double(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return out;
}

}  // namespace tq
