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

std::optional<uint64_t> PeerInFlight::Begin(const std::string& peer,
                                            uint64_t seq, TimePoint now) {
  if (peers_.size() >= kMaxPeers && !peers_.contains(peer)) {
    // Peers with nothing outstanding only remember a full queue: forgetting
    // them costs a little backoff, never a wrong count.
    std::erase_if(peers_,
                  [](const auto& p) { return p.second.requests.empty(); });
  }
  Peer& p = peers_[peer];
  std::erase_if(p.requests,
                [&](const Entry& e) { return now - e.at >= max_age_; });
  if (now < p.full_until || p.requests.size() >= limit_) return std::nullopt;
  p.full_until = TimePoint{};
  const uint64_t tag = kTagBit | ++next_tag_;
  p.requests.push_back({tag, seq, now});
  return tag;
}

std::optional<uint64_t> PeerInFlight::Answered(const std::string& peer,
                                               uint64_t tag) {
  if ((tag & kTagBit) == 0) return std::nullopt;
  auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  auto& requests = it->second.requests;
  auto e = std::find_if(requests.begin(), requests.end(),
                        [&](const Entry& r) { return r.tag == tag; });
  if (e == requests.end()) return std::nullopt;
  const uint64_t seq = e->seq;
  requests.erase(e);
  if (requests.empty() && it->second.full_until == TimePoint{}) {
    peers_.erase(it);
  }
  return seq;
}

void PeerInFlight::QueueFull(const std::string& peer, TimePoint now) {
  peers_[peer].full_until = now + full_backoff_;
}

size_t PeerInFlight::outstanding(const std::string& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? 0 : it->second.requests.size();
}

}  // namespace tq
