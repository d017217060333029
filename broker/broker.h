// The broker's brain: a state machine with no sockets and no SQL. Events go
// in (a decoded message from a peer, a disconnect, the passing of time); what
// to send comes out. Durable state changes go through the TaskStore interface
// and become durable at Commit(), once per loop turn.
//
// A loop turn is:
//   OnMessage()... OnTick()   events of this turn
//   Flush()                   dispatch; messages that may leave before the
//                             commit (task assignments, heartbeats, errors)
//   Commit()                  group commit; the acknowledgements that waited
//                             on it (or, if it failed, errors in their place)
//
// Nothing is acknowledged before the commit that holds it: SubmitAck,
// ResultAck, Results and AdminAck come out of Commit() only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/task_store.h"
#include "broker/worker_session.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/defaults.h"
#include "geo/country_resolver.h"
#include "tq.pb.h"

namespace tq {

struct BrokerOptions {
  Millis heartbeat_interval{kDefaultHeartbeatIntervalMs};
  uint32_t heartbeat_liveness = kDefaultHeartbeatLiveness;
  uint32_t default_max_attempts = kDefaultMaxAttempts;
  uint32_t default_time_limit_ms = kDefaultTimeLimitMs;
  Millis lease_grace{kLeaseGraceMs};
  Millis retry_backoff{kDefaultRetryBackoffMs};
  Millis max_retry_backoff{kMaxRetryBackoffMs};
  // How often a failed store is probed for writability.
  Millis store_probe_interval{1000};
  // Longest a parked FetchResults waits, whatever the client asked.
  Millis max_fetch_wait{30000};
  // Finds the country of a worker that says --country auto from the address
  // it connects from; null when the broker has no GeoIP database. Not owned;
  // called on the loop thread.
  CountryResolver* country_resolver = nullptr;
  // Finished tasks older than this are deleted, with the stored files no
  // kept result references; 0 keeps them forever.
  Millis keep_results{0};
  // Tasks deleted per sweep step (one loop turn).
  uint32_t sweep_batch = 500;
};

// One message for one peer (a ZeroMQ routing id).
struct Outgoing {
  std::string peer;
  wire::Envelope envelope;
};

// Per-state task counts, for a batch or a queue.
struct Counts {
  uint64_t by_state[6] = {0, 0, 0, 0, 0, 0};
  uint64_t total() const;
  uint64_t pending() const;  // queued + leased + retry_wait
  void ToWire(wire::BatchCounts* out) const;
};

struct BrokerStats {
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bad_messages = 0;
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t redeliveries = 0;
};

class Broker {
 public:
  Broker(TaskStore& store, const Clock& clock, BrokerOptions options);

  // Loads queued, leased and retry-waiting tasks and the counts from the
  // store. Tasks that were leased when the last broker stopped stay leased to
  // nobody for one heartbeat-liveness period, so their workers can reclaim
  // them on reconnect; after that they are queued again.
  Status Start();

  // A decoded message from `peer`. `peer_address` is the remote IP, if known.
  void OnMessage(const std::string& peer, const wire::Envelope& envelope,
                 const std::string& peer_address = "");
  // A frame that failed to decode: counted, logged, answered with Error.
  void OnBadMessage(const std::string& peer, DecodeError error,
                    const std::string& detail = "");
  // The connection of `peer` is gone (socket monitor). A worker's tasks go
  // back to their queues at once.
  void OnDisconnect(const std::string& peer);
  // Runs due timers; returns when it next needs to run.
  TimePoint OnTick();
  // Stop accepting submissions and stop dispatching (SIGTERM).
  void BeginShutdown();

  std::vector<Outgoing> Flush();
  std::vector<Outgoing> Commit();
  // Whether a Commit() has anything to do: writes or acknowledgements wait.
  bool CommitPending() const {
    return !after_commit_.empty() || store_.HasUncommitted();
  }

  const BrokerStats& stats() const { return stats_; }
  bool store_ok() const { return store_error_.empty(); }
  size_t pending_tasks() const { return tasks_.size(); }
  size_t worker_count() const { return sessions_.size(); }

 private:
  // Tasks ready to run in one queue at one priority. Fresh submissions arrive
  // in id order and go to the back of a deque (8 bytes each, a million queued
  // tasks are cheap); tasks that come back (lost, released, retried) go to an
  // ordered set. The next task is the lower id of the two fronts, so a task
  // that comes back runs before newer work. Removal from the deque is lazy:
  // the task's in_fresh_lane flag says whether its entry there still counts.
  struct ReadyLane {
    std::deque<uint64_t> fresh;
    std::set<uint64_t> returned;
  };
  struct QueueState {
    std::map<int64_t, ReadyLane> lanes;  // by -priority: highest first
    Counts counts;
  };
  using QueueEntry = std::map<std::string, QueueState>::value_type;
  using BatchEntry = std::unordered_map<std::string, Counts>::value_type;

  // Kept small: a million queued tasks are a million of these. The URL and
  // options stay in the store until the task is leased (MarkLeased returns
  // them); batch and queue point into batches_ and queues_, whose nodes do
  // not move.
  struct TaskEntry {
    uint64_t id = 0;
    uint64_t token = 0;
    // Leased: when the lease expires; retry_wait: when it may run again.
    TimePoint deadline{};
    BatchEntry* batch = nullptr;
    QueueEntry* queue = nullptr;
    SessionId holder = 0;  // 0 while leased to nobody (after a restart)
    uint32_t time_limit_ms = 0;
    int32_t priority = 0;
    uint16_t attempts = 0;
    uint16_t max_attempts = 0;
    TaskState state = TaskState::kQueued;
    bool in_fresh_lane = false;
  };
  struct ParkedFetch {
    std::string peer;
    uint64_t seq = 0;
    wire::FetchResults request;
    TimePoint deadline{};
  };
  using Deadline = std::pair<TimePoint, uint64_t>;  // (when, task id)
  using MinHeap = std::priority_queue<Deadline, std::vector<Deadline>,
                                      std::greater<Deadline>>;

  // Handlers, one per message body.
  void HandleHello(const std::string& peer, uint64_t seq,
                   const wire::Hello& hello, const std::string& address);
  // The country (and how it was found) for a Hello, e.g. {"IT", "flag"}.
  std::pair<std::string, std::string> WorkerCountry(
      const wire::Hello& hello, const std::string& address) const;
  void HandleCredit(WorkerSession& s, const wire::Credit& credit);
  void HandleResult(WorkerSession& s, uint64_t seq, const wire::Result& r);
  void HandleRelease(WorkerSession& s, const wire::Release& release);
  void HandleSubmit(const std::string& peer, uint64_t seq,
                    const wire::Submit& submit);
  void HandleFetch(const std::string& peer, uint64_t seq,
                   const wire::FetchResults& fetch);
  void HandleBatchStatus(const std::string& peer, uint64_t seq,
                         const wire::BatchStatusRequest& req);
  void HandleCancel(const std::string& peer, uint64_t seq,
                    const wire::CancelBatch& req);
  void HandleListQueues(const std::string& peer, uint64_t seq);
  void HandleListWorkers(const std::string& peer, uint64_t seq);
  void HandleRetryDead(const std::string& peer, uint64_t seq,
                       const wire::RetryDead& req);
  void HandlePurge(const std::string& peer, uint64_t seq,
                   const wire::PurgeQueue& req);

  // Task transitions; every state change goes through SetState.
  void SetState(TaskEntry& t, TaskState next);
  // Adds a task the store holds in state queued, leased or retry_wait, and
  // counts it (unless `counted`: the counts already include it).
  TaskEntry& AddTask(const PendingTask& p, bool counted);
  void MakeReady(TaskEntry& t);
  // Ready lanes: enqueue, remove, and the next task of a queue (or null).
  void PushReady(TaskEntry& t);
  void RemoveReady(TaskEntry& t);
  TaskEntry* NextReady(QueueState& q);
  void Lease(TaskEntry& t, WorkerSession& s, wire::Assign* assign);
  // The holder lost the task (died, hung, said goodbye): the attempt counts.
  void LoseLease(TaskEntry& t, const std::string& reason);
  void FailAttempt(TaskEntry& t, TaskOutcome outcome);
  void Finish(TaskEntry& t, TaskState final_state, TaskOutcome outcome);
  void Detach(TaskEntry& t);

  void EndSession(SessionId id, const std::string& reason,
                  const std::unordered_set<uint64_t>& keep = {});
  void Dispatch();
  // Cancels the queued and retry-waiting tasks that `matches` selects, oldest
  // first, and says how many.
  size_t CancelWaiting(const std::function<bool(const TaskEntry&)>& matches,
                       const std::string& reason);
  void SendAdminAck(const std::string& peer, uint64_t seq, uint64_t affected);
  void AnswerParkedFetches(bool expired_only);
  bool ReplyResults(const std::string& peer, uint64_t seq,
                    const wire::FetchResults& req, bool final_answer);

  // Store failure: abort, refuse writes until a probe succeeds, and turn the
  // acknowledgements of this turn into errors.
  void OnStoreFailure(const Status& status);
  Status ReloadFromStore(bool first_load);
  // One bounded step of the retention sweep (keep_results).
  void Sweep(TimePoint now);
  bool CheckWritable(const std::string& peer, uint64_t seq);

  void Send(const std::string& peer, wire::Envelope env);
  void SendAfterCommit(const std::string& peer, wire::Envelope env);
  void SendError(const std::string& peer, uint64_t seq, wire::ErrorCode code,
                 std::string message, bool retryable = false);
  WorkerSession* SessionForPeer(const std::string& peer);
  uint64_t NewToken();
  QueueEntry& Queue(const std::string& name);
  BatchEntry& Batch(const std::string& id);

  // Constant after construction.
  TaskStore& store_;
  const Clock& clock_;
  const BrokerOptions options_;

  // Owned by the loop thread (all of it).
  std::unordered_map<uint64_t, TaskEntry> tasks_;  // non-terminal tasks only
  std::map<std::string, QueueState> queues_;
  std::unordered_map<std::string, Counts> batches_;
  MinHeap lease_deadlines_;  // lazily pruned: entries may be stale
  MinHeap retry_deadlines_;
  uint64_t last_finish_seq_ = 0;
  std::unordered_set<std::string> batches_with_news_;
  std::vector<ParkedFetch> parked_;

  std::unordered_map<SessionId, WorkerSession> sessions_;
  std::unordered_map<std::string, SessionId> session_by_peer_;
  std::unordered_map<std::string, SessionId> session_by_worker_;
  SessionId next_session_id_ = 1;
  std::deque<SessionId> ready_workers_;  // may hold stale ids
  bool work_added_ = false;
  TimePoint next_session_check_{};

  std::vector<Outgoing> immediate_;
  std::vector<Outgoing> after_commit_;

  // Digests stored by PutFile since the last commit: if that commit fails,
  // the ones nothing references are removed again.
  std::vector<std::string> turn_files_;
  TimePoint next_sweep_{};
  // Digests named by the results the last sweep step deleted: removed at the
  // next step, once that deletion has been committed and synced.
  std::vector<std::string> sweep_candidates_;

  std::string store_error_;  // non-empty while the store refuses writes
  TimePoint next_probe_{};
  bool shutting_down_ = false;
  std::mt19937_64 token_rng_;
  BrokerStats stats_;
};

}  // namespace tq
