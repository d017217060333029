// Latency in fixed buckets, recorded from any thread and read from any
// other: the store's commits on the loop thread, the WAL syncer's fsyncs on
// its own, the console's /metrics on an HTTP thread. Relaxed atomics: a
// reader may see a count one bucket ahead of the sum, never a torn value.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "tq/task_result.h"

namespace tq {

class LatencyHistogram {
 public:
  // Upper bounds in seconds; a last bucket (+Inf) follows them.
  static constexpr std::array<double, 14> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};

  void Record(std::chrono::nanoseconds elapsed);
  LatencyBuckets Snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// The upper bound of the bucket holding quantile q (0..1) of the samples:
// "at most this long". Infinity for the last bucket, 0 with no samples.
double QuantileUpperBound(const LatencyBuckets& h, double q);

// "≤ 2.5 ms", "> 2.5 s", "none": a quantile as a person reads it.
std::string DescribeQuantile(const LatencyBuckets& h, double q);

// Times one call: records on destruction.
class ScopedLatency {
 public:
  explicit ScopedLatency(LatencyHistogram* histogram)
      : histogram_(histogram), start_(std::chrono::steady_clock::now()) {}
  ~ScopedLatency() {
    if (histogram_ != nullptr) {
      histogram_->Record(std::chrono::steady_clock::now() - start_);
    }
  }
  ScopedLatency(const ScopedLatency&) = delete;
  ScopedLatency& operator=(const ScopedLatency&) = delete;

 private:
  LatencyHistogram* histogram_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tq
