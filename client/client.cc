#include "tq/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "client/channel.h"
#include "client/submit_plan.h"
#include "client/wire_convert.h"
#include "common/queue_name.h"
#include "common/result_wire.h"
#include "common/time_format.h"

namespace tq {
namespace {

using std::chrono::milliseconds;

constexpr uint32_t kWaitPageLimit = 1000;
constexpr milliseconds kMaxLongPoll{1000};
// How often FollowEvents looks at its stop flag, at the least.
constexpr milliseconds kStopCheck{200};
constexpr milliseconds kEventsLease{10'000};

ClusterEvent FromWire(const wire::Event& e) {
  ClusterEvent c;
  c.time_ms = e.time_ms();
  c.event = e.event();
  c.task_id = e.task_id();
  c.batch_id = e.batch_id();
  c.queue = e.queue();
  c.url = e.url();
  c.worker_id = e.worker_id();
  c.attempt = e.attempt();
  c.outcome = e.outcome();
  c.error = e.error();
  c.count = e.count();
  return c;
}

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

Result<std::vector<WorkerSummary>> Client::Workers(bool include_offline) {
  wire::Envelope request;
  request.mutable_list_workers()->set_include_offline(include_offline);
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

Result<BrokerStatus> Client::GetStatus() {
  wire::Envelope request;
  request.mutable_status_request();
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_broker_status()) return UnexpectedReply(*reply, "Status");
  const wire::BrokerStatus& w = reply->broker_status();
  BrokerStatus st;
  st.version = w.version();
  st.pid = w.pid();
  st.started_ms = w.started_ms();
  st.uptime_ms = w.uptime_ms();
  st.rss_bytes = w.rss_bytes();
  st.db_path = w.db_path();
  st.db_bytes = w.db_bytes();
  st.wal_bytes = w.wal_bytes();
  st.listen.assign(w.listen().begin(), w.listen().end());
  st.workers = w.workers();
  st.totals = ToBatchProgress(w.totals());
  st.batches = w.batches();
  st.stats = FromWire(w.stats());
  return st;
}

Result<BatchListing> Client::Batches(uint32_t limit, uint64_t before) {
  wire::Envelope request;
  request.mutable_list_batches()->set_limit(limit);
  request.mutable_list_batches()->set_before(before);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_batch_list()) return UnexpectedReply(*reply, "ListBatches");
  const wire::BatchList& w = reply->batch_list();
  BatchListing listing;
  for (const wire::BatchInfo& b : w.batches()) {
    BatchOverview& o = listing.batches.emplace_back();
    o.batch_id = b.batch_id();
    o.counts = ToBatchProgress(b.counts());
    o.created_ms = b.created_ms();
    o.submitter = b.submitter();
    o.seq = b.seq();
  }
  listing.next_before = w.next_before();
  listing.total = w.total();
  return listing;
}

Result<TaskReport> Client::Task(uint64_t task_id) {
  wire::Envelope request;
  request.mutable_task_request()->set_task_id(task_id);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_task_report()) return UnexpectedReply(*reply, "Task");
  const wire::TaskReport& w = reply->task_report();
  TaskReport r;
  r.task = FromWire(w.task());
  r.finished = w.task().finish_seq() != 0;
  r.options_json = w.options_json();
  r.priority = w.priority();
  r.max_attempts = w.max_attempts();
  r.time_limit_ms = w.time_limit_ms();
  r.not_before_ms = w.not_before_ms();
  r.leased = w.leased();
  if (w.leased()) r.lease = ToRunningTask(w.lease());
  return r;
}

Result<std::vector<RunningTask>> Client::Active(const std::string& batch_id,
                                                const std::string& queue,
                                                const std::string& worker) {
  wire::Envelope request;
  wire::ListActive* q = request.mutable_list_active();
  q->set_batch_id(batch_id);
  q->set_queue(queue);
  q->set_worker(worker);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_active_list()) return UnexpectedReply(*reply, "ListActive");
  std::vector<RunningTask> tasks;
  for (const auto& a : reply->active_list().tasks()) {
    tasks.push_back(ToRunningTask(a));
  }
  return tasks;
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

namespace tq {

std::string ToJsonLine(const ClusterEvent& e) {
  nlohmann::ordered_json j;
  j["time"] = FormatUtcMs(e.time_ms);
  j["event"] = e.event;
  if (e.task_id != 0) j["task_id"] = e.task_id;
  if (!e.batch_id.empty()) j["batch_id"] = e.batch_id;
  if (!e.queue.empty()) j["queue"] = e.queue;
  if (!e.url.empty()) j["url"] = e.url;
  if (!e.worker_id.empty()) j["worker"] = e.worker_id;
  if (e.attempt != 0) j["attempt"] = e.attempt;
  if (!e.outcome.empty()) j["outcome"] = e.outcome;
  if (!e.error.empty()) j["error"] = e.error;
  if (e.count != 0 || e.event == "submitted" || e.event == "missed") {
    j["count"] = e.count;
  }
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace);
}

Status Client::CancelTask(uint64_t task_id, bool terminate) {
  if (task_id == 0) return Status::InvalidArgument("task ids start at 1");
  wire::Envelope request;
  request.mutable_cancel_task()->set_task_id(task_id);
  request.mutable_cancel_task()->set_terminate(terminate);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_admin_ack()) return UnexpectedReply(*reply, "CancelTask");
  return Status::Ok();
}

Result<bool> Client::PauseQueue(const std::string& queue, bool paused) {
  if (Status s = ValidateQueueName(queue); !s.ok()) return s;
  wire::Envelope request;
  request.mutable_pause_queue()->set_queue(queue);
  request.mutable_pause_queue()->set_paused(paused);
  auto reply = impl_->channel->Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (!reply->has_admin_ack()) return UnexpectedReply(*reply, "PauseQueue");
  return reply->admin_ack().affected() > 0;
}

Status Client::FollowEvents(
    const EventFilter& filter,
    const std::function<bool(const ClusterEvent&)>& on_event,
    const std::function<bool()>& stop,
    const std::function<void()>& on_forgotten) {
  using Clock = std::chrono::steady_clock;
  Channel& channel = *impl_->channel;
  wire::Envelope subscribe;
  auto* sub = subscribe.mutable_subscribe();
  sub->set_batch_id(filter.batch_id);
  sub->set_queue(filter.queue);
  sub->set_worker_id(filter.worker_id);
  sub->set_lease_ms(uint32_t(kEventsLease.count()));

  milliseconds renew_every{0};
  uint64_t last = 0;  // the highest Events number seen
  auto subscribe_now = [&]() -> Status {
    auto reply = channel.Call(subscribe);
    if (!reply.ok()) return reply.status();
    if (!reply->has_subscribed()) return UnexpectedReply(*reply, "Subscribe");
    // Well within the lease: a lost renewal or two do not end it.
    renew_every = milliseconds(
        std::max<uint32_t>(reply->subscribed().lease_ms() / 4, 100));
    last = 0;
    return Status::Ok();
  };
  if (Status s = subscribe_now(); !s.ok()) return s;
  Clock::time_point renew_at = Clock::now() + renew_every;
  auto ack = [&]() -> Status {
    wire::Envelope a;
    a.mutable_events_ack()->set_number(last);
    renew_at = Clock::now() + renew_every;
    return channel.Post(std::move(a)).status();
  };
  auto unsubscribe = [&]() {
    wire::Envelope bye;
    bye.mutable_unsubscribe();
    (void)channel.Post(std::move(bye));
  };

  while (!(stop && stop())) {
    const auto now = Clock::now();
    if (now >= renew_at) {
      if (Status s = ack(); !s.ok()) return s;
    }
    const milliseconds wait =
        std::clamp(std::chrono::ceil<milliseconds>(renew_at - Clock::now()),
                   milliseconds(0), kStopCheck);
    auto got = channel.Receive(wait);
    if (!got.ok()) return got.status();
    if (!got->has_value()) continue;
    const wire::Envelope& msg = **got;
    if (msg.has_events()) {
      const wire::Events& events = msg.events();
      if (events.number() <= last) continue;  // a duplicate
      last = events.number();
      // Acknowledged first: the broker may prepare the next while we print.
      if (Status s = ack(); !s.ok()) return s;
      for (const wire::Event& e : events.events()) {
        if (!on_event(FromWire(e))) {
          unsubscribe();
          return Status::Ok();
        }
      }
    } else if (msg.has_error()) {
      if (msg.error().code() != wire::NOT_FOUND) {
        return StatusFromWireError(msg.error());
      }
      // The broker forgot us (restarted, or our lease ran out).
      if (on_forgotten) on_forgotten();
      if (Status s = subscribe_now(); !s.ok()) return s;
      renew_at = Clock::now() + renew_every;
    }
    // Anything else (a late reply to the Subscribe) is not ours to handle.
  }
  unsubscribe();
  return Status::Ok();
}

}  // namespace tq
