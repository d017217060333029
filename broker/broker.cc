#include "broker/broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/queue_name.h"
#include "common/url_check.h"

namespace tq {
namespace {

constexpr uint32_t kMaxConcurrency = 1024;
constexpr uint32_t kMaxAttemptsCap = 100;
constexpr uint32_t kMaxTimeLimitMs = 24 * 3600 * 1000;
constexpr uint32_t kMaxFetchLimit = 10'000;
constexpr size_t kMaxIdBytes = 128;

bool IsValidBatchId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

bool IsPrintable(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

std::string OptionsJson(
    const google::protobuf::Map<std::string, std::string>& options) {
  if (options.empty()) return "{}";
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : options) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

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
  auto pending = store_.LoadPending();
  if (!pending.ok()) return pending.status();
  auto counts = store_.LoadCounts();
  if (!counts.ok()) return counts.status();
  auto max_seq = store_.MaxFinishSeq();
  if (!max_seq.ok()) return max_seq.status();

  tasks_.clear();
  queues_.clear();
  batches_.clear();
  lease_deadlines_ = MinHeap();
  retry_deadlines_ = MinHeap();
  last_finish_seq_ = std::max(last_finish_seq_, max_seq.value());
  for (const StateCount& c : counts.value()) {
    batches_[c.batch_id].by_state[int(c.state)] += c.count;
    queues_[c.queue].counts.by_state[int(c.state)] += c.count;
  }
  queues_[kGenericQueue];

  const TimePoint now = clock_.Now();
  const int64_t wall_now = clock_.WallMs();
  const Millis reclaim_window =
      options_.heartbeat_interval * options_.heartbeat_liveness +
      options_.heartbeat_interval;
  size_t reclaimable = 0;
  for (PendingTask& p : pending.value()) {
    TaskEntry t;
    t.id = p.id;
    t.spec = std::move(p.spec);
    t.state = p.state;
    t.attempts = p.attempts;
    t.token = p.token;
    t.last_error = std::move(p.last_error);
    auto [it, inserted] = tasks_.emplace(t.id, std::move(t));
    TaskEntry& e = it->second;
    switch (e.state) {
      case TaskState::kQueued:
        queues_[e.spec.queue].ready.emplace(-int64_t(e.spec.priority), e.id);
        break;
      case TaskState::kRetryWait:
        e.not_before =
            now + Millis(std::max<int64_t>(0, p.not_before_ms - wall_now));
        retry_deadlines_.emplace(e.not_before, e.id);
        break;
      case TaskState::kLeased: {
        // Still with a live session of ours (reload after a store failure)?
        SessionId holder = 0;
        for (auto& [sid, s] : sessions_) {
          auto f = s.in_flight.find(e.id);
          if (f != s.in_flight.end() && f->second == e.token) holder = sid;
        }
        e.holder = holder;
        e.lease_deadline =
            holder ? now + Millis(e.spec.time_limit_ms) + options_.lease_grace
                   : now + reclaim_window;
        lease_deadlines_.emplace(e.lease_deadline, e.id);
        if (!holder) ++reclaimable;
        break;
      }
      default:
        break;
    }
  }
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
    if (t.state != TaskState::kLeased || t.lease_deadline != when) continue;
    if (t.holder == 0) {
      // Leased before a restart and not reclaimed: the attempt never ran to
      // an end, so it does not count.
      spdlog::info("task {} not reclaimed after restart: queued again", t.id);
      if (!store_error_.empty()) continue;  // re-read on recovery
      if (t.attempts > 0) --t.attempts;
      ++stats_.redeliveries;
      Status st = store_.MarkWaiting(t.id, TaskState::kQueued, t.attempts, 0,
                                     t.last_error);
      if (!st.ok()) {
        OnStoreFailure(st);  // rebuilt the tables: stop walking them
        break;
      }
      MakeReady(t);
    } else {
      LoseLease(
          t, "lease expired after " +
                 Seconds(Millis(t.spec.time_limit_ms) + options_.lease_grace) +
                 " (time limit + grace)");
    }
  }

  while (!retry_deadlines_.empty() && retry_deadlines_.top().first <= now) {
    auto [when, id] = retry_deadlines_.top();
    retry_deadlines_.pop();
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    TaskEntry& t = it->second;
    if (t.state != TaskState::kRetryWait || t.not_before != when) continue;
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

  AnswerParkedFetches(/*expired_only=*/true);

  TimePoint next = next_session_check_;
  if (!lease_deadlines_.empty())
    next = std::min(next, lease_deadlines_.top().first);
  if (!retry_deadlines_.empty())
    next = std::min(next, retry_deadlines_.top().first);
  for (const ParkedFetch& p : parked_) next = std::min(next, p.deadline);
  if (!store_error_.empty()) next = std::min(next, next_probe_);
  return next;
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

// ---------------------------------------------------------------- workers

std::pair<std::string, std::string> Broker::WorkerCountry(
    const wire::Hello& hello, const std::string& address) const {
  if (!hello.country().empty()) {
    // Set by the operator, or found by the worker itself.
    const std::string& source = hello.country_source();
    return {hello.country(),
            hello.country_auto() && !source.empty() ? source : "flag"};
  }
  if (!hello.country_auto()) return {"", "none: no country given"};
  // The worker asked for auto and found nothing itself (or did not try): its
  // own reason, if any, comes first in ours.
  std::string why = hello.country_source();
  if (why.rfind("none: ", 0) == 0) why = why.substr(6);
  auto add = [&why](const std::string& more) {
    why = why.empty() ? more : why + "; " + more;
  };
  if (options_.country_resolver == nullptr) {
    add("the broker has no GeoIP database (tq-broker --geoip-db FILE); pass "
        "--country CC or --geoip-db FILE to the worker");
  } else if (address.empty() && hello.public_ip().empty()) {
    add("the broker does not know the address the worker connects from");
  } else {
    const GeoAnswer answer = options_.country_resolver->Resolve(
        hello.public_ip().empty() ? address : hello.public_ip());
    if (answer.found()) return {answer.country, "broker-geoip"};
    add(answer.detail);
    if (answer.outcome == GeoOutcome::kNotPublic)
      add("pass --country CC or --public-ip ADDR to the worker");
  }
  return {"", "none: " + why};
}

void Broker::HandleHello(const std::string& peer, uint64_t seq,
                         const wire::Hello& hello, const std::string& address) {
  const std::string& wid = hello.worker_id();
  if (wid.empty() || wid.size() > kMaxIdBytes || !IsPrintable(wid)) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "worker id must be 1-128 printable characters");
    return;
  }
  if (hello.concurrency() < 1 || hello.concurrency() > kMaxConcurrency) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "concurrency must be 1-" + std::to_string(kMaxConcurrency));
    return;
  }
  if (!hello.country().empty() && !IsIsoCountryCode(hello.country())) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              ValidateQueueName(hello.country()).message());
    return;
  }
  if (hello.country_source().size() > kMaxIdBytes * 4 ||
      !IsPrintable(hello.country_source())) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "country_source must be at most 512 printable characters");
    return;
  }
  if (hello.public_ip().size() > 64) {
    SendError(peer, seq, wire::INVALID_ARGUMENT, "public_ip is too long");
    return;
  }
  if (uint32_t(hello.held_size()) > hello.concurrency()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "worker holds more tasks than its concurrency");
    return;
  }

  std::unordered_set<uint64_t> held;
  for (const wire::Lease& l : hello.held()) held.insert(l.task_id());
  // A new Hello replaces any session under the same identity or connection.
  for (const std::string* key : {&wid, &peer}) {
    auto& index = key == &wid ? session_by_worker_ : session_by_peer_;
    auto it = index.find(*key);
    if (it != index.end())
      EndSession(it->second, "replaced by a new session", held);
  }

  const TimePoint now = clock_.Now();
  WorkerSession s;
  s.id = next_session_id_++;
  s.peer = peer;
  s.worker_id = wid;
  std::tie(s.country, s.country_source) = WorkerCountry(hello, address);
  if (!s.country.empty()) s.queues.push_back(s.country);
  s.queues.push_back(kGenericQueue);
  s.hostname = hello.hostname().substr(0, kMaxIdBytes);
  s.peer_address = address;
  s.concurrency = hello.concurrency();
  s.last_seen = now;
  s.last_sent = now;

  // Reclaim the leases the worker still holds, if nobody else got them since.
  size_t reclaimed = 0;
  for (const wire::Lease& l : hello.held()) {
    auto it = tasks_.find(l.task_id());
    if (it == tasks_.end() || it->second.token != l.token()) continue;
    TaskEntry& t = it->second;
    const bool free_lease = t.state == TaskState::kLeased && t.holder == 0;
    if (!free_lease && t.state != TaskState::kQueued) continue;
    if (t.state == TaskState::kQueued) {
      queues_[t.spec.queue].ready.erase({-int64_t(t.spec.priority), t.id});
      SetState(t, TaskState::kLeased);
    }
    t.holder = s.id;
    t.lease_deadline =
        now + Millis(t.spec.time_limit_ms) + options_.lease_grace;
    lease_deadlines_.emplace(t.lease_deadline, t.id);
    s.in_flight.emplace(t.id, t.token);
    if (store_error_.empty()) {
      Status st =
          store_.MarkLeased(t.id, t.token, t.attempts, wid, clock_.WallMs());
      if (!st.ok()) {
        OnStoreFailure(st);
        return;
      }
    }
    ++reclaimed;
  }

  // Never silent: a worker that asked for a country and got none says why.
  if (s.country.empty() && hello.country_auto()) {
    spdlog::warn("worker {} gets no country, serving generic only: {}", wid,
                 s.country_source.substr(6));
  }
  spdlog::info(
      "worker {} joined from {} (host {}, country {}, {} slots, serving {}){}",
      wid, address.empty() ? "?" : address, s.hostname,
      s.country.empty() ? "none" : s.country + " (" + s.country_source + ")",
      s.concurrency, fmt::join(s.queues, ", "),
      reclaimed ? fmt::format("; reclaimed {} tasks in hand", reclaimed) : "");

  wire::Envelope welcome;
  welcome.set_seq(seq);
  auto* w = welcome.mutable_welcome();
  for (const auto& q : s.queues) w->add_queues(q);
  w->set_heartbeat_interval_ms(uint32_t(options_.heartbeat_interval.count()));
  w->set_heartbeat_liveness(options_.heartbeat_liveness);
  w->set_country(s.country);
  w->set_country_source(s.country_source);

  const SessionId id = s.id;
  session_by_worker_[wid] = id;
  session_by_peer_[peer] = id;
  sessions_.emplace(id, std::move(s));
  next_session_check_ =
      std::min(next_session_check_, now + options_.heartbeat_interval);
  Send(peer, std::move(welcome));
}

void Broker::HandleCredit(WorkerSession& s, const wire::Credit& credit) {
  if (credit.pause()) {
    s.state = WorkerState::kDraining;
    s.credit = 0;
    spdlog::info("worker {} is draining ({} tasks in hand)", s.worker_id,
                 s.in_flight.size());
    return;
  }
  if (credit.grant() == 0 || s.state == WorkerState::kDraining) return;
  // Never trust the grant: credit + in-flight stays within the slots.
  const uint32_t room = s.concurrency - uint32_t(s.in_flight.size());
  s.credit = std::min<uint64_t>(uint64_t(s.credit) + credit.grant(), room);
  if (s.credit > 0 && !s.in_ready_list) {
    s.in_ready_list = true;
    ready_workers_.push_back(s.id);
  }
}

void Broker::HandleResult(WorkerSession& s, uint64_t seq,
                          const wire::Result& r) {
  auto reply = [&](bool accepted, const std::string& reason) {
    wire::Envelope ack;
    ack.set_seq(seq);
    auto* a = ack.mutable_result_ack();
    a->set_task_id(r.task_id());
    a->set_token(r.token());
    a->set_accepted(accepted);
    a->set_reason(reason);
    if (accepted) {
      SendAfterCommit(s.peer, std::move(ack));
    } else {
      Send(s.peer, std::move(ack));
    }
  };
  const SessionId sid = s.id;
  if (!store_error_.empty()) {
    SendError(s.peer, seq, wire::STORE_UNAVAILABLE,
              "broker cannot store: " + store_error_, true);
  } else {
    auto it = tasks_.find(r.task_id());
    if (it == tasks_.end()) {
      reply(false, "task is unknown or already finished");
    } else if (it->second.token != r.token()) {
      spdlog::info(
          "refused a late result for task {} from {}: lease superseded",
          r.task_id(), s.worker_id);
      reply(false, "lease superseded by a newer one");
    } else {
      TaskEntry& t = it->second;
      if (t.state == TaskState::kRetryWait) {
        reply(true, "already recorded");  // a resend of an accepted failure
      } else {
        // Leased (to anyone: a worker that was declared lost may still
        // deliver) or queued again under the same token: the work is done.
        if (t.state == TaskState::kQueued) {
          queues_[t.spec.queue].ready.erase({-int64_t(t.spec.priority), t.id});
        }
        Detach(t);
        TaskOutcome outcome;
        outcome.ok = r.ok();
        outcome.output = r.output();
        outcome.output_truncated = r.output_truncated();
        outcome.error = r.error();
        outcome.exit_code = r.exit_code();
        outcome.stderr_tail = r.stderr_tail();
        outcome.duration_ms = r.duration_ms();
        outcome.worker = s.worker_id;
        if (r.ok()) {
          Finish(t, TaskState::kDone, std::move(outcome));
        } else {
          FailAttempt(t, std::move(outcome));
        }
        if (store_error_.empty()) {
          reply(true, "");
        } else {  // the store failed just now: the worker resends later
          SendError(s.peer, seq, wire::STORE_UNAVAILABLE,
                    "broker cannot store: " + store_error_, true);
        }
      }
    }
  }
  auto sit = sessions_.find(sid);
  if (sit != sessions_.end()) {
    sit->second.tasks_done += 1;
    if (r.credit() > 0) {
      wire::Credit c;
      c.set_grant(r.credit());
      HandleCredit(sit->second, c);
    }
  }
}

void Broker::HandleRelease(WorkerSession& s, const wire::Release& release) {
  for (const wire::Lease& l : release.leases()) {
    auto it = tasks_.find(l.task_id());
    if (it == tasks_.end()) continue;
    TaskEntry& t = it->second;
    if (t.state != TaskState::kLeased || t.holder != s.id ||
        t.token != l.token()) {
      continue;
    }
    Detach(t);
    if (t.attempts > 0) --t.attempts;  // handed back unrun: not an attempt
    if (store_error_.empty()) {
      Status st = store_.MarkWaiting(t.id, TaskState::kQueued, t.attempts, 0,
                                     t.last_error);
      if (!st.ok()) return OnStoreFailure(st);
    }
    spdlog::debug("task {} handed back by {}", t.id, s.worker_id);
    MakeReady(t);
  }
}

void Broker::EndSession(SessionId id, const std::string& reason,
                        const std::unordered_set<uint64_t>& keep) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  WorkerSession s = std::move(it->second);
  sessions_.erase(it);
  if (auto p = session_by_peer_.find(s.peer);
      p != session_by_peer_.end() && p->second == id) {
    session_by_peer_.erase(p);
  }
  if (auto w = session_by_worker_.find(s.worker_id);
      w != session_by_worker_.end() && w->second == id) {
    session_by_worker_.erase(w);
  }
  size_t requeued = 0;
  for (auto& [task_id, token] : s.in_flight) {
    auto t = tasks_.find(task_id);
    if (t == tasks_.end() || t->second.holder != id) continue;
    if (keep.count(task_id)) {
      t->second.holder = 0;  // the replacing session reclaims it
      continue;
    }
    LoseLease(t->second, "worker " + s.worker_id + " lost: " + reason);
    ++requeued;
  }
  spdlog::info("worker {} left: {}; {} tasks back to their queues", s.worker_id,
               reason, requeued);
}

// ---------------------------------------------------------------- tasks

Counts& Broker::QueueCounts(const std::string& queue) {
  return queues_[queue].counts;
}

void Broker::SetState(TaskEntry& t, TaskState next) {
  auto& qc = QueueCounts(t.spec.queue).by_state;
  auto& bc = batches_[t.spec.batch_id].by_state;
  --qc[int(t.state)];
  --bc[int(t.state)];
  ++qc[int(next)];
  ++bc[int(next)];
  t.state = next;
}

void Broker::AddTask(TaskEntry entry) {
  ++QueueCounts(entry.spec.queue).by_state[int(entry.state)];
  ++batches_[entry.spec.batch_id].by_state[int(entry.state)];
  auto [it, inserted] = tasks_.emplace(entry.id, std::move(entry));
  if (it->second.state == TaskState::kQueued) {
    queues_[it->second.spec.queue].ready.emplace(
        -int64_t(it->second.spec.priority), it->first);
    work_added_ = true;
  }
}

void Broker::MakeReady(TaskEntry& t) {
  SetState(t, TaskState::kQueued);
  queues_[t.spec.queue].ready.emplace(-int64_t(t.spec.priority), t.id);
  work_added_ = true;
}

// Forgets which session holds the task (its lease ended one way or another).
void Broker::Detach(TaskEntry& t) {
  if (t.holder == 0) return;
  auto s = sessions_.find(t.holder);
  if (s != sessions_.end()) s->second.in_flight.erase(t.id);
  t.holder = 0;
}

void Broker::Lease(TaskEntry& t, WorkerSession& s, wire::Assign* assign) {
  const TimePoint now = clock_.Now();
  queues_[t.spec.queue].ready.erase({-int64_t(t.spec.priority), t.id});
  ++t.attempts;
  t.token = NewToken();
  t.holder = s.id;
  t.lease_deadline = now + Millis(t.spec.time_limit_ms) + options_.lease_grace;
  lease_deadlines_.emplace(t.lease_deadline, t.id);
  SetState(t, TaskState::kLeased);
  s.in_flight.emplace(t.id, t.token);
  --s.credit;

  wire::Task* w = assign->add_tasks();
  w->set_task_id(t.id);
  w->set_token(t.token);
  w->set_url(t.spec.url);
  w->set_queue(t.spec.queue);
  w->set_batch_id(t.spec.batch_id);
  w->set_attempt(t.attempts);
  w->set_time_limit_ms(t.spec.time_limit_ms);
  OptionsFromJson(t.spec.options_json, w->mutable_options());

  Status st = store_.MarkLeased(t.id, t.token, t.attempts, s.worker_id,
                                clock_.WallMs());
  if (!st.ok()) OnStoreFailure(st);
}

void Broker::LoseLease(TaskEntry& t, const std::string& reason) {
  Detach(t);
  if (!store_error_.empty()) {
    // Leased to nobody; the reload on recovery requeues it.
    t.lease_deadline = clock_.Now();
    return;
  }
  t.last_error = reason;
  ++stats_.redeliveries;
  if (t.attempts >= t.spec.max_attempts) {
    TaskOutcome outcome;
    outcome.ok = false;
    outcome.error = reason;
    outcome.exit_code = -1;
    Finish(t, TaskState::kDead, std::move(outcome));
    return;
  }
  spdlog::info("task {} redelivered ({}; attempt {} of {} used)", t.id, reason,
               t.attempts, t.spec.max_attempts);
  Status st =
      store_.MarkWaiting(t.id, TaskState::kQueued, t.attempts, 0, reason);
  if (!st.ok()) return OnStoreFailure(st);
  MakeReady(t);
}

void Broker::FailAttempt(TaskEntry& t, TaskOutcome outcome) {
  t.last_error = outcome.error;
  if (t.attempts >= t.spec.max_attempts) {
    Finish(t, TaskState::kDead, std::move(outcome));
    return;
  }
  Millis backoff = options_.retry_backoff *
                   (int64_t(1) << std::min<uint32_t>(t.attempts - 1, 16));
  backoff = std::min(backoff, options_.max_retry_backoff);
  t.not_before = clock_.Now() + backoff;
  retry_deadlines_.emplace(t.not_before, t.id);
  SetState(t, TaskState::kRetryWait);
  spdlog::debug("task {} failed ({}), retry in {}", t.id, outcome.error,
                Seconds(backoff));
  Status st =
      store_.MarkWaiting(t.id, TaskState::kRetryWait, t.attempts,
                         clock_.WallMs() + backoff.count(), t.last_error);
  if (!st.ok()) OnStoreFailure(st);
}

void Broker::Finish(TaskEntry& t, TaskState final_state, TaskOutcome outcome) {
  Detach(t);
  if (t.state == TaskState::kQueued) {
    queues_[t.spec.queue].ready.erase({-int64_t(t.spec.priority), t.id});
  }
  if (final_state == TaskState::kDead) {
    spdlog::info("task {} dead after {} attempts: {}", t.id, t.attempts,
                 outcome.error);
  }
  const uint64_t seq = ++last_finish_seq_;
  Status st = store_.MarkFinished(t.id, final_state, t.attempts, seq, outcome,
                                  clock_.WallMs());
  if (!st.ok()) return OnStoreFailure(st);
  SetState(t, final_state);
  batches_with_news_.insert(t.spec.batch_id);
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
      if (qit == queues_.end() || qit->second.ready.empty()) continue;
      task = &tasks_.at(qit->second.ready.begin()->second);
      break;
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

// ---------------------------------------------------------------- clients

void Broker::HandleSubmit(const std::string& peer, uint64_t seq,
                          const wire::Submit& submit) {
  if (!IsValidBatchId(submit.batch_id())) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "batch id must be 1-64 characters of A-Z a-z 0-9 . _ : -");
    return;
  }
  if (uint32_t(submit.items_size()) > kMaxSubmitItems) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "at most " + std::to_string(kMaxSubmitItems) +
                  " items per Submit message");
    return;
  }
  if (!CheckWritable(peer, seq)) return;

  NewTask spec;
  spec.batch_id = submit.batch_id();
  spec.priority = submit.priority();
  spec.max_attempts = submit.max_attempts()
                          ? std::min(submit.max_attempts(), kMaxAttemptsCap)
                          : options_.default_max_attempts;
  spec.time_limit_ms = submit.time_limit_ms()
                           ? std::min(submit.time_limit_ms(), kMaxTimeLimitMs)
                           : options_.default_time_limit_ms;
  spec.options_json = OptionsJson(submit.options());
  spec.submitted_ms = clock_.WallMs();

  wire::Envelope ack;
  ack.set_seq(seq);
  wire::SubmitAck* a = ack.mutable_submit_ack();
  a->set_batch_id(submit.batch_id());
  uint32_t accepted = 0, duplicates = 0;
  for (const wire::SubmitItem& item : submit.items()) {
    Status valid = ValidateQueueName(item.queue());
    if (valid.ok()) valid = ValidateUrl(item.url());
    if (!valid.ok()) {
      wire::ItemError* e = a->add_errors();
      e->set_index(item.index());
      e->set_reason(valid.message());
      continue;
    }
    spec.index = item.index();
    spec.queue = item.queue();
    spec.url = item.url();
    auto inserted = store_.Insert(spec);
    if (!inserted.ok()) {
      OnStoreFailure(inserted.status());
      SendError(peer, seq, wire::STORE_UNAVAILABLE,
                "broker cannot store: " + store_error_, true);
      return;
    }
    if (!inserted.value().has_value()) {
      ++duplicates;
      continue;
    }
    TaskEntry t;
    t.id = *inserted.value();
    t.spec = spec;
    AddTask(std::move(t));
    ++accepted;
  }
  a->set_accepted(accepted);
  a->set_duplicates(duplicates);
  spdlog::debug("batch {}: {} tasks queued, {} duplicates, {} refused",
                submit.batch_id(), accepted, duplicates, a->errors_size());
  SendAfterCommit(peer, std::move(ack));
}

bool Broker::ReplyResults(const std::string& peer, uint64_t seq,
                          const wire::FetchResults& req, bool final_answer) {
  auto batch = batches_.find(req.batch_id());
  const uint32_t limit =
      std::clamp<uint32_t>(req.limit() ? req.limit() : 1000, 1, kMaxFetchLimit);
  auto rows = store_.ReadFinished(req.batch_id(), req.after(), limit);
  if (!rows.ok()) {
    SendError(peer, seq, wire::STORE_UNAVAILABLE,
              "cannot read results: " + rows.status().message(), true);
    return true;
  }
  const bool complete = batch == batches_.end() || batch->second.pending() == 0;
  if (rows->empty() && !complete && !final_answer) return false;

  wire::Envelope env;
  env.set_seq(seq);
  wire::Results* out = env.mutable_results();
  out->set_batch_id(req.batch_id());
  uint64_t cursor = req.after();
  for (FinishedTask& f : rows.value()) {
    wire::TaskInfo* t = out->add_tasks();
    t->set_task_id(f.id);
    t->set_batch_id(std::move(f.batch_id));
    t->set_index(f.index);
    t->set_url(std::move(f.url));
    t->set_queue(std::move(f.queue));
    t->set_state(ToWire(f.state));
    t->set_attempts(f.attempts);
    t->set_worker(std::move(f.outcome.worker));
    t->set_ok(f.outcome.ok);
    t->set_output(std::move(f.outcome.output));
    t->set_output_truncated(f.outcome.output_truncated);
    t->set_error(std::move(f.outcome.error));
    t->set_exit_code(f.outcome.exit_code);
    t->set_stderr_tail(std::move(f.outcome.stderr_tail));
    t->set_duration_ms(f.outcome.duration_ms);
    t->set_submitted_ms(f.submitted_ms);
    t->set_finished_ms(f.finished_ms);
    t->set_finish_seq(f.finish_seq);
    cursor = std::max(cursor, f.finish_seq);
  }
  out->set_cursor(cursor);
  if (batch != batches_.end()) batch->second.ToWire(out->mutable_counts());
  SendAfterCommit(peer, std::move(env));
  return true;
}

void Broker::HandleFetch(const std::string& peer, uint64_t seq,
                         const wire::FetchResults& fetch) {
  if (!batches_.count(fetch.batch_id())) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no batch '" + fetch.batch_id().substr(0, 64) + "'");
    return;
  }
  if (ReplyResults(peer, seq, fetch, fetch.wait_ms() == 0)) return;
  ParkedFetch p;
  p.peer = peer;
  p.seq = seq;
  p.request = fetch;
  p.deadline =
      clock_.Now() + std::min(Millis(fetch.wait_ms()), options_.max_fetch_wait);
  parked_.push_back(std::move(p));
}

void Broker::AnswerParkedFetches(bool expired_only) {
  if (parked_.empty()) {
    batches_with_news_.clear();
    return;
  }
  const TimePoint now = clock_.Now();
  std::erase_if(parked_, [&](const ParkedFetch& p) {
    const bool expired = now >= p.deadline;
    if (expired_only && !expired) return false;
    if (!expired && !batches_with_news_.count(p.request.batch_id()))
      return false;
    return ReplyResults(p.peer, p.seq, p.request, expired);
  });
  if (!expired_only) batches_with_news_.clear();
}

void Broker::HandleBatchStatus(const std::string& peer, uint64_t seq,
                               const wire::BatchStatusRequest& req) {
  auto it = batches_.find(req.batch_id());
  if (it == batches_.end()) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no batch '" + req.batch_id().substr(0, 64) + "'");
    return;
  }
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_batch_status()->set_batch_id(req.batch_id());
  it->second.ToWire(env.mutable_batch_status()->mutable_counts());
  SendAfterCommit(peer, std::move(env));
}

void Broker::HandleCancel(const std::string& peer, uint64_t seq,
                          const wire::CancelBatch& req) {
  if (!batches_.count(req.batch_id())) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no batch '" + req.batch_id().substr(0, 64) + "'");
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  std::vector<uint64_t> ids;
  for (auto& [id, t] : tasks_) {
    if (t.spec.batch_id == req.batch_id() &&
        (t.state == TaskState::kQueued || t.state == TaskState::kRetryWait)) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) {
    TaskOutcome outcome;
    outcome.error = "cancelled";
    Finish(tasks_.at(id), TaskState::kCancelled, std::move(outcome));
    if (!store_error_.empty()) return;
  }
  spdlog::info("batch {} cancelled: {} tasks", req.batch_id(), ids.size());
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_admin_ack()->set_affected(ids.size());
  SendAfterCommit(peer, std::move(env));
}

void Broker::HandlePurge(const std::string& peer, uint64_t seq,
                         const wire::PurgeQueue& req) {
  Status valid = ValidateQueueName(req.queue());
  if (!valid.ok()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT, valid.message());
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  std::vector<uint64_t> ids;
  for (auto& [id, t] : tasks_) {
    if (t.spec.queue == req.queue() &&
        (t.state == TaskState::kQueued || t.state == TaskState::kRetryWait)) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) {
    TaskOutcome outcome;
    outcome.error = "purged from queue " + req.queue();
    Finish(tasks_.at(id), TaskState::kCancelled, std::move(outcome));
    if (!store_error_.empty()) return;
  }
  spdlog::info("queue {} purged: {} tasks cancelled", req.queue(), ids.size());
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_admin_ack()->set_affected(ids.size());
  SendAfterCommit(peer, std::move(env));
}

void Broker::HandleRetryDead(const std::string& peer, uint64_t seq,
                             const wire::RetryDead& req) {
  if (req.batch_id().empty() == req.queue().empty()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "name either a batch or a queue");
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  auto dead = store_.LoadDead(req.batch_id(), req.queue());
  if (!dead.ok()) {
    SendError(peer, seq, wire::STORE_UNAVAILABLE, dead.status().message(),
              true);
    return;
  }
  for (PendingTask& p : dead.value()) {
    Status st =
        store_.MarkWaiting(p.id, TaskState::kQueued, 0, 0, p.last_error);
    if (!st.ok()) {
      OnStoreFailure(st);
      SendError(peer, seq, wire::STORE_UNAVAILABLE, st.message(), true);
      return;
    }
    // Move the count from dead to queued, then queue it.
    --QueueCounts(p.spec.queue).by_state[int(TaskState::kDead)];
    --batches_[p.spec.batch_id].by_state[int(TaskState::kDead)];
    TaskEntry t;
    t.id = p.id;
    t.spec = std::move(p.spec);
    t.last_error = std::move(p.last_error);
    AddTask(std::move(t));
  }
  spdlog::info("{} dead tasks queued again", dead->size());
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_admin_ack()->set_affected(dead->size());
  SendAfterCommit(peer, std::move(env));
}

void Broker::HandleListQueues(const std::string& peer, uint64_t seq) {
  wire::Envelope env;
  env.set_seq(seq);
  wire::QueueList* list = env.mutable_queue_list();
  for (const auto& [name, q] : queues_) {
    wire::QueueInfo* info = list->add_queues();
    info->set_name(name);
    q.counts.ToWire(info->mutable_counts());
    uint32_t serving = 0;
    for (const auto& [id, s] : sessions_) {
      if (std::find(s.queues.begin(), s.queues.end(), name) != s.queues.end()) {
        ++serving;
      }
    }
    info->set_workers(serving);
  }
  wire::BrokerStats* st = list->mutable_stats();
  st->set_messages_in(stats_.messages_in);
  st->set_messages_out(stats_.messages_out);
  st->set_bad_messages(stats_.bad_messages);
  st->set_commits(stats_.commits);
  st->set_commit_failures(stats_.commit_failures);
  st->set_redeliveries(stats_.redeliveries);
  st->set_store_ok(store_error_.empty());
  st->set_store_error(store_error_);
  Send(peer, std::move(env));
}

void Broker::HandleListWorkers(const std::string& peer, uint64_t seq) {
  wire::Envelope env;
  env.set_seq(seq);
  wire::WorkerList* list = env.mutable_worker_list();
  const TimePoint now = clock_.Now();
  std::vector<const WorkerSession*> sorted;
  for (const auto& [id, s] : sessions_) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->worker_id < b->worker_id; });
  for (const WorkerSession* s : sorted) {
    wire::WorkerInfo* w = list->add_workers();
    w->set_worker_id(s->worker_id);
    w->set_country(s->country);
    w->set_country_source(s->country_source);
    for (const auto& q : s->queues) w->add_queues(q);
    w->set_concurrency(s->concurrency);
    w->set_credit(s->credit);
    w->set_in_flight(uint32_t(s->in_flight.size()));
    w->set_last_seen_ms_ago(uint64_t((now - s->last_seen).count()));
    w->set_hostname(s->hostname);
    w->set_tasks_done(s->tasks_done);
    w->set_peer_address(s->peer_address);
  }
  Send(peer, std::move(env));
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
