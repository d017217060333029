#include "client/result_json.h"

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "tq/client.h"

namespace tq {

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, or > F4
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(bytes[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    if (cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                 (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<nlohmann::ordered_json> ParseJsonOutput(std::string_view output) {
  // Objects and arrays only: `echo 42` or `echo true` stay text.
  size_t start = output.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return std::nullopt;
  if (output[start] != '{' && output[start] != '[') return std::nullopt;
  auto parsed = nlohmann::ordered_json::parse(output, nullptr,
                                              /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

std::string ToJsonLine(const TaskResult& r) {
  // ordered_json keeps the documented key order, which reads better in a
  // terminal and diffs.
  nlohmann::ordered_json j;
  j["task_id"] = r.task_id;
  j["batch_id"] = r.batch_id;
  j["index"] = r.index;
  j["url"] = r.url;
  j["queue"] = r.queue;
  j["status"] = r.state;
  j["ok"] = r.ok;
  if (!r.outcome.empty()) j["outcome"] = r.outcome;
  if (!r.outcome_reason.empty()) j["outcome_reason"] = r.outcome_reason;
  j["attempts"] = r.attempts;
  j["worker"] = r.worker;
  j["duration_ms"] = r.duration_ms;
  if (!IsValidUtf8(r.output)) {
    j["output_base64"] = Base64Encode(r.output);
  } else if (auto parsed = r.output_truncated ? std::nullopt
                                              : ParseJsonOutput(r.output)) {
    j["result"] = std::move(*parsed);
  } else {
    j["result"] = r.output;
  }
  if (r.output_truncated) j["output_truncated"] = true;
  if (!r.error.empty()) j["error"] = r.error;
  j["exit_code"] = r.exit_code;
  if (!r.stderr_tail.empty()) j["stderr_tail"] = r.stderr_tail;
  j["submitted"] = FormatUtcMs(r.submitted_ms);
  j["finished"] = FormatUtcMs(r.finished_ms);
  j["submitted_ms"] = r.submitted_ms;
  j["finished_ms"] = r.finished_ms;
  if (!r.files.empty()) {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const ResultFile& f : r.files) {
      nlohmann::ordered_json e;
      e["name"] = f.name;
      e["sha256"] = f.sha256;
      e["size"] = f.size;
      files.push_back(std::move(e));
    }
    j["files"] = std::move(files);
  }
  if (!r.history.empty()) {
    nlohmann::ordered_json history = nlohmann::ordered_json::array();
    for (const AttemptRecord& a : r.history) {
      nlohmann::ordered_json e;
      e["attempt"] = a.attempt;
      e["worker"] = a.worker;
      e["ok"] = a.ok;
      if (!a.outcome.empty()) e["outcome"] = a.outcome;
      if (!a.error.empty()) e["error"] = a.error;
      history.push_back(std::move(e));
    }
    j["history"] = std::move(history);
  }
  // replace: a stray invalid byte in another field becomes U+FFFD instead of
  // an exception.
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace tq
