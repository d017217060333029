#include "common/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace tq {
namespace {

std::string FormatBound(double seconds) {
  char buf[32];
  if (seconds < 0.001) {
    std::snprintf(buf, sizeof buf, "%g \u00b5s", seconds * 1e6);
  } else if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%g ms", seconds * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%g s", seconds);
  }
  return buf;
}

}  // namespace

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

double QuantileUpperBound(const LatencyBuckets& h, double q) {
  if (h.count == 0 || h.counts.size() != h.upper_bounds_s.size() + 1) return 0;
  const double wanted = q * double(h.count);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.upper_bounds_s.size(); ++i) {
    cumulative += h.counts[i];
    if (double(cumulative) >= wanted) return h.upper_bounds_s[i];
  }
  return std::numeric_limits<double>::infinity();
}

std::string DescribeQuantile(const LatencyBuckets& h, double q) {
  if (h.count == 0) return "none";
  const double bound = QuantileUpperBound(h, q);
  if (std::isinf(bound)) {
    return "> " + FormatBound(h.upper_bounds_s.back());
  }
  return "\u2264 " + FormatBound(bound);
}

}  // namespace tq
