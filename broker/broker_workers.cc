// The broker core's side of the worker conversation: Hello, credit,
// results, hand-backs, and the end of a session.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

#include "broker/broker.h"
#include "common/digest.h"
#include "common/outcome.h"
#include "common/queue_name.h"
#include "common/result_wire.h"

namespace tq {
namespace {

constexpr uint32_t kMaxConcurrency = 1024;
constexpr size_t kMaxIdBytes = 128;

bool IsPrintable(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

}  // namespace

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

std::string Broker::CheckHello(const wire::Hello& hello) const {
  const std::string& wid = hello.worker_id();
  if (wid.empty() || wid.size() > kMaxIdBytes || !IsPrintable(wid)) {
    return "worker id must be 1-128 printable characters";
  }
  if (hello.concurrency() < 1 || hello.concurrency() > kMaxConcurrency) {
    return "concurrency must be 1-" + std::to_string(kMaxConcurrency);
  }
  if (!hello.country().empty() && !IsIsoCountryCode(hello.country())) {
    return ValidateQueueName(hello.country()).message();
  }
  if (hello.country_source().size() > kMaxIdBytes * 4 ||
      !IsPrintable(hello.country_source())) {
    return "country_source must be at most 512 printable characters";
  }
  if (hello.public_ip().size() > 64) return "public_ip is too long";
  if (uint32_t(hello.held_size()) > hello.concurrency()) {
    return "worker holds more tasks than its concurrency";
  }
  return "";
}

void Broker::HandleHello(const std::string& peer, uint64_t seq,
                         const wire::Hello& hello, const std::string& address,
                         const PeerIdentity& who) {
  if (std::string why = CheckHello(hello); !why.empty()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT, std::move(why));
    return;
  }
  const std::string& wid = hello.worker_id();
  // A worker id is bound to the key of its live session: another key cannot
  // take it over (nor its leases).
  if (const WorkerSession* old = sessions_.ForWorker(wid);
      old != nullptr && old->key_public != who.public_key) {
    Deny(peer, seq, who,
         "worker id '" + wid + "' belongs to a live session of key '" +
             old->key_name + "'");
    return;
  }
  auto [country, country_source] = WorkerCountry(hello, address);
  // Refused rather than trimmed to generic: a box placed in the wrong
  // country should say so, not serve quietly less.
  if (!country.empty() && !who.MayServe(country)) {
    Deny(peer, seq, who,
         who.Describe() + " may serve only " +
             fmt::format("{}", fmt::join(who.countries, ", ")) +
             " and generic, not " + country);
    return;
  }
  if (country.empty() && hello.no_generic()) {
    // Refused rather than left idle: a worker that serves nothing should
    // say so at once.
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "worker would serve no queue: --no-generic needs a country, and "
              "it has none (" +
                  country_source + ")");
    return;
  }
  std::unordered_map<uint64_t, uint64_t> held;  // task id -> token
  for (const wire::Lease& l : hello.held()) held[l.task_id()] = l.token();
  // A new Hello replaces any session under the same identity or connection.
  if (WorkerSession* old = sessions_.ForWorker(wid)) {
    EndSession(old->id, "replaced by a new session", held);
  }
  if (WorkerSession* old = sessions_.ForPeer(peer)) {
    EndSession(old->id, "replaced by a new session", held);
  }

  const TimePoint now = clock_.Now();
  WorkerSession fresh;
  fresh.peer = peer;
  fresh.worker_id = wid;
  fresh.country = std::move(country);
  fresh.country_source = std::move(country_source);
  fresh.key_name = who.key_name;
  fresh.key_public = who.public_key;
  if (!fresh.country.empty()) fresh.queues.push_back(fresh.country);
  if (!hello.no_generic()) fresh.queues.push_back(kGenericQueue);
  fresh.hostname = hello.hostname().substr(0, kMaxIdBytes);
  fresh.peer_address = address;
  fresh.concurrency = hello.concurrency();
  const uint32_t losses = sessions_.UnprovenLosses(
      address.empty() ? wid : address, now, options_.loss_throttle_window);
  fresh.window_base = losses >= options_.loss_throttle_sessions
                          ? 1
                          : std::max<uint32_t>(1, options_.slow_start_window);
  fresh.last_seen = now;
  fresh.last_sent = now;
  WorkerHealth& health = sessions_.Health(wid, clock_.WallMs());
  health.record.session_start_ms = clock_.WallMs();
  MarkDirty(health);
  fresh.health = &health;
  WorkerSession& s = sessions_.Add(std::move(fresh));
  const size_t reclaimed = ReclaimLeases(s, hello);

  // Never silent: a worker that asked for a country and got none says why.
  if (s.country.empty() && hello.country_auto()) {
    spdlog::warn("worker {} gets no country, serving generic only: {}", wid,
                 s.country_source.substr(6));
  }
  spdlog::info(
      "worker {} joined from {} with {} (host {}, country {}, {} slots, "
      "serving {}){}",
      wid, address.empty() ? "?" : address, who.Describe(), s.hostname,
      s.country.empty() ? "none" : s.country + " (" + s.country_source + ")",
      s.concurrency, fmt::join(s.queues, ", "),
      reclaimed ? fmt::format("; reclaimed {} tasks in hand", reclaimed) : "");
  if (s.quarantined()) {
    spdlog::warn(
        "worker {} rejoined while quarantined ({}): it gets a probe "
        "task only",
        wid, health.reason);
  }
  if (PublishedEvent* e = NewEvent("worker_joined")) {
    e->event.set_worker_id(wid);
    e->queues = s.queues;
  }

  wire::Envelope welcome;
  welcome.set_seq(seq);
  auto* w = welcome.mutable_welcome();
  for (const auto& q : s.queues) w->add_queues(q);
  w->set_heartbeat_interval_ms(uint32_t(options_.heartbeat_interval.count()));
  w->set_heartbeat_liveness(options_.heartbeat_liveness);
  w->set_country(s.country);
  w->set_country_source(s.country_source);
  next_session_check_ =
      std::min(next_session_check_, now + options_.heartbeat_interval);
  Send(peer, std::move(welcome));
}

size_t Broker::ReclaimLeases(WorkerSession& s, const wire::Hello& hello) {
  size_t reclaimed = 0;
  for (const wire::Lease& l : hello.held()) {
    TaskEntry* t = tasks_.Find(l.task_id());
    // Only a lease the broker issued: token 0 names none.
    if (t == nullptr || l.token() == 0 || t->token != l.token()) continue;
    // Free: leased to nobody since a restart or a lost session, or queued
    // again under the same token.
    const bool free_lease = t->state == TaskState::kLeased && t->holder == 0;
    if (!free_lease && t->state != TaskState::kQueued) continue;
    if (store_ok()) {
      auto leased = store_.MarkLeased(t->id, t->token, t->attempts, s.worker_id,
                                      clock_.WallMs());
      if (!leased.ok()) {
        OnStoreFailure(leased.status());
      } else {
        LiveLease& live = live_leases_[t->id];
        live.url = std::move(leased->url);
        // Reclaimed after a broker restart: it runs since at least now.
        if (live.since_ms == 0) live.since_ms = clock_.WallMs();
      }
    }
    tasks_.HoldLease(*t, s.id, LeaseExpiry(*t));
    sessions_.Hold(s, t->id, t->token);
    ++reclaimed;
  }
  return reclaimed;
}

void Broker::HandleWorkerMessage(const std::string& peer,
                                 const wire::Envelope& env) {
  WorkerSession* s = sessions_.ForPeer(peer);
  if (s == nullptr) {
    // Typically a worker whose broker restarted: it says Hello again.
    SendError(peer, env.seq(), wire::NOT_REGISTERED,
              "unknown worker session: send Hello first", true);
    return;
  }
  switch (env.body_case()) {
    case wire::Envelope::kCredit:
      return HandleCredit(*s, env.credit());
    case wire::Envelope::kResult:
      return HandleResult(*s, env.seq(), env.result());
    case wire::Envelope::kRelease:
      return HandleRelease(*s, env.release());
    case wire::Envelope::kGoodbye:
      return EndSession(s->id, "said goodbye");
    default:  // heartbeat: liveness already refreshed
      return;
  }
}

void Broker::HandleCredit(WorkerSession& s, const wire::Credit& credit) {
  if (credit.pause()) {
    sessions_.Drain(s);
    spdlog::info("worker {} is draining ({} tasks in hand)", s.worker_id,
                 s.in_flight.size());
    return;
  }
  sessions_.Grant(s, credit.grant());
}

void Broker::HandleResult(WorkerSession& s, uint64_t seq,
                          const wire::Result& r) {
  TaskEntry* t = tasks_.Find(r.task_id());
  if (!store_ok()) {
    SendStoreError(s.peer, seq);
  } else if (t == nullptr) {
    AckResult(s, seq, r, false, "task is unknown or already finished");
  } else if (t->token == 0 || r.token() == 0) {
    // Never leased (or queued again by retry-dead): nobody holds a lease.
    if (warnings_.Allow(s.loss_key(), "result without a lease", clock_.Now())) {
      spdlog::warn("refused a result for task {} from {}: no lease was issued",
                   r.task_id(), s.worker_id);
    }
    AckResult(s, seq, r, false, "no lease with that token");
  } else if (t->token != r.token()) {
    spdlog::info("refused a late result for {} from {}: lease superseded",
                 TaskName(r.task_id()), s.worker_id);
    AckResult(s, seq, r, false, "lease superseded by a newer one");
  } else if (t->holder != 0 && t->holder != s.id) {
    // The token is right but another live session holds the lease.
    spdlog::warn(
        "refused a result for task {} from {}: leased to another "
        "session",
        r.task_id(), s.worker_id);
    AckResult(s, seq, r, false, "the lease is held by another session");
  } else if (t->state == TaskState::kRetryWait) {
    AckResult(s, seq, r, true, "already recorded");  // a resent failure
  } else if (!r.ok() && s.quarantined() && t->holder != s.id) {
    // Taken back when the worker was quarantined: its failure costs the
    // task no attempt.
    AckResult(s, seq, r, false,
              "worker is quarantined: the task was given "
              "back to its queue");
  } else {
    DeliverResult(*t, s, seq, r);
  }
  sessions_.Grant(s, r.credit());
  sessions_.Requeue(s);  // a result may have widened its window
}

// Leased (to anyone: a worker that was declared lost may still deliver) or
// queued again under the same token: the work is done.
void Broker::DeliverResult(TaskEntry& t, WorkerSession& s, uint64_t seq,
                           const wire::Result& r) {
  AttemptResult outcome = FromWire(r);
  outcome.worker = s.worker_id;
  if (outcome.ok) {
    // A done task always has an outcome: an older worker's none is "ok".
    if (!ParseOutcome(outcome.outcome)) outcome.outcome = "ok";
  } else {
    outcome.outcome.clear();
    outcome.outcome_reason.clear();
  }
  if (Status st = StoreResultFiles(t, s, &outcome); !st.ok()) {
    spdlog::error("task {}: cannot store a file: {}", t.id, st.message());
    SendError(s.peer, seq, wire::STORE_UNAVAILABLE,
              "broker cannot store a file: " + st.message(), true);
    return;
  }
  // `t` is gone once finished: what accounting needs, first.
  const uint64_t id = t.id;
  const bool ok = outcome.ok;
  const bool retried = !ok && t.attempts < t.max_attempts;
  const std::string error = outcome.error;
  RecordAttempt(id, t.attempts, s.worker_id, ok, outcome.outcome, error);
  const std::vector<std::string> failed_by =
      ok ? FailedBy(id, s.worker_id) : std::vector<std::string>();
  if (ok) {
    Finish(t, TaskState::kDone, std::move(outcome));
  } else {
    FailAttempt(t, std::move(outcome));
  }
  if (store_ok()) {
    AckResult(s, seq, r, true, "");
    ++s.results;
    AccountResult(s, id, ok, retried, error, failed_by);
  } else {  // the store failed just now: the worker resends later
    SendStoreError(s.peer, seq);
  }
}

// Files go to disk before the commit that references them. Only a result
// that ends its task keeps files: a failed attempt to be retried would leave
// them unreferenced.
Status Broker::StoreResultFiles(const TaskEntry& t, const WorkerSession& s,
                                AttemptResult* outcome) {
  if (!outcome->ok && t.attempts < t.max_attempts) {
    outcome->files.clear();
    return Status::Ok();
  }
  for (ResultFile& f : outcome->files) {
    const std::string claimed = std::move(f.sha256);
    f.sha256 = DigestSha256(f.content);  // ours, never the peer's
    f.size = f.content.size();
    if (!claimed.empty() && claimed != f.sha256) {
      spdlog::warn("task {}: file {} from {} has sha256 {}, not {}", t.id,
                   f.name, s.worker_id, f.sha256, claimed);
    }
    if (Status st = store_.PutFile(f.sha256, f.content); !st.ok()) return st;
    turn_files_.push_back(f.sha256);
    std::string().swap(f.content);  // stored: only the reference stays
  }
  return Status::Ok();
}

void Broker::AckResult(const WorkerSession& s, uint64_t seq,
                       const wire::Result& r, bool accepted,
                       const std::string& reason) {
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
}

void Broker::HandleRelease(WorkerSession& s, const wire::Release& release) {
  for (const wire::Lease& l : release.leases()) {
    TaskEntry* t = tasks_.Find(l.task_id());
    if (t == nullptr || t->state != TaskState::kLeased || t->holder != s.id ||
        t->token != l.token()) {
      continue;
    }
    spdlog::debug("{} handed back by {}", TaskName(t->id), s.worker_id);
    // Handed back unrun: not an attempt.
    Requeue(*t, std::nullopt, "handed back unrun by worker " + s.worker_id);
  }
}

void Broker::EndSession(SessionId id, const std::string& reason,
                        const std::unordered_map<uint64_t, uint64_t>& keep) {
  std::optional<WorkerSession> s = sessions_.Remove(id);
  if (!s) return;
  if (s->quarantined() && s->health->probe_task != 0) {
    sessions_.ProbeFailed(*s->health, clock_.Now());  // lost with it
  }
  const bool unproven = s->results == 0;
  // A worker that said goodbye or was replaced is routine; one that went
  // silent or dropped its connection is what an operator looks for.
  const bool lost =
      reason != "said goodbye" && reason != "replaced by a new session";
  // Before the events of the tasks it held, which it explains.
  if (PublishedEvent* e = NewEvent(lost ? "worker_lost" : "worker_left")) {
    e->event.set_worker_id(s->worker_id);
    e->event.set_error(reason);
    e->queues = s->queues;
    for (const auto& [task_id, token] : s->in_flight) {
      if (const TaskEntry* t = tasks_.Find(task_id)) {
        if (std::find(e->batches.begin(), e->batches.end(), t->batch_id()) ==
            e->batches.end()) {
          e->batches.push_back(t->batch_id());
        }
      }
    }
    e->event.set_count(s->in_flight.size());
  }
  // Shown offline for an hour (tq-ctl workers, the console).
  if (s->health != nullptr) {
    s->health->record.last_seen_ms = clock_.WallMs();
    MarkDirty(*s->health);
  }
  size_t requeued = 0;
  for (auto& [task_id, token] : s->in_flight) {
    TaskEntry* t = tasks_.Find(task_id);
    if (t == nullptr || t->holder != id) continue;
    if (auto k = keep.find(task_id); k != keep.end() && k->second == token) {
      t->holder = 0;  // the replacing session reclaims it
      continue;
    }
    LoseLease(*t, "worker " + s->worker_id + " lost: " + reason, unproven, &*s);
    ++requeued;
  }
  spdlog::log(lost ? spdlog::level::warn : spdlog::level::info,
              "worker {} {}: {}; {} tasks back to their queues", s->worker_id,
              lost ? "lost" : "left", reason, requeued);
  if (unproven && requeued > 0) NoteUnprovenLoss(*s, requeued);
}

void Broker::NoteUnprovenLoss(const WorkerSession& s, size_t lost) {
  const uint32_t sessions = sessions_.NoteUnprovenLoss(
      s.loss_key(), clock_.Now(), options_.loss_throttle_window);
  if (sessions < options_.loss_throttle_sessions) return;
  if (warnings_.Allow(s.loss_key(), "losing leases", clock_.Now())) {
    spdlog::warn(
        "peer {} (worker {}): {} sessions in {} ended holding tasks before "
        "finishing any ({} this time); its sessions now take one task at a "
        "time until they deliver",
        s.loss_key(), s.worker_id, sessions,
        FormatSeconds(options_.loss_throttle_window), lost);
  }
}

}  // namespace tq
