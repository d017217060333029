// The broker core's answers to clients: submissions, results, batch
// progress and the admin requests behind tq-ctl.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "broker/broker.h"
#include "common/defaults.h"
#include "common/queue_name.h"
#include "common/result_wire.h"
#include "common/url_check.h"

namespace tq {
namespace {

constexpr uint32_t kMaxAttemptsCap = 100;
constexpr uint32_t kMaxTimeLimitMs = 24 * 3600 * 1000;
constexpr uint32_t kMaxFetchLimit = 10'000;
// Results replies are paged by bytes as well as by count. A page holds
// results (output, file content and the rest, as encoded) up to this budget;
// the first always goes, so one result of up to kMaxOneResultBytes (a worker
// keeps output and files under the message cap less 1 MiB) goes alone.
constexpr uint64_t kMaxResultBytesPerReply = 12 * 1024 * 1024;
// Room for the envelope around the results: seq, batch id, cursor, counts.
constexpr uint64_t kResultsEnvelopeRoom = 64 * 1024;
constexpr uint64_t kMaxOneResultBytes =
    uint64_t(kMaxMessageBytes) - kResultsEnvelopeRoom;
// Rows read from the store for the first slice of a page; later slices are
// sized by the largest result seen, so big outputs are not read in
// thousands only to be dropped.
constexpr uint32_t kFirstReadRows = 8;
// Tag and length prefixes a field adds, with room to spare.
constexpr uint64_t kFieldOverhead = 10;

bool IsValidBatchId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// Cuts down one result too big for any reply, which only a peer ignoring
// the worker's caps can have stored: file content goes first (left out by
// the caller), then the tail of the output, stderr tail and error, then the
// file list. The error says what was cut.
void FitInOneReply(wire::TaskInfo* t, bool content_left_out) {
  constexpr uint64_t kNoteRoom = 256;
  std::string cut = content_left_out ? "file content" : "";
  auto note = [&cut](const char* what) {
    cut += cut.empty() ? "" : ", ";
    cut += what;
  };
  struct Field {
    std::string* text;
    const char* name;
  };
  for (Field f : {Field{t->mutable_output(), "output"},
                  Field{t->mutable_stderr_tail(), "stderr tail"},
                  Field{t->mutable_error(), "error"}}) {
    const uint64_t size = t->ByteSizeLong() + kNoteRoom;
    if (size <= kMaxOneResultBytes) break;
    if (f.text->empty()) continue;
    size_t keep = f.text->size() -
                  std::min<uint64_t>(f.text->size(), size - kMaxOneResultBytes);
    // Not inside a UTF-8 sequence: text stays text.
    while (keep > 0 && (uint8_t((*f.text)[keep]) & 0xC0) == 0x80) --keep;
    f.text->resize(keep);
    if (f.text == t->mutable_output()) t->set_output_truncated(true);
    note(f.name);
  }
  if (t->ByteSizeLong() + kNoteRoom > kMaxOneResultBytes) {
    t->clear_files();
    note("file list");
  }
  std::string* error = t->mutable_error();
  *error += error->empty() ? "" : "; ";
  *error += "cut to fit one reply: " + cut;
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
                          const wire::Submit& submit, const PeerIdentity& who) {
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
  if (Status st = NoteBatchCreated(submit.batch_id()); !st.ok()) {
    OnStoreFailure(st);
    SendStoreError(peer, seq);
    return;
  }
  // The first key to submit a batch owns it (Authorize checked the rest).
  if (who.keyed && !batch_owners_.contains(submit.batch_id())) {
    if (Status st = store_.SetBatchOwner(submit.batch_id(), who.key_name);
        !st.ok()) {
      OnStoreFailure(st);
      SendStoreError(peer, seq);
      return;
    }
    batch_owners_[submit.batch_id()] = who.key_name;
  }

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
  // For the events: one summary per queue of this Submit (queue -> count,
  // and the first task's id and URL).
  struct Queued {
    uint64_t count = 0;
    uint64_t first_id = 0;
    std::string first_url;
  };
  std::map<std::string, Queued> queued;
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
    ++turn_counts_.submitted;
    if (events_.active()) {
      Queued& q = queued[spec.queue];
      if (q.count++ == 0) {
        q.first_id = task.id;
        q.first_url = spec.url;
      }
    }
  }
  for (const auto& [queue, q] : queued) {
    if (PublishedEvent* e = NewEvent("submitted")) {
      e->event.set_batch_id(submit.batch_id());
      e->event.set_queue(queue);
      e->event.set_count(q.count);
      if (q.count == 1) {
        e->event.set_task_id(q.first_id);
        e->event.set_url(q.first_url);
      }
    }
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
  const bool complete = counts == nullptr || counts->pending() == 0;

  wire::Envelope env;
  env.set_seq(seq);
  wire::Results* out = env.mutable_results();
  out->set_batch_id(req.batch_id());
  uint64_t cursor = req.after();
  uint64_t page_bytes = 0;
  uint64_t largest = 1;
  bool full = false;  // by bytes: the next result would not fit
  uint32_t read_rows = std::min(limit, kFirstReadRows);
  for (;;) {
    auto rows = store_.ReadFinished(req.batch_id(), cursor, read_rows);
    if (!rows.ok()) {
      SendError(peer, seq, wire::STORE_UNAVAILABLE,
                "cannot read results: " + rows.status().message(), true);
      return true;
    }
    for (TaskResult& f : rows.value()) {
      const uint64_t finish_seq = f.finish_seq;
      wire::TaskInfo info;
      ToWire(std::move(f), &info);
      // Predicted before any file is read: content adds its size and prefix.
      uint64_t bytes = info.ByteSizeLong() + kFieldOverhead;
      const int files = req.with_files() ? info.files_size() : 0;
      for (int i = 0; i < files; ++i) {
        bytes += info.files(i).size() + kFieldOverhead;
      }
      largest = std::max(largest, bytes);
      if (out->tasks_size() > 0 &&
          page_bytes + bytes > kMaxResultBytesPerReply) {
        full = true;
        break;
      }
      // Content only for what fits in one message (always, from a worker
      // that keeps its caps).
      for (int i = 0; bytes <= kMaxOneResultBytes && i < files; ++i) {
        wire::File* file = info.mutable_files(i);
        Result<std::string> content = store_.GetFile(file->sha256());
        if (!content.ok()) {
          spdlog::warn("task {}: {}", info.task_id(),
                       content.status().message());
        } else if (content->size() != file->size()) {
          // The prediction above must hold: never more than was stored.
          spdlog::warn("task {}: stored file {} is {} bytes, not {}",
                       info.task_id(), file->sha256(), content->size(),
                       file->size());
        } else {
          file->set_content(std::move(*content));
        }
      }
      if (bytes > kMaxOneResultBytes) {
        spdlog::warn(
            "batch {}: task {} has {} bytes of results, more than one reply "
            "holds ({}): sent cut down",
            req.batch_id(), info.task_id(), bytes, kMaxOneResultBytes);
        FitInOneReply(&info, files > 0);
      }
      page_bytes += info.ByteSizeLong() + kFieldOverhead;
      cursor = std::max(cursor, finish_seq);
      *out->add_tasks() = std::move(info);
      if (uint32_t(out->tasks_size()) >= limit) break;
    }
    if (full || uint32_t(out->tasks_size()) >= limit) break;
    if (rows->size() < read_rows) break;  // nothing more has finished
    const uint64_t room =
        kMaxResultBytesPerReply - std::min(page_bytes, kMaxResultBytesPerReply);
    read_rows = uint32_t(std::clamp<uint64_t>(
        room / largest + 1, 1, limit - uint32_t(out->tasks_size())));
  }
  if (out->tasks_size() == 0 && !complete && !final_answer) return false;
  if (full) {
    spdlog::debug("batch {}: a page of results cut at {} by size ({} bytes)",
                  req.batch_id(), out->tasks_size(), page_bytes);
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
    info->set_paused(q.paused);
  }
  BrokerStats stats = stats_;
  stats.permission_denied = permission_denied_;
  stats.rate_limited = reads_refused_;
  if (options_.commit_latency != nullptr) {
    stats.commit_latency = options_.commit_latency->Snapshot();
  }
  if (options_.sync_latency != nullptr) {
    stats.sync_latency = options_.sync_latency->Snapshot();
  }
  ToWire(stats, list->mutable_stats());
  Send(peer, std::move(env));
}

void Broker::HandleListWorkers(const std::string& peer, uint64_t seq,
                               const wire::ListWorkers& req) {
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
    w->set_peer_address(s->peer_address);
    FillHealth(*s, w);
    w->set_draining(s->state == WorkerState::kDraining);
    w->set_key_name(s->key_name);
    w->set_last_seen_ms(clock_.WallMs() - (now - s->last_seen).count());
    std::vector<uint64_t> held;
    for (const auto& [task_id, token] : s->in_flight) held.push_back(task_id);
    std::sort(held.begin(), held.end());
    for (uint64_t id : held) {
      wire::ActiveTask a;
      if (FillActive(id, &a)) *w->add_current() = std::move(a);
    }
  }
  if (req.include_offline()) AddOfflineWorkers(list);
  Send(peer, std::move(env));
}

void Broker::HandleWorkerAction(const std::string& peer, uint64_t seq,
                                const std::string& worker_id, bool disconnect) {
  WorkerSession* s = sessions_.ForWorker(worker_id);
  if (s == nullptr) {
    SendError(peer, seq, wire::NOT_FOUND,
              "no connected worker '" + worker_id.substr(0, 100) + "'");
    return;
  }
  const uint64_t held = s->in_flight.size();
  if (disconnect) {
    spdlog::info("worker {} disconnected by an admin ({} tasks requeued)",
                 worker_id, held);
    EndSession(s->id, "disconnected by an admin");
  } else {
    spdlog::info("worker {} drained by an admin ({} tasks in flight)",
                 worker_id, held);
    sessions_.Drain(*s);
  }
  wire::Envelope env;
  env.set_seq(seq);
  env.mutable_admin_ack()->set_affected(held);
  Send(peer, std::move(env));
}

}  // namespace tq
