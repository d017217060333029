// tq-ctl's views (#19) against the real binaries: status, batches, task,
// active, workers and queues, each as a table and as --json, on a cluster
// with a finished, a dead and a running task; the two outputs must agree
// row for row. Exact messages and exit codes for the mistakes.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/support/cluster.h"
#include "tests/support/tool_run.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::RunTool;
using testing::StartWorker;
using testing::TempDir;
using testing::ToolRun;
using testing::WaitUntil;
using testing::WorkerSpec;
using testing::WriteFile;

ToolRun Ctl(const TempDir& dir, const std::string& endpoint,
            std::vector<std::string> args) {
  std::vector<std::string> argv = {Binary("tq-ctl"), "--broker", endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunTool(dir, argv);
}

json CtlJson(const TempDir& dir, const std::string& endpoint,
             std::vector<std::string> args) {
  args.insert(args.begin(), "--json");
  ToolRun r = Ctl(dir, endpoint, args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return json::parse(r.out);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A table line's cells: columns are two or more spaces apart.
std::vector<std::string> Cells(const std::string& line) {
  static const std::regex gap("  +");
  std::vector<std::string> cells;
  std::string trimmed = std::regex_replace(line, std::regex("^ +| +$"), "");
  std::sregex_token_iterator it(trimmed.begin(), trimmed.end(), gap, -1), end;
  for (; it != end; ++it) cells.push_back(*it);
  return cells;
}

// The rows of the table that starts at the line with `first_header`, keyed
// by header name; stops at a blank line or a line that is no row.
std::vector<std::map<std::string, std::string>> TableRows(
    const std::string& text, const std::string& first_header) {
  std::vector<std::map<std::string, std::string>> rows;
  auto lines = Lines(text);
  size_t i = 0;
  while (i < lines.size() && lines[i].rfind(first_header, 0) != 0) ++i;
  REQUIRE(i < lines.size());
  const std::vector<std::string> header = Cells(lines[i]);
  for (++i; i < lines.size() && !lines[i].empty(); ++i) {
    std::vector<std::string> cells = Cells(lines[i]);
    if (cells.size() != header.size()) break;
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < header.size(); ++c) row[header[c]] = cells[c];
    rows.push_back(std::move(row));
  }
  return rows;
}

// "key  value" lines (tq-ctl status, task): key -> value.
std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> kv;
  static const std::regex line("^([a-z][a-z ]*[a-z])  +(.*)$");
  for (const std::string& l : Lines(text)) {
    std::smatch m;
    if (std::regex_match(l, m, line)) kv.emplace(m[1], m[2]);
  }
  return kv;
}

std::string Str(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

// A worker whose handler succeeds with a JSON object, fails on "bad" URLs
// and sleeps (until killed) on "slow" ones.
WorkerSpec ViewWorker() {
  WorkerSpec spec;
  spec.id = "w1";
  spec.concurrency = 3;
  spec.handler = {
      "--exec",
      "sh -c 'case \"$1\" in *slow*) exec sleep 600;; *bad*) echo "
      "boom >&2; exit 1;; *) echo \"{\\\"title\\\": \\\"$1\\\"}\";; "
      "esac' sh {url}"};
  return spec;
}

}  // namespace

TEST_CASE("EveryViewTableAgreesWithItsJson", "[e2e][views]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--http", "off"});
  const std::string ep = broker.endpoint();
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls,
            "http://127.0.0.1:1/ok\nhttp://127.0.0.1:1/bad\n"
            "http://127.0.0.1:1/slow\n");
  Process submit({Binary("tq-submit"), "--broker", ep, "--batch-id", "views",
                  "--max-attempts", "1", urls},
                 dir.File("submit.out"), dir.File("submit.err"));
  REQUIRE(submit.Wait(60s) == 0);
  auto worker = StartWorker(dir, ep, ViewWorker());
  // Task 1 done, 2 dead, 3 running.
  REQUIRE(WaitUntil(
      [&] {
        json b = CtlJson(dir, ep, {"batch", "views"});
        return b["done"] == 1 && b["dead"] == 1 && b["leased"] == 1;
      },
      30s, 100ms));

  SECTION("task") {
    for (int id : {1, 2, 3}) {
      INFO("task " << id);
      ToolRun table = Ctl(dir, ep, {"task", std::to_string(id)});
      REQUIRE(table.code == 0);
      json j = CtlJson(dir, ep, {"task", std::to_string(id)});
      auto kv = KeyValues(table.out);
      CHECK(kv["task"] == std::to_string(id));
      CHECK(kv["url"] == j["url"]);
      CHECK(kv["queue"] == j["queue"]);
      CHECK(kv["state"] == j["state"]);
      CHECK(kv["batch"] == "views (item " + std::to_string(id - 1) + ")");
      CHECK(kv["attempts"] == Str(j["attempts"]) + " of 1");
      CHECK(kv["submitted"] == j["submitted"]);
      CHECK(kv["options"] == j["options"].dump());
      if (id == 3) {
        CHECK(j["state"] == "leased");
        REQUIRE(j["lease"].is_object());
        CHECK(j["lease"]["worker"] == "w1");
        CHECK(kv["running"] ==
              "on w1 since " + Str(j["lease"]["since"]) + " (attempt 1)");
        CHECK(j["history"].empty());
        CHECK(j["result"].is_null());
        CHECK(table.out.find("\nno attempt has ended yet\n") !=
              std::string::npos);
        continue;
      }
      CHECK(j["lease"].is_null());
      CHECK(kv["finished"] == j["finished"]);
      REQUIRE(j["history"].size() == 1);
      auto attempts = TableRows(table.out, "ATTEMPT");
      REQUIRE(attempts.size() == 1);
      const json& h = j["history"][0];
      CHECK(attempts[0]["ATTEMPT"] == "1");
      CHECK(attempts[0]["WORKER"] == "w1");
      CHECK(h["worker"] == "w1");
      CHECK(attempts[0]["STARTED"] == h["started"]);
      CHECK(attempts[0]["ENDED"] == h["ended"]);
      CHECK(h["started_ms"].get<int64_t>() > 0);
      CHECK(h["ended_ms"].get<int64_t>() >= h["started_ms"].get<int64_t>());
      // The result, embedded: the same JSON after "result:".
      const size_t at = table.out.find("\nresult:\n");
      REQUIRE(at != std::string::npos);
      CHECK(json::parse(table.out.substr(at + 9)) == j["result"]);
      if (id == 1) {
        CHECK(j["state"] == "done");
        CHECK(attempts[0]["OUTCOME"] == "ok");
        CHECK(j["result"] == json{{"title", "http://127.0.0.1:1/ok"}});
      } else {
        CHECK(j["state"] == "dead");
        CHECK(attempts[0]["OUTCOME"] == "failed");
        CHECK(attempts[0]["ERROR"] == h["error"]);
        CHECK(Str(h["error"]).find("status 1") != std::string::npos);
      }
    }
  }

  SECTION("active") {
    ToolRun table = Ctl(dir, ep, {"active"});
    REQUIRE(table.code == 0);
    json j = CtlJson(dir, ep, {"active"});
    auto rows = TableRows(table.out, "TASK");
    REQUIRE(rows.size() == 1);
    REQUIRE(j["tasks"].size() == 1);
    const json& t = j["tasks"][0];
    CHECK(rows[0]["TASK"] == "3");
    CHECK(t["task_id"] == 3);
    CHECK(rows[0]["URL"] == t["url"]);
    CHECK(t["url"] == "http://127.0.0.1:1/slow");
    CHECK(rows[0]["QUEUE"] == t["queue"]);
    CHECK(rows[0]["BATCH"] == "views");
    CHECK(rows[0]["WORKER"] == t["worker"]);
    CHECK(rows[0]["SINCE"] == t["since"]);
    CHECK(rows[0]["ATTEMPT"] == Str(t["attempt"]));
    // The filters.
    CHECK(CtlJson(dir, ep, {"active", "--worker", "w2"})["tasks"].empty());
    CHECK(CtlJson(dir, ep, {"active", "--queue", "IT"})["tasks"].empty());
    CHECK(CtlJson(dir, ep, {"active", "--batch", "views"})["tasks"].size() ==
          1);
  }

  SECTION("workers") {
    ToolRun table = Ctl(dir, ep, {"workers"});
    REQUIRE(table.code == 0);
    json j = CtlJson(dir, ep, {"workers"});
    auto rows = TableRows(table.out, "ID");
    REQUIRE(rows.size() == 1);
    REQUIRE(j["workers"].size() == 1);
    const json& w = j["workers"][0];
    CHECK(rows[0]["ID"] == w["worker_id"]);
    CHECK(rows[0]["STATE"] == w["state"]);
    CHECK(rows[0]["SLOTS"] == Str(w["concurrency"]));
    CHECK(rows[0]["IN-FLIGHT"] == Str(w["in_flight"]));
    CHECK(rows[0]["TASKS DONE"] == Str(w["tasks_done"]));
    CHECK(rows[0]["RUNNING"] == "3");
    REQUIRE(w["current"].size() == 1);
    CHECK(w["current"][0]["task_id"] == 3);
    CHECK(table.out.find("w1 runs task 3 (attempt 1, since " +
                         Str(w["current"][0]["since"]) +
                         "): http://127.0.0.1:1/slow\n") != std::string::npos);

    // Killed, it stays listed an hour as offline.
    worker.reset();
    REQUIRE(WaitUntil(
        [&] {
          json k = CtlJson(dir, ep, {"workers"});
          return k["workers"].size() == 1 && k["workers"][0]["offline"] == true;
        },
        20s, 100ms));
    ToolRun gone = Ctl(dir, ep, {"workers"});
    auto offline = TableRows(gone.out, "ID");
    REQUIRE(offline.size() == 1);
    CHECK(offline[0]["STATE"] == "offline");
    CHECK(offline[0]["UPTIME"] == "-");
    CHECK(offline[0]["RUNNING"] == "-");
  }

  SECTION("batches, status and queues") {
    ToolRun table = Ctl(dir, ep, {"batches"});
    REQUIRE(table.code == 0);
    json j = CtlJson(dir, ep, {"batches"});
    auto rows = TableRows(table.out, "BATCH");
    REQUIRE(rows.size() == 1);
    REQUIRE(j["batches"].size() == 1);
    const json& b = j["batches"][0];
    CHECK(rows[0]["BATCH"] == "views");
    CHECK(b["batch_id"] == "views");
    CHECK(rows[0]["CREATED"] == b["created"]);
    CHECK(rows[0]["SUBMITTER"] == "-");
    CHECK(b["submitter"] == "");
    for (const char* c : {"total", "queued", "leased", "retry_wait", "done",
                          "dead", "cancelled"}) {
      std::string header = c;
      for (char& ch : header) ch = char(std::toupper(ch));
      CHECK(rows[0][header] == Str(b[c]));
    }
    CHECK(rows[0]["PROGRESS"] == "2 of 3 (66%)");
    CHECK(table.out.find("\n1 of 1 batches\n") != std::string::npos);

    ToolRun status = Ctl(dir, ep, {"status"});
    REQUIRE(status.code == 0);
    json s = CtlJson(dir, ep, {"status"});
    auto kv = KeyValues(status.out);
    CHECK(kv["version"] == s["version"]);
    CHECK(Str(s["version"]).rfind("0.1.0 (git ", 0) == 0);
    CHECK(kv["pid"] == Str(s["pid"]));
    CHECK(s["pid"] == broker.process().pid());
    CHECK(kv["started"] == s["started"]);
    CHECK(kv["listening on"] == Str(s["listen"][0]));
    CHECK(s["listen"][0] == ep);
    CHECK(kv["database"] == s["db_path"]);
    CHECK(s["db_path"] == dir.File("tq.db"));
    CHECK(s["db_bytes"].get<uint64_t>() > 0);
    CHECK(s["rss_bytes"].get<uint64_t>() > 1'000'000);
    CHECK(kv["workers"] == "1");
    CHECK(s["workers"] == 1);
    CHECK(kv["batches"] == "1");
    CHECK(kv["tasks"] ==
          "3 (queued 0, leased 1, retry_wait 0, done 1, dead 1, cancelled 0)");
    CHECK(s["totals"]["total"] == 3);
    CHECK(s["totals"]["leased"] == 1);
    CHECK(kv["store"] == "ok");

    ToolRun queues = Ctl(dir, ep, {"queues"});
    json q = CtlJson(dir, ep, {"queues"});
    auto qrows = TableRows(queues.out, "QUEUE");
    REQUIRE(qrows.size() == 1);
    REQUIRE(q["queues"].size() == 1);
    CHECK(qrows[0]["QUEUE"] == "generic");
    CHECK(qrows[0]["DONE"] == Str(q["queues"][0]["done"]));
    CHECK(qrows[0]["DEAD"] == Str(q["queues"][0]["dead"]));
    CHECK(qrows[0]["LEASED"] == Str(q["queues"][0]["leased"]));
    CHECK(qrows[0]["WORKERS"] == Str(q["queues"][0]["workers"]));
  }
}

TEST_CASE("ViewMistakesGiveExactMessagesAndExitCodes", "[e2e][views]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--http", "off"});
  const std::string ep = broker.endpoint();
  ToolRun unknown = Ctl(dir, ep, {"task", "424242"});
  CHECK(unknown.code == 5);
  CHECK(unknown.out.empty());
  CHECK(unknown.err == "tq-ctl: no task 424242\n");
  ToolRun json_unknown = Ctl(dir, ep, {"--json", "task", "7"});
  CHECK(json_unknown.code == 5);
  CHECK(json_unknown.err == "tq-ctl: no task 7\n");
  ToolRun word = Ctl(dir, ep, {"task", "abc"});
  CHECK(word.code == 2);
  ToolRun zero = Ctl(dir, ep, {"batches", "--limit", "0"});
  CHECK(zero.code == 2);
  CHECK(zero.err.find("--limit") != std::string::npos);
  // An empty broker: empty tables, not errors.
  ToolRun none = Ctl(dir, ep, {"batches"});
  CHECK(none.code == 0);
  CHECK(none.out ==
        "BATCH  CREATED  SUBMITTER  TOTAL  QUEUED  LEASED  RETRY_WAIT  DONE  "
        "DEAD  CANCELLED  PROGRESS\n0 of 0 batches\n");
  ToolRun idle = Ctl(dir, ep, {"active"});
  CHECK(idle.code == 0);
  CHECK(idle.out == "TASK  URL  QUEUE  BATCH  WORKER  SINCE  ATTEMPT\n");
}

TEST_CASE("BatchesPageNewestFirstAndQueuesHideIdleUnservedOnes",
          "[e2e][views]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--http", "off"});
  const std::string ep = broker.endpoint();
  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1:1/a\n");
  for (const char* b : {"first", "second", "third"}) {
    Process submit({Binary("tq-submit"), "--broker", ep, "--batch-id", b,
                    "--country", "IT", urls},
                   dir.File(std::string(b) + ".out"),
                   dir.File(std::string(b) + ".err"));
    REQUIRE(submit.Wait(60s) == 0);
  }
  ToolRun page = Ctl(dir, ep, {"batches", "--limit", "2"});
  REQUIRE(page.code == 0);
  auto rows = TableRows(page.out, "BATCH");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["BATCH"] == "third");
  CHECK(rows[1]["BATCH"] == "second");
  json j = CtlJson(dir, ep, {"batches", "--limit", "2"});
  const uint64_t before = j["next_before"];
  CHECK(before == j["batches"][1]["seq"]);
  CHECK(page.out.find("\n2 of 3 batches; older ones: tq-ctl batches --before " +
                      std::to_string(before) + "\n") != std::string::npos);
  ToolRun older = Ctl(
      dir, ep, {"batches", "--limit", "2", "--before", std::to_string(before)});
  auto rest = TableRows(older.out, "BATCH");
  REQUIRE(rest.size() == 1);
  CHECK(rest[0]["BATCH"] == "first");
  CHECK(older.out.find("\n1 of 3 batches\n") != std::string::npos);

  // IT has queued tasks: shown though nobody serves it. Cancelled, it has
  // nothing to do and no worker: hidden unless --all.
  CHECK(CtlJson(dir, ep, {"queues"})["queues"].size() == 1);
  for (const char* b : {"first", "second", "third"}) {
    REQUIRE(Ctl(dir, ep, {"cancel", b}).code == 0);
  }
  CHECK(CtlJson(dir, ep, {"queues"})["queues"].empty());
  ToolRun hidden = Ctl(dir, ep, {"queues"});
  CHECK(TableRows(hidden.out, "QUEUE").empty());
  json all = CtlJson(dir, ep, {"queues", "--all"});
  bool listed = false;
  for (const json& q : all["queues"]) {
    if (q["name"] != "IT") continue;
    listed = true;
    CHECK(q["cancelled"] == 3);
  }
  CHECK(listed);
  ToolRun shown = Ctl(dir, ep, {"queues", "--all"});
  auto shown_rows = TableRows(shown.out, "QUEUE");
  CHECK(shown_rows.size() == all["queues"].size());
}

}  // namespace tq
