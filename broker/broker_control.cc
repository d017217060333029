// The broker core's operator controls beyond the batch: live events
// (subscriptions and what they are told), per-task cancel (and terminate),
// and pausing a queue. See docs/lifecycle.md.
#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "common/queue_name.h"

namespace tq {
namespace {

constexpr size_t kMaxFilterBytes = 128;

}  // namespace

// ---------------------------------------------------------------- events

void Broker::HandleSubscribe(const std::string& peer, uint64_t seq,
                             const wire::Subscribe& req) {
  if (!req.queue().empty()) {
    if (Status valid = ValidateQueueName(req.queue()); !valid.ok()) {
      SendError(peer, seq, wire::INVALID_ARGUMENT, valid.message());
      return;
    }
  }
  if (req.batch_id().size() > kMaxFilterBytes ||
      req.worker_id().size() > kMaxFilterBytes) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "batch and worker filters are at most 128 bytes");
    return;
  }
  SubscriptionFilter filter{req.batch_id(), req.queue(), req.worker_id()};
  std::optional<Millis> lease = events_.Subscribe(
      peer, seq, std::move(filter), Millis(req.lease_ms()), clock_.Now());
  if (!lease) {
    SendError(peer, seq, wire::RATE_LIMITED,
              "too many event subscribers (" +
                  std::to_string(EventFeed::kMaxSubscribers) +
                  "): try again later",
              true);
    return;
  }
  spdlog::info(
      "events: new subscriber ({} subscribed; batch {}, queue {}, "
      "worker {})",
      events_.size(), req.batch_id().empty() ? "*" : req.batch_id(),
      req.queue().empty() ? "*" : req.queue(),
      req.worker_id().empty() ? "*" : req.worker_id());
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_subscribed()->set_lease_ms(uint32_t(lease->count()));
  env.mutable_subscribed()->set_window(EventFeed::kWindow);
  Send(peer, std::move(env));
}

void Broker::HandleEventsAck(const std::string& peer, uint64_t seq,
                             const wire::EventsAck& ack) {
  if (events_.Ack(peer, ack.number(), clock_.Now())) return;
  SendError(peer, seq, wire::NOT_FOUND,
            "no event subscription (its lease ran out?): subscribe again");
}

void Broker::ExpireSubscriptions(TimePoint now) {
  for (const std::string& peer : events_.Expire(now)) {
    (void)peer;
    spdlog::info("events: a subscriber's lease ran out ({} left)",
                 events_.size());
  }
}

PublishedEvent* Broker::NewEvent(const char* kind, const TaskEntry* t) {
  if (!events_.active()) return nullptr;
  PublishedEvent& e = turn_events_.emplace_back();
  e.event.set_time_ms(clock_.WallMs());
  e.event.set_event(kind);
  if (t != nullptr) {
    e.event.set_task_id(t->id);
    e.event.set_batch_id(t->batch_id());
    e.event.set_queue(t->queue_name());
    e.event.set_url(UrlOf(t->id));
  }
  return &e;
}

void Broker::PublishTurnEvents(bool committed, std::vector<Outgoing>* out) {
  if (committed) {
    for (const PublishedEvent& e : turn_events_) events_.Publish(e);
  }
  turn_events_.clear();
  for (auto& [peer, env] : events_.Take()) {
    out->push_back({peer, std::move(env)});  // counted by Commit()
  }
}

const std::string& Broker::UrlOf(uint64_t id) const {
  static const std::string kNone;
  auto it = live_leases_.find(id);
  return it == live_leases_.end() ? kNone : it->second.url;
}

std::string Broker::TaskName(uint64_t id) const {
  const std::string& url = UrlOf(id);
  std::string name = "task " + std::to_string(id);
  if (!url.empty()) name += " (" + url.substr(0, 200) + ")";
  return name;
}

// ---------------------------------------------------------------- cancel

void Broker::HandleCancelTask(const std::string& peer, uint64_t seq,
                              const wire::CancelTask& req,
                              const PeerIdentity& who) {
  TaskEntry* t = tasks_.Find(req.task_id());
  if (t == nullptr) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no task " + std::to_string(req.task_id()) +
                  " is queued, leased or waiting to retry (unknown, or "
                  "finished already)");
    return;
  }
  if (who.keyed && !who.roles.Has(Role::kAdmin) &&
      !OwnsBatch(who, t->batch_id(), /*submitting=*/false)) {
    Deny(peer, seq, who,
         who.Describe() +
             " may cancel only tasks of the batches it "
             "submitted; task " +
             std::to_string(t->id) + " is not one of them");
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  const uint64_t id = t->id;
  const bool leased = t->state == TaskState::kLeased;
  WorkerSession* holder =
      leased && t->holder != 0 ? sessions_.Find(t->holder) : nullptr;
  const uint64_t token = t->token;
  AttemptResult outcome;
  outcome.exit_code = -1;
  outcome.error = "cancelled by an operator";
  if (holder != nullptr) {
    outcome.error += std::string(" while running on worker ") +
                     holder->worker_id +
                     (req.terminate() ? " (handler terminated)" : "");
    outcome.worker = holder->worker_id;
    // The running attempt ends here: its result, if it comes, is stale.
    RecordAttempt(id, t->attempts, holder->worker_id, false, "", outcome.error);
  }
  spdlog::info("{} of batch {} cancelled by an operator ({})", TaskName(id),
               t->batch_id(),
               holder != nullptr ? "it was running on " + holder->worker_id
                                 : std::string(TaskStateName(t->state)));
  const std::string holder_peer = holder != nullptr ? holder->peer : "";
  Finish(*t, TaskState::kCancelled, std::move(outcome));
  if (!store_ok()) {
    SendStoreError(peer, seq);
    return;
  }
  if (req.terminate() && !holder_peer.empty()) {
    // Sent now, not after the commit: a commit that fails leaves the task
    // leased with its handler killed, and that attempt fails (and counts).
    wire::Envelope kill;
    auto* k = kill.mutable_terminate_task();
    k->set_task_id(id);
    k->set_token(token);
    k->set_reason("cancelled by an operator");
    Send(holder_peer, std::move(kill));
  }
  SendAdminAck(peer, seq, 1);
}

// ---------------------------------------------------------------- pause

void Broker::HandlePauseQueue(const std::string& peer, uint64_t seq,
                              const wire::PauseQueue& req) {
  if (Status valid = ValidateQueueName(req.queue()); !valid.ok()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT, valid.message());
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  if (tasks_.IsPaused(req.queue()) == req.paused()) {
    SendAdminAck(peer, seq, 0);
    return;
  }
  Status st = store_.SetQueuePaused(req.queue(), req.paused(), clock_.WallMs());
  if (!st.ok()) {
    OnStoreFailure(st);
    SendStoreError(peer, seq);
    return;
  }
  tasks_.SetPaused(req.queue(), req.paused());
  const auto& queue = *tasks_.queues().find(req.queue());
  spdlog::info("queue {} {} by an operator ({} tasks queued)", req.queue(),
               req.paused() ? "paused" : "resumed",
               queue.second.counts.by_state[int(TaskState::kQueued)]);
  SendAdminAck(peer, seq, 1);
}

}  // namespace tq
