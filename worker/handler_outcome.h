// The top-level outcome of a run (docs/lifecycle.md, "Outcomes"): whether a
// handler that ran reached its target. The handler says so by its exit code
// (--exec: kExitTargetUnreachable) or by "outcome" (and "outcome_reason") in
// the JSON object it prints, as the built-in analyser does.
#pragma once

#include "worker/task_outcome.h"
#include "worker/worker.h"

namespace tq {

// Exit code of an --exec handler for "ran, but the target was unreachable":
// the task is done with outcome unreachable, not a failed attempt.
inline constexpr int kExitTargetUnreachable = 3;

// Sets o->outcome and o->outcome_reason of a finished run of `handler`
// (and, for exit code kExitTargetUnreachable of --exec, makes it ok).
// A failed run keeps no outcome; an ok one without a word gets "ok".
void ApplyHandlerOutcome(Handler handler, TaskOutcome* o);

}  // namespace tq
