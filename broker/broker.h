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
//
// The parts: TaskTable (broker/task_table.h) holds the tasks, their queues,
// counts and deadlines; WorkerSessions (broker/worker_sessions.h) the
// connected workers, their credit and liveness; Broker the handlers, which
// write the store and then change the tables. Handlers: broker_workers.cc
// (the worker conversation), broker_requests.cc (clients and tq-ctl),
// broker.cc (the turn, time, store failure, task transitions), retention.cc.
//
// Store failure: the first failed write of a turn records a Status, discards
// the turn's writes and refuses further ones; the tables are re-read from
// the store once, in Commit(), after every handler of the turn has returned,
// so no handler sees them change under it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "broker/broker_events.h"
#include "broker/peer_identity.h"
#include "broker/peer_limits.h"
#include "broker/task_store.h"
#include "broker/task_table.h"
#include "broker/worker_sessions.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/defaults.h"
#include "common/latency_histogram.h"
#include "common/log_limiter.h"
#include "geo/country_resolver.h"
#include "tq.pb.h"
#include "tq/task_result.h"

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
  // Tasks a cancel, purge or retry-dead handles per loop turn.
  uint32_t bulk_step = 5000;
  // Slow start: tasks a new session may hold before it has finished one
  // (the window doubles with each result, up to its concurrency).
  uint32_t slow_start_window = 4;
  // Leases lost with a session that had finished no task (took tasks and
  // vanished) do not count as attempts, up to this many per task.
  uint32_t max_unproven_losses = 10;
  // A peer (address) with this many such sessions within the window gets a
  // slow-start window of one task, and a warning.
  uint32_t loss_throttle_sessions = 3;
  Millis loss_throttle_window{10 * 60 * 1000};
  // Reads that cost work (queue and worker lists, batch status, results)
  // one peer may ask for: a second's worth on average, and a burst.
  double reads_per_second = 2000;
  double read_burst = 4000;
  // Worker health: the quarantine rule and its probes (docs/lifecycle.md).
  HealthOptions health;
  // Latency of the store's commits and of the WAL syncer's fsyncs, recorded
  // by them (not by the core, whose clock may be fake) and read when a queue
  // list is answered. Not owned; null leaves them out.
  const LatencyHistogram* commit_latency = nullptr;
  const LatencyHistogram* sync_latency = nullptr;
};

// One message for one peer (a ZeroMQ routing id).
struct Outgoing {
  std::string peer;
  wire::Envelope envelope;
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
  // `who` is the sender's CURVE key and roles (docs/security.md): a message
  // its roles do not allow is answered PERMISSION_DENIED, counted and logged.
  void OnMessage(const std::string& peer, const wire::Envelope& envelope,
                 const std::string& peer_address = "",
                 const PeerIdentity& who = PeerIdentity::Unkeyed());
  // Keys a reload took away: every session joined with one ends now, its
  // tasks back in their queues (no attempt counted). Returns how many ended.
  size_t RevokeKeys(const std::vector<RevokedKey>& revoked);
  // What Envelope.reload_keys runs (the loop's reload of --authorized-keys);
  // unset on a broker without keys. Called on the loop thread.
  void SetKeyReloader(std::function<Result<KeyReload>()> reload) {
    key_reloader_ = std::move(reload);
  }
  // Fills what only the process knows for StatusRequest (version, pid, RSS,
  // database and WAL size, listen addresses); the core adds the rest. Set by
  // the loop (BrokerServer::Bind); called on the loop thread.
  void SetStatusFiller(std::function<void(wire::BrokerStatus*)> fill) {
    status_filler_ = std::move(fill);
  }
  // A frame that failed to decode: counted, logged (a few per address and
  // kind a minute, then a summary), answered with Error.
  void OnBadMessage(const std::string& peer, DecodeError error,
                    const std::string& detail = "",
                    const std::string& peer_address = "");
  // The connection of `peer` is gone (socket monitor). A worker's tasks go
  // back to their queues at once.
  void OnDisconnect(const std::string& peer);
  // Runs due timers; returns when it next needs to run.
  TimePoint OnTick();
  // Stop accepting submissions and stop dispatching (SIGTERM).
  void BeginShutdown();

  std::vector<Outgoing> Flush();
  std::vector<Outgoing> Commit();
  // Whether a Commit() has anything to do: writes or acknowledgements wait,
  // or a store failure waits for its reload.
  bool CommitPending() const {
    return !after_commit_.empty() || store_.HasUncommitted() || reload_due_ ||
           !dirty_workers_.empty() || !turn_events_.empty() ||
           events_.HasSendable();
  }

  const BrokerStats& stats() const { return stats_; }
  bool store_ok() const { return store_status_.ok(); }
  size_t pending_tasks() const { return tasks_.size(); }
  size_t worker_count() const { return sessions_.size(); }
  // Messages refused for want of a role (or of batch ownership).
  uint64_t permission_denied() const { return permission_denied_; }
  // Live event subscriptions (tq-ctl events).
  const EventFeed& event_feed() const { return events_; }

 private:
  struct ParkedFetch {
    std::string peer;
    uint64_t seq = 0;
    wire::FetchResults request;
    TimePoint deadline{};
  };
  // A cancel, purge or retry-dead of many tasks, done in bounded steps across
  // loop turns so heartbeats keep flowing; acknowledged, to every peer that
  // asked, after the commit of its last step.
  struct BulkJob {
    std::string key;     // e.g. "purge generic": a repeated request joins it
    std::string reason;  // cancel and purge: the cancelled tasks' error
    std::vector<uint64_t> cancel;     // cancel and purge, in id order
    std::vector<PendingTask> revive;  // retry-dead
    size_t next = 0;
    uint64_t affected = 0;
    std::vector<std::pair<std::string, uint64_t>> requesters;  // peer, seq
  };

  // Whether a read request from `peer` is within its rate; the ones that are
  // not are answered RATE_LIMITED, counted and logged (rate-limited).
  bool WithinReadRate(const std::string& peer, uint64_t seq,
                      const std::string& address);

  // --- permissions (broker_permissions.cc) ---
  // Whether `who` may send `env`; if not, answers PERMISSION_DENIED, counts
  // and logs it.
  bool Authorize(const std::string& peer, const wire::Envelope& env,
                 const PeerIdentity& who);
  // Whether a key without admin may use `batch_id`: only one it submitted.
  // For Submit, a batch nobody owns yet is free to take.
  bool OwnsBatch(const PeerIdentity& who, const std::string& batch_id,
                 bool submitting) const;
  void Deny(const std::string& peer, uint64_t seq, const PeerIdentity& who,
            const std::string& why);
  void HandleReloadKeys(const std::string& peer, uint64_t seq);

  // --- handlers, one per message body ---
  void HandleHello(const std::string& peer, uint64_t seq,
                   const wire::Hello& hello, const std::string& address,
                   const PeerIdentity& who);
  // A worker message (credit, result, release, goodbye, heartbeat).
  void HandleWorkerMessage(const std::string& peer, const wire::Envelope& env);
  void HandleCredit(WorkerSession& s, const wire::Credit& credit);
  void HandleResult(WorkerSession& s, uint64_t seq, const wire::Result& r);
  void HandleRelease(WorkerSession& s, const wire::Release& release);
  void HandleSubmit(const std::string& peer, uint64_t seq,
                    const wire::Submit& submit, const PeerIdentity& who);
  void HandleFetch(const std::string& peer, uint64_t seq,
                   const wire::FetchResults& fetch);
  void HandleBatchStatus(const std::string& peer, uint64_t seq,
                         const wire::BatchStatusRequest& req);
  void HandleCancel(const std::string& peer, uint64_t seq,
                    const wire::CancelBatch& req);
  void HandleListQueues(const std::string& peer, uint64_t seq);
  void HandleListWorkers(const std::string& peer, uint64_t seq,
                         const wire::ListWorkers& req);

  // --- the views of tq-ctl and the console (broker_views.cc) ---
  // Every one answers from memory or with a point read: none blocks the
  // loop on a scan.
  void HandleStatus(const std::string& peer, uint64_t seq);
  void HandleListBatches(const std::string& peer, uint64_t seq,
                         const wire::ListBatches& req, const PeerIdentity& who);
  void HandleTask(const std::string& peer, uint64_t seq,
                  const wire::TaskRequest& req, const PeerIdentity& who);
  void HandleListActive(const std::string& peer, uint64_t seq,
                        const wire::ListActive& req);
  // The workers not connected now that left within the last hour.
  void AddOfflineWorkers(wire::WorkerList* list);
  // The live lease of task `id` (leased to a connected session), or false.
  bool FillActive(uint64_t id, wire::ActiveTask* out);
  // A new batch: its creation is recorded in the turn's transaction.
  Status NoteBatchCreated(const std::string& batch_id);
  void HandleRetryDead(const std::string& peer, uint64_t seq,
                       const wire::RetryDead& req);
  void HandlePurge(const std::string& peer, uint64_t seq,
                   const wire::PurgeQueue& req);
  void HandleReleaseWorker(const std::string& peer, uint64_t seq,
                           const wire::ReleaseWorker& req);
  // DrainWorker / DisconnectWorker (the web console's worker actions).
  void HandleWorkerAction(const std::string& peer, uint64_t seq,
                          const std::string& worker_id, bool disconnect);

  // --- control (broker_control.cc): events, per-task cancel, pause ---
  void HandleSubscribe(const std::string& peer, uint64_t seq,
                       const wire::Subscribe& req);
  void HandleEventsAck(const std::string& peer, uint64_t seq,
                       const wire::EventsAck& ack);
  void HandleCancelTask(const std::string& peer, uint64_t seq,
                        const wire::CancelTask& req, const PeerIdentity& who);
  void HandlePauseQueue(const std::string& peer, uint64_t seq,
                        const wire::PauseQueue& req);
  // Ends subscriptions whose lease ran out.
  void ExpireSubscriptions(TimePoint now);
  // A new event of this turn, or null when nobody subscribes (then nothing
  // is built). `t`, if given, fills in the task's id, batch, queue and URL.
  PublishedEvent* NewEvent(const char* kind, const TaskEntry* t = nullptr);
  // After a successful commit: the turn's events go to the subscribers;
  // after a failed one they are dropped (what they tell was rolled back).
  void PublishTurnEvents(bool committed, std::vector<Outgoing>* out);
  // The URL of a task leased in this broker's life, or "".
  const std::string& UrlOf(uint64_t id) const;
  // "task 12 (http://...)": how log lines name a task.
  std::string TaskName(uint64_t id) const;

  // --- the pieces of Hello and Result ---
  // Why a Hello is refused, or empty.
  std::string CheckHello(const wire::Hello& hello) const;
  // The country (and how it was found) for a Hello, e.g. {"IT", "flag"}.
  std::pair<std::string, std::string> WorkerCountry(
      const wire::Hello& hello, const std::string& address) const;
  // Takes back the leases a (re)joining worker says it holds, if nobody got
  // them since; returns how many.
  size_t ReclaimLeases(WorkerSession& s, const wire::Hello& hello);
  // Takes a result of the live lease of `t` (the caller checked the token).
  void DeliverResult(TaskEntry& t, WorkerSession& s, uint64_t seq,
                     const wire::Result& r);
  // Stores the files of a result that ends its task, under digests of our
  // own, and leaves references in their place (none if the task goes on).
  Status StoreResultFiles(const TaskEntry& t, const WorkerSession& s,
                          AttemptResult* outcome);
  void AckResult(const WorkerSession& s, uint64_t seq, const wire::Result& r,
                 bool accepted, const std::string& reason);

  // --- task transitions: the store first, then the tables ---
  void Lease(TaskEntry& t, WorkerSession& s, wire::Assign* assign);
  // The holder lost the task (died, hung, said goodbye): the attempt counts,
  // unless the holder was `unproven` (had finished no task) and the task has
  // free losses left.
  void LoseLease(TaskEntry& t, const std::string& reason, bool unproven = false,
                 WorkerSession* holder = nullptr);
  // Back to its queue, the attempt not counted (handed back unrun, leased
  // before a restart and never reclaimed, lost unproven).
  // `reason` is stored as the task's last error; `why` (else `reason`) is
  // what the requeued event says.
  void Requeue(TaskEntry& t, std::optional<std::string> reason = std::nullopt,
               const std::string& why = "");
  // A session ended holding leases before it finished any task.
  void NoteUnprovenLoss(const WorkerSession& s, size_t lost);
  void FailAttempt(TaskEntry& t, AttemptResult outcome);
  void Finish(TaskEntry& t, TaskState final_state, AttemptResult outcome);
  // Forgets which session holds the task (its lease ended one way or other).
  void Detach(TaskEntry& t);
  // Ends a session; its leases go back, but for those `keep` names with
  // their token (task id -> token: a replacing Hello's held leases).
  void EndSession(SessionId id, const std::string& reason,
                  const std::unordered_map<uint64_t, uint64_t>& keep = {});
  void Dispatch();

  // --- worker health (broker_health.cc) ---
  // An attempt of task `id` ended: its record joins the task's history.
  void RecordAttempt(uint64_t id, uint32_t attempt, const std::string& worker,
                     bool ok, const std::string& outcome,
                     const std::string& error);
  // The workers other than `except` whose attempts at task `id` failed.
  std::vector<std::string> FailedBy(uint64_t id,
                                    const std::string& except) const;
  // Accounting of an accepted result of task `id` from `s`; may quarantine
  // workers (`failed_by`: those whose attempts at it failed, when it
  // succeeded), or end the quarantine of `s` when it was its probe.
  void AccountResult(WorkerSession& s, uint64_t id, bool ok, bool retried,
                     const std::string& error,
                     const std::vector<std::string>& failed_by);
  // A failed attempt that was no result: the lease expired in the hands of
  // `s` (timed_out), or `s` was lost holding the task.
  void AccountLoss(WorkerSession& s, uint64_t id, bool retried, bool timed_out,
                   const std::string& reason);
  // Stops granting the worker tasks and gives back what it holds.
  void QuarantineWorker(WorkerHealth& h, const std::string& why);
  // The next ready task of `queue` for `s`: passes over a retry that `s`
  // failed while a worker that has not serves the queue.
  TaskEntry* NextTaskFor(const WorkerSession& s, const std::string& queue);
  void MarkDirty(const WorkerHealth& h) {
    dirty_workers_.insert(h.record.worker_id);
  }
  // Writes the changed accounting into the turn's transaction.
  void SaveDirtyWorkers();
  void FillHealth(const WorkerSession& s, wire::WorkerInfo* w) const;

  // --- bulk jobs (bulk_jobs.cc) ---
  // Joins the running job `key` if there is one; true if it did.
  bool JoinBulk(const std::string& key, const std::string& peer, uint64_t seq);
  void StartBulk(BulkJob job, const std::string& peer, uint64_t seq);
  // One step of the oldest job (Flush, before dispatch).
  void RunBulkStep();
  // Whether the job's next item was handled; false if the store failed.
  bool BulkCancelOne(BulkJob& job);
  bool BulkReviveOne(BulkJob& job);
  void FailBulkJobs();

  // --- time ---
  void CheckLiveness(TimePoint now);
  void ExpireLeases(TimePoint now);
  void ReadyDueRetries(TimePoint now);
  void ProbeStore(TimePoint now);
  // One bounded step of the retention sweep (keep_results).
  void Sweep(TimePoint now);

  // --- results for clients ---
  void AnswerParkedFetches(bool expired_only);
  bool ReplyResults(const std::string& peer, uint64_t seq,
                    const wire::FetchResults& req, bool final_answer);

  // --- the store ---
  // Records a failed write: see the header comment.
  void OnStoreFailure(const Status& status);
  Status ReloadFromStore(bool first_load);
  // After a reload: drops the in-flight entries of live sessions that the
  // store does not confirm (the leases it does confirm stay theirs).
  void DropUnconfirmedLeases();
  // Refuses a write request (with an Error) while shutting down or while the
  // store refuses writes.
  bool CheckWritable(const std::string& peer, uint64_t seq);

  // --- output ---
  void Send(const std::string& peer, wire::Envelope env);
  void SendAfterCommit(const std::string& peer, wire::Envelope env);
  void SendError(const std::string& peer, uint64_t seq, wire::ErrorCode code,
                 std::string message, bool retryable = false);
  void SendStoreError(const std::string& peer, uint64_t seq);
  void SendAdminAck(const std::string& peer, uint64_t seq, uint64_t affected);
  TimePoint LeaseExpiry(const TaskEntry& t) const;

  // Constant after construction.
  TaskStore& store_;
  const Clock& clock_;
  const BrokerOptions options_;

  // Owned by the loop thread (all of it).
  TaskTable tasks_;
  WorkerSessions sessions_;
  uint64_t last_finish_seq_ = 0;
  std::vector<ParkedFetch> parked_;
  std::deque<BulkJob> bulk_;
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

  // Not ok while the store refuses writes (sticky until a probe succeeds).
  Status store_status_;
  bool reload_due_ = false;  // a failure of this turn waits for Commit()
  TimePoint next_probe_{};
  bool shutting_down_ = false;
  BrokerStats stats_;
  // Counted during this turn; added to stats_ once its commit succeeded, so
  // the counters never include what a failed commit rolled back.
  struct TurnCounts {
    uint64_t submitted = 0;
    uint64_t done = 0;
    uint64_t failed = 0;
    uint64_t dead = 0;
    uint64_t cancelled = 0;
  };
  TurnCounts turn_counts_;
  LogLimiter warnings_;  // repeated warnings about peers
  PeerRateLimit reads_;
  uint64_t reads_refused_ = 0;
  // Ended attempts of pending tasks that have any (task id -> oldest
  // first), written with the result; in memory, so a restart starts them
  // afresh.
  std::unordered_map<uint64_t, std::vector<AttemptRecord>> history_;
  // Worker ids whose accounting changed this turn.
  std::unordered_set<std::string> dirty_workers_;

  // Pending tasks leased since the start (task id -> URL, and when the
  // current lease began: 0 once its attempt ended). The table keeps no
  // URLs; events, log lines and the views name them. Bounded by the pending
  // tasks: an entry goes when its task finishes. (FillActive checks the task
  // is still leased.)
  struct LiveLease {
    std::string url;
    int64_t since_ms = 0;
  };
  std::unordered_map<uint64_t, LiveLease> live_leases_;
  // Each batch's creation (from the store's batches table): order and time.
  struct BatchMeta {
    uint64_t seq = 0;
    int64_t created_ms = 0;
  };
  std::unordered_map<std::string, BatchMeta> batch_meta_;
  uint64_t last_batch_seq_ = 0;
  int64_t started_wall_ms_ = 0;
  std::function<void(wire::BrokerStatus*)> status_filler_;

  // CURVE: which key submitted each batch (batch id -> key name; from the
  // store), the reload hook, and the refusals so far.
  std::unordered_map<std::string, std::string> batch_owners_;
  std::function<Result<KeyReload>()> key_reloader_;
  uint64_t permission_denied_ = 0;

  EventFeed events_;
  std::vector<PublishedEvent> turn_events_;  // empty unless events_.active()
};

}  // namespace tq
