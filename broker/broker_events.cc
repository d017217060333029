#include "broker/broker_events.h"

#include <algorithm>

namespace tq {

std::optional<Millis> EventFeed::Subscribe(const std::string& peer,
                                           uint64_t seq,
                                           SubscriptionFilter filter,
                                           Millis lease, TimePoint now) {
  if (!subs_.contains(peer) && subs_.size() >= kMaxSubscribers) {
    return std::nullopt;
  }
  if (lease.count() == 0) lease = kDefaultLease;
  lease = std::clamp(lease, kMinLease, kMaxLease);
  Subscription s;
  s.seq = seq;
  s.filter = std::move(filter);
  s.lease = lease;
  s.expires = now + lease;
  subs_[peer] = std::move(s);
  return lease;
}

bool EventFeed::Ack(const std::string& peer, uint64_t number, TimePoint now) {
  auto it = subs_.find(peer);
  if (it == subs_.end()) return false;
  Subscription& s = it->second;
  s.expires = now + s.lease;
  // Never beyond what was sent: a confused peer cannot open the window wider.
  s.acked = std::max(s.acked, std::min(number, s.sent));
  return true;
}

bool EventFeed::Remove(const std::string& peer) {
  return subs_.erase(peer) > 0;
}

std::vector<std::string> EventFeed::Expire(TimePoint now) {
  std::vector<std::string> gone;
  for (auto it = subs_.begin(); it != subs_.end();) {
    if (it->second.expires <= now) {
      gone.push_back(it->first);
      it = subs_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::optional<TimePoint> EventFeed::NextExpiry() const {
  std::optional<TimePoint> next;
  for (const auto& [peer, s] : subs_) {
    if (!next || s.expires < *next) next = s.expires;
  }
  return next;
}

bool EventFeed::Matches(const SubscriptionFilter& f, const PublishedEvent& e) {
  auto in = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  const wire::Event& ev = e.event;
  if (!f.batch_id.empty() && ev.batch_id() != f.batch_id &&
      !in(e.batches, f.batch_id)) {
    return false;
  }
  if (!f.queue.empty() && ev.queue() != f.queue && !in(e.queues, f.queue)) {
    return false;
  }
  if (!f.worker_id.empty() && ev.worker_id() != f.worker_id) return false;
  return true;
}

void EventFeed::Publish(const PublishedEvent& e) {
  for (auto& [peer, s] : subs_) {
    if (!Matches(s.filter, e)) continue;
    if (s.backlog.size() < kMaxBacklog) {
      s.backlog.push_back(e.event);
      continue;
    }
    // Full: the loss is counted in a marker (at most one past the cap).
    if (s.backlog.back().event() != "missed") {
      wire::Event missed;
      missed.set_time_ms(e.event.time_ms());
      missed.set_event("missed");
      s.backlog.push_back(std::move(missed));
    }
    s.backlog.back().set_count(s.backlog.back().count() + 1);
  }
}

bool EventFeed::HasSendable() const {
  for (const auto& [peer, s] : subs_) {
    if (WindowOpen(s)) return true;
  }
  return false;
}

std::vector<std::pair<std::string, wire::Envelope>> EventFeed::Take() {
  std::vector<std::pair<std::string, wire::Envelope>> out;
  for (auto& [peer, s] : subs_) {
    while (WindowOpen(s)) {
      wire::Envelope env;
      env.set_seq(s.seq);
      wire::Events* events = env.mutable_events();
      events->set_number(++s.sent);
      const size_t n = std::min(s.backlog.size(), kEventsPerMessage);
      for (size_t i = 0; i < n; ++i) {
        *events->add_events() = std::move(s.backlog.front());
        s.backlog.pop_front();
      }
      out.emplace_back(peer, std::move(env));
    }
  }
  return out;
}

size_t EventFeed::backlog(const std::string& peer) const {
  auto it = subs_.find(peer);
  return it == subs_.end() ? 0 : it->second.backlog.size();
}

}  // namespace tq
