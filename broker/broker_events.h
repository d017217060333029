// The live event feed behind `tq-ctl events`: subscriptions, their filters,
// leases and flow control. No I/O: the broker core publishes what happened
// (after the commit that holds it) and takes the Events messages to send.
//
// Memory is bounded whatever the subscribers do: at most kMaxSubscribers
// subscriptions; each has at most kWindow Events messages unacknowledged (of
// at most kEventsPerMessage events each) and a backlog of at most
// kMaxBacklog events. Events beyond that are dropped and counted, and one
// "missed" event with the count takes their place. A subscriber that
// vanishes costs nothing once its lease runs out.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "tq.pb.h"

namespace tq {

// What a subscription selects; an empty field matches everything.
struct SubscriptionFilter {
  std::string batch_id;
  std::string queue;
  std::string worker_id;
};

// One event as published, with what a filter matches it by beyond its own
// fields: a worker event matches a batch filter by the batches of the tasks
// it held, and a queue filter by the queues it serves.
struct PublishedEvent {
  wire::Event event;
  std::vector<std::string> batches;
  std::vector<std::string> queues;
};

class EventFeed {
 public:
  static constexpr size_t kMaxSubscribers = 64;
  static constexpr uint32_t kWindow = 4;
  static constexpr size_t kEventsPerMessage = 256;
  static constexpr size_t kMaxBacklog = 4096;
  static constexpr Millis kDefaultLease{10'000};
  static constexpr Millis kMinLease{1'000};
  static constexpr Millis kMaxLease{60'000};

  // A subscription for `peer` (replacing any it had); its Events carry
  // `seq`. Returns the lease granted, or nullopt when kMaxSubscribers other
  // peers are subscribed.
  std::optional<Millis> Subscribe(const std::string& peer, uint64_t seq,
                                  SubscriptionFilter filter, Millis lease,
                                  TimePoint now);
  // Renews the lease and acknowledges Events up to `number`; false if `peer`
  // has no subscription.
  bool Ack(const std::string& peer, uint64_t number, TimePoint now);
  // Ends the subscription of `peer`, if any; true if there was one.
  bool Remove(const std::string& peer);
  // Ends the subscriptions whose lease ran out by `now`; returns their peers.
  std::vector<std::string> Expire(TimePoint now);
  std::optional<TimePoint> NextExpiry() const;

  // Whether anyone listens: when not, events need not even be built.
  bool active() const { return !subs_.empty(); }
  size_t size() const { return subs_.size(); }

  // Adds `e` to the backlog of every subscription it matches.
  void Publish(const PublishedEvent& e);
  // Whether Take would return anything.
  bool HasSendable() const;
  // Events messages for the subscriptions whose window is open, as (peer,
  // envelope) pairs.
  std::vector<std::pair<std::string, wire::Envelope>> Take();

  // For tests: events waiting in the backlog of `peer` (markers included).
  size_t backlog(const std::string& peer) const;

  static bool Matches(const SubscriptionFilter& f, const PublishedEvent& e);

 private:
  struct Subscription {
    uint64_t seq = 0;
    SubscriptionFilter filter;
    Millis lease{0};
    TimePoint expires{};
    uint64_t sent = 0;                // Events numbers sent so far
    uint64_t acked = 0;               // highest number acknowledged
    std::deque<wire::Event> backlog;  // may end with a "missed" marker
  };
  bool WindowOpen(const Subscription& s) const {
    return s.sent - s.acked < kWindow && !s.backlog.empty();
  }

  std::unordered_map<std::string, Subscription> subs_;  // by peer
};

}  // namespace tq
