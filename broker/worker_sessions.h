// The connected workers as the broker sees them, and the rules of their
// sessions: credit, the dispatch ring and liveness. No I/O.
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

#include "broker/task_table.h"
#include "common/clock.h"

namespace tq {

enum class WorkerState { kActive, kDraining };

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
  uint64_t tasks_done = 0;
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
};

}  // namespace tq
