// TaskStore on one SQLite database file (WAL mode, group commit).
//
// Not thread-safe: one thread owns the store (the broker loop), so the
// connection is opened without SQLite's own mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/task_store.h"
#include "common/latency_histogram.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tq {

struct SqliteOptions {
  // true: PRAGMA synchronous=FULL (a commit survives power loss);
  // false: NORMAL (survives a process crash only).
  bool synchronous_full = true;
  // 0: unlimited. >0 caps the database at that many pages, so that SQLite
  // reports "database or disk is full" past it: tests simulate a full disk.
  int64_t max_page_count = 0;
  // true: commits only write the WAL (synchronous=OFF, no automatic
  // checkpoints); the caller makes them durable by fdatasync-ing wal_path()
  // (see WalSyncer) before it acknowledges anything. Checkpoints run inside
  // Commit() with full syncing, so the WAL is never reset before the
  // database file holds its contents durably.
  bool deferred_sync = false;
  // With deferred_sync the store takes the file's lock for good (no fcntl()
  // per transaction); false leaves it shared, so that other connections can
  // read (the web console's read-only ones).
  bool exclusive_lock = true;
  // With deferred_sync: the WAL is checkpointed and restarted once it holds
  // this many frames (4,000: about 16 MB).
  int checkpoint_frames = 4000;
  // PRAGMA journal_size_limit: what is kept of the WAL file when a checkpoint
  // resets it (a big transaction must not leave a big file behind).
  int64_t journal_size_limit = 16 << 20;
  // Bytes preallocated in reserve_path() beside the database. On "disk full"
  // the store deletes the file, so that rolling back, the checkpoint that
  // shrinks the WAL, and the one at close have room; Probe() only succeeds
  // once it could allocate the reserve again with as much room left over.
  // 0: no reserve.
  int64_t reserve_bytes = 16 << 20;
};

class SqliteTaskStore final : public TaskStore {
 public:
  // The schema version this code writes; older databases are migrated at
  // Open, newer ones refused.
  static constexpr int kSchemaVersion = 8;

  // Opens or creates the database at `path` and migrates it to
  // kSchemaVersion. Fails with IoError naming the path if the file cannot be
  // opened or is not a database, and with Corruption if its schema is newer.
  static Result<std::unique_ptr<SqliteTaskStore>> Open(
      const std::string& path, const SqliteOptions& options = {});

  // Rolls back any uncommitted writes, then checkpoints and truncates the WAL
  // (releasing the reserve if the disk is too full for that).
  ~SqliteTaskStore() override;
  SqliteTaskStore(const SqliteTaskStore&) = delete;
  SqliteTaskStore& operator=(const SqliteTaskStore&) = delete;

  Result<std::optional<uint64_t>> Insert(const NewTask& task) override;
  Result<LeasePayload> MarkLeased(uint64_t id, uint64_t token,
                                  uint32_t attempts, const std::string& worker,
                                  int64_t now_ms) override;
  Status MarkWaiting(uint64_t id, TaskState state, uint32_t attempts,
                     int64_t not_before_ms,
                     std::optional<std::string> last_error) override;
  Status SaveWorker(const WorkerRecord& worker) override;
  Result<std::vector<WorkerRecord>> LoadWorkers() override;
  Status MarkFinished(uint64_t id, TaskState state, uint32_t attempts,
                      uint64_t finish_seq, const AttemptResult& outcome,
                      int64_t now_ms,
                      const std::vector<AttemptRecord>& history = {}) override;

  Status SetBatchOwner(const std::string& batch_id,
                       const std::string& key_name) override;
  Status LoadBatchOwners(
      const std::function<void(const std::string&, const std::string&)>& each)
      override;
  Status AddBatch(const std::string& batch_id, int64_t created_ms) override;
  Status LoadBatches(const std::function<void(const std::string&, uint64_t,
                                              int64_t)>& each) override;
  Result<TaskDetail> ReadTask(uint64_t id) override;

  Status SetQueuePaused(const std::string& queue, bool paused,
                        int64_t now_ms) override;
  Status LoadPausedQueues(
      const std::function<void(const std::string&)>& each) override;

  Result<std::vector<std::string>> DeleteFinished(
      const std::vector<uint64_t>& ids) override;
  Status PutFile(const std::string& sha256, std::string_view content) override;
  Result<std::string> GetFile(const std::string& sha256) override;
  Result<uint64_t> RemoveUnreferencedFiles(
      const std::vector<std::string>& sha256s) override;
  // Where PutFile stores content: files/ beside the database file.
  const std::string& files_dir() const { return files_dir_; }

  Status Commit() override;
  void Abort() override;
  bool HasUncommitted() const override;
  Status Probe() override;

  // Path of the write-ahead log, for WalSyncer.
  std::string wal_path() const;

  // Call when the loop has had no work: if anything was committed since the
  // last call and no transaction is open, copies the WAL into the database
  // (with full syncing) and truncates it to zero bytes. Cheap when there is
  // nothing to do. A failure changes nothing committed; the next call tries
  // again.
  Status CheckpointIfIdle();
  // The reserve file, and whether it is allocated now.
  const std::string& reserve_path() const { return reserve_path_; }
  bool reserve_present() const { return reserve_present_; }
  // Number of successful commits so far (commit numbers for WalSyncer).
  uint64_t commit_count() const { return commit_count_; }
  // Every successful COMMIT's duration (read from other threads).
  const LatencyHistogram& commit_latency() const { return commit_latency_; }

  Status LoadPending(
      const std::function<void(const PendingTask&)>& each) override;
  Result<FinishedSummary> LoadFinishedSummary() override;
  Result<std::vector<TaskResult>> ReadFinished(const std::string& batch_id,
                                               uint64_t after,
                                               uint32_t limit) override;
  Result<std::vector<PendingTask>> LoadDead(const std::string& batch_id,
                                            const std::string& queue) override;
  Result<std::vector<ExpiredTask>> LoadExpired(int64_t finished_before_ms,
                                               uint32_t limit) override;

 private:
  // The steps of Open(): pragmas and WAL hook, schema check and migration,
  // the disk reserve.
  Status Configure(const SqliteOptions& options);
  static Status CheckSchema(sqlite3* db);
  void SetUpReserve(const std::string& path, const SqliteOptions& options);

  // Prepared once at Open, reset after each use.
  enum Stmt {
    kBegin,
    kCommit,
    kRollback,
    kInsert,
    kMarkLeased,
    kReadPayload,
    kMarkWaiting,
    kMarkFinished,
    kProbe,
    kLoadPending,
    kLoadFinishedSummary,
    kReadFinished,
    kLoadDeadByBatch,
    kLoadDeadByQueue,
    kInsertTaskFile,
    kDeleteTaskFiles,
    kReadTaskFiles,
    kDeleteFinishedTask,
    kLoadExpired,
    kResultFileerenced,
    kSaveWorker,
    kLoadWorkers,
    kSetBatchOwner,
    kLoadBatchOwners,
    kPauseQueue,
    kResumeQueue,
    kLoadPausedQueues,
    kAddBatch,
    kLoadBatches,
    kStmtCount,
  };

  explicit SqliteTaskStore(sqlite3* db);

  Status Prepare();
  // Begins a transaction if none is open; fails if an earlier write of this
  // transaction failed.
  Status BeginWrite();
  // Steps an UPDATE of one task row; NotFound if no row has that id.
  Status StepUpdate(sqlite3_stmt* stmt, const char* what, uint64_t id);
  // Records a failed write: the transaction can only be rolled back now.
  Status FailWrite(const char* what);
  Status ReadError(const char* what) const;
  void Rollback();
  Status ReadPendingRows(sqlite3_stmt* stmt, const char* what,
                         const std::function<void(const PendingTask&)>& each);

  // File references of a task (join the transaction).
  Status DeleteFileRefs(uint64_t id);
  Status AddFileRefs(uint64_t id, const std::vector<ResultFile>& files);
  Result<std::vector<ResultFile>> ReadFileRefs(uint64_t id);
  std::string FilePath(const std::string& sha256) const;

  // Copies the WAL into the database with full syncing, then restarts it.
  Status Checkpoint();
  // Same, then truncates the WAL file to zero bytes.
  Status TruncateWal();
  // After a failed SQLite call: if it failed for want of space, lets go of
  // the reserve so that recovery has room.
  void NoteFailure();
  void ReleaseReserve();
  // Allocates the reserve; with `keep_free`, only if as much room again is
  // left after it. False if it could not.
  bool CreateReserve(bool keep_free);

  // Constant after construction.
  sqlite3* const db_;
  bool deferred_sync_ = false;
  int checkpoint_frames_ = 4000;
  sqlite3_stmt* stmts_[kStmtCount] = {};
  std::string files_dir_;
  std::string reserve_path_;
  int64_t reserve_bytes_ = 0;

  // Sticky error of the open transaction: set by a failed write, returned by
  // every later write and by Commit(), cleared by Commit() or Abort().
  Status txn_error_;
  uint64_t commit_count_ = 0;
  LatencyHistogram commit_latency_;
  int wal_frames_ = 0;     // frames in the WAL after the last commit
  bool wal_dirty_ = true;  // committed since the last TruncateWal()
  bool reserve_present_ = false;
};

}  // namespace tq
