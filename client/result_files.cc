#include "client/result_files.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/digest.h"

namespace tq {
namespace {

namespace fs = std::filesystem;

Status WriteBytes(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) {
    return Status::IoError("cannot create " + path.parent_path().string() +
                           ": " + ec.message());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::IoError("cannot write " + path.string());
  return Status::Ok();
}

std::vector<std::string> SafeComponents(std::string_view name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string_view::npos) end = name.size();
    std::string part(name.substr(start, end - start));
    std::erase(part, '\0');
    if (!part.empty() && part != "." && part != "..") parts.push_back(part);
    start = end + 1;
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out.empty() ? "file" : out;
}

}  // namespace

Result<OutLayout> ParseOutLayout(std::string_view name) {
  if (name == "tasks") return OutLayout::kTasks;
  if (name == "thug") return OutLayout::kThug;
  return Status::InvalidArgument("unknown layout '" + std::string(name) +
                                 "' (tasks or thug)");
}

std::string SafeRelativePath(std::string_view name) {
  return Join(SafeComponents(name), 0);
}

std::string ThugTimestamp(int64_t wall_ms) {
  const std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

Status WriteResult(const std::string& dir, OutLayout layout,
                   const TaskResult& result) {
  fs::path base;
  fs::path files_dir;
  if (layout == OutLayout::kTasks) {
    base = fs::path(dir) / std::to_string(result.task_id);
    files_dir = base / "files";
    if (Status s = WriteBytes(base / "result.json", ToJsonLine(result) + "\n");
        !s.ok()) {
      return s;
    }
  } else {
    base = fs::path(dir) / DigestMd5(result.url) /
           ThugTimestamp(result.finished_ms);
    files_dir = base;
  }
  Status first_error;
  for (const ResultFile& f : result.files) {
    std::vector<std::string> parts = SafeComponents(f.name);
    // Thug names what it saves <md5>/<timestamp>/...: under our own
    // <md5(url)>/<timestamp> that prefix would repeat.
    size_t from = layout == OutLayout::kThug && parts.size() >= 3 ? 2 : 0;
    const std::string rel = Join(parts, from);
    if (layout == OutLayout::kThug && rel == "analysis/json/analysis.json") {
      continue;  // the result output takes its place
    }
    Status s;
    if (f.content.size() != f.size) {
      s = Status::Unavailable("task " + std::to_string(result.task_id) +
                              ": content of " + f.name + " not available");
    } else {
      s = WriteBytes(files_dir / rel, f.content);
    }
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  if (layout == OutLayout::kThug) {
    Status s =
        WriteBytes(base / "analysis" / "json" / "analysis.json", result.output);
    if (!s.ok()) return s;
  }
  return first_error;
}

}  // namespace tq
