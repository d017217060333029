// Writes fetched results and their files to a directory tree, for
// `tq-ctl results --out` and `tq-submit --wait --out`.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "tq/client.h"

namespace tq {

enum class OutLayout {
  // DIR/<task-id>/result.json and DIR/<task-id>/files/<name>.
  kTasks,
  // As Thug writes its log dir: DIR/<md5(url)>/<timestamp>/analysis/json/
  // analysis.json (the result output) with the files beside it.
  kThug,
};

// Parses "tasks" or "thug".
Result<OutLayout> ParseOutLayout(std::string_view name);

// `name` as a relative path that stays inside its directory: no empty, "."
// or ".." components, no leading '/', no NUL. "file" if nothing is left.
std::string SafeRelativePath(std::string_view name);

// Thug's timestamp directory name for a wall-clock time: YYYYMMDDHHMMSS, UTC.
std::string ThugTimestamp(int64_t wall_ms);

// Writes one result and its files under `dir` in `layout`. Files whose
// content did not come with the result (fetched without files) are skipped
// with an error. IoError says which path failed.
Status WriteResult(const std::string& dir, OutLayout layout,
                   const TaskResult& result);

}  // namespace tq
