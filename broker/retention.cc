// The retention sweep (tq-broker --keep-results): finished tasks older than
// keep_results are deleted in bounded steps, one per loop turn at most, and
// the stored files no kept result references go one step later, once the
// deletion that freed them has been committed and synced.
#include <spdlog/spdlog.h>

#include "broker/broker.h"

namespace tq {

void Broker::Sweep(TimePoint now) {
  const Millis interval =
      std::min<Millis>(options_.keep_results, Millis(60'000));
  next_sweep_ = now + interval;
  if (!sweep_candidates_.empty()) {
    Result<uint64_t> removed =
        store_.RemoveUnreferencedFiles(sweep_candidates_);
    if (!removed.ok()) {
      spdlog::warn("retention: {}", removed.status().message());
    } else if (*removed > 0) {
      spdlog::info("retention: removed {} unreferenced files", *removed);
    }
    sweep_candidates_.clear();
  }
  auto expired = store_.LoadExpired(
      clock_.WallMs() - options_.keep_results.count(), options_.sweep_batch);
  if (!expired.ok()) {
    spdlog::warn("retention: {}", expired.status().message());
    return;
  }
  if (expired->empty()) return;
  std::vector<uint64_t> ids;
  ids.reserve(expired->size());
  for (const ExpiredTask& e : *expired) ids.push_back(e.id);
  auto digests = store_.DeleteFinished(ids);
  if (!digests.ok()) return OnStoreFailure(digests.status());
  for (const ExpiredTask& e : *expired) {
    tasks_.UncountFinished(e.batch_id, e.queue, e.state, e.outcome);
  }
  sweep_candidates_ = std::move(*digests);
  spdlog::info("retention: deleted {} results older than {}", ids.size(),
               FormatSeconds(options_.keep_results));
  // More may be due: continue soon, in bounded steps, after this one's
  // commit has been synced (a step's files go at the next step).
  if (expired->size() >= options_.sweep_batch || !sweep_candidates_.empty()) {
    next_sweep_ = std::min(next_sweep_, now + Millis(200));
  }
}

}  // namespace tq
