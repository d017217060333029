// One task as the views show it (tq-ctl task, the console's task page): its
// row, its submission and, once finished, its result. Filled by
// broker/read_model.cc; no SQLite types here, so the TaskStore interface
// hands it to the core.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/task_state.h"
#include "tq/task_result.h"

namespace tq {

struct TaskRow {
  uint64_t task_id = 0;
  std::string batch_id;
  uint32_t index = 0;
  std::string queue;
  std::string url;
  TaskState state = TaskState::kQueued;
  uint32_t attempts = 0;
  std::string worker;
  std::optional<bool> ok;  // set once finished
  std::string error;       // the last attempt's error, or the last error seen
  int64_t submitted_ms = 0;
  int64_t started_ms = 0;   // 0: never started
  int64_t finished_ms = 0;  // 0: not finished
  uint32_t duration_ms = 0;
};

struct TaskDetail {
  TaskRow row;
  int32_t priority = 0;
  uint32_t max_attempts = 0;
  uint32_t time_limit_ms = 0;
  std::string options_json;  // as submitted, "{}" for none
  int64_t not_before_ms = 0;
  // The last attempt's result (files without content), when finished.
  std::optional<TaskResult> result;
  // Every ended attempt written with the result (tasks.history): set once
  // the task finished; a pending task's are in the broker's memory.
  std::vector<AttemptRecord> history;
};

}  // namespace tq
