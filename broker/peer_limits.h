// How often one peer may ask for reads that cost the broker work (queue and
// worker lists, batch status, results pages): a token bucket per peer, so a
// peer that sends them in a loop and never reads the answers cannot fill the
// loop's turns and starve the workers. Over the limit a request gets a short
// RATE_LIMITED error instead of its answer. Bounded memory; loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace tq {

class PeerRateLimit {
 public:
  // `per_second` requests a second on average, bursts of `burst`.
  PeerRateLimit(double per_second, double burst)
      : per_second_(per_second), burst_(burst) {}

  // Whether `peer` may have one more now.
  bool Allow(const std::string& peer, TimePoint now);
  void Forget(const std::string& peer) { buckets_.erase(peer); }
  size_t tracked() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    TimePoint last{};
  };
  static constexpr size_t kMaxPeers = 10'000;

  const double per_second_;
  const double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace tq
