#include "broker/broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/queue_name.h"

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

std::string Seconds(Millis d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", d.count() / 1000.0);
  return buf;
}

}  // namespace

uint64_t Counts::total() const {
  uint64_t n = 0;
  for (uint64_t c : by_state) n += c;
  return n;
}

uint64_t Counts::pending() const {
  return by_state[int(TaskState::kQueued)] + by_state[int(TaskState::kLeased)] +
         by_state[int(TaskState::kRetryWait)];
}

void Counts::ToWire(wire::BatchCounts* out) const {
  out->set_total(total());
  out->set_queued(by_state[int(TaskState::kQueued)]);
  out->set_leased(by_state[int(TaskState::kLeased)]);
  out->set_retry_wait(by_state[int(TaskState::kRetryWait)]);
  out->set_done(by_state[int(TaskState::kDone)]);
  out->set_dead(by_state[int(TaskState::kDead)]);
  out->set_cancelled(by_state[int(TaskState::kCancelled)]);
}

Broker::Broker(TaskStore& store, const Clock& clock, BrokerOptions options)
    : store_(store),
      clock_(clock),
      options_(options),
      token_rng_(std::random_device{}()) {}

Status Broker::Start() { return ReloadFromStore(/*first_load=*/true); }

// Rebuilds the task tables from what the store holds. Sessions survive; a
// lease they hold stays theirs if the store agrees on its token.
Status Broker::ReloadFromStore(bool first_load) {
  auto finished = store_.LoadFinishedSummary();
  if (!finished.ok()) return finished.status();

  tasks_.clear();
  queues_.clear();
  batches_.clear();
  lease_deadlines_ = MinHeap();
  retry_deadlines_ = MinHeap();
  last_finish_seq_ = std::max(last_finish_seq_, finished->max_finish_seq);
  for (const StateCount& c : finished->counts) {
    Batch(c.batch_id).second.by_state[int(c.state)] += c.count;
    Queue(c.queue).second.counts.by_state[int(c.state)] += c.count;
  }
  Queue(kGenericQueue);

  const TimePoint now = clock_.Now();
  const int64_t wall_now = clock_.WallMs();
  const Millis reclaim_window =
      options_.heartbeat_interval * options_.heartbeat_liveness +
      options_.heartbeat_interval;
  size_t reclaimable = 0;
  Status loaded = store_.LoadPending([&](const PendingTask& p) {
    TaskEntry& e = AddTask(p, /*counted=*/false);
    switch (e.state) {
      case TaskState::kRetryWait:
        e.deadline =
            now + Millis(std::max<int64_t>(0, p.not_before_ms - wall_now));
        retry_deadlines_.emplace(e.deadline, e.id);
        break;
      case TaskState::kLeased: {
        // Still with a live session of ours (reload after a store failure)?
        SessionId holder = 0;
        for (auto& [sid, s] : sessions_) {
          auto f = s.in_flight.find(e.id);
          if (f != s.in_flight.end() && f->second == e.token) holder = sid;
        }
        e.holder = holder;
        e.deadline = holder
                         ? now + Millis(e.time_limit_ms) + options_.lease_grace
                         : now + reclaim_window;
        lease_deadlines_.emplace(e.deadline, e.id);
        if (!holder) ++reclaimable;
        break;
      }
      default:  // queued: AddTask made it ready
        break;
    }
  });
  if (!loaded.ok()) return loaded;
  // Drop in-flight entries the store does not confirm.
  for (auto& [sid, s] : sessions_) {
    for (auto f = s.in_flight.begin(); f != s.in_flight.end();) {
      auto t = tasks_.find(f->first);
      bool confirmed = t != tasks_.end() && t->second.holder == sid;
      f = confirmed ? std::next(f) : s.in_flight.erase(f);
    }
  }
  work_added_ = true;
  if (first_load) {
    spdlog::info(
        "loaded {} pending tasks ({} were leased when the broker stopped: held "
        "for {} so their workers can reclaim them)",
        tasks_.size(), reclaimable, Seconds(reclaim_window));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- events

void Broker::OnMessage(const std::string& peer, const wire::Envelope& env,
                       const std::string& peer_address) {
  ++stats_.messages_in;
  const uint64_t seq = env.seq();
  if (WorkerSession* s = SessionForPeer(peer)) s->last_seen = clock_.Now();

  using B = wire::Envelope;
  switch (env.body_case()) {
    case B::kHello:
      HandleHello(peer, seq, env.hello(), peer_address);
      return;
    case B::kSubmit:
      HandleSubmit(peer, seq, env.submit());
      return;
    case B::kFetchResults:
      HandleFetch(peer, seq, env.fetch_results());
      return;
    case B::kBatchStatusRequest:
      HandleBatchStatus(peer, seq, env.batch_status_request());
      return;
    case B::kCancelBatch:
      HandleCancel(peer, seq, env.cancel_batch());
      return;
    case B::kListQueues:
      HandleListQueues(peer, seq);
      return;
    case B::kListWorkers:
      HandleListWorkers(peer, seq);
      return;
    case B::kRetryDead:
      HandleRetryDead(peer, seq, env.retry_dead());
      return;
    case B::kPurgeQueue:
      HandlePurge(peer, seq, env.purge_queue());
      return;
    case B::kCredit:
    case B::kHeartbeat:
    case B::kResult:
    case B::kRelease:
    case B::kGoodbye:
      break;  // worker messages, below
    default:
      ++stats_.bad_messages;
      spdlog::warn("peer {} sent a message the broker does not handle ({})",
                   peer_address.empty() ? "?" : peer_address,
                   int(env.body_case()));
      SendError(peer, seq, wire::UNSUPPORTED,
                "message type " + std::to_string(env.body_case()) +
                    " is not handled by the broker");
      return;
  }

  WorkerSession* s = SessionForPeer(peer);
  if (!s) {
    // Typically a worker whose broker restarted: it says Hello again.
    SendError(peer, seq, wire::NOT_REGISTERED,
              "unknown worker session: send Hello first", true);
    return;
  }
  switch (env.body_case()) {
    case B::kCredit:
      HandleCredit(*s, env.credit());
      break;
    case B::kResult:
      HandleResult(*s, seq, env.result());
      break;
    case B::kRelease:
      HandleRelease(*s, env.release());
      break;
    case B::kGoodbye:
      EndSession(s->id, "said goodbye");
      break;
    default:  // heartbeat: liveness already refreshed
      break;
  }
}

void Broker::OnBadMessage(const std::string& peer, DecodeError error,
                          const std::string& detail) {
  ++stats_.bad_messages;
  spdlog::warn("refused a message: {}{}{} (bad messages so far: {})",
               DecodeErrorName(error), detail.empty() ? "" : ": ", detail,
               stats_.bad_messages);
  SendError(peer, 0, ErrorCodeFor(error), std::string(DecodeErrorName(error)));
}

void Broker::OnDisconnect(const std::string& peer) {
  if (WorkerSession* s = SessionForPeer(peer)) {
    EndSession(s->id, "connection closed");
  }
  std::erase_if(parked_, [&](const ParkedFetch& p) { return p.peer == peer; });
}

void Broker::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  spdlog::info("shutting down: no new submissions, no new dispatch");
}

TimePoint Broker::OnTick() {
  const TimePoint now = clock_.Now();
  const Millis silence_limit =
      options_.heartbeat_interval * options_.heartbeat_liveness;

  if (now >= next_session_check_) {
    std::vector<std::pair<SessionId, Millis>> silent;
    TimePoint next = now + options_.heartbeat_interval;
    for (auto& [id, s] : sessions_) {
      if (now - s.last_seen >= silence_limit) {
        silent.emplace_back(
            id, std::chrono::duration_cast<Millis>(now - s.last_seen));
        continue;
      }
      if (now - s.last_sent >= options_.heartbeat_interval) {
        wire::Envelope hb;
        hb.mutable_heartbeat();
        Send(s.peer, std::move(hb));
      }
      next = std::min({next, s.last_sent + options_.heartbeat_interval,
                       s.last_seen + silence_limit});
    }
    for (auto& [id, silent_for] : silent) {
      EndSession(id, "no heartbeat for " + Seconds(silent_for));
    }
    next_session_check_ = next;
  }

  while (!lease_deadlines_.empty() && lease_deadlines_.top().first <= now) {
    auto [when, id] = lease_deadlines_.top();
    lease_deadlines_.pop();
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    TaskEntry& t = it->second;
    if (t.state != TaskState::kLeased || t.deadline != when) continue;
    if (t.holder == 0) {
      // Leased before a restart and not reclaimed: the attempt never ran to
      // an end, so it does not count.
      spdlog::info("task {} not reclaimed after restart: queued again", t.id);
      if (!store_error_.empty()) continue;  // re-read on recovery
      if (t.attempts > 0) --t.attempts;
      ++stats_.redeliveries;
      Status st = store_.MarkWaiting(t.id, TaskState::kQueued, t.attempts, 0,
                                     std::nullopt);
      if (!st.ok()) {
        OnStoreFailure(st);  // rebuilt the tables: stop walking them
        break;
      }
      MakeReady(t);
    } else {
      LoseLease(t, "lease expired after " +
                       Seconds(Millis(t.time_limit_ms) + options_.lease_grace) +
                       " (time limit + grace)");
    }
  }

  while (!retry_deadlines_.empty() && retry_deadlines_.top().first <= now) {
    auto [when, id] = retry_deadlines_.top();
    retry_deadlines_.pop();
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    TaskEntry& t = it->second;
    if (t.state != TaskState::kRetryWait || t.deadline != when) continue;
    // State stays retry_wait on disk until leased: a restart re-reads it.
    MakeReady(t);
  }

  if (!store_error_.empty() && now >= next_probe_) {
    next_probe_ = now + options_.store_probe_interval;
    Status st = store_.Probe();
    if (st.ok()) {
      Status reload = ReloadFromStore(/*first_load=*/false);
      if (reload.ok()) {
        spdlog::info("store writable again: accepting submissions");
        store_error_.clear();
      }
    }
  }

  if (options_.keep_results.count() > 0 && store_error_.empty() &&
      now >= next_sweep_) {
    Sweep(now);
  }

  AnswerParkedFetches(/*expired_only=*/true);

  TimePoint next = next_session_check_;
  if (options_.keep_results.count() > 0) next = std::min(next, next_sweep_);
  if (!lease_deadlines_.empty())
    next = std::min(next, lease_deadlines_.top().first);
  if (!retry_deadlines_.empty())
    next = std::min(next, retry_deadlines_.top().first);
  for (const ParkedFetch& p : parked_) next = std::min(next, p.deadline);
  if (!store_error_.empty()) next = std::min(next, next_probe_);
  return next;
}

void Broker::Sweep(TimePoint now) {
  const Millis interval =
      std::min<Millis>(options_.keep_results, Millis(60'000));
  next_sweep_ = now + interval;
  if (!sweep_candidates_.empty()) {
    Result<uint64_t> removed =
        store_.RemoveUnreferencedFiles(sweep_candidates_);
    if (!removed.ok()) {
      spdlog::warn("retention: {}", removed.status().message());
    } else if (*removed > 0) {
      spdlog::info("retention: removed {} unreferenced files", *removed);
    }
    sweep_candidates_.clear();
  }
  auto expired = store_.LoadExpired(
      clock_.WallMs() - options_.keep_results.count(), options_.sweep_batch);
  if (!expired.ok()) {
    spdlog::warn("retention: {}", expired.status().message());
    return;
  }
  if (expired->empty()) return;
  std::vector<uint64_t> ids;
  ids.reserve(expired->size());
  for (const ExpiredTask& e : *expired) ids.push_back(e.id);
  auto digests = store_.DeleteFinished(ids);
  if (!digests.ok()) return OnStoreFailure(digests.status());
  for (const ExpiredTask& e : *expired) {
    --Queue(e.queue).second.counts.by_state[int(e.state)];
    auto b = batches_.find(e.batch_id);
    if (b == batches_.end()) continue;
    --b->second.by_state[int(e.state)];
    if (b->second.total() == 0) batches_.erase(b);
  }
  sweep_candidates_ = std::move(*digests);
  spdlog::info("retention: deleted {} results older than {}", ids.size(),
               Seconds(options_.keep_results));
  // More may be due: continue soon, in bounded steps, after this one's
  // commit has been synced (a step's files go at the next step).
  if (expired->size() >= options_.sweep_batch || !sweep_candidates_.empty()) {
    next_sweep_ = std::min(next_sweep_, now + Millis(200));
  }
}

std::vector<Outgoing> Broker::Flush() {
  Dispatch();
  AnswerParkedFetches(/*expired_only=*/false);
  std::vector<Outgoing> out;
  out.swap(immediate_);
  stats_.messages_out += out.size();
  return out;
}

std::vector<Outgoing> Broker::Commit() {
  Status st = store_.Commit();
  if (st.ok()) {
    ++stats_.commits;
  } else {
    OnStoreFailure(st);
  }
  turn_files_.clear();
  std::vector<Outgoing> out;
  out.swap(after_commit_);
  // A store failure may have produced immediate errors too.
  for (Outgoing& o : immediate_) out.push_back(std::move(o));
  immediate_.clear();
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
  const bool first = store_error_.empty();
  store_error_ = status.message();
  next_probe_ = clock_.Now() + options_.store_probe_interval;
  if (first) {
    spdlog::error(
        "store failed: {}; refusing submissions and results until it takes "
        "writes again",
        status.message());
  }
  // Nothing of this turn was kept: every acknowledgement waiting on it
  // becomes an error, and the tables go back to what the store holds.
  for (Outgoing& o : after_commit_) {
    uint64_t seq = o.envelope.seq();
    o.envelope = ErrorReply(seq, wire::STORE_UNAVAILABLE,
                            "broker cannot store: " + store_error_, true);
  }
  Status reload = ReloadFromStore(/*first_load=*/false);
  if (!reload.ok()) {
    spdlog::error("could not re-read the store either: {}", reload.message());
  }
}

bool Broker::CheckWritable(const std::string& peer, uint64_t seq) {
  if (shutting_down_) {
    SendError(peer, seq, wire::SHUTTING_DOWN, "broker is shutting down", true);
    return false;
  }
  if (!store_error_.empty()) {
    SendError(peer, seq, wire::STORE_UNAVAILABLE,
              "broker cannot store: " + store_error_, true);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- tasks

Broker::QueueEntry& Broker::Queue(const std::string& name) {
  return *queues_.try_emplace(name).first;
}

Broker::BatchEntry& Broker::Batch(const std::string& id) {
  return *batches_.try_emplace(id).first;
}

void Broker::SetState(TaskEntry& t, TaskState next) {
  auto& qc = t.queue->second.counts.by_state;
  auto& bc = t.batch->second.by_state;
  --qc[int(t.state)];
  --bc[int(t.state)];
  ++qc[int(next)];
  ++bc[int(next)];
  t.state = next;
}

Broker::TaskEntry& Broker::AddTask(const PendingTask& p, bool counted) {
  TaskEntry& t = tasks_[p.id];
  t.id = p.id;
  t.token = p.token;
  t.batch = &Batch(p.batch_id);
  t.queue = &Queue(p.queue);
  t.time_limit_ms = p.time_limit_ms;
  t.priority = p.priority;
  t.attempts = static_cast<uint16_t>(p.attempts);
  t.max_attempts = static_cast<uint16_t>(p.max_attempts);
  t.state = p.state;
  if (!counted) {
    ++t.queue->second.counts.by_state[int(t.state)];
    ++t.batch->second.by_state[int(t.state)];
  }
  if (t.state == TaskState::kQueued) PushReady(t);
  return t;
}

void Broker::MakeReady(TaskEntry& t) {
  SetState(t, TaskState::kQueued);
  PushReady(t);
}

void Broker::PushReady(TaskEntry& t) {
  ReadyLane& lane = t.queue->second.lanes[-int64_t(t.priority)];
  // Ids only grow, so the deque stays sorted; an older task that comes back
  // goes to the set.
  if (lane.fresh.empty() || t.id > lane.fresh.back()) {
    lane.fresh.push_back(t.id);
    t.in_fresh_lane = true;
  } else {
    lane.returned.insert(t.id);
    t.in_fresh_lane = false;
  }
  work_added_ = true;
}

namespace {

// Pops deque entries whose task has left the lane (lazy removal).
template <typename Tasks>
void DropStaleFront(std::deque<uint64_t>& fresh, const Tasks& tasks) {
  while (!fresh.empty()) {
    auto it = tasks.find(fresh.front());
    if (it != tasks.end() && it->second.in_fresh_lane) return;
    fresh.pop_front();
  }
}

}  // namespace

void Broker::RemoveReady(TaskEntry& t) {
  auto& lanes = t.queue->second.lanes;
  auto lane = lanes.find(-int64_t(t.priority));
  if (lane == lanes.end()) return;
  if (t.in_fresh_lane) {
    t.in_fresh_lane = false;
    DropStaleFront(lane->second.fresh, tasks_);
  } else {
    lane->second.returned.erase(t.id);
  }
  if (lane->second.fresh.empty() && lane->second.returned.empty()) {
    lanes.erase(lane);
  }
}

Broker::TaskEntry* Broker::NextReady(QueueState& q) {
  while (!q.lanes.empty()) {
    auto lane = q.lanes.begin();
    ReadyLane& l = lane->second;
    DropStaleFront(l.fresh, tasks_);
    if (l.fresh.empty() && l.returned.empty()) {
      q.lanes.erase(lane);
      continue;
    }
    uint64_t id = 0;
    if (l.fresh.empty()) {
      id = *l.returned.begin();
    } else if (l.returned.empty()) {
      id = l.fresh.front();
    } else {
      id = std::min(l.fresh.front(), *l.returned.begin());
    }
    return &tasks_.at(id);
  }
  return nullptr;
}

// Forgets which session holds the task (its lease ended one way or another).
void Broker::Detach(TaskEntry& t) {
  if (t.holder == 0) return;
  auto s = sessions_.find(t.holder);
  if (s != sessions_.end()) s->second.in_flight.erase(t.id);
  t.holder = 0;
}

void Broker::Lease(TaskEntry& t, WorkerSession& s, wire::Assign* assign) {
  const uint64_t token = NewToken();
  Result<LeasePayload> payload = store_.MarkLeased(
      t.id, token, t.attempts + 1u, s.worker_id, clock_.WallMs());
  // The reload that follows a failure rebuilds the tables: t is gone.
  if (!payload.ok()) return OnStoreFailure(payload.status());
  RemoveReady(t);
  ++t.attempts;
  t.token = token;
  t.holder = s.id;
  t.deadline = clock_.Now() + Millis(t.time_limit_ms) + options_.lease_grace;
  lease_deadlines_.emplace(t.deadline, t.id);
  SetState(t, TaskState::kLeased);
  s.in_flight.emplace(t.id, t.token);
  --s.credit;

  wire::Task* w = assign->add_tasks();
  w->set_task_id(t.id);
  w->set_token(t.token);
  w->set_url(std::move(payload->url));
  w->set_queue(t.queue->first);
  w->set_batch_id(t.batch->first);
  w->set_attempt(t.attempts);
  w->set_time_limit_ms(t.time_limit_ms);
  OptionsFromJson(payload->options_json, w->mutable_options());
}

void Broker::LoseLease(TaskEntry& t, const std::string& reason) {
  Detach(t);
  if (!store_error_.empty()) {
    // Leased to nobody; the reload on recovery requeues it.
    t.deadline = clock_.Now();
    return;
  }
  ++stats_.redeliveries;
  if (t.attempts >= t.max_attempts) {
    TaskOutcome outcome;
    outcome.ok = false;
    outcome.error = reason;
    outcome.exit_code = -1;
    Finish(t, TaskState::kDead, std::move(outcome));
    return;
  }
  spdlog::info("task {} redelivered ({}; attempt {} of {} used)", t.id, reason,
               t.attempts, t.max_attempts);
  Status st =
      store_.MarkWaiting(t.id, TaskState::kQueued, t.attempts, 0, reason);
  if (!st.ok()) return OnStoreFailure(st);
  MakeReady(t);
}

void Broker::FailAttempt(TaskEntry& t, TaskOutcome outcome) {
  if (t.attempts >= t.max_attempts) {
    Finish(t, TaskState::kDead, std::move(outcome));
    return;
  }
  Millis backoff = options_.retry_backoff *
                   (int64_t(1) << std::min<uint32_t>(t.attempts - 1, 16));
  backoff = std::min(backoff, options_.max_retry_backoff);
  t.deadline = clock_.Now() + backoff;
  retry_deadlines_.emplace(t.deadline, t.id);
  SetState(t, TaskState::kRetryWait);
  spdlog::debug("task {} failed ({}), retry in {}", t.id, outcome.error,
                Seconds(backoff));
  Status st =
      store_.MarkWaiting(t.id, TaskState::kRetryWait, t.attempts,
                         clock_.WallMs() + backoff.count(), outcome.error);
  if (!st.ok()) OnStoreFailure(st);
}

void Broker::Finish(TaskEntry& t, TaskState final_state, TaskOutcome outcome) {
  Detach(t);
  if (t.state == TaskState::kQueued) RemoveReady(t);
  if (final_state == TaskState::kDead) {
    spdlog::info("task {} dead after {} attempts: {}", t.id, t.attempts,
                 outcome.error);
  }
  const uint64_t seq = ++last_finish_seq_;
  Status st = store_.MarkFinished(t.id, final_state, t.attempts, seq, outcome,
                                  clock_.WallMs());
  if (!st.ok()) return OnStoreFailure(st);
  SetState(t, final_state);
  batches_with_news_.insert(t.batch->first);
  tasks_.erase(t.id);
}

uint64_t Broker::NewToken() {
  uint64_t token = 0;
  while (token == 0) token = token_rng_();
  return token;
}

// Hands ready tasks to workers with credit, round-robin one task at a time so
// a worker with many slots cannot starve the others.
void Broker::Dispatch() {
  if (shutting_down_ || !store_error_.empty()) return;
  if (work_added_) {
    work_added_ = false;
    for (auto& [id, s] : sessions_) {
      if (s.credit > 0 && !s.in_ready_list && s.state == WorkerState::kActive) {
        s.in_ready_list = true;
        ready_workers_.push_back(id);
      }
    }
  }
  std::unordered_map<SessionId, wire::Envelope> assigns;
  while (!ready_workers_.empty()) {
    const SessionId id = ready_workers_.front();
    ready_workers_.pop_front();
    auto sit = sessions_.find(id);
    if (sit == sessions_.end()) continue;
    WorkerSession& s = sit->second;
    s.in_ready_list = false;
    if (s.credit == 0 || s.state != WorkerState::kActive) continue;
    TaskEntry* task = nullptr;
    for (const std::string& q : s.queues) {
      auto qit = queues_.find(q);
      if (qit == queues_.end()) continue;
      task = NextReady(qit->second);
      if (task) break;
    }
    if (!task) continue;  // idle until work is added
    Lease(*task, s, assigns[id].mutable_assign());
    if (!store_error_.empty()) {
      // The store failed: these assignments are never sent, so the credit
      // they used goes back to their workers.
      for (auto& [sid, env] : assigns) {
        auto w = sessions_.find(sid);
        if (w != sessions_.end()) w->second.credit += env.assign().tasks_size();
      }
      return;
    }
    if (s.credit > 0) {
      s.in_ready_list = true;
      ready_workers_.push_back(id);
    }
  }
  for (auto& [id, env] : assigns) {
    Send(sessions_.at(id).peer, std::move(env));
  }
}

// ---------------------------------------------------------------- output

WorkerSession* Broker::SessionForPeer(const std::string& peer) {
  auto it = session_by_peer_.find(peer);
  if (it == session_by_peer_.end()) return nullptr;
  return &sessions_.at(it->second);
}

void Broker::Send(const std::string& peer, wire::Envelope env) {
  if (WorkerSession* s = SessionForPeer(peer)) s->last_sent = clock_.Now();
  immediate_.push_back({peer, std::move(env)});
}

void Broker::SendAfterCommit(const std::string& peer, wire::Envelope env) {
  if (WorkerSession* s = SessionForPeer(peer)) s->last_sent = clock_.Now();
  after_commit_.push_back({peer, std::move(env)});
}

void Broker::SendError(const std::string& peer, uint64_t seq,
                       wire::ErrorCode code, std::string message,
                       bool retryable) {
  Send(peer, ErrorReply(seq, code, std::move(message), retryable));
}

}  // namespace tq
