// Cancels, purges and retries of many tasks run in bounded steps across loop
// turns (BrokerOptions::bulk_step per turn), so a purge of a million tasks
// never stops the loop: heartbeats, dispatch and other requests go on
// between its steps. Each job is acknowledged once its last step commits.
#include <spdlog/spdlog.h>

#include "broker/broker.h"

namespace tq {

bool Broker::JoinBulk(const std::string& key, const std::string& peer,
                      uint64_t seq) {
  for (BulkJob& job : bulk_) {
    if (job.key == key) {
      // A resend, or the same request from someone else: one job answers
      // them all.
      job.requesters.emplace_back(peer, seq);
      return true;
    }
  }
  return false;
}

void Broker::StartBulk(BulkJob job, const std::string& peer, uint64_t seq) {
  const size_t items = job.cancel.size() + job.revive.size();
  if (items > options_.bulk_step) {
    spdlog::info("{}: {} tasks, in steps of {}", job.key, items,
                 options_.bulk_step);
  }
  job.requesters.emplace_back(peer, seq);
  bulk_.push_back(std::move(job));
}

void Broker::RunBulkStep() {
  if (bulk_.empty() || !store_ok()) return;
  BulkJob& job = bulk_.front();
  const size_t total = job.cancel.size() + job.revive.size();
  const size_t end = std::min<size_t>(total, job.next + options_.bulk_step);
  while (job.next < end) {
    const bool handled =
        job.cancel.empty() ? BulkReviveOne(job) : BulkCancelOne(job);
    if (!handled) return;  // the store failed: Commit() ends the jobs
    ++job.next;
  }
  if (job.next < total) return;
  spdlog::info("{}: {} tasks", job.key, job.affected);
  for (const auto& [peer, seq] : job.requesters) {
    SendAdminAck(peer, seq, job.affected);
  }
  bulk_.pop_front();
}

bool Broker::BulkCancelOne(BulkJob& job) {
  TaskEntry* t = tasks_.Find(job.cancel[job.next]);
  // Leased or finished since the request: not waiting any more.
  if (t == nullptr || !t->waiting()) return true;
  AttemptResult outcome;
  outcome.error = job.reason;
  Finish(*t, TaskState::kCancelled, std::move(outcome));
  if (!store_ok()) return false;
  ++job.affected;
  return true;
}

bool Broker::BulkReviveOne(BulkJob& job) {
  PendingTask& p = job.revive[job.next];
  if (tasks_.Find(p.id) != nullptr) return true;  // revived meanwhile
  Status st = store_.MarkWaiting(p.id, TaskState::kQueued, 0, 0, std::nullopt);
  if (st.code() == Status::Code::kNotFound) return true;  // swept meanwhile
  if (!st.ok()) {
    OnStoreFailure(st);
    return false;
  }
  // Move the count from dead to queued, then queue it.
  tasks_.UncountFinished(p.batch_id, p.queue, TaskState::kDead);
  p.state = TaskState::kQueued;
  p.attempts = 0;
  p.token = 0;  // a late result from its last lease is not taken
  tasks_.Add(p);
  ++job.affected;
  return true;
}

// The store failed: what the jobs did in this turn is rolled back; their
// requesters hear so and may ask again.
void Broker::FailBulkJobs() {
  for (const BulkJob& job : bulk_) {
    for (const auto& [peer, seq] : job.requesters) SendStoreError(peer, seq);
  }
  bulk_.clear();
}

}  // namespace tq
