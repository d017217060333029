// How a Submit call becomes wire messages: item numbering, chunking, and
// mapping the broker's per-item errors back to (url, queue). No sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tq.pb.h"
#include "tq/client.h"

namespace tq {

// Limits on one Submit message. The byte budget keeps chunks far below
// kMaxMessageBytes even with maximal URLs and many task options.
inline constexpr size_t kMaxItemsPerChunk = 1000;
inline constexpr size_t kMaxChunkBytes = 4 * 1024 * 1024;
// Submit messages awaiting their SubmitAck at once.
inline constexpr size_t kSubmitWindow = 16;

// Items are numbered url-major: url i on queue j (of n queues) is item
// i * n + j. Stable numbering is what lets the broker dedup a re-submit.
inline uint64_t ItemIndex(size_t url_index, size_t queue_index,
                          size_t num_queues) {
  return static_cast<uint64_t>(url_index) * num_queues + queue_index;
}

struct ItemLocation {
  size_t url_index = 0;
  size_t queue_index = 0;
};
inline ItemLocation LocateItem(uint64_t index, size_t num_queues) {
  return {static_cast<size_t>(index / num_queues),
          static_cast<size_t>(index % num_queues)};
}

struct SubmitPlan {
  std::string batch_id;
  uint64_t total = 0;
  std::vector<wire::Envelope> chunks;  // each with a Submit body
  // Items not sent because no message could carry them.
  std::vector<SubmitItemError> local_errors;
};

// Checks the batch id and queue names and splits urls x queues into Submit
// messages of at most kMaxItemsPerChunk items and about kMaxChunkBytes.
// batch_id must already be chosen (options.batch_id is ignored).
Result<SubmitPlan> PlanSubmit(const std::vector<std::string>& urls,
                              const SubmitOptions& options,
                              const std::string& batch_id);

}  // namespace tq
