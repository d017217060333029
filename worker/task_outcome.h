// What a handler reports when a task's run ends: the shared attempt result
// (tq/task_result.h) of one task; the protocol core sends it as a wire Result.
#pragma once

#include <cstdint>

#include "tq/task_result.h"

namespace tq {

struct TaskOutcome : AttemptResult {
  uint64_t task_id = 0;
};

}  // namespace tq
