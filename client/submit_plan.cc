#include "client/submit_plan.h"

#include <set>

#include "common/queue_name.h"

namespace tq {
namespace {

// Protobuf framing per item/field, generously rounded up.
constexpr size_t kItemOverheadBytes = 24;
constexpr size_t kChunkOverheadBytes = 256;

}  // namespace

Result<SubmitPlan> PlanSubmit(const std::vector<std::string>& urls,
                              const SubmitOptions& options,
                              const std::string& batch_id) {
  if (Status s = ValidateBatchId(batch_id); !s.ok()) return s;
  if (urls.empty()) return Status::InvalidArgument("no URLs to submit");
  if (options.queues.empty()) return Status::InvalidArgument("no queues given");
  std::set<std::string> seen;
  for (const auto& q : options.queues) {
    if (Status s = ValidateQueueName(q); !s.ok()) return s;
    if (!seen.insert(q).second) {
      return Status::InvalidArgument("queue '" + q + "' is listed twice");
    }
  }
  const size_t num_queues = options.queues.size();
  // Item indexes are uint32 on the wire.
  if (urls.size() > (uint64_t{1} << 32) / num_queues) {
    return Status::InvalidArgument(
        "too many items for one batch: " + std::to_string(urls.size()) +
        " URLs x " + std::to_string(num_queues) + " queues");
  }

  size_t options_bytes = kChunkOverheadBytes + batch_id.size();
  for (const auto& [k, v] : options.task_options) {
    options_bytes += k.size() + v.size() + kItemOverheadBytes;
  }
  if (options_bytes > kMaxChunkBytes / 2) {
    return Status::InvalidArgument("task options are " +
                                   std::to_string(options_bytes) +
                                   " bytes; too large to send");
  }

  SubmitPlan plan;
  plan.batch_id = batch_id;
  plan.total = static_cast<uint64_t>(urls.size()) * num_queues;

  wire::Submit* current = nullptr;
  size_t current_bytes = 0;
  auto start_chunk = [&]() {
    plan.chunks.emplace_back();
    current = plan.chunks.back().mutable_submit();
    current->set_batch_id(batch_id);
    current->set_priority(options.priority);
    current->set_max_attempts(options.max_attempts);
    current->set_time_limit_ms(options.time_limit_ms);
    for (const auto& [k, v] : options.task_options) {
      (*current->mutable_options())[k] = v;
    }
    current_bytes = options_bytes;
  };

  for (size_t i = 0; i < urls.size(); ++i) {
    for (size_t j = 0; j < num_queues; ++j) {
      const std::string& url = urls[i];
      const std::string& queue = options.queues[j];
      size_t item_bytes = url.size() + queue.size() + kItemOverheadBytes;
      if (options_bytes + item_bytes > kMaxChunkBytes) {
        plan.local_errors.push_back({i, queue,
                                     "URL is " + std::to_string(url.size()) +
                                         " bytes long; too large to submit"});
        continue;
      }
      if (current == nullptr ||
          static_cast<size_t>(current->items_size()) >= kMaxItemsPerChunk ||
          current_bytes + item_bytes > kMaxChunkBytes) {
        start_chunk();
      }
      wire::SubmitItem* item = current->add_items();
      item->set_index(static_cast<uint32_t>(ItemIndex(i, j, num_queues)));
      item->set_url(url);
      item->set_queue(queue);
      current_bytes += item_bytes;
    }
  }
  return plan;
}

}  // namespace tq
