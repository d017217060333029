// A TaskStore wrapper that injects storage failures (after leveldb's
// ErrorEnv): a commit that fails as on a full disk, writes that fail.
// Everything else is forwarded to the wrapped store, which must outlive it.
#pragma once

#include <string>
#include <utility>

#include "broker/task_store.h"

namespace tq {

class FaultyTaskStore final : public TaskStore {
 public:
  explicit FaultyTaskStore(TaskStore& inner) : inner_(inner) {}

  // While on, Commit() discards the open transaction and returns
  // IoError(message), and Probe() fails the same way.
  void FailCommits(bool on, std::string message = "injected commit failure") {
    fail_commits_ = on;
    commit_message_ = std::move(message);
  }
  // While on, Insert and Mark* return IoError without reaching the store.
  void FailWrites(bool on) { fail_writes_ = on; }
  // Commit() calls so far, failed ones included.
  int commit_calls() const { return commit_calls_; }

  Result<std::optional<uint64_t>> Insert(const NewTask& task) override {
    if (fail_writes_) return WriteError();
    return inner_.Insert(task);
  }
  Result<LeasePayload> MarkLeased(uint64_t id, uint64_t token,
                                  uint32_t attempts, const std::string& worker,
                                  int64_t now_ms) override {
    if (fail_writes_) return WriteError();
    return inner_.MarkLeased(id, token, attempts, worker, now_ms);
  }
  Status MarkWaiting(uint64_t id, TaskState state, uint32_t attempts,
                     int64_t not_before_ms,
                     std::optional<std::string> last_error) override {
    if (fail_writes_) return WriteError();
    return inner_.MarkWaiting(id, state, attempts, not_before_ms,
                              std::move(last_error));
  }
  Status MarkFinished(uint64_t id, TaskState state, uint32_t attempts,
                      uint64_t finish_seq, const AttemptResult& outcome,
                      int64_t now_ms,
                      const std::vector<AttemptRecord>& history = {}) override {
    if (fail_writes_) return WriteError();
    return inner_.MarkFinished(id, state, attempts, finish_seq, outcome, now_ms,
                               history);
  }
  Status SaveWorker(const WorkerRecord& worker) override {
    if (fail_writes_) return WriteError();
    return inner_.SaveWorker(worker);
  }

  Status SetBatchOwner(const std::string& batch_id,
                       const std::string& key_name) override {
    if (fail_writes_) return WriteError();
    return inner_.SetBatchOwner(batch_id, key_name);
  }
  Status LoadBatchOwners(
      const std::function<void(const std::string&, const std::string&)>& each)
      override {
    return inner_.LoadBatchOwners(each);
  }

  Status SetQueuePaused(const std::string& queue, bool paused,
                        int64_t now_ms) override {
    if (fail_writes_) return WriteError();
    return inner_.SetQueuePaused(queue, paused, now_ms);
  }
  Status LoadPausedQueues(
      const std::function<void(const std::string&)>& each) override {
    return inner_.LoadPausedQueues(each);
  }
  Status AddBatch(const std::string& batch_id, int64_t created_ms) override {
    if (fail_writes_) return WriteError();
    return inner_.AddBatch(batch_id, created_ms);
  }
  Status LoadBatches(const std::function<void(const std::string&, uint64_t,
                                              int64_t)>& each) override {
    return inner_.LoadBatches(each);
  }
  Result<TaskDetail> ReadTask(uint64_t id) override {
    return inner_.ReadTask(id);
  }

  Result<std::vector<std::string>> DeleteFinished(
      const std::vector<uint64_t>& ids) override {
    if (fail_writes_) return WriteError();
    return inner_.DeleteFinished(ids);
  }
  Status PutFile(const std::string& sha256, std::string_view content) override {
    if (fail_writes_) return WriteError();
    return inner_.PutFile(sha256, content);
  }
  Result<std::string> GetFile(const std::string& sha256) override {
    return inner_.GetFile(sha256);
  }
  Result<uint64_t> RemoveUnreferencedFiles(
      const std::vector<std::string>& sha256s) override {
    return inner_.RemoveUnreferencedFiles(sha256s);
  }

  Status Commit() override {
    ++commit_calls_;
    if (fail_commits_) {
      // Honours the contract: after a failed commit nothing of it is kept.
      inner_.Abort();
      return Status::IoError(commit_message_);
    }
    return inner_.Commit();
  }
  void Abort() override { inner_.Abort(); }
  bool HasUncommitted() const override { return inner_.HasUncommitted(); }
  Status Probe() override {
    if (fail_commits_) return Status::IoError(commit_message_);
    return inner_.Probe();
  }

  Status LoadPending(
      const std::function<void(const PendingTask&)>& each) override {
    return inner_.LoadPending(each);
  }
  Result<FinishedSummary> LoadFinishedSummary() override {
    return inner_.LoadFinishedSummary();
  }
  Result<std::vector<TaskResult>> ReadFinished(const std::string& batch_id,
                                               uint64_t after,
                                               uint32_t limit) override {
    return inner_.ReadFinished(batch_id, after, limit);
  }
  Result<std::vector<ExpiredTask>> LoadExpired(int64_t finished_before_ms,
                                               uint32_t limit) override {
    return inner_.LoadExpired(finished_before_ms, limit);
  }
  Result<std::vector<WorkerRecord>> LoadWorkers() override {
    return inner_.LoadWorkers();
  }
  Result<std::vector<PendingTask>> LoadDead(const std::string& batch_id,
                                            const std::string& queue) override {
    return inner_.LoadDead(batch_id, queue);
  }

 private:
  static Status WriteError() {
    return Status::IoError("injected write failure");
  }

  TaskStore& inner_;
  bool fail_commits_ = false;
  bool fail_writes_ = false;
  std::string commit_message_ = "injected commit failure";
  int commit_calls_ = 0;
};

}  // namespace tq
