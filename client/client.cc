#include "tq/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/channel.h"
#include "client/submit_plan.h"
#include "client/wire_convert.h"
#include "common/queue_name.h"
#include "common/result_wire.h"

namespace tq {
namespace {

using std::chrono::milliseconds;

constexpr uint32_t kWaitPageLimit = 1000;
constexpr milliseconds kMaxLongPoll{1000};

Status UnexpectedReply(const wire::Envelope& reply, const char* wanted) {
  return Status::Internal(std::string("broker answered ") + wanted +
                          " with body case " +
                          std::to_string(static_cast<int>(reply.body_case())));
}

}  // namespace

struct Client::Impl {
  std::unique_ptr<Channel> channel;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto channel = Channel::Open(options);
  if (!channel.ok()) return channel.status();
  auto impl = std::make_unique<Impl>();
  impl->channel = std::move(channel).value();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<SubmitReceipt> Client::Submit(const std::vector<std::string>& urls,
                                     const SubmitOptions& options) {
  std::string batch_id =
      options.batch_id.empty() ? NewBatchId() : options.batch_id;
  auto plan = PlanSubmit(urls, options, batch_id);
  if (!plan.ok()) return plan.status();

  SubmitReceipt receipt;
  receipt.batch_id = batch_id;
  receipt.total = plan->total;
  receipt.errors = plan->local_errors;
  const size_t num_queues = options.queues.size();
  // Resending a chunk is safe: the broker dedups by (batch_id, index).
  Status s = impl_->channel->CallPipelined(
      plan->chunks, kSubmitWindow, milliseconds(0),
      [&](size_t, const wire::Envelope& reply) -> Status {
        if (!reply.has_submit_ack()) return UnexpectedReply(reply, "Submit");
        const auto& ack = reply.submit_ack();
        receipt.accepted += ack.accepted();
        receipt.duplicates += ack.duplicates();
        for (const auto& e : ack.errors()) {
          if (e.index() >= receipt.total) {
            return Status::Internal("broker reported an error for item " +
                                    std::to_string(e.index()) +
                                    " of a batch of " +
                                    std::to_string(receipt.total));
          }
          ItemLocation at = LocateItem(e.index(), num_queues);
          receipt.errors.push_back(
              {at.url_index, options.queues[at.queue_index], e.reason()});
        }
        return Status::Ok();
      });
  if (!s.ok()) return s;
  std::sort(receipt.errors.begin(), receipt.errors.end(),
            [](const SubmitItemError& a, const SubmitItemError& b) {
              return a.url_index < b.url_index;
            });
  return receipt;
}

Result<ResultPage> Client::FetchResults(const std::string& batch_id,
                                        uint64_t after, uint32_t limit,
                                        milliseconds wait, bool with_files) {
  if (Status s = ValidateBatchId(batch_id); !s.ok()) return s;
  wait = std::max(wait, milliseconds(0));
  wire::Envelope request;
  auto* fetch = request.mutable_fetch_results();
  fetch->set_batch_id(batch_id);
  fetch->set_after(after);
  fetch->set_limit(limit);
  fetch->set_with_files(with_files);
  fetch->set_wait_ms(static_cast<uint32_t>(
      std::min<int64_t>(wait.count(), std::numeric_limits<uint32_t>::max())));
  // The broker may hold the request for `wait` before answering.
  auto reply = impl_->channel->Call(std::move(request), wait);
  if (!reply.ok()) return reply.status();
  if (!reply->has_results()) return UnexpectedReply(*reply, "FetchResults");
  const auto& results = reply->results();
  ResultPage page;
  page.results.reserve(results.tasks_size());
  for (const auto& t : results.tasks()) page.results.push_back(FromWire(t));
  page.cursor = std::max(results.cursor(), after);
  page.progress = ToBatchProgress(results.counts());
  return page;
}

Status Client::WaitForResults(
    const std::string& batch_id,
    const std::function<bool(const TaskResult&)>& on_result,
    const std::function<void(const BatchProgress&)>& on_progress,
    milliseconds deadline, bool with_files) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  // Saturate: "no deadline" callers pass huge values.
  const Clock::time_point end =
      deadline >= std::chrono::duration_cast<milliseconds>(
                      Clock::time_point::max() - start)
          ? Clock::time_point::max()
          : start + deadline;
  uint64_t cursor = 0;
  for (;;) {
    auto remaining =
        std::chrono::duration_cast<milliseconds>(end - Clock::now());
    if (remaining <= milliseconds(0)) {
      return Status::Unavailable("batch " + batch_id + " not complete after " +
                                 FormatDuration(deadline));
    }
    auto page = FetchResults(batch_id, cursor, kWaitPageLimit,
                             std::min(remaining, kMaxLongPoll), with_files);
    if (!page.ok()) return page.status();
    for (const auto& r : page->results) {
      if (!on_result(r)) return Status::Ok();
    }
    const bool moved = page->cursor > cursor;
    cursor = page->cursor;
    if (on_progress) on_progress(page->progress);
    // Pages are cut by size as well as by count, so a short page does not
    // mean the end even when the counts say done: only a page that brings
    // nothing new does.
    if (page->progress.complete() && (page->results.empty() || !moved)) {
      return Status::Ok();
    }
    if (!page->results.empty() && !moved) {
      // Asking again would bring the same results back, forever.
      return Status::Internal("broker sent results of batch " + batch_id +
                              " without moving the cursor past " +
                              std::to_string(cursor));
    }
  }
}

Result<BatchProgress> Client::Progress(const std::string& batch_id) {
  if (Status s = ValidateBatchId(batch_id); !s.ok()) return s;
  wire::Envelope request;
  request.mutable_batch_status_request()->set_batch_id(batch_id);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_batch_status()) return UnexpectedReply(*reply, "BatchStatus");
  return ToBatchProgress(reply->batch_status().counts());
}

Result<uint64_t> Client::Cancel(const std::string& batch_id) {
  if (Status s = ValidateBatchId(batch_id); !s.ok()) return s;
  wire::Envelope request;
  request.mutable_cancel_batch()->set_batch_id(batch_id);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_admin_ack()) return UnexpectedReply(*reply, "CancelBatch");
  return reply->admin_ack().affected();
}

Result<std::vector<QueueSummary>> Client::Queues(BrokerStats* counters) {
  wire::Envelope request;
  request.mutable_list_queues();
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_queue_list()) return UnexpectedReply(*reply, "ListQueues");
  const auto& list = reply->queue_list();
  std::vector<QueueSummary> queues;
  for (const auto& q : list.queues()) queues.push_back(ToQueueSummary(q));
  if (counters != nullptr) {
    *counters = list.has_stats() ? FromWire(list.stats()) : BrokerStats{};
  }
  return queues;
}

Result<std::vector<WorkerSummary>> Client::Workers() {
  wire::Envelope request;
  request.mutable_list_workers();
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_worker_list()) return UnexpectedReply(*reply, "ListWorkers");
  std::vector<WorkerSummary> workers;
  for (const auto& w : reply->worker_list().workers()) {
    workers.push_back(ToWorkerSummary(w));
  }
  return workers;
}

Result<uint64_t> Client::RetryDead(const std::string& batch_id,
                                   const std::string& queue) {
  if (batch_id.empty() == queue.empty()) {
    return Status::InvalidArgument("give either a batch id or a queue");
  }
  if (!batch_id.empty()) {
    if (Status s = ValidateBatchId(batch_id); !s.ok()) return s;
  } else if (Status s = ValidateQueueName(queue); !s.ok()) {
    return s;
  }
  wire::Envelope request;
  auto* retry = request.mutable_retry_dead();
  retry->set_batch_id(batch_id);
  retry->set_queue(queue);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_admin_ack()) return UnexpectedReply(*reply, "RetryDead");
  return reply->admin_ack().affected();
}

Status Client::ReleaseWorker(const std::string& worker_id) {
  if (worker_id.empty()) return Status::InvalidArgument("give a worker id");
  wire::Envelope request;
  request.mutable_release_worker()->set_worker_id(worker_id);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_admin_ack()) return UnexpectedReply(*reply, "ReleaseWorker");
  return Status::Ok();
}

Result<KeysReload> Client::ReloadKeys() {
  wire::Envelope request;
  request.mutable_reload_keys();
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_keys_reloaded()) {
    return UnexpectedReply(*reply, "ReloadKeys");
  }
  const wire::KeysReloaded& r = reply->keys_reloaded();
  KeysReload out;
  out.keys = r.keys();
  out.added.assign(r.added().begin(), r.added().end());
  out.removed.assign(r.removed().begin(), r.removed().end());
  out.changed.assign(r.changed().begin(), r.changed().end());
  out.revoked.assign(r.revoked().begin(), r.revoked().end());
  out.sessions_ended = r.sessions_ended();
  out.problems.assign(r.problems().begin(), r.problems().end());
  return out;
}

Result<uint64_t> Client::Purge(const std::string& queue) {
  if (Status s = ValidateQueueName(queue); !s.ok()) return s;
  wire::Envelope request;
  request.mutable_purge_queue()->set_queue(queue);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_admin_ack()) return UnexpectedReply(*reply, "PurgeQueue");
  return reply->admin_ack().affected();
}

}  // namespace tq
