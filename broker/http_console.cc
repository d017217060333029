#include "broker/http_console.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "broker/http_access.h"
#include "broker/http_archive.h"
#include "broker/http_pages.h"
#include "broker/read_model.h"
#include "client/channel.h"
#include "client/result_files.h"
#include "client/submit_flags.h"
#include "client/url_file.h"
#include "client/wire_convert.h"
#include "common/latency_histogram.h"
#include "tq/client.h"

namespace tq {
namespace {

using httplib::Request;
using httplib::Response;
using json = nlohmann::json;

constexpr const char* kBatchId = "([A-Za-z0-9._:-]{1,64})";
constexpr const char* kHtml = "text/html; charset=utf-8";
constexpr const char* kJson = "application/json";
constexpr size_t kMaxReports = 200;
constexpr uint32_t kResultsPage = 500;

// Nothing on a page may come from elsewhere or run inline.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
    "data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'";

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xff;
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

json CountsJson(const StateCounts& c) {
  json j = json::object();
  for (int s = 0; s <= 5; ++s) {
    j[std::string(TaskStateName(TaskState(s)))] = c.by_state[size_t(s)];
  }
  j["total"] = c.total();
  j["finished"] = c.finished();
  return j;
}

StateCounts FromProgress(const BatchProgress& p) {
  StateCounts c;
  c[TaskState::kQueued] = p.queued;
  c[TaskState::kLeased] = p.leased;
  c[TaskState::kRetryWait] = p.retry_wait;
  c[TaskState::kDone] = p.done;
  c[TaskState::kDead] = p.dead;
  c[TaskState::kCancelled] = p.cancelled;
  return c;
}

json TaskRowJson(const TaskRow& t) {
  json j = {{"task_id", t.task_id},
            {"batch_id", t.batch_id},
            {"index", t.index},
            {"queue", t.queue},
            {"url", t.url},
            {"state", TaskStateName(t.state)},
            {"attempts", t.attempts},
            {"worker", t.worker},
            {"submitted_ms", t.submitted_ms}};
  if (t.ok) j["ok"] = *t.ok;
  if (!t.error.empty()) j["error"] = t.error;
  if (t.started_ms) j["started_ms"] = t.started_ms;
  if (t.finished_ms) {
    j["finished_ms"] = t.finished_ms;
    j["duration_ms"] = t.duration_ms;
  }
  return j;
}

json RunningJson(const RunningTask& r);

json CurrentJson(const std::vector<RunningTask>& tasks) {
  json list = json::array();
  for (const RunningTask& r : tasks) list.push_back(RunningJson(r));
  return list;
}

json WorkerJson(const WorkerSummary& w) {
  return {{"worker_id", w.worker_id},
          {"country", w.country},
          {"country_source", w.country_source},
          {"queues", w.queues},
          {"concurrency", w.concurrency},
          {"credit", w.credit},
          {"in_flight", w.in_flight},
          {"last_seen_ms_ago", w.last_seen_ms_ago},
          {"hostname", w.hostname},
          {"tasks_done", w.tasks_done},
          {"peer_address", w.peer_address},
          {"current", CurrentJson(w.current)}};
}

json RunningJson(const RunningTask& r) {
  return {{"task_id", r.task_id}, {"url", r.url},
          {"queue", r.queue},     {"batch_id", r.batch_id},
          {"worker", r.worker},   {"since_ms", r.since_ms},
          {"attempt", r.attempt}};
}

json StatsJson(const BrokerStats& s) {
  return {{"messages_in", s.messages_in},
          {"messages_out", s.messages_out},
          {"bad_messages", s.bad_messages},
          {"commits", s.commits},
          {"commit_failures", s.commit_failures},
          {"redeliveries", s.redeliveries},
          {"store_ok", s.store_ok},
          {"store_error", s.store_error},
          {"tasks_submitted", s.tasks_submitted},
          {"tasks_done", s.tasks_done},
          {"attempts_failed", s.attempts_failed},
          {"tasks_dead", s.tasks_dead},
          {"tasks_cancelled", s.tasks_cancelled},
          {"permission_denied", s.permission_denied},
          {"rate_limited", s.rate_limited},
          {"commit_p99_le_s", QuantileUpperBound(s.commit_latency, 0.99)},
          {"fsync_p99_le_s", QuantileUpperBound(s.sync_latency, 0.99)}};
}

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string Param(const Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
}

// A form field from a urlencoded or multipart body.
std::string Field(const Request& req, const char* name) {
  if (req.has_param(name)) return req.get_param_value(name);
  if (req.has_file(name)) return req.get_file_value(name).content;
  return {};
}

bool IsHex(std::string_view s) {
  return !s.empty() &&
         s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string Trim(std::string s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// What an upload or an API submit asks for, checked like tq-submit's flags.
struct SubmitRequest {
  std::string shown_name = "pasted";
  std::string text;  // the URL file
  std::string countries, user_agent, referer, proxy, time_limit, priority,
      max_attempts;
  std::map<std::string, std::string> extra_options;
  std::string batch_id;
  bool strict = false;
};

struct SubmitOutcome {
  Status status;  // not ok: nothing was submitted (errors say why)
  std::vector<std::string> report;  // lines, as tq-submit prints them
  json bad_lines = json::array();
  json errors = json::array();
  SubmitReceipt receipt;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct HttpConsole::Impl {
  // Constant after Start.
  ConsoleOptions options;
  AccessTable access;
  std::string csrf;  // per process; forms carry it
  std::string url;
  std::string host;

  httplib::Server server;
  std::thread thread;
  std::atomic<uint64_t> requests{0};

  // Idle clients to the broker (one per request at a time).
  std::mutex clients_mu;
  std::vector<std::unique_ptr<Client>> clients;

  // The overview's chart: past minutes are recounted once a minute (they
  // change only when dead tasks are retried or old results deleted), the
  // current one on every request.
  std::mutex chart_mu;
  std::vector<MinuteCount> chart;
  int64_t chart_full_at = 0;
  Result<std::vector<MinuteCount>> Minutes(sqlite3* db);

  // Upload reports by batch, for the batch page the upload lands on.
  std::mutex reports_mu;
  std::map<std::string, std::vector<std::string>> reports;
  std::deque<std::string> report_order;

  Status Setup();
  void Routes();
  bool Authorize(const Request& req, Response& res);
  bool CheckCsrf(const Request& req, Response& res, bool api);

  // One read-only connection per request: no lock between requests.
  Result<std::unique_ptr<ReadOnlyDb>> Db() const {
    return ReadOnlyDb::Open(options.db_path);
  }

  template <typename F>
  auto WithClient(F f) -> decltype(f(std::declval<Client&>())) {
    std::unique_ptr<Client> c;
    {
      std::lock_guard lock(clients_mu);
      if (!clients.empty()) {
        c = std::move(clients.back());
        clients.pop_back();
      }
    }
    if (!c) {
      ClientOptions o;
      o.endpoint = options.broker_endpoint;
      o.curve = options.curve;
      o.request_timeout = std::chrono::milliseconds(5000);
      o.attempts = 2;
      auto made = Client::Connect(o);
      if (!made.ok()) return made.status();
      c = std::move(*made);
    }
    auto result = f(*c);
    // A client whose request timed out may get its late reply: drop it.
    if (result.ok() || result.status().code() != Status::Code::kUnavailable) {
      std::lock_guard lock(clients_mu);
      clients.push_back(std::move(c));
    }
    return result;
  }

  void SendPage(const Request& req, Response& res, const Page& page,
                std::string_view nav, int status = 200) const {
    res.status = status;
    if (req.get_header_value("X-Live") == "1") {
      res.set_content(page.live, kHtml);
    } else {
      res.set_content(RenderDocument(page, nav), kHtml);
    }
  }
  void SendError(const Request& req, Response& res, const Status& s,
                 bool api) const {
    if (api) {
      res.status = HttpStatusOf(s);
      res.set_content(Dump({{"error", s.message()}}), kJson);
    } else {
      SendPage(req, res, RenderMessage("Error", s.message()), "",
               HttpStatusOf(s));
    }
  }
  static void SendJson(Response& res, const json& j, int status = 200) {
    res.status = status;
    res.set_content(Dump(j), kJson);
  }

  SubmitOutcome Submit(const SubmitRequest& r);
  void Remember(const std::string& batch, std::vector<std::string> report);
  std::vector<std::string> ReportOf(const std::string& batch);

  // Handlers.
  void Overview(const Request& req, Response& res);
  void Workers(const Request& req, Response& res, bool api);
  void WorkerAction(const Request& req, Response& res, bool api,
                    bool disconnect);
  // A request the client library has no call for, on a channel of its own.
  Result<wire::Envelope> Call(wire::Envelope request) const {
    ClientOptions o;
    o.endpoint = options.broker_endpoint;
    o.curve = options.curve;
    o.request_timeout = std::chrono::milliseconds(5000);
    o.attempts = 2;
    auto channel = Channel::Open(o);
    if (!channel.ok()) return channel.status();
    return (*channel)->Call(std::move(request));
  }
  void Batches(const Request& req, Response& res, bool api);
  void Batch(const Request& req, Response& res, bool api);
  void BatchTasks(const Request& req, Response& res);
  void Task(const Request& req, Response& res, bool api);
  void Results(const Request& req, Response& res);
  void Files(const Request& req, Response& res);
  void FileDownload(const Request& req, Response& res);
  void Upload(const Request& req, Response& res);
  void ApiSubmit(const Request& req, Response& res);
  void Action(const Request& req, Response& res, bool api,
              const std::string& what);
  void Queues(const Request& req, Response& res);
  void Chart(const Request& req, Response& res);
  void Metrics(const Request& req, Response& res);
  void Login(const Request& req, Response& res);
};

// ---------------------------------------------------------------- access

bool HttpConsole::Impl::Authorize(const Request& req, Response& res) {
  const bool api = req.path.rfind("/api/", 0) == 0 || req.path == "/metrics";
  auto refuse = [&](int status, const std::string& why) {
    res.status = status;
    if (api) {
      res.set_content(Dump({{"error", why}}), kJson);
    } else if (status == 401) {
      res.status = 303;
      res.set_header("Location", "/login");
    } else {
      res.set_content(RenderDocument(RenderMessage("Refused", why), ""), kHtml);
    }
    return false;
  };
  // Without tokens the console trusts whoever reaches loopback; a page of
  // another site must not reach it through a name it controls (DNS
  // rebinding), so the Host must be a loopback name too.
  if (access.open() &&
      !IsLoopbackHost(HostOfHeader(req.get_header_value("Host")))) {
    return refuse(403, "this console answers only on a loopback host name");
  }
  if (req.method == "POST" && req.has_header("Origin")) {
    const std::string origin = req.get_header_value("Origin");
    if (origin != "http://" + req.get_header_value("Host")) {
      return refuse(403, "cross-origin request refused");
    }
  }
  if (req.path.rfind("/static/", 0) == 0 || req.path == "/login") return true;

  HttpRole need = HttpRole::kViewer;
  if (req.method == "POST") {
    need = HttpRole::kSubmit;
    if (req.path.rfind("/api/v1/queues/", 0) == 0 ||
        req.path.rfind("/api/v1/workers/", 0) == 0 ||
        req.path.rfind("/workers/", 0) == 0) {
      need = HttpRole::kAdmin;
    }
  }
  std::string token;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) {
    token = auth.substr(7);
  } else {
    const std::string cookies = req.get_header_value("Cookie");
    const size_t at = cookies.find("tq_token=");
    if (at != std::string::npos) {
      const size_t end = cookies.find(';', at);
      token =
          cookies.substr(at + 9, end == std::string::npos ? end : end - at - 9);
    }
  }
  const std::optional<HttpRole> role = access.RoleOf(token);
  if (!role) {
    return refuse(401, token.empty() ? "a token is required (Authorization: "
                                       "Bearer TOKEN)"
                                     : "unknown token");
  }
  if (*role < need) {
    return refuse(403, "the " + std::string(HttpRoleName(*role)) +
                           " role may not do this (needs " +
                           std::string(HttpRoleName(need)) + ")");
  }
  return true;
}

// State changes need proof that the request did not come from another site's
// page: the form's csrf field, the X-CSRF-Token header, a Bearer token (not
// sent by browsers on their own) or, for the API, a JSON body (which a
// cross-site form cannot send without a CORS preflight we never allow).
bool HttpConsole::Impl::CheckCsrf(const Request& req, Response& res, bool api) {
  if (req.get_header_value("Authorization").rfind("Bearer ", 0) == 0) {
    return true;
  }
  if (SecretEquals(req.get_header_value("X-CSRF-Token"), csrf)) return true;
  if (api && req.get_header_value("Content-Type").rfind(kJson, 0) == 0) {
    return true;
  }
  if (!api && SecretEquals(Field(req, "csrf"), csrf)) return true;
  res.status = 403;
  const std::string why =
      api ? "send Content-Type: application/json (or X-CSRF-Token)"
          : "the form is stale: reload the page and try again";
  if (api) {
    res.set_content(Dump({{"error", why}}), kJson);
  } else {
    res.set_content(RenderDocument(RenderMessage("Refused", why), ""), kHtml);
  }
  return false;
}

// ---------------------------------------------------------------- submit

SubmitOutcome HttpConsole::Impl::Submit(const SubmitRequest& r) {
  SubmitOutcome out;
  std::istringstream in(r.text);
  UrlFile parsed = ParseUrlFile(in);
  auto fail = [&](const std::string& why) {
    out.status = Status::InvalidArgument(why);
    out.report.push_back(why);
    return out;
  };
  for (const auto& bad : parsed.bad) {
    out.report.push_back(r.shown_name + ":" + std::to_string(bad.line_no) +
                         ": " + bad.reason);
    out.bad_lines.push_back({{"line", bad.line_no}, {"reason", bad.reason}});
  }
  if (!parsed.status.ok()) {
    return fail(r.shown_name + " " + parsed.status.message());
  }
  if (!parsed.bad.empty() && r.strict) {
    return fail(std::to_string(parsed.bad.size()) + " bad line" +
                (parsed.bad.size() == 1 ? "" : "s") +
                "; nothing submitted (strict)");
  }
  if (parsed.urls.empty()) return fail("no URLs to submit in " + r.shown_name);

  SubmitOptions so;
  auto queues = ParseCountries(Trim(r.countries));
  if (!queues.ok()) return fail(queues.status().message());
  so.queues = *queues;
  try {
    if (!Trim(r.priority).empty()) so.priority = std::stoi(r.priority);
    if (!Trim(r.max_attempts).empty()) {
      const int n = std::stoi(r.max_attempts);
      if (n < 1 || n > 100) return fail("max attempts must be 1 to 100");
      so.max_attempts = uint32_t(n);
    }
    if (!Trim(r.time_limit).empty()) {
      const double s = std::stod(r.time_limit);
      if (!(s >= 0.01 && s <= 86400)) {
        return fail("time limit must be 0.01 to 86400 seconds");
      }
      so.time_limit_ms = uint32_t(s * 1000 + 0.5);
    }
  } catch (const std::exception&) {
    return fail("priority, max attempts and time limit must be numbers");
  }
  so.task_options = r.extra_options;
  if (!Trim(r.user_agent).empty())
    so.task_options["user_agent"] = Trim(r.user_agent);
  if (!Trim(r.referer).empty()) so.task_options["referer"] = Trim(r.referer);
  if (!Trim(r.proxy).empty()) so.task_options["proxy"] = Trim(r.proxy);
  so.batch_id = r.batch_id.empty() ? NewBatchId() : r.batch_id;
  if (Status s = ValidateBatchId(so.batch_id); !s.ok())
    return fail(s.message());

  std::vector<std::string> urls;
  urls.reserve(parsed.urls.size());
  for (const auto& u : parsed.urls) urls.push_back(u.url);
  auto receipt = WithClient([&](Client& c) { return c.Submit(urls, so); });
  if (!receipt.ok()) {
    out.status = receipt.status();
    out.report.push_back("submit failed: " + receipt.status().message() +
                         " (batch " + so.batch_id + ")");
    return out;
  }
  for (const auto& e : receipt->errors) {
    const size_t line = parsed.urls[e.url_index].line_no;
    out.report.push_back(r.shown_name + ":" + std::to_string(line) + ": " +
                         e.reason + " (queue " + e.queue + ")");
    out.errors.push_back(
        {{"line", line}, {"queue", e.queue}, {"reason", e.reason}});
  }
  const uint64_t held = receipt->accepted + receipt->duplicates;
  out.report.push_back("submitted " + std::to_string(held) + " tasks (" +
                       std::to_string(receipt->duplicates) +
                       " duplicates) in batch " + receipt->batch_id);
  out.receipt = std::move(*receipt);
  return out;
}

void HttpConsole::Impl::Remember(const std::string& batch,
                                 std::vector<std::string> report) {
  std::lock_guard lock(reports_mu);
  if (reports.emplace(batch, std::move(report)).second) {
    report_order.push_back(batch);
  }
  while (report_order.size() > kMaxReports) {
    reports.erase(report_order.front());
    report_order.pop_front();
  }
}

std::vector<std::string> HttpConsole::Impl::ReportOf(const std::string& b) {
  std::lock_guard lock(reports_mu);
  auto it = reports.find(b);
  return it == reports.end() ? std::vector<std::string>{} : it->second;
}

void HttpConsole::Impl::Upload(const Request& req, Response& res) {
  if (!CheckCsrf(req, res, false)) return;
  SubmitRequest r;
  if (req.has_file("file") && !req.get_file_value("file").content.empty()) {
    const auto& f = req.get_file_value("file");
    r.text = f.content;
    r.shown_name = f.filename.empty() ? "upload" : f.filename;
  } else {
    r.text = Field(req, "urls");
  }
  r.countries = Field(req, "countries");
  r.user_agent = Field(req, "user_agent");
  r.referer = Field(req, "referer");
  r.proxy = Field(req, "proxy");
  r.time_limit = Field(req, "time_limit");
  r.priority = Field(req, "priority");
  r.max_attempts = Field(req, "max_attempts");
  SubmitOutcome out = Submit(r);
  if (!out.status.ok()) {
    UploadView v;
    v.csrf = csrf;
    v.errors = std::move(out.report);
    v.urls = req.has_file("file") && !req.get_file_value("file").content.empty()
                 ? ""
                 : r.text;
    v.countries = r.countries;
    v.user_agent = r.user_agent;
    v.referer = r.referer;
    v.proxy = r.proxy;
    v.time_limit = r.time_limit;
    v.priority = r.priority;
    v.max_attempts = r.max_attempts;
    SendPage(req, res, RenderUpload(v), "Upload", HttpStatusOf(out.status));
    return;
  }
  Remember(out.receipt.batch_id, std::move(out.report));
  res.status = 303;
  res.set_header("Location", "/batches/" + UrlEncode(out.receipt.batch_id));
}

void HttpConsole::Impl::ApiSubmit(const Request& req, Response& res) {
  if (!CheckCsrf(req, res, true)) return;
  SubmitRequest r;
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind(kJson, 0) == 0) {
    json j = json::parse(req.body, nullptr, false);
    if (!j.is_object()) {
      return SendJson(res, {{"error", "the body is not a JSON object"}}, 400);
    }
    try {
      if (j.contains("urls")) {
        for (const auto& u : j.at("urls")) {
          r.text += u.get<std::string>();
          r.text += '\n';
        }
      } else {
        r.text = j.value("text", "");
      }
      auto str = [&](const char* k) {
        if (!j.contains(k)) return std::string();
        const auto& v = j.at(k);
        if (v.is_string()) return v.get<std::string>();
        if (v.is_array()) {
          std::string joined;
          for (const auto& x : v) {
            joined += (joined.empty() ? "" : ",") + x.get<std::string>();
          }
          return joined;
        }
        return v.dump();
      };
      r.countries = str("countries");
      r.priority = str("priority");
      r.time_limit = str("time_limit_s");
      r.max_attempts = str("max_attempts");
      r.batch_id = j.value("batch_id", "");
      r.strict = j.value("strict", false);
      if (j.contains("options")) {
        for (const auto& [k, v] : j.at("options").items()) {
          r.extra_options[k] = v.is_string() ? v.get<std::string>() : v.dump();
        }
      }
    } catch (const json::exception& e) {
      return SendJson(res, {{"error", std::string("bad field: ") + e.what()}},
                      400);
    }
  } else {
    r.text = req.body;  // a plain URL file
    r.countries = Param(req, "countries");
    r.shown_name = "body";
  }
  SubmitOutcome out = Submit(r);
  json j = {{"bad_lines", out.bad_lines},
            {"errors", out.errors},
            {"report", out.report}};
  if (!out.status.ok()) {
    j["error"] = out.status.message();
    return SendJson(res, j, HttpStatusOf(out.status));
  }
  Remember(out.receipt.batch_id, out.report);
  j["batch_id"] = out.receipt.batch_id;
  j["total"] = out.receipt.total;
  j["accepted"] = out.receipt.accepted;
  j["duplicates"] = out.receipt.duplicates;
  SendJson(res, j, 201);
}

// ---------------------------------------------------------------- reads

Result<std::vector<MinuteCount>> HttpConsole::Impl::Minutes(sqlite3* db) {
  const int64_t now = NowMs();
  const int64_t minute = now / 60'000 * 60'000;
  std::lock_guard lock(chart_mu);  // one count at a time, shared by all
  if (chart.empty() || now - chart_full_at >= 60'000 ||
      chart.back().minute_ms != minute) {
    auto all = FinishedPerMinute(db, now, 60);
    if (!all.ok()) return all.status();
    chart = std::move(*all);
    chart_full_at = now;
  } else {
    auto current = FinishedPerMinute(db, now, 1);
    if (!current.ok()) return current.status();
    chart.back() = current->back();
  }
  return chart;
}

void HttpConsole::Impl::Overview(const Request& req, Response& res) {
  OverviewData d;
  auto queues = WithClient([&](Client& c) { return c.Queues(&d.stats); });
  if (queues.ok()) {
    d.queues = std::move(*queues);
  } else {
    d.broker_error = queues.status().message();
  }
  auto workers = WithClient([](Client& c) { return c.Workers(); });
  if (workers.ok()) d.workers = std::move(*workers);
  if (auto db = Db(); db.ok()) {
    if (auto m = Minutes((*db)->get()); m.ok()) {
      d.minutes = std::move(*m);
    }
  }
  SendPage(req, res, RenderOverview(d), "Overview");
}

void HttpConsole::Impl::Queues(const Request&, Response& res) {
  BrokerStats stats;
  auto queues = WithClient([&](Client& c) { return c.Queues(&stats); });
  if (!queues.ok()) {
    return SendJson(res, {{"error", queues.status().message()}},
                    HttpStatusOf(queues.status()));
  }
  json list = json::array();
  for (const auto& q : *queues) {
    StateCounts c = FromProgress(q.counts);
    json j = CountsJson(c);
    j["name"] = q.name;
    j["workers"] = q.workers;
    list.push_back(j);
  }
  SendJson(res, {{"queues", list}, {"broker", StatsJson(stats)}});
}

void HttpConsole::Impl::Chart(const Request&, Response& res) {
  auto db = Db();
  if (!db.ok()) return SendJson(res, {{"error", db.status().message()}}, 500);
  auto m = Minutes((*db)->get());
  if (!m.ok()) return SendJson(res, {{"error", m.status().message()}}, 500);
  json list = json::array();
  for (const auto& x : *m) {
    list.push_back(
        {{"minute_ms", x.minute_ms}, {"done", x.done}, {"failed", x.failed}});
  }
  SendJson(res, {{"minutes", list}});
}

void HttpConsole::Impl::Workers(const Request& req, Response& res, bool api) {
  // Straight from the wire: the list carries the draining flag too.
  wire::Envelope ask;
  ask.mutable_list_workers()->set_include_offline(true);
  auto reply = Call(std::move(ask));
  WorkersView v;
  v.csrf = csrf;
  if (reply.ok()) {
    for (const auto& w : reply->worker_list().workers()) {
      if (w.offline()) {
        v.offline.push_back(ToWorkerSummary(w));
        continue;
      }
      v.workers.push_back(ToWorkerSummary(w));
      v.draining.push_back(w.draining());
    }
  }
  if (api) {
    if (!reply.ok()) return SendError(req, res, reply.status(), true);
    json list = json::array();
    for (size_t i = 0; i < v.workers.size(); ++i) {
      json w = WorkerJson(v.workers[i]);
      w["draining"] = bool(v.draining[i]);
      list.push_back(w);
    }
    json offline = json::array();
    for (const WorkerSummary& w : v.offline) {
      offline.push_back({{"worker_id", w.worker_id},
                         {"last_seen_ms", w.last_seen_ms},
                         {"tasks_done", w.tasks_done},
                         {"failed", w.failed}});
    }
    return SendJson(res, {{"workers", list}, {"offline", offline}});
  }
  if (!reply.ok()) v.broker_error = reply.status().message();
  const std::string done = Param(req, "done");
  if (done == "drained" || done == "disconnected") {
    v.notice = "worker " + Param(req, "worker") + " " + done;
  }
  SendPage(req, res, RenderWorkers(v), "Workers");
}

void HttpConsole::Impl::WorkerAction(const Request& req, Response& res,
                                     bool api, bool disconnect) {
  if (!CheckCsrf(req, res, api)) return;
  const std::string worker = req.matches[1];
  wire::Envelope ask;
  if (disconnect) {
    ask.mutable_disconnect_worker()->set_worker_id(worker);
  } else {
    ask.mutable_drain_worker()->set_worker_id(worker);
  }
  auto reply = Call(std::move(ask));
  if (!reply.ok()) return SendError(req, res, reply.status(), api);
  const char* done = disconnect ? "disconnected" : "drained";
  const uint64_t held = reply->admin_ack().affected();
  if (api) {
    return SendJson(res, {{"worker_id", worker},
                          {done, true},
                          {disconnect ? "requeued" : "in_flight", held}});
  }
  res.status = 303;
  res.set_header("Location", "/workers?done=" + std::string(done) +
                                 "&worker=" + UrlEncode(worker));
}

void HttpConsole::Impl::Batches(const Request& req, Response& res, bool api) {
  uint64_t before = 0;
  uint32_t limit = 50;
  try {
    if (req.has_param("before")) before = std::stoull(Param(req, "before"));
    if (req.has_param("limit"))
      limit = uint32_t(std::stoul(Param(req, "limit")));
  } catch (const std::exception&) {
    return SendError(req, res, Status::InvalidArgument("bad before or limit"),
                     api);
  }
  // The broker's list, as tq-ctl batches shows it: from its memory, so it
  // costs the same at 1,000,000 tasks. `before` is a creation seq there.
  auto listing =
      WithClient([&](Client& c) { return c.Batches(limit, before); });
  if (!listing.ok()) return SendError(req, res, listing.status(), api);
  BatchListPage page;
  for (const BatchOverview& b : listing->batches) {
    page.batches.push_back(
        {b.batch_id, FromProgress(b.counts), b.seq, b.created_ms});
  }
  page.next_before = listing->next_before;
  if (!api) return SendPage(req, res, RenderBatchList(page), "Batches");
  json list = json::array();
  for (const BatchOverview& b : listing->batches) {
    list.push_back({{"batch_id", b.batch_id},
                    {"submitted_ms", b.created_ms},
                    {"created_ms", b.created_ms},
                    {"submitter", b.submitter},
                    {"seq", b.seq},
                    {"counts", CountsJson(FromProgress(b.counts))}});
  }
  json j = {{"batches", list}, {"total", listing->total}};
  if (page.next_before) j["next_before"] = page.next_before;
  SendJson(res, j);
}

// The filter of a batch page or /api/v1/batches/ID/tasks from its query.
static Result<TaskFilter> FilterOf(const Request& req, std::string batch) {
  TaskFilter f;
  f.batch_id = std::move(batch);
  const std::string state = Param(req, "state");
  if (!state.empty()) {
    f.state = ParseTaskState(state);
    if (!f.state)
      return Status::InvalidArgument("unknown state '" + state + "'");
  }
  f.queue = Param(req, "queue");
  f.url_contains = Param(req, "q");
  try {
    if (req.has_param("after")) f.after_index = std::stoll(Param(req, "after"));
    if (req.has_param("limit"))
      f.limit = uint32_t(std::stoul(Param(req, "limit")));
  } catch (const std::exception&) {
    return Status::InvalidArgument("bad after or limit");
  }
  return f;
}

void HttpConsole::Impl::Batch(const Request& req, Response& res, bool api) {
  const std::string batch = req.matches[1];
  auto db = Db();
  if (!db.ok()) return SendError(req, res, db.status(), api);
  // The broker's own counts are in memory (exact and cheap); the database's
  // if the broker does not answer.
  StateCounts counts;
  auto progress = WithClient([&](Client& c) { return c.Progress(batch); });
  if (progress.ok()) {
    counts = FromProgress(*progress);
  } else if (progress.status().code() == Status::Code::kNotFound) {
    return SendError(req, res, Status::NotFound("no batch " + batch), api);
  } else {
    auto c = CountBatch((*db)->get(), batch);
    if (!c.ok()) return SendError(req, res, c.status(), api);
    counts = *c;
  }
  if (api) {
    json j = CountsJson(counts);
    j["batch_id"] = batch;
    j["complete"] = counts.total() > 0 && counts.finished() == counts.total();
    return SendJson(res, j);
  }
  BatchView v;
  v.batch_id = batch;
  v.counts = counts;
  v.csrf = csrf;
  auto filter = FilterOf(req, batch);
  if (!filter.ok()) return SendError(req, res, filter.status(), false);
  v.filter = *filter;
  auto page = ListTasks((*db)->get(), v.filter);
  if (!page.ok()) return SendError(req, res, page.status(), false);
  v.tasks = std::move(*page);
  v.upload_report = ReportOf(batch);
  const std::string done = Param(req, "done");
  const std::string n = Param(req, "n");
  if ((done == "cancelled" || done == "retried") &&
      n.find_first_not_of("0123456789") == std::string::npos && !n.empty()) {
    v.notice = done + " " + n + " task" + (n == "1" ? "" : "s");
  }
  SendPage(req, res, RenderBatch(v), "Batches");
}

void HttpConsole::Impl::BatchTasks(const Request& req, Response& res) {
  auto db = Db();
  if (!db.ok()) return SendError(req, res, db.status(), true);
  auto filter = FilterOf(req, req.matches[1]);
  if (!filter.ok()) return SendError(req, res, filter.status(), true);
  auto page = ListTasks((*db)->get(), *filter);
  if (!page.ok()) return SendError(req, res, page.status(), true);
  json list = json::array();
  for (const auto& t : page->tasks) list.push_back(TaskRowJson(t));
  json j = {{"tasks", list}};
  if (page->next_after >= 0) j["next_after"] = page->next_after;
  SendJson(res, j);
}

void HttpConsole::Impl::Task(const Request& req, Response& res, bool api) {
  auto db = Db();
  if (!db.ok()) return SendError(req, res, db.status(), api);
  uint64_t id = 0;
  try {
    id = std::stoull(std::string(req.matches[1]));
  } catch (const std::exception&) {
    return SendError(req, res, Status::NotFound("no such task"), api);
  }
  auto t = ReadTask((*db)->get(), id);
  if (!t.ok()) return SendError(req, res, t.status(), api);
  // Every attempt and the live lease come from the broker, as tq-ctl task
  // shows them (a pending task's attempts are in its memory only); without
  // an answer, the finished task's history from the database.
  auto report = WithClient([&](Client& c) { return c.Task(id); });
  const RunningTask* lease = nullptr;
  if (report.ok()) {
    t->history = report->task.history;
    if (report->leased) lease = &report->lease;
  }
  if (!api) return SendPage(req, res, RenderTask(*t, lease), "Batches");
  json j = TaskRowJson(t->row);
  j["priority"] = t->priority;
  j["max_attempts"] = t->max_attempts;
  j["time_limit_ms"] = t->time_limit_ms;
  j["options"] = json::parse(t->options_json, nullptr, false);
  json attempts = json::array();
  for (const AttemptRecord& a : t->history) {
    attempts.push_back({{"attempt", a.attempt},
                        {"worker", a.worker},
                        {"started_ms", a.started_ms},
                        {"ended_ms", a.ended_ms},
                        {"ok", a.ok},
                        {"outcome", a.outcome},
                        {"error", a.error}});
  }
  j["history"] = attempts;
  j["lease"] = lease ? RunningJson(*lease) : json();
  if (t->result) j["result"] = json::parse(ToJsonLine(*t->result));
  SendJson(res, j);
}

void HttpConsole::Impl::Results(const Request& req, Response& res) {
  const std::string batch = req.matches[1];
  auto db = Db();
  if (!db.ok()) return SendError(req, res, db.status(), true);
  auto shared = std::make_shared<std::unique_ptr<ReadOnlyDb>>(std::move(*db));
  res.set_header("Content-Disposition",
                 "attachment; filename=\"" + batch + ".jsonl\"");
  // The same lines as tq-submit --wait writes, in finishing order.
  res.set_chunked_content_provider(
      "application/x-ndjson", [shared, batch](size_t, httplib::DataSink& sink) {
        uint64_t after = 0;
        while (true) {
          auto page = ReadResults((*shared)->get(), batch, after, kResultsPage);
          if (!page.ok() || page->empty()) break;
          std::string chunk;
          for (const auto& r : *page) chunk += ToJsonLine(r) + "\n";
          if (!sink.write(chunk.data(), chunk.size())) return false;
          after = page->back().finish_seq;
        }
        sink.done();
        return true;
      });
}

void HttpConsole::Impl::Files(const Request& req, Response& res) {
  const std::string batch = req.matches[1];
  auto db = Db();
  if (!db.ok()) return SendError(req, res, db.status(), true);
  auto shared = std::make_shared<std::unique_ptr<ReadOnlyDb>>(std::move(*db));
  const std::string files_dir = options.files_dir;
  res.set_header("Content-Disposition",
                 "attachment; filename=\"" + batch + ".tar.gz\"");
  // The tasks layout of tq-ctl results --out: BATCH/TASK/result.json and
  // BATCH/TASK/files/NAME.
  res.set_chunked_content_provider(
      "application/gzip",
      [shared, batch, files_dir](size_t, httplib::DataSink& sink) {
        TarGzStream tar(
            [&sink](const char* p, size_t n) { return sink.write(p, n); });
        uint64_t after = 0;
        while (true) {
          auto page = ReadResults((*shared)->get(), batch, after, kResultsPage);
          if (!page.ok() || page->empty()) break;
          for (const auto& r : *page) {
            const std::string dir = batch + "/" + std::to_string(r.task_id);
            const int64_t mtime = r.finished_ms / 1000;
            if (!tar.Add(dir + "/result.json", ToJsonLine(r) + "\n", mtime)
                     .ok()) {
              return false;
            }
            for (const auto& f : r.files) {
              if (!IsHex(f.sha256)) continue;
              std::ifstream in(
                  files_dir + "/" + f.sha256.substr(0, 2) + "/" + f.sha256,
                  std::ios::binary);
              if (!in) continue;  // swept by retention meanwhile
              std::stringstream content;
              content << in.rdbuf();
              if (!tar.Add(dir + "/files/" + SafeRelativePath(f.name),
                           content.str(), mtime)
                       .ok()) {
                return false;
              }
            }
          }
          after = page->back().finish_seq;
        }
        if (!tar.Finish().ok()) return false;
        sink.done();
        return true;
      });
}

void HttpConsole::Impl::FileDownload(const Request& req, Response& res) {
  const std::string sha = req.matches[1];
  std::ifstream in(options.files_dir + "/" + sha.substr(0, 2) + "/" + sha,
                   std::ios::binary);
  if (!in) return SendError(req, res, Status::NotFound("no such file"), false);
  std::stringstream content;
  content << in.rdbuf();
  // Always a download, never rendered: a result's HTML stays inert.
  std::string name = SafeRelativePath(Param(req, "name"));
  const size_t slash = name.rfind('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  std::string shown;
  for (char c : name) {
    shown += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
              c == '-' || c == '_')
                 ? c
                 : '_';
  }
  res.set_header("Content-Disposition",
                 "attachment; filename=\"" + shown + "\"");
  res.set_content(content.str(), "application/octet-stream");
}

void HttpConsole::Impl::Action(const Request& req, Response& res, bool api,
                               const std::string& what) {
  if (!CheckCsrf(req, res, api)) return;
  const std::string name = req.matches[1];
  Result<uint64_t> n = Status::Internal("unknown action");
  const char* key = "count";
  if (what == "cancel") {
    n = WithClient([&](Client& c) { return c.Cancel(name); });
    key = "cancelled";
  } else if (what == "retry") {
    n = WithClient([&](Client& c) { return c.RetryDead(name, ""); });
    key = "retried";
  } else if (what == "purge") {
    n = WithClient([&](Client& c) { return c.Purge(name); });
    key = "purged";
  } else if (what == "retry-queue") {
    n = WithClient([&](Client& c) { return c.RetryDead("", name); });
    key = "retried";
  }
  if (!n.ok()) return SendError(req, res, n.status(), api);
  if (api) return SendJson(res, {{key, *n}});
  res.status = 303;
  res.set_header("Location", "/batches/" + UrlEncode(name) + "?done=" + key +
                                 "&n=" + std::to_string(*n));
}

namespace {

// A Prometheus histogram: cumulative buckets, then the sum and count. An
// empty one (no syncer) is left out.
void AppendHistogram(std::string& m, const char* name, const char* text,
                     const LatencyBuckets& h) {
  if (h.counts.size() != h.upper_bounds_s.size() + 1) return;
  m += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, text, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.upper_bounds_s.size(); ++i) {
    cumulative += h.counts[i];
    m += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.upper_bounds_s[i],
                     cumulative);
  }
  cumulative += h.counts.back();
  m += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  m += fmt::format("{}_sum {}\n{}_count {}\n", name, h.sum_s, name, cumulative);
}

}  // namespace

void HttpConsole::Impl::Metrics(const Request&, Response& res) {
  BrokerStats stats;
  auto queues = WithClient([&](Client& c) { return c.Queues(&stats); });
  auto workers = WithClient([](Client& c) { return c.Workers(); });
  std::string m;
  auto help = [&](const char* name, const char* type, const char* text) {
    m += std::string("# HELP ") + name + " " + text + "\n# TYPE " + name + " " +
         type + "\n";
  };
  // Label values: backslash, quote and newline escaped.
  auto label = [](const std::string& v) {
    std::string out;
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out;
  };
  help("tq_up", "gauge", "1 if the broker answered the console");
  m += "tq_up " + std::string(queues.ok() ? "1" : "0") + "\n";
  if (queues.ok()) {
    help("tq_tasks", "gauge", "tasks kept, per queue and state");
    StateCounts all;
    for (const auto& q : *queues) {
      const StateCounts c = FromProgress(q.counts);
      for (int s = 0; s <= 5; ++s) {
        m += "tq_tasks{queue=\"" + label(q.name) + "\",state=\"" +
             std::string(TaskStateName(TaskState(s))) + "\"} " +
             std::to_string(c.by_state[size_t(s)]) + "\n";
        all.by_state[size_t(s)] += c.by_state[size_t(s)];
      }
    }
    help("tq_queue_workers", "gauge", "workers serving each queue");
    for (const auto& q : *queues) {
      m += "tq_queue_workers{queue=\"" + label(q.name) + "\"} " +
           std::to_string(q.workers) + "\n";
    }
    const std::pair<const char*, uint64_t> counters[] = {
        {"tq_tasks_submitted_total", stats.tasks_submitted},
        {"tq_tasks_done_total", stats.tasks_done},
        {"tq_attempts_failed_total", stats.attempts_failed},
        {"tq_tasks_dead_total", stats.tasks_dead},
        {"tq_tasks_cancelled_total", stats.tasks_cancelled},
        {"tq_redeliveries_total", stats.redeliveries},
        {"tq_messages_in_total", stats.messages_in},
        {"tq_messages_out_total", stats.messages_out},
        {"tq_refused_messages_total", stats.bad_messages},
        {"tq_permission_denied_total", stats.permission_denied},
        {"tq_rate_limited_total", stats.rate_limited},
        {"tq_commits_total", stats.commits},
        {"tq_commit_failures_total", stats.commit_failures},
    };
    for (const auto& [name, v] : counters) {
      help(name, "counter", "since the broker started");
      m += std::string(name) + " " + std::to_string(v) + "\n";
    }
    AppendHistogram(m, "tq_commit_duration_seconds",
                    "the store's COMMIT, with its fsync unless the WAL "
                    "syncer makes it durable",
                    stats.commit_latency);
    AppendHistogram(m, "tq_fsync_duration_seconds",
                    "the WAL syncer's fdatasync (--synchronous full)",
                    stats.sync_latency);
    help("tq_store_ok", "gauge", "0 while the store refuses writes");
    m += "tq_store_ok " + std::string(stats.store_ok ? "1" : "0") + "\n";
  }
  if (workers.ok()) {
    std::map<std::string, std::pair<uint64_t, uint64_t>> by_country;
    for (const auto& w : *workers) {
      auto& c = by_country[w.country];
      ++c.first;
      c.second += w.concurrency;
    }
    help("tq_workers", "gauge", "connected workers per country");
    for (const auto& [country, c] : by_country) {
      m += "tq_workers{country=\"" + label(country) + "\"} " +
           std::to_string(c.first) + "\n";
    }
    help("tq_worker_slots", "gauge", "worker slots per country");
    for (const auto& [country, c] : by_country) {
      m += "tq_worker_slots{country=\"" + label(country) + "\"} " +
           std::to_string(c.second) + "\n";
    }
  }
  help("tq_http_requests_total", "counter", "requests the console served");
  m += "tq_http_requests_total " + std::to_string(requests.load()) + "\n";
  res.set_content(m, "text/plain; version=0.0.4; charset=utf-8");
}

void HttpConsole::Impl::Login(const Request& req, Response& res) {
  if (req.method == "GET") {
    return SendPage(req, res, RenderLogin(""), "");
  }
  const std::string token = Field(req, "token");
  if (access.open() || !access.RoleOf(token)) {
    return SendPage(req, res,
                    RenderLogin(access.open() ? "this console needs no token"
                                              : "unknown token"),
                    "", access.open() ? 400 : 401);
  }
  res.status = 303;
  res.set_header("Set-Cookie",
                 "tq_token=" + token + "; Path=/; HttpOnly; SameSite=Strict");
  res.set_header("Location", "/");
}

// ---------------------------------------------------------------- routes

void HttpConsole::Impl::Routes() {
  using namespace std::placeholders;  // NOLINT
  const std::string b = kBatchId;
  server.set_pre_routing_handler([this](const Request& req, Response& res) {
    ++requests;
    res.set_header("Content-Security-Policy", kCsp);
    res.set_header("X-Content-Type-Options", "nosniff");
    // Not no-referrer: Chromium then sends "Origin: null" on our own forms.
    res.set_header("Referrer-Policy", "same-origin");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Cache-Control", "no-store");
    return Authorize(req, res) ? httplib::Server::HandlerResponse::Unhandled
                               : httplib::Server::HandlerResponse::Handled;
  });
  server.set_exception_handler(
      [](const Request&, Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::warn("console: {}", what);
        res.status = 500;
        res.set_content(Dump({{"error", what}}), kJson);
      });

  server.Get("/static/console.css", [](const Request&, Response& res) {
    res.set_header("Cache-Control", "max-age=3600");
    res.set_content(kConsoleCss, "text/css; charset=utf-8");
  });
  server.Get("/static/console.js", [](const Request&, Response& res) {
    res.set_header("Cache-Control", "max-age=3600");
    res.set_content(kConsoleJs, "text/javascript; charset=utf-8");
  });
  server.Get("/login", [this](const Request& q, Response& r) { Login(q, r); });
  server.Post("/login", [this](const Request& q, Response& r) { Login(q, r); });
  server.Get("/logout", [](const Request&, Response& res) {
    res.status = 303;
    res.set_header("Set-Cookie", "tq_token=; Path=/; Max-Age=0");
    res.set_header("Location", "/login");
  });

  // Pages.
  server.Get("/", [this](const Request& q, Response& r) { Overview(q, r); });
  server.Get("/workers",
             [this](const Request& q, Response& r) { Workers(q, r, false); });
  server.Get("/batches",
             [this](const Request& q, Response& r) { Batches(q, r, false); });
  const std::string w = "([^/]{1,128})";
  server.Post("/workers/" + w + "/drain",
              [this](const Request& q, Response& r) {
                WorkerAction(q, r, false, false);
              });
  server.Post("/workers/" + w + "/disconnect",
              [this](const Request& q, Response& r) {
                WorkerAction(q, r, false, true);
              });
  server.Post("/api/v1/workers/" + w + "/drain",
              [this](const Request& q, Response& r) {
                WorkerAction(q, r, true, false);
              });
  server.Post("/api/v1/workers/" + w + "/disconnect",
              [this](const Request& q, Response& r) {
                WorkerAction(q, r, true, true);
              });
  server.Get("/batches/" + b,
             [this](const Request& q, Response& r) { Batch(q, r, false); });
  server.Get("/batches/" + b + "/results.jsonl",
             [this](const Request& q, Response& r) { Results(q, r); });
  server.Get("/batches/" + b + "/files.tar.gz",
             [this](const Request& q, Response& r) { Files(q, r); });
  server.Post(
      "/batches/" + b + "/cancel",
      [this](const Request& q, Response& r) { Action(q, r, false, "cancel"); });
  server.Post(
      "/batches/" + b + "/retry",
      [this](const Request& q, Response& r) { Action(q, r, false, "retry"); });
  server.Get(R"(/tasks/(\d{1,19}))",
             [this](const Request& q, Response& r) { Task(q, r, false); });
  server.Get(R"(/files/([0-9a-f]{64}))",
             [this](const Request& q, Response& r) { FileDownload(q, r); });
  server.Get("/upload", [this](const Request& req, Response& res) {
    UploadView v;
    v.csrf = csrf;
    SendPage(req, res, RenderUpload(v), "Upload");
  });
  server.Post("/upload",
              [this](const Request& q, Response& r) { Upload(q, r); });
  server.Get("/metrics",
             [this](const Request& q, Response& r) { Metrics(q, r); });

  // The JSON API.
  const std::string api = "/api/v1";
  server.Get(api + "/queues",
             [this](const Request& q, Response& r) { Queues(q, r); });
  server.Get(api + "/chart",
             [this](const Request& q, Response& r) { Chart(q, r); });
  server.Get(api + "/workers",
             [this](const Request& q, Response& r) { Workers(q, r, true); });
  server.Get(api + "/batches",
             [this](const Request& q, Response& r) { Batches(q, r, true); });
  server.Get(api + "/batches/" + b,
             [this](const Request& q, Response& r) { Batch(q, r, true); });
  server.Get(api + "/batches/" + b + "/tasks",
             [this](const Request& q, Response& r) { BatchTasks(q, r); });
  server.Get(api + "/batches/" + b + "/results",
             [this](const Request& q, Response& r) { Results(q, r); });
  server.Get(api + "/batches/" + b + "/files.tar.gz",
             [this](const Request& q, Response& r) { Files(q, r); });
  server.Get(api + R"(/tasks/(\d{1,19}))",
             [this](const Request& q, Response& r) { Task(q, r, true); });
  server.Post(api + "/submit",
              [this](const Request& q, Response& r) { ApiSubmit(q, r); });
  server.Post(
      api + "/batches/" + b + "/cancel",
      [this](const Request& q, Response& r) { Action(q, r, true, "cancel"); });
  server.Post(
      api + "/batches/" + b + "/retry",
      [this](const Request& q, Response& r) { Action(q, r, true, "retry"); });
  server.Post(
      api + "/queues/([A-Za-z0-9_-]{1,32})/purge",
      [this](const Request& q, Response& r) { Action(q, r, true, "purge"); });
  server.Post(api + "/queues/([A-Za-z0-9_-]{1,32})/retry",
              [this](const Request& q, Response& r) {
                Action(q, r, true, "retry-queue");
              });
}

Status HttpConsole::Impl::Setup() {
  auto address = ParseHttpAddress(options.address);
  if (!address.ok()) return address.status();
  if (!options.token_file.empty()) {
    auto table = AccessTable::Load(options.token_file);
    if (!table.ok()) return table.status();
    access = std::move(*table);
  }
  if (Status s = CheckExposure(address->host, access); !s.ok()) return s;
  csrf = RandomHex(16);
  host = address->host;
  const int threads = options.threads;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(size_t(threads));
  };
  server.set_payload_max_length(size_t(kMaxUrlFileBytes) + (1 << 20));
  server.set_read_timeout(std::chrono::seconds(30));
  server.set_keep_alive_max_count(1000);
  Routes();
  int port = address->port;
  bool bound;
  if (port == 0) {
    port = server.bind_to_any_port(address->host);
    bound = port > 0;
  } else {
    bound = server.bind_to_port(address->host, port);
  }
  if (!bound) {
    return Status::Unavailable("cannot listen on http://" + options.address);
  }
  const bool v6 = address->host.find(':') != std::string::npos;
  url = "http://" + (v6 ? "[" + address->host + "]" : address->host) + ":" +
        std::to_string(port);
  return Status::Ok();
}

HttpConsole::HttpConsole(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpConsole>> HttpConsole::Start(
    const ConsoleOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (Status s = impl->Setup(); !s.ok()) return s;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  spdlog::info("web console on {} ({})", impl->url,
               impl->access.open()
                   ? std::string("loopback, no token")
                   : std::to_string(impl->access.size()) + " tokens");
  if (!options.ready_file.empty()) {
    const std::string tmp = options.ready_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << impl->url << "\n";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, options.ready_file, ec);
    if (ec) {
      impl->server.stop();
      impl->thread.join();
      return Status::IoError("cannot write " + options.ready_file);
    }
  }
  return std::unique_ptr<HttpConsole>(new HttpConsole(std::move(impl)));
}

HttpConsole::~HttpConsole() {
  // stop() is a no-op until the listening thread has started running.
  for (int i = 0; i < 500 && !impl_->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

const std::string& HttpConsole::url() const { return impl_->url; }

}  // namespace tq
