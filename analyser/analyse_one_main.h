// `tq-worker --analyse-one URL`: the child the worker starts per task for
// the built-in analyser. It prints the JSON log on stdout and exits.
#pragma once

#include <cstdint>
#include <string>

namespace tq {

// Exit code of `tq-worker --analyse-one` for a network error that the
// submitter asked to count as a failed attempt (retry_on_network_error=1).
inline constexpr int kExitAnalyseNetworkError = 3;

// Analyses `url` with the task's options (`options_json`, a JSON object of
// strings) and time limit, prints the log (at most `max_output` bytes with
// its newline) on stdout and returns the process's exit code: 0, 2 for bad
// options, or kExitAnalyseNetworkError.
int AnalyseOneMain(const std::string& url, const std::string& options_json,
                   uint32_t time_limit_ms, uint64_t max_output);

}  // namespace tq
