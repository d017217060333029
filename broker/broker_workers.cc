// The broker core's side of the worker conversation: Hello, credit,
// results, hand-backs, and the end of a session.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

#include "broker/broker.h"
#include "common/digest.h"
#include "common/queue_name.h"

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
      RemoveReady(t);
      SetState(t, TaskState::kLeased);
    }
    t.holder = s.id;
    t.deadline = now + Millis(t.time_limit_ms) + options_.lease_grace;
    lease_deadlines_.emplace(t.deadline, t.id);
    s.in_flight.emplace(t.id, t.token);
    if (store_error_.empty()) {
      auto leased =
          store_.MarkLeased(t.id, t.token, t.attempts, wid, clock_.WallMs());
      if (!leased.ok()) {
        OnStoreFailure(leased.status());
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
        // Files go to disk before the commit that references them; the
        // digest is ours, never the peer's.
        // Only a result that ends the task keeps files: a failed attempt to
        // be retried would leave them unreferenced.
        std::vector<FileRef> files;
        Status file_status;
        const bool ends_task = r.ok() || t.attempts >= t.max_attempts;
        for (const wire::File& f : r.files()) {
          if (!ends_task) break;
          FileRef& ref = files.emplace_back();
          ref.name = f.name();
          ref.sha256 = DigestSha256(f.content());
          ref.size = f.content().size();
          if (!f.sha256().empty() && f.sha256() != ref.sha256) {
            spdlog::warn("task {}: file {} from {} has sha256 {}, not {}", t.id,
                         f.name(), s.worker_id, ref.sha256, f.sha256());
          }
          file_status = store_.PutFile(ref.sha256, f.content());
          if (!file_status.ok()) break;
          turn_files_.push_back(ref.sha256);
        }
        if (!file_status.ok()) {
          spdlog::error("task {}: cannot store a file: {}", t.id,
                        file_status.message());
          SendError(s.peer, seq, wire::STORE_UNAVAILABLE,
                    "broker cannot store a file: " + file_status.message(),
                    true);
        } else {
          if (t.state == TaskState::kQueued) RemoveReady(t);
          Detach(t);
          TaskOutcome outcome;
          outcome.files = std::move(files);
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
                                     std::nullopt);
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

}  // namespace tq
