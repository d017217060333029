// This is a public header file: the tq client library.
//
// A Client talks to one tq broker over a ZeroMQ DEALER socket. It submits URL
// batches, streams their results, and runs the admin requests behind tq-ctl.
//
// Threading: a Client owns its socket and is NOT thread-safe; use one Client
// per thread (they are cheap), or guard one with a mutex. Different Clients
// are independent.
// Errors: every call returns a tq::Status / tq::Result. kUnavailable means the
// broker did not answer within the request timeout (after retries) or said
// it cannot store right now; kInvalidArgument means the broker refused the
// request as given; kNotFound an unknown batch or queue.
// Idempotence: every request is safe to retry. Submit() is keyed by
// (batch_id, item index), so re-submitting the same batch id never enqueues
// duplicates.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tq/status.h"
#include "tq/task_result.h"

namespace tq {

// CURVE keys (CurveZMQ: the broker is authenticated by its public key, the
// client by its key pair, every frame is encrypted), each 40 Z85 characters
// as in the key files tq-keygen writes (docs/security.md). All three empty:
// plain TCP. Otherwise all three are needed and the client's public key must
// be the one of its secret key; Client::Connect checks that
// (kInvalidArgument). A broker with another public key never answers: the
// requests end in kUnavailable, like a broker that is down.
struct CurveClientKeys {
  std::string broker_public_key;
  std::string client_public_key;
  std::string client_secret_key;
  bool enabled() const {
    return !broker_public_key.empty() || !client_public_key.empty() ||
           !client_secret_key.empty();
  }
};

// The connection to the broker as ZeroMQ's socket monitor sees it.
struct ConnectionEvent {
  enum class Kind {
    kWaiting,    // not connected yet: refused, or no answer after 1 s
    kConnected,  // connected (reported only after a kWaiting or kLost)
    kLost,       // was connected, and the connection went away
  };
  Kind kind = Kind::kWaiting;
  // For people: "waiting for broker at tcp://127.0.0.1:7070: connection
  // refused", "lost the broker at tcp://...", "connected to tcp://...".
  std::string message;
};

struct ClientOptions {
  // tcp://HOST:PORT, PORT 1-65535; anything else is kInvalidArgument from
  // Client::Connect, with the expected form and an example.
  std::string endpoint = "tcp://127.0.0.1:7070";
  // How long one attempt of a request waits for its reply, and how many
  // attempts are made before giving up with kUnavailable.
  std::chrono::milliseconds request_timeout{5000};
  int attempts = 3;
  CurveClientKeys curve;  // empty: no CURVE
  // Called on the thread making a request, from inside it, each time the
  // connection changes state (never twice in a row for the same kind, so a
  // broker that keeps refusing is reported once). Requests go on retrying
  // either way. Empty: not reported.
  std::function<void(const ConnectionEvent&)> on_connection;
};

struct SubmitOptions {
  // Every URL goes on every listed queue ("generic" or country codes).
  std::vector<std::string> queues = {"generic"};
  int32_t priority = 0;        // higher runs first within a queue
  uint32_t max_attempts = 0;   // 0: the broker's default (3)
  uint32_t time_limit_ms = 0;  // 0: the broker's default
  std::string batch_id;        // empty: a fresh random id is chosen
  std::map<std::string, std::string> task_options;  // handed to the worker
};

struct SubmitItemError {
  size_t url_index = 0;  // index into the urls passed to Submit
  std::string queue;
  std::string reason;
};

struct SubmitReceipt {
  std::string batch_id;
  uint64_t total = 0;       // urls x queues
  uint64_t accepted = 0;    // newly queued
  uint64_t duplicates = 0;  // already known from an earlier submit
  std::vector<SubmitItemError> errors;
};

struct BatchProgress {
  uint64_t total = 0;
  uint64_t queued = 0;
  uint64_t leased = 0;
  uint64_t retry_wait = 0;
  uint64_t done = 0;
  uint64_t dead = 0;
  uint64_t cancelled = 0;
  // Done tasks by outcome (they add up to done; see TaskResult::outcome).
  uint64_t ok = 0;
  uint64_t unreachable = 0;
  uint64_t http_error = 0;
  uint64_t timeout = 0;
  uint64_t finished() const { return done + dead + cancelled; }
  bool complete() const { return total > 0 && finished() >= total; }
};

// Batch ids are 1..64 characters of [A-Za-z0-9._:-]. Ok or the reason.
Status ValidateBatchId(std::string_view batch_id);
// A fresh random batch id: 16 lower-case hex digits. Thread-safe.
std::string NewBatchId();

// One JSON object (no newline) as printed by `tq-submit --wait` and
// `tq-ctl results`, documented field by field in docs/result-line.md:
// task_id, batch_id, index, url, queue, status, ok, attempts, worker,
// duration_ms, result (the output: embedded as JSON when it is a JSON object
// or array, else text; output_base64 instead when it is not UTF-8),
// output_truncated (only when true), error (only when non-empty), exit_code,
// stderr_tail (only when non-empty), submitted and finished (ISO-8601 UTC
// with milliseconds, "" when unknown), submitted_ms and finished_ms (the
// same as epoch ms), files (name, sha256, size; never content; only when
// there are any), outcome and outcome_reason (done tasks; the reason only
// when non-empty), history (each ended attempt: attempt, worker, ok,
// outcome or error). Never throws; invalid UTF-8 in other fields becomes
// U+FFFD.
std::string ToJsonLine(const TaskResult& result);

struct ResultPage {
  std::vector<TaskResult> results;
  uint64_t cursor = 0;  // pass as `after` to get the next page
  BatchProgress progress;
};

struct QueueSummary {
  std::string name;
  BatchProgress counts;
  uint32_t workers = 0;
  bool paused = false;  // PauseQueue: leases nothing until resumed
};

// What FollowEvents selects; an empty field matches everything. A key with
// the submit role alone must name one of its own batches.
struct EventFilter {
  std::string batch_id;
  std::string queue;
  std::string worker_id;
};

// One thing that happened in the cluster, as the broker reports it.
// event: submitted (one per queue of each Submit message: count tasks;
// task_id and url only when count is 1), leased, finished (outcome),
// failed (an attempt failed or its worker was lost; retried), requeued
// (back to its queue, no attempt counted), dead, cancelled, worker_joined,
// worker_left (goodbye), worker_lost (error says why; count: tasks it
// held), or missed (count events the broker dropped here because this
// subscriber read too slowly). Fields that do not apply are empty or 0.
struct ClusterEvent {
  int64_t time_ms = 0;  // wall clock, ms since the epoch
  std::string event;
  uint64_t task_id = 0;
  std::string batch_id;
  std::string queue;
  std::string url;  // "" where the broker does not hold it in memory
  std::string worker_id;
  uint32_t attempt = 0;
  std::string outcome;
  std::string error;
  uint64_t count = 0;
};

// One JSON object (no newline) as printed by `tq-ctl events`: time
// (ISO-8601 UTC with milliseconds and Z), event, then task_id, batch_id,
// queue, url, worker, attempt, outcome, error and count, each only when it
// applies (non-empty, non-zero; count always for submitted and missed).
std::string ToJsonLine(const ClusterEvent& event);

// A task running now: its lease, as the broker's core holds it.
struct RunningTask {
  uint64_t task_id = 0;
  std::string url;
  std::string queue;
  std::string batch_id;
  std::string worker;
  int64_t since_ms = 0;  // wall clock, when it was leased
  uint32_t attempt = 0;  // 1 for the first
};

// What a reload of the broker's authorized keys did (Client::ReloadKeys).
struct KeysReload {
  uint32_t keys = 0;  // admitted now
  // By key name: new, gone, and changed ("NAME: roles a -> b").
  std::vector<std::string> added, removed, changed;
  // Keys whose live sessions were closed (gone, or rules changed), and how
  // many worker sessions that ended.
  std::vector<std::string> revoked;
  uint32_t sessions_ended = 0;
  std::vector<std::string> problems;  // files skipped, each with its reason
};

struct WorkerSummary {
  std::string worker_id;
  std::string country;
  std::string country_source;
  std::vector<std::string> queues;
  uint32_t concurrency = 0;
  uint32_t credit = 0;
  uint32_t in_flight = 0;
  uint64_t last_seen_ms_ago = 0;
  std::string hostname;
  uint64_t tasks_done = 0;  // accepted ok results (= succeeded)
  std::string peer_address;
  // The broker's accounting of this worker id, kept across restarts.
  uint64_t succeeded = 0;
  uint64_t failed = 0;     // failed attempts it reported
  uint64_t retried = 0;    // of those, the ones given another attempt
  uint64_t timed_out = 0;  // leases that expired in its hands
  uint64_t consecutive_failures = 0;
  std::string last_failure;
  int64_t first_seen_ms = 0;     // wall clock, ms since the epoch
  int64_t session_start_ms = 0;  // wall clock: uptime is now - this
  std::string state;             // "active", "draining" or "quarantined"
  std::string state_reason;      // why quarantined
  std::string key_name;  // the CURVE key it joined with; "" without keys
  std::vector<RunningTask> current;  // what it runs now, by task id
  // Workers(true) also lists the workers that left within the last hour:
  // offline, state "offline", with only their id and accounting.
  bool offline = false;
  int64_t last_seen_ms = 0;  // wall clock
};

// tq-ctl status: the broker process and its totals.
struct BrokerStatus {
  std::string version;  // "0.1.0 (git a1b2c3d4e5f6)"
  uint32_t pid = 0;
  int64_t started_ms = 0;  // wall clock
  uint64_t uptime_ms = 0;
  uint64_t rss_bytes = 0;
  std::string db_path;
  uint64_t db_bytes = 0;
  uint64_t wal_bytes = 0;
  std::vector<std::string> listen;  // the broker's endpoints
  uint32_t workers = 0;             // connected
  BatchProgress totals;             // every task it knows, by state
  uint64_t batches = 0;
  BrokerStats stats;
};

struct BatchOverview {
  std::string batch_id;
  BatchProgress counts;
  int64_t created_ms = 0;  // wall clock, its first submit
  std::string submitter;   // the CURVE key that submitted it; "" without keys
  uint64_t seq = 0;        // creation order
};

struct BatchListing {
  std::vector<BatchOverview> batches;  // newest first
  uint64_t next_before = 0;  // pass as `before` for older ones; 0: no more
  uint64_t total = 0;        // batches visible to this client's key
};

// tq-ctl task: one task, its submission, every ended attempt and, once
// finished, its result.
struct TaskReport {
  // state ("queued", "leased", "retry_wait", "done", "dead", "cancelled"),
  // url, queue, batch_id, attempts, submitted_ms; history: every ended
  // attempt (worker, started_ms, ended_ms, ok, outcome, error), oldest
  // first; once finished, the result fields (files without content).
  TaskResult task;
  bool finished = false;
  std::string options_json;  // as submitted, "{}" for none
  int32_t priority = 0;
  uint32_t max_attempts = 0;
  uint32_t time_limit_ms = 0;
  int64_t not_before_ms = 0;  // retry_wait: when it may run again
  bool leased = false;        // running now: `lease` says where
  RunningTask lease;
};

class Client {
 public:
  // Creates the socket and connects (ZeroMQ connects lazily: an absent
  // broker shows up as kUnavailable on the first request, not here).
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Queues urls x options.queues in one batch, in chunks, pipelined. URLs the
  // broker refuses come back in errors; the rest are queued. Item i*n+j is
  // urls[i] on queues[j] (n queues), so re-submitting the same urls, queues
  // and batch id only counts duplicates. A bad batch id, queue name, empty
  // url list or repeated queue is kInvalidArgument before anything is sent.
  // On kUnavailable some chunks may have been queued: retry with the same
  // batch id.
  Result<SubmitReceipt> Submit(const std::vector<std::string>& urls,
                               const SubmitOptions& options);

  // One page: results that finished after `after`, oldest first, at most
  // `limit`, and fewer when they are big: the broker cuts a page at about
  // 12 MiB of results (output, and file content with with_files), but always
  // sends at least one. A result too big for any message (only a peer that
  // ignores the worker's caps can store one) comes cut down, with
  // output_truncated and the error saying what was cut. So a short page is
  // not the last one: pass `cursor` as `after` until a page comes back empty.
  // Waits up to `wait` for at least one if none is ready (long poll); each
  // attempt allows request_timeout + wait for the reply.
  Result<ResultPage> FetchResults(const std::string& batch_id, uint64_t after,
                                  uint32_t limit,
                                  std::chrono::milliseconds wait,
                                  bool with_files = false);

  // Streams every result of the batch to on_result, in finishing order, until
  // the batch is complete and a page brings nothing new (returns Ok: one
  // extra, empty page confirms the end), on_result returns false (Ok), or
  // `deadline` passes (kUnavailable). on_progress, if set, is called after
  // every page. Pages hold up to 1000 results (fewer when big: see
  // FetchResults) and long-poll up to 1 s, so callbacks run at least about
  // once a second. Broker errors end the wait with their Status; a broker
  // that sends results without moving the cursor, kInternal.
  Status WaitForResults(
      const std::string& batch_id,
      const std::function<bool(const TaskResult&)>& on_result,
      const std::function<void(const BatchProgress&)>& on_progress,
      std::chrono::milliseconds deadline, bool with_files = false);

  Result<BatchProgress> Progress(const std::string& batch_id);
  // Cancels the batch's queued and retry-waiting tasks; running ones finish.
  // Returns how many were cancelled.
  Result<uint64_t> Cancel(const std::string& batch_id);

  Result<std::vector<QueueSummary>> Queues(BrokerStats* counters = nullptr);
  // Connected workers by id, each with what it runs now; with
  // include_offline also those that left within the last hour.
  Result<std::vector<WorkerSummary>> Workers(bool include_offline = false);
  // The broker's version, process, database, endpoints and totals. Needs
  // the admin role on a keyed broker.
  Result<BrokerStatus> GetStatus();
  // Batches newest first, at most `limit` (0: 50, at most 1000), those
  // created before `before` (a BatchListing::next_before; 0: the newest). A
  // submit key sees only the batches it submitted.
  Result<BatchListing> Batches(uint32_t limit = 0, uint64_t before = 0);
  // One task; kNotFound for an unknown id. A submit key may look up only
  // the tasks of its own batches.
  Result<TaskReport> Task(uint64_t task_id);
  // Running tasks by id, from the broker's leases; empty filters match any.
  // Needs the admin role on a keyed broker.
  Result<std::vector<RunningTask>> Active(const std::string& batch_id = "",
                                          const std::string& queue = "",
                                          const std::string& worker = "");
  // Dead tasks of a batch (or, with batch_id empty, of a queue) are queued
  // again with fresh attempts. Returns how many.
  Result<uint64_t> RetryDead(const std::string& batch_id,
                             const std::string& queue);
  // Cancels every queued and retry-waiting task of the queue.
  Result<uint64_t> Purge(const std::string& queue);
  // Ends the quarantine of a worker at once; kNotFound if it is not
  // quarantined.
  Status ReleaseWorker(const std::string& worker_id);
  // Has a keyed broker read its --authorized-keys again (like SIGHUP); needs
  // the admin role. InvalidArgument from a broker without keys.
  Result<KeysReload> ReloadKeys();

  // Cancels one task (see docs/lifecycle.md): queued or waiting to retry,
  // it is cancelled; leased, it is cancelled too and its worker's result is
  // refused when it comes; with `terminate` the worker is also told to kill
  // the running handler. kNotFound when no task with that id is pending
  // (unknown, or finished already).
  Status CancelTask(uint64_t task_id, bool terminate);
  // Pauses (the queue leases nothing; submissions are still taken) or
  // resumes a queue; durable across broker restarts. Returns whether that
  // changed anything (false: it already was so).
  Result<bool> PauseQueue(const std::string& queue, bool paused);

  // Follows the cluster live: subscribes with `filter` and calls on_event
  // for each event, in the broker's order, until `stop` returns true
  // (checked at least every 200 ms, so a signal flag works) or on_event
  // returns false; then unsubscribes and returns Ok. The subscription is
  // renewed in the background of this call; a broker that forgot it
  // (restarted) is subscribed to again, and on_forgotten, if set, is told
  // (events in between are lost). A refused subscription is its Status
  // (kInternal for permission denied, with the broker's reason).
  Status FollowEvents(const EventFilter& filter,
                      const std::function<bool(const ClusterEvent&)>& on_event,
                      const std::function<bool()>& stop,
                      const std::function<void()>& on_forgotten = {});

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tq
