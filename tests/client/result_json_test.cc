#include "client/result_json.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "tq/client.h"

namespace tq {
namespace {

TaskResult SampleResult() {
  TaskResult r;
  r.task_id = 42;
  r.batch_id = "b-1";
  r.index = 7;
  r.url = "https://example.com/x";
  r.queue = "IT";
  r.state = "done";
  r.attempts = 2;
  r.worker = "w1";
  r.ok = true;
  r.output = "{\"title\": \"caf\xC3\xA9\"}\n";
  r.exit_code = 0;
  r.duration_ms = 1234;
  r.finished_ms = 1700000000123;
  return r;
}

}  // namespace

TEST_CASE("ToJsonLine writes every field with its JSON type", "[json]") {
  std::string line = ToJsonLine(SampleResult());
  CHECK(line.find('\n') == std::string::npos);
  auto j = nlohmann::json::parse(line);
  CHECK(j["task_id"].get<uint64_t>() == 42);
  CHECK(j["batch_id"] == "b-1");
  CHECK(j["index"].get<int>() == 7);
  CHECK(j["url"] == "https://example.com/x");
  CHECK(j["queue"] == "IT");
  CHECK(j["status"] == "done");
  CHECK(j["ok"].is_boolean());
  CHECK(j["ok"] == true);
  CHECK(j["attempts"].get<int>() == 2);
  CHECK(j["worker"] == "w1");
  CHECK(j["duration_ms"].get<int>() == 1234);
  // JSON output is embedded as JSON, not as a string to decode again.
  CHECK(j["result"].is_object());
  CHECK(j["result"]["title"] == "caf\xC3\xA9");
  CHECK(j["exit_code"].is_number_integer());
  // People read ISO-8601 UTC; the epoch ms stay for programs.
  CHECK(j["finished"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["finished_ms"].get<int64_t>() == 1700000000123);
  CHECK(j["submitted"] == "");
  // Optional fields are left out when empty or false.
  CHECK_FALSE(j.contains("output_truncated"));
  CHECK_FALSE(j.contains("error"));
  CHECK_FALSE(j.contains("stderr_tail"));
  CHECK_FALSE(j.contains("output_base64"));
}

TEST_CASE("ToJsonLine includes error, stderr tail and truncation when set",
          "[json]") {
  TaskResult r = SampleResult();
  r.state = "dead";
  r.ok = false;
  r.error = "exit status 3";
  r.exit_code = -1;
  r.stderr_tail = "Traceback...\n";
  r.output_truncated = true;
  auto j = nlohmann::json::parse(ToJsonLine(r));
  CHECK(j["status"] == "dead");
  CHECK(j["ok"] == false);
  CHECK(j["error"] == "exit status 3");
  CHECK(j["exit_code"].get<int>() == -1);
  CHECK(j["stderr_tail"] == "Traceback...\n");
  CHECK(j["output_truncated"] == true);
}

TEST_CASE("ToJsonLine puts non-UTF-8 output in output_base64", "[json]") {
  TaskResult r = SampleResult();
  r.output = std::string("\xFF\x00\xFE", 3);
  auto j = nlohmann::json::parse(ToJsonLine(r));
  CHECK_FALSE(j.contains("result"));
  CHECK(j["output_base64"] == "/wD+");
}

TEST_CASE("ToJsonLine does not throw on invalid UTF-8 in other fields",
          "[json]") {
  TaskResult r = SampleResult();
  r.error = "bad \xC3 byte";
  std::string line;
  REQUIRE_NOTHROW(line = ToJsonLine(r));
  auto j = nlohmann::json::parse(line);
  CHECK(j["error"] == "bad \xEF\xBF\xBD byte");  // U+FFFD
}

TEST_CASE("ToJsonLine round-trips through a JSON parser", "[json]") {
  TaskResult r = SampleResult();
  static const char kOutput[] = "line1\n\"quoted\"\t\\ \x01 nul:\0 end";
  r.output = std::string(kOutput, sizeof kOutput - 1);
  r.url = "https://example.com/?a=1&b=\"2\"";
  auto j = nlohmann::json::parse(ToJsonLine(r));
  CHECK(j["result"].get<std::string>() == r.output);
  CHECK(j["url"].get<std::string>() == r.url);
  // Re-serializing the parsed object gives the same line back.
  CHECK(nlohmann::ordered_json::parse(ToJsonLine(r)).dump() == ToJsonLine(r));
}

TEST_CASE("ToJsonLine writes an empty result for a task without output",
          "[json]") {
  TaskResult r = SampleResult();
  r.output.clear();
  auto j = nlohmann::json::parse(ToJsonLine(r));
  CHECK(j["result"] == "");
}

TEST_CASE("IsValidUtf8 accepts UTF-8 and refuses malformed sequences",
          "[json]") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ascii"));
  CHECK(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK(IsValidUtf8(std::string("nul\0ok", 6)));
  CHECK_FALSE(IsValidUtf8("\xFF"));
  CHECK_FALSE(IsValidUtf8("\x80"));              // lone continuation
  CHECK_FALSE(IsValidUtf8("\xC3"));              // truncated
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong, 3 bytes
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  CHECK_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
}

TEST_CASE("Base64Encode pads to a multiple of four", "[json]") {
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("foobar") == "Zm9vYmFy");
}

}  // namespace tq

namespace tq {

TEST_CASE("ToJsonLine keeps output that is not a JSON object or array as text",
          "[json]") {
  TaskResult r = SampleResult();
  r.output = "42\n";
  CHECK(nlohmann::json::parse(ToJsonLine(r))["result"] == "42\n");
  r.output = "{\"cut\": ";  // broken JSON
  CHECK(nlohmann::json::parse(ToJsonLine(r))["result"] == "{\"cut\": ");
  r.output = " [1, 2]\n";
  CHECK(nlohmann::json::parse(ToJsonLine(r))["result"] ==
        nlohmann::json::array({1, 2}));
  // A truncated output is never parsed, even when the cut left valid JSON.
  r.output_truncated = true;
  CHECK(nlohmann::json::parse(ToJsonLine(r))["result"] == " [1, 2]\n");
}

TEST_CASE("FormatUtcMs writes ISO-8601 UTC with milliseconds and Z", "[json]") {
  CHECK(FormatUtcMs(1700000000123) == "2023-11-14T22:13:20.123Z");
  CHECK(FormatUtcMs(1000) == "1970-01-01T00:00:01.000Z");
  CHECK(FormatUtcMs(0) == "");
}

}  // namespace tq
