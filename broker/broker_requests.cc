// The broker core's answers to clients: submissions, results, batch
// progress and the admin requests behind tq-ctl.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "broker/broker.h"
#include "common/queue_name.h"
#include "common/result_wire.h"
#include "common/url_check.h"

namespace tq {
namespace {

constexpr uint32_t kMaxAttemptsCap = 100;
constexpr uint32_t kMaxTimeLimitMs = 24 * 3600 * 1000;
constexpr uint32_t kMaxFetchLimit = 10'000;
// File content and output per Results message when FetchResults.with_files
// is set.
constexpr uint64_t kMaxFileBytesPerReply = 12 * 1024 * 1024;

bool IsValidBatchId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

std::string OptionsJson(
    const google::protobuf::Map<std::string, std::string>& options) {
  if (options.empty()) return "{}";
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : options) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void Broker::HandleSubmit(const std::string& peer, uint64_t seq,
                          const wire::Submit& submit) {
  if (!IsValidBatchId(submit.batch_id())) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "batch id must be 1-64 characters of A-Z a-z 0-9 . _ : -");
    return;
  }
  if (uint32_t(submit.items_size()) > kMaxSubmitItems) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "at most " + std::to_string(kMaxSubmitItems) +
                  " items per Submit message");
    return;
  }
  if (!CheckWritable(peer, seq)) return;

  NewTask spec;
  spec.batch_id = submit.batch_id();
  spec.priority = submit.priority();
  spec.max_attempts = submit.max_attempts()
                          ? std::min(submit.max_attempts(), kMaxAttemptsCap)
                          : options_.default_max_attempts;
  spec.time_limit_ms = submit.time_limit_ms()
                           ? std::min(submit.time_limit_ms(), kMaxTimeLimitMs)
                           : options_.default_time_limit_ms;
  spec.options_json = OptionsJson(submit.options());
  spec.submitted_ms = clock_.WallMs();
  // The in-memory side of each accepted item.
  PendingTask task;
  task.batch_id = spec.batch_id;
  task.priority = spec.priority;
  task.max_attempts = spec.max_attempts;
  task.time_limit_ms = spec.time_limit_ms;

  wire::Envelope ack;
  ack.set_seq(seq);
  wire::SubmitAck* a = ack.mutable_submit_ack();
  a->set_batch_id(submit.batch_id());
  uint32_t accepted = 0, duplicates = 0;
  for (const wire::SubmitItem& item : submit.items()) {
    Status valid = ValidateQueueName(item.queue());
    if (valid.ok()) valid = ValidateUrl(item.url());
    if (!valid.ok()) {
      wire::ItemError* e = a->add_errors();
      e->set_index(item.index());
      e->set_reason(valid.message());
      continue;
    }
    spec.index = item.index();
    spec.queue = item.queue();
    spec.url = item.url();
    auto inserted = store_.Insert(spec);
    if (!inserted.ok()) {
      OnStoreFailure(inserted.status());
      SendStoreError(peer, seq);
      return;
    }
    if (!inserted.value().has_value()) {
      ++duplicates;
      continue;
    }
    task.id = *inserted.value();
    task.queue = spec.queue;
    tasks_.Add(task);
    ++accepted;
  }
  a->set_accepted(accepted);
  a->set_duplicates(duplicates);
  spdlog::debug("batch {}: {} tasks queued, {} duplicates, {} refused",
                submit.batch_id(), accepted, duplicates, a->errors_size());
  SendAfterCommit(peer, std::move(ack));
}

bool Broker::ReplyResults(const std::string& peer, uint64_t seq,
                          const wire::FetchResults& req, bool final_answer) {
  const Counts* counts = tasks_.BatchCounts(req.batch_id());
  const uint32_t limit =
      std::clamp<uint32_t>(req.limit() ? req.limit() : 1000, 1, kMaxFetchLimit);
  auto rows = store_.ReadFinished(req.batch_id(), req.after(), limit);
  if (!rows.ok()) {
    SendError(peer, seq, wire::STORE_UNAVAILABLE,
              "cannot read results: " + rows.status().message(), true);
    return true;
  }
  const bool complete = counts == nullptr || counts->pending() == 0;
  if (rows->empty() && !complete && !final_answer) return false;

  wire::Envelope env;
  env.set_seq(seq);
  wire::Results* out = env.mutable_results();
  out->set_batch_id(req.batch_id());
  uint64_t cursor = req.after();
  uint64_t file_bytes = 0;
  for (TaskResult& f : rows.value()) {
    uint64_t task_file_bytes = f.output.size();
    for (const ResultFile& ref : f.files) task_file_bytes += ref.size;
    // With content, a reply stays under the message cap: the rest waits for
    // the next fetch (one task always goes, its files being capped).
    if (req.with_files() && out->tasks_size() > 0 &&
        file_bytes + task_file_bytes > kMaxFileBytesPerReply) {
      break;
    }
    file_bytes += task_file_bytes;
    for (ResultFile& ref : f.files) {
      if (!req.with_files()) break;
      Result<std::string> content = store_.GetFile(ref.sha256);
      if (content.ok()) {
        ref.content = std::move(*content);
      } else {
        spdlog::warn("task {}: {}", f.task_id, content.status().message());
      }
    }
    cursor = std::max(cursor, f.finish_seq);
    ToWire(std::move(f), out->add_tasks());
  }
  out->set_cursor(cursor);
  if (counts != nullptr) counts->ToWire(out->mutable_counts());
  SendAfterCommit(peer, std::move(env));
  return true;
}

void Broker::HandleFetch(const std::string& peer, uint64_t seq,
                         const wire::FetchResults& fetch) {
  if (tasks_.BatchCounts(fetch.batch_id()) == nullptr) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no batch '" + fetch.batch_id().substr(0, 64) + "'");
    return;
  }
  if (ReplyResults(peer, seq, fetch, fetch.wait_ms() == 0)) return;
  ParkedFetch p;
  p.peer = peer;
  p.seq = seq;
  p.request = fetch;
  p.deadline =
      clock_.Now() + std::min(Millis(fetch.wait_ms()), options_.max_fetch_wait);
  parked_.push_back(std::move(p));
}

void Broker::AnswerParkedFetches(bool expired_only) {
  if (parked_.empty()) {
    tasks_.TakeBatchesWithNews();
    return;
  }
  const TimePoint now = clock_.Now();
  std::erase_if(parked_, [&](const ParkedFetch& p) {
    const bool expired = now >= p.deadline;
    if (expired_only && !expired) return false;
    if (!expired && !tasks_.HasNews(p.request.batch_id())) return false;
    return ReplyResults(p.peer, p.seq, p.request, expired);
  });
  if (!expired_only) tasks_.TakeBatchesWithNews();
}

void Broker::HandleBatchStatus(const std::string& peer, uint64_t seq,
                               const wire::BatchStatusRequest& req) {
  const Counts* counts = tasks_.BatchCounts(req.batch_id());
  if (counts == nullptr) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no batch '" + req.batch_id().substr(0, 64) + "'");
    return;
  }
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_batch_status()->set_batch_id(req.batch_id());
  counts->ToWire(env.mutable_batch_status()->mutable_counts());
  SendAfterCommit(peer, std::move(env));
}

void Broker::HandleCancel(const std::string& peer, uint64_t seq,
                          const wire::CancelBatch& req) {
  if (tasks_.BatchCounts(req.batch_id()) == nullptr) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no batch '" + req.batch_id().substr(0, 64) + "'");
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  BulkJob job;
  job.key = "cancel batch " + req.batch_id();
  if (JoinBulk(job.key, peer, seq)) return;
  job.reason = "cancelled";
  job.cancel = tasks_.WaitingIds(
      [&](const TaskEntry& t) { return t.batch_id() == req.batch_id(); });
  StartBulk(std::move(job), peer, seq);
}

void Broker::HandlePurge(const std::string& peer, uint64_t seq,
                         const wire::PurgeQueue& req) {
  Status valid = ValidateQueueName(req.queue());
  if (!valid.ok()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT, valid.message());
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  BulkJob job;
  job.key = "purge queue " + req.queue();
  if (JoinBulk(job.key, peer, seq)) return;
  job.reason = "purged from queue " + req.queue();
  job.cancel = tasks_.WaitingIds(
      [&](const TaskEntry& t) { return t.queue_name() == req.queue(); });
  StartBulk(std::move(job), peer, seq);
}

void Broker::HandleRetryDead(const std::string& peer, uint64_t seq,
                             const wire::RetryDead& req) {
  if (req.batch_id().empty() == req.queue().empty()) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "name either a batch or a queue");
    return;
  }
  if (!CheckWritable(peer, seq)) return;
  BulkJob job;
  job.key = req.batch_id().empty() ? "retry dead of queue " + req.queue()
                                   : "retry dead of batch " + req.batch_id();
  if (JoinBulk(job.key, peer, seq)) return;
  auto dead = store_.LoadDead(req.batch_id(), req.queue());
  if (!dead.ok()) {
    SendError(peer, seq, wire::STORE_UNAVAILABLE, dead.status().message(),
              true);
    return;
  }
  job.revive = std::move(*dead);
  StartBulk(std::move(job), peer, seq);
}

void Broker::HandleListQueues(const std::string& peer, uint64_t seq) {
  wire::Envelope env;
  env.set_seq(seq);
  wire::QueueList* list = env.mutable_queue_list();
  for (const auto& [name, q] : tasks_.queues()) {
    wire::QueueInfo* info = list->add_queues();
    info->set_name(name);
    q.counts.ToWire(info->mutable_counts());
    info->set_workers(sessions_.CountServing(name));
  }
  ToWire(stats_, list->mutable_stats());
  Send(peer, std::move(env));
}

void Broker::HandleListWorkers(const std::string& peer, uint64_t seq) {
  wire::Envelope env;
  env.set_seq(seq);
  wire::WorkerList* list = env.mutable_worker_list();
  const TimePoint now = clock_.Now();
  std::vector<const WorkerSession*> sorted;
  for (const auto& [id, s] : sessions_.all()) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->worker_id < b->worker_id; });
  for (const WorkerSession* s : sorted) {
    wire::WorkerInfo* w = list->add_workers();
    w->set_worker_id(s->worker_id);
    w->set_country(s->country);
    w->set_country_source(s->country_source);
    for (const auto& q : s->queues) w->add_queues(q);
    w->set_concurrency(s->concurrency);
    w->set_credit(s->credit);
    w->set_in_flight(uint32_t(s->in_flight.size()));
    w->set_last_seen_ms_ago(uint64_t((now - s->last_seen).count()));
    w->set_hostname(s->hostname);
    w->set_tasks_done(s->tasks_done);
    w->set_peer_address(s->peer_address);
  }
  Send(peer, std::move(env));
}

}  // namespace tq
