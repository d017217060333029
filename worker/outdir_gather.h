// What an --exec tool (Thug, say) wrote into its {outdir}, gathered into the
// task's JSON output with its stdout, stderr tail, exit code and time taken.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/task_outcome.h"

namespace tq {

struct GatherLimits {
  size_t max_file_bytes = 256 * 1024;   // larger files are listed, not embedded
  size_t max_total_bytes = 512 * 1024;  // content embedded per task
  size_t max_files = 1000;
};

// Lists the regular files under `dir` (symlinks are not followed) with their
// relative name, size and sha256; embeds their content (UTF-8 text as is,
// anything else base64) within the limits, saying why where it does not; the
// first analysis.json found (Thug's JSON log) is also parsed into
// "analysis".
nlohmann::json GatherOutdir(const std::string& dir, const GatherLimits& limits);

// Caps on the files sent with a result (Result.files): a Result must stay
// under the 16 MiB message cap with its output.
struct AttachLimits {
  size_t max_file_bytes = 8 * 1024 * 1024;
  size_t max_total_bytes = 12 * 1024 * 1024;
  size_t max_files = 1000;
};

// Like GatherOutdir, but the files' content goes into `files` (to be sent
// with the result) instead of the JSON, which lists each file's name, size,
// sha256 and mimetype with "attached": true. A file over a cap is listed
// with an "error" saying which cap, and that message is also collected in
// "file_errors". analysis.json is still parsed into "analysis".
nlohmann::json GatherOutdirFiles(const std::string& dir,
                                 const AttachLimits& limits,
                                 std::vector<ResultFile>* files);

// The JSON document that replaces a run's stdout when it had an {outdir}.
std::string ExecReport(const TaskOutcome& outcome, nlohmann::json gathered);

std::string Base64(std::string_view data);

}  // namespace tq
