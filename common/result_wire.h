// The result model (tq/task_result.h) to and from the wire, in one place:
// the worker's Result, the broker's TaskInfo and BrokerStats.
#pragma once

#include "tq.pb.h"
#include "tq/task_result.h"

namespace tq {

// The attempt's fields of a Result (task id, token and credit are the
// caller's). Moves the strings and file contents out of `result`.
void ToWire(AttemptResult&& result, wire::Result* out);
// Everything but the worker, which the broker knows from the session.
AttemptResult FromWire(const wire::Result& result);

void ToWire(TaskResult&& result, wire::TaskInfo* out);
// state becomes its lower-case name; out-of-range values (a newer broker)
// show as "unknown".
TaskResult FromWire(const wire::TaskInfo& info);

void ToWire(const BrokerStats& stats, wire::BrokerStats* out);
BrokerStats FromWire(const wire::BrokerStats& stats);

}  // namespace tq
