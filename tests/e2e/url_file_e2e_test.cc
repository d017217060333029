// URL files as tq-submit reads them from disk and standard input: byte-order
// marks, every kind of line end, IDN hosts, ports and endless input.
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::StartWorker;
using testing::TempDir;
using testing::WriteFile;

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run Submit(const TempDir& dir, std::vector<std::string> args,
           const std::string& stdin_path = "") {
  static int n = 0;
  const std::string out = dir.File("out" + std::to_string(++n));
  const std::string err = dir.File("err" + std::to_string(n));
  args.insert(args.begin(), Binary("tq-submit"));
  Process p(args, out, err, {}, stdin_path);
  auto code = p.Wait(60s);
  REQUIRE(code.has_value());
  return {*code, ReadFile(out), ReadFile(err)};
}

std::set<std::string> ResultUrls(const std::string& jsonl) {
  std::set<std::string> urls;
  std::istringstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    CHECK(j["status"] == "done");
    // The handler echoes the URL it was given.
    CHECK(j["result"].get<std::string>() == j["url"].get<std::string>() + "\n");
    urls.insert(j["url"].get<std::string>());
  }
  return urls;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("UrlFileWithByteOrderMarkAndMixedLineEndsKeepsEveryLine",
          "[e2e][url_file]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"w", "none", 2, {"--exec", "echo {url}"}});
  const std::string file = dir.File("urls.txt");
  WriteFile(file,
            "\xEF\xBB\xBFhttp://127.0.0.1/one\r\n"  // 1: BOM, CRLF
            "http://127.0.0.1/two\r"                // 2: CR only
            "# comment\r"                           // 3
            "ftp://127.0.0.1/four\r"                // 4: bad
            "\r"                                    // 5: blank
            "http://127.0.0.1/six\n"                // 6: LF
            "example.com/seven\r\n"                 // 7: bad
            "http://127.0.0.1/eight");              // 8: no line end
  Run r = Submit(
      dir, {"--broker", broker.endpoint(), "--wait", "--timeout", "30", file});
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(Has(r.err, file + ":4: scheme 'ftp' is not http or https\n"));
  CHECK(Has(r.err, file + ":7: not an absolute URL"));
  CHECK_FALSE(Has(r.err, file + ":1:"));
  CHECK(ResultUrls(r.out) == std::set<std::string>{"http://127.0.0.1/one",
                                                   "http://127.0.0.1/two",
                                                   "http://127.0.0.1/six",
                                                   "http://127.0.0.1/eight"});
}

TEST_CASE("IdnHostsAreQueuedInPunycodeAndBadHostsAndPortsAreNamed",
          "[e2e][url_file]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartWorker(dir, broker.endpoint(),
                            {"w", "none", 2, {"--exec", "echo {url}"}});
  const std::string file = dir.File("urls.txt");
  WriteFile(file,
            "http://b\xC3\xBC"
            "cher.example/\n"  // 1: bücher
            "https://B\xC3\x9C"
            "CHER.example:8443/a\n"      // 2: BÜCHER, port
            "http://127.0.0.1:99999/\n"  // 3
            "http://127.0.0.1:0/\n"      // 4
            "http://a\xE2\x80\x8D"
            "b.example/\n"                 // 5: ZWJ: invalid
            "http://127.0.0.1:65535/\n");  // 6
  Run r = Submit(
      dir, {"--broker", broker.endpoint(), "--wait", "--timeout", "30", file});
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(Has(r.err, file + ":3: port 99999 is out of range (1-65535)\n"));
  CHECK(Has(r.err, file + ":4: port 0 is out of range (1-65535)\n"));
  CHECK(Has(r.err, file + ":5: host 'a\xE2\x80\x8D"
                          "b.example' is not a valid internationalized domain "
                          "name: "));
  CHECK(ResultUrls(r.out) ==
        std::set<std::string>{"http://xn--bcher-kva.example/",
                              "https://xn--bcher-kva.example:8443/a",
                              "http://127.0.0.1:65535/"});
}

TEST_CASE("BrokerRefusesAPortOutOfRange", "[e2e][url_file]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto client = testing::Connect(broker.endpoint());
  auto receipt = client->Submit(
      {"http://127.0.0.1:99999/", "http://127.0.0.1:8080/"}, SubmitOptions{});
  REQUIRE(receipt.ok());
  CHECK(receipt->accepted == 1);
  REQUIRE(receipt->errors.size() == 1);
  CHECK(receipt->errors[0].url_index == 0);
  CHECK(receipt->errors[0].reason == "port 99999 is out of range (1-65535)");
}

TEST_CASE("EndlessInputStopsAtTheFileSizeLimit", "[e2e][url_file]") {
  TempDir dir;
  BrokerProcess broker(dir);
  const std::string limit =
      "is larger than the limit of 268435456 bytes (256 MiB); "
      "read 268435456 bytes (line 1) and stopped; nothing submitted\n";
  Run file = Submit(dir, {"--broker", broker.endpoint(), "/dev/zero"});
  CHECK(file.code == 2);
  CHECK(file.err == "tq-submit: /dev/zero " + limit);
  Run in = Submit(dir, {"--broker", broker.endpoint(), "-"}, "/dev/zero");
  CHECK(in.code == 2);
  CHECK(in.err == "tq-submit: <stdin> " + limit);

  auto client = testing::Connect(broker.endpoint());
  auto queues = client->Queues();
  REQUIRE(queues.ok());
  for (const auto& q : *queues) CHECK(q.counts.total == 0);
}

}  // namespace
}  // namespace tq
