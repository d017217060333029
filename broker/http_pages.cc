#include "broker/http_pages.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "common/latency_histogram.h"

namespace tq {
namespace {

std::string E(std::string_view s) { return HtmlEscape(s); }
std::string N(uint64_t n) { return std::to_string(n); }

std::string Percent(uint64_t part, uint64_t total) {
  if (total == 0) return "0%";
  const double p = 100.0 * double(part) / double(total);
  char buf[16];
  std::snprintf(buf, sizeof buf,
                p >= 99.95 && part < total ? "99.9%%" : "%.0f%%", p);
  return buf;
}

std::string Progress(uint64_t finished, uint64_t total) {
  return "<progress max=\"" + N(std::max<uint64_t>(total, 1)) + "\" value=\"" +
         N(finished) + "\"></progress> <span class=\"pct\">" +
         Percent(finished, total) + "</span> <span class=\"dim\">" +
         N(finished) + " / " + N(total) + "</span>";
}

std::string StateBadge(TaskState s) {
  const std::string name(TaskStateName(s));
  return "<span class=\"state " + name + "\">" + name + "</span>";
}

std::string CsrfField(const std::string& csrf) {
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + E(csrf) + "\">";
}

// The per-minute chart: done stacked under dead, one bar per minute.
std::string Chart(const std::vector<MinuteCount>& minutes) {
  constexpr int kW = 720, kH = 140, kTop = 10, kBottom = 20;
  uint64_t max = 1, done = 0, failed = 0;
  for (const auto& m : minutes) {
    max = std::max(max, m.done + m.failed);
    done += m.done;
    failed += m.failed;
  }
  const double bar = minutes.empty() ? 0 : double(kW) / double(minutes.size());
  const double scale = double(kH - kTop - kBottom) / double(max);
  std::string svg = "<svg class=\"chart\" viewBox=\"0 0 " + N(kW) + " " +
                    N(kH) + "\" role=\"img\" aria-label=\"tasks per minute\">";
  svg += "<line x1=\"0\" x2=\"" + N(kW) + "\" y1=\"" + N(kH - kBottom) +
         "\" y2=\"" + N(kH - kBottom) + "\" class=\"axis\"/>";
  for (size_t i = 0; i < minutes.size(); ++i) {
    const auto& m = minutes[i];
    const double x = double(i) * bar + 1;
    const double hd = double(m.done) * scale, hf = double(m.failed) * scale;
    const double base = kH - kBottom;
    char rect[256];
    std::string tip = FormatTime(m.minute_ms).substr(11, 5) + ": " + N(m.done) +
                      " done, " + N(m.failed) + " failed";
    svg += "<g><title>" + E(tip) + "</title>";
    std::snprintf(rect, sizeof rect,
                  "<rect class=\"done\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                  "height=\"%.1f\"/>",
                  x, base - hd, bar - 2, hd);
    svg += rect;
    std::snprintf(rect, sizeof rect,
                  "<rect class=\"failed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                  "height=\"%.1f\"/>",
                  x, base - hd - hf, bar - 2, hf);
    svg += rect;
    svg += "</g>";
  }
  svg += "<text x=\"2\" y=\"" + N(kH - 4) + "\">-60 min</text>";
  svg += "<text x=\"" + N(kW - 2) + "\" y=\"" + N(kH - 4) +
         "\" text-anchor=\"end\">now</text>";
  svg +=
      "<text x=\"2\" y=\"" + N(kTop + 2) + "\">" + N(max) + "/min</text></svg>";
  svg += "<p class=\"legend\"><span class=\"key done\"></span> done " +
         N(done) + " <span class=\"key failed\"></span> failed (dead) " +
         N(failed) + " in the last hour</p>";
  return svg;
}

std::string WorkerQueues(const WorkerSummary& w) {
  std::string q;
  for (const auto& name : w.queues) q += (q.empty() ? "" : ", ") + name;
  return q;
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string FormatTime(int64_t wall_ms) {
  if (wall_ms <= 0) return "";
  const time_t t = time_t(wall_ms / 1000);
  tm parts{};
  gmtime_r(&t, &parts);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &parts);
  return buf;
}

std::string PrettyJson(std::string_view text) {
  auto parsed =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::string(text);
  return parsed.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string RenderDocument(const Page& page, std::string_view active) {
  auto nav = [&](std::string_view href, std::string_view name) {
    return std::string("<a href=\"") + std::string(href) + "\"" +
           (active == name ? " class=\"active\"" : "") + ">" +
           std::string(name) + "</a>";
  };
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width\">"
         "<title>" +
         E(page.title) +
         " · tq</title><link rel=\"stylesheet\" href=\"/static/console.css\">"
         "<script src=\"/static/console.js\" defer></script></head><body>"
         "<header><span class=\"brand\">tq</span>" +
         nav("/", "Overview") + nav("/workers", "Workers") +
         nav("/batches", "Batches") + nav("/upload", "Upload") +
         "<span class=\"live-dot\" id=\"live-dot\" title=\"live\"></span>"
         "</header><main><h1>" +
         E(page.title) + "</h1>" + page.body + "<div id=\"live\" data-live>" +
         page.live + "</div></main></body></html>";
}

Page RenderOverview(const OverviewData& d) {
  Page p;
  p.title = "Overview";
  std::string& h = p.live;
  if (!d.broker_error.empty()) {
    h += "<p class=\"error\">broker: " + E(d.broker_error) + "</p>";
  }
  h += "<section class=\"cards\">";
  auto card = [&](const std::string& label, const std::string& value,
                  bool bad = false) {
    h += "<div class=\"card" + std::string(bad ? " bad" : "") +
         "\"><div class=\"label\">" + E(label) + "</div><div class=\"value\">" +
         E(value) + "</div></div>";
  };
  card("store", d.stats.store_ok ? "ok" : "refusing writes", !d.stats.store_ok);
  card("workers", N(d.workers.size()));
  card("commits", N(d.stats.commits));
  // Bucket bounds: "p99 ≤ 5 ms" says at most, which is what matters here.
  if (d.stats.sync_latency.count > 0) {
    card("fsync p50 / p99", DescribeQuantile(d.stats.sync_latency, 0.5) +
                                " / " +
                                DescribeQuantile(d.stats.sync_latency, 0.99));
  }
  card("commit p50 / p99", DescribeQuantile(d.stats.commit_latency, 0.5) +
                               " / " +
                               DescribeQuantile(d.stats.commit_latency, 0.99));
  card("commit failures", N(d.stats.commit_failures),
       d.stats.commit_failures > 0);
  card("bad messages", N(d.stats.bad_messages), d.stats.bad_messages > 0);
  card("redeliveries", N(d.stats.redeliveries));
  card("messages in / out",
       N(d.stats.messages_in) + " / " + N(d.stats.messages_out));
  h += "</section>";
  if (!d.stats.store_error.empty()) {
    h += "<p class=\"error\">store: " + E(d.stats.store_error) + "</p>";
  }

  h += "<h2>Tasks per minute</h2>" + Chart(d.minutes);

  h += "<h2>Queues</h2><table "
       "class=\"numeric\"><thead><tr><th>queue</th><th>queued</th>"
       "<th>leased</th><th>retry wait</th><th>done</th><th>dead</th>"
       "<th>cancelled</th><th>workers</th></tr></thead><tbody>";
  for (const auto& q : d.queues) {
    const auto& c = q.counts;
    h += "<tr><td>" + E(q.name) + "</td><td class=\"num\">" + N(c.queued) +
         "</td><td class=\"num\">" + N(c.leased) + "</td><td class=\"num\">" +
         N(c.retry_wait) + "</td><td class=\"num\">" + N(c.done) +
         "</td><td class=\"num\">" + N(c.dead) + "</td><td class=\"num\">" +
         N(c.cancelled) + "</td><td class=\"num\">" + N(q.workers) +
         "</td></tr>";
  }
  if (d.queues.empty()) h += "<tr><td colspan=\"8\">no queues yet</td></tr>";
  h += "</tbody></table>";

  struct Country {
    uint64_t workers = 0, slots = 0, in_flight = 0;
  };
  std::map<std::string, Country> by_country;
  for (const auto& w : d.workers) {
    Country& c = by_country[w.country.empty() ? "(none)" : w.country];
    ++c.workers;
    c.slots += w.concurrency;
    c.in_flight += w.in_flight;
  }
  h += "<h2>Workers per country</h2><table "
       "class=\"numeric\"><thead><tr><th>country</th>"
       "<th>workers</th><th>slots</th><th>in flight</th></tr></thead><tbody>";
  for (const auto& [name, c] : by_country) {
    h += "<tr><td>" + E(name) + "</td><td class=\"num\">" + N(c.workers) +
         "</td><td class=\"num\">" + N(c.slots) + "</td><td class=\"num\">" +
         N(c.in_flight) + "</td></tr>";
  }
  if (by_country.empty()) h += "<tr><td colspan=\"4\">no workers</td></tr>";
  h += "</tbody></table>";
  return p;
}

namespace {

// The tasks a worker runs now, each a link to its page.
std::string RunningCell(const WorkerSummary& w) {
  if (w.current.empty()) return "<span class=\"dim\">-</span>";
  std::string h;
  for (const RunningTask& r : w.current) {
    h += "<div><a href=\"/tasks/" + N(r.task_id) + "\">" + N(r.task_id) +
         "</a> <span class=\"url\">" + E(r.url) + "</span></div>";
  }
  return h;
}

}  // namespace

Page RenderWorkers(const WorkersView& v) {
  Page p;
  p.title = "Workers";
  const auto& workers = v.workers;
  if (!v.notice.empty())
    p.body += "<p class=\"notice\">" + E(v.notice) + "</p>";
  std::string& h = p.live;
  if (!v.broker_error.empty()) {
    h += "<p class=\"error\">broker: " + E(v.broker_error) + "</p>";
  }
  h += "<table "
       "class=\"workers\"><thead><tr><th>worker</th><th>host</th><th>address</"
       "th>"
       "<th>country</th><th>queues</th><th>slots</th><th>in flight</th>"
       "<th>credit</th><th>last heard</th><th>tasks done</th><th>state</th>"
       "<th>running now</th><th></th></tr></thead><tbody>";
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerSummary& w = workers[i];
    const bool draining = i < v.draining.size() && v.draining[i];
    const std::string base = "/workers/" + UrlEncode(w.worker_id);
    h += "<tr><td>" + E(w.worker_id) + "</td><td>" + E(w.hostname) +
         "</td><td>" + E(w.peer_address) + "</td><td>" +
         E(w.country.empty() ? "-" : w.country) +
         (w.country_source.empty()
              ? ""
              : " <span class=\"dim\">(" + E(w.country_source) + ")</span>") +
         "</td><td>" + E(WorkerQueues(w)) + "</td><td class=\"num\">" +
         N(w.concurrency) + "</td><td class=\"num\">" + N(w.in_flight) +
         "</td><td class=\"num\">" + N(w.credit) + "</td><td class=\"num\">" +
         E(std::to_string(w.last_seen_ms_ago / 1000.0).substr(0, 4)) +
         " s ago</td><td class=\"num\">" + N(w.tasks_done) + "</td><td>" +
         (draining ? "<span class=\"state retry_wait\">draining</span>"
                   : "<span class=\"state done\">active</span>") +
         "</td><td class=\"running\">" + RunningCell(w) +
         "</td><td class=\"row-actions\">" +
         (draining ? ""
                   : "<form method=\"post\" action=\"" + E(base) +
                         "/drain\" data-confirm=\"Drain this worker? It "
                         "finishes what it holds and takes nothing new.\">" +
                         CsrfField(v.csrf) + "<button>drain</button></form> ") +
         "<form method=\"post\" action=\"" + E(base) +
         "/disconnect\" data-confirm=\"Disconnect this worker? Its tasks "
         "go back to their queues.\">" +
         CsrfField(v.csrf) + "<button>disconnect</button></form></td></tr>";
  }
  if (workers.empty()) h += "<tr><td colspan=\"13\">no workers</td></tr>";
  h += "</tbody></table>";
  if (!v.offline.empty()) {
    h += "<h2>Offline</h2><p class=\"dim\">Workers that left within the "
         "last hour.</p><table class=\"workers offline\" "
         "id=\"offline-workers\"><thead><tr><th>worker</th><th>last seen</th>"
         "<th>tasks done</th><th>failed</th><th>state</th></tr></thead><tbody>";
    for (const WorkerSummary& w : v.offline) {
      h += "<tr><td>" + E(w.worker_id) + "</td><td>" +
           E(FormatTime(w.last_seen_ms)) + "</td><td class=\"num\">" +
           N(w.tasks_done) + "</td><td class=\"num\">" + N(w.failed) +
           "</td><td><span class=\"state cancelled\">offline</span></td></tr>";
    }
    h += "</tbody></table>";
  }
  return p;
}

Page RenderBatchList(const BatchListPage& page) {
  Page p;
  p.title = "Batches";
  std::string& h = p.live;
  h += "<table "
       "class=\"batches\"><thead><tr><th>batch</th><th>submitted</"
       "th><th>progress</th>"
       "<th>done</th><th>dead</th><th>cancelled</th><th>pending</th></tr>"
       "</thead><tbody>";
  for (const auto& b : page.batches) {
    const auto& c = b.counts;
    h += "<tr><td><a href=\"/batches/" + E(UrlEncode(b.batch_id)) + "\">" +
         E(b.batch_id) + "</a></td><td>" + E(FormatTime(b.submitted_ms)) +
         "</td><td class=\"progress\">" + Progress(c.finished(), c.total()) +
         "</td><td class=\"num\">" + N(c[TaskState::kDone]) +
         "</td><td class=\"num\">" + N(c[TaskState::kDead]) +
         "</td><td class=\"num\">" + N(c[TaskState::kCancelled]) +
         "</td><td class=\"num\">" + N(c.total() - c.finished()) + "</td></tr>";
  }
  if (page.batches.empty()) h += "<tr><td colspan=\"7\">no batches</td></tr>";
  h += "</tbody></table>";
  if (page.next_before != 0) {
    h += "<p><a href=\"/batches?before=" + N(page.next_before) +
         "\">older batches →</a></p>";
  }
  return p;
}

Page RenderBatch(const BatchView& v) {
  Page p;
  p.title = "Batch " + v.batch_id;
  const std::string base = "/batches/" + UrlEncode(v.batch_id);
  std::string& b = p.body;
  if (!v.notice.empty()) b += "<p class=\"notice\">" + E(v.notice) + "</p>";
  if (!v.upload_report.empty()) {
    b += "<div class=\"report\"><h2>Upload report</h2><pre id=\"bad-lines\">";
    for (const auto& line : v.upload_report) b += E(line) + "\n";
    b += "</pre></div>";
  }
  b += "<div class=\"actions\"><a class=\"button\" href=\"" + E(base) +
       "/results.jsonl\" id=\"download-results\">results (JSON Lines)</a> "
       "<a class=\"button\" href=\"" +
       E(base) +
       "/files.tar.gz\">files (.tar.gz)</a> "
       "<form method=\"post\" action=\"" +
       E(base) + "/cancel\" data-confirm=\"Cancel every queued task?\">" +
       CsrfField(v.csrf) +
       "<button>cancel batch</button></form> <form method=\"post\" "
       "action=\"" +
       E(base) + "/retry\">" + CsrfField(v.csrf) +
       "<button>retry dead</button></form></div>";

  const TaskFilter& f = v.filter;
  b += "<form class=\"filters\" method=\"get\" action=\"" + E(base) +
       "\"><label>state <select name=\"state\"><option value=\"\">any"
       "</option>";
  for (int s = 0; s <= 5; ++s) {
    const std::string name(TaskStateName(TaskState(s)));
    const bool sel = f.state && int(*f.state) == s;
    b += "<option" + std::string(sel ? " selected" : "") + ">" + name +
         "</option>";
  }
  b += "</select></label> <label>queue <input name=\"queue\" size=\"8\" "
       "value=\"" +
       E(f.queue) +
       "\"></label> <label>URL contains <input name=\"q\" size=\"30\" "
       "value=\"" +
       E(f.url_contains) + "\"></label> <button>filter</button></form>";

  std::string& h = p.live;
  const auto& c = v.counts;
  h += "<div class=\"batch-progress\" id=\"batch-progress\" data-finished=\"" +
       N(c.finished()) + "\" data-total=\"" + N(c.total()) + "\">" +
       Progress(c.finished(), c.total()) + "</div><p class=\"counts\">";
  for (int s = 0; s <= 5; ++s) {
    h += StateBadge(TaskState(s)) + " " + N(c.by_state[size_t(s)]) + " ";
  }
  h += "</p><table class=\"tasks\"><thead><tr><th>#</th><th>queue</th>"
       "<th>URL</th><th>state</th><th>attempts</th><th>worker</th>"
       "<th>duration</th><th>error</th></tr></thead><tbody>";
  for (const auto& t : v.tasks.tasks) {
    h += "<tr><td class=\"num\"><a href=\"/tasks/" + N(t.task_id) + "\">" +
         N(t.index) + "</a></td><td>" + E(t.queue) +
         "</td><td class=\"url\"><a href=\"/tasks/" + N(t.task_id) + "\">" +
         E(t.url) + "</a></td><td>" + StateBadge(t.state) +
         "</td><td class=\"num\">" + N(t.attempts) + "</td><td>" + E(t.worker) +
         "</td><td class=\"num\">" +
         (t.finished_ms ? N(t.duration_ms) + " ms" : "") +
         "</td><td class=\"err\">" + E(t.error) + "</td></tr>";
  }
  if (v.tasks.tasks.empty()) h += "<tr><td colspan=\"8\">no tasks</td></tr>";
  h += "</tbody></table>";
  std::string query;
  if (f.state) query += "&state=" + std::string(TaskStateName(*f.state));
  if (!f.queue.empty()) query += "&queue=" + UrlEncode(f.queue);
  if (!f.url_contains.empty()) query += "&q=" + UrlEncode(f.url_contains);
  h += "<p class=\"pager\">";
  if (f.after_index >= 0) {
    h += "<a href=\"" + E(base + "?" + query.substr(query.empty() ? 0 : 1)) +
         "\">← first page</a> ";
  }
  if (v.tasks.next_after >= 0) {
    h += "<a id=\"next-page\" href=\"" +
         E(base + "?after=" + std::to_string(v.tasks.next_after) + query) +
         "\">next page →</a>";
  }
  h += "</p>";
  return p;
}

Page RenderTask(const TaskDetail& t, const RunningTask* lease) {
  Page p;
  p.title = "Task " + N(t.row.task_id);
  std::string& h = p.live;
  const auto& r = t.row;
  auto row = [&](const std::string& k, const std::string& v_html) {
    h += "<tr><th>" + E(k) + "</th><td>" + v_html + "</td></tr>";
  };
  h += "<table class=\"kv\">";
  row("URL", "<span class=\"url\" id=\"task-url\">" + E(r.url) + "</span>");
  row("batch", "<a href=\"/batches/" + E(UrlEncode(r.batch_id)) + "\">" +
                   E(r.batch_id) + "</a> item " + N(r.index));
  row("queue", E(r.queue));
  row("state", StateBadge(r.state));
  row("attempts", N(r.attempts) + " of " + N(t.max_attempts));
  row("priority", std::to_string(t.priority));
  row("time limit", N(t.time_limit_ms) + " ms");
  row("submitted", E(FormatTime(r.submitted_ms)));
  row("last attempt",
      r.started_ms
          ? "started " + E(FormatTime(r.started_ms)) +
                (r.worker.empty() ? "" : " on " + E(r.worker)) +
                (r.finished_ms ? ", finished " + E(FormatTime(r.finished_ms)) +
                                     " (" + N(r.duration_ms) + " ms)"
                               : "")
          : "not started");
  if (t.not_before_ms > 0 && r.state == TaskState::kRetryWait) {
    row("next attempt", E(FormatTime(t.not_before_ms)));
  }
  if (lease != nullptr) {
    row("running", "<span id=\"task-lease\">on " + E(lease->worker) +
                       " since " + E(FormatTime(lease->since_ms)) +
                       " (attempt " + N(lease->attempt) + ")</span>");
  }
  if (!r.error.empty())
    row("error", "<span class=\"err\">" + E(r.error) + "</span>");
  h += "</table><h2>Options</h2><pre>" + E(PrettyJson(t.options_json)) +
       "</pre>";
  h += "<h2>Attempts</h2>";
  if (t.history.empty()) {
    h += "<p class=\"dim\" id=\"attempts-none\">no attempt has ended yet</p>";
  } else {
    h += "<table class=\"attempts\" id=\"attempts\"><thead><tr><th>#</th>"
         "<th>worker</th><th>start</th><th>end</th><th>outcome</th>"
         "<th>error</th></tr></thead><tbody>";
    for (const AttemptRecord& a : t.history) {
      const std::string outcome =
          a.ok ? (a.outcome.empty() ? "ok" : a.outcome) : "failed";
      h += "<tr><td class=\"num\">" + N(a.attempt) + "</td><td>" +
           E(a.worker.empty() ? "-" : a.worker) + "</td><td>" +
           E(a.started_ms ? FormatTime(a.started_ms) : "-") + "</td><td>" +
           E(a.ended_ms ? FormatTime(a.ended_ms) : "-") + "</td><td>" +
           (a.ok ? "<span class=\"state done\">"
                 : "<span class=\"state dead\">") +
           E(outcome) + "</span></td><td class=\"err\">" + E(a.error) +
           "</td></tr>";
    }
    h += "</tbody></table>";
  }
  if (t.result) {
    const TaskResult& res = *t.result;
    h += "<h2>Result</h2><p>" + std::string(res.ok ? "ok" : "failed") +
         ", exit code " + std::to_string(res.exit_code) +
         (res.output_truncated ? ", output truncated" : "") + "</p>";
    h += "<pre class=\"result\" id=\"result\">" + E(PrettyJson(res.output)) +
         "</pre>";
    if (!res.stderr_tail.empty()) {
      h += "<h3>stderr (tail)</h3><pre>" + E(res.stderr_tail) + "</pre>";
    }
    h += "<h2>Files</h2>";
    if (res.files.empty()) h += "<p class=\"dim\">none</p>";
    h += "<ul class=\"files\">";
    for (const auto& f : res.files) {
      h += "<li><a href=\"/files/" + E(UrlEncode(f.sha256)) +
           "?name=" + E(UrlEncode(f.name)) + "\" download>" + E(f.name) +
           "</a> <span class=\"dim\">" + N(f.size) + " bytes, sha256 " +
           E(f.sha256.substr(0, 12)) + "…</span></li>";
    }
    h += "</ul>";
  }
  return p;
}

Page RenderUpload(const UploadView& v) {
  Page p;
  p.title = "Upload";
  std::string& h = p.body;
  if (!v.errors.empty()) {
    h += "<div class=\"report error\"><h2>Nothing submitted</h2><pre "
         "id=\"upload-errors\">";
    for (const auto& e : v.errors) h += E(e) + "\n";
    h += "</pre></div>";
  }
  auto input = [&](const std::string& name, const std::string& label,
                   const std::string& value, const std::string& hint) {
    h += "<label>" + E(label) + " <input name=\"" + name + "\" value=\"" +
         E(value) + "\" placeholder=\"" + E(hint) + "\"></label>";
  };
  h += "<form class=\"upload\" method=\"post\" action=\"/upload\" "
       "enctype=\"multipart/form-data\">" +
       CsrfField(v.csrf) +
       "<fieldset><legend>URLs</legend><label>URL file <input type=\"file\" "
       "name=\"file\" id=\"file\"></label><label>or paste, one per line "
       "<textarea name=\"urls\" rows=\"8\" cols=\"80\">" +
       E(v.urls) +
       "</textarea></label></fieldset><fieldset><legend>Where"
       "</legend>";
  input("countries", "countries", v.countries, "IT,IN (empty: generic)");
  h += "</fieldset><fieldset><legend>Options</legend>";
  input("user_agent", "user agent", v.user_agent, "");
  input("referer", "referer", v.referer, "");
  input("proxy", "proxy", v.proxy, "http://host:port");
  input("time_limit", "time limit (s)", v.time_limit, "broker default");
  input("priority", "priority", v.priority, "0");
  input("max_attempts", "max attempts", v.max_attempts, "broker default");
  h += "</fieldset><button type=\"submit\" id=\"submit\">submit</button>"
       "</form>";
  return p;
}

Page RenderLogin(const std::string& error) {
  Page p;
  p.title = "Sign in";
  if (!error.empty()) p.body += "<p class=\"error\">" + E(error) + "</p>";
  p.body +=
      "<form method=\"post\" action=\"/login\"><label>token <input "
      "type=\"password\" name=\"token\" autocomplete=\"current-password\">"
      "</label> <button>sign in</button></form>";
  return p;
}

Page RenderMessage(const std::string& title, const std::string& message) {
  Page p;
  p.title = title;
  p.body = "<p>" + E(message) + "</p>";
  return p;
}

}  // namespace tq
