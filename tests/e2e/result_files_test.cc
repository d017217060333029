// End to end: files an --exec tool (the fake Thug) writes travel with the
// result, are stored once by the broker, come back through tq-ctl and
// tq-submit --out, and go with the results under --keep-results.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/digest.h"
#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::TempDir;
using testing::WaitUntil;
using testing::WriteFile;
namespace fs = std::filesystem;

const std::string kSample("MZ\x90\0fake sample", 15);
const std::string kSampleName =
    "0123abcd/20261124000000/application/x-dosexec/sample.exe";

using testing::Connect;

std::unique_ptr<Process> StartThugWorker(const TempDir& dir,
                                         const std::string& endpoint) {
  const std::string fake =
      std::string(TQ_SOURCE_DIR) + "/tests/worker/fake_thug.sh";
  return std::make_unique<Process>(
      std::vector<std::string>{Binary("tq-worker"), "--broker", endpoint,
                               "--id", "thug", "--concurrency", "2",
                               "--work-dir", dir.File("work"), "--exec",
                               fake + " -n {outdir} -u {useragent} {url}"},
      "", dir.File("worker.log"));
}

using testing::CollectByUrl;

std::vector<fs::path> RegularFiles(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path());
  }
  return files;
}

int RunTool(const TempDir& dir, std::vector<std::string> argv,
            std::string* err = nullptr) {
  static int n = 0;
  const std::string out = dir.File("tool-out" + std::to_string(++n));
  const std::string errf = dir.File("tool-err" + std::to_string(n));
  Process p(argv, out, errf);
  auto code = p.Wait(60s);
  REQUIRE(code.has_value());
  if (err != nullptr) *err = ReadFile(errf);
  return *code;
}

TEST_CASE("ExecFilesAreStoredOnceAndWrittenOutByCtlAndSubmit", "[e2e][files]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto worker = StartThugWorker(dir, broker.endpoint());
  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.max_attempts = 1;
  auto receipt = client->Submit(
      {"http://127.0.0.1/ok", "http://127.0.0.1/ok2", "http://127.0.0.1/big"},
      options);
  REQUIRE(receipt.ok());
  auto results = CollectByUrl(*client, receipt->batch_id);
  INFO(ReadFile(dir.File("worker.log")));
  INFO(broker.Log());
  REQUIRE(results.size() == 3);

  // The same sample from two tasks is stored once, by its sha256.
  const std::string sample_sha = DigestSha256(kSample);
  std::set<std::string> digests;
  for (const auto& [url, r] : results) {
    for (const ResultFile& f : r.files) digests.insert(f.sha256);
  }
  CHECK(digests.count(sample_sha) == 1);
  const auto stored = RegularFiles(dir.File("files"));
  CHECK(stored.size() == digests.size());
  CHECK(ReadFile(dir.File("files/" + sample_sha.substr(0, 2) + "/" +
                          sample_sha)) == kSample);

  // Over the per-file cap: not sent, and the result says why.
  const TaskResult& big = results["http://127.0.0.1/big"];
  CHECK(big.state == "done");
  CHECK(big.error.find("big.bin") != std::string::npos);
  CHECK(big.error.find("per-file cap") != std::string::npos);
  for (const ResultFile& f : big.files)
    CHECK(f.name.find("big.bin") == std::string::npos);
  CHECK(json::parse(big.output)["file_errors"].size() == 1);

  // tq-ctl results --out: DIR/<task-id>/result.json and files/<name>.
  const std::string out = dir.File("out");
  std::string err;
  REQUIRE(RunTool(dir,
                  {Binary("tq-ctl"), "--broker", broker.endpoint(), "results",
                   receipt->batch_id, "--out", out},
                  &err) == 0);
  INFO(err);
  for (const auto& [url, r] : results) {
    const std::string task_dir = out + "/" + std::to_string(r.task_id);
    const json line = json::parse(ReadFile(task_dir + "/result.json"));
    CHECK(line["url"] == url);
    CHECK(line["files"].size() == r.files.size());
    CHECK(ReadFile(task_dir + "/files/" + kSampleName) == kSample);
    CHECK_FALSE(
        fs::exists(task_dir + "/files/0123abcd/20261124000000/big.bin"));
  }

  // --layout thug: DIR/<md5(url)>/<timestamp>/analysis/json/analysis.json.
  const std::string thug = dir.File("thug");
  REQUIRE(RunTool(dir,
                  {Binary("tq-ctl"), "--broker", broker.endpoint(), "results",
                   receipt->batch_id, "--out", thug, "--layout", "thug"}) == 0);
  for (const auto& [url, r] : results) {
    const std::string url_dir = thug + "/" + DigestMd5(url);
    std::vector<fs::path> stamps;
    for (const auto& e : fs::directory_iterator(url_dir)) {
      stamps.push_back(e.path());
    }
    REQUIRE(stamps.size() == 1);
    CHECK(stamps[0].filename().string().size() == 14);  // YYYYMMDDHHMMSS
    CHECK(ReadFile((stamps[0] / "analysis/json/analysis.json").string()) ==
          r.output);
    CHECK(ReadFile((stamps[0] / "application/x-dosexec/sample.exe").string()) ==
          kSample);
  }

  // tq-submit --wait --out does the same as results arrive.
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/again\n");
  const std::string live = dir.File("live");
  REQUIRE(RunTool(dir, {Binary("tq-submit"), "--broker", broker.endpoint(),
                        urls, "--wait", "--timeout", "60", "--quiet", "--out",
                        live}) == 0);
  const auto written = RegularFiles(live);
  int samples = 0, result_files = 0;
  for (const auto& p : written) {
    if (p.filename() == "sample.exe") {
      ++samples;
      CHECK(ReadFile(p.string()) == kSample);
    }
    if (p.filename() == "result.json") ++result_files;
  }
  CHECK(samples == 1);
  CHECK(result_files == 1);
}

TEST_CASE("KeepResultsDeletesOldResultsAndTheirUnreferencedFiles",
          "[e2e][files]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--keep-results", "2s"});
  auto worker = StartThugWorker(dir, broker.endpoint());
  auto client = Connect(broker.endpoint());
  SubmitOptions options;
  options.max_attempts = 1;
  auto receipt = client->Submit({"http://127.0.0.1/ok"}, options);
  REQUIRE(receipt.ok());
  auto results = CollectByUrl(*client, receipt->batch_id);
  REQUIRE(results.size() == 1);
  REQUIRE_FALSE(results.begin()->second.files.empty());
  // The files may already be gone if the sweep ran since; then so is the row.
  const bool gone = WaitUntil(
      [&] {
        auto page = client->FetchResults(receipt->batch_id, 0, 10, 0ms);
        const bool results_gone =
            !page.ok() && page.status().code() == Status::Code::kNotFound;
        return results_gone && RegularFiles(dir.File("files")).empty();
      },
      30s, 100ms);
  INFO(broker.Log());
  CHECK(gone);
}

}  // namespace
}  // namespace tq
