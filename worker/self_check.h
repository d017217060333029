// The worker's start-up self-check of its handler (#18): a worker that
// cannot run its tasks refuses to join instead of failing every task it
// takes. `tq-worker --check` runs the same checks, and optionally one probe
// task through the handler, and prints a verdict (for service units).
#pragma once

#include <cstdio>
#include <string>

#include "common/status.h"
#include "worker/worker.h"

namespace tq {

// Where `program` runs from: itself if it holds a '/', else the first
// executable regular file of that name in `path` (':'-separated; an empty
// entry is the current directory). NotFound naming the program and the
// PATH, or InvalidArgument if it exists but cannot be executed.
Result<std::string> ResolveProgram(const std::string& program,
                                   const std::string& path);

// $PATH, or the system's default search path when it is unset.
std::string SearchPath();

// The static checks of the handler `options` names: --exec's program
// resolves and is executable; --analyse's fetcher starts (libcurl
// initialises) and the work dir is writable. Ok for --noop.
Status CheckHandler(const WorkerOptions& options);

// `tq-worker --check`: CheckHandler, then, with `probe_url`, one task of
// that URL through the handler (which must succeed with outcome ok, within
// `time_limit`). Prints one line per check and a verdict on `out`; returns
// the exit status, 0 (pass) or 2.
int RunSelfCheck(const WorkerOptions& options, const std::string& probe_url,
                 Millis time_limit, std::FILE* out);

}  // namespace tq
