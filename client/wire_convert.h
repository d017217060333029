// Wire messages -> the public structs of tq/client.h.
#pragma once

#include "tq.pb.h"
#include "tq/client.h"

namespace tq {

BatchProgress ToBatchProgress(const wire::BatchCounts& counts);
// state becomes its lower-case name: done, dead, cancelled, queued, leased,
// retry_wait.
TaskResult ToTaskResult(const wire::TaskInfo& info);
QueueSummary ToQueueSummary(const wire::QueueInfo& info);
BrokerCounters ToBrokerCounters(const wire::BrokerStats& stats);
WorkerSummary ToWorkerSummary(const wire::WorkerInfo& info);

}  // namespace tq
