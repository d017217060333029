// This is a public header file: the one model of a task's result, shared by
// the worker (what a handler reported), the broker and its store (what is
// kept), and the client (what comes back). common/result_wire.h converts it
// to and from the wire, in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tq {

// A file a task produced (what an --exec tool wrote into its {outdir}).
struct ResultFile {
  std::string name;    // relative path as the worker found it; not sanitised
  std::string sha256;  // lower-case hex; the broker recomputes it
  uint64_t size = 0;
  // The bytes: set by the worker, and by the client only when fetched
  // with_files. The broker stores them apart, once per digest.
  std::string content;
};

// What one attempt of a task produced.
struct AttemptResult {
  bool ok = false;     // false: this attempt failed (it may be retried)
  std::string output;  // the handler's stdout, size-capped
  bool output_truncated = false;
  std::string error;        // why the attempt failed; empty when ok
  int32_t exit_code = 0;    // -1 when killed by a signal or the time limit
  std::string stderr_tail;  // valid UTF-8, size-capped
  uint32_t duration_ms = 0;
  std::string worker;  // the worker id; set by the broker
  std::vector<ResultFile> files;
  // For an attempt that ran (ok): whether the analysis reached its target.
  // "ok", "unreachable" (DNS, refused, reset, TLS), "http_error" (status
  // >= 400 on the main page) or "timeout"; "" when not known (a failed
  // attempt, or an older worker: the broker then takes "ok").
  std::string outcome;
  std::string outcome_reason;  // e.g. "connect: Connection refused"
};

// One ended attempt of a task, as the task's history lists it.
struct AttemptRecord {
  uint32_t attempt = 0;  // 1 for the first
  std::string worker;
  bool ok = false;
  std::string outcome;     // as AttemptResult::outcome
  std::string error;       // why it failed, or why its lease ended
  int64_t started_ms = 0;  // wall clock, when it was leased; 0: unknown
  int64_t ended_ms = 0;    // wall clock, when it ended; 0: unknown
};

// A finished task with the result of its last attempt.
struct TaskResult : AttemptResult {
  uint64_t task_id = 0;
  std::string batch_id;
  uint32_t index = 0;
  std::string url;
  std::string queue;
  std::string state;  // "done", "dead" or "cancelled"
  uint32_t attempts = 0;
  int64_t submitted_ms = 0;  // wall clock, ms since the epoch
  int64_t finished_ms = 0;
  uint64_t finish_seq = 0;  // the results cursor at this task
  // Every attempt that ended, oldest first, each with its worker (the last
  // one is the result above). Attempts of a task that was pending across a
  // broker restart are listed from the restart on.
  std::vector<AttemptRecord> history;
};

// The broker's counters, as `tq-ctl queues` shows them.
// A latency histogram: counts per bucket (not cumulative), the last one
// above every bound.
struct LatencyBuckets {
  std::vector<double> upper_bounds_s;
  std::vector<uint64_t> counts;  // upper_bounds_s.size() + 1
  double sum_s = 0;
  uint64_t count = 0;
};

struct BrokerStats {
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bad_messages = 0;
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t redeliveries = 0;
  bool store_ok = true;
  std::string store_error;  // why the store refuses writes, if it does
  // Since the broker started, counted when their commit succeeded.
  uint64_t tasks_submitted = 0;
  uint64_t tasks_done = 0;
  uint64_t attempts_failed = 0;  // failed attempts, retried or not
  uint64_t tasks_dead = 0;
  uint64_t tasks_cancelled = 0;
  uint64_t permission_denied = 0;
  uint64_t rate_limited = 0;
  LatencyBuckets commit_latency;  // the store's COMMIT (with fsync when
                                  // --synchronous normal/full)
  LatencyBuckets sync_latency;    // the WAL syncer's fdatasync, if it runs
};

}  // namespace tq
