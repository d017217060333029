// The task lifecycle (drawn in docs/lifecycle.md):
//
//   queued --lease--> leased --ok result--> done
//     ^                 |  \--failed/lost, attempts left--> retry_wait
//     --back-off--> queued |                 |  \--failed/lost, attempts used
//     up--> dead
//     +--released/------+
//        broker restart
//   queued/retry_wait --cancel/purge--> cancelled;  dead --retry-dead--> queued
#pragma once

#include <cstdint>
#include <string_view>

#include "tq.pb.h"

namespace tq {

enum class TaskState : uint8_t {
  kQueued = 0,
  kLeased = 1,
  kRetryWait = 2,
  kDone = 3,
  kDead = 4,
  kCancelled = 5,
};

static_assert(int(TaskState::kQueued) == wire::TASK_STATE_QUEUED);
static_assert(int(TaskState::kLeased) == wire::TASK_STATE_LEASED);
static_assert(int(TaskState::kRetryWait) == wire::TASK_STATE_RETRY_WAIT);
static_assert(int(TaskState::kDone) == wire::TASK_STATE_DONE);
static_assert(int(TaskState::kDead) == wire::TASK_STATE_DEAD);
static_assert(int(TaskState::kCancelled) == wire::TASK_STATE_CANCELLED);

inline bool IsTerminal(TaskState s) {
  return s == TaskState::kDone || s == TaskState::kDead ||
         s == TaskState::kCancelled;
}

inline std::string_view TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kQueued:
      return "queued";
    case TaskState::kLeased:
      return "leased";
    case TaskState::kRetryWait:
      return "retry_wait";
    case TaskState::kDone:
      return "done";
    case TaskState::kDead:
      return "dead";
    case TaskState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

inline wire::TaskState ToWire(TaskState s) {
  return static_cast<wire::TaskState>(s);
}

}  // namespace tq
