// How often one peer may ask for reads that cost the broker work (queue and
// worker lists, batch status, results pages): a token bucket per peer, so a
// peer that sends them in a loop and never reads the answers cannot fill the
// loop's turns and starve the workers. Over the limit a request gets a short
// RATE_LIMITED error instead of its answer. Bounded memory; loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

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

// How many requests one peer may have outstanding: received and not yet
// answered (an answer waiting for its commit, for its fsync, a parked fetch,
// a bulk job). Beyond the limit a request is answered RATE_LIMITED at once
// and never reaches the core, so a peer that sends fast and never reads
// holds at most `limit` answers in the broker, however fast it sends.
//
// The server gives each counted request a tag of its own in place of the
// peer's seq (peers choose their seqs, a hostile one reuses them) and puts
// the seq back on the answer carrying that tag: the count is exact.
//
// A peer whose queue in ZeroMQ is full (it does not read: ZeroMQ refused a
// message to it) is refused the same way for `full_backoff` after that, so
// the broker stops building answers nobody reads.
//
// An entry older than `max_age` is dropped (a request never answered must
// not shrink its peer's limit for ever). Memory: at most `limit` entries per
// peer with requests outstanding. Loop thread only.
class PeerInFlight {
 public:
  // Tags have this bit set; the core's own messages (Assign, Heartbeat)
  // carry small seqs or none.
  static constexpr uint64_t kTagBit = uint64_t(1) << 63;

  PeerInFlight(size_t limit, Millis max_age, Millis full_backoff)
      : limit_(limit), max_age_(max_age), full_backoff_(full_backoff) {}

  // If `peer` may have one more request outstanding, counts it and returns
  // the tag its answer will carry; nullopt if it may not.
  std::optional<uint64_t> Begin(const std::string& peer, uint64_t seq,
                                TimePoint now);
  // A message to `peer` carrying `tag` leaves: returns the seq of the
  // request it answers (no longer counted), nullopt if it answers none.
  std::optional<uint64_t> Answered(const std::string& peer, uint64_t tag);
  // ZeroMQ refused a message to `peer`: its queue is full.
  void QueueFull(const std::string& peer, TimePoint now);
  void Forget(const std::string& peer) { peers_.erase(peer); }

  size_t outstanding(const std::string& peer) const;
  size_t tracked() const { return peers_.size(); }
  size_t limit() const { return limit_; }

 private:
  struct Entry {
    uint64_t tag = 0;
    uint64_t seq = 0;
    TimePoint at{};
  };
  struct Peer {
    std::vector<Entry> requests;  // oldest first
    TimePoint full_until{};       // refused until then: its queue was full
  };
  static constexpr size_t kMaxPeers = 10'000;

  const size_t limit_;
  const Millis max_age_;
  const Millis full_backoff_;
  uint64_t next_tag_ = 0;
  std::unordered_map<std::string, Peer> peers_;
};

}  // namespace tq
