// The web console over HTTP against the real tq-broker and tq-worker: the
// JSON API, downloads, /metrics, access (tokens, roles, loopback, CSRF) and
// escaping.
#include <archive.h>
#include <archive_entry.h>
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "broker/http_access.h"
#include "tests/support/cluster.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::StartWorker;
using testing::TempDir;
using testing::WaitUntil;
using testing::WorkerSpec;
using testing::WriteFile;

// A broker with its console on an ephemeral loopback port.
struct Console {
  TempDir dir;
  std::unique_ptr<BrokerProcess> broker;
  std::string url;
  int port = 0;
  explicit Console(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--http",     "127.0.0.1:0", "--http-ready-file", dir.File("http.url"),
        "--geoip-db", "none"};
    for (auto& a : extra) args.push_back(a);
    broker = std::make_unique<BrokerProcess>(dir, args);
    REQUIRE(WaitUntil([&] { return !ReadFile(dir.File("http.url")).empty(); },
                      20s));
    url = ReadFile(dir.File("http.url"));
    while (!url.empty() && url.back() == '\n') url.pop_back();
    port = std::stoi(url.substr(url.rfind(':') + 1));
  }
  httplib::Client Http() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
};

json Body(const httplib::Result& r) {
  REQUIRE(r);
  INFO(r->body);
  return json::parse(r->body);
}

json SubmitJson(const Console& c, const json& request,
                const httplib::Headers& headers = {}) {
  auto r = c.Http().Post("/api/v1/submit", headers, request.dump(),
                         "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 201);
  return json::parse(r->body);
}

bool BatchComplete(const Console& c, const std::string& batch) {
  auto r = c.Http().Get("/api/v1/batches/" + batch);
  return r && r->status == 200 && json::parse(r->body)["complete"] == true;
}

// The entries of a .tar.gz: path -> content.
std::map<std::string, std::string> Untar(const std::string& bytes) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_memory(a, bytes.data(), bytes.size()) ==
          ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string content(size_t(archive_entry_size(e)), '\0');
    if (!content.empty()) {
      REQUIRE(archive_read_data(a, content.data(), content.size()) ==
              la_ssize_t(content.size()));
    }
    out[archive_entry_pathname(e)] = content;
  }
  archive_read_free(a);
  return out;
}

// The value of the sample `name` (with its labels, as written) in a
// Prometheus text exposition; -1 when absent.
double MetricValue(const std::string& text, const std::string& name) {
  const size_t at = ("\n" + text).find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 1));
}

TEST_CASE("ApiSubmitReportsBadLinesAndTwoWorkersFinishTheBatch", "[web]") {
  Console c;
  // The handler writes its URL as output and one file into {outdir}.
  const std::string handler = c.dir.File("handler.sh");
  WriteFile(handler,
            "printf '{\"url\":\"%s\"}' \"$2\"; printf 'page of %s' \"$2\" > "
            "\"$1/page.html\"\n");
  json receipt =
      SubmitJson(c, {{"text",
                      "https://a.example/\n# comment\nftp://bad.example/\n"
                      "https://b.example/\nhttps://c.example/\n"},
                     {"countries", "generic"},
                     {"options", {{"user_agent", "tq-test"}}}});
  const std::string batch = receipt["batch_id"];
  CHECK(receipt["accepted"] == 3);
  REQUIRE(receipt["bad_lines"].size() == 1);
  CHECK(receipt["bad_lines"][0]["line"] == 3);
  // Exactly as tq-submit names a bad line: NAME:LINE: REASON.
  CHECK(receipt["report"][0] == "pasted:3: scheme 'ftp' is not http or https");

  std::vector<std::unique_ptr<Process>> workers;
  for (const char* id : {"w1", "w2"}) {
    WorkerSpec spec;
    spec.id = id;
    spec.handler = {"--work-dir", c.dir.File(std::string("work-") + id),
                    "--exec", "sh " + handler + " {outdir} {url}"};
    workers.push_back(StartWorker(c.dir, c.broker->endpoint(), spec));
  }
  REQUIRE(WaitUntil([&] { return BatchComplete(c, batch); }, 60s));

  // Results: the lines tq-submit --wait writes, one per task.
  auto results = c.Http().Get("/api/v1/batches/" + batch + "/results");
  REQUIRE(results);
  CHECK(results->status == 200);
  std::set<std::string> urls;
  std::istringstream lines(results->body);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);
    CHECK(j["status"] == "done");
    CHECK(j["batch_id"] == batch);
    INFO(line);
    // The handler's JSON output is embedded as an object.
    CHECK(j["result"].dump().find(j["url"].get<std::string>()) !=
          std::string::npos);
    REQUIRE(j["files"].size() == 1);
    CHECK(j["files"][0]["name"] == "page.html");
    urls.insert(j["url"]);
  }
  CHECK(urls == std::set<std::string>{"https://a.example/",
                                      "https://b.example/",
                                      "https://c.example/"});

  // Files: one .tar.gz in the tasks layout.
  auto tar = c.Http().Get("/batches/" + batch + "/files.tar.gz");
  REQUIRE(tar);
  CHECK(tar->get_header_value("Content-Type") == "application/gzip");
  auto entries = Untar(tar->body);
  size_t pages = 0, jsons = 0;
  for (const auto& [path, content] : entries) {
    CHECK(path.rfind(batch + "/", 0) == 0);
    if (path.size() > 15 &&
        path.substr(path.size() - 15) == "files/page.html") {
      ++pages;
      CHECK(content.rfind("page of https://", 0) == 0);
    }
    if (path.size() > 11 && path.substr(path.size() - 11) == "result.json") {
      ++jsons;
    }
  }
  CHECK(pages == 3);
  CHECK(jsons == 3);

  // The task, with its options and result; the file downloads.
  auto tasks = Body(c.Http().Get("/api/v1/batches/" + batch + "/tasks"));
  REQUIRE(tasks["tasks"].size() == 3);
  const uint64_t id = tasks["tasks"][0]["task_id"];
  auto task = Body(c.Http().Get("/api/v1/tasks/" + std::to_string(id)));
  CHECK(task["options"]["user_agent"] == "tq-test");
  CHECK(task["state"] == "done");
  const std::string sha = task["result"]["files"][0]["sha256"];
  auto file = c.Http().Get("/files/" + sha + "?name=page.html");
  REQUIRE(file);
  CHECK(file->status == 200);
  CHECK(file->get_header_value("Content-Disposition").find("attachment") !=
        std::string::npos);
  CHECK(file->body.rfind("page of https://", 0) == 0);

  // Queues, workers and /metrics agree.
  auto queues = Body(c.Http().Get("/api/v1/queues"));
  CHECK(queues["queues"][0]["done"] == 3);
  auto listed = Body(c.Http().Get("/api/v1/workers"));
  CHECK(listed["workers"].size() == 2);
  auto metrics = c.Http().Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("tq_tasks{queue=\"generic\",state=\"done\"} 3\n") !=
        std::string::npos);
  CHECK(metrics->body.find("tq_workers{country=\"\"} 2\n") !=
        std::string::npos);
  // Counters since start, and the store's latency as histograms whose
  // buckets only grow and end at the count.
  CHECK(MetricValue(metrics->body, "tq_tasks_submitted_total") == 3);
  CHECK(MetricValue(metrics->body, "tq_tasks_done_total") == 3);
  CHECK(MetricValue(metrics->body, "tq_tasks_dead_total") == 0);
  for (const std::string h :
       {"tq_commit_duration_seconds", "tq_fsync_duration_seconds"}) {
    INFO(h);
    const double count = MetricValue(metrics->body, h + "_count");
    CHECK(count > 0);
    CHECK(MetricValue(metrics->body, h + "_bucket{le=\"+Inf\"}") == count);
    CHECK(MetricValue(metrics->body, h + "_bucket{le=\"0.0001\"}") <=
          MetricValue(metrics->body, h + "_bucket{le=\"0.1\"}"));
    CHECK(MetricValue(metrics->body, h + "_sum") > 0);
  }
  auto chart = Body(c.Http().Get("/api/v1/chart"));
  CHECK(chart["minutes"].size() == 60);
  CHECK(chart["minutes"].back()["done"].get<int>() +
            chart["minutes"][58]["done"].get<int>() ==
        3);
}

TEST_CASE("ApiPagesTasksByKeysetAndCancelsAndPurges", "[web]") {
  Console c;
  std::string text;
  for (int i = 0; i < 120; ++i) {
    text += "https://h" + std::to_string(i) + ".example/\n";
  }
  json receipt = SubmitJson(c, {{"text", text}});
  const std::string batch = receipt["batch_id"];
  std::set<int> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto j = Body(
        c.Http().Get("/api/v1/batches/" + batch + "/tasks?limit=50" + after));
    for (const auto& t : j["tasks"]) seen.insert(t["index"].get<int>());
    if (!j.contains("next_after")) break;
    after = "&after=" + std::to_string(j["next_after"].get<int64_t>());
  }
  CHECK(seen.size() == 120);
  auto found = Body(c.Http().Get("/api/v1/batches/" + batch + "/tasks?q=h17."));
  REQUIRE(found["tasks"].size() == 1);
  CHECK(found["tasks"][0]["url"] == "https://h17.example/");

  auto cancelled = Body(c.Http().Post("/api/v1/batches/" + batch + "/cancel",
                                      "{}", "application/json"));
  CHECK(cancelled["cancelled"] == 120);
  auto state = Body(c.Http().Get("/api/v1/batches/" + batch +
                                 "/tasks?state=cancelled&limit=1000"));
  CHECK(state["tasks"].size() == 120);
  auto batches = Body(c.Http().Get("/api/v1/batches"));
  CHECK(batches["batches"][0]["counts"]["cancelled"] == 120);
  auto purged = Body(
      c.Http().Post("/api/v1/queues/generic/purge", "{}", "application/json"));
  CHECK(purged["purged"] == 0);
  auto unknown = c.Http().Get("/api/v1/batches/nope");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
}

// With CURVE on the ROUTER every endpoint needs keys, the console's own
// ipc:// one included: the broker gives the console a key pair of its own.
TEST_CASE("ConsoleOfAKeyedBrokerSubmitsAndCancels", "[web][curve]") {
  TempDir keys;
  std::filesystem::create_directories(keys.File("authorized"));
  Process keygen({Binary("tq-keygen"), "broker", "--dir", keys.path()},
                 keys.File("keygen.out"), keys.File("keygen.err"));
  auto code = keygen.Wait(30s);
  REQUIRE(code.has_value());
  REQUIRE(*code == 0);
  Console c({"--key", keys.File("broker.key_secret"), "--authorized-keys",
             keys.File("authorized")});
  json receipt = SubmitJson(c, {{"text", "https://a.example/\n"}});
  const std::string batch = receipt["batch_id"];
  auto cancelled = Body(c.Http().Post("/api/v1/batches/" + batch + "/cancel",
                                      "{}", "application/json"));
  CHECK(cancelled["cancelled"] == 1);
  auto queues = c.Http().Get("/api/v1/queues");
  REQUIRE(queues);
  CHECK(queues->status == 200);
}

TEST_CASE("StateChangesWithoutCsrfProofAreRefused", "[web]") {
  Console c;
  json receipt = SubmitJson(c, {{"urls", {"https://a.example/"}}});
  const std::string batch = receipt["batch_id"];
  // A cross-site form can send text/plain or a urlencoded body, never JSON.
  auto plain =
      c.Http().Post("/api/v1/batches/" + batch + "/cancel", "x", "text/plain");
  REQUIRE(plain);
  CHECK(plain->status == 403);
  auto form = c.Http().Post("/batches/" + batch + "/cancel", "a=b",
                            "application/x-www-form-urlencoded");
  REQUIRE(form);
  CHECK(form->status == 403);
  auto origin = c.Http().Post("/api/v1/batches/" + batch + "/cancel",
                              {{"Origin", "http://evil.example"}}, "{}",
                              "application/json");
  REQUIRE(origin);
  CHECK(origin->status == 403);
  // DNS rebinding: another site's name pointing at 127.0.0.1.
  auto rebound = c.Http().Get(
      "/api/v1/queues", {{"Host", "evil.example:" + std::to_string(c.port)}});
  REQUIRE(rebound);
  CHECK(rebound->status == 403);
  CHECK(Body(c.Http().Get("/api/v1/batches/" + batch))["queued"] == 1);

  // The page's own form token works.
  auto page = c.Http().Get("/batches/" + batch);
  REQUIRE(page);
  const std::string marker = "name=\"csrf\" value=\"";
  const size_t at = page->body.find(marker);
  REQUIRE(at != std::string::npos);
  const std::string token = page->body.substr(at + marker.size(), 32);
  auto ok = c.Http().Post("/batches/" + batch + "/cancel", "csrf=" + token,
                          "application/x-www-form-urlencoded");
  REQUIRE(ok);
  CHECK(ok->status == 303);
  CHECK(Body(c.Http().Get("/api/v1/batches/" + batch))["cancelled"] == 1);
}

TEST_CASE("TokensAndRolesGateTheConsole", "[web]") {
  TempDir tokens;
  const std::string viewer(20, 'v'), submitter(20, 's'), admin(20, 'a');
  WriteFile(tokens.File("tokens"), "# roles\nviewer " + viewer + "\nsubmit " +
                                       submitter + "\nadmin " + admin + "\n");
  Console c({"--http-token-file", tokens.File("tokens")});
  auto bearer = [](const std::string& t) {
    return httplib::Headers{{"Authorization", "Bearer " + t}};
  };
  auto none = c.Http().Get("/api/v1/queues");
  REQUIRE(none);
  CHECK(none->status == 401);
  auto page = c.Http().Get("/");
  REQUIRE(page);
  CHECK(page->status == 303);  // to /login
  auto wrong = c.Http().Get("/api/v1/queues", bearer(std::string(20, 'x')));
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto seen = c.Http().Get("/api/v1/queues", bearer(viewer));
  REQUIRE(seen);
  CHECK(seen->status == 200);

  const std::string body = json{{"urls", {"https://a.example/"}}}.dump();
  auto refused =
      c.Http().Post("/api/v1/submit", bearer(viewer), body, "application/json");
  REQUIRE(refused);
  CHECK(refused->status == 403);
  auto submitted = c.Http().Post("/api/v1/submit", bearer(submitter), body,
                                 "application/json");
  REQUIRE(submitted);
  CHECK(submitted->status == 201);
  auto purge = c.Http().Post("/api/v1/queues/generic/purge", bearer(submitter),
                             "{}", "application/json");
  REQUIRE(purge);
  CHECK(purge->status == 403);
  auto purged = c.Http().Post("/api/v1/queues/generic/purge", bearer(admin),
                              "{}", "application/json");
  REQUIRE(purged);
  CHECK(purged->status == 200);

  // Signing in sets an HttpOnly cookie that then works for pages.
  auto login = c.Http().Post("/login", "token=" + viewer,
                             "application/x-www-form-urlencoded");
  REQUIRE(login);
  CHECK(login->status == 303);
  const std::string cookie = login->get_header_value("Set-Cookie");
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  auto overview =
      c.Http().Get("/", {{"Cookie", cookie.substr(0, cookie.find(';'))}});
  REQUIRE(overview);
  CHECK(overview->status == 200);
}

TEST_CASE("ConsoleOffLoopbackWithoutTokensRefusesToStart", "[web]") {
  TempDir dir;
  Process broker(
      {Binary("tq-broker"), "--db", dir.File("tq.db"), "--listen",
       "tcp://127.0.0.1:0", "--http", "0.0.0.0:0", "--geoip-db", "none"},
      "", dir.File("broker.log"));
  auto code = broker.Wait(20s);
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK(ReadFile(dir.File("broker.log")).find("--http-token-file") !=
        std::string::npos);
}

TEST_CASE("SecondBrokerOnTheSameDatabaseRefusesToStart", "[web]") {
  Console c;  // its store's SQLite lock is shared, for the console's reads
  Process second({Binary("tq-broker"), "--db", c.dir.File("tq.db"), "--listen",
                  "tcp://127.0.0.1:0", "--http", "off", "--geoip-db", "none"},
                 "", c.dir.File("second.log"));
  auto code = second.Wait(20s);
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  CHECK(
      ReadFile(c.dir.File("second.log")).find("in use by another tq-broker") !=
      std::string::npos);
  CHECK(Body(c.Http().Get("/api/v1/queues"))["broker"]["store_ok"] == true);
}

TEST_CASE("ConsoleOffStartsNoHttpServer", "[web]") {
  TempDir dir;
  BrokerProcess broker(
      dir, {"--http", "off", "--http-ready-file", dir.File("http.url")});
  CHECK(broker.Log().find("web console") == std::string::npos);
  CHECK(ReadFile(dir.File("http.url")).empty());
}

TEST_CASE("HostileUrlsAndResultsRenderAsInertText", "[web]") {
  Console c;
  const std::string handler = c.dir.File("handler.sh");
  WriteFile(handler,
            "printf '<script>alert(1)</script><img src=x onerror=alert(2)>'\n");
  const std::string hostile = "https://x.example/'onmouseover=alert(3)//";
  json receipt = SubmitJson(c, {{"urls", {hostile}}});
  const std::string batch = receipt["batch_id"];
  WorkerSpec spec;
  spec.id = "w";
  spec.handler = {"--exec", "sh " + handler};
  auto worker = StartWorker(c.dir, c.broker->endpoint(), spec);
  REQUIRE(WaitUntil([&] { return BatchComplete(c, batch); }, 60s));
  auto tasks = Body(c.Http().Get("/api/v1/batches/" + batch + "/tasks"));
  const uint64_t id = tasks["tasks"][0]["task_id"];
  for (const std::string path :
       {"/tasks/" + std::to_string(id), "/batches/" + batch}) {
    auto page = c.Http().Get(path);
    REQUIRE(page);
    INFO(path);
    CHECK(page->status == 200);
    CHECK(page->get_header_value("Content-Security-Policy")
              .find("script-src 'self'") != std::string::npos);
    const std::string& html = page->body;
    CHECK(html.find("<script>alert") == std::string::npos);
    CHECK(html.find("<img src=x") == std::string::npos);
    CHECK(html.find("'onmouseover") == std::string::npos);
    CHECK(html.find("&#39;onmouseover=alert(3)//") != std::string::npos);
  }
  auto task = c.Http().Get("/tasks/" + std::to_string(id));
  CHECK(task->body.find("&lt;script&gt;alert(1)&lt;/script&gt;") !=
        std::string::npos);
}

TEST_CASE("DrainedWorkerTakesNothingNewAndDisconnectEndsItsSession", "[web]") {
  Console c;
  auto workers = [&] { return Body(c.Http().Get("/api/v1/workers")); };
  auto start = [&](const char* id) {
    WorkerSpec spec;
    spec.id = id;
    return StartWorker(c.dir, c.broker->endpoint(), spec);
  };
  auto w1 = start("w1");
  REQUIRE(WaitUntil([&] { return workers()["workers"].size() == 1; }, 20s));
  auto drained =
      Body(c.Http().Post("/api/v1/workers/w1/drain", "{}", "application/json"));
  CHECK(drained["drained"] == true);
  CHECK(workers()["workers"][0]["draining"] == true);

  // Only the second worker may run what comes now.
  json receipt = SubmitJson(c, {{"urls", {"https://a.example/"}}});
  const std::string batch = receipt["batch_id"];
  auto w2 = start("w2");
  REQUIRE(WaitUntil([&] { return BatchComplete(c, batch); }, 30s));
  auto tasks = Body(c.Http().Get("/api/v1/batches/" + batch + "/tasks"));
  CHECK(tasks["tasks"][0]["worker"] == "w2");

  auto gone = Body(
      c.Http().Post("/api/v1/workers/w2/disconnect", "{}", "application/json"));
  CHECK(gone["disconnected"] == true);
  CHECK(c.broker->Log().find("worker w2 disconnected by an admin") !=
        std::string::npos);
  auto unknown =
      c.Http().Post("/api/v1/workers/nobody/drain", "{}", "application/json");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
}

TEST_CASE("HttpAddressesAndTokenFilesParse", "[web]") {
  auto v6 = ParseHttpAddress("[::1]:8080");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 8080);
  CHECK_FALSE(ParseHttpAddress("8080").ok());
  CHECK_FALSE(ParseHttpAddress("h:99999").ok());
  CHECK(IsLoopbackHost("127.0.0.2"));
  CHECK(IsLoopbackHost("::1"));
  CHECK(IsLoopbackHost("localhost"));
  CHECK_FALSE(IsLoopbackHost("0.0.0.0"));
  CHECK_FALSE(IsLoopbackHost("10.0.0.1"));
  CHECK_FALSE(CheckExposure("0.0.0.0", AccessTable()).ok());
  CHECK(CheckExposure("127.0.0.1", AccessTable()).ok());
  auto bad = AccessTable::Parse("owner 0123456789abcdef\n");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().message().find("1: role 'owner'") != std::string::npos);
  CHECK_FALSE(AccessTable::Parse("viewer short\n").ok());
  auto t = AccessTable::Parse("admin 0123456789abcdef\n");
  REQUIRE(t.ok());
  CHECK(t->RoleOf("0123456789abcdef") == HttpRole::kAdmin);
  CHECK_FALSE(t->RoleOf("0123456789abcdeX").has_value());
  CHECK(HostOfHeader("[::1]:80") == "::1");
  CHECK(HostOfHeader("localhost:8080") == "localhost");
}

}  // namespace
}  // namespace tq

namespace tq {
namespace {

// The handler fails "bad" URLs, sleeps on "slow" ones, succeeds otherwise.
WorkerSpec AttemptWorker(const std::string& id) {
  WorkerSpec spec;
  spec.id = id;
  spec.concurrency = 2;
  spec.handler = {"--exec",
                  "sh -c 'case \"$1\" in *slow*) exec sleep 600;; *bad*) "
                  "echo boom >&2; exit 1;; *) echo {};; esac' sh {url}"};
  return spec;
}

}  // namespace

TEST_CASE("TaskPageShowsEveryAttemptAndWorkersWhatTheyRun", "[web]") {
  Console c;
  json receipt = SubmitJson(
      c, {{"text", "https://a.example/bad\nhttps://a.example/slow\n"},
          {"countries", "generic"},
          {"max_attempts", "2"}});
  const std::string batch = receipt["batch_id"];
  auto w1 = StartWorker(c.dir, c.broker->endpoint(), AttemptWorker("w1"));
  // Task 1 fails twice (dead); task 2 runs.
  auto task = [&](int id) {
    return Body(c.Http().Get("/api/v1/tasks/" + std::to_string(id)));
  };
  REQUIRE(WaitUntil(
      [&] {
        return task(1)["state"] == "dead" && task(2)["state"] == "leased";
      },
      30s, 100ms));
  json dead = task(1);
  CHECK(dead["attempts"] == 2);
  REQUIRE(dead["history"].size() == 2);
  for (int i = 0; i < 2; ++i) {
    const json& a = dead["history"][i];
    CHECK(a["attempt"] == i + 1);
    CHECK(a["worker"] == "w1");
    CHECK(a["ok"] == false);
    CHECK(a["started_ms"].get<int64_t>() > 0);
    CHECK(a["ended_ms"].get<int64_t>() >= a["started_ms"].get<int64_t>());
    CHECK(a["error"].get<std::string>().find("status 1") != std::string::npos);
  }
  CHECK(dead["lease"].is_null());
  json running = task(2);
  CHECK(running["history"].empty());
  REQUIRE(running["lease"].is_object());
  CHECK(running["lease"]["worker"] == "w1");
  CHECK(running["lease"]["url"] == "https://a.example/slow");

  // The pages: the attempts table, the lease, what the worker runs.
  auto page = c.Http().Get("/tasks/1");
  REQUIRE(page);
  CHECK(page->body.find("id=\"attempts\"") != std::string::npos);
  CHECK(page->body.find("exited with status 1") != std::string::npos);
  auto running_page = c.Http().Get("/tasks/2");
  REQUIRE(running_page);
  CHECK(running_page->body.find("id=\"task-lease\">on w1 since ") !=
        std::string::npos);
  CHECK(running_page->body.find("no attempt has ended yet") !=
        std::string::npos);
  json workers = Body(c.Http().Get("/api/v1/workers"));
  REQUIRE(workers["workers"].size() == 1);
  REQUIRE(workers["workers"][0]["current"].size() == 1);
  CHECK(workers["workers"][0]["current"][0]["task_id"] == 2);
  CHECK(workers["offline"].empty());
  auto workers_page = c.Http().Get("/workers");
  REQUIRE(workers_page);
  CHECK(
      workers_page->body.find("<a href=\"/tasks/2\">2</a> <span "
                              "class=\"url\">https://a.example/slow</span>") !=
      std::string::npos);

  // Killed, the worker is listed offline.
  w1.reset();
  REQUIRE(WaitUntil(
      [&] {
        json w = Body(c.Http().Get("/api/v1/workers"));
        return w["workers"].empty() && w["offline"].size() == 1;
      },
      20s, 100ms));
  auto gone = c.Http().Get("/workers");
  REQUIRE(gone);
  CHECK(gone->body.find("id=\"offline-workers\"") != std::string::npos);
}

}  // namespace tq
