// The connected workers as the broker sees them, and the rules of their
// sessions: credit, the dispatch ring and liveness; and, by worker id across
// sessions, each worker's health: its accounting (WorkerRecord, durable) and
// the quarantine rule (docs/lifecycle.md, "Worker health"). No I/O.
//
// Session states: a Hello creates a session in kActive; Credit{pause} moves it
// to kDraining (no more tasks). It ends (and is erased) on Goodbye, on a
// disconnect, when it is silent for heartbeat_interval * liveness, or when a
// new Hello with the same worker id replaces it. Ending requeues what it held,
// except what the replacing Hello says it still holds.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/task_store.h"
#include "broker/task_table.h"
#include "common/clock.h"

namespace tq {

enum class WorkerState { kActive, kDraining };

// What the quarantine rule works with.
struct HealthOptions {
  // Quarantine after this many failed attempts in a row...
  uint32_t quarantine_after = 5;
  // ...when a task that failed here succeeded on another worker within
  // this long of failing here.
  Millis quarantine_window{10 * 60 * 1000};
  // A quarantined worker gets one probe task after this, doubling with each
  // failed probe, up to the cap.
  Millis probe_backoff{5000};
  Millis max_probe_backoff{5 * 60 * 1000};
};

// One worker's health, by worker id: outlives its sessions (a quarantined
// worker that reconnects stays quarantined). Only `record` is durable.
struct WorkerHealth {
  WorkerRecord record;
  // Failed attempts since the last success or release (the rule's count;
  // record.consecutive_failures at start-up).
  uint64_t run_failures = 0;
  // Tasks that failed here in this run, and when: another worker's success
  // with one of them proves the fault is this worker's. Bounded.
  std::unordered_map<uint64_t, TimePoint> failed_tasks;
  uint32_t proven = 0;  // failures of this run so proven

  bool quarantined = false;
  std::string reason;
  Millis backoff{0};
  TimePoint probe_at{};     // when it may take its next probe task
  bool probe_open = false;  // it may take one task now
  uint64_t probe_task = 0;  // the probe in its hands, 0: none
};

struct WorkerSession {
  SessionId id = 0;
  std::string peer;  // ZeroMQ routing id
  std::string worker_id;
  std::string country;
  std::string country_source;
  std::vector<std::string> queues;  // in dispatch order
  std::string hostname;
  std::string peer_address;
  // The CURVE key it joined with ("" without keys): the worker id is bound to
  // it while the session lives, and its revocation ends the session.
  std::string key_name;
  std::string key_public;
  uint32_t concurrency = 1;
  WorkerState state = WorkerState::kActive;

  // Credit: how many more tasks the worker asked for. Invariant (kept by
  // WorkerSessions): credit + in_flight.size() <= concurrency.
  uint32_t credit = 0;
  std::unordered_map<uint64_t, uint64_t> in_flight;  // task id -> token
  bool in_ready_ring = false;

  TimePoint last_seen{};  // any message refreshes it
  TimePoint last_sent{};
  // Its worker's health (WorkerSessions::Health; never null once added, and
  // stable: health entries are never erased).
  WorkerHealth* health = nullptr;
  bool quarantined() const { return health != nullptr && health->quarantined; }
  // Slow start: a session holds at most `window()` tasks; the window starts
  // at window_base and doubles with each result it delivers, up to its
  // concurrency, so a peer that takes tasks and vanishes takes few.
  uint32_t results = 0;  // accepted results (done or failed attempts)
  uint32_t window_base = 0;
  uint32_t window() const {
    const uint64_t w = uint64_t(window_base) << std::min<uint32_t>(results, 20);
    return uint32_t(std::min<uint64_t>(w, concurrency));
  }
  // Names the peer for loss accounting: its address, else its worker id.
  const std::string& loss_key() const {
    return peer_address.empty() ? worker_id : peer_address;
  }
};

class WorkerSessions {
 public:
  // Registers `s` under a fresh id, indexed by its peer and worker id (the
  // caller has ended any session under either first).
  WorkerSession& Add(WorkerSession s);
  // Unregisters the session and hands it back, with what it held.
  std::optional<WorkerSession> Remove(SessionId id);

  WorkerSession* Find(SessionId id);
  WorkerSession* ForPeer(const std::string& peer);
  WorkerSession* ForWorker(const std::string& worker_id);
  size_t size() const { return sessions_.size(); }
  const std::unordered_map<SessionId, WorkerSession>& all() const {
    return sessions_;
  }
  // Workers serving `queue`.
  uint32_t CountServing(const std::string& queue) const;

  // --- credit: the one place it is granted and used ---

  // Adds `grant`, never beyond the worker's free slots (the grant is not
  // trusted); nothing while draining.
  void Grant(WorkerSession& s, uint32_t grant);
  // Stops the worker taking tasks; it keeps what it holds.
  void Drain(WorkerSession& s);
  // The worker takes a task under one unit of its credit.
  void Assign(WorkerSession& s, uint64_t task_id, uint64_t token);
  // The worker holds a task without using credit (a reclaimed lease).
  void Hold(WorkerSession& s, uint64_t task_id, uint64_t token);
  // Gives back credit that assignments never sent used.
  void Refund(WorkerSession& s, uint32_t n);
  // The session no longer holds the task (its lease ended).
  void Forget(SessionId id, uint64_t task_id);

  // --- the dispatch ring: workers with credit, round-robin ---

  // Tasks became ready: every active worker with credit joins the ring.
  void RingAllWithCredit();
  // The next worker of the ring that can take a task, or null; it leaves the
  // ring (Requeue puts it back at the end).
  WorkerSession* PopRing();
  void Requeue(WorkerSession& s);

  // --- liveness ---

  struct LivenessScan {
    std::vector<std::pair<SessionId, Millis>> silent;  // and for how long
    std::vector<std::string> heartbeat_due;            // peers
    TimePoint next{};                                  // when to scan again
  };
  // Who has been silent for `silence_limit` and who is owed a heartbeat
  // (`interval` since we last sent); marks those heartbeats as sent.
  LivenessScan ScanLiveness(TimePoint now, Millis interval,
                            Millis silence_limit);

  // --- health: accounting and quarantine (by worker id) ---

  void set_health_options(const HealthOptions& o) { health_options_ = o; }
  const HealthOptions& health_options() const { return health_options_; }
  // Start-up: the accounting the store kept.
  void LoadRecords(std::vector<WorkerRecord> records);
  // The health of `worker_id`, created (first seen now) if unknown.
  WorkerHealth& Health(const std::string& worker_id, int64_t wall_now_ms);
  WorkerHealth* FindHealth(const std::string& worker_id);
  // Every worker id ever seen (the offline ones for tq-ctl workers).
  const std::unordered_map<std::string, WorkerHealth>& all_health() const {
    return health_;
  }

  // An accepted ok result of `task_id`. `failed_by`: the other workers whose
  // attempts at it failed. Returns those of them that the rule now
  // quarantines (the caller calls Quarantine).
  std::vector<std::string> NoteSuccess(
      WorkerHealth& h, uint64_t task_id,
      const std::vector<std::string>& failed_by, TimePoint now);
  // A failed attempt (reported, or its lease expired: `timed_out`);
  // `retried`: the task gets another attempt. True if the rule now
  // quarantines the worker.
  bool NoteFailure(WorkerHealth& h, uint64_t task_id, const std::string& error,
                   bool retried, bool timed_out, TimePoint now);
  // Whether the rule says quarantine: run_failures >= quarantine_after and
  // at least one of them proven.
  bool ShouldQuarantine(const WorkerHealth& h) const;
  void Quarantine(WorkerHealth& h, std::string reason, TimePoint now);
  // Ends the quarantine (a probe succeeded, or tq-ctl release); its
  // sessions may take tasks again.
  void Release(WorkerHealth& h);
  // The probe failed (or was lost): the next one after twice the wait.
  void ProbeFailed(WorkerHealth& h, TimePoint now);
  // Opens the probes due by `now` (those sessions join the ring); returns
  // when the next one is due, if any.
  std::optional<TimePoint> OpenDueProbes(TimePoint now);

  // --- peers that keep losing leases ---

  // A session of `key` ended holding leases before it finished any task;
  // returns how many such sessions `key` had in the last `window`.
  uint32_t NoteUnprovenLoss(const std::string& key, TimePoint now,
                            Millis window);
  uint32_t UnprovenLosses(const std::string& key, TimePoint now,
                          Millis window) const;

 private:
  struct LossRecord {
    uint32_t sessions = 0;
    TimePoint since{};
  };
  void JoinRing(WorkerSession& s);

  std::unordered_map<SessionId, WorkerSession> sessions_;
  std::unordered_map<std::string, SessionId> by_peer_;
  std::unordered_map<std::string, SessionId> by_worker_;
  SessionId next_id_ = 1;
  std::deque<SessionId> ring_;  // may hold ended sessions' ids
  std::unordered_map<std::string, LossRecord> losses_;  // bounded
  // By worker id; never erased (WorkerSession::health points in).
  std::unordered_map<std::string, WorkerHealth> health_;
  HealthOptions health_options_;
};

}  // namespace tq
