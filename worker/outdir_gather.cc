#include "worker/outdir_gather.h"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

#include "analyser/content_info.h"
#include "worker/utf8.h"

namespace tq {
namespace {

namespace fs = std::filesystem;

bool ReadAll(const fs::path& p, size_t cap, std::string* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out->assign(cap, '\0');
  in.read(out->data(), static_cast<std::streamsize>(cap));
  out->resize(static_cast<size_t>(in.gcount()));
  return true;
}

// Streams the file through SHA-256 so a large one is never held whole.
std::string Sha256OfFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return "";
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(64 * 1024);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) {
      EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    hex += kDigits[md[i] >> 4];
    hex += kDigits[md[i] & 0xf];
  }
  return hex;
}

bool IsValidUtf8Text(const std::string& s) {
  if (s.find('\0') != std::string::npos) return false;
  return SanitizeUtf8(s) == s;
}

}  // namespace

std::string Base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(data[i]) << 16) |
                       (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < data.size()) {
    uint32_t n = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) n |= static_cast<unsigned char>(data[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

// The regular files under `dir` (symlinks not followed), sorted so the
// report does not depend on directory order.
std::vector<fs::path> ListFiles(const std::string& dir, size_t max_files,
                                bool* too_many) {
  std::vector<fs::path> paths;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  *too_many = false;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    if (paths.size() >= max_files) {
      *too_many = true;
      break;
    }
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace

nlohmann::json GatherOutdirFiles(const std::string& dir,
                                 const AttachLimits& limits,
                                 std::vector<ResultFile>* files) {
  nlohmann::json result = {{"files", nlohmann::json::array()}};
  nlohmann::json errors = nlohmann::json::array();
  bool too_many = false;
  const std::vector<fs::path> paths =
      ListFiles(dir, limits.max_files, &too_many);
  size_t attached = 0;
  bool analysis_found = false;
  std::error_code ec;
  for (const auto& p : paths) {
    const std::string name = fs::relative(p, dir, ec).generic_string();
    const uintmax_t size = fs::file_size(p, ec);
    if (ec) {
      result["files"].push_back({{"name", name}, {"error", "unreadable"}});
      continue;
    }
    std::string why;
    if (size > limits.max_file_bytes) {
      why = name + " (" + std::to_string(size) +
            " bytes) is larger than the per-file cap of " +
            std::to_string(limits.max_file_bytes) + " bytes: not sent";
    } else if (attached + size > limits.max_total_bytes) {
      why = name + " (" + std::to_string(size) + " bytes) would exceed the " +
            "per-task cap of " + std::to_string(limits.max_total_bytes) +
            " bytes: not sent";
    }
    if (!why.empty()) {
      result["files"].push_back({{"name", name},
                                 {"size", size},
                                 {"sha256", Sha256OfFile(p)},
                                 {"error", why}});
      errors.push_back(why);
      continue;
    }
    std::string data;
    if (!ReadAll(p, static_cast<size_t>(size), &data)) {
      result["files"].push_back({{"name", name}, {"error", "unreadable"}});
      continue;
    }
    attached += data.size();
    const std::string sha = Sha256Hex(data);
    result["files"].push_back({{"name", name},
                               {"size", data.size()},
                               {"sha256", sha},
                               {"mimetype", SniffMime(data)},
                               {"attached", true}});
    if (!analysis_found && p.filename() == "analysis.json") {
      auto parsed = nlohmann::json::parse(data, nullptr, false);
      if (!parsed.is_discarded()) {
        result["analysis"] = std::move(parsed);
        result["analysis_file"] = name;
        analysis_found = true;
      }
    }
    files->push_back(ResultFile{name, sha, data.size(), std::move(data)});
  }
  if (too_many) {
    result["files_omitted"] =
        "more than " + std::to_string(limits.max_files) + " files";
  }
  if (!errors.empty()) result["file_errors"] = std::move(errors);
  return result;
}

nlohmann::json GatherOutdir(const std::string& dir,
                            const GatherLimits& limits) {
  nlohmann::json result = {{"files", nlohmann::json::array()}};
  bool too_many = false;
  const std::vector<fs::path> paths =
      ListFiles(dir, limits.max_files, &too_many);
  std::error_code ec;
  size_t embedded = 0;
  bool analysis_found = false;
  for (const auto& p : paths) {
    const std::string name = fs::relative(p, dir, ec).generic_string();
    const uintmax_t size = fs::file_size(p, ec);
    if (ec) {
      result["files"].push_back({{"name", name}, {"error", "unreadable"}});
      continue;
    }
    if (size > limits.max_file_bytes) {
      result["files"].push_back(
          {{"name", name},
           {"size", size},
           {"sha256", Sha256OfFile(p)},
           {"content_omitted", "larger than the per-file cap of " +
                                   std::to_string(limits.max_file_bytes) +
                                   " bytes"}});
      continue;
    }
    std::string data;
    if (!ReadAll(p, static_cast<size_t>(size), &data)) {
      result["files"].push_back({{"name", name}, {"error", "unreadable"}});
      continue;
    }
    nlohmann::json entry = {{"name", name},
                            {"size", data.size()},
                            {"sha256", Sha256Hex(data)},
                            {"mimetype", SniffMime(data)}};
    if (embedded + data.size() > limits.max_total_bytes) {
      entry["content_omitted"] = "the per-task cap of " +
                                 std::to_string(limits.max_total_bytes) +
                                 " bytes is reached";
    } else {
      embedded += data.size();
      if (IsValidUtf8Text(data)) {
        entry["encoding"] = "utf-8";
        entry["content"] = data;
      } else {
        entry["encoding"] = "base64";
        entry["content"] = Base64(data);
      }
    }
    if (!analysis_found && p.filename() == "analysis.json") {
      auto parsed = nlohmann::json::parse(data, nullptr, false);
      if (!parsed.is_discarded()) {
        result["analysis"] = std::move(parsed);
        result["analysis_file"] = name;
        analysis_found = true;
        entry.erase("content");  // already there, parsed
        entry.erase("encoding");
        entry["content_in"] = "analysis";
      }
    }
    result["files"].push_back(std::move(entry));
  }
  if (too_many) {
    result["files_omitted"] =
        "more than " + std::to_string(limits.max_files) + " files";
  }
  return result;
}

std::string ExecReport(const TaskOutcome& outcome, nlohmann::json gathered) {
  nlohmann::json doc = {
      {"exit_code", outcome.exit_code},
      {"duration_ms", outcome.duration_ms},
      {"stdout", SanitizeUtf8(outcome.output)},
      {"stdout_truncated", outcome.output_truncated},
      {"stderr_tail", outcome.stderr_tail},
  };
  if (!outcome.error.empty()) doc["error"] = outcome.error;
  for (auto& [k, v] : gathered.items()) doc[k] = std::move(v);
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tq
