// Read-only queries over the broker's SQLite database, for the web console
// and tq-ctl: overview counts, the per-minute chart, batches, one batch's
// tasks (filtered, keyset-paginated) and one task with its result and files.
//
// Every function takes a connection opened by OpenReadOnlyDb (or any
// connection: they only read). In WAL mode a reader never blocks the broker's
// writer, and sees the last committed state. Not thread-safe per connection:
// one thread at a time uses a ReadOnlyDb.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/task_detail.h"
#include "common/status.h"
#include "common/task_state.h"
#include "tq/task_result.h"

namespace tq {

// A read-only connection; closed when it goes away.
class ReadOnlyDb {
 public:
  // SQLITE_OPEN_READONLY on an existing database; IoError naming the path.
  static Result<std::unique_ptr<ReadOnlyDb>> Open(const std::string& path);
  ~ReadOnlyDb();
  ReadOnlyDb(const ReadOnlyDb&) = delete;
  ReadOnlyDb& operator=(const ReadOnlyDb&) = delete;
  sqlite3* get() const { return db_; }

 private:
  explicit ReadOnlyDb(sqlite3* db) : db_(db) {}
  sqlite3* const db_;
};

// Tasks per state, indexed by TaskState.
struct StateCounts {
  std::array<uint64_t, 6> by_state{};
  uint64_t total() const;
  uint64_t finished() const;  // done + dead + cancelled
  uint64_t& operator[](TaskState s) { return by_state[size_t(s)]; }
  uint64_t operator[](TaskState s) const { return by_state[size_t(s)]; }
};

struct QueueCounts {
  std::string queue;
  StateCounts counts;
};

// Every queue with tasks, by name. Scans the whole table (the broker's own
// in-memory counts, Client::Queues, are cheaper when the broker is up).
Result<std::vector<QueueCounts>> CountByQueue(sqlite3* db);

struct MinuteCount {
  int64_t minute_ms = 0;  // start of the minute, wall clock
  uint64_t done = 0;
  uint64_t failed = 0;  // dead: every attempt failed
};

// One entry per minute, oldest first, for the `minutes` minutes up to the one
// holding now_ms (minutes with nothing finished are zero). Reads only the
// tasks finished in that window (index on finished_ms).
Result<std::vector<MinuteCount>> FinishedPerMinute(sqlite3* db, int64_t now_ms,
                                                   int minutes = 60);

struct BatchSummary {
  std::string batch_id;
  StateCounts counts;
  uint64_t first_task_id = 0;  // submission order: newest batches first
  int64_t submitted_ms = 0;
};

struct BatchListPage {
  std::vector<BatchSummary> batches;
  // Pass as `before` for the next (older) page; 0 when this is the last.
  uint64_t next_before = 0;
};

// Batches newest first (by their first task id), those whose first task id
// is below `before` (0: from the newest), at most `limit`. Counting is one
// pass over the (batch_id, state) index, no table reads.
Result<BatchListPage> ListBatches(sqlite3* db, uint64_t before = 0,
                                  uint32_t limit = 50);

// One batch's counts (all zero for an unknown batch).
Result<StateCounts> CountBatch(sqlite3* db, const std::string& batch_id);

struct TaskFilter {
  std::string batch_id;            // required
  std::optional<TaskState> state;  // only this state
  std::string queue;               // only this queue ("" any)
  std::string url_contains;        // case-insensitive (ASCII) substring
  int64_t after_index = -1;        // keyset: item_index > after_index
  uint32_t limit = 50;             // capped at 1000
};

struct TaskPage {
  std::vector<TaskRow> tasks;
  // Pass as after_index for the next page; -1 when this is the last.
  int64_t next_after = -1;
};

// A page of the batch's tasks in item order. Keyset pagination (item_index >
// after, LIMIT n) over the (batch_id, item_index) or (batch_id, state,
// item_index) index, so a page costs the same at the start and the end of a
// 1,000,000-task batch. A URL search reads rows until it has a page (or
// reaches the end of the batch).
Result<TaskPage> ListTasks(sqlite3* db, const TaskFilter& filter);

// NotFound for an unknown id. The broker answers TaskRequest (tq-ctl task)
// with this same read on its own connection (TaskStore::ReadTask).
Result<TaskDetail> ReadTask(sqlite3* db, uint64_t task_id);

// The tasks.history column (a JSON array of ended attempts) and back.
std::string HistoryJson(const std::vector<AttemptRecord>& history);
std::vector<AttemptRecord> HistoryFromJson(const std::string& text);

// Finished tasks of a batch whose finish_seq is above `after_seq`, in finish
// order (the order of tq-submit --wait), at most `limit`, with their files'
// metadata (no content). The last one's finish_seq is the next cursor.
Result<std::vector<TaskResult>> ReadResults(sqlite3* db,
                                            const std::string& batch_id,
                                            uint64_t after_seq, uint32_t limit);

// "queued" -> kQueued, ...; nullopt for anything else.
std::optional<TaskState> ParseTaskState(std::string_view name);

}  // namespace tq
