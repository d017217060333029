#include "broker/peer_limits.h"

#include <algorithm>

namespace tq {

bool PeerRateLimit::Allow(const std::string& peer, TimePoint now) {
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxPeers) {
      // Full buckets say nothing a new one would not: drop them first.
      std::erase_if(buckets_, [&](const auto& b) {
        const double refill =
            std::chrono::duration<double>(now - b.second.last).count() *
            per_second_;
        return b.second.tokens + refill >= burst_;
      });
      if (buckets_.size() >= kMaxPeers) buckets_.clear();
    }
    it = buckets_.emplace(peer, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst_, b.tokens + elapsed * per_second_);
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace tq
