// The views behind tq-ctl status, batches, task, active and workers, and the
// web console's pages of the same (#19, #11): one implementation, two views.
// Each answer comes from the core's memory (counts per batch and queue, the
// sessions and their leases, the batches' creation order) or from one point
// read by primary key, so no request holds the loop for a scan, whatever
// the size of the database.
#include <algorithm>

#include "broker/broker.h"
#include "common/result_wire.h"

namespace tq {
namespace {

constexpr uint32_t kDefaultBatchPage = 50;
constexpr uint32_t kMaxBatchPage = 1000;
// Workers that left are listed (offline) for this long.
constexpr int64_t kOfflineShownMs = 3'600'000;

wire::TaskState WireState(TaskState s) {
  return static_cast<wire::TaskState>(static_cast<int>(s));
}

void AddCounts(const Counts& from, Counts* to) {
  for (size_t i = 0; i < 6; ++i) to->by_state[i] += from.by_state[i];
  for (int i = 0; i < kOutcomeCount; ++i)
    to->by_outcome[i] += from.by_outcome[i];
}

}  // namespace

Status Broker::NoteBatchCreated(const std::string& batch_id) {
  if (batch_meta_.contains(batch_id)) return Status::Ok();
  const int64_t now = clock_.WallMs();
  if (Status st = store_.AddBatch(batch_id, now); !st.ok()) return st;
  // The store's rowid is the next one; a failed commit reloads both.
  batch_meta_[batch_id] = {++last_batch_seq_, now};
  return Status::Ok();
}

bool Broker::FillActive(uint64_t id, wire::ActiveTask* out) {
  const TaskEntry* t = tasks_.Find(id);
  if (t == nullptr || t->state != TaskState::kLeased || t->holder == 0) {
    return false;
  }
  const WorkerSession* s = sessions_.Find(t->holder);
  if (s == nullptr) return false;
  out->set_task_id(id);
  out->set_queue(t->queue_name());
  out->set_batch_id(t->batch_id());
  out->set_worker(s->worker_id);
  out->set_attempt(t->attempts);
  if (auto live = live_leases_.find(id); live != live_leases_.end()) {
    out->set_url(live->second.url);
    out->set_since_ms(live->second.since_ms);
  }
  return true;
}

void Broker::HandleStatus(const std::string& peer, uint64_t seq) {
  wire::Envelope env;
  env.set_seq(seq);
  wire::BrokerStatus* st = env.mutable_broker_status();
  if (status_filler_) status_filler_(st);
  st->set_started_ms(started_wall_ms_);
  st->set_uptime_ms(
      uint64_t(std::max<int64_t>(0, clock_.WallMs() - started_wall_ms_)));
  st->set_workers(uint32_t(sessions_.size()));
  Counts totals;
  for (const auto& [name, q] : tasks_.queues()) AddCounts(q.counts, &totals);
  totals.ToWire(st->mutable_totals());
  uint64_t batches = 0;
  for (const auto& [id, meta] : batch_meta_) {
    if (tasks_.BatchCounts(id) != nullptr) ++batches;
  }
  st->set_batches(batches);
  ToWire(stats_, st->mutable_stats());
  Send(peer, std::move(env));
}

void Broker::HandleListBatches(const std::string& peer, uint64_t seq,
                               const wire::ListBatches& req,
                               const PeerIdentity& who) {
  const uint32_t limit = req.limit() == 0
                             ? kDefaultBatchPage
                             : std::min<uint32_t>(req.limit(), kMaxBatchPage);
  // A submit key sees its own batches only; admin (or no keys) every one.
  const bool all = !who.keyed || who.roles.Has(Role::kAdmin);
  struct Row {
    const std::string* id;
    const BatchMeta* meta;
    const Counts* counts;
  };
  std::vector<Row> rows;
  rows.reserve(batch_meta_.size());
  for (const auto& [id, meta] : batch_meta_) {
    const Counts* counts = tasks_.BatchCounts(id);
    if (counts == nullptr) continue;  // every task swept by --keep-results
    if (!all) {
      auto owner = batch_owners_.find(id);
      if (owner == batch_owners_.end() || owner->second != who.key_name) {
        continue;
      }
    }
    rows.push_back({&id, &meta, counts});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.meta->seq > b.meta->seq;  // newest first
  });
  wire::Envelope env;
  env.set_seq(seq);
  wire::BatchList* list = env.mutable_batch_list();
  list->set_total(rows.size());
  auto it = rows.begin();
  if (req.before() != 0) {
    it = std::find_if(rows.begin(), rows.end(),
                      [&](const Row& r) { return r.meta->seq < req.before(); });
  }
  for (; it != rows.end() && uint32_t(list->batches_size()) < limit; ++it) {
    wire::BatchInfo* b = list->add_batches();
    b->set_batch_id(*it->id);
    it->counts->ToWire(b->mutable_counts());
    b->set_created_ms(it->meta->created_ms);
    b->set_seq(it->meta->seq);
    if (auto owner = batch_owners_.find(*it->id);
        owner != batch_owners_.end()) {
      b->set_submitter(owner->second);
    }
  }
  if (it != rows.end() && list->batches_size() > 0) {
    list->set_next_before(list->batches(list->batches_size() - 1).seq());
  }
  Send(peer, std::move(env));
}

void Broker::HandleTask(const std::string& peer, uint64_t seq,
                        const wire::TaskRequest& req, const PeerIdentity& who) {
  Result<TaskDetail> read = store_.ReadTask(req.task_id());
  if (!read.ok()) {
    if (read.status().code() == Status::Code::kNotFound) {
      SendError(peer, seq, wire::NOT_FOUND,
                "no task " + std::to_string(req.task_id()));
    } else {
      SendError(peer, seq, wire::STORE_UNAVAILABLE,
                "cannot read task " + std::to_string(req.task_id()) + ": " +
                    read.status().message(),
                true);
    }
    return;
  }
  TaskDetail& d = *read;
  if (who.keyed && !who.roles.Has(Role::kAdmin) &&
      !OwnsBatch(who, d.row.batch_id, /*submitting=*/false)) {
    Deny(peer, seq, who,
         who.Describe() +
             " may look up only the tasks of batches it "
             "submitted; task " +
             std::to_string(req.task_id()) + " is not one of them");
    return;
  }
  wire::Envelope env;
  env.set_seq(seq);
  wire::TaskReport* report = env.mutable_task_report();
  wire::TaskInfo* info = report->mutable_task();
  if (d.result) {
    ToWire(std::move(*d.result), info);
  } else {
    // Pending: the row, and the ended attempts the core keeps in memory.
    info->set_task_id(d.row.task_id);
    info->set_batch_id(d.row.batch_id);
    info->set_index(d.row.index);
    info->set_url(d.row.url);
    info->set_queue(d.row.queue);
    info->set_state(WireState(d.row.state));
    info->set_attempts(d.row.attempts);
    info->set_worker(d.row.worker);
    info->set_error(d.row.error);
    info->set_submitted_ms(d.row.submitted_ms);
    if (auto h = history_.find(d.row.task_id); h != history_.end()) {
      for (const AttemptRecord& a : h->second) {
        wire::Attempt* w = info->add_history();
        w->set_attempt(a.attempt);
        w->set_worker(a.worker);
        w->set_ok(a.ok);
        w->set_outcome(a.outcome);
        w->set_error(a.error);
        w->set_started_ms(a.started_ms);
        w->set_ended_ms(a.ended_ms);
      }
    }
  }
  report->set_options_json(d.options_json);
  report->set_priority(d.priority);
  report->set_max_attempts(d.max_attempts);
  report->set_time_limit_ms(d.time_limit_ms);
  if (d.row.state == TaskState::kRetryWait) {
    report->set_not_before_ms(d.not_before_ms);
  }
  report->set_leased(FillActive(d.row.task_id, report->mutable_lease()));
  if (!report->leased()) report->clear_lease();
  // A read of the store: it may see this turn's writes, so it waits for
  // their commit like the other store reads.
  SendAfterCommit(peer, std::move(env));
}

void Broker::HandleListActive(const std::string& peer, uint64_t seq,
                              const wire::ListActive& req) {
  std::vector<uint64_t> ids;
  for (const auto& [sid, s] : sessions_.all()) {
    if (!req.worker().empty() && s.worker_id != req.worker()) continue;
    for (const auto& [task_id, token] : s.in_flight) ids.push_back(task_id);
  }
  std::sort(ids.begin(), ids.end());
  wire::Envelope env;
  env.set_seq(seq);
  wire::ActiveList* list = env.mutable_active_list();
  for (uint64_t id : ids) {
    wire::ActiveTask a;
    if (!FillActive(id, &a)) continue;
    if (!req.batch_id().empty() && a.batch_id() != req.batch_id()) continue;
    if (!req.queue().empty() && a.queue() != req.queue()) continue;
    *list->add_tasks() = std::move(a);
  }
  Send(peer, std::move(env));
}

void Broker::AddOfflineWorkers(wire::WorkerList* list) {
  const int64_t now = clock_.WallMs();
  std::vector<const WorkerHealth*> gone;
  for (const auto& [id, h] : sessions_.all_health()) {
    if (sessions_.ForWorker(id) != nullptr) continue;
    const int64_t seen = h.record.last_seen_ms;
    if (seen <= 0 || now - seen > kOfflineShownMs) continue;
    gone.push_back(&h);
  }
  std::sort(gone.begin(), gone.end(), [](auto* a, auto* b) {
    return a->record.worker_id < b->record.worker_id;
  });
  for (const WorkerHealth* h : gone) {
    const WorkerRecord& r = h->record;
    wire::WorkerInfo* w = list->add_workers();
    w->set_worker_id(r.worker_id);
    w->set_offline(true);
    w->set_state("offline");
    w->set_last_seen_ms(r.last_seen_ms);
    w->set_last_seen_ms_ago(
        uint64_t(std::max<int64_t>(0, now - r.last_seen_ms)));
    w->set_tasks_done(r.succeeded);
    w->set_succeeded(r.succeeded);
    w->set_failed(r.failed);
    w->set_retried(r.retried);
    w->set_timed_out(r.timed_out);
    w->set_consecutive_failures(r.consecutive_failures);
    w->set_last_failure(r.last_failure);
    w->set_first_seen_ms(r.first_seen_ms);
    w->set_session_start_ms(r.session_start_ms);
  }
}

}  // namespace tq
