// The broker core: the loop turn, time, store failure, and the task
// transitions that write the store.
#include "broker/broker.h"

#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace tq {
namespace {

void OptionsFromJson(const std::string& text,
                     google::protobuf::Map<std::string, std::string>* out) {
  if (text.empty() || text == "{}") return;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  for (auto& [k, v] : j.items()) {
    if (v.is_string()) (*out)[k] = v.get<std::string>();
  }
}

// Lease tokens prove who holds a task: unpredictable, from the kernel's
// CSPRNG, never 0 (0 marks a task never leased).
uint64_t NewToken() {
  uint64_t token = 0;
  while (token == 0) {
    if (getrandom(&token, sizeof token, 0) != sizeof token) token = 0;
  }
  return token;
}

}  // namespace

Broker::Broker(TaskStore& store, const Clock& clock, BrokerOptions options)
    : store_(store),
      clock_(clock),
      options_(options),
      reads_(options.reads_per_second, options.read_burst) {
  sessions_.set_health_options(options.health);
}

Status Broker::Start() {
  started_wall_ms_ = clock_.WallMs();
  return ReloadFromStore(/*first_load=*/true);
}

// Rebuilds the task tables from what the store holds. Sessions survive; a
// lease they hold stays theirs if the store agrees on its token.
Status Broker::ReloadFromStore(bool first_load) {
  auto finished = store_.LoadFinishedSummary();
  if (!finished.ok()) return finished.status();
  if (first_load) {
    auto workers = store_.LoadWorkers();
    if (!workers.ok()) return workers.status();
    sessions_.LoadRecords(std::move(*workers));
  }

  tasks_.Clear();
  last_finish_seq_ = std::max(last_finish_seq_, finished->max_finish_seq);
  for (const StateCount& c : finished->counts) {
    tasks_.CountFinished(c.batch_id, c.queue, c.state, c.count, c.outcome);
  }
  // Which session holds which lease, as the sessions see it.
  std::unordered_map<uint64_t, std::pair<SessionId, uint64_t>> held;
  for (const auto& [sid, s] : sessions_.all()) {
    for (const auto& [task_id, token] : s.in_flight) {
      held[task_id] = {sid, token};
    }
  }

  const TimePoint now = clock_.Now();
  const int64_t wall_now = clock_.WallMs();
  const Millis reclaim_window =
      options_.heartbeat_interval * options_.heartbeat_liveness +
      options_.heartbeat_interval;
  size_t reclaimable = 0;
  Status loaded = store_.LoadPending([&](const PendingTask& p) {
    TaskEntry& t = tasks_.Add(p);
    if (t.state == TaskState::kRetryWait) {
      tasks_.WaitForRetry(
          t, now + Millis(std::max<int64_t>(0, p.not_before_ms - wall_now)));
    } else if (t.state == TaskState::kLeased) {
      auto h = held.find(t.id);
      const SessionId holder =
          h != held.end() && h->second.second == t.token ? h->second.first : 0;
      tasks_.HoldLease(t, holder,
                       holder ? LeaseExpiry(t) : now + reclaim_window);
      if (!holder) ++reclaimable;
    }
  });
  if (!loaded.ok()) return loaded;
  batch_owners_.clear();
  Status owners = store_.LoadBatchOwners(
      [this](const std::string& batch, const std::string& key) {
        batch_owners_[batch] = key;
      });
  if (!owners.ok()) return owners;
  Status paused = store_.LoadPausedQueues(
      [this](const std::string& queue) { tasks_.SetPaused(queue, true); });
  if (!paused.ok()) return paused;
  std::erase_if(live_leases_, [this](const auto& u) {
    return tasks_.Find(u.first) == nullptr;
  });
  batch_meta_.clear();
  Status batches = store_.LoadBatches(
      [this](const std::string& batch, uint64_t seq, int64_t created_ms) {
        batch_meta_[batch] = {seq, created_ms};
        last_batch_seq_ = std::max(last_batch_seq_, seq);
      });
  if (!batches.ok()) return batches;
  // Tasks written without a batches row (by hand, or a tool filling the
  // database): listed as the oldest, creation time unknown.
  for (const auto& [id, counts] : tasks_.batches()) {
    if (!batch_meta_.contains(id)) batch_meta_[id] = {0, 0};
  }
  DropUnconfirmedLeases();
  if (first_load) {
    spdlog::info(
        "loaded {} pending tasks ({} were leased when the broker stopped: held "
        "for {} so their workers can reclaim them)",
        tasks_.size(), reclaimable, FormatSeconds(reclaim_window));
  }
  return Status::Ok();
}

void Broker::DropUnconfirmedLeases() {
  std::vector<std::pair<SessionId, uint64_t>> unconfirmed;
  for (const auto& [sid, s] : sessions_.all()) {
    for (const auto& [task_id, token] : s.in_flight) {
      const TaskEntry* t = tasks_.Find(task_id);
      if (t == nullptr || t->holder != sid)
        unconfirmed.emplace_back(sid, task_id);
    }
  }
  for (auto [sid, task_id] : unconfirmed) sessions_.Forget(sid, task_id);
}

// ---------------------------------------------------------------- events

void Broker::OnMessage(const std::string& peer, const wire::Envelope& env,
                       const std::string& peer_address,
                       const PeerIdentity& who) {
  ++stats_.messages_in;
  const uint64_t seq = env.seq();
  if (!Authorize(peer, env, who)) return;
  if (WorkerSession* s = sessions_.ForPeer(peer)) s->last_seen = clock_.Now();

  using B = wire::Envelope;
  switch (env.body_case()) {
    case B::kFetchResults:
    case B::kBatchStatusRequest:
    case B::kListQueues:
    case B::kListWorkers:
    case B::kSubscribe:
    case B::kStatusRequest:
    case B::kListBatches:
    case B::kTaskRequest:
    case B::kListActive:
      if (!WithinReadRate(peer, seq, peer_address)) return;
      break;
    default:
      break;
  }
  switch (env.body_case()) {
    case B::kHello:
      return HandleHello(peer, seq, env.hello(), peer_address, who);
    case B::kSubmit:
      return HandleSubmit(peer, seq, env.submit(), who);
    case B::kFetchResults:
      return HandleFetch(peer, seq, env.fetch_results());
    case B::kBatchStatusRequest:
      return HandleBatchStatus(peer, seq, env.batch_status_request());
    case B::kCancelBatch:
      return HandleCancel(peer, seq, env.cancel_batch());
    case B::kListQueues:
      return HandleListQueues(peer, seq);
    case B::kListWorkers:
      return HandleListWorkers(peer, seq, env.list_workers());
    case B::kStatusRequest:
      return HandleStatus(peer, seq);
    case B::kListBatches:
      return HandleListBatches(peer, seq, env.list_batches(), who);
    case B::kTaskRequest:
      return HandleTask(peer, seq, env.task_request(), who);
    case B::kListActive:
      return HandleListActive(peer, seq, env.list_active());
    case B::kRetryDead:
      return HandleRetryDead(peer, seq, env.retry_dead());
    case B::kPurgeQueue:
      return HandlePurge(peer, seq, env.purge_queue());
    case B::kReleaseWorker:
      return HandleReleaseWorker(peer, seq, env.release_worker());
    case B::kDrainWorker:
      return HandleWorkerAction(peer, seq, env.drain_worker().worker_id(),
                                /*disconnect=*/false);
    case B::kDisconnectWorker:
      return HandleWorkerAction(peer, seq, env.disconnect_worker().worker_id(),
                                /*disconnect=*/true);
    case B::kReloadKeys:
      return HandleReloadKeys(peer, seq);
    case B::kSubscribe:
      return HandleSubscribe(peer, seq, env.subscribe());
    case B::kEventsAck:
      return HandleEventsAck(peer, seq, env.events_ack());
    case B::kUnsubscribe:
      if (events_.Remove(peer)) spdlog::info("events: a subscriber left");
      return;
    case B::kCancelTask:
      return HandleCancelTask(peer, seq, env.cancel_task(), who);
    case B::kPauseQueue:
      return HandlePauseQueue(peer, seq, env.pause_queue());
    case B::kCredit:
    case B::kHeartbeat:
    case B::kResult:
    case B::kRelease:
    case B::kGoodbye:
      return HandleWorkerMessage(peer, env);
    case B::kError:
      // A peer refusing something we sent: noted, never answered (an Error
      // for an Error could ping-pong).
      if (warnings_.Allow(peer_address, "error from peer", clock_.Now())) {
        spdlog::warn("peer {} refused a message of ours: {}",
                     peer_address.empty() ? "?" : peer_address,
                     env.error().message().substr(0, 200));
      }
      return;
    default:
      ++stats_.bad_messages;
      if (warnings_.Allow(peer_address, "unsupported message", clock_.Now())) {
        spdlog::warn("peer {} sent a message the broker does not handle ({})",
                     peer_address.empty() ? "?" : peer_address,
                     BodyCaseName(env.body_case()));
      }
      SendError(peer, seq, wire::UNSUPPORTED,
                "message type " + std::to_string(env.body_case()) +
                    " is not handled by the broker");
  }
}

bool Broker::WithinReadRate(const std::string& peer, uint64_t seq,
                            const std::string& address) {
  if (reads_.Allow(peer, clock_.Now())) return true;
  ++reads_refused_;
  if (warnings_.Allow(address.empty() ? peer : address, "too many reads",
                      clock_.Now())) {
    spdlog::warn(
        "peer {} asks for lists and results faster than {}/s: refusing the "
        "excess ({} so far)",
        address.empty() ? "?" : address, options_.reads_per_second,
        reads_refused_);
  }
  // A short answer, so an eager poller backs off instead of timing out.
  SendError(peer, seq, wire::RATE_LIMITED, "too many requests: retry shortly",
            true);
  return false;
}

void Broker::OnBadMessage(const std::string& peer, DecodeError error,
                          const std::string& detail,
                          const std::string& peer_address) {
  ++stats_.bad_messages;
  if (warnings_.Allow(peer_address, DecodeErrorName(error), clock_.Now())) {
    spdlog::warn("refused a message from {}: {}{}{} (bad messages so far: {})",
                 peer_address.empty() ? "?" : peer_address,
                 DecodeErrorName(error), detail.empty() ? "" : ": ", detail,
                 stats_.bad_messages);
  }
  SendError(peer, 0, ErrorCodeFor(error), std::string(DecodeErrorName(error)));
}

void Broker::OnDisconnect(const std::string& peer) {
  if (WorkerSession* s = sessions_.ForPeer(peer)) {
    EndSession(s->id, "connection closed");
  }
  std::erase_if(parked_, [&](const ParkedFetch& p) { return p.peer == peer; });
  reads_.Forget(peer);
  events_.Remove(peer);
}

void Broker::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  spdlog::info("shutting down: no new submissions, no new dispatch");
}

// ---------------------------------------------------------------- time

TimePoint Broker::OnTick() {
  const TimePoint now = clock_.Now();
  if (now >= next_session_check_) CheckLiveness(now);
  ExpireLeases(now);
  ReadyDueRetries(now);
  ProbeStore(now);
  ExpireSubscriptions(now);
  const bool sweeping = options_.keep_results.count() > 0;
  if (sweeping && store_ok() && now >= next_sweep_) Sweep(now);
  AnswerParkedFetches(/*expired_only=*/true);
  warnings_.LogDue(now);

  TimePoint next = next_session_check_;
  if (sweeping) next = std::min(next, next_sweep_);
  if (auto task_deadline = tasks_.NextDeadline()) {
    next = std::min(next, *task_deadline);
  }
  for (const ParkedFetch& p : parked_) next = std::min(next, p.deadline);
  if (!store_ok()) next = std::min(next, next_probe_);
  if (auto due = warnings_.NextDue()) next = std::min(next, *due);
  if (auto probe = sessions_.OpenDueProbes(now)) next = std::min(next, *probe);
  if (auto expiry = events_.NextExpiry()) next = std::min(next, *expiry);
  if (!bulk_.empty() && store_ok()) next = now;  // its next step
  return next;
}

void Broker::CheckLiveness(TimePoint now) {
  const Millis interval = options_.heartbeat_interval;
  WorkerSessions::LivenessScan scan = sessions_.ScanLiveness(
      now, interval, interval * options_.heartbeat_liveness);
  for (const std::string& peer : scan.heartbeat_due) {
    wire::Envelope hb;
    hb.mutable_heartbeat();
    Send(peer, std::move(hb));
  }
  for (auto& [id, silent_for] : scan.silent) {
    EndSession(id, "no heartbeat for " + FormatSeconds(silent_for));
  }
  next_session_check_ = scan.next;
}

void Broker::ExpireLeases(TimePoint now) {
  while (TaskEntry* t = tasks_.PopExpiredLease(now)) {
    if (t->holder != 0) {
      LoseLease(
          *t,
          "lease expired after " +
              FormatSeconds(Millis(t->time_limit_ms) + options_.lease_grace) +
              " (time limit + grace)",
          /*unproven=*/false, sessions_.Find(t->holder));
      continue;
    }
    // Leased before a restart and not reclaimed: the attempt never ran to an
    // end, so it does not count.
    spdlog::info("{} not reclaimed after restart: queued again",
                 TaskName(t->id));
    ++stats_.redeliveries;
    Requeue(*t, std::nullopt, "not reclaimed by its worker after a restart");
  }
}

void Broker::ReadyDueRetries(TimePoint now) {
  // State stays retry_wait on disk until leased: a restart re-reads it.
  while (TaskEntry* t = tasks_.PopDueRetry(now)) tasks_.MakeReady(*t);
}

void Broker::ProbeStore(TimePoint now) {
  if (store_ok() || now < next_probe_) return;
  next_probe_ = now + options_.store_probe_interval;
  if (!store_.Probe().ok()) return;
  Status reload = ReloadFromStore(/*first_load=*/false);
  if (!reload.ok()) return;
  spdlog::info("store writable again: accepting submissions");
  store_status_ = Status::Ok();
  stats_.store_ok = true;
  stats_.store_error.clear();
  reload_due_ = false;
}

// ---------------------------------------------------------------- the turn

std::vector<Outgoing> Broker::Flush() {
  RunBulkStep();
  Dispatch();
  AnswerParkedFetches(/*expired_only=*/false);
  std::vector<Outgoing> out;
  out.swap(immediate_);
  stats_.messages_out += out.size();
  return out;
}

std::vector<Outgoing> Broker::Commit() {
  SaveDirtyWorkers();
  Status st = store_.Commit();
  if (st.ok()) {
    ++stats_.commits;
    stats_.tasks_submitted += turn_counts_.submitted;
    stats_.tasks_done += turn_counts_.done;
    stats_.attempts_failed += turn_counts_.failed;
    stats_.tasks_dead += turn_counts_.dead;
    stats_.tasks_cancelled += turn_counts_.cancelled;
  } else {
    OnStoreFailure(st);
  }
  const bool committed = !reload_due_;
  turn_files_.clear();
  turn_counts_ = {};
  if (reload_due_) {
    // Nothing of this turn was kept: every acknowledgement waiting on it
    // becomes an error, and the tables go back to what the store holds.
    for (Outgoing& o : after_commit_) {
      o.envelope =
          ErrorReply(o.envelope.seq(), wire::STORE_UNAVAILABLE,
                     "broker cannot store: " + store_status_.message(), true);
    }
    FailBulkJobs();
    reload_due_ = false;
    Status reload = ReloadFromStore(/*first_load=*/false);
    if (!reload.ok()) {
      spdlog::error("could not re-read the store either: {}", reload.message());
    }
  }
  std::vector<Outgoing> out;
  out.swap(after_commit_);
  // Errors of the store's failure may have been produced after Flush().
  for (Outgoing& o : immediate_) out.push_back(std::move(o));
  immediate_.clear();
  PublishTurnEvents(committed, &out);
  stats_.messages_out += out.size();
  return out;
}

void Broker::OnStoreFailure(const Status& status) {
  store_.Abort();
  // Files of the results just lost: the worker sends them again.
  if (!turn_files_.empty()) {
    Result<uint64_t> removed = store_.RemoveUnreferencedFiles(turn_files_);
    if (!removed.ok()) spdlog::warn("{}", removed.status().message());
    turn_files_.clear();
  }
  ++stats_.commit_failures;
  if (store_ok()) {
    spdlog::error(
        "store failed: {}; refusing submissions and results until it takes "
        "writes again",
        status.message());
  }
  store_status_ = status;
  stats_.store_ok = false;
  stats_.store_error = status.message();
  reload_due_ = true;
  next_probe_ = clock_.Now() + options_.store_probe_interval;
}

bool Broker::CheckWritable(const std::string& peer, uint64_t seq) {
  if (shutting_down_) {
    SendError(peer, seq, wire::SHUTTING_DOWN, "broker is shutting down", true);
    return false;
  }
  if (!store_ok()) {
    SendStoreError(peer, seq);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- tasks

TimePoint Broker::LeaseExpiry(const TaskEntry& t) const {
  return clock_.Now() + Millis(t.time_limit_ms) + options_.lease_grace;
}

void Broker::Detach(TaskEntry& t) {
  if (t.holder == 0) return;
  sessions_.Forget(t.holder, t.id);
  t.holder = 0;
}

void Broker::Lease(TaskEntry& t, WorkerSession& s, wire::Assign* assign) {
  const uint64_t token = NewToken();
  Result<LeasePayload> payload = store_.MarkLeased(
      t.id, token, t.attempts + 1u, s.worker_id, clock_.WallMs());
  if (!payload.ok()) return OnStoreFailure(payload.status());
  tasks_.Lease(t, s.id, token, LeaseExpiry(t));
  sessions_.Assign(s, t.id, token);
  live_leases_[t.id] = {payload->url, clock_.WallMs()};
  if (PublishedEvent* e = NewEvent("leased", &t)) {
    e->event.set_worker_id(s.worker_id);
    e->event.set_attempt(t.attempts);
  }
  wire::Task* w = assign->add_tasks();
  w->set_task_id(t.id);
  w->set_token(t.token);
  w->set_url(std::move(payload->url));
  w->set_queue(t.queue_name());
  w->set_batch_id(t.batch_id());
  w->set_attempt(t.attempts);
  w->set_time_limit_ms(t.time_limit_ms);
  OptionsFromJson(payload->options_json, w->mutable_options());
}

void Broker::LoseLease(TaskEntry& t, const std::string& reason, bool unproven,
                       WorkerSession* holder) {
  Detach(t);
  if (!store_ok()) return;  // leased to nobody: the reload re-reads it
  ++stats_.redeliveries;
  if (unproven && t.unproven_losses < options_.max_unproven_losses) {
    // Taken by a session that never finished anything, then lost: that says
    // nothing about the task, so it costs no attempt (within a bound).
    ++t.unproven_losses;
    spdlog::info(
        "{} back to its queue ({}; no attempt counted: that session had "
        "finished no task)",
        TaskName(t.id), reason);
    return Requeue(t, reason,
                   reason +
                       " (no attempt counted: that session had finished "
                       "no task)");
  }
  const bool retried = t.attempts < t.max_attempts;
  if (holder != nullptr) {
    RecordAttempt(t.id, t.attempts, holder->worker_id, false, "", reason);
    // Only an expired lease says something about the worker (a lost
    // connection may be the network's).
    if (holder->id != 0 && sessions_.Find(holder->id) == holder) {
      const uint64_t id = t.id;
      AccountLoss(*holder, id, retried, /*timed_out=*/true, reason);
      // Accounting may have quarantined the holder: `t` is still pending
      // (it was detached first), so the reference holds.
    }
  }
  ++turn_counts_.failed;  // the lease expired: that attempt is used up
  if (!retried) {
    AttemptResult outcome;
    outcome.error = reason;
    outcome.exit_code = -1;
    if (holder != nullptr) outcome.worker = holder->worker_id;
    return Finish(t, TaskState::kDead, std::move(outcome));
  }
  spdlog::info("{} of batch {} redelivered ({}; attempt {} of {} used)",
               TaskName(t.id), t.batch_id(), reason, t.attempts,
               t.max_attempts);
  if (PublishedEvent* e = NewEvent("failed", &t)) {
    if (holder != nullptr) e->event.set_worker_id(holder->worker_id);
    e->event.set_attempt(t.attempts);
    e->event.set_error(reason);
  }
  Status st =
      store_.MarkWaiting(t.id, TaskState::kQueued, t.attempts, 0, reason);
  if (!st.ok()) return OnStoreFailure(st);
  tasks_.MakeReady(t);
}

void Broker::Requeue(TaskEntry& t, std::optional<std::string> reason,
                     const std::string& why) {
  Detach(t);
  if (auto live = live_leases_.find(t.id); live != live_leases_.end()) {
    live->second.since_ms = 0;
  }
  if (!store_ok()) return;  // the reload re-reads it
  const uint16_t attempts = t.attempts > 0 ? t.attempts - 1 : 0;
  if (PublishedEvent* e = NewEvent("requeued", &t)) {
    e->event.set_attempt(t.attempts);
    e->event.set_error(!why.empty() ? why : reason.value_or(""));
  }
  Status st = store_.MarkWaiting(t.id, TaskState::kQueued, attempts, 0,
                                 std::move(reason));
  if (!st.ok()) return OnStoreFailure(st);
  t.attempts = attempts;
  tasks_.MakeReady(t);
}

void Broker::FailAttempt(TaskEntry& t, AttemptResult outcome) {
  Detach(t);
  if (t.attempts >= t.max_attempts) {
    ++turn_counts_.failed;
    return Finish(t, TaskState::kDead, std::move(outcome));
  }
  Millis backoff = options_.retry_backoff *
                   (int64_t(1) << std::min<uint32_t>(t.attempts - 1, 16));
  backoff = std::min(backoff, options_.max_retry_backoff);
  Status st =
      store_.MarkWaiting(t.id, TaskState::kRetryWait, t.attempts,
                         clock_.WallMs() + backoff.count(), outcome.error);
  if (!st.ok()) return OnStoreFailure(st);
  ++turn_counts_.failed;
  tasks_.WaitForRetry(t, clock_.Now() + backoff);
  spdlog::info(
      "{} of batch {} failed on worker {} ({}), attempt {} of {}; retry in {}",
      TaskName(t.id), t.batch_id(),
      outcome.worker.empty() ? "?" : outcome.worker, outcome.error, t.attempts,
      t.max_attempts, FormatSeconds(backoff));
  if (PublishedEvent* e = NewEvent("failed", &t)) {
    e->event.set_worker_id(outcome.worker);
    e->event.set_attempt(t.attempts);
    e->event.set_error(outcome.error);
  }
}

void Broker::Finish(TaskEntry& t, TaskState final_state,
                    AttemptResult outcome) {
  Detach(t);
  if (final_state == TaskState::kDead) {
    spdlog::warn("{} of batch {} dead after {} attempts: {}", TaskName(t.id),
                 t.batch_id(), t.attempts, outcome.error);
  }
  const char* kind = final_state == TaskState::kDone   ? "finished"
                     : final_state == TaskState::kDead ? "dead"
                                                       : "cancelled";
  // Built before the task leaves the table; dropped with the turn if the
  // store fails below.
  if (PublishedEvent* e = NewEvent(kind, &t)) {
    e->event.set_worker_id(outcome.worker);
    e->event.set_attempt(t.attempts);
    if (final_state == TaskState::kDone) {
      e->event.set_outcome(outcome.outcome.empty() ? "ok" : outcome.outcome);
    }
    e->event.set_error(outcome.error);
  }
  live_leases_.erase(t.id);
  std::vector<AttemptRecord> history;
  if (auto h = history_.find(t.id); h != history_.end()) {
    history = std::move(h->second);
    history_.erase(h);
  }
  int counted_outcome = -1;
  if (final_state == TaskState::kDone) {
    counted_outcome = int(ParseOutcome(outcome.outcome).value_or(Outcome::kOk));
  }
  const uint64_t seq = last_finish_seq_ + 1;
  Status st = store_.MarkFinished(t.id, final_state, t.attempts, seq, outcome,
                                  clock_.WallMs(), history);
  if (!st.ok()) return OnStoreFailure(st);
  last_finish_seq_ = seq;
  switch (final_state) {
    case TaskState::kDone:
      ++turn_counts_.done;
      break;
    case TaskState::kDead:
      ++turn_counts_.dead;
      break;
    case TaskState::kCancelled:
      ++turn_counts_.cancelled;
      break;
    default:
      break;
  }
  tasks_.Finish(t, final_state, counted_outcome);
}

// Hands ready tasks to workers with credit, round-robin one task at a time so
// a worker with many slots cannot starve the others.
void Broker::Dispatch() {
  if (shutting_down_ || !store_ok()) return;
  if (tasks_.TakeWorkAdded()) sessions_.RingAllWithCredit();
  std::unordered_map<SessionId, wire::Envelope> assigns;
  while (WorkerSession* s = sessions_.PopRing()) {
    TaskEntry* task = nullptr;
    for (const std::string& q : s->queues) {
      if ((task = NextTaskFor(*s, q)) != nullptr) break;
    }
    if (task == nullptr) continue;  // idle until work is added
    Lease(*task, *s, assigns[s->id].mutable_assign());
    if (s->quarantined() && store_ok()) {
      // Its one probe task: the quarantine ends if it succeeds.
      s->health->probe_open = false;
      s->health->probe_task = task->id;
      spdlog::info("worker {} (quarantined): probe task {}", s->worker_id,
                   task->id);
    }
    if (!store_ok()) {
      // These assignments are never sent: the credit they used goes back.
      for (auto& [sid, env] : assigns) {
        if (WorkerSession* w = sessions_.Find(sid)) {
          sessions_.Refund(*w, uint32_t(env.assign().tasks_size()));
        }
      }
      return;
    }
    sessions_.Requeue(*s);
  }
  for (auto& [id, env] : assigns) {
    Send(sessions_.Find(id)->peer, std::move(env));
  }
}

// ---------------------------------------------------------------- output

void Broker::Send(const std::string& peer, wire::Envelope env) {
  if (WorkerSession* s = sessions_.ForPeer(peer)) s->last_sent = clock_.Now();
  immediate_.push_back({peer, std::move(env)});
}

void Broker::SendAfterCommit(const std::string& peer, wire::Envelope env) {
  if (WorkerSession* s = sessions_.ForPeer(peer)) s->last_sent = clock_.Now();
  after_commit_.push_back({peer, std::move(env)});
}

void Broker::SendError(const std::string& peer, uint64_t seq,
                       wire::ErrorCode code, std::string message,
                       bool retryable) {
  Send(peer, ErrorReply(seq, code, std::move(message), retryable));
}

void Broker::SendStoreError(const std::string& peer, uint64_t seq) {
  SendError(peer, seq, wire::STORE_UNAVAILABLE,
            "broker cannot store: " + store_status_.message(), true);
}

void Broker::SendAdminAck(const std::string& peer, uint64_t seq,
                          uint64_t affected) {
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_admin_ack()->set_affected(affected);
  SendAfterCommit(peer, std::move(env));
}

}  // namespace tq
