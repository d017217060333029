// Wire messages -> the public structs of tq/client.h (results and stats:
// common/result_wire.h).
#pragma once

#include "tq.pb.h"
#include "tq/client.h"

namespace tq {

BatchProgress ToBatchProgress(const wire::BatchCounts& counts);
QueueSummary ToQueueSummary(const wire::QueueInfo& info);
WorkerSummary ToWorkerSummary(const wire::WorkerInfo& info);
RunningTask ToRunningTask(const wire::ActiveTask& task);

}  // namespace tq
