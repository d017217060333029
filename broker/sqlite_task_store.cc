#include "broker/sqlite_task_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "broker/read_model.h"
#include "broker/sqlite_util.h"
#include "common/outcome.h"

namespace tq {
namespace {

using namespace sqlite;  // NOLINT: the helpers of sqlite_util.h

// Forward migrations: kMigrations[i] takes the schema from version i to i+1.
// Never edit a released step; append a new one and bump kSchemaVersion.
constexpr const char* kMigrations[] = {
    // 0 -> 1: initial schema.
    R"sql(
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value
);
CREATE TABLE tasks(
  id INTEGER PRIMARY KEY,
  batch_id TEXT NOT NULL,
  item_index INTEGER NOT NULL,
  queue TEXT NOT NULL,
  url TEXT NOT NULL,
  priority INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  time_limit_ms INTEGER NOT NULL,
  options_json TEXT NOT NULL DEFAULT '{}',
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_token INTEGER NOT NULL DEFAULT 0,
  worker TEXT,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  submitted_ms INTEGER NOT NULL,
  started_ms INTEGER,
  finished_ms INTEGER,
  finish_seq INTEGER,
  ok INTEGER,
  output BLOB,
  output_truncated INTEGER,
  error TEXT,
  exit_code INTEGER,
  stderr_tail TEXT,
  duration_ms INTEGER,
  UNIQUE(batch_id, item_index)
);
-- Start-up loads only the live tasks; finished ones may be millions.
CREATE INDEX tasks_pending ON tasks(id) WHERE state IN (0, 1, 2);
-- FetchResults cursors.
CREATE INDEX tasks_finished ON tasks(batch_id, finish_seq)
  WHERE finish_seq IS NOT NULL;
-- RetryDead by queue (by batch uses the UNIQUE index).
CREATE INDEX tasks_dead_by_queue ON tasks(queue) WHERE state = 4;
)sql",
    // 1 -> 2: files produced by tasks (content in files/ by sha256).
    R"sql(
CREATE TABLE task_files(
  task_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL
);
CREATE INDEX task_files_by_task ON task_files(task_id);
-- Whether a stored file is still referenced (retention sweep).
CREATE INDEX task_files_by_sha256 ON task_files(sha256);
-- Retention sweep: oldest results first.
CREATE INDEX tasks_by_finished_ms ON tasks(finished_ms)
  WHERE finish_seq IS NOT NULL;
)sql",
    // 2 -> 3: start-up counts finished tasks from this index alone (a
    // covering scan, no sort) instead of grouping the whole table. The
    // pending index says "state <= 2" (queued, leased, retry_wait): for
    // "IN (0, 1, 2)" SQLite built a temporary table on every write of a row.
    R"sql(
DROP INDEX tasks_pending;
CREATE INDEX tasks_pending ON tasks(id) WHERE state <= 2;
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks(batch_id, finish_seq, queue, state)
  WHERE finish_seq IS NOT NULL;
)sql",
    // 3 -> 4: worker health (#18). A done task's outcome (tq::Outcome) and
    // its attempts with their workers; per-worker accounting. The finished
    // index covers the outcome, so start-up counts stay one covering scan.
    R"sql(
ALTER TABLE tasks ADD COLUMN outcome INTEGER;
ALTER TABLE tasks ADD COLUMN outcome_reason TEXT;
ALTER TABLE tasks ADD COLUMN history TEXT;
CREATE TABLE workers(
  worker_id TEXT PRIMARY KEY,
  succeeded INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  retried INTEGER NOT NULL DEFAULT 0,
  timed_out INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_failure TEXT NOT NULL DEFAULT '',
  first_seen_ms INTEGER NOT NULL,
  session_start_ms INTEGER NOT NULL
);
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks(batch_id, finish_seq, queue, state,
  outcome) WHERE finish_seq IS NOT NULL;
)sql",
    // 4 -> 5: the web console's reads (broker/read_model.cc): one batch's
    // tasks in one state, in item order, by keyset, and per-batch counts,
    // from the index alone; done/dead per minute from the finished_ms index
    // alone (it gains the state; the retention sweep reads it as before).
    R"sql(
CREATE INDEX IF NOT EXISTS tasks_by_batch_state
  ON tasks(batch_id, state, item_index);
DROP INDEX IF EXISTS tasks_by_finished_ms;
CREATE INDEX tasks_by_finished_ms ON tasks(finished_ms, state)
  WHERE finish_seq IS NOT NULL;
)sql",
    // 5 -> 6: which CURVE key submitted each batch (docs/security.md): a
    // submit key may read and cancel only its own.
    R"sql(
CREATE TABLE batch_owners(
  batch_id TEXT PRIMARY KEY,
  key_name TEXT NOT NULL
) WITHOUT ROWID;
)sql",
    // 6 -> 7: paused queues (tq-ctl pause/resume): they lease nothing.
    R"sql(
CREATE TABLE paused_queues(
  queue TEXT PRIMARY KEY,
  paused_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 7 -> 8: the views of tq-ctl and the console (#19): when each batch was
    // created, in creation order (the rowid), so listing batches newest
    // first needs no scan of the tasks; when each worker was last seen, so
    // the ones that left are shown offline for an hour.
    R"sql(
ALTER TABLE workers ADD COLUMN last_seen_ms INTEGER NOT NULL DEFAULT 0;
CREATE TABLE batches(
  batch_id TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL
);
INSERT INTO batches(batch_id, created_ms)
  SELECT batch_id, MIN(submitted_ms) FROM tasks GROUP BY batch_id
  ORDER BY MIN(id);
)sql",
};
static_assert(std::size(kMigrations) == SqliteTaskStore::kSchemaVersion);

// Column lists shared by the statements and the row readers below.
#define TQ_PENDING_COLUMNS                                              \
  "id, batch_id, queue, priority, max_attempts, time_limit_ms, state, " \
  "attempts, lease_token, not_before_ms"
#define TQ_FINISHED_COLUMNS                                                \
  "id, batch_id, item_index, queue, url, state, attempts, ok, output, "    \
  "output_truncated, error, exit_code, stderr_tail, duration_ms, worker, " \
  "submitted_ms, finished_ms, finish_seq, outcome, outcome_reason, history"

constexpr const char* kStatementSql[] = {
    /* kBegin */ "BEGIN IMMEDIATE",
    /* kCommit */ "COMMIT",
    /* kRollback */ "ROLLBACK",
    /* kInsert */
    "INSERT OR IGNORE INTO tasks(batch_id, item_index, queue, url, priority, "
    "max_attempts, time_limit_ms, options_json, submitted_ms, state) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)",
    /* kMarkLeased */
    "UPDATE tasks SET state = 1, lease_token = ?2, attempts = ?3, worker = ?4, "
    "started_ms = ?5 WHERE id = ?1",
    /* kReadPayload */
    // Not UPDATE ... RETURNING: SQLite builds a temporary table for that on
    // every call, which cost more than this point read.
    "SELECT url, options_json FROM tasks WHERE id = ?1",
    /* kMarkWaiting */
    "UPDATE tasks SET state = ?2, attempts = ?3, not_before_ms = ?4, "
    "last_error = COALESCE(?5, last_error), finished_ms = NULL, finish_seq = "
    "NULL, ok = NULL, "
    "output = NULL, output_truncated = NULL, error = NULL, exit_code = NULL, "
    "stderr_tail = NULL, duration_ms = NULL, outcome = NULL, "
    "outcome_reason = NULL, history = NULL WHERE id = ?1",
    /* kMarkFinished */
    // An outcome without a worker (e.g. cancelled) keeps the last lessee.
    "UPDATE tasks SET state = ?2, attempts = ?3, finish_seq = ?4, ok = ?5, "
    "output = ?6, output_truncated = ?7, error = ?8, exit_code = ?9, "
    "stderr_tail = ?10, duration_ms = ?11, "
    "worker = COALESCE(NULLIF(?12, ''), worker), finished_ms = ?13, "
    "outcome = ?14, outcome_reason = ?15, history = ?16 WHERE id = ?1",
    /* kProbe */ "INSERT OR REPLACE INTO meta(key, value) VALUES('probe', ?1)",
    /* kLoadPending */
    "SELECT " TQ_PENDING_COLUMNS
    " FROM tasks INDEXED BY tasks_pending WHERE state <= 2 ORDER BY id",
    /* kLoadFinishedSummary */
    // Rows come grouped by batch; the caller sums them.
    "SELECT batch_id, queue, state, finish_seq, outcome FROM tasks "
    "INDEXED BY tasks_finished WHERE finish_seq IS NOT NULL",
    /* kReadFinished */
    "SELECT " TQ_FINISHED_COLUMNS
    " FROM tasks WHERE batch_id = ?1 AND finish_seq > ?2 "
    "ORDER BY finish_seq LIMIT ?3",
    /* kLoadDeadByBatch */
    "SELECT " TQ_PENDING_COLUMNS
    " FROM tasks WHERE batch_id = ?1 AND state = 4 ORDER BY id",
    /* kLoadDeadByQueue */
    "SELECT " TQ_PENDING_COLUMNS
    " FROM tasks WHERE queue = ?1 AND state = 4 ORDER BY id",
    /* kInsertTaskFile */
    "INSERT INTO task_files(task_id, name, sha256, size) "
    "VALUES(?1, ?2, ?3, ?4)",
    /* kDeleteTaskFiles */ "DELETE FROM task_files WHERE task_id = ?1",
    /* kReadTaskFiles */
    "SELECT name, sha256, size FROM task_files WHERE task_id = ?1 "
    "ORDER BY rowid",
    /* kDeleteFinishedTask */
    "DELETE FROM tasks WHERE id = ?1 AND finish_seq IS NOT NULL",
    /* kLoadExpired */
    "SELECT id, batch_id, queue, state, outcome FROM tasks "
    "WHERE finish_seq IS NOT NULL AND finished_ms < ?1 "
    "ORDER BY finished_ms LIMIT ?2",
    /* kResultFileerenced */
    "SELECT 1 FROM task_files WHERE sha256 = ?1 LIMIT 1",
    /* kSaveWorker */
    "INSERT OR REPLACE INTO workers(worker_id, succeeded, failed, retried, "
    "timed_out, consecutive_failures, last_failure, first_seen_ms, "
    "session_start_ms, last_seen_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    /* kLoadWorkers */
    "SELECT worker_id, succeeded, failed, retried, timed_out, "
    "consecutive_failures, last_failure, first_seen_ms, session_start_ms, "
    "last_seen_ms FROM workers",
    /* kSetBatchOwner */
    "INSERT OR IGNORE INTO batch_owners(batch_id, key_name) VALUES(?1, ?2)",
    /* kLoadBatchOwners */ "SELECT batch_id, key_name FROM batch_owners",
    /* kPauseQueue */
    "INSERT OR IGNORE INTO paused_queues(queue, paused_ms) VALUES(?1, ?2)",
    /* kResumeQueue */ "DELETE FROM paused_queues WHERE queue = ?1",
    /* kLoadPausedQueues */ "SELECT queue FROM paused_queues ORDER BY queue",
    /* kAddBatch */
    "INSERT OR IGNORE INTO batches(batch_id, created_ms) VALUES(?1, ?2)",
    /* kLoadBatches */
    "SELECT rowid, batch_id, created_ms FROM batches ORDER BY rowid",
};

#undef TQ_PENDING_COLUMNS
#undef TQ_FINISHED_COLUMNS

// Runs the missing migration steps in one transaction, so a crash leaves
// either the old schema or the new one.
Status Migrate(sqlite3* db) {
  Status s = Exec(db, "BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  // Read inside the write lock: another opener may have just migrated.
  Result<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) {
    Exec(db, "ROLLBACK");
    return version.status();
  }
  for (int64_t v = *version; v < SqliteTaskStore::kSchemaVersion; ++v) {
    s = Exec(db, kMigrations[v]);
    if (!s.ok()) {
      Exec(db, "ROLLBACK");
      return Status::IoError("schema migration " + std::to_string(v) + " -> " +
                             std::to_string(v + 1) + " failed: " + s.message());
    }
  }
  s = Exec(db, "PRAGMA user_version = " +
                   std::to_string(SqliteTaskStore::kSchemaVersion));
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) Exec(db, "ROLLBACK");
  return s;
}

}  // namespace

Result<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(
    const std::string& path, const SqliteOptions& options) {
  const std::string where = "cannot open database " + path + ": ";
  sqlite3* db = nullptr;
  // NOMUTEX: one thread owns the store.
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IoError(where + msg);
  }
  // From here the destructor closes db.
  std::unique_ptr<SqliteTaskStore> store(new SqliteTaskStore(db));
  {
    std::error_code ec;
    std::filesystem::path dir =
        std::filesystem::absolute(path, ec).parent_path();
    store->files_dir_ = (dir / "files").string();
  }
  sqlite3_busy_timeout(db, 5000);

  if (Status st = store->Configure(options); !st.ok()) {
    return Status::IoError(where + st.message());
  }
  if (Status st = CheckSchema(db); !st.ok()) {
    return st.code() == Status::Code::kCorruption
               ? Status::Corruption(where + st.message())
               : Status::IoError(where + st.message());
  }
  if (Status st = store->Prepare(); !st.ok()) {
    return Status::IoError(where + st.message());
  }
  if (options.reserve_bytes > 0) store->SetUpReserve(path, options);
  return store;
}

Status SqliteTaskStore::Configure(const SqliteOptions& options) {
  // One process owns the database: exclusive locking spares the fcntl()
  // lock calls of every transaction (and the shared-memory index).
  if (options.deferred_sync && options.exclusive_lock) {
    if (Status s = Exec(db_, "PRAGMA locking_mode = EXCLUSIVE"); !s.ok()) {
      return s;
    }
  }
  // The first statement reads the file header: a non-database fails here.
  Result<std::string> mode = QueryText(db_, "PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status();
  if (*mode != "wal") {
    return Status::IoError("cannot use WAL journal mode (got " + *mode + ")");
  }
  std::string pragmas = options.deferred_sync ? "PRAGMA synchronous = OFF;"
                        : options.synchronous_full
                            ? "PRAGMA synchronous = FULL;"
                            : "PRAGMA synchronous = NORMAL;";
  if (options.deferred_sync) {
    // Checkpoints only from Checkpoint(), which syncs before the WAL restarts.
    pragmas += "PRAGMA wal_autocheckpoint = 0;";
    deferred_sync_ = true;
    checkpoint_frames_ = options.checkpoint_frames;
  }
  if (options.journal_size_limit > 0) {
    pragmas += "PRAGMA journal_size_limit = " +
               std::to_string(options.journal_size_limit) + ";";
    // Automatic checkpoints come soon enough for the WAL to stay within the
    // limit (a frame is a page and a 24-byte header; half leaves room for
    // the transaction that crosses the threshold).
    const int64_t frames = options.journal_size_limit / (4096 + 24) / 2;
    if (!options.deferred_sync && frames < 1000) {
      pragmas += "PRAGMA wal_autocheckpoint = " +
                 std::to_string(std::max<int64_t>(1, frames)) + ";";
    }
  }
  if (options.max_page_count > 0) {
    pragmas +=
        "PRAGMA max_page_count = " + std::to_string(options.max_page_count) +
        ";";
  }
  if (Status s = Exec(db_, pragmas); !s.ok()) return s;
  if (options.deferred_sync) {
    // After the pragmas: wal_autocheckpoint installs a WAL hook of its own,
    // which would replace this one.
    sqlite3_wal_hook(
        db_,
        [](void* self, sqlite3*, const char*, int frames) {
          static_cast<SqliteTaskStore*>(self)->wal_frames_ = frames;
          return SQLITE_OK;
        },
        this);
  }

  return Status::Ok();
}

// The schema this broker knows, migrated forward if older; Corruption if it
// is newer.
Status SqliteTaskStore::CheckSchema(sqlite3* db) {
  Result<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return Status::Corruption("database schema version " +
                              std::to_string(*version) +
                              " is newer than this tq-broker supports (" +
                              std::to_string(kSchemaVersion) + ")");
  }
  if (*version < kSchemaVersion) {
    if (Status s = Migrate(db); !s.ok()) return s;
  }
  return Status::Ok();
}

void SqliteTaskStore::SetUpReserve(const std::string& path,
                                   const SqliteOptions& options) {
  reserve_path_ = path + "-reserve";
  reserve_bytes_ = options.reserve_bytes;
  // An old reserve is reused as it is; a missing one is made if it fits.
  struct stat st {};
  if (::stat(reserve_path_.c_str(), &st) == 0 &&
      st.st_size >= options.reserve_bytes) {
    reserve_present_ = true;
  } else if (!CreateReserve(/*keep_free=*/false)) {
    spdlog::warn("no room for the {}-byte reserve {}", options.reserve_bytes,
                 reserve_path_);
  }
}

SqliteTaskStore::SqliteTaskStore(sqlite3* db) : db_(db) {}

SqliteTaskStore::~SqliteTaskStore() {
  if (!sqlite3_get_autocommit(db_)) Exec(db_, "ROLLBACK");
  // Leave an empty WAL behind; the reserve pays for this on a full disk
  // (TruncateWal releases it when it fails for want of space).
  Status s = TruncateWal();
  if (!s.ok() && !reserve_present_) s = TruncateWal();
  if (!s.ok()) spdlog::warn("at close: {}", s.message());
  // The checkpoint SQLite runs at close must sync like any other.
  if (deferred_sync_) Exec(db_, "PRAGMA synchronous = FULL");
  for (sqlite3_stmt* stmt : stmts_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status SqliteTaskStore::Prepare() {
  static_assert(std::size(kStatementSql) == kStmtCount);
  for (int i = 0; i < kStmtCount; ++i) {
    if (sqlite3_prepare_v3(db_, kStatementSql[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &stmts_[i], nullptr) != SQLITE_OK) {
      return Status::Internal(std::string("preparing \"") + kStatementSql[i] +
                              "\": " + sqlite3_errmsg(db_));
    }
  }
  return Status::Ok();
}

Status SqliteTaskStore::FailWrite(const char* what) {
  NoteFailure();
  txn_error_ =
      Status::IoError(std::string(what) + " failed: " + sqlite3_errmsg(db_));
  return txn_error_;
}

Status SqliteTaskStore::ReadError(const char* what) const {
  return Status::IoError(std::string(what) + " failed: " + sqlite3_errmsg(db_));
}

Status SqliteTaskStore::BeginWrite() {
  if (!txn_error_.ok()) return txn_error_;
  if (!sqlite3_get_autocommit(db_)) return Status::Ok();
  sqlite3_stmt* stmt = stmts_[kBegin];
  ResetOnExit reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("begin");
  return Status::Ok();
}

void SqliteTaskStore::Rollback() {
  if (sqlite3_get_autocommit(db_)) return;  // none open, or SQLite did it
  sqlite3_stmt* stmt = stmts_[kRollback];
  ResetOnExit reset(stmt);
  sqlite3_step(stmt);
}

Status SqliteTaskStore::StepUpdate(sqlite3_stmt* stmt, const char* what,
                                   uint64_t id) {
  ResetOnExit reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite(what);
  if (sqlite3_changes(db_) == 0) {
    // Nothing was written, so the transaction stays usable.
    return Status::NotFound(std::string(what) + ": no task with id " +
                            std::to_string(id));
  }
  return Status::Ok();
}

Result<std::optional<uint64_t>> SqliteTaskStore::Insert(const NewTask& task) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kInsert];
  ResetOnExit reset(stmt);
  BindText(stmt, 1, task.batch_id);
  BindInt(stmt, 2, task.index);
  BindText(stmt, 3, task.queue);
  BindText(stmt, 4, task.url);
  BindInt(stmt, 5, task.priority);
  BindInt(stmt, 6, task.max_attempts);
  BindInt(stmt, 7, task.time_limit_ms);
  BindText(stmt, 8, task.options_json);
  BindInt(stmt, 9, task.submitted_ms);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("insert");
  if (sqlite3_changes(db_) == 0) return std::optional<uint64_t>();
  return std::optional<uint64_t>(
      static_cast<uint64_t>(sqlite3_last_insert_rowid(db_)));
}

Result<LeasePayload> SqliteTaskStore::MarkLeased(uint64_t id, uint64_t token,
                                                 uint32_t attempts,
                                                 const std::string& worker,
                                                 int64_t now_ms) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  {
    sqlite3_stmt* stmt = stmts_[kMarkLeased];
    BindInt(stmt, 1, static_cast<int64_t>(id));
    BindInt(stmt, 2, static_cast<int64_t>(token));
    BindInt(stmt, 3, attempts);
    BindText(stmt, 4, worker);
    BindInt(stmt, 5, now_ms);
    if (Status st = StepUpdate(stmt, "mark leased", id); !st.ok()) return st;
  }
  sqlite3_stmt* stmt = stmts_[kReadPayload];
  ResetOnExit reset(stmt);
  BindInt(stmt, 1, static_cast<int64_t>(id));
  if (sqlite3_step(stmt) != SQLITE_ROW) return ReadError("read task payload");
  LeasePayload payload;
  payload.url = ColumnText(stmt, 0);
  payload.options_json = ColumnText(stmt, 1);
  return payload;
}

Status SqliteTaskStore::MarkWaiting(uint64_t id, TaskState state,
                                    uint32_t attempts, int64_t not_before_ms,
                                    std::optional<std::string> last_error) {
  if (state != TaskState::kQueued && state != TaskState::kRetryWait) {
    return Status::InvalidArgument("mark waiting: state " +
                                   std::string(TaskStateName(state)) +
                                   " is not queued or retry_wait");
  }
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kMarkWaiting];
  BindInt(stmt, 1, static_cast<int64_t>(id));
  BindInt(stmt, 2, static_cast<int>(state));
  BindInt(stmt, 3, attempts);
  BindInt(stmt, 4, not_before_ms);
  if (last_error) {
    BindText(stmt, 5, *last_error);
  } else {
    sqlite3_bind_null(stmt, 5);  // keeps the stored one
  }
  if (Status st = StepUpdate(stmt, "mark waiting", id); !st.ok()) return st;
  return DeleteFileRefs(id);  // RetryDead: the dead result's files go
}

Status SqliteTaskStore::MarkFinished(
    uint64_t id, TaskState state, uint32_t attempts, uint64_t finish_seq,
    const AttemptResult& outcome, int64_t now_ms,
    const std::vector<AttemptRecord>& history) {
  if (!IsTerminal(state)) {
    return Status::InvalidArgument("mark finished: state " +
                                   std::string(TaskStateName(state)) +
                                   " is not terminal");
  }
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kMarkFinished];
  BindInt(stmt, 1, static_cast<int64_t>(id));
  BindInt(stmt, 2, static_cast<int>(state));
  BindInt(stmt, 3, attempts);
  BindInt(stmt, 4, static_cast<int64_t>(finish_seq));
  BindInt(stmt, 5, outcome.ok ? 1 : 0);
  BindBlob(stmt, 6, outcome.output);
  BindInt(stmt, 7, outcome.output_truncated ? 1 : 0);
  BindText(stmt, 8, outcome.error);
  BindInt(stmt, 9, outcome.exit_code);
  BindText(stmt, 10, outcome.stderr_tail);
  BindInt(stmt, 11, outcome.duration_ms);
  BindText(stmt, 12, outcome.worker);
  BindInt(stmt, 13, now_ms);
  if (auto o = ParseOutcome(outcome.outcome); o && state == TaskState::kDone) {
    BindInt(stmt, 14, int(*o));
  } else {
    sqlite3_bind_null(stmt, 14);
  }
  BindText(stmt, 15, outcome.outcome_reason);
  // Bound without a copy: it must live until the step.
  const std::string history_json = history.empty() ? "" : HistoryJson(history);
  if (history.empty()) {
    sqlite3_bind_null(stmt, 16);
  } else {
    BindText(stmt, 16, history_json);
  }
  if (Status st = StepUpdate(stmt, "mark finished", id); !st.ok()) return st;
  // Only a finished task has references, and none finishes twice without a
  // MarkWaiting (which deletes them) in between: nothing to replace.
  return AddFileRefs(id, outcome.files);
}

Status SqliteTaskStore::SaveWorker(const WorkerRecord& w) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kSaveWorker];
  ResetOnExit reset(stmt);
  BindText(stmt, 1, w.worker_id);
  BindInt(stmt, 2, static_cast<int64_t>(w.succeeded));
  BindInt(stmt, 3, static_cast<int64_t>(w.failed));
  BindInt(stmt, 4, static_cast<int64_t>(w.retried));
  BindInt(stmt, 5, static_cast<int64_t>(w.timed_out));
  BindInt(stmt, 6, static_cast<int64_t>(w.consecutive_failures));
  BindText(stmt, 7, w.last_failure);
  BindInt(stmt, 8, w.first_seen_ms);
  BindInt(stmt, 9, w.session_start_ms);
  BindInt(stmt, 10, w.last_seen_ms);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("save worker");
  return Status::Ok();
}

Result<std::vector<WorkerRecord>> SqliteTaskStore::LoadWorkers() {
  sqlite3_stmt* stmt = stmts_[kLoadWorkers];
  ResetOnExit reset(stmt);
  std::vector<WorkerRecord> workers;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    WorkerRecord& w = workers.emplace_back();
    w.worker_id = ColumnText(stmt, 0);
    w.succeeded = static_cast<uint64_t>(ColumnInt(stmt, 1));
    w.failed = static_cast<uint64_t>(ColumnInt(stmt, 2));
    w.retried = static_cast<uint64_t>(ColumnInt(stmt, 3));
    w.timed_out = static_cast<uint64_t>(ColumnInt(stmt, 4));
    w.consecutive_failures = static_cast<uint64_t>(ColumnInt(stmt, 5));
    w.last_failure = ColumnText(stmt, 6);
    w.first_seen_ms = ColumnInt(stmt, 7);
    w.session_start_ms = ColumnInt(stmt, 8);
    w.last_seen_ms = ColumnInt(stmt, 9);
  }
  if (rc != SQLITE_DONE) return ReadError("load workers");
  return workers;
}

Status SqliteTaskStore::Commit() {
  if (!txn_error_.ok()) {
    Rollback();
    Status s = Status::IoError("commit failed: " + txn_error_.message());
    txn_error_ = Status::Ok();
    return s;
  }
  if (sqlite3_get_autocommit(db_)) return Status::Ok();
  sqlite3_stmt* stmt = stmts_[kCommit];
  ResetOnExit reset(stmt);
  const auto started = std::chrono::steady_clock::now();
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    Status s =
        Status::IoError(std::string("commit failed: ") + sqlite3_errmsg(db_));
    NoteFailure();
    Rollback();
    return s;
  }
  commit_latency_.Record(std::chrono::steady_clock::now() - started);
  ++commit_count_;
  wal_dirty_ = true;
  if (deferred_sync_ && wal_frames_ >= checkpoint_frames_) {
    // The commit itself stands; a failed checkpoint leaves the WAL as it is
    // (still durable once synced) and is tried again after the next commit.
    if (Status c = Checkpoint(); !c.ok()) spdlog::warn("{}", c.message());
  }
  return Status::Ok();
}

Status SqliteTaskStore::Checkpoint() {
  Status s = Exec(db_,
                  "PRAGMA synchronous = FULL;"
                  "PRAGMA wal_checkpoint(RESTART);"
                  "PRAGMA synchronous = OFF;");
  if (!s.ok()) {
    NoteFailure();
    return Status::IoError("checkpoint failed: " + s.message());
  }
  wal_frames_ = 0;
  return Status::Ok();
}

Status SqliteTaskStore::TruncateWal() {
  if (!sqlite3_get_autocommit(db_)) {
    return Status::Internal("checkpoint with a transaction open");
  }
  if (deferred_sync_) Exec(db_, "PRAGMA synchronous = FULL");
  sqlite3_stmt* stmt = nullptr;
  Status s;
  if (sqlite3_prepare_v2(db_, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    s = Status::IoError(std::string("checkpoint failed: ") +
                        sqlite3_errmsg(db_));
  } else {
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      s = Status::IoError(std::string("checkpoint failed: ") +
                          sqlite3_errmsg(db_));
      NoteFailure();
    } else if (rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) != 0) {
      s = Status::IoError("checkpoint failed: database busy");
    }
  }
  sqlite3_finalize(stmt);
  if (deferred_sync_) Exec(db_, "PRAGMA synchronous = OFF");
  if (!s.ok()) return s;
  wal_frames_ = 0;
  wal_dirty_ = false;
  return Status::Ok();
}

Status SqliteTaskStore::CheckpointIfIdle() {
  if (!wal_dirty_ || HasUncommitted()) return Status::Ok();
  return TruncateWal();
}

void SqliteTaskStore::NoteFailure() {
  const bool full = (sqlite3_errcode(db_) & 0xff) == SQLITE_FULL ||
                    sqlite3_system_errno(db_) == ENOSPC;
  if (full) ReleaseReserve();
}

void SqliteTaskStore::ReleaseReserve() {
  if (!reserve_present_) return;
  if (::unlink(reserve_path_.c_str()) == 0 || errno == ENOENT) {
    reserve_present_ = false;
    spdlog::warn("disk full: released the {}-byte reserve {}", reserve_bytes_,
                 reserve_path_);
  }
}

bool SqliteTaskStore::CreateReserve(bool keep_free) {
  if (reserve_bytes_ <= 0 || reserve_present_) return true;
  if (keep_free) {
    const std::string dir =
        std::filesystem::path(reserve_path_).parent_path().string();
    struct statvfs vfs {};
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &vfs) == 0 &&
        static_cast<int64_t>(vfs.f_bavail) *
                static_cast<int64_t>(vfs.f_frsize) <
            2 * reserve_bytes_) {
      return false;
    }
  }
  const int fd =
      ::open(reserve_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // Blocks really allocated, not a sparse file.
  const int rc = ::posix_fallocate(fd, 0, reserve_bytes_);
  ::close(fd);
  if (rc != 0) {
    ::unlink(reserve_path_.c_str());
    return false;
  }
  reserve_present_ = true;
  return true;
}

std::string SqliteTaskStore::wal_path() const {
  return std::string(sqlite3_db_filename(db_, "main")) + "-wal";
}

bool SqliteTaskStore::HasUncommitted() const {
  return !sqlite3_get_autocommit(db_) || !txn_error_.ok();
}

void SqliteTaskStore::Abort() {
  Rollback();
  txn_error_ = Status::Ok();
}

Status SqliteTaskStore::Probe() {
  if (!sqlite3_get_autocommit(db_) || !txn_error_.ok()) {
    return Status::Internal("probe called with a transaction open");
  }
  auto fail = [this]() {
    Status s =
        Status::IoError(std::string("probe failed: ") + sqlite3_errmsg(db_));
    NoteFailure();
    Rollback();
    return s;
  };
  if (!reserve_present_ && reserve_bytes_ > 0) {
    // Writable again only once the reserve fits with room to spare: else the
    // first writes would fill the disk again at once.
    if (Status t = TruncateWal(); !t.ok()) {
      spdlog::debug("probe: {}", t.message());
    }
    if (!CreateReserve(/*keep_free=*/true)) {
      return Status::IoError("probe failed: disk full (no room for the " +
                             std::to_string(reserve_bytes_) + "-byte reserve " +
                             reserve_path_ + " and as " + "much again)");
    }
  }
  {
    ResetOnExit reset(stmts_[kBegin]);
    if (sqlite3_step(stmts_[kBegin]) != SQLITE_DONE) return fail();
  }
  {
    sqlite3_stmt* stmt = stmts_[kProbe];
    ResetOnExit reset(stmt);
    BindInt(stmt, 1,
            std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count());
    if (sqlite3_step(stmt) != SQLITE_DONE) return fail();
  }
  ResetOnExit reset(stmts_[kCommit]);
  if (sqlite3_step(stmts_[kCommit]) != SQLITE_DONE) return fail();
  wal_dirty_ = true;
  return Status::Ok();
}

Status SqliteTaskStore::ReadPendingRows(
    sqlite3_stmt* stmt, const char* what,
    const std::function<void(const PendingTask&)>& each) {
  ResetOnExit reset(stmt);
  PendingTask t;  // reused: its strings keep their capacity across rows
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    t.id = static_cast<uint64_t>(ColumnInt(stmt, 0));
    AssignText(stmt, 1, &t.batch_id);
    AssignText(stmt, 2, &t.queue);
    t.priority = static_cast<int32_t>(ColumnInt(stmt, 3));
    t.max_attempts = static_cast<uint32_t>(ColumnInt(stmt, 4));
    t.time_limit_ms = static_cast<uint32_t>(ColumnInt(stmt, 5));
    t.state = static_cast<TaskState>(ColumnInt(stmt, 6));
    t.attempts = static_cast<uint32_t>(ColumnInt(stmt, 7));
    t.token = static_cast<uint64_t>(ColumnInt(stmt, 8));
    t.not_before_ms = ColumnInt(stmt, 9);
    each(t);
  }
  if (rc != SQLITE_DONE) return ReadError(what);
  return Status::Ok();
}

Status SqliteTaskStore::LoadPending(
    const std::function<void(const PendingTask&)>& each) {
  return ReadPendingRows(stmts_[kLoadPending], "load pending", each);
}

Result<std::vector<PendingTask>> SqliteTaskStore::LoadDead(
    const std::string& batch_id, const std::string& queue) {
  sqlite3_stmt* stmt =
      batch_id.empty() ? stmts_[kLoadDeadByQueue] : stmts_[kLoadDeadByBatch];
  BindText(stmt, 1, batch_id.empty() ? queue : batch_id);
  std::vector<PendingTask> dead;
  Status st = ReadPendingRows(stmt, "load dead",
                              [&](const PendingTask& t) { dead.push_back(t); });
  if (!st.ok()) return st;
  return dead;
}

Status SqliteTaskStore::SetBatchOwner(const std::string& batch_id,
                                      const std::string& key_name) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kSetBatchOwner];
  ResetOnExit reset(stmt);
  BindText(stmt, 1, batch_id);
  BindText(stmt, 2, key_name);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("set batch owner");
  return Status::Ok();
}

Status SqliteTaskStore::AddBatch(const std::string& batch_id,
                                 int64_t created_ms) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kAddBatch];
  ResetOnExit reset(stmt);
  BindText(stmt, 1, batch_id);
  BindInt(stmt, 2, created_ms);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("add batch");
  return Status::Ok();
}

Status SqliteTaskStore::LoadBatches(
    const std::function<void(const std::string&, uint64_t, int64_t)>& each) {
  sqlite3_stmt* stmt = stmts_[kLoadBatches];
  ResetOnExit reset(stmt);
  std::string batch;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    AssignText(stmt, 1, &batch);
    each(batch, uint64_t(ColumnInt(stmt, 0)), ColumnInt(stmt, 2));
  }
  if (rc != SQLITE_DONE) return ReadError("load batches");
  return Status::Ok();
}

Result<TaskDetail> SqliteTaskStore::ReadTask(uint64_t id) {
  // The console's query (broker/read_model.cc) on the broker's connection:
  // one row by primary key, its files and history.
  return tq::ReadTask(db_, id);
}

Status SqliteTaskStore::LoadBatchOwners(
    const std::function<void(const std::string&, const std::string&)>& each) {
  sqlite3_stmt* stmt = stmts_[kLoadBatchOwners];
  ResetOnExit reset(stmt);
  std::string batch, key;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    AssignText(stmt, 0, &batch);
    AssignText(stmt, 1, &key);
    each(batch, key);
  }
  if (rc != SQLITE_DONE) return ReadError("load batch owners");
  return Status::Ok();
}

Status SqliteTaskStore::SetQueuePaused(const std::string& queue, bool paused,
                                       int64_t now_ms) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[paused ? kPauseQueue : kResumeQueue];
  ResetOnExit reset(stmt);
  BindText(stmt, 1, queue);
  if (paused) sqlite3_bind_int64(stmt, 2, now_ms);
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("pause queue");
  return Status::Ok();
}

Status SqliteTaskStore::LoadPausedQueues(
    const std::function<void(const std::string&)>& each) {
  sqlite3_stmt* stmt = stmts_[kLoadPausedQueues];
  ResetOnExit reset(stmt);
  std::string queue;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    AssignText(stmt, 0, &queue);
    each(queue);
  }
  if (rc != SQLITE_DONE) return ReadError("load paused queues");
  return Status::Ok();
}

Result<FinishedSummary> SqliteTaskStore::LoadFinishedSummary() {
  sqlite3_stmt* stmt = stmts_[kLoadFinishedSummary];
  ResetOnExit reset(stmt);
  FinishedSummary summary;
  // (batch, queue, state) -> index in summary.counts; rows of one batch come
  // together, so the map only ever holds one batch's keys.
  std::map<std::pair<std::string, int>, size_t> in_batch;
  std::string batch, queue;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    AssignText(stmt, 0, &batch);
    AssignText(stmt, 1, &queue);
    const auto state = static_cast<TaskState>(ColumnInt(stmt, 2));
    summary.max_finish_seq = std::max(
        summary.max_finish_seq, static_cast<uint64_t>(ColumnInt(stmt, 3)));
    const int outcome = sqlite3_column_type(stmt, 4) == SQLITE_NULL
                            ? -1
                            : static_cast<int>(ColumnInt(stmt, 4));
    if (summary.counts.empty() || summary.counts.back().batch_id != batch) {
      in_batch.clear();
    }
    auto [it, added] = in_batch.try_emplace(
        {queue, int(state) * 16 + outcome + 1}, summary.counts.size());
    if (added) summary.counts.push_back({batch, queue, state, 0, outcome});
    ++summary.counts[it->second].count;
  }
  if (rc != SQLITE_DONE) return ReadError("load finished counts");
  return summary;
}

Result<std::vector<TaskResult>> SqliteTaskStore::ReadFinished(
    const std::string& batch_id, uint64_t after, uint32_t limit) {
  sqlite3_stmt* stmt = stmts_[kReadFinished];
  ResetOnExit reset(stmt);
  BindText(stmt, 1, batch_id);
  BindInt(stmt, 2, static_cast<int64_t>(after));
  BindInt(stmt, 3, limit);
  std::vector<TaskResult> tasks;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    TaskResult& t = tasks.emplace_back();
    t.task_id = static_cast<uint64_t>(ColumnInt(stmt, 0));
    t.batch_id = ColumnText(stmt, 1);
    t.index = static_cast<uint32_t>(ColumnInt(stmt, 2));
    t.queue = ColumnText(stmt, 3);
    t.url = ColumnText(stmt, 4);
    t.state = TaskStateName(static_cast<TaskState>(ColumnInt(stmt, 5)));
    t.attempts = static_cast<uint32_t>(ColumnInt(stmt, 6));
    t.ok = ColumnInt(stmt, 7) != 0;
    t.output = ColumnBlob(stmt, 8);
    t.output_truncated = ColumnInt(stmt, 9) != 0;
    t.error = ColumnText(stmt, 10);
    t.exit_code = static_cast<int32_t>(ColumnInt(stmt, 11));
    t.stderr_tail = ColumnText(stmt, 12);
    t.duration_ms = static_cast<uint32_t>(ColumnInt(stmt, 13));
    t.worker = ColumnText(stmt, 14);
    t.submitted_ms = ColumnInt(stmt, 15);
    t.finished_ms = ColumnInt(stmt, 16);
    t.finish_seq = static_cast<uint64_t>(ColumnInt(stmt, 17));
    if (sqlite3_column_type(stmt, 18) != SQLITE_NULL) {
      const auto o = ColumnInt(stmt, 18);
      if (o >= 0 && o < kOutcomeCount) {
        t.outcome = std::string(OutcomeName(Outcome(o)));
      }
    }
    t.outcome_reason = ColumnText(stmt, 19);
    t.history = HistoryFromJson(ColumnText(stmt, 20));
  }
  if (rc != SQLITE_DONE) return ReadError("read finished");
  for (TaskResult& t : tasks) {
    Result<std::vector<ResultFile>> files = ReadFileRefs(t.task_id);
    if (!files.ok()) return files.status();
    t.files = std::move(*files);
  }
  return tasks;
}

}  // namespace tq
