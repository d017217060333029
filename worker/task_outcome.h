// What a handler reports when a task's run ends; the protocol core turns it
// into a wire Result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tq {

// A file the handler wrote into its {outdir}, sent with the result.
struct OutputFile {
  std::string name;  // relative to the outdir, '/'-separated
  std::string content;
  std::string sha256;
};

struct TaskOutcome {
  uint64_t task_id = 0;
  bool ok = false;
  std::string output;  // stdout, at most --max-output bytes
  bool output_truncated = false;
  std::string error;        // why the attempt failed; empty when ok
  int32_t exit_code = 0;    // -1 when killed by a signal or the time limit
  std::string stderr_tail;  // valid UTF-8, at most kStderrTailBytes
  uint32_t duration_ms = 0;
  std::vector<OutputFile> files;
};

}  // namespace tq
